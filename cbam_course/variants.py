"""CBAM variants a learner meets: other arrangements, and other codebases' modules.

Lesson 04 compares them on the same input with matching weights:

- :class:`SpatialFirstCBAM` and :class:`ParallelCBAM`: the two arrangements the CBAM paper
  compares with channel-then-spatial (Woo et al. 2018, Table 3). They reuse the Day 50 lesson's
  ``ChannelAttention`` and ``SpatialAttention`` under the same names as :class:`~cbam_course.CBAM`,
  so a CBAM state_dict loads into them as it is.
- :class:`OfficialCBAM`: the module of the authors' code (github.com/Jongchan/attention-module,
  ``MODELS/cbam.py``), with its parameter names: biases in the MLP, BatchNorm after the 7x7
  convolution, and the channel pool stacked as ``[max, mean]``.
- :class:`TimmCBAM`: the layout of timm's ``CbamModule`` (``timm/layers/cbam.py``): the MLP as
  two 1x1 convolutions (``mlp_bias=False`` by default), a 7x7 convolution without bias followed by
  BatchNorm and no activation, the pool stacked as ``[mean, max]``, and the hidden width ``C / 16``
  rounded half up (timm's ``make_divisible``: ``int(C / 16 + 0.5)``, at least 1) rather than floored.

Both re-implementations are written here so the course needs no extra dependency; they keep the
originals' parameter names so their state_dicts line up. :func:`copy_cbam_weights` loads a
CBAM's weights into either, with the biases zeroed and BatchNorm set to the identity, which is
exactly when they compute the Day 50 lesson's function (in eval mode).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .attention import CBAM, ChannelAttention, SpatialAttention, check_input
from .i18n import tr

__all__ = [
    "SpatialFirstCBAM",
    "ParallelCBAM",
    "OfficialCBAM",
    "TimmCBAM",
    "copy_cbam_weights",
    "timm_hidden_channels",
    "CBAMBasicBlock",
]


class SpatialFirstCBAM(CBAM):
    """CBAM with the order swapped: spatial attention first, then channel attention.

    Same sub-modules and parameter names as :class:`~cbam_course.CBAM`; only ``forward`` differs.
    The paper reports 22.78% top-1 error for this order against 22.66% for channel-first
    (ImageNet, ResNet-50, Woo et al. 2018, Table 3).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.spatial_attention(x)
        x = self.channel_attention(x)
        return x


class ParallelCBAM(CBAM):
    """CBAM's parallel arrangement in this course's reading of the paper (Woo et al. 2018, arXiv v2, §4.1).

    The paper gives no equation for it, and the authors' code (Jongchan/attention-module) has none.
    §4.1 says only: "both attentions can be applied in parallel, then the outputs of the two
    attention modules are added and normalized with the sigmoid function". The course reads "the
    outputs" as the branches' logits, before their sigmoids, as in BAM's formula
    ``M(F) = sigma(M_c(F) + M_s(F))`` (Park et al., BMVC 2018, arXiv:1807.06514), where the two
    branches carry no sigmoid of their own. (BAM's released code multiplies the branches instead:
    ``att = 1 + F.sigmoid( self.channel_att(in_tensor) * self.spatial_att(in_tensor) )`` in
    ``BAM.forward``, ``MODELS/bam.py``.)

    So both branches look at the same input ``x``; the channel logits ``MLP(avg) + MLP(max)`` of shape
    ``(B, C, 1, 1)`` and the spatial logits ``conv([mean; max])`` of shape ``(B, 1, H, W)`` (each
    branch's ``logits``) are added, broadcast into a ``(B, C, H, W)`` map, and one sigmoid gates
    ``x``. The paper reports 22.95% top-1 error for its parallel model (ImageNet, ResNet-50, Table 3,
    one run), against 22.66% for channel-then-spatial and 22.80% for channel attention alone (Table 1).

    Same sub-modules and parameter names as :class:`~cbam_course.CBAM`, so a CBAM state_dict loads
    as it is. Its attention map is one ``(B, C, H, W)`` tensor, not a channel vector and a spatial
    map, and no sub-module's sigmoid runs: :func:`~cbam_course.record_attention` sees nothing here.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "ParallelCBAM", self.channel_attention.in_channels)
        return x * torch.sigmoid(self.channel_attention.logits(x) + self.spatial_attention.logits(x))


class CBAMBasicBlock(nn.Module):
    """ResNet's BasicBlock (ResNet-18/34) with CBAM where the official code puts it.

    ``relu(cbam(bn2(conv2(relu(bn1(conv1(x)))))) + shortcut(x))``: CBAM re-weights the residual
    branch after its second BatchNorm, before the addition, so the shortcut is never attenuated
    (github.com/Jongchan/attention-module, ``MODELS/model_resnet.py``, ``BasicBlock.forward``). The
    shortcut is the identity, or a 1x1 convolution with the stride and a BatchNorm when the shape
    changes. Lesson 04 uses it; exercise 04 asks for it.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, ratio: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.cbam = CBAM(out_channels, ratio)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:   # match the branch's shape
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.cbam(out)                          # attention re-weights the branch only
        return torch.relu(out + self.shortcut(x))     # then the shortcut is added


