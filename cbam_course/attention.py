"""Attention modules: CBAM's channel and spatial attention, CBAM itself, and SE.

Each module's ``logits`` method is the paper's formula before its sigmoid, and ``forward`` ends
in the gate: ``return x * self.sigmoid(self.logits(x))``. That is all the code that runs when you
call ``CBAM(64)(x)``. (The training code can swap in a faster implementation of the same maths
with :func:`cbam_course.fast.accelerate`; you never meet it unless you ask for it.)

The CBAM classes are the Day 50 lesson's, parameter for parameter: the same sub-module names
(``fc.0``, ``fc.2``, ``conv``), the same tensor shapes in the same order and no biases, so a
state_dict saved from that lesson's model loads here and gives the same outputs.

To see the attention maps a network applies, run it inside :func:`record_attention`: each
module's ``last_attention`` then holds the map its sigmoid produced on the last forward. Nothing
is recorded otherwise, and forward always returns the re-weighted features, never the map.

References:
    Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018, eq. (2) and (3).
    Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn

from .i18n import tr

__all__ = ["ChannelAttention", "SpatialAttention", "CBAM", "SEBlock", "record_attention", "check_input"]


def check_channels(in_channels: int, ratio: int, who: str) -> None:
    """Fail early, with a fix, on sizes that would build a broken MLP."""
    if not isinstance(in_channels, int) or in_channels <= 0:
        raise ValueError(tr("{who}: in_channels must be a positive int, got {got}.", who=who, got=repr(in_channels)))
    if not isinstance(ratio, int) or ratio <= 0:
        raise ValueError(tr("{who}: ratio must be a positive int, got {got}.", who=who, got=repr(ratio)))
    if in_channels // ratio < 1:
        raise ValueError(tr("{who}: ratio={ratio} leaves no hidden units for in_channels={in_channels} "
                            "({in_channels} // {ratio} = 0). Use a ratio of at most {in_channels}, or more channels.",
                            who=who, ratio=ratio, in_channels=in_channels))


def check_kernel_size(kernel_size: int, who: str) -> None:
    """An odd, positive kernel: with padding k//2 only an odd one keeps the map's size."""
    if not isinstance(kernel_size, int) or kernel_size <= 0:
        raise ValueError(tr("{who}: kernel_size must be a positive int, got {got}.", who=who, got=repr(kernel_size)))
    if kernel_size % 2 == 0:
        raise ValueError(tr("{who}: kernel_size must be odd, got {got}. With padding k//2 an even kernel makes the "
                            "attention map one pixel larger than the feature map (e.g. 32x32 -> 33x33). Use 3, 5 or 7.",
                            who=who, got=kernel_size))


def check_input(x: torch.Tensor, who: str, channels: int | None = None, fix: str | None = None) -> None:
    """Say what was expected when the input is not a (batch, channels, height, width) tensor.

    ``channels``, if given, is the channel count ``who`` was built for; ``fix`` (marked ``N_``:
    translated here) replaces the default advice for a wrong channel count."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(tr("{who} expects a torch.Tensor, got {got}.", who=who, got=type(x).__name__))
    if x.dim() == 3:
        raise ValueError(tr("{who} expects a 4-D input (batch, channels, height, width), got shape {shape}. "
                            "Add a batch dimension with x.unsqueeze(0).", who=who, shape=tuple(x.shape)))
    if x.dim() != 4:
        raise ValueError(tr("{who} expects a 4-D input (batch, channels, height, width), got shape {shape}.",
                            who=who, shape=tuple(x.shape)))
    if channels is not None and x.shape[1] != channels:
        fix = tr(fix) if fix else tr("Build it with in_channels={got}, or check which layer feeds it.", got=x.shape[1])
        raise ValueError(tr("{who} was built for {channels} channels but got an input with {got} (shape {shape}). "
                            "{fix}", who=who, channels=channels, got=x.shape[1], shape=tuple(x.shape), fix=fix))


class ChannelAttention(nn.Module):
    """Channel attention: which channels matter ("what").

    ``Mc(F) = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F)))``: each channel is squeezed to two numbers
    (its spatial average and maximum), both go through one shared MLP ``C -> C/ratio -> C``, the
    results are added and a sigmoid turns the sum into one value in (0, 1) per channel.

    Shapes: input ``(B, C, H, W)``, attention map ``(B, C, 1, 1)``, output ``(B, C, H, W)``.
    """

    def __init__(self, in_channels: int, ratio: int = 16) -> None:
        super().__init__()
        check_channels(in_channels, ratio, "ChannelAttention")
        self.in_channels = in_channels
        self.ratio = ratio
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        # One MLP shared by both descriptors; no biases, as in the Day 50 lesson.
        self.fc = nn.Sequential(
            nn.Linear(in_channels, in_channels // ratio, bias=False),
            nn.ReLU(),
            nn.Linear(in_channels // ratio, in_channels, bias=False),
        )
        self.sigmoid = nn.Sigmoid()
        self.last_attention: torch.Tensor | None = None  # filled by record_attention

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``MLP(AvgPool(x)) + MLP(MaxPool(x))``, shape ``(B, C, 1, 1)``: ``Mc(x)`` before its sigmoid."""
        b, c = x.shape[:2]
        avg_out = self.fc(self.avg_pool(x).view(b, c))
        max_out = self.fc(self.max_pool(x).view(b, c))
        return (avg_out + max_out).view(b, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "ChannelAttention", self.in_channels)
        return x * self.sigmoid(self.logits(x))  # F' = Mc(F) * F

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, ratio={self.ratio}"


