"""The Day 50 lesson's CNN, with a choice of attention after each convolution block.

``AttentionCNN(attention="cbam", width=64)`` is the Day 50 lesson's ``CBAM_CNN``: the same modules, the
same parameter names, the same tensors in the same order (1,160,816 parameters). Its attention
slots are named after their kind (``cbam1``, ``se1``; ``attn1`` for none), so a state_dict
saved from that lesson's model loads as it is.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .attention import CBAM, SEBlock, check_input
from .i18n import N_, tr

__all__ = ["AttentionCNN", "ATTENTIONS", "conv_block"]

ATTENTIONS = ("none", "se", "cbam")
_SLOT_NAME = {"none": "attn", "se": "se", "cbam": "cbam"}


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by BatchNorm and ReLU (the Day 50 lesson's block)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def make_attention(kind: str, channels: int, ratio: int = 16) -> nn.Module:
    """The attention module called ``kind`` ("none", "se" or "cbam") for ``channels``."""
    if kind == "cbam":
        return CBAM(channels, ratio)
    if kind == "se":
        return SEBlock(channels, ratio)
    if kind == "none":
        return nn.Identity()
    raise ValueError(tr("Unknown attention {kind}: choose one of {choices}.", kind=repr(kind),
                        choices=", ".join(map(repr, ATTENTIONS))))


class AttentionCNN(nn.Module):
    """A VGG-like CNN for 32x32 images: three conv blocks, attention after each, a linear head.

    Blocks have ``width``, ``2*width`` and ``4*width`` channels. After blocks 1 and 2 a 2x2
    max-pool halves the resolution; after block 3 a global average pool feeds dropout (0.5)
    and the classifier.

    Args:
        num_classes: number of output logits.
        attention: "cbam" (the Day 50 lesson's), "se" or "none".
        width: channels of the first block; 64 is the Day 50 lesson's. Must be at least ``ratio`` (16)
            when attention is on, so the attention MLPs keep at least one hidden unit.
    """

    def __init__(self, num_classes: int = 10, attention: str = "cbam", width: int = 64) -> None:
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(tr("Unknown attention {kind}: choose one of {choices}.", kind=repr(attention),
                                choices=", ".join(map(repr, ATTENTIONS))))
        if not isinstance(width, int) or width <= 0:
            raise ValueError(tr("width must be a positive int, got {got}.", got=repr(width)))
        if not isinstance(num_classes, int) or num_classes <= 0:
            raise ValueError(tr("num_classes must be a positive int, got {got}.", got=repr(num_classes)))
        if attention != "none" and width < 16:
            raise ValueError(tr("width={width} is too narrow for {kind} attention with ratio 16: the first block's "
                                "MLP would have {width} // 16 = 0 hidden units. Use width >= 16.",
                                width=width, kind=repr(attention)))
        self.attention = attention
        self.width = width
        self.num_classes = num_classes
        name = _SLOT_NAME[attention]
        self._slots = tuple(f"{name}{i}" for i in (1, 2, 3))
        w = width
        # Registration order is the Day 50 lesson's: conv1, cbam1, pool1, conv2, cbam2, pool2, ...
        self.conv1 = conv_block(3, w)
        setattr(self, self._slots[0], make_attention(attention, w))
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = conv_block(w, 2 * w)
        setattr(self, self._slots[1], make_attention(attention, 2 * w))
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = conv_block(2 * w, 4 * w)
        setattr(self, self._slots[2], make_attention(attention, 4 * w))
        self.pool3 = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(4 * w, num_classes))

    def attention_modules(self) -> list[nn.Module]:
        """The three attention modules, in order (``nn.Identity`` when attention is "none")."""
        return [getattr(self, s) for s in self._slots]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, "AttentionCNN", channels=3, fix=N_("It takes RGB images, (batch, 3, height, width)."))
        a1, a2, a3 = self.attention_modules()
        x = self.pool1(a1(self.conv1(x)))
        x = self.pool2(a2(self.conv2(x)))
        x = self.pool3(a3(self.conv3(x)))
        x = x.flatten(1)
        return self.classifier(x)
