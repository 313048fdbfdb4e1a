"""Figures the lessons share: feature maps, channel values, attention overlays, diagrams.

Conventions, so that every figure can be tested headless (``MPLBACKEND=Agg``) and reused:

- A function that draws on one set of axes takes ``ax=None`` (a new figure is made when it is
  None) and returns the ``Axes``; a function that draws a grid returns the ``Figure``.
- Every figure has a title, and every plot that has axes has labelled axes.
- Inputs may be torch tensors or NumPy arrays; shapes are checked and a wrong shape gets an
  error that says which shape was expected and how to get it.
- Nothing here calls ``plt.show()``: Jupyter shows the figure at the end of the cell.

The module is organised by lesson (01-04). Add new figures to the section of the lesson that
first uses them, and reuse the helpers at the top (``_to_numpy``, ``_new_axes``). Figures of
trained networks (lessons 05-06) are in ``cbam_course/train/figures.py``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .i18n import N_, figure_text, tr
from .images import FEATURE_NAMES

__all__ = [
    "panel_grid",
    "show_image",
    "show_feature_stack",
    "plot_channel_values",
    "overlay_attention",
    "plot_data_flow",
    "plot_receptive_field",
]


# --------------------------------------------------------------------------------------------
# Helpers shared by every section
# --------------------------------------------------------------------------------------------

def _to_numpy(x: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    """A float NumPy copy of ``x`` (detached and moved to the CPU when it is a tensor)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax`` itself, or the axes of a new figure of ``figsize`` when ``ax`` is None."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def panel_grid(n: int, ncols: int, panel: tuple[float, float], margin: tuple[float, float] = (0.4, 0.4),
               rows_per_item: int = 1) -> tuple[Figure, list[list[Axes]]]:
    """A figure of ``n`` items, ``ncols`` to a row, each item ``rows_per_item`` panels stacked; every
    panel ``panel`` inches (plus ``margin`` for the whole figure), ticks off, unused panels hidden.
    Returns the figure and, per item, its panels from top to bottom: the one grid layout of the
    course's image figures."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(rows_per_item * nrows, ncols, squeeze=False, constrained_layout=True,
                             figsize=(panel[0] * ncols + margin[0], panel[1] * rows_per_item * nrows + margin[1]))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    items = [[axes[(k // ncols) * rows_per_item + r, k % ncols] for r in range(rows_per_item)] for k in range(n)]
    for k in range(n, nrows * ncols):
        for r in range(rows_per_item):
            axes[(k // ncols) * rows_per_item + r, k % ncols].set_visible(False)
    return fig, items


def _image_hw3(image: torch.Tensor | np.ndarray, who: str) -> np.ndarray:
    """An RGB image ``(3, H, W)`` as an ``(H, W, 3)`` array in [0, 1], for ``imshow``."""
    arr = _to_numpy(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[0] != 3 and arr.shape[-1] == 3:
        raise ValueError(tr("{who} expects an RGB image of shape (3, H, W), got {shape}. It looks channels-last: pass "
                            "image.permute(2, 0, 1) (or np.transpose(image, (2, 0, 1))).", who=who, shape=tuple(arr.shape)))
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ValueError(tr("{who} expects an RGB image of shape (3, H, W), got {shape}.", who=who, shape=tuple(arr.shape)))
    return np.clip(arr.transpose(1, 2, 0), 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Lessons 01-02: the photograph, its feature stack, channel descriptors and attention
# --------------------------------------------------------------------------------------------

def show_image(image: torch.Tensor | np.ndarray, ax: Axes | None = None,
               title: str = N_("Input image")) -> Axes:
    """Show an RGB image ``(3, H, W)`` with values in [0, 1], with pixel axes labelled."""
    ax = _new_axes(ax, (4, 4))
    arr = _image_hw3(image, "show_image")
    ax.imshow(arr)
    ax.set_title(figure_text(title))
    ax.set_xlabel(figure_text("x (pixels)"))
    ax.set_ylabel(figure_text("y (pixels)"))
    return ax


def show_feature_stack(stack: torch.Tensor | np.ndarray, names: Sequence[str] | None = None,
                       title: str = N_("Feature maps: one channel per panel"), ncols: int = 4,
                       cmap: str = "gray", vmin: float | None = 0.0,
                       vmax: float | None = 1.0) -> Figure:
    """A feature stack ``(C, H, W)`` (or ``(1, C, H, W)``) as a labelled grid, one panel per channel.

    ``names`` defaults to :data:`cbam_course.images.FEATURE_NAMES` when the stack has that many
    channels, else to ``channel 0``, ``channel 1``, ... Every panel shares one colour scale
    (``vmin``/``vmax``; pass None for each panel's own range) and the figure gets a colourbar,
    so brightness compares across channels.
    """
    arr = _to_numpy(stack)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3:
        raise ValueError(tr("show_feature_stack expects a stack of shape (C, H, W) or (1, C, H, W), got {shape}. "
                            "For a batch, pick one image: stack[0].", shape=tuple(arr.shape)))
    c = arr.shape[0]
    if names is None:
        names = FEATURE_NAMES if c == len(FEATURE_NAMES) else [figure_text("channel {i}", i=i) for i in range(c)]
    if len(names) != c:
        raise ValueError(tr("show_feature_stack got {n} names for {c} channels; give one name per channel.",
                            n=len(names), c=c))
    if ncols < 1:
        raise ValueError(tr("ncols must be at least 1, got {got}.", got=ncols))
    fig, items = panel_grid(c, ncols, panel=(2.4, 2.5), margin=(0.8, 0.4))
    ncols, nrows = min(ncols, c), -(-c // min(ncols, c))
    im = None
    for i, (ax,) in enumerate(items):
        im = ax.imshow(arr[i], cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(f"{i}: {figure_text(names[i])}", fontsize=10)
        if i % ncols == 0:
            ax.set_ylabel("y")
        if i // ncols == nrows - 1 or i + ncols >= c:
            ax.set_xlabel("x")
    fig.suptitle(figure_text(title))
    if im is not None:
        fig.colorbar(im, ax=fig.axes, shrink=0.8, label=figure_text("value"))
    return fig


def plot_channel_values(values: torch.Tensor | np.ndarray | Mapping[str, torch.Tensor | np.ndarray],
                        names: Sequence[str] | None = None, ax: Axes | None = None,
                        title: str = N_("Channel attention"), ylabel: str = N_("attention"),
                        ylim: tuple[float, float] | None = None) -> Axes:
    """A bar chart of one value per channel, labelled with the channel names.

    ``values`` is one series ``(C,)`` (also ``(1, C)`` or ``(1, C, 1, 1)``, the shape of a channel
    attention map for one image), or a dict ``{label: series}`` to draw several series side by
    side (e.g. the average- and the max-pooled descriptors). ``names`` defaults to
    :data:`FEATURE_NAMES` for 8 channels.
    """
    series = dict(values) if isinstance(values, Mapping) else {"": values}
    if not series:
        raise ValueError(tr("plot_channel_values got an empty dict; give at least one series."))
    bars: dict[str, np.ndarray] = {}
    for label, v in series.items():
        arr = _to_numpy(v)
        if arr.ndim > 1 and arr.size == max(arr.shape):
            arr = arr.reshape(-1)  # (1, C), (1, C, 1, 1), (C, 1, 1) -> (C,)
        if arr.ndim != 1:  # not reshaped above: arr has the shape it came with
            raise ValueError(tr("plot_channel_values expects one value per channel, shape (C,) or (1, C, 1, 1), got "
                                "{shape} for {label}. For a batch, pick one image: values[0].", shape=tuple(arr.shape),
                                label=repr(label)) if label else
                             tr("plot_channel_values expects one value per channel, shape (C,) or (1, C, 1, 1), got "
                                "{shape}. For a batch, pick one image: values[0].", shape=tuple(arr.shape)))
        bars[label] = arr
    sizes = {a.shape[0] for a in bars.values()}
    if len(sizes) != 1:
        raise ValueError(tr("plot_channel_values: the series have different lengths {sizes}.", sizes=sorted(sizes)))
    c = sizes.pop()
    if names is None:
        names = FEATURE_NAMES if c == len(FEATURE_NAMES) else [figure_text("ch {i}", i=i) for i in range(c)]
    if len(names) != c:
        raise ValueError(tr("plot_channel_values got {n} names for {c} channels; give one name per channel.",
                            n=len(names), c=c))

    own_figure = ax is None
    ax = _new_axes(ax, (max(5.0, 0.7 * c + 1.5), 3.5))
    x = np.arange(c)
    width = 0.8 / len(bars)
    for k, (label, arr) in enumerate(bars.items()):
        offset = (k - (len(bars) - 1) / 2) * width
        ax.bar(x + offset, arr, width=width, label=label or None)
    ax.set_xticks(x)
    ax.set_xticklabels([figure_text(n) for n in names], rotation=30, ha="right")
    ax.set_xlabel(figure_text("channel"))
    ax.set_ylabel(figure_text(ylabel))
    ax.set_title(figure_text(title))
    if ylim is not None:
        ax.set_ylim(*ylim)
    if len(bars) > 1 or next(iter(bars)):
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)  # outside: never hides a bar
    ax.grid(axis="y", alpha=0.3)
    if own_figure:  # leave the layout of a caller's figure alone
        ax.figure.tight_layout()
    return ax


def overlay_attention(image: torch.Tensor | np.ndarray, attention: torch.Tensor | np.ndarray,
                      ax: Axes | None = None, title: str = N_("Spatial attention on the image"),
                      cmap: str = "jet", alpha: float = 0.5, colorbar: bool = True,
                      vmin: float | None = None, vmax: float | None = None) -> Axes:
    """Draw an attention map over an RGB image, with a colourbar.

    ``image`` is ``(3, H, W)`` in [0, 1]; ``attention`` is ``(h, w)`` or ``(1, h, w)`` (also
    ``(1, 1, h, w)``, as a module records it for a batch of one). A map smaller than the image
    (it came from a deeper layer) is upsampled bilinearly to ``H x W`` first.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(tr("alpha must be in [0, 1], got {alpha}.", alpha=alpha))
    rgb = _image_hw3(image, "overlay_attention")
    att = _to_numpy(attention)
    given = tuple(att.shape)
    while att.ndim > 2 and att.shape[0] == 1:
        att = att[0]
    if att.ndim != 2:
        raise ValueError(tr("overlay_attention expects an attention map of shape (H, W) or (1, H, W), got {given}. "
                            "A spatial attention map of a batch is (B, 1, H, W): pass one of them, e.g. attention[0]. "
                            "A channel attention map (C, 1, 1) is not a spatial map: plot it with plot_channel_values.",
                            given=given))
    h, w = rgb.shape[:2]
    if att.shape != (h, w):
        att = F.interpolate(torch.from_numpy(att)[None, None], size=(h, w), mode="bilinear",
                            align_corners=False)[0, 0].numpy()
    ax = _new_axes(ax, (5, 4))
    ax.imshow(rgb)
    im = ax.imshow(att, cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label=figure_text("attention"))
    ax.set_title(figure_text(title))
    ax.set_xlabel(figure_text("x (pixels)"))
    ax.set_ylabel(figure_text("y (pixels)"))
    return ax


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, color: str) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                facecolor=color, edgecolor="black", linewidth=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], text: str = "",
           text_offset: float = 0.11, connectionstyle: str = "arc3") -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, linewidth=1.2,
                                 color="black", connectionstyle=connectionstyle))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + text_offset, text,
                ha="center", va="bottom", fontsize=8, color="dimgray")


