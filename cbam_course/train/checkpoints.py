"""Checkpoints: written atomically, read safely (``weights_only=True``), checked against the model.

A checkpoint that cannot be used here (damaged, not a checkpoint, from another model or recipe)
raises :class:`CheckpointError` with a message that says what was expected, what was found and
what to do. :func:`run_state` and :func:`restore_run` hold everything a Trainer needs to continue
a run exactly: model, optimizer, scheduler, history, config and random-number states.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..models import AttentionCNN

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "check_compatible", "model_config",
           "run_state", "save_run", "restore_run", "atomic_write_text", "CHECKPOINT_NAME", "METRICS_NAME"]

CHECKPOINT_FORMAT = "cbam_course.checkpoint/1"
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used here: damaged, not a checkpoint, or from another model.
    The message says what was expected, what was found, and what to do."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` through a temporary file and ``os.replace``: never half a file."""
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
# a Trainer's whole state


def run_state(trainer: Any, last_batch_done: bool = True) -> dict:
    """Everything needed to continue ``trainer``'s run exactly (all of it loads with weights_only=True)."""
    rng = {"torch": torch.get_rng_state(), "python": random.getstate(),
           "loader": trainer.train_loader.state_dict(last_batch_done)}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "format": CHECKPOINT_FORMAT,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict() if trainer.scaler else None,
        "history": trainer.history.to_dict(),
        "config": {**trainer.config, "target_epochs": trainer.target_epochs},
        "epoch": trainer.epoch, "step": trainer.step, "partial": dict(trainer._partial),
        "rng": rng,
    }


def save_run(trainer: Any, path: Path | None, last_batch_done: bool = True) -> Path | None:
    """Write ``trainer``'s ``metrics.json`` (where it has a ``metrics_path``) and its checkpoint
    to ``path`` (none when ``path`` is None). Returns the checkpoint's path."""
    if trainer.metrics_path:
        atomic_write_text(trainer.metrics_path, json.dumps(
            {"epochs": trainer.history.epochs, "test": trainer.history.test, "config": trainer.config}, indent=1))
    return None if path is None else save_checkpoint(path, run_state(trainer, last_batch_done))


def restore_run(trainer: Any, path: str | os.PathLike) -> None:
    """Load a checkpoint written by a Trainer into ``trainer`` (model, optimizer, scheduler,
    history, RNG). Raises :class:`CheckpointError` if it is damaged or does not fit."""
    from .history import History

    ckpt = load_checkpoint(path, map_location=trainer.device)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} holds only model weights, not a training run "
                              f"(expected format {CHECKPOINT_FORMAT!r}); it cannot be resumed.")
    check_compatible(ckpt, trainer.model, path)
    theirs = ckpt["config"].get("recipe", {})
    recipe = trainer.recipe
    if theirs.get("optimizer") != recipe.optimizer or theirs.get("schedule") != recipe.schedule:
        raise CheckpointError(
            f"Checkpoint {path} was trained with the {theirs.get('name')!r} recipe, this run uses "
            f"{recipe.name!r}: resume with the same recipe, or start a new run in another folder.")
    try:
        trainer.model.load_state_dict(ckpt["model"])
        trainer.optimizer.load_state_dict(ckpt["optimizer"])
        trainer.scheduler.load_state_dict(ckpt["scheduler"])
        if trainer.scaler and ckpt.get("scaler"):
            trainer.scaler.load_state_dict(ckpt["scaler"])
        trainer.history = History.from_dict(ckpt["history"])
        trainer.epoch, trainer.step = int(ckpt["epoch"]), int(ckpt["step"])
        trainer._partial = dict(ckpt["partial"])
        trainer.target_epochs = int(ckpt["config"].get("target_epochs", recipe.epochs))
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        random.setstate(_to_tuple(rng["python"]))
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        trainer.train_loader.load_state_dict({k: (v.cpu() if isinstance(v, torch.Tensor) else v)
                                              for k, v in rng["loader"].items()})
    except (KeyError, ValueError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"Checkpoint {path} is incomplete or from another version "
                              f"({type(err).__name__}: {str(err)[:160]}). Start a new run.") from None


def _to_tuple(x: Any) -> Any:
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
