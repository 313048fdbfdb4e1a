"""Figures of trained networks, for lessons 05 and 06: confusion matrices, attention on test
images, channel attention by class, comparisons of runs, and a grid of sample images.

(Curves of a run, one or several, are :func:`cbam_course.train.history.plot_curves`.)
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..i18n import figure_text, tr
from ..plots import _new_axes, _to_numpy, overlay_attention, panel_grid

__all__ = ["confusion_matrix", "plot_confusion_matrix", "show_attention_gallery", "plot_attention_by_class",
           "plot_budget_comparison", "plot_error_drops", "show_image_grid"]


def confusion_matrix(labels: torch.Tensor | np.ndarray | Sequence[int],
                     predictions: torch.Tensor | np.ndarray | Sequence[int],
                     num_classes: int) -> np.ndarray:
    """Counts ``(num_classes, num_classes)``: row = true class, column = predicted class.

    The diagonal holds the correct answers, so ``matrix.trace() / matrix.sum()`` is the accuracy.
    """
    y = np.asarray(_to_numpy(labels), dtype=np.int64).reshape(-1)
    p = np.asarray(_to_numpy(predictions), dtype=np.int64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(tr("confusion_matrix got {labels} labels but {predictions} predictions; give one "
                            "prediction per label.", labels=y.size, predictions=p.size))
    if y.size and (min(y.min(), p.min()) < 0 or max(y.max(), p.max()) >= num_classes):
        raise ValueError(tr(
            "confusion_matrix: classes must lie in 0..{last}, got labels in {y_min}..{y_max} and predictions in "
            "{p_min}..{p_max}. Pass predictions as class indices (logits.argmax(1)), not logits.",
            last=num_classes - 1, y_min=y.min(), y_max=y.max(), p_min=p.min(), p_max=p.max()))
    return np.bincount(y * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def plot_confusion_matrix(matrix: np.ndarray | torch.Tensor, class_names: Sequence[str],
                          ax: Axes | None = None, title: str | None = None,
                          normalize: bool = True) -> Axes:
    """A confusion matrix as a heat map, true class down, predicted class across.

    With ``normalize`` each row is divided by its count, so a cell reads "the share of the
    images of this class that were called that"; the diagonal is each class's accuracy. The title
    defaults to "Confusion matrix" (in the learner's language).
    """
    m = _to_numpy(matrix).astype(np.float64)
    k = len(class_names)
    if m.shape != (k, k):
        raise ValueError(tr(
            "plot_confusion_matrix expects a ({k}, {k}) matrix for {k} class names, got {shape}. Build it with "
            "confusion_matrix(labels, predictions, num_classes={k}).", k=k, shape=tuple(m.shape)))
    if normalize:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax = _new_axes(ax, (6.5, 5.5))
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.figure.colorbar(im, ax=ax, label=figure_text("share of the true class") if normalize else figure_text("images"))
    for i in range(k):
        for j in range(k):
            if m[i, j] > 0:
                text = f"{m[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > 0.6 * (m.max() or 1) else "black")
    ax.set_xticks(range(k))
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticks(range(k))
    ax.set_yticklabels(class_names)
    ax.set_xlabel(figure_text("predicted class"))
    ax.set_ylabel(figure_text("true class"))
    ax.set_title(figure_text("Confusion matrix") if title is None else title)
    ax.figure.tight_layout()
    return ax


def show_attention_gallery(images: torch.Tensor | np.ndarray, maps: torch.Tensor | np.ndarray,
                           titles: Sequence[str] | None = None, ncols: int = 4,
                           title: str | None = None) -> Figure:
    """Images ``(N, 3, H, W)`` in [0, 1] with their spatial maps ``(N, 1, h, w)`` overlaid.

    Each column shows one image twice: the picture alone on top, the map over it below
    (:func:`overlay_attention`; maps smaller than the image are upsampled). All maps share one
    colour scale, so a brighter spot means more attention whichever image it is on. The title
    defaults to "Spatial attention on test images" (in the learner's language).
    """
    imgs = _to_numpy(images)
    att = _to_numpy(maps)
    if imgs.ndim != 4 or imgs.shape[1] != 3:
        raise ValueError(tr("show_attention_gallery expects images (N, 3, H, W), got {shape}.",
                            shape=tuple(imgs.shape)))
    if att.ndim == 3:
        att = att[:, None]
    if att.ndim != 4 or att.shape[1] != 1 or att.shape[0] != imgs.shape[0]:
        raise ValueError(tr(
            "show_attention_gallery expects one spatial map per image, (N, 1, h, w) with N={n}, got {shape}. "
            "A CBAM's spatial_attention records that shape.", n=imgs.shape[0], shape=tuple(att.shape)))
    n = imgs.shape[0]
    titles = list(titles) if titles is not None else [figure_text("image {i}", i=i) for i in range(n)]
    if len(titles) != n:
        raise ValueError(tr("show_attention_gallery got {titles} titles for {n} images.", titles=len(titles), n=n))
    fig, items = panel_grid(n, ncols, panel=(2.3, 2.2), margin=(1.0, 0.4), rows_per_item=2)
    vmin, vmax = float(att.min()), float(att.max())
    for k, (top, bottom) in enumerate(items):
        first = k % max(1, min(ncols, n)) == 0
        top.imshow(np.clip(imgs[k].transpose(1, 2, 0), 0, 1))
        top.set_title(titles[k], fontsize=9)
        top.set_ylabel(figure_text("image") if first else "")
        overlay_attention(imgs[k], att[k], ax=bottom, title="", colorbar=False, vmin=vmin, vmax=vmax)
        bottom.set_xticks([])
        bottom.set_yticks([])
        bottom.set_xlabel("x")
        bottom.set_ylabel(figure_text("attention") if first else "")
    mappable = plt.cm.ScalarMappable(cmap="jet", norm=plt.Normalize(vmin, vmax))
    fig.colorbar(mappable, ax=fig.axes, shrink=0.6, label=figure_text("spatial attention"))
    fig.suptitle(figure_text("Spatial attention on test images") if title is None else title)
    return fig


def plot_attention_by_class(attention: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                            class_names: Sequence[str], ax: Axes | None = None, top: int = 32,
                            title: str | None = None) -> Axes:
    """A heat map class x channel of the mean channel attention, for the most class-dependent channels.

    ``attention`` is ``(N, C)`` (or ``(N, C, 1, 1)``, as a module records it), ``labels`` ``(N,)``.
    The ``top`` channels whose class means vary most are shown, so the few channels that respond
    to one class stand out instead of drowning among hundreds of flat ones. The title defaults to
    "Channel attention, averaged per class" (in the learner's language).
    """
    w = _to_numpy(attention)
    if w.ndim == 4 and w.shape[2:] == (1, 1):
        w = w[:, :, 0, 0]
    y = np.asarray(_to_numpy(labels), dtype=np.int64).reshape(-1)
    if w.ndim != 2 or w.shape[0] != y.size:
        raise ValueError(tr("plot_attention_by_class expects attention (N, C) and labels (N,), got {shape} and "
                            "{n} labels.", shape=tuple(w.shape), n=y.size))
    k = len(class_names)
    present = [c for c in range(k) if (y == c).any()]
    if not present:
        raise ValueError(tr("plot_attention_by_class: no label matches a class name index 0..{last}.", last=k - 1))
    means = np.stack([w[y == c].mean(axis=0) for c in present])
    order = np.argsort(-means.var(axis=0))[: max(1, min(top, w.shape[1]))]
    ax = _new_axes(ax, (max(6.0, 0.22 * len(order) + 2.5), 4.0))
    im = ax.imshow(means[:, order], aspect="auto", cmap="viridis")
    ax.figure.colorbar(im, ax=ax, label=figure_text("mean channel attention"))
    ax.set_yticks(range(len(present)))
    ax.set_yticklabels([class_names[c] for c in present])
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([str(c) for c in order], rotation=90, fontsize=7)
    ax.set_xlabel(figure_text("channel (the most class-dependent first)"))
    ax.set_ylabel(figure_text("true class"))
    ax.set_title(figure_text("Channel attention, averaged per class") if title is None else title)
    return ax


def plot_budget_comparison(results: Mapping[str, Mapping[str, Sequence[float]]], ax: Axes | None = None,
                           title: str | None = None, ylabel: str | None = None) -> Axes:
    """Grouped bars, mean with a ± std error bar, of ``{budget: {model: [accuracy per seed]}}``.

    Each dot is one seed, so a reader sees the spread that the mean hides. The title and the
    y label default to "Test accuracy under the same budget" and "test accuracy (%)" (in the
    learner's language).
    """
    if not results:
        raise ValueError(tr("plot_budget_comparison got no results; give {example}.",
                            example="{budget: {model: [values]}}"))
    budgets = list(results)
    models = list(dict.fromkeys(m for b in budgets for m in results[b]))
    ax = _new_axes(ax, (2.2 * len(budgets) * len(models) / 2 + 3, 4))
    width = 0.8 / len(models)
    for j, model in enumerate(models):
        for i, budget in enumerate(budgets):
            vals = _to_numpy(results[budget].get(model, [])).reshape(-1)
            if vals.size == 0:
                continue
            x = i + (j - (len(models) - 1) / 2) * width
            ax.bar(x, vals.mean(), width=width, yerr=vals.std() if vals.size > 1 else None,
                   capsize=4, color=f"C{j}", label=model if i == 0 else None)
            ax.plot(np.full(vals.size, x), vals, "k.", markersize=4)
    ax.set_xticks(range(len(budgets)))
    ax.set_xticklabels(budgets)
    ax.set_xlabel(figure_text("budget"))
    ax.set_ylabel(figure_text("test accuracy (%)") if ylabel is None else ylabel)
    ax.set_title(figure_text("Test accuracy under the same budget") if title is None else title)
    ax.legend(title=figure_text("attention"))
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_error_drops(errors: Mapping[str, Mapping[str, float]], baseline: str = "baseline",
                     ax: Axes | None = None, title: str | None = None, xlabel: str | None = None) -> Axes:
    """Horizontal bars: for each network (a row), how much each module lowers its error.

    ``errors`` is ``{network: {"baseline": e0, "SE": e1, "CBAM": e2}}`` (top-1 errors in %, as
    papers tabulate them); each bar is ``e0 - e_module``, labelled with its value, so a table of
    errors becomes a picture of gains. Networks keep the order given, top to bottom. The title and
    the x label default to "Top-1 error drop over the baseline" and "top-1 error drop (percentage
    points; higher is better)" (in the learner's language).
    """
    if not errors:
        raise ValueError(tr("plot_error_drops got no networks; give {example}.",
                            example="{network: {'baseline': e0, 'CBAM': e1}}"))
    for net, row in errors.items():
        if baseline not in row:
            raise ValueError(tr("plot_error_drops: the row {net} has no {baseline} error; every row needs the "
                                "network's error without a module, to subtract from.",
                                net=repr(net), baseline=repr(baseline)))
    nets = list(errors)
    modules = list(dict.fromkeys(m for row in errors.values() for m in row if m != baseline))
    ax = _new_axes(ax, (7.5, 0.55 * len(nets) * max(1, len(modules)) + 1.5))
    height = 0.8 / max(1, len(modules))
    for j, module in enumerate(modules):
        for i, net in enumerate(nets):
            if module not in errors[net]:
                continue
            drop = errors[net][baseline] - errors[net][module]
            y = i + (j - (len(modules) - 1) / 2) * height
            ax.barh(y, drop, height=height, color=f"C{j}", label=module if module not in
                    ax.get_legend_handles_labels()[1] else None)
            ax.text(drop, y, f" {drop:.2f}", va="center", ha="left" if drop >= 0 else "right", fontsize=8)
    ax.axvline(0, color="k", linewidth=0.8)
    ax.set_yticks(range(len(nets)))
    ax.set_yticklabels(nets)
    ax.invert_yaxis()
    ax.set_xlabel(figure_text("top-1 error drop (percentage points; higher is better)") if xlabel is None else xlabel)
    ax.set_ylabel(figure_text("network"))
    ax.set_title(figure_text("Top-1 error drop over the baseline") if title is None else title)
    ax.legend(title=figure_text("module"))
    ax.grid(axis="x", alpha=0.3)
    return ax


def show_image_grid(images: torch.Tensor | np.ndarray, titles: Sequence[str] | None = None,
                    ncols: int = 8, title: str | None = None) -> Figure:
    """A batch of RGB images ``(N, 3, H, W)`` in a grid, one title per image.

    Takes uint8 images (0..255, as :class:`cbam_course.train.data.ImageSet` keeps them) or floats in
    [0, 1]. Normalised images (negative values) are refused: show them before normalising. The
    title defaults to "Images" (in the learner's language).
    """
    arr = _to_numpy(images)
    if arr.ndim != 4 or arr.shape[1] != 3:
        raise ValueError(tr("show_image_grid expects images (N, 3, H, W), got {shape}.", shape=tuple(arr.shape)))
    if isinstance(images, torch.Tensor) and images.dtype == torch.uint8 or arr.max(initial=0) > 1.0:
        arr = arr / 255.0
    if arr.min(initial=0) < 0:
        raise ValueError(tr("show_image_grid got negative pixel values: these images are normalised. "
                            "Show the uint8 images (ImageSet.images) instead."))
    n = arr.shape[0]
    titles = list(titles) if titles is not None else [str(i) for i in range(n)]
    if len(titles) != n:
        raise ValueError(tr("show_image_grid got {titles} titles for {n} images.", titles=len(titles), n=n))
    fig, items = panel_grid(n, ncols, panel=(1.6, 1.8), margin=(0.4, 0.5))
    for i, (ax,) in enumerate(items):
        ax.imshow(np.clip(arr[i].transpose(1, 2, 0), 0, 1))
        ax.set_title(titles[i], fontsize=8)
    fig.suptitle(figure_text("Images") if title is None else title)
    return fig
