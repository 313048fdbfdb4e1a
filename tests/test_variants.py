"""CBAM variants: the arrangements differ from the Day 50 lesson, the other codebases' layouts match it
exactly once their extras are neutralised, and not before."""
import pytest
import torch

from cbam_course import CBAM, record_attention
from cbam_course.variants import (
    OfficialCBAM,
    ParallelCBAM,
    SpatialFirstCBAM,
    TimmCBAM,
    copy_cbam_weights,
    timm_hidden_channels,
)


@pytest.fixture
def cbam_and_input():
    torch.manual_seed(0)
    source = CBAM(32, ratio=8).eval()
    with torch.no_grad():  # larger weights than the default init, so differences show
        for p in source.parameters():
            p.mul_(4)
    x = torch.randn(2, 32, 9, 11)
    return source, x


def test_arrangements_load_a_cbam_state_dict_and_differ(cbam_and_input):
    source, x = cbam_and_input
    spatial_first = copy_cbam_weights(source, SpatialFirstCBAM(32, ratio=8))
    parallel = copy_cbam_weights(source, ParallelCBAM(32, ratio=8))
    with torch.no_grad():
        outs = [m(x) for m in (source, spatial_first, parallel)]
    assert all(o.shape == x.shape for o in outs)
    assert not torch.allclose(outs[0], outs[1], atol=1e-4)
    assert not torch.allclose(outs[0], outs[2], atol=1e-4)
    assert not torch.allclose(outs[1], outs[2], atol=1e-4)


def test_spatial_first_is_spatial_then_channel(cbam_and_input):
    source, x = cbam_and_input
    m = copy_cbam_weights(source, SpatialFirstCBAM(32, ratio=8))
    with torch.no_grad():
        expected = source.channel_attention(source.spatial_attention(x))
        assert torch.allclose(m(x), expected, atol=1e-6)


def test_parallel_adds_the_two_branches_before_one_sigmoid(cbam_and_input):
    """The course's reading of Woo et al. 2018 (arXiv v2, §4.1), which gives no equation: the parallel
    branches' outputs "are added and normalized with the sigmoid function", read as their logits added
    under one sigmoid (as BAM's sigma(Mc + Ms)); not x * Mc(x) * Ms(x), another reading."""
    source, x = cbam_and_input
    m = copy_cbam_weights(source, ParallelCBAM(32, ratio=8))
    ca, sa = source.channel_attention, source.spatial_attention
    with torch.no_grad():
        b, c = x.shape[:2]
        channel_logits = (ca.fc(x.mean((2, 3))) + ca.fc(x.amax((2, 3)))).view(b, c, 1, 1)
        spatial_logits = sa.conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1))
        expected = x * torch.sigmoid(channel_logits + spatial_logits)
        assert torch.allclose(m(x), expected, atol=1e-6)
        assert torch.allclose(channel_logits, ca.logits(x)) and torch.allclose(spatial_logits, sa.logits(x))
        assert (channel_logits + spatial_logits).shape == x.shape  # one (B, C, H, W) map, a "3D attention map"
        product = x * torch.sigmoid(ca.logits(x)) * torch.sigmoid(sa.logits(x))  # another reading
        assert not torch.allclose(m(x), product, atol=1e-3)


def test_parallel_is_not_swapped_by_accelerate():
    from cbam_course.fast import accelerate
    m = accelerate(torch.nn.Sequential(ParallelCBAM(16, ratio=4)), keep_memory=False)
    assert type(m[0]) is ParallelCBAM


@pytest.mark.parametrize("make", [lambda: OfficialCBAM(32, 8), lambda: TimmCBAM(32, rd_ratio=1 / 8),
                                  lambda: TimmCBAM(32, rd_ratio=1 / 8, mlp_bias=True)])
def test_other_layouts_compute_the_day50_function(cbam_and_input, make):
    source, x = cbam_and_input
    other = copy_cbam_weights(source, make())
    with torch.no_grad():
        assert torch.allclose(other(x), source(x), atol=1e-6)


def test_official_needs_the_pool_order_swap(cbam_and_input):
    source, x = cbam_and_input
    naive = copy_cbam_weights(source, OfficialCBAM(32, 8), swap_pool_order=False)
    with torch.no_grad():
        assert not torch.allclose(naive(x), source(x), atol=1e-4)


def test_official_differs_with_biases_or_batchnorm_in_training(cbam_and_input):
    source, x = cbam_and_input
    other = copy_cbam_weights(source, OfficialCBAM(32, 8))
    with torch.no_grad():
        other.ChannelGate.mlp[3].bias.fill_(1.0)
        assert not torch.allclose(other(x), source(x), atol=1e-4)
        other.ChannelGate.mlp[3].bias.zero_()
        other.train()  # BatchNorm now normalises with the batch's own statistics
        assert not torch.allclose(other(x), source(x), atol=1e-4)


def test_parameter_names_follow_the_originals():
    official = set(OfficialCBAM(64).state_dict())
    assert {"ChannelGate.mlp.1.weight", "ChannelGate.mlp.1.bias", "ChannelGate.mlp.3.weight",
            "SpatialGate.spatial.conv.weight", "SpatialGate.spatial.bn.running_var"} <= official
    timm = set(TimmCBAM(64).state_dict())
    assert {"channel.fc1.weight", "channel.fc2.weight", "spatial.conv.conv.weight",
            "spatial.conv.bn.weight"} <= timm
    assert "channel.fc1.bias" not in timm


def test_timm_rounds_the_hidden_width():
    assert timm_hidden_channels(64) == 4
    assert timm_hidden_channels(24) == 2  # the Day 50 lesson floors: 24 // 16 == 1
    assert timm_hidden_channels(8) == 1
    assert timm_hidden_channels(40) == 3    # 2.5 rounds half up, as timm's make_divisible; round(2.5) == 2
    assert timm_hidden_channels(56) == 4    # 3.5 -> 4
    assert TimmCBAM(24).channel.fc1.out_channels == 2


def test_mismatched_sizes_are_refused_with_a_hint():
    with pytest.raises(ValueError, match="timm_hidden_channels"):
        copy_cbam_weights(CBAM(24, ratio=16), TimmCBAM(24))
    with pytest.raises(TypeError, match="expected CBAM"):
        copy_cbam_weights(CBAM(32), torch.nn.Identity())
    with pytest.raises(ValueError, match="no hidden units"):
        OfficialCBAM(8, 16)
    with pytest.raises(ValueError, match="4-D"):
        ParallelCBAM(8, ratio=4)(torch.randn(8, 5, 5))
