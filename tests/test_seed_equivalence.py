"""The package's modules are the seed's: same tensors, same order, same outputs."""
import pytest
import torch

import cbam_course as cc
import seed_reference as seed


def _same_params(ours, theirs):
    a = [(n, tuple(p.shape)) for n, p in ours.state_dict().items()]
    b = [(n, tuple(p.shape)) for n, p in theirs.state_dict().items()]
    assert a == b


@pytest.mark.parametrize("make_ours,make_seed,shape", [
    (lambda: cc.ChannelAttention(64), lambda: seed.ChannelAttention(64), (2, 64, 9, 7)),
    (lambda: cc.ChannelAttention(32, ratio=4), lambda: seed.ChannelAttention(32, ratio=4), (3, 32, 5, 5)),
    (lambda: cc.SpatialAttention(), lambda: seed.SpatialAttention(), (2, 16, 12, 10)),
    (lambda: cc.SpatialAttention(3), lambda: seed.SpatialAttention(3), (2, 8, 6, 6)),
    (lambda: cc.CBAM(128), lambda: seed.CBAM(128), (2, 128, 8, 8)),
    (lambda: cc.CBAM(32, ratio=8, kernel_size=5), lambda: seed.CBAM(32, ratio=8, kernel_size=5), (1, 32, 16, 16)),
])
def test_module_matches_seed(make_ours, make_seed, shape):
    torch.manual_seed(0)
    theirs = make_seed()
    ours = make_ours()
    _same_params(ours, theirs)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(*shape)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    # gradients agree too: training behaves the same
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ours(xa).square().sum().backward()
    theirs(xb).square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-4)


def test_attention_cnn_is_the_seed_cnn():
    torch.manual_seed(0)
    theirs = seed.CBAM_CNN()
    ours = cc.AttentionCNN(num_classes=10, attention="cbam", width=64)
    assert cc.count_parameters(ours) == 1_160_816 == cc.count_parameters(theirs)
    _same_params(ours, theirs)
    ours.load_state_dict(theirs.state_dict())  # the seed's checkpoints load as they are
    ours.eval(); theirs.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_parameter_counts_by_attention():
    assert cc.count_parameters(cc.AttentionCNN(attention="none")) == 1_149_770
    # SE: two Linear layers with biases per block: 2*C*C/16 + C/16 + C
    se_extra = sum(2 * c * (c // 16) + c // 16 + c for c in (64, 128, 256))
    assert cc.count_parameters(cc.AttentionCNN(attention="se")) == 1_149_770 + se_extra


def test_se_block_is_hu_et_al():
    torch.manual_seed(0)
    se = cc.SEBlock(32, ratio=4)
    x = torch.randn(2, 32, 5, 5)
    w1, b1 = se.fc[0].weight, se.fc[0].bias
    w2, b2 = se.fc[2].weight, se.fc[2].bias
    z = x.mean(dim=(2, 3))
    s = torch.sigmoid(torch.relu(z @ w1.T + b1) @ w2.T + b2)
    torch.testing.assert_close(se(x), x * s[:, :, None, None])
