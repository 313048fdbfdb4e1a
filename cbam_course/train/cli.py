"""``python -m cbam_course train ...``: train the Day 50 lesson's CNN from a terminal.

    python -m cbam_course train --attention cbam --epochs 5 [--out runs/cbam] [--quick] [--resume]
                                [--recipe day50|fast|fast128] [--width W] [--data DIR] [--seed S]
                                [--time-budget SECONDS] [--profile quick|laptop|full]
                                [--set FIELD=VALUE] [--amp auto|on|off] [--channels-last auto|on|off]

Without ``--out`` the run store (:mod:`cbam_course.train.store`) is used: a run trained before with
the same settings is loaded, not trained again (the output names its folder), and a new one is
trained into the store (an interrupted one resumes). With ``--out`` it trains into that folder,
writing ``checkpoint.pt`` and ``metrics.json`` after every epoch. Expected problems (no data, a
damaged or foreign checkpoint, a damaged stored run) end with one line on stderr and exit code 1,
without a traceback.

The training options are defined once here (:func:`training_parser`); ``python -m cbam_course
bench laptop|full`` parses the same options and trains through :func:`train_from_args`.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from ..i18n import tr
from ..models import ATTENTIONS
from ..runtime import get_device
from .checkpoints import CHECKPOINT_NAME, METRICS_NAME, CheckpointError, load_checkpoint
from .cifar10 import DataError
from .data import ImageSet
from .recipes import PROFILES, RECIPES, Profile, get_profile, get_recipe, machine_profile, parse_overrides
from .run import train_model
from .store import RunStoreError, fetch_run
from .trainer import Trainer

__all__ = ["train_main", "training_parser", "train_from_args"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(tr("expected a positive integer, got {text}", text=text))
    return value


def _switch(text: str) -> bool | None:
    """auto/on/off -> None/True/False."""
    return {"auto": None, "on": True, "off": False}[text]


def training_parser(prog: str, description: str, *, default_device: str | None = None) -> argparse.ArgumentParser:
    """The options of a training run, shared by ``train`` and ``bench laptop|full``."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--attention", choices=ATTENTIONS, default="cbam", help="attention after each block")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None,
                   help="run size (default: $CBAM_COURSE_PROFILE, else laptop on CPU, full on GPU)")
    p.add_argument("--quick", action="store_true", help="the generated stand-in and a few steps (seconds)")
    p.add_argument("--recipe", choices=sorted(RECIPES), default=None, help="training recipe (default: the profile's)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a recipe field, e.g. --set batch_size=512 --set label_smoothing=0.2 (repeatable)")
    p.add_argument("--epochs", type=_positive_int, default=None,
                   help="epochs the schedule plans for (default: the profile's); a budget may stop it sooner")
    p.add_argument("--width", type=_positive_int, default=None, help="channels of the first block (the Day 50 lesson: 64)")
    p.add_argument("--data", default=None, help="CIFAR-10 folder (default: $CBAM_COURSE_DATA or data/)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--time-budget", type=float, default=None,
                   help="seconds for the whole run, loading and evaluation included (default: the profile's; 0: none)")
    p.add_argument("--max-steps", type=_positive_int, default=None, help="stop after this many steps")
    p.add_argument("--device", default=default_device,
                   help=f"cpu, cuda or mps (default: {default_device or 'the best at hand'})")
    p.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                   help="bfloat16/float16 autocast (auto: the profile's choice, by measurement on a CPU)")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                   help="channels_last memory format (auto: the profile's choice, by measurement on a CPU)")
    p.add_argument("--threads", type=_positive_int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", default=None, help="folder for checkpoint.pt and metrics.json")
    return p


def profile_of(args: argparse.Namespace) -> Profile:
    """The profile the options name: quick with ``--quick``, else ``--profile``, else this machine's."""
    return get_profile("quick" if args.quick else args.profile, default=machine_profile())


def train_from_args(args: argparse.Namespace, *, tta: bool | None = None, resume: bool = False,
                    progress: bool = True, data: tuple[ImageSet, ImageSet] | None = None,
                    spent: float = 0.0) -> Trainer:
    """Train as :func:`training_parser`'s options say, through :func:`~cbam_course.train.train_model`.
    ``data``: already loaded, in ``spent`` seconds that the time budget then counts too.
    Raises ValueError for options that do not fit, DataError and CheckpointError as train_model does."""
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = profile_of(args)
    recipe = get_recipe(args.recipe or profile.recipe, **parse_overrides(args.set))
    budget = profile.time_budget if args.time_budget is None else (args.time_budget or math.inf)  # 0: none
    budget = budget - spent if budget is not None else None
    return train_model(args.attention, profile=profile, recipe=recipe, epochs=args.epochs, width=args.width,
                       data=data, data_root=args.data, out_dir=args.out, resume=resume, seed=args.seed,
                       time_budget=budget, max_steps=args.max_steps,
                       device=get_device(args.device), progress=progress, live_plot=False, tta=tta,
                       amp=_switch(args.amp), channels_last=_switch(args.channels_last))


def _resume_mismatch(out: Path, profile: Profile) -> str | None:
    """Why the run in ``out`` cannot be resumed with ``profile``'s data, or None: a run trained on
    the generated stand-in resumes only with --quick, a run on CIFAR-10 only without it. Checked
    before any data is loaded, so the answer is this, not a data error. A missing or damaged
    checkpoint is left for the Trainer to report."""
    try:
        config = load_checkpoint(out / CHECKPOINT_NAME).get("config") or {}
    except CheckpointError:
        return None
    if "is_standin" not in config and "profile" not in config:
        return None  # not written by this course's Trainer: nothing to compare
    was_quick = bool(config.get("is_standin")) or config.get("profile") == "quick"
    now_quick = profile.data == "standin"
    if was_quick and not now_quick:
        return tr("this run was a quick run (the generated stand-in): add --quick to resume it, "
                  "or start a new run in another folder.")
    if now_quick and not was_quick:
        name = config.get("profile")
        how = f"--profile {name}" if name in PROFILES else tr("the profile it was trained with")
        return tr("this run was trained on real CIFAR-10 (profile {name}), not the generated stand-in: resume it "
                  "without --quick ({how}), or start a new quick run in another folder.", name=repr(name), how=how)
    return None


def _train_parser() -> argparse.ArgumentParser:
    p = training_parser("python -m cbam_course train",
                        "Train the Day 50 lesson's CNN with a choice of attention on CIFAR-10 "
                        "(or the generated stand-in with --quick).")
    p.set_defaults(out=None)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt up to --epochs")
    p.add_argument("--tta", action="store_true", help="evaluate with flip test-time augmentation")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _error(err: Exception | str) -> int:
    """Print ``err`` as the one line ``error: ...`` on stderr (in the learner's language); exit code 1."""
    print(tr("error: {message}", message=" ".join(str(err).split())), file=sys.stderr)
    return 1


def train_main(argv: list[str]) -> int:
    """``python -m cbam_course train ...``: returns the exit code."""
    args = _train_parser().parse_args(argv)
    if args.out is None:
        return _store_main(args)
    if not args.resume and (Path(args.out) / CHECKPOINT_NAME).is_file():
        print(tr("note: starting a new run; {path} will be replaced (add --resume to continue it instead).",
                 path=Path(args.out) / CHECKPOINT_NAME), file=sys.stderr)
    try:
        mismatch = _resume_mismatch(Path(args.out), profile_of(args)) if args.resume else None
        if mismatch:
            return _error(mismatch)
        trainer = train_from_args(args, tta=args.tta, resume=args.resume, progress=not args.no_progress)
    except (CheckpointError, DataError, ValueError) as err:
        return _error(err)
    h = trainer.history
    if h.epochs:
        last = h.epochs[-1]
        files = f"{args.out}/{CHECKPOINT_NAME}, {args.out}/{METRICS_NAME}"
        if h.test.get("tta_acc") is not None:
            print(tr("{attention}: {epochs} epochs, {steps} steps, train acc {train_acc:.2f}%, test acc {test_acc:.2f}% "
                     "({tta_acc:.2f}% with flip TTA) -> {files}", attention=args.attention, epochs=trainer.epoch,
                     steps=trainer.step, train_acc=last["train_acc"], test_acc=h.final_test_acc,
                     tta_acc=h.test["tta_acc"], files=files))
        else:
            print(tr("{attention}: {epochs} epochs, {steps} steps, train acc {train_acc:.2f}%, test acc {test_acc:.2f}% "
                     "-> {files}", attention=args.attention, epochs=trainer.epoch, steps=trainer.step,
                     train_acc=last["train_acc"], test_acc=h.final_test_acc, files=files))
    return 0


def _store_main(args: argparse.Namespace) -> int:
    """``train`` without ``--out``: the run from the store, or trained into it."""
    if args.tta:
        return _error(tr("--tta needs --out: stored runs are tested without flip TTA, so that the lessons find them. "
                         "Add --out DIR to train a run of your own with it."))
    chosen = [name for name, used in (("--set", args.set), ("--amp", args.amp != "auto"),
                                      ("--channels-last", args.channels_last != "auto")) if used]
    if chosen:
        return _error(tr("{options} needs --out: the run store holds the runs the lessons use, trained as their "
                         "profile says. Add --out DIR to train a run of your own.", options=", ".join(chosen)))
    try:
        run = fetch_run(args.attention, profile=profile_of(args), recipe=args.recipe, epochs=args.epochs,
                        width=args.width, data_root=args.data, seed=args.seed, time_budget=args.time_budget,
                        max_steps=args.max_steps, device=get_device(args.device),
                        progress=not args.no_progress, live_plot=False)
    except (RunStoreError, CheckpointError, DataError, ValueError) as err:
        return _error(err)
    except KeyboardInterrupt as err:
        print(tr("interrupted: {message}", message=err) if str(err)
              else tr("interrupted: run the same command again to resume."), file=sys.stderr)
        return 130
    if run.trained:
        print(tr("{attention}: {epochs} epochs, {steps} steps, test acc {acc:.2f}% -> {folder} (trained now; --out "
                 "DIR trains one of your own)", attention=args.attention, epochs=run.epoch, steps=run.step,
                 acc=run.test_acc, folder=run.folder))
    else:
        print(tr("{attention}: {epochs} epochs, {steps} steps, test acc {acc:.2f}% -> {folder} (loaded from the run "
                 "store; --out DIR trains one of your own)", attention=args.attention, epochs=run.epoch,
                 steps=run.step, acc=run.test_acc, folder=run.folder))
    return 0
