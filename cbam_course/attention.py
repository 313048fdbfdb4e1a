"""Attention modules: CBAM's channel and spatial attention, CBAM itself, and SE.

The CBAM classes are the seed lesson's, parameter for parameter: the same sub-module names
(``fc.0``, ``fc.2``, ``conv``), the same tensor shapes in the same order and no biases, so a
state_dict saved from the seed loads here and gives the same outputs.

Each module keeps the attention it applied on its last forward in ``last_attention`` when its
``record`` flag is on (see :func:`record_attention`). Recording is off by default: it costs
nothing then, and forward always returns the re-weighted features, never the weights.

References:
    Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018.
    Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = [
    "ChannelAttention",
    "SpatialAttention",
    "CBAM",
    "SEBlock",
    "record_attention",
]


def _check_channels(in_channels: int, ratio: int, who: str) -> None:
    """Fail early, with a fix, on sizes that would build a broken MLP."""
    if not isinstance(in_channels, int) or in_channels <= 0:
        raise ValueError(f"{who}: in_channels must be a positive int, got {in_channels!r}.")
    if not isinstance(ratio, int) or ratio <= 0:
        raise ValueError(f"{who}: ratio must be a positive int, got {ratio!r}.")
    if in_channels // ratio < 1:
        raise ValueError(
            f"{who}: ratio={ratio} leaves no hidden units for in_channels={in_channels} "
            f"({in_channels} // {ratio} = 0). Use a ratio of at most {in_channels}, "
            f"or more channels."
        )


def _check_kernel_size(kernel_size: int, who: str) -> None:
    if not isinstance(kernel_size, int) or kernel_size <= 0:
        raise ValueError(f"{who}: kernel_size must be a positive int, got {kernel_size!r}.")
    if kernel_size % 2 == 0:
        raise ValueError(
            f"{who}: kernel_size must be odd, got {kernel_size}. With padding k//2 an even "
            f"kernel makes the attention map one pixel larger than the feature map "
            f"(e.g. 32x32 -> 33x33). Use 3, 5 or 7."
        )


def _check_input(x: torch.Tensor, who: str, channels: int | None = None) -> None:
    """Say what was expected when the input is not a (batch, channels, height, width) tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor, got {type(x).__name__}.")
    if x.dim() != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
        raise ValueError(
            f"{who} expects a 4-D input (batch, channels, height, width), "
            f"got shape {tuple(x.shape)}.{hint}"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{who} was built for {channels} channels but got an input with {x.shape[1]} "
            f"(shape {tuple(x.shape)}). Build it with in_channels={x.shape[1]}, or check "
            f"which layer feeds it."
        )


