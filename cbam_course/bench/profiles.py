"""``python -m cbam_course bench laptop|full``: a profile end to end on real CIFAR-10, as a lesson runs it.

It parses the training command line's options (:func:`cbam_course.train.cli.training_parser`) and
trains through :func:`~cbam_course.train.cli.train_from_args`, so the figure it prints is what a
learner's lesson 05 gets; options only override the profile's choices, for ablations. It adds
the report a benchmark needs: the machine, the passes over the data, every epoch, when a target
accuracy was first reached, the test accuracy with and without flip TTA, and how much of the
time budget was used.
"""
from __future__ import annotations

import time

import torch

from ..fast.cpu import machine_line
from ..runtime import get_device
from ..train.cifar10 import DataError
from ..train.cli import profile_of, train_from_args, training_parser
from ..train.recipes import get_recipe, parse_overrides
from ..train.run import load_profile_data

__all__ = ["COMMANDS"]

TARGETS = {"laptop": ("cpu", 80.0), "full": (None, 91.11)}  # default device, default target accuracy


def profile_main(name: str, argv: list[str]) -> int:
    """``bench laptop`` (the CPU profile, time-budgeted) and ``bench full`` (the GPU profile)."""
    default_device, default_target = TARGETS[name]
    p = training_parser(f"python -m cbam_course bench {name}",
                        f"The {name} profile end to end, as train_model runs it: load CIFAR-10, train within "
                        "the time budget (if any), test once with and without flip TTA, and say how much of "
                        "the budget was used.", default_device=default_device)
    p.set_defaults(profile=name)
    p.add_argument("--target", type=float, default=default_target,
                   help=f"report the first epoch whose validation accuracy reaches this (default {default_target})")
    args = p.parse_args(argv)
    try:
        profile = profile_of(args)
        recipe = get_recipe(args.recipe or profile.recipe, **parse_overrides(args.set))
        get_device(args.device)
    except ValueError as err:
        print(f"error: {err}")
        return 2
    budget = profile.time_budget if args.time_budget is None else (args.time_budget or None)
    print(f"{name.capitalize()} profile: {args.attention}, width {args.width or profile.width}, recipe {recipe.name} "
          f"({', '.join(args.set) or 'as defined'}), {args.epochs or profile.epochs} planned epochs; "
          + (f"budget {budget:.0f} s wall, loading and evaluation included" if budget else "no time budget"))
    print("machine: " + machine_line(full=True))
    t_start = time.perf_counter()
    try:
        data = load_profile_data(profile, args.data, args.seed)
    except DataError as err:
        print(f"error: {' '.join(str(err).split())}")
        return 1
    loaded = time.perf_counter() - t_start
    print(f"data: {len(data[0])} training and {len(data[1])} test images "
          f"({'the generated stand-in' if data[0].is_standin else 'real images'}); loaded in {loaded:.1f} s")
    if budget is not None and budget <= loaded:
        print(f"error: no epoch fits in the {budget:.0f} s budget (loading took {loaded:.1f} s); "
              f"give it a larger --time-budget.")
        return 1
    try:
        trainer = train_from_args(args, progress=False, data=data, spent=loaded)
    except ValueError as err:
        print(f"error: {' '.join(str(err).split())}")
        return 1
    t_end = time.perf_counter()
    h = trainer.history
    if not h.epochs or h.test is None:
        print(f"error: no epoch fits in the {budget:.0f} s budget (loading took {loaded:.0f} s); "
              f"give it a larger --time-budget.")
        return 1
    images = len(trainer.train_loader.data)
    print(f"trained {trainer.step} steps ({trainer.step * recipe.batch_size / images:.2f} passes over {images} "
          f"images, {trainer.epoch} evaluations on the {'validation split' if h.eval_split == 'val' else 'test set'}); "
          f"set-up: {'channels_last' if trainer.channels_last else 'NCHW'}, "
          f"{'autocast ' + str(trainer.amp_dtype).split('.')[-1] if trainer.amp else 'float32'}, "
          f"{torch.get_num_threads()} threads")
    wall, reached = loaded, None
    for e in h.epochs:
        wall += e["seconds"]
        if reached is None and e[f"{h.eval_split}_acc"] >= args.target:
            reached = (e["epoch"], wall)
        print(f"  epoch {e['epoch']}: train acc {e['train_acc']:.2f}%, {h.eval_split} acc "
              f"{e[f'{h.eval_split}_acc']:.2f}%, {e['seconds']:.1f} s ({wall:.0f} s wall), {e['steps']} steps, "
              f"lr {e['lr']:.4f}")
    if reached:
        print(f"target {args.target:.2f}% first reached ({h.eval_split}) at epoch {reached[0]}, {reached[1]:.0f} s wall")
    else:
        print(f"target {args.target:.2f}% not reached on {h.eval_split} (best {max(h.eval_acc):.2f}%)")
    print(f"test accuracy without TTA: {h.test['acc']:.2f}%")
    if h.test.get("tta_acc") is not None:
        print(f"test accuracy with flip TTA: {h.test['tta_acc']:.2f}%")
    lr = trainer.optimizer.param_groups[0]["lr"]
    print(f"wall time: {t_end - t_start:.1f} s"
          + (f" of the {budget:.0f} s budget ({100 * (t_end - t_start) / budget:.1f}% used)" if budget else "")
          + f"; last learning rate {lr:.2g} ({lr / recipe.lr:.1%} of the peak)")
    return 0


COMMANDS = {"laptop": lambda argv: profile_main("laptop", argv), "full": lambda argv: profile_main("full", argv)}
