"""A real photograph, and a small stack of feature maps made from it that a learner can read.

Lessons 01-04 need something real to attend to before any network is trained. matplotlib ships
a photograph of Grace Hopper in its sample data; :func:`feature_stack` turns it into channels
whose meaning is known (colours, brightness, edges, blur), so the attention maps can be read.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .i18n import N_, tr

__all__ = ["load_photo", "feature_stack", "FEATURE_NAMES"]

FEATURE_NAMES = (
    N_("red"), N_("green"), N_("blue"), N_("brightness"),  # N_: the figures show them in the learner's language
    N_("vertical edges"), N_("horizontal edges"), N_("edge strength"), N_("blur"),
)


def load_photo(size: int = 128) -> torch.Tensor:
    """matplotlib's sample photograph (Grace Hopper) as a float tensor ``(3, size, size)`` in [0, 1].

    The photo is centre-cropped to a square, then resized with antialiasing.
    """
    if not isinstance(size, int) or size < 8:
        raise ValueError(tr("size must be an int of at least 8, got {got}.", got=repr(size)))
    import matplotlib.cbook as cbook  # here, not at the top: `import cbam_course` stays quick

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    img = torch.from_numpy(arr).permute(2, 0, 1)  # (3, H, W)
    h, w = img.shape[1:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = img[:, top:top + s, left:left + s]
    img = F.interpolate(img[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return img.clamp(0, 1)


def feature_stack(image: torch.Tensor) -> torch.Tensor:
    """Eight hand-made feature maps of ``image`` ``(3, H, W)``, as ``(8, H, W)``.

    The channels, in the order of :data:`FEATURE_NAMES`: red, green, blue, brightness,
    vertical edges and horizontal edges (Sobel, absolute value), edge strength, and a 5x5 blur
    of the brightness. Each channel is scaled to [0, 1] so that channels compare fairly.
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(tr("feature_stack expects an RGB image of shape (3, H, W), got {shape}.", shape=tuple(image.shape)))
    gray = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None, None]
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel_x, sobel_x.T])[:, None]  # (2, 1, 3, 3)
    edges = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels).abs()[0]
    strength = edges.square().sum(0, keepdim=True).sqrt()
    blur = F.avg_pool2d(F.pad(gray, (2, 2, 2, 2), mode="replicate"), 5, stride=1)[0]
    stack = torch.cat([image, gray[0], edges, strength, blur])
    lo = stack.amin(dim=(1, 2), keepdim=True)
    hi = stack.amax(dim=(1, 2), keepdim=True)
    return (stack - lo) / (hi - lo).clamp_min(1e-8)
