"""The Trainer: a training run with progress bars, a live plot, checkpoints and budgets.

``Trainer`` wraps :func:`~cbam_course.train.loops.train_step` and ``evaluate`` into a run: progress
bars (``tqdm.auto``), a plot that updates live in a notebook, a checkpoint after every epoch
(``checkpoints.py``: written atomically, resumed exactly), a time (``budget.py``) or step budget,
and a clean stop on KeyboardInterrupt (Jupyter's stop button) that keeps the history and writes a
checkpoint. On CUDA it uses mixed precision and channels_last; on the CPU a seeded run repeats
exactly.

Which data decides what: a course recipe (``Recipe.holdout > 0``) holds out part of the training
images as a validation set, evaluates that after every epoch (the curves, and the scheduler if it
needs one), and evaluates the test set once, when training ends (``History.test``). The Day 50
lesson's own recipe (``holdout=0``) evaluates the test set after every epoch and steps its
scheduler on it, as that lesson did: a faithful copy. The test set then steers the schedule, so the
test accuracy such a run reports (the last epoch's, as in that lesson, not the best epoch's) is no
longer an unseen result.
"""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn

from .files import atomic_write
from ..i18n import tr
from ..runtime import get_device
from .budget import TimeBudget
from .checkpoints import (CHECKPOINT_FORMAT, CheckpointError, check_compatible, load_checkpoint, model_config,
                          save_checkpoint)
from .data import ImageSet, run_loaders
from .history import History, LivePlot
from .loops import evaluate, mixed_precision_step, scores
from .recipes import OneCycle, Recipe, get_recipe

__all__ = ["Trainer", "PartialEpoch", "fit"]


