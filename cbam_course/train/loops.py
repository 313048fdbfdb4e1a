"""The two loops a learner writes in lesson 05, in their plainest form.

- ``train_step(model, images, labels, optimizer, criterion) -> float``
- ``evaluate(model, loader, criterion, device) -> (mean loss per batch, accuracy in %)``

Exercise 05 asks you to write both; these are the reference versions that the Trainer's
evaluation uses. Write your own first: the checkers tell you when yours behaves the same.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn as nn

from ..i18n import tr

__all__ = ["train_step", "evaluate", "scores", "mixed_precision_step"]


def train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
               optimizer: torch.optim.Optimizer, criterion: nn.Module) -> float:
    """One optimisation step on one batch; returns the batch's loss as a float.

    Clear the old gradients, run the model, measure the loss, backpropagate, update the
    weights. (The model's train/eval mode is the caller's business, as in the Day 50 lesson's loop.)
    """
    optimizer.zero_grad()
    outputs = model(images)
    loss = criterion(outputs, labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def evaluate(model: nn.Module, loader: Iterable, criterion: nn.Module,
             device: torch.device | str) -> tuple[float, float]:
    """Loss and accuracy of ``model`` over ``loader``: ``(mean loss per batch, accuracy in %)``.

    Runs in eval mode (dropout off, BatchNorm's running statistics) without gradients: the loop
    is :func:`scores`, which the Trainer's final test uses too.
    """
    result = scores(model, loader, criterion, device)
    return result["loss"], result["acc"]


def scores(model: nn.Module, loader: Iterable, criterion: nn.Module, device: torch.device | str,
           tta: bool = False) -> dict:
    """``{"loss", "acc", "tta_acc"}`` of ``model`` over ``loader``: the mean loss per batch and the
    accuracy in %, and with ``tta`` the accuracy of flip test-time augmentation (each image also
    seen flipped left-right, the two outputs averaged; None without). The flipped pass comes on
    top of the plain one, so both accuracies come from the same forward passes. Eval mode, no
    gradients; on CUDA in bfloat16 autocast."""
    device = torch.device(device)
    model.eval()
    loss, correct, correct_tta, total, batches = 0.0, 0, 0, 0, 0
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            outputs = model(images).float()
            loss += criterion(outputs, labels).item()
            correct += (outputs.argmax(1) == labels).sum().item()
            if tta:
                both = (outputs + model(images.flip(3)).float()) / 2
                correct_tta += (both.argmax(1) == labels).sum().item()
            total += labels.shape[0]
            batches += 1
    if batches == 0:
        raise ValueError(tr("evaluate got an empty loader: there is nothing to evaluate."))
    return {"loss": loss / batches, "acc": 100.0 * correct / total,
            "tta_acc": 100.0 * correct_tta / total if tta else None}


def mixed_precision_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                         optimizer: torch.optim.Optimizer, criterion: nn.Module, amp: bool,
                         amp_dtype: torch.dtype = torch.bfloat16,
                         scaler: "torch.amp.GradScaler | None" = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``train_step`` as the Trainer runs it: under autocast when ``amp`` (with a GradScaler for
    float16), returning the loss and the count of correct answers as tensors, without a host
    sync, so that a GPU can run ahead."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(images.device.type, dtype=amp_dtype, enabled=amp):
        outputs = model(images)
        loss = criterion(outputs, labels)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss.detach(), (outputs.detach().argmax(1) == labels).sum()