# ------------------------------------------------------------------------------------------------
# The authors' code (Jongchan/attention-module), same parameter names
# ------------------------------------------------------------------------------------------------

class _Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class _OfficialChannelGate(nn.Module):
    """Channel attention as in the official code: ``mlp = [Flatten, Linear, ReLU, Linear]``, biases on."""

    def __init__(self, gate_channels: int, reduction_ratio: int = 16) -> None:
        super().__init__()
        hidden = gate_channels // reduction_ratio
        self.mlp = nn.Sequential(
            _Flatten(),
            nn.Linear(gate_channels, hidden),
            nn.ReLU(),
            nn.Linear(hidden, gate_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(logits)[:, :, None, None]


class _OfficialBasicConv(nn.Module):
    """Conv (no bias) then BatchNorm (momentum 0.01), no ReLU: the official ``BasicConv(relu=False)``."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _OfficialSpatialGate(nn.Module):
    """Spatial attention as in the official code: pool stacked as ``[max, mean]``, conv, BN, sigmoid."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.spatial = _OfficialBasicConv(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class OfficialCBAM(nn.Module):
    """CBAM laid out as in the authors' code (github.com/Jongchan/attention-module).

    Differences from the Day 50 lesson's: the MLP's two Linear layers have biases; the 7x7 convolution is
    followed by BatchNorm; the channel pool is stacked ``[max, mean]`` (the Day 50 lesson: ``[mean, max]``).
    Parameter names match the official state_dicts (``ChannelGate.mlp.1.weight``,
    ``SpatialGate.spatial.conv.weight``, ``SpatialGate.spatial.bn.running_var``, ...).
    """

    def __init__(self, gate_channels: int, reduction_ratio: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        if gate_channels // reduction_ratio < 1:
            raise ValueError(tr("OfficialCBAM: reduction_ratio={ratio} leaves no hidden units for gate_channels="
                                "{channels}. Use a ratio of at most {channels}.", ratio=reduction_ratio,
                                channels=gate_channels))
        self.ChannelGate = _OfficialChannelGate(gate_channels, reduction_ratio)
        self.SpatialGate = _OfficialSpatialGate(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SpatialGate(self.ChannelGate(x))


# ------------------------------------------------------------------------------------------------
# timm's CbamModule, same parameter names
# ------------------------------------------------------------------------------------------------

def timm_hidden_channels(channels: int, rd_ratio: float = 1.0 / 16) -> int:
    """The MLP's hidden width in timm's ``CbamModule``: ``channels * rd_ratio`` rounded half up,
    at least 1 (timm's ``make_divisible(v, 1, round_limit=0.)``: ``max(1, int(v + 0.5))``; Python's
    ``round`` would round 2.5 to 2, timm gives 3). The Day 50 lesson floors instead
    (``channels // 16``), so the two differ for e.g. 24 channels: 2 against 1."""
    return max(1, int(channels * rd_ratio + 0.5))


class _TimmChannelAttn(nn.Module):
    def __init__(self, channels: int, rd_ratio: float, mlp_bias: bool) -> None:
        super().__init__()
        hidden = timm_hidden_channels(channels, rd_ratio)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=mlp_bias)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_avg = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        x_max = self.fc2(self.act(self.fc1(x.amax((2, 3), keepdim=True))))
        return x * torch.sigmoid(x_avg + x_max)


class _TimmConvNorm(nn.Module):
    """timm's ``ConvNormAct(2, 1, k, apply_act=False)``: conv without bias, BatchNorm, no activation."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _TimmSpatialAttn(nn.Module):
    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = _TimmConvNorm(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class TimmCBAM(nn.Module):
    """CBAM laid out as timm's ``CbamModule`` (``timm/layers/cbam.py``).

    The MLP is two 1x1 convolutions (biases only with ``mlp_bias=True``; off by default), the
    hidden width is :func:`timm_hidden_channels`, the 7x7 convolution has no bias and is followed
    by BatchNorm with no activation, and the pool is stacked ``[mean, max]`` like the Day 50 lesson's.
    Parameter names match timm's (``channel.fc1.weight``, ``spatial.conv.conv.weight``,
    ``spatial.conv.bn.weight``, ...).
    """

    def __init__(self, channels: int, rd_ratio: float = 1.0 / 16, spatial_kernel_size: int = 7,
                 mlp_bias: bool = False) -> None:
        super().__init__()
        self.channel = _TimmChannelAttn(channels, rd_ratio, mlp_bias)
        self.spatial = _TimmSpatialAttn(spatial_kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


# ------------------------------------------------------------------------------------------------
# Loading a CBAM's weights into the others
# ------------------------------------------------------------------------------------------------

def _identity_batchnorm(bn: nn.BatchNorm2d) -> None:
    """Make ``bn`` the identity in eval mode: ``(x - 0) / sqrt((1 - eps) + eps) * 1 + 0 = x``."""
    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)


def copy_cbam_weights(source: CBAM, target: nn.Module, swap_pool_order: bool = True) -> nn.Module:
    """Load a :class:`CBAM`'s weights (the Day 50 lesson's layout) into ``target`` so that both
    compute the same function.

    ``target`` is a :class:`CBAM` (or one of its re-arrangements), an :class:`OfficialCBAM` or a
    :class:`TimmCBAM` with the same channels, hidden width and kernel size. MLP biases are set to
    zero and BatchNorm to the identity (weight 1, bias 0, running mean 0, running variance
    ``1 - eps``); the equality holds in eval mode, where BatchNorm uses those running statistics.

    The official code stacks the pooled maps as ``[max, mean]``, the Day 50 lesson as ``[mean, max]``: the
    same function needs the convolution's two input channels swapped, which this does unless
    ``swap_pool_order=False`` (kept so a lesson can show what forgetting the swap does).
    Returns ``target``, switched to eval mode.
    """
    if not isinstance(source, CBAM):
        raise TypeError(tr("copy_cbam_weights: source must be a cbam_course.CBAM, got {got}.", got=type(source).__name__))
    ca: ChannelAttention = source.channel_attention
    sa: SpatialAttention = source.spatial_attention
    w0, w1, k = ca.fc[0].weight, ca.fc[2].weight, sa.conv.weight  # (C/r, C), (C, C/r), (1, 2, k, k)

    if isinstance(target, CBAM):
        target.load_state_dict(source.state_dict())
        return target.eval()

    if isinstance(target, OfficialCBAM):
        lin0, lin1 = target.ChannelGate.mlp[1], target.ChannelGate.mlp[3]
        conv, bn = target.SpatialGate.spatial.conv, target.SpatialGate.spatial.bn
        pairs = [(lin0.weight, w0), (lin1.weight, w1), (conv.weight, k.flip(1) if swap_pool_order else k)]
        biases = [lin0.bias, lin1.bias]
    elif isinstance(target, TimmCBAM):
        fc1, fc2 = target.channel.fc1, target.channel.fc2
        conv, bn = target.spatial.conv.conv, target.spatial.conv.bn
        pairs = [(fc1.weight, w0[:, :, None, None]), (fc2.weight, w1[:, :, None, None]), (conv.weight, k)]
        biases = [b for b in (fc1.bias, fc2.bias) if b is not None]
    else:
        raise TypeError(tr("copy_cbam_weights: don't know how to load a CBAM's weights into {got}; expected CBAM, "
                           "SpatialFirstCBAM, ParallelCBAM, OfficialCBAM or TimmCBAM.", got=type(target).__name__))
    for dst, src in pairs:
        if dst.shape != src.shape:
            raise ValueError(tr("copy_cbam_weights: {target} has a weight of shape {shape} where the CBAM has {cbam}. "
                                "Build both with the same channels, hidden width and kernel size (timm rounds the "
                                "hidden width: see timm_hidden_channels).", target=type(target).__name__,
                                shape=tuple(dst.shape), cbam=tuple(src.shape)))
    with torch.no_grad():
        for dst, src in pairs:
            dst.copy_(src)
        for b in biases:
            b.zero_()
    _identity_batchnorm(bn)
    return target.eval()
