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

from .fused import Workspace, _sum, fused_cbam

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

    On the CPU the same maths runs as one fused step, with the same outputs and gradients at
    a fraction of the plain path's extra time in a training step (``docs/performance.md``):
    compiled loops (``cbam_course/kernels.py``, with numba) for contiguous float32 and float64
    inputs, hand-written PyTorch (``cbam_course/fused.py``) for the rest. Set ``fused = False``
    on a module (or ``CBAM.fused = False`` for all) to run the plain two-module path instead,
    e.g. to step through it in a debugger; ``compiled = False`` keeps the PyTorch one.
    """

    fused: bool = True
    compiled: bool = True

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
        b, c, h, w = x.shape
        if x.dtype == torch.bfloat16 and x.device.type == "cpu":  # CPU autocast: its average pool is ~15x slow
            squeezed = _sum(x, over_channels=False) / (h * w)  # the same mean, as a matrix product
        else:
            squeezed = self.avg_pool(x)
        return self.sigmoid(self.fc(squeezed.view(b, c))).view(b, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, "SEBlock", self.in_channels)
        attention = self.weights(x)
        if self.record:
            self.last_attention = attention.detach()
        return x * attention

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, ratio={self.ratio}"


# ---------------------------------------------------------------------------------------------
# On the CPU, CBAM.forward takes a fused path (cbam_course/fused.py): the same maths as the two
# modules above, with forward and backward written out by hand, because the plain modules made
# a CPU training step about 1.4x as long for under 1% of the FLOPs. It is only a speed-up: set
# ``CBAM.fused = False`` to step through the plain path; tests hold the two equal.
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
    weights = (ca_mod.fc[0].weight, ca_mod.fc[2].weight, sa_mod.conv.weight)
    kernels = _kernels() if module.compiled else None
    if (kernels is not None and x.dtype in (torch.float32, torch.float64) and x.is_contiguous()
            and all(w.dtype == x.dtype for w in weights)):
        out, ca, sa = kernels.compiled_cbam(x, *weights)
    else:
        workspace = module.__dict__.get("_workspace")
        if workspace is None:
            workspace = module._workspace = Workspace()
        out, ca, sa = fused_cbam(x, *weights, workspace)
    if ca_mod.record:
        ca_mod.last_attention = ca
    if sa_mod.record:
        sa_mod.last_attention = sa
    return out


_KERNELS: list = []  # [the kernels module, or None where they cannot run], filled on first use


def _kernels():
    """``cbam_course.kernels``, imported on first use (numba takes a moment to load), or None
    where numba is not installed or has no thread pool for its loops (``kernels.parallel_loops``):
    then the PyTorch fused step runs, a little slower."""
    if not _KERNELS:
        try:
            from . import kernels
        except ImportError:
            kernels = None
        _KERNELS.append(kernels if kernels is not None and kernels.parallel_loops() else None)
    return _KERNELS[0]


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
