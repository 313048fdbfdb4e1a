"""The package's plain modules (the teaching core, cbam_course/attention.py) are the Day 50 lesson's:
same tensors, same order, same outputs, same gradients. The accelerated ones
(cbam_course.fast.accelerate) are held to the same in tests/fast/."""
import pytest
import torch

import cbam_course as cc
from day50_checks import assert_training_step_matches_day50
from cbam_course import day50


def _same_params(ours, theirs):
    a = [(n, tuple(p.shape)) for n, p in ours.state_dict().items()]
    b = [(n, tuple(p.shape)) for n, p in theirs.state_dict().items()]
    assert a == b


@pytest.mark.parametrize("make_ours,make_day50,shape", [
    (lambda: cc.ChannelAttention(64), lambda: day50.ChannelAttention(64), (2, 64, 9, 7)),
    (lambda: cc.ChannelAttention(32, ratio=4), lambda: day50.ChannelAttention(32, ratio=4), (3, 32, 5, 5)),
    (lambda: cc.SpatialAttention(), lambda: day50.SpatialAttention(), (2, 16, 12, 10)),
    (lambda: cc.SpatialAttention(3), lambda: day50.SpatialAttention(3), (2, 8, 6, 6)),
    (lambda: cc.CBAM(128), lambda: day50.CBAM(128), (2, 128, 8, 8)),
    (lambda: cc.CBAM(32, ratio=8, kernel_size=5), lambda: day50.CBAM(32, ratio=8, kernel_size=5), (1, 32, 16, 16)),
])
def test_module_matches_seed(make_ours, make_day50, shape):
    torch.manual_seed(0)
    theirs = make_day50()
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


def test_attention_cnn_is_the_day50_cnn():
    torch.manual_seed(0)
    theirs = day50.CBAM_CNN()
    ours = cc.AttentionCNN(num_classes=10, attention="cbam", width=64)
    assert cc.count_parameters(ours) == 1_160_816 == cc.count_parameters(theirs)
    _same_params(ours, theirs)
    ours.load_state_dict(theirs.state_dict())  # the Day 50 lesson's checkpoints load as they are
    ours.eval(); theirs.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_the_day_50_classifier_is_dropout_then_one_linear():
    """Lesson 01's glossary says so (分类器): Dropout(0.5) and a single Linear(256, 10), no hidden layer."""
    for model in (day50.CBAM_CNN(), cc.AttentionCNN()):
        layers = list(model.classifier)
        assert [type(m) for m in layers] == [torch.nn.Dropout, torch.nn.Linear]
        assert layers[0].p == 0.5
        assert (layers[1].in_features, layers[1].out_features) == (256, 10)


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


def test_training_step_gradients_match_the_day50_cnn():
    """A whole training step of the plain network gives the Day 50 lesson's gradients."""
    assert_training_step_matches_day50(cc.AttentionCNN(attention="cbam", width=64))


def test_plain_cbam_runs_its_two_halves_as_modules():
    """The core CBAM is the formula and nothing else: its forward calls channel attention, then
    spatial attention, as modules (hooks on them see every call), and the network's attention
    modules are the core classes until someone calls cbam_course.fast.accelerate."""
    torch.manual_seed(0)
    m = cc.CBAM(16, ratio=4)
    calls = []
    m.channel_attention.register_forward_hook(lambda mod, inp, out: calls.append(("channel", out.shape)))
    m.spatial_attention.register_forward_hook(lambda mod, inp, out: calls.append(("spatial", out.shape)))
    x = torch.randn(2, 16, 5, 5)
    out = m(x)
    assert calls == [("channel", x.shape), ("spatial", x.shape)]
    torch.testing.assert_close(out, m.spatial_attention(m.channel_attention(x)))
    for attention, kind in (("cbam", cc.CBAM), ("se", cc.SEBlock)):
        assert all(type(a) is kind for a in cc.AttentionCNN(attention=attention, width=16).attention_modules())