class SpatialAttention(nn.Module):
    """Spatial attention: which positions matter ("where").

    ``Ms(F) = sigmoid(conv_kxk([AvgPool_c(F); MaxPool_c(F)]))``: pool across channels (mean and
    max) into a 2-channel map, convolve it with one ``kernel_size x kernel_size`` filter (padding
    ``k//2`` keeps the size), and turn the result into one value in (0, 1) per position.

    Shapes: input ``(B, C, H, W)``, map ``(B, 1, H, W)``, output ``(B, C, H, W)``.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        check_kernel_size(kernel_size, "SpatialAttention")
        self.kernel_size = kernel_size
        # Input channel 0 is the channel mean, channel 1 the channel max (the Day 50 lesson's order).
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = nn.Sigmoid()
        self.last_attention: torch.Tensor | None = None  # filled by record_attention

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``conv([AvgPool_c(x); MaxPool_c(x)])``, shape ``(B, 1, H, W)``: ``Ms(x)`` before its sigmoid."""
        avg_out = torch.mean(x, dim=1, keepdim=True)
        max_out, _ = torch.max(x, dim=1, keepdim=True)
        return self.conv(torch.cat([avg_out, max_out], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "SpatialAttention")
        return x * self.sigmoid(self.logits(x))  # F'' = Ms(F') * F'  (x is F')

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class CBAM(nn.Module):
    """CBAM: channel attention, then spatial attention, applied in sequence (the paper's eq. 1).

    ``F' = Mc(F) * F`` and ``F'' = Ms(F') * F'``; the output has the input's shape, so the module
    can follow any convolution block.
    """

    def __init__(self, in_channels: int, ratio: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel_attention = ChannelAttention(in_channels, ratio)
        self.spatial_attention = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.channel_attention(x)
        x = self.spatial_attention(x)
        return x


class SEBlock(nn.Module):
    """Squeeze-and-Excitation (Hu et al., 2018): channel attention from the average alone.

    Squeeze: global average pooling, ``(B, C, H, W) -> (B, C)``. Excitation: an MLP
    ``C -> C/ratio -> C`` with ReLU, then a sigmoid. Scale: multiply the input by the result.
    The MLP has biases, as in the paper's released models.
    """

    def __init__(self, in_channels: int, ratio: int = 16) -> None:
        super().__init__()
        check_channels(in_channels, ratio, "SEBlock")
        self.in_channels = in_channels
        self.ratio = ratio
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(in_channels, in_channels // ratio),
            nn.ReLU(),
            nn.Linear(in_channels // ratio, in_channels),
        )
        self.sigmoid = nn.Sigmoid()
        self.last_attention: torch.Tensor | None = None  # filled by record_attention

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Squeeze and excitation before the sigmoid: ``FC(ReLU(FC(AvgPool(x))))``, shape ``(B, C, 1, 1)``."""
        b, c = x.shape[:2]
        return self.fc(self.avg_pool(x).view(b, c)).view(b, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "SEBlock", self.in_channels)
        return x * self.sigmoid(self.logits(x))  # scale

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, ratio={self.ratio}"


ATTENTION_MODULES = (ChannelAttention, SpatialAttention, SEBlock)


@contextmanager
def record_attention(model: nn.Module) -> Iterator[dict[str, nn.Module]]:
    """Record the attention maps of every attention module in ``model`` for the ``with`` block.

    Yields ``{name: module}``; after a forward pass each module's ``last_attention`` holds the map
    its sigmoid produced (detached). It works with a forward hook on each module's ``sigmoid``, so
    ``forward`` stays the formula; the hooks are removed on exit::

        with record_attention(model) as modules:
            model(images)
        spatial = modules["cbam1.spatial_attention"].last_attention   # (B, 1, H, W)
    """
    modules = {n: m for n, m in model.named_modules() if isinstance(m, ATTENTION_MODULES)}
    if not modules:
        raise ValueError(tr("record_attention: {model} has no ChannelAttention, SpatialAttention or SEBlock inside, "
                            "so there is nothing to record.", model=type(model).__name__))

    def keep(owner: nn.Module):
        def hook(_sigmoid: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            owner.last_attention = output.detach()
        return hook

    handles = [m.sigmoid.register_forward_hook(keep(m)) for m in modules.values()]
    try:
        yield modules
    finally:
        for handle in handles:
            handle.remove()
