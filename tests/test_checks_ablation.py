"""check_pooling_channel_attention (lesson 06, exercise c): right ablation modules pass, usual mistakes get their hint."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cbam_course import checks
from test_checks import assert_accepts, assert_rejects


class PoolingCA(nn.Module):
    """Right: nn.Linear layers, a flag for the max branch."""

    def __init__(self, in_channels, ratio=16, pooling="avg+max"):
        super().__init__()
        self.use_max = pooling == "avg+max"
        self.mlp = nn.Sequential(nn.Linear(in_channels, in_channels // ratio, bias=False), nn.ReLU(),
                                 nn.Linear(in_channels // ratio, in_channels, bias=False))

    def forward(self, x):
        logits = self.mlp(x.mean(dim=(2, 3)))
        if self.use_max:
            logits = logits + self.mlp(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(logits)[:, :, None, None]


class PoolingCAConv(nn.Module):
    """Right: 1x1 convolutions with biases, a list of pooling functions, torch.max."""

    def __init__(self, in_channels, ratio=16, pooling="avg+max"):
        super().__init__()
        if pooling not in ("avg", "avg+max"):
            raise ValueError(pooling)
        self.pools = [nn.AdaptiveAvgPool2d(1)] + ([nn.AdaptiveMaxPool2d(1)] if pooling == "avg+max" else [])
        self.fc1 = nn.Conv2d(in_channels, in_channels // ratio, 1)
        self.fc2 = nn.Conv2d(in_channels // ratio, in_channels, 1)

    def forward(self, x):
        total = sum(self.fc2(F.relu(self.fc1(pool(x)))) for pool in self.pools)
        return x * torch.sigmoid(total)


class _Base(PoolingCA):
    def attention(self, x):
        return torch.sigmoid(self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3))))[:, :, None, None]


class IgnoresSwitch(_Base):
    def forward(self, x):
        return x * self.attention(x)


class AvgTwiceInAvgMode(PoolingCA):
    def forward(self, x):
        second = x.amax(dim=(2, 3)) if self.use_max else x.mean(dim=(2, 3))
        return x * torch.sigmoid(self.mlp(x.mean(dim=(2, 3))) + self.mlp(second))[:, :, None, None]


class MaxOnlyInAvgMode(PoolingCA):
    def forward(self, x):
        logits = self.mlp(x.amax(dim=(2, 3)))
        if self.use_max:
            logits = logits + self.mlp(x.mean(dim=(2, 3)))
        return x * torch.sigmoid(logits)[:, :, None, None]


class SwitchInverted(PoolingCA):
    def __init__(self, in_channels, ratio=16, pooling="avg+max"):
        super().__init__(in_channels, ratio, pooling)
        self.use_max = pooling == "avg"


class WrongDefault(PoolingCA):
    def __init__(self, in_channels, ratio=16, pooling="avg"):
        super().__init__(in_channels, ratio, pooling)


class LightChannelAttnStyle(PoolingCA):
    def forward(self, x):
        pooled = x.mean(dim=(2, 3))
        if self.use_max:
            pooled = 0.5 * pooled + 0.5 * x.amax(dim=(2, 3))
        return x * torch.sigmoid(self.mlp(pooled))[:, :, None, None]


class SeparateMLPs(nn.Module):
    def __init__(self, in_channels, ratio=16, pooling="avg+max"):
        super().__init__()
        self.use_max = pooling == "avg+max"
        make = lambda: nn.Sequential(nn.Linear(in_channels, in_channels // ratio, bias=False), nn.ReLU(),  # noqa: E731
                                     nn.Linear(in_channels // ratio, in_channels, bias=False))
        self.avg_mlp, self.max_mlp = make(), make()

    def forward(self, x):
        logits = self.avg_mlp(x.mean(dim=(2, 3)))
        if self.use_max:
            logits = logits + self.max_mlp(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(logits)[:, :, None, None]


class NoGateInAvgMode(PoolingCA):
    def forward(self, x):
        if self.use_max:
            return super().forward(x)
        return x * self.mlp(x.mean(dim=(2, 3)))[:, :, None, None]


class ReturnsAttention(PoolingCA):
    def forward(self, x):
        return (super().forward(x) / x).expand_as(x)


class ScaledInAvgMode(PoolingCA):
    """Wrong in a way no hint names: the average-only attention times 0.9."""

    def forward(self, x):
        if self.use_max:
            return super().forward(x)
        return 0.9 * x * torch.sigmoid(self.mlp(x.mean(dim=(2, 3))))[:, :, None, None]


class RatioIgnored(nn.Module):
    def __init__(self, in_channels, ratio=16, pooling="avg+max"):
        super().__init__()
        self.inner = PoolingCA(in_channels, 16, pooling)

    def forward(self, x):
        return self.inner(x)


class StubForward(PoolingCA):
    def forward(self, x):
        raise NotImplementedError()


RIGHT = [PoolingCA, PoolingCAConv]
WRONG = [
    (IgnoresSwitch, "the switch is ignored"),
    (AvgTwiceInAvgMode, "average through the MLP twice"),
    (MaxOnlyInAvgMode, "only the max-pooled descriptor"),
    (SwitchInverted, "inverted"),
    (WrongDefault, "make the default pooling='avg+max'"),
    (LightChannelAttnStyle, "timm's LightChannelAttn"),
    (SeparateMLPs, "separate MLP"),
    (NoGateInAvgMode, "no gate"),
    (ReturnsAttention, "returns the attention map, not the re-weighted features"),
    (RatioIgnored, "ratio was ignored"),
    # The Day 50 lesson has no avg-only module: the message names the expected formula, not "the seed's".
    (ScaledInAvgMode, "differs from the expected channel attention without the max branch"),
]


@pytest.mark.parametrize("impl", RIGHT, ids=lambda c: c.__name__)
def test_right_ablation_module_passes(impl, capsys):
    assert_accepts(checks.check_pooling_channel_attention, impl, capsys)


@pytest.mark.parametrize("impl,hint", WRONG, ids=[c.__name__ for c, _ in WRONG])
def test_wrong_ablation_module_gets_its_hint(impl, hint):
    assert_rejects(checks.check_pooling_channel_attention, impl, hint)


def test_untouched_ablation_stub_is_not_done(capsys):
    assert checks.check_pooling_channel_attention(StubForward) is False
    assert "not done yet" in capsys.readouterr().out
