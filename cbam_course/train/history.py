"""What a run did, and how it looks: the History of a run, its curves, and a live plot.

``plot_curves`` is the one function that draws curves: the Day 50 lesson's two plots
(:meth:`History.plot_iterations`, :meth:`History.plot_epochs`), the live plot during training and
the lessons' comparisons of several runs all go through it.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from .files import atomic_write
from ..i18n import figure_text, tr

__all__ = ["History", "LivePlot", "in_notebook", "plot_curves"]


def plot_curves(curves: Mapping[str, Sequence[float]], ax=None, title: str | None = None,
                xlabel: str | None = None, ylabel: str | None = None, start: int = 1):
    """Several curves on one set of axes, one line per label (e.g. ``{"none": [...], "cbam": [...]}``),
    x counted from ``start``. Returns the Axes.

    Use it to compare runs trained the same way, or a run's train and test curves. The title and
    labels default to "Accuracy per epoch", "epoch" and "accuracy (%)" (in the learner's language).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if not curves:
        raise ValueError(tr("plot_curves got no curves; give a dict {example}.", example="{label: values}"))
    title = figure_text("Accuracy per epoch") if title is None else title
    xlabel = figure_text("epoch") if xlabel is None else xlabel
    ylabel = figure_text("accuracy (%)") if ylabel is None else ylabel
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for label, values in curves.items():
        v = np.asarray([float(x) for x in values], dtype=np.float64).reshape(-1)
        ax.plot(np.arange(start, v.size + start), v, marker="o" if v.size < 30 else None,
                markersize=3, label=label, alpha=0.8 if v.size >= 30 else 1.0)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs and iterations are whole numbers
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax




@dataclass
class History:
    """What a run did: the loss at every iteration and one record per epoch.

    Each epoch record is a dict with ``epoch`` (1-based), ``train_loss``, ``train_acc``, the loss
    and accuracy on the set evaluated after each epoch (``val_loss``, ``val_acc`` for a recipe
    with a validation split; ``test_loss``, ``test_acc`` for the Day 50 lesson's recipe, which
    evaluated the test set), ``lr`` (at the end of the epoch), ``seconds`` (training +
    evaluation), ``steps`` (optimizer steps in it). Accuracies are in %.

    ``test`` is the run's final result, measured once when training ended: ``{"loss", "acc",
    "tta_acc", "epoch", "step"}`` (``tta_acc`` None without flip TTA), or None before that.
    """

    iter_losses: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    test: dict | None = None

    @property
    def eval_split(self) -> str:
        """What each epoch was evaluated on: "val" (a validation split) or "test"."""
        return "val" if self.epochs and "val_acc" in self.epochs[0] else "test"

    @property
    def eval_acc(self) -> list[float]:
        """Accuracy per epoch on the set each epoch was evaluated on (see ``eval_split``)."""
        return self.column(f"{self.eval_split}_acc")

    @property
    def eval_loss(self) -> list[float]:
        return self.column(f"{self.eval_split}_loss")

    @property
    def final_test_acc(self) -> float | None:
        """The test accuracy measured once at the end (None before training ended)."""
        return None if self.test is None else self.test["acc"]

    def column(self, key: str) -> list:
        return [e[key] for e in self.epochs]

    @property
    def train_loss(self) -> list[float]:
        return self.column("train_loss")

    @property
    def train_acc(self) -> list[float]:
        return self.column("train_acc")

    @property
    def lr(self) -> list[float]:
        return self.column("lr")

    @property
    def seconds(self) -> float:
        """Total seconds spent in the recorded epochs."""
        return float(sum(self.column("seconds")))

    def __len__(self) -> int:
        return len(self.epochs)

    def to_dict(self) -> dict:
        return {"iter_losses": list(self.iter_losses), "epochs": [dict(e) for e in self.epochs],
                "test": dict(self.test) if self.test is not None else None}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        test = d.get("test")
        return cls([float(x) for x in d.get("iter_losses", [])], [dict(e) for e in d.get("epochs", [])],
                   dict(test) if test is not None else None)

    def to_json(self, path: str | os.PathLike) -> None:
        atomic_write(path, json.dumps(self.to_dict()))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "History":
        return cls.from_dict(json.loads(Path(path).read_text()))

    # -- the Day 50 lesson's two plots --
    def plot_iterations(self, ax=None, title: str | None = None):
        """The Day 50 lesson's first plot: the loss at every iteration (title by default "Training
        loss per iteration"). Returns the Figure."""
        ax = plot_curves({figure_text("train"): self.iter_losses}, ax=ax,
                         title=figure_text("Training loss per iteration") if title is None else title,
                         xlabel=figure_text("Iteration"), ylabel=figure_text("Loss"), start=0)
        return ax.figure

    def plot_epochs(self, axes=None, title: str | None = None):
        """The Day 50 lesson's second plot: accuracy and loss per epoch, on the training data and on
        the set each epoch was evaluated on (validation, or test for that lesson's recipe). Returns
        the Figure."""
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(12, 4))
        panels = ((axes[0], "acc", figure_text("Accuracy per epoch"), figure_text("Accuracy (%)")),
                  (axes[1], "loss", figure_text("Loss per epoch"), figure_text("Loss")))
        for ax, key, heading, label in panels:
            held_out = figure_text("Validation") if self.eval_split == "val" else figure_text("Test")
            plot_curves({figure_text("Train"): self.column(f"train_{key}"),
                         held_out: self.column(f"{self.eval_split}_{key}")}, ax=ax,
                        title=heading, xlabel=figure_text("Epoch"), ylabel=label)
        fig = axes[0].figure
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return fig


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where live plots can update in place)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class LivePlot:
    """A figure that redraws in place in a notebook as training goes (off elsewhere).

    Redraws at most every ``min_interval`` seconds, plus at every epoch end, so plotting costs
    little next to training.
    """

    def __init__(self, enabled: bool | None = None, min_interval: float = 3.0, model: str | None = None) -> None:
        self.enabled = in_notebook() if enabled is None else enabled
        self.min_interval = min_interval
        self.model = model  # what is trained, named in the title (in the learner's language)
        self._handle = None
        self._last = -math.inf

    def update(self, history: History, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
        history.plot_iterations(ax=axes[0])
        if history.epochs:
            history.plot_epochs(axes=axes[1:])
        else:
            waiting = ((figure_text("Accuracy per epoch (after the first epoch)"), figure_text("Accuracy (%)")),
                       (figure_text("Loss per epoch (after the first epoch)"), figure_text("Loss")))
            for ax, (heading, label) in zip(axes[1:], waiting):
                ax.set_title(heading)
                ax.set_xlabel(figure_text("Epoch"))
                ax.set_ylabel(label)
        fig.suptitle(figure_text("Training {model}", model=self.model) if self.model else figure_text("Training"))
        fig.tight_layout()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)
