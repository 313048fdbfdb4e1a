"""Checkpoint files: written atomically, read safely (``weights_only=True``), checked against the model.

A checkpoint that cannot be used here (damaged, not a checkpoint, from another model) raises
:class:`CheckpointError` with a message that says what was expected, what was found and what to
do. What a checkpoint holds is the Trainer's business (:meth:`Trainer.state_dict`); this module
only writes, reads and checks files.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn

from .files import atomic_path
from ..i18n import tr
from ..models import AttentionCNN

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "check_compatible", "model_config",
           "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "METRICS_NAME"]

CHECKPOINT_FORMAT = "cbam_course.checkpoint/1"
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used here: damaged, not a checkpoint, or from another model.
    The message says what was expected, what was found, and what to do."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` with ``torch.save`` atomically (:func:`cbam_course.train.files.atomic_path`), so
    an interrupted write never leaves a half-written checkpoint behind."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def _describe_model(config: dict | None) -> str:
    if not config or "model" not in config:
        return tr("an unknown model")
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

    Accepts the course's checkpoints and plain state_dicts (such as one saved from the Day 50 lesson's
    model). Returns the checkpoint as a dict (``"model"``, and for the course's own also
    ``"optimizer"``, ``"history"``, ``"config"``, ...).

    Raises:
        CheckpointError: the file is missing, damaged, not a checkpoint, or holds another
            architecture; the message says what was expected and what was found.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(tr("No checkpoint at {path}: train first, or check the path.", path=path))
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # zip/pickle/EOF errors: the file is damaged or not ours
        reason = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) or "Weights only load failed" in str(err):
            reason = tr("it holds Python objects, not just tensors, so it is not loaded for safety")
        raise CheckpointError(tr(
            "Cannot read checkpoint {path}: the file is damaged or not a PyTorch checkpoint "
            "({error}: {reason}). Delete it and train again (or copy it again).",
            path=path, error=type(err).__name__, reason=reason[:160])) from None
    if isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        ckpt = {"model": ckpt}  # a plain state_dict
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        if isinstance(ckpt, dict):
            raise CheckpointError(tr("{path} is not a model checkpoint: expected a dict with a 'model' state_dict, "
                                     "found {found} with keys {keys}.", path=path, found=type(ckpt).__name__,
                                     keys=sorted(ckpt)[:6]))
        raise CheckpointError(tr("{path} is not a model checkpoint: expected a dict with a 'model' state_dict, "
                                 "found {found}.", path=path, found=type(ckpt).__name__))
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
        raise CheckpointError(tr(
            "Checkpoint {path} holds {found}, but the model here is {expected}. Build the same model (or use "
            "another output folder) to use it.", path=path, found=_describe_model({"model": found}),
            expected=_describe_model({"model": expected})))
    own = model.state_dict()
    theirs = ckpt["model"]
    missing = [k for k in own if k not in theirs]
    extra = [k for k in theirs if k not in own]
    shapes = [(k, tuple(theirs[k].shape), tuple(v.shape)) for k, v in own.items()
              if k in theirs and tuple(theirs[k].shape) != tuple(v.shape)]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(tr("{n} weights missing (e.g. {name})", n=len(missing), name=repr(missing[0])))
        if extra:
            parts.append(tr("{n} unexpected weights (e.g. {name})", n=len(extra), name=repr(extra[0])))
        if shapes:
            k, s_found, s_exp = shapes[0]
            parts.append(tr("{n} shapes differ (e.g. {name}: expected {expected}, found {found})",
                            n=len(shapes), name=repr(k), expected=s_exp, found=s_found))
        where = tr(" It was saved from {model}.", model=_describe_model(ckpt.get("config"))) if found else ""
        raise CheckpointError(tr(
            "Checkpoint {path} does not fit the model here, {model}: {problems}.{where} Build the model it was "
            "saved from, or train a new one.", path=path, model=_describe_model({"model": expected}),
            problems="; ".join(parts), where=where))
