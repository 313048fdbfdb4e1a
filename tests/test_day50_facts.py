"""The Day 50 lesson's facts that lessons 05 and 06 state, pinned against the course's own copy of
its code (``cbam_course/day50.py``) and the course's record of its recipe (``RECIPES["day50"]``),
never against ``../shared``:

- its classifier is Dropout(0.5) and a single Linear(256, 10);
- its ``train()`` returns the test accuracy of the last epoch, not of the best one;
- it steps ReduceLROnPlateau on the test loss, and so does the course's ``Trainer`` with the
  lesson's recipe, whose final result is likewise the last epoch's test accuracy;
- ReduceLROnPlateau(patience=5), as the recipe sets it up, halves the learning rate on the 6th epoch
  in a row without a relative improvement of more than 1e-4, not after the 5th.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from cbam_course import AttentionCNN, day50
from cbam_course.train import Trainer
from cbam_course.train.data import ImageSet
from cbam_course.train.recipes import RECIPES


class Scripted(nn.Module):
    """A network whose test answers follow a script, so its test accuracy per epoch is known in advance.

    Its epoch is the number of times it has been put in training mode: both training loops (the Day
    50 lesson's ``train`` and the course's ``Trainer``) do that once per epoch. In eval mode it reads
    the class (0 or 1) from the sign of the image's mean and answers it in the epochs listed in
    ``right``, the other class in the rest. In training mode its output is a learnable bias, so that
    the optimizer has something to step.
    """

    def __init__(self, right: set[int]) -> None:
        super().__init__()
        self.right, self.epoch = right, 0
        self.bias = nn.Parameter(torch.zeros(10))

    def train(self, mode: bool = True) -> "Scripted":
        self.epoch += int(mode)
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.bias.expand(x.shape[0], 10)
        truth = (x.mean(dim=(1, 2, 3)) > 0).long()
        answer = truth if self.epoch in self.right else 1 - truth
        return 10.0 * nn.functional.one_hot(answer, 10).float()


class SpyPlateau:
    """Records what a ReduceLROnPlateau is stepped with, and steps it."""

    def __init__(self, scheduler) -> None:
        self.scheduler, self.seen = scheduler, []

    def step(self, metric) -> None:
        self.seen.append(float(metric))
        self.scheduler.step(metric)


def _two_class_images(n: int, uint8: bool) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(n) % 2
    if uint8:   # black for class 0, white for class 1: the sign of the normalised mean tells them apart
        images = (labels * 255).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, 32, 32).contiguous()
    else:
        images = (labels.float() * 2 - 1).view(n, 1, 1, 1).expand(n, 3, 8, 8).contiguous()
    return images, labels


def _run_day50_train(monkeypatch, model, scheduler, train_set, test_set, epochs):
    """The Day 50 lesson's ``train`` with its two plots captured instead of drawn."""
    curves = {}
    monkeypatch.setattr(day50, "plot_iter_losses", lambda losses, indices: curves.update(iter_losses=losses))
    monkeypatch.setattr(day50, "plot_epoch_metrics", lambda train_acc, test_acc, train_loss, test_loss:
                        curves.update(train_acc=train_acc, test_acc=test_acc, train_loss=train_loss,
                                      test_loss=test_loss))
    optimizer = scheduler.scheduler.optimizer if isinstance(scheduler, SpyPlateau) else None
    result = day50.train(model, DataLoader(train_set, batch_size=8, shuffle=True), DataLoader(test_set, batch_size=5),
                        nn.CrossEntropyLoss(), optimizer, scheduler, "cpu", epochs)
    return result, curves