def plot_data_flow(kind: str = "cbam", channels: int = 64, height: int = 32, width: int = 32,
                   ratio: int = 16, kernel_size: int = 7, ax: Axes | None = None,
                   title: str | None = None) -> Axes:
    """The data flow through CBAM (or SE) as a diagram, with the tensor shapes on the arrows.

    CBAM: input ``F (C, H, W)`` -> channel attention gives ``Mc (C, 1, 1)`` -> ``F' = Mc * F`` ->
    spatial attention gives ``Ms (1, H, W)`` -> ``F'' = Ms * F'`` (the output, same shape as the
    input). ``kind="se"`` draws the Squeeze-and-Excitation block, which has only the channel step
    and sees only the channel averages. The defaults are the Day 50 lesson's first CBAM (64 channels,
    32x32 CIFAR-10 maps, ratio 16, 7x7 kernel).
    """
    kind = kind.lower()
    if kind not in ("cbam", "se"):
        raise ValueError(tr("plot_data_flow: kind must be 'cbam' or 'se', got {kind}.", kind=repr(kind)))
    for name, value in (("channels", channels), ("height", height), ("width", width),
                        ("ratio", ratio), ("kernel_size", kernel_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(tr("plot_data_flow: {name} must be a positive int, got {got}.", name=name, got=repr(value)))
    c, h, w, hidden = channels, height, width, max(channels // ratio, 1)
    fmap = f"{c}x{h}x{w}"

    # A multiplication's box starts with "x  " in every language (the skip paths below are found by it).
    steps: list[tuple[str, str, str]] = [(figure_text("input\nfeature map F\n{fmap}", fmap=fmap), "#dddddd", "")]
    if kind == "cbam":
        steps += [
            (figure_text("channel attention\navg + max pool\nshared MLP\n{c}->{hidden}->{c}\nsigmoid", c=c,
                         hidden=hidden), "#9ecae1", fmap),
            (f"x  Mc\n({c}x1x1)", "#ffffff", f"Mc: {c}x1x1"),
            (figure_text("spatial attention\nmean + max\nover channels\n{k}x{k} conv\nsigmoid", k=kernel_size),
             "#fdae6b", f"F' {fmap}"),
            (f"x  Ms\n(1x{h}x{w})", "#ffffff", f"Ms: 1x{h}x{w}"),
            (figure_text("output\nrefined F''\n{fmap}", fmap=fmap), "#dddddd", f"F'' {fmap}"),
        ]
        default_title = N_("CBAM data flow: channel attention ('what'), then spatial attention ('where')")
    else:
        steps += [
            (figure_text("SE: squeeze\navg pool only\nMLP {c}->{hidden}->{c}\nsigmoid", c=c, hidden=hidden),
             "#9ecae1", fmap),
            (figure_text("x  attention\n({c}x1x1)", c=c), "#ffffff", f"{c}x1x1"),
            (figure_text("output\n{fmap}", fmap=fmap), "#dddddd", fmap),
        ]
        default_title = N_("SE data flow: channel attention only ('what'), no 'where'")

    ax = _new_axes(ax, (2.3 * len(steps) + 0.5, 3.2))
    spacing, bw, bh = 1.45, 0.9, 0.66
    xs = [i * spacing for i in range(len(steps))]
    for x, (text, color, _) in zip(xs, steps):
        _box(ax, x, 0.0, bw, bh, text, color)
    for i in range(1, len(steps)):
        _arrow(ax, (xs[i - 1] + bw / 2, 0.0), (xs[i] - bw / 2, 0.0), steps[i][2], text_offset=0.03)
    # The skip paths: each multiplication re-weights the tensor that entered its attention step.
    mult_steps = [i for i, s in enumerate(steps) if s[0].startswith("x  ")]
    skip_y = -bh / 2 - 0.17
    for i in mult_steps:
        start, end = xs[i - 2] + 0.15, xs[i] - 0.15
        ax.plot([start, start, end], [-bh / 2, skip_y, skip_y], color="black", linewidth=1.2)
        _arrow(ax, (end, skip_y), (end, -bh / 2))
    ax.text(xs[-1] / 2, -0.78, figure_text("lower arrows: the features that get multiplied by the attention"),
            ha="center", va="center", fontsize=8, color="dimgray")
    ax.set_xlim(xs[0] - bw / 2 - 0.1, xs[-1] + bw / 2 + 0.1)
    ax.set_ylim(-0.9, 0.5)
    ax.set_aspect("auto")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel(figure_text("data flow, left to right (shapes are channels x height x width, batch left out)"))
    ax.set_ylabel(kind.upper())
    ax.set_title(figure_text(title if title is not None else default_title))
    return ax


# --------------------------------------------------------------------------------------------
# Lessons 03-04: spatial attention and the full CBAM (add figures here)
# --------------------------------------------------------------------------------------------

def plot_receptive_field(image: torch.Tensor | np.ndarray, influence: torch.Tensor | np.ndarray,
                         centre: tuple[int, int], zoom: int = 7,
                         title: str = N_("Which pixels decide one attention value")) -> Figure:
    """Where one spatial-attention value looks: the whole image, then a zoom on its neighbourhood.

    ``influence`` ``(H, W)`` says how much each pixel affects the attention value at ``centre``
    ``(y, x)`` (e.g. the gradient's magnitude); pixels with no influence are zero. Left: the image
    with a box around the influential pixels. Right: the ``(2*zoom+1)`` square around ``centre``
    with the influence drawn over it, one cell per pixel.
    """
    rgb = _image_hw3(image, "plot_receptive_field")
    inf = _to_numpy(influence)
    while inf.ndim > 2 and inf.shape[0] == 1:
        inf = inf[0]
    h, w = rgb.shape[:2]
    if inf.shape != (h, w):
        raise ValueError(tr("plot_receptive_field: influence must be one value per pixel, shape {shape} like the image, "
                            "got {got}. Sum the gradient over channels first.", shape=(h, w),
                            got=tuple(_to_numpy(influence).shape)))
    cy, cx = centre
    if not (0 <= cy < h and 0 <= cx < w):
        raise ValueError(tr("plot_receptive_field: centre {centre} is outside the {h}x{w} image.", centre=centre, h=h, w=w))
    ys, xs = np.nonzero(inf)
    fig, (ax_full, ax_zoom) = plt.subplots(1, 2, figsize=(9, 4.2), constrained_layout=True)
    ax_full.imshow(rgb)
    if len(ys):
        ax_full.add_patch(plt.Rectangle((xs.min() - 0.5, ys.min() - 0.5), xs.max() - xs.min() + 1,
                                        ys.max() - ys.min() + 1, fill=False, edgecolor="red", linewidth=1.5))
    ax_full.plot(cx, cy, "r+", markersize=8)
    ax_full.set_title(figure_text("the whole image (red box: influential pixels)"))
    ax_full.set_xlabel(figure_text("x (pixels)"))
    ax_full.set_ylabel(figure_text("y (pixels)"))

    y0, y1 = max(cy - zoom, 0), min(cy + zoom + 1, h)
    x0, x1 = max(cx - zoom, 0), min(cx + zoom + 1, w)
    extent = (x0 - 0.5, x1 - 0.5, y1 - 0.5, y0 - 0.5)
    ax_zoom.imshow(rgb[y0:y1, x0:x1], extent=extent)
    shown = np.ma.masked_equal(inf[y0:y1, x0:x1], 0.0)
    im = ax_zoom.imshow(shown, cmap="autumn", alpha=0.8, extent=extent)
    if len(ys):
        ax_zoom.add_patch(plt.Rectangle((xs.min() - 0.5, ys.min() - 0.5), xs.max() - xs.min() + 1,
                                        ys.max() - ys.min() + 1, fill=False, edgecolor="red", linewidth=2))
    ax_zoom.plot(cx, cy, "k+", markersize=10)
    ax_zoom.set_title(figure_text("zoom: {n} influential pixels", n=len(ys)))
    ax_zoom.set_xlabel(figure_text("x (pixels)"))
    ax_zoom.set_ylabel(figure_text("y (pixels)"))
    fig.colorbar(im, ax=ax_zoom, label=figure_text("influence (|gradient|)"))
    fig.suptitle(figure_text(title))
    return fig
