"""A whole run in one call: the data a profile uses, a network, and the Trainer.

``train_model(...)`` is what lesson 05, lesson 06 and ``python -m cbam_course train`` all call, so
the numbers they print come from one path. It is also the one place in training that turns on
the speed layer (:func:`cbam_course.fast.accelerate`).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from ..fast import accelerate
from ..fast.setup import choose_cpu_setup
from ..i18n import tr
from ..models import AttentionCNN
from ..runtime import get_device, seed_everything
from .checkpoints import CHECKPOINT_NAME, METRICS_NAME
from .cifar10 import load_cifar10
from .data import ImageSet, make_standin
from .recipes import Profile, Recipe, get_profile, get_recipe
from .trainer import Trainer

__all__ = ["load_profile_data", "train_model"]


def load_profile_data(profile: Profile | str | None = None, root: str | os.PathLike | None = None,
                      seed: int = 0, download: bool = True) -> tuple[ImageSet, ImageSet]:
    """The ``(train, test)`` data a profile uses: the stand-in for "quick", CIFAR-10 otherwise
    (downloaded if missing, unless ``download`` is False: then a missing copy raises ``DataError``)."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    if profile.data == "standin":
        return make_standin(profile.n_train or 2000, profile.n_test or 500, seed=seed)
    return load_cifar10(root, train=True, download=download), load_cifar10(root, train=False, download=download)


def train_model(attention: str = "cbam", *, profile: Profile | str | None = None,
                recipe: Recipe | str | None = None,
                epochs: int | None = None, width: int | None = None, data: tuple[ImageSet, ImageSet] | None = None,
                data_root: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None,
                resume: bool = False, seed: int = 0, time_budget: float | None = None,
                max_steps: int | None = None, device: str | torch.device | None = None,
                progress: bool = True, live_plot: bool | None = None, tta: bool | None = None,
                amp: bool | None = None, channels_last: bool | None = None) -> Trainer:
    """Build an :class:`~cbam_course.AttentionCNN`, make it fast (:func:`~cbam_course.fast.accelerate`)
    and train it as a profile says.

    Anything not given comes from the profile (default :func:`~cbam_course.train.recipes.get_profile`):
    recipe, epochs, width, time budget, step budget. A time budget counts from this call, so it
    includes loading the data and every evaluation. With ``out_dir`` the run writes
    ``checkpoint.pt`` and ``metrics.json`` there after every epoch; ``resume=True`` continues
    from that checkpoint up to ``epochs``. Returns the :class:`Trainer` (``.model``,
    ``.history``).

    ``amp`` and ``channels_last`` default to the Trainer's choice (on for CUDA). On a CPU, a
    profile with ``tune_setup`` (the laptop profile) first times a few steps of each candidate
    set-up (memory layout; bfloat16 where the CPU computes it natively and the profile allows it;
    thread count) and trains with the fastest, saying which and why
    (:func:`cbam_course.fast.setup.choose_cpu_setup`); ``amp`` or ``channels_last``, when given,
    fix that part of the choice, and both given skip the timing. ``tta`` (default: the profile's) adds flip
    test-time augmentation to the final test.
    """
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
    model = accelerate(model, keep_memory=on_cpu)
    if on_cpu and profile.tune_setup and (amp is None or channels_last is None):
        if amp is None and not profile.cpu_bfloat16:
            amp = False  # the profile rules bfloat16 out
        setup, why = choose_cpu_setup(model, recipe_obj.batch_size, len(train_data.classes),
                                      channels_last=channels_last, bfloat16=amp)
        amp, channels_last = setup.bfloat16, setup.channels_last
        torch.set_num_threads(setup.threads)
        print(why)
    trainer = Trainer(model, train_data, test_data, recipe_obj, device=device, seed=seed,
                      amp=amp, channels_last=channels_last,
                      checkpoint_path=out / CHECKPOINT_NAME if out else None,
                      metrics_path=out / METRICS_NAME if out else None,
                      progress=progress, live_plot=live_plot, tta=profile.tta if tta is None else tta,
                      config={"profile": profile.name})
    if resume:
        if out is None:
            raise ValueError(tr("resume=True needs out_dir, the folder that holds checkpoint.pt."))
        trainer.resume()
    if time_budget is not None:  # the budget covers the whole run: loading data counts too
        time_budget = max(1e-3, time_budget - (time.perf_counter() - started))
    trainer.fit(epochs, time_budget=time_budget, max_steps=max_steps)
    return trainer