def _day50_plateau(model):
    """The Day 50 lesson's optimizer and schedule (section 5.3), without the removed ``verbose``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001, weight_decay=1e-4)
    return SpyPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=5))


def test_the_day50_classifier_is_dropout_and_one_linear_layer():
    classifier = day50.CBAM_CNN().classifier
    assert [type(m) for m in classifier] == [nn.Dropout, nn.Linear]
    dropout, linear = classifier
    assert dropout.p == 0.5
    assert (linear.in_features, linear.out_features, linear.bias is not None) == (256, 10, True)
    # the course's AttentionCNN has the same head, module for module
    ours = AttentionCNN(attention="cbam").classifier
    assert [type(m) for m in ours] == [nn.Dropout, nn.Linear] and ours[0].p == 0.5
    assert (ours[1].in_features, ours[1].out_features) == (256, 10)


def test_day50_train_returns_the_last_epochs_test_accuracy_and_steps_on_the_test_loss(monkeypatch):
    """The lesson's own network (width 16) on a few generated images, with its optimizer and schedule."""
    torch.manual_seed(0)
    train_set = TensorDataset(torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,)))
    test_set = TensorDataset(torch.randn(10, 3, 32, 32), torch.randint(0, 10, (10,)))
    model = day50.CBAM_CNN(width=16)
    spy = _day50_plateau(model)
    result, curves = _run_day50_train(monkeypatch, model, spy, train_set, test_set, epochs=2)
    assert len(curves["test_acc"]) == 2 and result == curves["test_acc"][-1]
    assert spy.seen == curves["test_loss"]   # the schedule saw the test loss after every epoch
    assert spy.seen != curves["train_loss"]


def test_day50_train_returns_the_last_epoch_not_the_best(monkeypatch):
    train_set = TensorDataset(*_two_class_images(16, uint8=False))
    test_set = TensorDataset(*_two_class_images(10, uint8=False))
    model = Scripted(right={1, 2})   # right in epochs 1 and 2, wrong in epoch 3
    result, curves = _run_day50_train(monkeypatch, model, _day50_plateau(model), train_set, test_set, epochs=3)
    assert curves["test_acc"] == [100.0, 100.0, 0.0]
    assert result == 0.0 != max(curves["test_acc"])


def test_the_courses_day50_recipe_steps_the_plateau_on_the_test_loss_and_reports_the_last_epoch():
    """``Trainer`` with ``RECIPES["day50"]`` (no holdout) evaluates the test set after every epoch, steps
    ReduceLROnPlateau on that loss, and its final result is the last epoch's test accuracy."""
    recipe = RECIPES["day50"]
    assert recipe.holdout == 0 and recipe.schedule == "plateau"
    train_data = ImageSet(*_two_class_images(16, uint8=True), description="two-class test images")
    test_data = ImageSet(*_two_class_images(10, uint8=True), description="two-class test images")
    trainer = Trainer(Scripted(right={1, 2}), train_data, test_data, recipe, device="cpu", progress=False,
                      live_plot=False)
    assert isinstance(trainer.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    seen, step = [], trainer.scheduler.step
    trainer.scheduler.step = lambda metric: (seen.append(float(metric)), step(metric))[1]
    history = trainer.fit(epochs=3)
    assert history.eval_split == "test" and "val_loss" not in history.epochs[0]
    assert seen == history.column("test_loss") and seen != history.train_loss
    assert history.eval_acc == [100.0, 100.0, 0.0]
    assert history.final_test_acc == history.eval_acc[-1] == 0.0 != max(history.eval_acc)


def test_the_plateau_schedule_halves_on_the_sixth_epoch_without_a_relative_improvement_of_1e_4():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1e-3)
    plateau = RECIPES["day50"].make_scheduler(optimizer)
    assert (plateau.patience, plateau.threshold, plateau.threshold_mode) == (5, 1e-4, "rel")
    # best 0.8 after epoch 3; epoch 6's 0.79995 is lower, but by less than 1e-4 of 0.8: not an improvement
    losses = [1.0, 0.9, 0.8, 0.8, 0.81, 0.79995, 0.85, 0.8, 0.82]
    lrs = []
    for loss in losses:
        plateau.step(loss)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[:8] == [1e-3] * 8        # five bad epochs (4-8) are not enough ...
    assert lrs[8] == 5e-4               # ... the sixth (epoch 9) halves the rate
    # the same run with a real improvement at epoch 6 (0.7999 < 0.8 * (1 - 1e-4)) starts the count again
    optimizer.param_groups[0]["lr"] = 1e-3
    plateau = RECIPES["day50"].make_scheduler(optimizer)
    for loss in [1.0, 0.9, 0.8, 0.8, 0.81, 0.7999, 0.85, 0.8, 0.82]:
        plateau.step(loss)
    assert optimizer.param_groups[0]["lr"] == 1e-3
