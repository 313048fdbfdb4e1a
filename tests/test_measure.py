import pytest
import torch
import torch.nn as nn

import cbam_course as cc
from cbam_course.models import conv_block


def test_count_parameters_counts_elements():
    assert cc.count_parameters(nn.Linear(10, 3)) == 33
    frozen = nn.Linear(4, 4)
    frozen.bias.requires_grad_(False)
    assert cc.count_parameters(frozen, trainable_only=True) == 16


def test_count_flops_of_a_convolution():
    conv = nn.Conv2d(2, 1, 7, padding=3, bias=False)
    # one multiply-add per weight per output pixel, 2 FLOPs each
    assert cc.count_flops(conv, torch.randn(1, 2, 16, 16)) == 2 * 2 * 49 * 16 * 16
    assert cc.count_flops(conv, torch.randn(1, 2, 16, 16), backward=True) > 2 * 2 * 49 * 16 * 16


def test_cbam_is_light_in_flops_next_to_its_block():
    x = torch.randn(1, 64, 32, 32)
    assert cc.count_flops(cc.CBAM(64), x) < 0.01 * cc.count_flops(conv_block(64, 64), x)


def test_compare_time_reports_every_module_and_ratios():
    x = torch.randn(2, 16, 8, 8)
    result = cc.compare_time({"cbam": cc.CBAM(16), "se": cc.SEBlock(16)}, x, backward=True, repeats=3, warmup=1)
    assert set(result.seconds) == {"cbam", "se"}
    assert all(s > 0 for s in result.seconds.values())
    assert result.ratio("cbam", "cbam") == 1.0
    assert "ms" in str(result)
    assert cc.time_forward(cc.CBAM(16), x, repeats=2, warmup=0) > 0
    with pytest.raises(ValueError):
        cc.compare_time({}, x)


def test_get_device_and_quick_mode(monkeypatch):
    assert cc.get_device("cpu").type == "cpu"
    assert cc.get_device().type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="not available"):
        cc.get_device("tpu")
    monkeypatch.setenv("CBAM_COURSE_QUICK", "1")
    assert cc.quick_mode()
    monkeypatch.setenv("CBAM_COURSE_QUICK", "0")
    assert not cc.quick_mode()


def test_seed_everything_repeats():
    cc.seed_everything(3)
    a = torch.randn(4)
    cc.seed_everything(3)
    assert torch.equal(a, torch.randn(4))


def test_photo_and_feature_stack():
    img = cc.load_photo(32)
    assert img.shape == (3, 32, 32) and 0 <= img.min() and img.max() <= 1
    stack = cc.feature_stack(img)
    assert stack.shape == (len(cc.FEATURE_NAMES), 32, 32)
    assert torch.allclose(stack.amax(dim=(1, 2)), torch.ones(len(cc.FEATURE_NAMES)))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        cc.feature_stack(torch.rand(1, 3, 8, 8))


def _cbam_flops(c: int, hw: int, r: int = 16, k: int = 7) -> int:
    """CBAM's counted FLOPs from its formula: the shared MLP on two descriptors (C -> C/r -> C, one
    multiply-add = 2 FLOPs) and the k x k convolution from 2 maps to 1 at every position."""
    return 2 * 2 * (c * (c // r)) * 2 + 2 * k * k * hw * 2


def test_count_flops_sees_cbams_matrix_products_and_convolution():
    """Pinned, so that a path that hides CBAM's work from FlopCounterMode (as the fused CPU path did:
    0 FLOPs, and lessons 04 and 06 showed CBAM as free) fails here."""
    x = torch.randn(1, 64, 32, 32)
    assert cc.count_flops(cc.CBAM(64), x) == _cbam_flops(64, 32 * 32) == 202_752
    assert cc.count_flops(cc.ChannelAttention(64), x) == 2_048
    assert cc.count_flops(cc.SEBlock(64), x) == 2 * (64 * 4) * 2 == 1_024
    image = torch.randn(1, 3, 32, 32)
    flops = {a: cc.count_flops(cc.AttentionCNN(attention=a, width=64), image) for a in cc.ATTENTIONS}
    assert flops["none"] == 305_533_952
    assert flops["cbam"] - flops["none"] == sum(_cbam_flops(c, hw) for c, hw in ((64, 1024), (128, 256), (256, 64)))
    assert flops["cbam"] > flops["se"] > flops["none"]
