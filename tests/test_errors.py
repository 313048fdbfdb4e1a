"""Bad constructor arguments and bad inputs get errors that say what was wrong and how to fix it."""
import pytest
import torch

import cbam_course as cc


@pytest.mark.parametrize("make,match", [
    (lambda: cc.ChannelAttention(8, ratio=16), r"ratio=16 leaves no hidden units.*at most 8"),
    (lambda: cc.CBAM(8), r"ratio=16 leaves no hidden units"),
    (lambda: cc.SEBlock(4, ratio=8), r"no hidden units"),
    (lambda: cc.ChannelAttention(0), r"in_channels must be a positive int"),
    (lambda: cc.ChannelAttention(-3), r"in_channels must be a positive int"),
    (lambda: cc.ChannelAttention(64, ratio=0), r"ratio must be a positive int"),
    (lambda: cc.SpatialAttention(6), r"kernel_size must be odd.*one pixel larger"),
    (lambda: cc.CBAM(64, kernel_size=4), r"kernel_size must be odd"),
    (lambda: cc.SpatialAttention(0), r"kernel_size must be a positive int"),
    (lambda: cc.AttentionCNN(attention="eca"), r"Unknown attention 'eca'.*'none', 'se', 'cbam'"),
    (lambda: cc.AttentionCNN(width=0), r"width must be a positive int"),
    (lambda: cc.AttentionCNN(width=8), r"width=8 is too narrow.*width >= 16"),
    (lambda: cc.AttentionCNN(num_classes=0), r"num_classes must be a positive int"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_narrow_model_without_attention_is_allowed():
    assert cc.AttentionCNN(attention="none", width=8)(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("module,x,match", [
    (cc.ChannelAttention(64), torch.randn(64, 8, 8), r"4-D input.*\(64, 8, 8\).*unsqueeze\(0\)"),
    (cc.ChannelAttention(64), torch.randn(2, 32, 8, 8), r"built for 64 channels but got an input with 32"),
    (cc.SEBlock(32), torch.randn(2, 64, 8, 8), r"built for 32 channels but got an input with 64"),
    (cc.SpatialAttention(), torch.randn(2, 8), r"4-D input"),
    (cc.CBAM(64), torch.randn(1, 128, 4, 4), r"ChannelAttention was built for 64 channels"),
    (cc.AttentionCNN(), torch.randn(3, 32, 32), r"AttentionCNN expects a 4-D input \(batch, channels, height, width\).*unsqueeze\(0\)"),
    (cc.AttentionCNN(), torch.randn(2, 1, 32, 32), r"built for 3 channels but got an input with 1.*\(batch, 3, height, width\)"),
])
def test_bad_inputs(module, x, match):
    with pytest.raises(ValueError, match=match):
        module(x)


def test_not_a_tensor():
    with pytest.raises(TypeError, match="expects a torch.Tensor"):
        cc.SpatialAttention()([[1.0]])


def test_record_attention_reads_what_was_applied_without_changing_the_output():
    torch.manual_seed(0)
    model = cc.AttentionCNN(attention="cbam", width=16).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        with cc.record_attention(model) as mods:
            recorded = model(x)
    torch.testing.assert_close(plain, recorded)
    assert set(mods) == {f"cbam{i}.{part}" for i in (1, 2, 3) for part in ("channel_attention", "spatial_attention")}
    assert mods["cbam1.channel_attention"].last_attention.shape == (2, 16, 1, 1)
    assert mods["cbam1.spatial_attention"].last_attention.shape == (2, 1, 32, 32)
    assert mods["cbam3.spatial_attention"].last_attention.shape == (2, 1, 8, 8)
    sa = mods["cbam2.spatial_attention"].last_attention
    assert ((sa > 0) & (sa < 1)).all()
    before = {n: m.last_attention for n, m in mods.items()}
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    assert all(mods[n].last_attention is t for n, t in before.items()), "recording is switched off after the block"


def test_record_attention_values_are_the_weights_applied():
    torch.manual_seed(1)
    ca = cc.ChannelAttention(32, ratio=4)
    x = torch.rand(3, 32, 5, 5) + 0.1
    with cc.record_attention(ca) as mods:
        y = ca(x)
    torch.testing.assert_close(y / x, mods[""].last_attention.expand_as(x))


def test_record_attention_needs_attention_modules():
    with pytest.raises(ValueError, match="nothing to record"):
        with cc.record_attention(cc.AttentionCNN(attention="none")):
            pass


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize("make,x,kept", [
    (lambda: cc.ChannelAttention(64), torch.randn(64, 8, 8), ["ChannelAttention", "(64, 8, 8)", "x.unsqueeze(0)"]),
    (lambda: cc.AttentionCNN(), torch.randn(2, 1, 32, 32), ["AttentionCNN", "(2, 1, 32, 32)", "(batch, 3, height, width)"]),
    (lambda: cc.SEBlock(32), torch.randn(2, 64, 8, 8), ["SEBlock", "32", "in_channels=64"]),
])
def test_a_wrong_input_is_explained_in_chinese_with_the_switch(monkeypatch, make, x, kept):
    """CBAM_COURSE_LANG=zh: the same error in Chinese, its names, shapes and code kept as they are."""
    module = make()
    monkeypatch.setenv("CBAM_COURSE_LANG", "zh")
    with pytest.raises(ValueError) as err:
        module(x)
    text = str(err.value)
    assert _chinese(text) and "expects" not in text and "built for" not in text, text
    assert all(piece in text for piece in kept), text
    monkeypatch.delenv("CBAM_COURSE_LANG")
    with pytest.raises(ValueError, match="expects|built for"):
        module(x)


def test_a_bad_argument_is_explained_in_chinese_with_the_switch(monkeypatch):
    monkeypatch.setenv("CBAM_COURSE_LANG", "zh")
    with pytest.raises(ValueError) as err:
        cc.ChannelAttention(8, ratio=16)
    assert _chinese(str(err.value)) and "ratio=16" in str(err.value) and "in_channels=8" in str(err.value)
