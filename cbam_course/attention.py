"""Attention modules: CBAM's channel and spatial attention, CBAM itself, and SE.

Each module's ``weights`` method is the paper's formula and nothing else; ``forward`` checks the
input, computes the weights and multiplies them into the features. That is all the code that runs
when you call ``CBAM(64)(x)``. (The training code can swap in a faster implementation of the same
maths with :func:`cbam_course.fast.accelerate`; you never meet it unless you ask for it.)

The CBAM classes are the Day 50 lesson's, parameter for parameter: the same sub-module names
(``fc.0``, ``fc.2``, ``conv``), the same tensor shapes in the same order and no biases, so a
state_dict saved from that lesson's model loads here and gives the same outputs.

Each module keeps the attention it applied on its last forward in ``last_attention`` when its
``record`` flag is on (see :func:`record_attention`). Recording is off by default: it costs
nothing then, and forward always returns the re-weighted features, never the weights.

References:
    Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018, eq. (2) and (3).
    Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn

__all__ = ["ChannelAttention", "SpatialAttention", "CBAM", "SEBlock", "record_attention", "check_input"]


def check_channels(in_channels: int, ratio: int, who: str) -> None:
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


def check_kernel_size(kernel_size: int, who: str) -> None:
    """An odd, positive kernel: with padding k//2 only an odd one keeps the map's size."""
    if not isinstance(kernel_size, int) or kernel_size <= 0:
        raise ValueError(f"{who}: kernel_size must be a positive int, got {kernel_size!r}.")
    if kernel_size % 2 == 0:
        raise ValueError(
            f"{who}: kernel_size must be odd, got {kernel_size}. With padding k//2 an even "
            f"kernel makes the attention map one pixel larger than the feature map "
            f"(e.g. 32x32 -> 33x33). Use 3, 5 or 7."
        )


def check_input(x: torch.Tensor, who: str, channels: int | None = None, fix: str | None = None) -> None:
    """Say what was expected when the input is not a (batch, channels, height, width) tensor.

    ``channels``, if given, is the channel count ``who`` was built for; ``fix`` replaces the
    default advice for a wrong channel count."""
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
            f"(shape {tuple(x.shape)}). "
            + (fix or f"Build it with in_channels={x.shape[1]}, or check which layer feeds it.")
        )


class _Gate(nn.Module):
    """What every attention module here does with its weights: record them, then multiply."""

    def __init__(self) -> None:
        super().__init__()
        self.record = False
        self.last_attention: torch.Tensor | None = None

    def apply_weights(self, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """``x * attention`` (broadcast), keeping a detached copy of ``attention`` when recording."""
        if self.record:
            self.last_attention = attention.detach()
        return x * attention


class ChannelAttention(_Gate):
    """Channel attention: which channels matter ("what").

    ``Mc(F) = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F)))``: each channel is squeezed to two numbers
    (its spatial average and maximum), both go through one shared MLP ``C -> C/ratio -> C``, the
    results are added and a sigmoid turns the sum into per-channel weights in (0, 1).

    Shapes: input ``(B, C, H, W)``, weights ``(B, C, 1, 1)``, output ``(B, C, H, W)``.
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

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The channel weights ``Mc(x)``, shape ``(B, C, 1, 1)``, values in (0, 1)."""
        b, c = x.shape[:2]
        avg_out = self.fc(self.avg_pool(x).view(b, c))
        max_out = self.fc(self.max_pool(x).view(b, c))
        return self.sigmoid(avg_out + max_out).view(b, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "ChannelAttention", self.in_channels)
        return self.apply_weights(x, self.weights(x))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, ratio={self.ratio}"


class SpatialAttention(_Gate):
    """Spatial attention: which positions matter ("where").

    ``Ms(F) = sigmoid(conv_kxk([AvgPool_c(F); MaxPool_c(F)]))``: pool across channels (mean and
    max) into a 2-channel map, convolve it with one ``kernel_size x kernel_size`` filter (padding
    ``k//2`` keeps the size), and turn the result into a weight in (0, 1) per position.

    Shapes: input ``(B, C, H, W)``, map ``(B, 1, H, W)``, output ``(B, C, H, W)``.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        check_kernel_size(kernel_size, "SpatialAttention")
        self.kernel_size = kernel_size
        # Input channel 0 is the channel mean, channel 1 the channel max (the Day 50 lesson's order).
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial map ``Ms(x)``, shape ``(B, 1, H, W)``, values in (0, 1)."""
        avg_out = torch.mean(x, dim=1, keepdim=True)
        max_out, _ = torch.max(x, dim=1, keepdim=True)
        pooled = torch.cat([avg_out, max_out], dim=1)
        return self.sigmoid(self.conv(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "SpatialAttention")
        return self.apply_weights(x, self.weights(x))

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


class SEBlock(_Gate):
    """Squeeze-and-Excitation (Hu et al., 2018): channel attention from the average alone.

    Squeeze: global average pooling, ``(B, C, H, W) -> (B, C)``. Excitation: an MLP
    ``C -> C/ratio -> C`` with ReLU, then a sigmoid. Scale: multiply the input by the weights.
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

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The channel weights for ``x``, shape ``(B, C, 1, 1)``, values in (0, 1)."""
        b, c = x.shape[:2]
        return self.sigmoid(self.fc(self.avg_pool(x).view(b, c))).view(b, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "SEBlock", self.in_channels)
        return self.apply_weights(x, self.weights(x))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, ratio={self.ratio}"


@contextmanager
def record_attention(model: nn.Module) -> Iterator[dict[str, nn.Module]]:
    """Turn on ``record`` for every attention module in ``model`` for the ``with`` block.

    Yields ``{name: module}``; after a forward pass each module's ``last_attention`` holds the
    weights it applied (detached). Recording is switched off again on exit::

        with record_attention(model) as modules:
            model(images)
        spatial = modules["cbam1.spatial_attention"].last_attention   # (B, 1, H, W)
    """
    modules = {n: m for n, m in model.named_modules() if isinstance(m, _Gate)}
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