class ChannelAttention(nn.Module):
    """Channel attention: which channels matter ("what").

    Squeezes each channel to two numbers (its spatial average and maximum), passes both
    through one shared MLP ``C -> C/ratio -> C``, adds the results, and turns the sum into
    per-channel weights in (0, 1) with a sigmoid. The input is multiplied by those weights.

    Shapes: input ``(B, C, H, W)``, weights ``(B, C, 1, 1)``, output ``(B, C, H, W)``.
    """

    def __init__(self, in_channels: int, ratio: int = 16) -> None:
        super().__init__()
        _check_channels(in_channels, ratio, "ChannelAttention")
        self.in_channels = in_channels
        self.ratio = ratio
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        # One MLP shared by both descriptors; no biases, as in the seed.
        self.fc = nn.Sequential(
            nn.Linear(in_channels, in_channels // ratio, bias=False),
            nn.ReLU(),
            nn.Linear(in_channels // ratio, in_channels, bias=False),
        )
        self.sigmoid = nn.Sigmoid()
        self.record = False
        self.last_attention: torch.Tensor | None = None

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The channel weights for ``x``, shape ``(B, C, 1, 1)``, values in (0, 1)."""
        b, c = x.shape[:2]
        avg_out = self.fc(self.avg_pool(x).view(b, c))
        max_out = self.fc(self.max_pool(x).view(b, c))
        return self.sigmoid(avg_out + max_out).view(b, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, "ChannelAttention", self.in_channels)
        attention = self.weights(x)
        if self.record:
            self.last_attention = attention.detach()
        return x * attention

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, ratio={self.ratio}"


class SpatialAttention(nn.Module):
    """Spatial attention: which positions matter ("where").

    Pools across channels (mean and max) into a 2-channel map, convolves it with one
    ``kernel_size x kernel_size`` filter (padding ``k//2`` keeps the size), and turns the result
    into a per-position weight in (0, 1) with a sigmoid. The input is multiplied by that map.

    Shapes: input ``(B, C, H, W)``, map ``(B, 1, H, W)``, output ``(B, C, H, W)``.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        _check_kernel_size(kernel_size, "SpatialAttention")
        self.kernel_size = kernel_size
        # Input channel 0 is the channel mean, channel 1 the channel max (the seed's order).
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = nn.Sigmoid()
        self.record = False
        self.last_attention: torch.Tensor | None = None

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial map for ``x``, shape ``(B, 1, H, W)``, values in (0, 1)."""
        avg_out = torch.mean(x, dim=1, keepdim=True)
        max_out, _ = torch.max(x, dim=1, keepdim=True)
        pooled = torch.cat([avg_out, max_out], dim=1)
        return self.sigmoid(self.conv(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, "SpatialAttention")
        attention = self.weights(x)
        if self.record:
            self.last_attention = attention.detach()
        return x * attention

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class CBAM(nn.Module):
    """CBAM: channel attention, then spatial attention, applied in sequence.

    ``CBAM(x) = SpatialAttention(ChannelAttention(x))``; the output has the input's shape, so
    the module can follow any convolution block.

    On the CPU the same maths runs as one fused step (see ``_FusedCBAM`` below and
    ``docs/performance.md``): the same outputs and gradients, at about half of the plain
    path's extra time in a training step. Set ``fused = False`` on a module (or
    ``CBAM.fused = False`` for all) to run the plain two-module path instead, e.g. to step
    through it in a debugger.
    """

    fused: bool = True

    def __init__(self, in_channels: int, ratio: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel_attention = ChannelAttention(in_channels, ratio)
        self.spatial_attention = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _can_fuse(self, x):
            return _fused_cbam(self, x)
        x = self.channel_attention(x)
        x = self.spatial_attention(x)
        return x


class SEBlock(nn.Module):
    """Squeeze-and-Excitation (Hu et al., 2018): channel attention from the average alone.

    Squeeze: global average pooling, ``(B, C, H, W) -> (B, C)``. Excitation: an MLP
    ``C -> C/ratio -> C`` with ReLU, then a sigmoid. Scale: multiply the input by the weights.
    The MLP has biases, as in the paper's released models.
    """

    def __init__(self, in_channels: int, ratio: int = 16) -> None:
        super().__init__()
        _check_channels(in_channels, ratio, "SEBlock")
        self.in_channels = in_channels
        self.ratio = ratio
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(in_channels, in_channels // ratio),
            nn.ReLU(),
            nn.Linear(in_channels // ratio, in_channels),
        )
        self.sigmoid = nn.Sigmoid()
        self.record = False
        self.last_attention: torch.Tensor | None = None

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The channel weights for ``x``, shape ``(B, C, 1, 1)``, values in (0, 1)."""
        b, c = x.shape[:2]
        return self.sigmoid(self.fc(self.avg_pool(x).view(b, c))).view(b, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, "SEBlock", self.in_channels)
        attention = self.weights(x)
        if self.record:
            self.last_attention = attention.detach()
        return x * attention

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, ratio={self.ratio}"


# ---------------------------------------------------------------------------------------------
# The fused CBAM step: the same maths as ChannelAttention then SpatialAttention, made cheap.
#
# Why it exists. CBAM adds under 1% of the network's FLOPs, yet the plain modules above made a
# CPU training step about 1.4x as long: each of their ~10 element-wise operations reads and
# writes a whole (B, C, H, W) tensor, autograd adds as many again on the way back (zero-filled
# buffers for the max-pool gradients, materialised mean gradients), ``torch.max(dim=...)``
# with indices is ~30x slower than ``torch.amax``, and the backward of the 7x7 convolution from
# 2 channels to 1 is very slow in the default (NCHW) memory format. Here forward and backward
# are written out by hand: every big tensor is touched a few times, the maxima come from
# ``amax``, and the small convolution's backward runs in channels_last. It also runs under CPU
# autocast (bfloat16), where some of torch's reductions need the workarounds below.
#
# What is left: on this path a CBAM step still reads or writes each (B, C, H, W) tensor about
# 20 times, which eager PyTorch cannot fuse further; see docs/performance.md for the numbers.
#
# Gradients at ties: where several positions share a maximum, the gradient is split between
# them evenly (as ``torch.amax`` does); the seed's max-with-indices gives it all to one. Both
# are valid; in AttentionCNN the tied values are ReLU zeros, whose gradient ReLU discards.
# ---------------------------------------------------------------------------------------------


def _can_fuse(module: CBAM, x: torch.Tensor) -> bool:
    """Fuse on CPU tensors only (float32, float64, or bfloat16 under CPU autocast): on GPUs,
    and under torch.compile (which fuses the plain path itself), the plain modules are the
    better choice."""
    return (
        module.fused
        and isinstance(x, torch.Tensor)
        and x.dim() == 4
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64, torch.bfloat16)
        and not torch.compiler.is_compiling()
        and not torch.jit.is_scripting()
        and type(module.channel_attention) is ChannelAttention
        and type(module.spatial_attention) is SpatialAttention
        # hooks on the two sub-modules (e.g. to capture their outputs) need them to run
        and not any(m._forward_hooks or m._forward_pre_hooks
                    for m in (module.channel_attention, module.spatial_attention))
    )


def _fused_cbam(module: CBAM, x: torch.Tensor) -> torch.Tensor:
    ca_mod, sa_mod = module.channel_attention, module.spatial_attention
    _check_input(x, "ChannelAttention", ca_mod.in_channels)
    out, ca, sa = _FusedCBAM.apply(x, ca_mod.fc[0].weight, ca_mod.fc[2].weight, sa_mod.conv.weight)
    if ca_mod.record:
        ca_mod.last_attention = ca
    if sa_mod.record:
        sa_mod.last_attention = sa
    return out


# Reductions over channels (dim 1) or positions (dims 2, 3) of a (B, C, H, W) tensor. torch's
# own are fast in float32; in bfloat16 (CPU autocast) some of its CPU kernels are ~15x slower
# than a pass over the data should be (sums and means in any layout, amax over channels or
# positions in channels_last), so there sums become matrix products with a ones vector and
# maxima use the pooling kernel or a halving tree.


def _channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _sum(x: torch.Tensor, over_channels: bool) -> torch.Tensor:
    """``x.sum(1, keepdim=True)`` (B, 1, H, W) or ``x.sum((2, 3), keepdim=True)`` (B, C, 1, 1)."""
    b, c, h, w = x.shape
    dims = (1,) if over_channels else (2, 3)
    if x.dtype != torch.bfloat16 or not (x.is_contiguous() or _channels_last(x)):
        return x.sum(dims, keepdim=True)
    if x.is_contiguous():  # NCHW: (B, C, HW)
        flat = x.view(b, c, h * w)
        out = x.new_ones(1, c) @ flat if over_channels else flat @ x.new_ones(h * w, 1)
    else:  # channels_last: (B, HW, C)
        flat = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        out = flat @ x.new_ones(c, 1) if over_channels else x.new_ones(1, h * w) @ flat
    return out.view(b, 1, h, w) if over_channels else out.view(b, c, 1, 1)


def _amax(x: torch.Tensor, over_channels: bool) -> torch.Tensor:
    """``x.amax(1, keepdim=True)`` (B, 1, H, W) or ``x.amax((2, 3), keepdim=True)`` (B, C, 1, 1)."""
    if x.dtype != torch.bfloat16 or not _channels_last(x):
        return x.amax(1 if over_channels else (2, 3), keepdim=True)
    if not over_channels:
        return F.max_pool2d(x, x.shape[2:])
    t = x.permute(0, 2, 3, 1)  # (B, H, W, C), contiguous: halve the channels until one is left
    while t.shape[-1] > 1:
        n = t.shape[-1]
        half = torch.maximum(t[..., : n // 2], t[..., n // 2: n // 2 * 2])
        t = torch.cat([half, t[..., n // 2 * 2:]], dim=-1) if n % 2 else half
    return t.permute(0, 3, 1, 2)


def _mul_add(t: torch.Tensor, m: torch.Tensor, a: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``t * m + a`` for a full-size ``t`` and broadcast ``m`` and ``a``, into ``out`` (may be
    ``t``) or a new tensor. ``torch.addcmul(a, t, m)`` is one pass, but its CPU kernel is up to
    7x slower when ``a`` is broadcast along the innermost dimension in memory (W in NCHW, C in
    channels_last); there a multiply then an in-place add is faster."""
    if out is None:
        out = torch.empty_like(t)
    inner_broadcast = a.shape[1] == 1 if _channels_last(t) else a.shape[-1] == 1 < t.shape[-1]
    if inner_broadcast:
        return torch.mul(t, m, out=out).add_(a)
    return torch.addcmul(a, t, m, out=out)


def _add_max_grad(total: torch.Tensor, values: torch.Tensor, maxima: torch.Tensor, grad: torch.Tensor,
                  over_channels: bool, scratch: torch.Tensor) -> None:
    """Add the gradient of the max over channels or positions to ``total``: ``grad`` goes to
    the positions that hold the maximum, shared evenly between ties. The 0/1 mask is written
    as floats into ``scratch`` (boolean masks cost several times more here)."""
    hit = torch.eq(values, maxima, out=scratch)
    total.addcmul_(hit, grad / _sum(hit, over_channels))


class _FusedCBAM(torch.autograd.Function):
    """``out = y * sa`` with ``y = x * ca``: CBAM's forward and backward written out by hand.

    Inputs: x (B, C, H, W), the MLP weights w1 (C/r, C) and w2 (C, C/r), the conv weight
    (1, 2, k, k). Outputs: the features, and (detached) the channel weights (B, C, 1, 1)
    and the spatial map (B, 1, H, W) for ``record_attention``.
    """

    @staticmethod
    def forward(ctx, x, w1, w2, conv_w):
        # Under CPU autocast x arrives in bfloat16: compute in x's dtype, as autocast would.
        ctx.weight_dtype = w1.dtype
        with torch.autocast("cpu", enabled=False):
            return _FusedCBAM._forward(ctx, x, w1.to(x.dtype), w2.to(x.dtype), conv_w.to(x.dtype))

    @staticmethod
    def _forward(ctx, x, w1, w2, conv_w):
        b, c, hh, ww = x.shape
        # channel attention: both descriptors through the shared MLP as one (2B, C) batch
        avg, mx = _sum(x, over_channels=False) / (hh * ww), _amax(x, over_channels=False)
        d = torch.cat([avg, mx]).view(2 * b, c)
        h = torch.relu(d @ w1.t())
        z = h @ w2.t()
        ca = torch.sigmoid(z[:b] + z[b:]).view(b, c, 1, 1)
        y = x * ca
        # spatial attention: channel mean and max, the k x k conv, a sigmoid
        s = torch.cat([_sum(y, over_channels=True) / c, _amax(y, over_channels=True)], dim=1)
        sa = torch.sigmoid(F.conv2d(s, conv_w, padding=conv_w.shape[-1] // 2))
        out = y * sa
        ctx.save_for_backward(x, y, s, sa, ca, d, h, mx, w1, w2, conv_w)
        ctx.mark_non_differentiable(ca, sa)
        return out, ca, sa

    @staticmethod
    @once_differentiable
    def backward(ctx, g, _ca_grad, _sa_grad):
        x, y, s, sa, ca, d, h, mx, w1, w2, conv_w = ctx.saved_tensors
        b, c, hh, ww = x.shape
        g = g.contiguous(memory_format=torch.channels_last if _channels_last(x) else torch.contiguous_format)
        # out = y * sa: through the sigmoid and the k x k conv (channels_last is far faster)
        scratch = g * y  # one big buffer, reused for each product and mask below
        g_sa = _sum(scratch, over_channels=True)
        g_pre = g_sa * sa * (1 - sa)
        cl = torch.channels_last
        g_s, g_conv, _ = torch.ops.aten.convolution_backward(
            g_pre.contiguous(memory_format=cl), s.contiguous(memory_format=cl),
            conv_w.contiguous(memory_format=cl), None, (1, 1), (conv_w.shape[-1] // 2,) * 2,
            (1, 1), False, (0, 0), 1, (True, ctx.needs_input_grad[3], False))
        g_s = g_s.contiguous()
        # y: directly (g * sa), through the channel mean, through the channel max
        g_y = _mul_add(g, sa, g_s[:, :1] / c)
        _add_max_grad(g_y, y, s[:, 1:], g_s[:, 1:], over_channels=True, scratch=scratch)
        # y = x * ca: the channel weights, back through the sigmoid and the shared MLP
        g_ca = _sum(torch.mul(g_y, x, out=scratch), over_channels=False).view(b, c)
        g_z = g_ca * (ca * (1 - ca)).view(b, c)
        g_z2 = torch.cat([g_z, g_z])
        g_w2 = g_z2.t() @ h
        g_h = (g_z2 @ w2) * (h > 0)
        g_w1 = g_h.t() @ d
        g_d = g_h @ w1
        # x: directly (g_y * ca), through the spatial average, through the spatial max
        g_x = _mul_add(g_y, ca, (g_d[:b] / (hh * ww)).view(b, c, 1, 1), out=g_y)  # in place
        _add_max_grad(g_x, x, mx, g_d[b:].view(b, c, 1, 1), over_channels=False, scratch=scratch)
        dtype = ctx.weight_dtype
        return g_x, g_w1.to(dtype), g_w2.to(dtype), None if g_conv is None else g_conv.to(dtype)


_RECORDING = (ChannelAttention, SpatialAttention, SEBlock)


@contextmanager
def record_attention(model: nn.Module) -> Iterator[dict[str, nn.Module]]:
    """Turn on ``record`` for every attention module in ``model`` for the ``with`` block.

    Yields ``{name: module}``; after a forward pass each module's ``last_attention`` holds the
    weights it applied (detached). Recording is switched off again on exit::

        with record_attention(model) as modules:
            model(images)
        spatial = modules["cbam1.spatial_attention"].last_attention   # (B, 1, H, W)
    """
    modules = {n: m for n, m in model.named_modules() if isinstance(m, _RECORDING)}
    if not modules:
        raise ValueError(
            f"record_attention: {type(model).__name__} has no ChannelAttention, "
            f"SpatialAttention or SEBlock inside, so there is nothing to record."
        )
    for m in modules.values():
        m.record = True
    try:
        yield modules
    finally:
        for m in modules.values():
            m.record = False
