"""The fast subclasses that :func:`cbam_course.fast.accelerate` gives CBAM and SE modules.

Same parameters, same function, another ``forward``. Each falls back to the plain formula (its
parent class's ``forward``) wherever the fast path does not apply.
"""
from __future__ import annotations

import torch

from ..attention import CBAM, ChannelAttention, SEBlock, SpatialAttention, check_input
from .fused import Workspace, fused_cbam, mean_over_positions

__all__ = ["FastCBAM", "FastSEBlock", "compiled_loops"]


class FastCBAM(CBAM):
    """CBAM whose CPU forward and backward run as one fused step (``fused.py``), or as numba's
    compiled loops (``kernels.py``) for contiguous float32/float64 inputs when ``use_loops``
    and numba is installed with a thread pool that stays awake (``kernels.parallel_loops``)."""

    use_loops: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._can_fuse(x):
            return super().forward(x)
        ca_mod, sa_mod = self.channel_attention, self.spatial_attention
        check_input(x, "ChannelAttention", ca_mod.in_channels)
        weights = (ca_mod.fc[0].weight, ca_mod.fc[2].weight, sa_mod.conv.weight)
        kernels = compiled_loops() if self.use_loops else None
        if (kernels is not None and x.dtype in (torch.float32, torch.float64) and x.is_contiguous()
                and all(w.dtype == x.dtype for w in weights)):
            out, _, _ = kernels.compiled_cbam(x, *weights)
        else:
            workspace = self.__dict__.get("_workspace")
            if workspace is None:
                workspace = self._workspace = Workspace()
            out, _, _ = fused_cbam(x, *weights, workspace)
        return out

    def _can_fuse(self, x: torch.Tensor) -> bool:
        """Fuse 4-D CPU tensors (float32, float64, or bfloat16 under CPU autocast) only: on GPUs,
        and under torch.compile (which fuses the plain path itself), the plain modules are the
        better choice; hooks on the two halves or their sigmoids (to capture their outputs, as
        :func:`~cbam_course.record_attention` does) need them to run."""
        halves = (self.channel_attention, self.spatial_attention)
        return (isinstance(x, torch.Tensor) and x.dim() == 4 and x.device.type == "cpu"
                and x.dtype in (torch.float32, torch.float64, torch.bfloat16)
                and not torch.compiler.is_compiling() and not torch.jit.is_scripting()
                and type(halves[0]) is ChannelAttention and type(halves[1]) is SpatialAttention
                and not any(m._forward_hooks or m._forward_pre_hooks or m.sigmoid._forward_hooks for m in halves))


class FastSEBlock(SEBlock):
    """SE whose squeeze, under CPU bfloat16 autocast, is a matrix product: torch's bfloat16 average
    pool on the CPU is ~15x slower than a pass over the data should be. The same mean otherwise."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.bfloat16 or x.device.type != "cpu":
            return super().logits(x)
        b, c = x.shape[:2]
        return self.fc(mean_over_positions(x).view(b, c)).view(b, c, 1, 1)


_KERNELS: list = []  # [the kernels module, or None where they cannot run], filled on first use


def compiled_loops():
    """``cbam_course.fast.kernels``, imported on first use (numba takes a moment to load), or None
    where numba is not installed or has no thread pool for its loops (``kernels.parallel_loops``):
    then the PyTorch fused step runs, a little slower."""
    if not _KERNELS:
        try:
            from . import kernels
        except ImportError:
            kernels = None
        _KERNELS.append(kernels if kernels is not None and kernels.parallel_loops() else None)
    return _KERNELS[0]
