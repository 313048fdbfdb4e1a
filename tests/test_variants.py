"""CBAM variants: the arrangements differ from the seed, the other codebases' layouts match it
exactly once their extras are neutralised, and not before."""
import pytest
import torch

from cbam_course import CBAM, record_attention
from cbam_course.variants import (
    OfficialCBAM,
    ParallelCBAM,
    SpatialFirstCBAM,
    TimmCBAM,
    copy_seed_weights,
    timm_hidden_channels,
)


@pytest.fixture
def seed_and_input():
    torch.manual_seed(0)
    seed = CBAM(32, ratio=8).eval()
    with torch.no_grad():  # larger weights than the default init, so differences show
        for p in seed.parameters():
            p.mul_(4)
    x = torch.randn(2, 32, 9, 11)
    return seed, x


def test_arrangements_load_seed_state_dict_and_differ(seed_and_input):
    seed, x = seed_and_input
    spatial_first = copy_seed_weights(seed, SpatialFirstCBAM(32, ratio=8))
    parallel = copy_seed_weights(seed, ParallelCBAM(32, ratio=8))
    with torch.no_grad():
        outs = [m(x) for m in (seed, spatial_first, parallel)]
    assert all(o.shape == x.shape for o in outs)
    assert not torch.allclose(outs[0], outs[1], atol=1e-4)
    assert not torch.allclose(outs[0], outs[2], atol=1e-4)
    assert not torch.allclose(outs[1], outs[2], atol=1e-4)


def test_spatial_first_is_spatial_then_channel(seed_and_input):
    seed, x = seed_and_input
    m = copy_seed_weights(seed, SpatialFirstCBAM(32, ratio=8))
    with torch.no_grad():
        expected = seed.channel_attention(seed.spatial_attention(x))
        assert torch.allclose(m(x), expected, atol=1e-6)


def test_parallel_applies_both_maps_of_the_input(seed_and_input):
    seed, x = seed_and_input
    m = copy_seed_weights(seed, ParallelCBAM(32, ratio=8))
    with torch.no_grad():
        expected = x * seed.channel_attention.weights(x) * seed.spatial_attention.weights(x)
        assert torch.allclose(m(x), expected, atol=1e-6)
    with record_attention(m) as mods:
        m(x)
    assert mods["spatial_attention"].last_attention.shape == (2, 1, 9, 11)
    assert mods["channel_attention"].last_attention.shape == (2, 32, 1, 1)


@pytest.mark.parametrize("make", [lambda: OfficialCBAM(32, 8), lambda: TimmCBAM(32, rd_ratio=1 / 8),
                                  lambda: TimmCBAM(32, rd_ratio=1 / 8, mlp_bias=True)])
def test_other_layouts_compute_the_seed_function(seed_and_input, make):
    seed, x = seed_and_input
    other = copy_seed_weights(seed, make())
    with torch.no_grad():
        assert torch.allclose(other(x), seed(x), atol=1e-6)


def test_official_needs_the_pool_order_swap(seed_and_input):
    seed, x = seed_and_input
    naive = copy_seed_weights(seed, OfficialCBAM(32, 8), swap_pool_order=False)
    with torch.no_grad():
        assert not torch.allclose(naive(x), seed(x), atol=1e-4)


def test_official_differs_with_biases_or_batchnorm_in_training(seed_and_input):
    seed, x = seed_and_input
    other = copy_seed_weights(seed, OfficialCBAM(32, 8))
    with torch.no_grad():
        other.ChannelGate.mlp[3].bias.fill_(1.0)
        assert not torch.allclose(other(x), seed(x), atol=1e-4)
        other.ChannelGate.mlp[3].bias.zero_()
        other.train()  # BatchNorm now normalises with the batch's own statistics
        assert not torch.allclose(other(x), seed(x), atol=1e-4)


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
    assert timm_hidden_channels(24) == 2  # the seed floors: 24 // 16 == 1
    assert timm_hidden_channels(8) == 1
    assert TimmCBAM(24).channel.fc1.out_channels == 2


def test_mismatched_sizes_are_refused_with_a_hint():
    with pytest.raises(ValueError, match="timm_hidden_channels"):
        copy_seed_weights(CBAM(24, ratio=16), TimmCBAM(24))
    with pytest.raises(TypeError, match="expected CBAM"):
        copy_seed_weights(CBAM(32), torch.nn.Identity())
    with pytest.raises(ValueError, match="no hidden units"):
        OfficialCBAM(8, 16)
    with pytest.raises(ValueError, match="4-D"):
        ParallelCBAM(8, ratio=4)(torch.randn(8, 5, 5))
