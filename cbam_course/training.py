"""Training: the step and the evaluation loop, a history, live plots, checkpoints that resume.

The two loops a learner writes in lesson 05 are here in their plainest form:

- ``train_step(model, images, labels, optimizer, criterion) -> float``
- ``evaluate(model, loader, criterion, device) -> (mean loss per batch, accuracy in %)``

``Trainer`` wraps them into a run: progress bars (``tqdm.auto``), a plot that updates live in
a notebook, a checkpoint after every epoch (model, optimizer, scheduler, history, config and
random-number states, written atomically), exact resume, a time or step budget, and a clean
stop on KeyboardInterrupt (the interrupt button in Jupyter) that keeps the history and writes a
checkpoint. On CUDA it uses mixed precision and channels_last; on the CPU a seeded run
repeats exactly.

``train_model(...)`` is the whole thing in one call (data, model, recipe, output folder): the
command line ``python -m cbam_course train`` and the lessons both use it.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn as nn

from .data import BatchLoader, ImageSet, load_cifar10, make_standin
from .models import AttentionCNN
from .recipes import OneCycle, Profile, Recipe, get_profile, get_recipe
from .runtime import cpu_has_native_bfloat16, get_device, keep_freed_memory

__all__ = [
    "train_step", "evaluate", "History", "LivePlot", "in_notebook", "CheckpointError",
    "save_checkpoint", "load_checkpoint", "Trainer", "fit", "load_profile_data", "train_model",
    "CHECKPOINT_NAME", "METRICS_NAME",
]

CHECKPOINT_FORMAT = "cbam_course.checkpoint/1"
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"


# ----------------------------------------------------------------------------------------------
# the two loops


def train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
               optimizer: torch.optim.Optimizer, criterion: nn.Module) -> float:
    """One optimisation step on one batch; returns the batch's loss as a float.

    Clear the old gradients, run the model, measure the loss, backpropagate, update the
    weights. (The model's train/eval mode is the caller's business, as in the seed's loop.)
    """
    optimizer.zero_grad()
    outputs = model(images)
    loss = criterion(outputs, labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def evaluate(model: nn.Module, loader: Iterable, criterion: nn.Module, device: torch.device | str,
             tta: bool = False) -> tuple[float, float]:
    """Loss and accuracy of ``model`` over ``loader``: ``(mean loss per batch, accuracy in %)``.

    Runs in eval mode (dropout off, BatchNorm's running statistics) without gradients. With
    ``tta=True`` each image is also seen flipped left-right and the two outputs are averaged
    (flip test-time augmentation). On CUDA it runs in bfloat16 autocast.
    """
    device = torch.device(device)
    model.eval()
    total_loss, correct, total, batches = 0.0, 0, 0, 0
    use_amp = device.type == "cuda"
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            outputs = model(images)
            if tta:
                outputs = (outputs + model(images.flip(3))) / 2
            outputs = outputs.float()
            total_loss += criterion(outputs, labels).item()
            correct += (outputs.argmax(1) == labels).sum().item()
            total += labels.shape[0]
            batches += 1
    if batches == 0:
        raise ValueError("evaluate got an empty loader: there is nothing to evaluate.")
    return total_loss / batches, 100.0 * correct / total


# ----------------------------------------------------------------------------------------------
# history and plots


@dataclass
class History:
    """What a run did: the loss at every iteration and one record per epoch.

    Each epoch record is a dict with ``epoch`` (1-based), ``train_loss``, ``train_acc``,
    ``test_loss``, ``test_acc`` (accuracies in %), ``lr`` (at the end of the epoch),
    ``seconds`` (training + evaluation), ``steps`` (optimizer steps in it).
    """

    iter_losses: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)

    def column(self, key: str) -> list:
        return [e[key] for e in self.epochs]

    @property
    def train_loss(self) -> list[float]:
        return self.column("train_loss")

    @property
    def test_loss(self) -> list[float]:
        return self.column("test_loss")

    @property
    def train_acc(self) -> list[float]:
        return self.column("train_acc")

    @property
    def test_acc(self) -> list[float]:
        return self.column("test_acc")

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
        return {"iter_losses": list(self.iter_losses), "epochs": [dict(e) for e in self.epochs]}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls([float(x) for x in d.get("iter_losses", [])], [dict(e) for e in d.get("epochs", [])])

    def to_json(self, path: str | os.PathLike) -> None:
        _atomic_write_text(Path(path), json.dumps(self.to_dict()))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "History":
        return cls.from_dict(json.loads(Path(path).read_text()))

    # -- the seed's two plots --
    def plot_iterations(self, ax=None, title: str = "Training loss per iteration"):
        """The seed's first plot: the loss at every iteration. Returns the Figure."""
        import matplotlib.pyplot as plt

        fig = ax.figure if ax is not None else plt.figure(figsize=(10, 4))
        ax = ax if ax is not None else fig.gca()
        ax.plot(range(len(self.iter_losses)), self.iter_losses, "b-", alpha=0.7)
        ax.set_xlabel("Iteration")
        ax.set_ylabel("Loss")
        ax.set_title(title)
        ax.grid(True)
        return fig

    def plot_epochs(self, axes=None, title: str | None = None):
        """The seed's second plot: accuracy and loss per epoch, train and test. Returns the Figure."""
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        fig = axes[0].figure
        x = range(1, len(self.epochs) + 1)
        for ax, key, label in ((axes[0], "acc", "Accuracy (%)"), (axes[1], "loss", "Loss")):
            ax.plot(x, self.column(f"train_{key}"), "b-o", label="Train", markersize=3)
            ax.plot(x, self.column(f"test_{key}"), "r-o", label="Test", markersize=3)
            ax.set_xlabel("Epoch")
            ax.set_ylabel(label)
            ax.set_title(f"{label.split(' ')[0]} per epoch")
            ax.legend()
            ax.grid(True)
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

    def __init__(self, enabled: bool | None = None, min_interval: float = 3.0, title: str = "Training") -> None:
        self.enabled = in_notebook() if enabled is None else enabled
        self.min_interval = min_interval
        self.title = title
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
            for ax, label in zip(axes[1:], ("Accuracy (%)", "Loss")):
                ax.set_title(f"{label.split(' ')[0]} per epoch (after the first epoch)")
                ax.set_xlabel("Epoch")
                ax.set_ylabel(label)
        fig.suptitle(self.title)
        fig.tight_layout()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)


# ----------------------------------------------------------------------------------------------
# checkpoints


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used here: damaged, not a checkpoint, or from another model.
    The message says what was expected, what was found, and what to do."""


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` with ``torch.save`` atomically (a temporary file, then ``os.replace``), so
    an interrupted write never leaves a half-written checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def _describe_model(config: dict | None) -> str:
    if not config or "model" not in config:
        return "an unknown model"
    m = config["model"]
    return f"{m.get('class', 'model')}(attention={m.get('attention')!r}, width={m.get('width')}, num_classes={m.get('num_classes')})"


def model_config(model: nn.Module) -> dict:
    """The constructor arguments that rebuild ``model`` (for an AttentionCNN), stored in checkpoints."""
    if isinstance(model, AttentionCNN):
        return {"class": "AttentionCNN", "attention": model.attention, "width": model.width,
                "num_classes": model.num_classes}
    return {"class": type(model).__name__}


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None,
                    map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint safely (``torch.load(..., weights_only=True)``); with ``model``, check
    that it fits and load its weights into it.

    Accepts the course's checkpoints and plain state_dicts (such as one saved from the seed's
    model). Returns the checkpoint as a dict (``"model"``, and for the course's own also
    ``"optimizer"``, ``"history"``, ``"config"``, ...).

    Raises:
        CheckpointError: the file is missing, damaged, not a checkpoint, or holds another
            architecture; the message says what was expected and what was found.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}: train first, or check the path.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # zip/pickle/EOF errors: the file is damaged or not ours
        reason = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) or "Weights only load failed" in str(err):
            reason = "it holds Python objects, not just tensors, so it is not loaded for safety"
        raise CheckpointError(
            f"Cannot read checkpoint {path}: the file is damaged or not a PyTorch checkpoint "
            f"({type(err).__name__}: {reason[:160]}). Delete it and train again (or copy it again)."
        ) from None
    if isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        ckpt = {"model": ckpt}  # a plain state_dict
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise CheckpointError(f"{path} is not a model checkpoint: expected a dict with a 'model' "
                              f"state_dict, found {type(ckpt).__name__}"
                              + (f" with keys {sorted(ckpt)[:6]}" if isinstance(ckpt, dict) else "") + ".")
    if model is not None:
        check_compatible(ckpt, model, path)
        model.load_state_dict(ckpt["model"])
    return ckpt


def check_compatible(ckpt: dict, model: nn.Module, path: str | os.PathLike = "checkpoint") -> None:
    """Raise :class:`CheckpointError` unless ``ckpt``'s weights fit ``model`` (same config, same
    tensor names and shapes); the message names what was expected and what was found."""
    expected = model_config(model)
    found = (ckpt.get("config") or {}).get("model")
    if found and expected.get("class") == found.get("class") and found != expected:
        raise CheckpointError(
            f"Checkpoint {path} holds {_describe_model({'model': found})}, but the model here is "
            f"{_describe_model({'model': expected})}. Build the same model (or use another output "
            f"folder) to use it.")
    own = model.state_dict()
    theirs = ckpt["model"]
    missing = [k for k in own if k not in theirs]
    extra = [k for k in theirs if k not in own]
    shapes = [(k, tuple(theirs[k].shape), tuple(v.shape)) for k, v in own.items()
              if k in theirs and tuple(theirs[k].shape) != tuple(v.shape)]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} weights missing (e.g. {missing[0]!r})")
        if extra:
            parts.append(f"{len(extra)} unexpected weights (e.g. {extra[0]!r})")
        if shapes:
            k, s_found, s_exp = shapes[0]
            parts.append(f"{len(shapes)} shapes differ (e.g. {k!r}: expected {s_exp}, found {s_found})")
        where = f" It was saved from {_describe_model(ckpt.get('config'))}." if found else ""
        raise CheckpointError(
            f"Checkpoint {path} does not fit the model here, {_describe_model({'model': expected})}: "
            f"{'; '.join(parts)}.{where} Build the model it was saved from, or train a new one.")


# ----------------------------------------------------------------------------------------------
# the trainer


class Trainer:
    """Trains a model with a :class:`~cbam_course.recipes.Recipe` on in-memory data.

    Args:
        model: the network (moved to ``device``).
        train_data, test_data: :class:`~cbam_course.data.ImageSet` s.
        recipe: a Recipe or its name ("seed", "fast").
        device: default: the best at hand (:func:`~cbam_course.runtime.get_device`).
        seed: seeds the shuffle, the augmentation and dropout; a CPU run repeats exactly.
        checkpoint_path: where a checkpoint is written after every epoch (and on interrupt).
        metrics_path: where ``{"epochs": [...]}`` is written after every epoch (JSON).
        amp: mixed precision (default: on for CUDA; bfloat16 where supported, else float16
            with a GradScaler).
        channels_last: default: on for CUDA.
        progress: show tqdm progress bars.
        live_plot: redraw a plot in the notebook as training goes (default: in notebooks).
        tta: evaluate with flip test-time augmentation.
        config: extra JSON-able facts stored in the checkpoint (data, profile, ...).

    On the CPU the Trainer also calls :func:`~cbam_course.runtime.keep_freed_memory`, so that the
    process keeps the memory one step frees for the next (a process-wide setting).
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
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.device.type == "cpu":
            keep_freed_memory()  # saves a page fault per page each step frees and takes back (see its docs)
        self.amp = cuda if amp is None else amp
        self.amp_dtype = torch.bfloat16
        if self.amp and cuda and not torch.cuda.is_bf16_supported():
            self.amp_dtype = torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if (self.amp and self.amp_dtype == torch.float16) else None
        self.seed = seed
        torch.manual_seed(seed)  # dropout's random numbers
        self.optimizer = self.recipe.make_optimizer(self.model)
        self.scheduler = self.recipe.make_scheduler(self.optimizer)
        self.criterion = self.recipe.make_criterion()
        n = len(train_data)
        self.train_loader = BatchLoader(train_data, self.recipe.batch_size, shuffle=True, augment=True,
                                        drop_last=(n % self.recipe.batch_size == 1),  # BatchNorm needs 2+
                                        device=self.device, channels_last=self.channels_last, seed=seed)
        self.test_loader = BatchLoader(test_data, self.recipe.eval_batch_size, device=self.device,
                                       channels_last=self.channels_last)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.metrics_path = Path(metrics_path) if metrics_path else None
        self.progress = progress
        self.live = LivePlot(live_plot, title=f"Training {_describe_model({'model': model_config(model)})}")
        self.tta = tta
        self.history = History()
        self.epoch = 0   # epochs finished
        self.step = 0    # optimizer steps taken
        self.target_epochs = self.recipe.epochs
        self._partial = self._empty_partial()
        self._in_flight = False
        self.config = {"model": model_config(model), "recipe": self.recipe.to_dict(), "seed": seed,
                       "train_data": train_data.description, "test_data": test_data.description,
                       "is_standin": bool(train_data.is_standin), **(config or {})}

    @staticmethod
    def _empty_partial() -> dict:
        return {"loss_sum": 0.0, "correct": 0, "seen": 0, "steps": 0, "seconds": 0.0}

    # -- state --
    def state_dict(self, last_batch_done: bool = True) -> dict:
        """Everything needed to continue this run exactly (all of it loads with weights_only=True)."""
        rng = {"torch": torch.get_rng_state(), "python": random.getstate(),
               "loader": self.train_loader.state_dict(last_batch_done)}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "history": self.history.to_dict(),
            "config": {**self.config, "target_epochs": self.target_epochs},
            "epoch": self.epoch, "step": self.step, "partial": dict(self._partial),
            "rng": rng,
        }

    def save(self, path: str | os.PathLike | None = None, last_batch_done: bool = True) -> Path | None:
        """Write a checkpoint to ``path`` (default: ``checkpoint_path``) and ``metrics.json``."""
        path = Path(path) if path else self.checkpoint_path
        if self.metrics_path:
            _atomic_write_text(self.metrics_path, json.dumps(
                {"epochs": self.history.epochs, "config": self.config}, indent=1))
        if path is None:
            return None
        return save_checkpoint(path, self.state_dict(last_batch_done))

    def resume(self, path: str | os.PathLike | None = None) -> "Trainer":
        """Load a checkpoint written by a Trainer (model, optimizer, scheduler, history, RNG) and
        continue from it. Raises :class:`CheckpointError` if it is damaged or does not fit."""
        path = Path(path) if path else self.checkpoint_path
        if path is None:
            raise ValueError("resume needs a checkpoint path (pass one, or checkpoint_path= to the Trainer).")
        ckpt = load_checkpoint(path, map_location=self.device)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} holds only model weights, not a training run "
                                  f"(expected format {CHECKPOINT_FORMAT!r}); it cannot be resumed.")
        check_compatible(ckpt, self.model, path)
        theirs = ckpt["config"].get("recipe", {})
        if theirs.get("optimizer") != self.recipe.optimizer or theirs.get("schedule") != self.recipe.schedule:
            raise CheckpointError(
                f"Checkpoint {path} was trained with the {theirs.get('name')!r} recipe, this run uses "
                f"{self.recipe.name!r}: resume with the same recipe, or start a new run in another folder.")
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if self.scaler and ckpt.get("scaler"):
                self.scaler.load_state_dict(ckpt["scaler"])
            self.history = History.from_dict(ckpt["history"])
            self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
            self._partial = dict(ckpt["partial"])
            self.target_epochs = int(ckpt["config"].get("target_epochs", self.recipe.epochs))
            rng = ckpt["rng"]
            torch.set_rng_state(rng["torch"].cpu())
            random.setstate(_to_tuple(rng["python"]))
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
            self.train_loader.load_state_dict({k: (v.cpu() if isinstance(v, torch.Tensor) else v)
                                               for k, v in rng["loader"].items()})
        except (KeyError, ValueError, TypeError, RuntimeError) as err:
            raise CheckpointError(f"Checkpoint {path} is incomplete or from another version "
                                  f"({type(err).__name__}: {str(err)[:160]}). Start a new run.") from None
        return self

    # -- training --
    def _train_batch(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``train_step`` with mixed precision; returns the loss and the correct count as tensors
        (no host sync, so CUDA runs ahead)."""
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            outputs = self.model(images)
            loss = self.criterion(outputs, labels)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss.detach(), (outputs.detach().argmax(1) == labels).sum()

    def evaluate(self, tta: bool | None = None) -> tuple[float, float]:
        """Test loss and accuracy (%) now."""
        return evaluate(self.model, self.test_loader, self.criterion, self.device,
                        tta=self.tta if tta is None else tta)

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
        steps_per_epoch = len(self.train_loader)
        planned = self.target_epochs * steps_per_epoch
        if max_steps is not None:
            planned = min(planned, self.step + max_steps)
        start_step, t0 = self.step, time.perf_counter()
        eval_seconds = None
        stop = False
        epoch_bar = tqdm(total=self.target_epochs, initial=self.epoch, desc="epochs", unit="epoch",
                         disable=not self.progress, dynamic_ncols=True)
        self._in_flight = False
        losses: list[torch.Tensor] = []
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        epoch_t0 = time.perf_counter() - self._partial["seconds"]
        try:
            while self.epoch < self.target_epochs and not stop:
                if self._partial.get("trained"):
                    pass  # this epoch's training finished before an interrupt: evaluate it
                elif self._out_of_time(t0, time_budget, start_step, eval_seconds):
                    break  # no time left for another epoch's steps and its evaluation
                else:
                    stop = self._train_epoch(losses, correct, t0, planned, start_step, steps_per_epoch,
                                             time_budget, max_steps, eval_seconds)
                epoch_t0 = time.perf_counter() - self._partial["seconds"]
                t_eval = time.perf_counter()
                test_loss, test_acc = self.evaluate()
                eval_seconds = time.perf_counter() - t_eval
                self._end_epoch(test_loss, test_acc, time.perf_counter() - epoch_t0)
                epoch_bar.update(1)
                last = self.history.epochs[-1]
                epoch_bar.set_postfix(train_acc=f"{last['train_acc']:.1f}%", test_acc=f"{test_acc:.1f}%",
                                      refresh=False)
                self.live.update(self.history, force=True)
                self.save()
        except KeyboardInterrupt:
            self._flush(losses, correct)
            if self._partial.get("trained"):  # stopped while evaluating
                self._partial["seconds"] = time.perf_counter() - epoch_t0
            saved = self.save(last_batch_done=not self._in_flight)
            print(f"Interrupted after {self.step} steps ({self.epoch} epochs done). History kept"
                  + (f"; checkpoint written to {saved} (resume from it to go on)." if saved else "."))
        finally:
            epoch_bar.close()
        return self.history

    def _out_of_time(self, t0: float, time_budget: float | None, start_step: int,
                     eval_seconds: float | None) -> bool:
        """True when the time budget cannot fit one more step plus an evaluation."""
        if time_budget is None:
            return False
        elapsed = time.perf_counter() - t0
        steps = self.step - start_step
        if steps == 0:
            return elapsed >= time_budget
        per_image = elapsed / (steps * self.recipe.batch_size)
        # Before the first evaluation, guess its cost from the training speed (forward only ~1/3).
        guess = eval_seconds if eval_seconds is not None else per_image * len(self.test_loader.data) / 3
        return elapsed + 1.2 * guess >= time_budget

    def _train_epoch(self, losses: list, correct: torch.Tensor, t0: float, planned: int, start_step: int,
                     steps_per_epoch: int, time_budget: float | None, max_steps: int | None,
                     eval_seconds: float | None) -> bool:
        """Train through (the rest of) one epoch; returns True when a budget says stop."""
        from tqdm.auto import tqdm

        self.model.train()
        epoch_t0 = time.perf_counter() - self._partial["seconds"]
        stop = False
        bar = tqdm(total=steps_per_epoch, initial=self._partial["steps"], leave=False,
                   desc=f"epoch {self.epoch + 1}/{self.target_epochs}", unit="batch",
                   disable=not self.progress, dynamic_ncols=True)
        try:
            for images, labels in self.train_loader:
                if isinstance(self.scheduler, OneCycle):
                    progress = self.step / max(planned, 1)
                    if time_budget:
                        progress = max(progress, (time.perf_counter() - t0) / time_budget)
                    self.scheduler.set_progress(progress)
                self._in_flight = True
                loss, right = self._train_batch(images, labels)
                losses.append(loss)
                correct += right
                self.step += 1
                self._partial["steps"] += 1
                self._partial["seen"] += labels.shape[0]
                self._in_flight = False
                bar.update(1)
                if self._partial["steps"] % 20 == 0 or self.device.type == "cpu":
                    self._flush(losses, correct)
                    bar.set_postfix(loss=f"{self.history.iter_losses[-1]:.3f}", refresh=False)
                    self.live.update(self.history)
                if max_steps is not None and self.step - start_step >= max_steps:
                    stop = True
                if self._out_of_time(t0, time_budget, start_step, eval_seconds):
                    stop = True
                if stop:
                    self.train_loader.end_epoch()  # a budget ends this epoch here
                    break
        finally:
            bar.close()
            self._partial["seconds"] = time.perf_counter() - epoch_t0
        self._flush(losses, correct)
        self._partial["trained"] = True
        return stop

    def _flush(self, losses: list[torch.Tensor], correct: torch.Tensor) -> None:
        """Move the per-step losses to the history (one host sync for many steps)."""
        if losses:
            values = torch.stack(losses).float().cpu().tolist()
            self.history.iter_losses.extend(values)
            self._partial["loss_sum"] += sum(values)
            losses.clear()
        self._partial["correct"] += int(correct.item())
        correct.zero_()

    def _end_epoch(self, test_loss: float, test_acc: float, seconds: float) -> None:
        p = self._partial
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(test_loss)  # the seed's schedule: on the test loss, once per epoch
        self.epoch += 1
        self.history.epochs.append({
            "epoch": self.epoch,
            "train_loss": p["loss_sum"] / max(p["steps"], 1),
            "train_acc": 100.0 * p["correct"] / max(p["seen"], 1),
            "test_loss": test_loss, "test_acc": test_acc,
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": seconds, "steps": p["steps"],
        })
        self._partial = self._empty_partial()
        self.train_loader.end_epoch()


def _to_tuple(x: Any) -> Any:
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def fit(model: nn.Module, train_data: ImageSet, test_data: ImageSet, recipe: Recipe | str = "fast",
        epochs: int | None = None, *, time_budget: float | None = None, max_steps: int | None = None,
        **trainer_options) -> History:
    """Train ``model`` in one call: ``Trainer(model, train_data, test_data, recipe, **options).fit(...)``."""
    trainer = Trainer(model, train_data, test_data, recipe, **trainer_options)
    return trainer.fit(epochs, time_budget=time_budget, max_steps=max_steps)


# ----------------------------------------------------------------------------------------------
# a whole run in one call


def load_profile_data(profile: Profile | str | None = None, root: str | os.PathLike | None = None,
                      seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """The ``(train, test)`` data a profile uses: the stand-in for "quick", CIFAR-10 otherwise."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    if profile.data == "standin":
        return make_standin(profile.n_train or 2000, profile.n_test or 500, seed=seed)
    return load_cifar10(root, train=True), load_cifar10(root, train=False)


def train_model(attention: str = "cbam", *, profile: Profile | str | None = None,
                recipe: Recipe | str | None = None,
                epochs: int | None = None, width: int | None = None, data: tuple[ImageSet, ImageSet] | None = None,
                data_root: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None,
                resume: bool = False, seed: int = 0, time_budget: float | None = None,
                max_steps: int | None = None, device: str | torch.device | None = None,
                progress: bool = True, live_plot: bool | None = None, tta: bool = False,
                amp: bool | None = None, channels_last: bool | None = None) -> Trainer:
    """Build an :class:`~cbam_course.models.AttentionCNN` and train it as a profile says.

    Anything not given comes from the profile (default :func:`~cbam_course.recipes.get_profile`):
    recipe, epochs, width, time budget, step budget. A time budget counts from this call, so it
    includes loading the data and every evaluation. With ``out_dir`` the run writes
    ``checkpoint.pt`` and ``metrics.json`` there after every epoch; ``resume=True`` continues
    from that checkpoint up to ``epochs``. Returns the :class:`Trainer` (``.model``,
    ``.history``).

    ``amp`` and ``channels_last`` default to the Trainer's choice (on for CUDA), except that a
    profile with ``cpu_bfloat16`` (the laptop profile) turns both on for a CPU that computes
    bfloat16 natively: that is how its time and accuracy were measured (docs/performance.md).
    Elsewhere bfloat16 is emulated and slower, so it stays off.
    """
    from .runtime import seed_everything

    started = time.perf_counter()
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    recipe_obj = get_recipe(recipe or profile.recipe)
    width = width or profile.width
    epochs = epochs or profile.epochs
    time_budget = time_budget if time_budget is not None else profile.time_budget
    max_steps = max_steps if max_steps is not None else profile.max_steps
    train_data, test_data = data if data is not None else load_profile_data(profile, data_root, seed)
    seed_everything(seed)
    model = AttentionCNN(num_classes=len(train_data.classes), attention=attention, width=width)
    out = Path(out_dir) if out_dir is not None else None
    on_cpu = (torch.device(device) if device is not None else get_device()).type == "cpu"
    if amp is None and on_cpu and profile.cpu_bfloat16 and cpu_has_native_bfloat16():
        amp = True
        channels_last = True if channels_last is None else channels_last
    trainer = Trainer(model, train_data, test_data, recipe_obj, device=device, seed=seed,
                      amp=amp, channels_last=channels_last,
                      checkpoint_path=out / CHECKPOINT_NAME if out else None,
                      metrics_path=out / METRICS_NAME if out else None,
                      progress=progress, live_plot=live_plot, tta=tta,
                      config={"profile": profile.name})
    if resume:
        if out is None:
            raise ValueError("resume=True needs out_dir, the folder that holds checkpoint.pt.")
        trainer.resume()
    if time_budget is not None:  # the budget covers the whole run: loading data counts too
        time_budget = max(1e-3, time_budget - (time.perf_counter() - started))
    trainer.fit(epochs, time_budget=time_budget, max_steps=max_steps)
    return trainer