@dataclass
class PartialEpoch:
    """The epoch in progress: what its steps so far add up to. A checkpoint keeps it (under
    ``"partial"``), so an epoch stopped half-way resumes with its sums intact."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    steps: int = 0
    seconds: float = 0.0
    trained: bool = False  # its steps are done and its evaluation is not (stopped while evaluating)


class Trainer:
    """Trains a model with a :class:`~cbam_course.train.recipes.Recipe` on in-memory data.

    Args:
        model: the network (moved to ``device``).
        train_data, test_data: :class:`~cbam_course.train.data.ImageSet` s.
        recipe: a Recipe or its name ("day50", "fast", "fast128").
        device: default: the best at hand (:func:`~cbam_course.get_device`).
        seed: seeds the shuffle, the augmentation and dropout; a CPU run repeats exactly.
        checkpoint_path: where a checkpoint is written after every epoch (and on interrupt).
        metrics_path: where ``{"epochs": [...]}`` is written after every epoch (JSON).
        amp: mixed precision (default: on for CUDA; bfloat16, or float16 with a GradScaler).
        channels_last: default: on for CUDA.
        progress: show tqdm progress bars.
        live_plot: redraw a plot in the notebook as training goes (default: in notebooks).
        tta: also measure the final test accuracy with flip test-time augmentation.
        config: extra JSON-able facts stored in the checkpoint (data, profile, ...).
    """

    def __init__(self, model: nn.Module, train_data: ImageSet, test_data: ImageSet,
                 recipe: Recipe | str = "fast", *, device: torch.device | str | None = None, seed: int = 0,
                 checkpoint_path: str | os.PathLike | None = None, metrics_path: str | os.PathLike | None = None,
                 amp: bool | None = None, channels_last: bool | None = None, progress: bool = True,
                 live_plot: bool | None = None, tta: bool = False, config: dict | None = None) -> None:
        self.recipe = get_recipe(recipe)
        self.device = torch.device(device) if device is not None else get_device()
        cuda = self.device.type == "cuda"
        self.channels_last = cuda if channels_last is None else channels_last
        self.model = model.to(self.device, memory_format=torch.channels_last if self.channels_last
                              else torch.preserve_format)
        self.amp = cuda if amp is None else amp
        self.amp_dtype = torch.float16 if self.amp and cuda and not torch.cuda.is_bf16_supported() else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda") if (self.amp and self.amp_dtype == torch.float16) else None
        self.seed = seed
        torch.manual_seed(seed)  # dropout's random numbers
        self.optimizer = self.recipe.make_optimizer(self.model)
        self.scheduler = self.recipe.make_scheduler(self.optimizer)
        self.criterion = self.recipe.make_criterion()
        # a course recipe holds out a validation set and tests once at the end (module docstring)
        self.train_loader, self.eval_loader, self.test_loader = run_loaders(
            train_data, test_data, self.recipe, self.device, self.channels_last, seed)
        train_data, self.val_data = self.train_loader.data, (None if self.recipe.holdout == 0 else self.eval_loader.data)
        self.eval_split = "test" if self.val_data is None else "val"  # what each epoch is evaluated on
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.metrics_path, self.show_progress, self.tta = Path(metrics_path) if metrics_path else None, progress, tta
        described = ", ".join(f"{k}={v!r}" for k, v in model_config(model).items() if k != "class")
        self.live = LivePlot(live_plot, model=f"{type(model).__name__}({described})")
        self.history, self.epoch, self.step = History(), 0, 0  # epochs finished, optimizer steps taken
        self.target_epochs, self.partial_epoch, self._in_flight = self.recipe.epochs, PartialEpoch(), False
        self.config = {"model": model_config(model), "recipe": self.recipe.to_dict(), "seed": seed,
                       "train_data": train_data.description, "test_data": test_data.description,
                       "val_data": self.val_data.description if self.val_data is not None else None,
                       "is_standin": bool(train_data.is_standin), **(config or {})}

    # -- state --
    def state_dict(self, last_batch_done: bool = True) -> dict:
        """Everything needed to continue this run exactly: model, optimizer, scheduler, history,
        config, the epoch in progress and every random-number state (all of it loads with
        ``weights_only=True``). ``last_batch_done=False``: the last batch's step did not finish."""
        rng = {"torch": torch.get_rng_state(), "python": random.getstate(),
               "loader": self.train_loader.state_dict(last_batch_done)}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"format": CHECKPOINT_FORMAT, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None, "history": self.history.to_dict(),
                "config": {**self.config, "target_epochs": self.target_epochs},
                "epoch": self.epoch, "step": self.step, "partial": asdict(self.partial_epoch), "rng": rng}

    def load_state_dict(self, state: dict, source: str | os.PathLike = "checkpoint") -> None:
        """Continue the run that ``state`` (from :meth:`state_dict`) describes. Raises
        :class:`CheckpointError`, naming ``source``, when it is not a run or does not fit."""
        if state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(tr("{source} holds only model weights, not a training run (expected format "
                                     "{format}); it cannot be resumed.", source=source, format=repr(CHECKPOINT_FORMAT)))
        check_compatible(state, self.model, source)
        theirs = state["config"].get("recipe", {})
        if theirs.get("optimizer") != self.recipe.optimizer or theirs.get("schedule") != self.recipe.schedule:
            raise CheckpointError(tr(
                "Checkpoint {source} was trained with the {theirs} recipe, this run uses {ours}: resume with the "
                "same recipe, or start a new run in another folder.", source=source, theirs=repr(theirs.get("name")),
                ours=repr(self.recipe.name)))
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.scaler and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            self.history = History.from_dict(state["history"])
            self.epoch, self.step = int(state["epoch"]), int(state["step"])
            self.partial_epoch = PartialEpoch(**state["partial"])
            self.target_epochs = int(state["config"].get("target_epochs", self.recipe.epochs))
            rng = state["rng"]
            torch.set_rng_state(rng["torch"].cpu())
            random.setstate(_as_tuples(rng["python"]))
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
            self.train_loader.load_state_dict({k: (v.cpu() if isinstance(v, torch.Tensor) else v)
                                               for k, v in rng["loader"].items()})
        except (KeyError, ValueError, TypeError, RuntimeError) as err:
            raise CheckpointError(tr("Checkpoint {source} is incomplete or from another version ({error}: {detail}). "
                                     "Start a new run.", source=source, error=type(err).__name__,
                                     detail=str(err)[:160])) from None

    def save(self, path: str | os.PathLike | None = None, last_batch_done: bool = True) -> Path | None:
        """Write ``metrics.json`` (where the Trainer has a ``metrics_path``) and a checkpoint to
        ``path`` (default: ``checkpoint_path``; none when both are None). Returns the checkpoint's path."""
        if self.metrics_path:
            atomic_write(self.metrics_path, json.dumps(
                {"epochs": self.history.epochs, "test": self.history.test, "config": self.config}, indent=1))
        path = Path(path) if path else self.checkpoint_path
        return None if path is None else save_checkpoint(path, self.state_dict(last_batch_done))

    def resume(self, path: str | os.PathLike | None = None) -> "Trainer":
        """Continue from a checkpoint written by a Trainer. Raises :class:`CheckpointError` if it
        is damaged or does not fit."""
        path = Path(path) if path else self.checkpoint_path
        if path is None:
            raise ValueError(tr("resume needs a checkpoint path (pass one, or checkpoint_path= to the Trainer)."))
        self.load_state_dict(load_checkpoint(path, map_location=self.device), source=path)
        return self

    @staticmethod
    def saved_progress(path: str | os.PathLike) -> tuple[int, float]:
        """``(steps, seconds)`` a checkpoint's run has done so far, the epoch in progress included.
        Raises :class:`CheckpointError` when the file is not a Trainer's checkpoint."""
        state = load_checkpoint(path)
        try:
            seconds = sum(float(e.get("seconds", 0.0)) for e in state["history"]["epochs"])
            return int(state["step"]), seconds + float((state.get("partial") or {}).get("seconds", 0.0))
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(tr("{path} is not a training run's checkpoint ({error}: {detail}).", path=path,
                                     error=type(err).__name__, detail=err)) from None

    # -- training --
    def fit(self, epochs: int | None = None, *, time_budget: float | None = None,
            max_steps: int | None = None) -> History:
        """Train until ``epochs`` epochs are done in all (default: the recipe's), or this call
        has spent ``time_budget`` seconds (evaluation included), or taken ``max_steps`` steps.

        A run stopped by a budget records the epoch it was in (evaluated) and ends. An
        interrupt (Ctrl-C, Jupyter's stop button) keeps the history, writes a checkpoint, and
        returns. Returns the :class:`History`.
        """
        from tqdm.auto import tqdm

        if epochs is not None:
            self.target_epochs = int(epochs)
        planned = self.target_epochs * len(self.train_loader)
        if max_steps is not None:
            planned = min(planned, self.step + max_steps)
        final = len(self.test_loader.data) * (2 if self.tta else 1)  # images the final test runs forward
        budget = TimeBudget(time_budget, self.step, len(self.train_loader), len(self.train_loader) - self.partial_epoch.steps,
                            self.recipe.batch_size, len(self.eval_loader.data), final)
        last_step = self.step + max_steps if max_steps is not None else None
        epoch_bar = tqdm(total=self.target_epochs, initial=self.epoch, desc=tr("epochs"), unit=tr("epoch"),
                         disable=not self.show_progress, dynamic_ncols=True)
        self._in_flight, stop = False, False
        epoch_t0 = time.perf_counter() - self.partial_epoch.seconds
        try:
            while self.epoch < self.target_epochs and not stop:
                if not self.partial_epoch.trained:  # else: trained before an interrupt, evaluate it
                    if budget.out_of_time(self.step):
                        break  # no time left for another epoch's steps and its evaluation
                    stop = self._train_epoch(budget, planned, last_step)
                epoch_t0 = time.perf_counter() - self.partial_epoch.seconds
                t_eval = time.perf_counter()
                loss, acc = evaluate(self.model, self.eval_loader, self.criterion, self.device)
                budget.evaluated(time.perf_counter() - t_eval, len(self.eval_loader.data))
                self._end_epoch(loss, acc, time.perf_counter() - epoch_t0)
                budget.new_epoch()
                epoch_bar.update(1)
                epoch_bar.set_postfix({"train_acc": f"{self.history.epochs[-1]['train_acc']:.1f}%",
                                       f"{self.eval_split}_acc": f"{acc:.1f}%"}, refresh=False)
                self.live.update(self.history, force=True)
                self.save()
            if self.history.epochs and self.history.test is None:  # the run's one look at the test set
                t0 = time.perf_counter()
                self.history.test = {**scores(self.model, self.test_loader, self.criterion, self.device, self.tta),
                                     "epoch": self.epoch, "step": self.step}
                budget.evaluated(time.perf_counter() - t0, final)
                self.save()
        except KeyboardInterrupt:
            if self.partial_epoch.trained:  # stopped while evaluating
                self.partial_epoch.seconds = time.perf_counter() - epoch_t0
            saved = self.save(last_batch_done=not self._in_flight)
            if saved:
                print(tr("Interrupted after {steps} steps ({epochs} epochs done). History kept; checkpoint written "
                         "to {path} (resume from it to go on).", steps=self.step, epochs=self.epoch, path=saved))
            else:
                print(tr("Interrupted after {steps} steps ({epochs} epochs done). History kept.",
                         steps=self.step, epochs=self.epoch))
        finally:
            epoch_bar.close()
        return self.history

    def _train_epoch(self, budget: TimeBudget, planned: int, last_step: int | None) -> bool:
        """Train through (the rest of) one epoch; returns True when a budget says stop."""
        from tqdm.auto import tqdm

        self.model.train()
        p = self.partial_epoch
        epoch_t0, stop = time.perf_counter() - p.seconds, False
        bar = tqdm(total=len(self.train_loader), initial=p.steps, leave=False, unit=tr("batch"),
                   desc=tr("epoch {epoch}/{epochs}", epoch=self.epoch + 1, epochs=self.target_epochs),
                   disable=not self.show_progress, dynamic_ncols=True)
        losses, correct = [], torch.zeros((), dtype=torch.long, device=self.device)
        try:
            for images, labels in self.train_loader:
                if isinstance(self.scheduler, OneCycle):
                    self.scheduler.set_progress(budget.progress(self.step, planned))
                self._in_flight = True
                loss, right = mixed_precision_step(self.model, images, labels, self.optimizer, self.criterion,
                                                   self.amp, self.amp_dtype, self.scaler)
                losses.append(loss)
                correct += right
                self.step += 1
                budget.stepped()
                p.steps += 1
                p.seen += labels.shape[0]
                self._in_flight = False
                bar.update(1)
                if p.steps % 20 == 0 or self.device.type == "cpu":  # one host sync for many steps
                    self._flush(losses, correct)
                    bar.set_postfix(loss=f"{self.history.iter_losses[-1]:.3f}", refresh=False)
                    self.live.update(self.history)
                stop = (last_step is not None and self.step >= last_step) or budget.out_of_time(self.step)
                if stop:
                    self.train_loader.end_epoch()  # a budget ends this epoch here
                    break
        finally:  # also on KeyboardInterrupt: the steps taken so far stay in the history
            bar.close()
            p.seconds = time.perf_counter() - epoch_t0
            self._flush(losses, correct)
        p.trained = True
        return stop

    def _flush(self, losses: list[torch.Tensor], correct: torch.Tensor) -> None:
        """Move the per-step losses and the correct count to the history and the epoch's sums."""
        if losses:
            values = torch.stack(losses).float().cpu().tolist()
            self.history.iter_losses.extend(values)
            self.partial_epoch.loss_sum += sum(values)
            losses.clear()
        self.partial_epoch.correct += int(correct.item())
        correct.zero_()

    def _end_epoch(self, loss: float, acc: float, seconds: float) -> None:
        p, split = self.partial_epoch, self.eval_split
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(loss)  # the Day 50 lesson's schedule (on the test loss there), once per epoch
        self.epoch += 1
        self.history.test = None  # a new epoch: the final test result is no longer current
        self.history.epochs.append({
            "epoch": self.epoch, "train_loss": p.loss_sum / max(p.steps, 1),
            "train_acc": 100.0 * p.correct / max(p.seen, 1), f"{split}_loss": loss, f"{split}_acc": acc,
            "lr": self.optimizer.param_groups[0]["lr"], "seconds": seconds, "steps": p.steps,
        })
        self.partial_epoch = PartialEpoch()
        self.train_loader.end_epoch()


def fit(model: nn.Module, train_data: ImageSet, test_data: ImageSet, recipe: Recipe | str = "fast",
        epochs: int | None = None, *, time_budget: float | None = None, max_steps: int | None = None,
        **trainer_options) -> History:
    """Train ``model`` in one call: ``Trainer(model, train_data, test_data, recipe, **options).fit(...)``."""
    trainer = Trainer(model, train_data, test_data, recipe, **trainer_options)
    return trainer.fit(epochs, time_budget=time_budget, max_steps=max_steps)


def _as_tuples(x):
    """Python's random state comes back from a checkpoint as lists; ``random.setstate`` wants tuples."""
    return tuple(_as_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x
