"""The runs lessons 05 and 06 show, and ``python -m cbam_course prepare``, which trains them all once.

    python -m cbam_course prepare --profile quick|laptop|full [--seeds 3] [--pack runs.tar]

The lessons and ``prepare`` take their runs from the same functions here (:func:`lesson_setup`,
:func:`lesson05_runs`, :func:`comparison_runs`), so a prepared store holds exactly the runs the
lessons look up (:mod:`cbam_course.train.store`). ``prepare`` trains in the order that lets a
class start soonest: lesson 05's two runs, then lesson 06's runs seed by seed (the first seed
reuses lesson 05's runs where they are the same run). Interrupted, it resumes where it stopped.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .data import ImageSet, make_standin
from .recipes import PROFILES, Profile, Recipe, estimate_seconds, get_profile, get_recipe, machine_profile
from .store import MANIFEST_NAME, RunStore, RunStoreError, StoredRun, fetch_run

__all__ = ["LessonSetup", "lesson_setup", "lesson05_runs", "comparison_runs", "prepare", "pack_store",
           "prepare_main"]

COMPARED = ("none", "se", "cbam")


@dataclass(frozen=True)
class LessonSetup:
    """What a lesson trains with in a profile: recipe, width, epochs, time budget, and its data
    (the profile's, or in quick mode lesson 06's own small stand-in)."""

    recipe: Recipe
    width: int
    epochs: int
    time_budget: float | None
    standin: tuple[int, int] | None = None  # (n_train, n_test) of the lesson's own stand-in

    def load_data(self, profile: Profile, root: str | os.PathLike | None = None) -> tuple[ImageSet, ImageSet]:
        """The lesson's ``(train, test)`` data."""
        from .run import load_profile_data

        if self.standin:
            return make_standin(*self.standin, seed=0)
        return load_profile_data(profile, root)


def lesson_setup(lesson: int, profile: Profile | str | None = None) -> LessonSetup:
    """The settings lesson 5 or 6 trains with. In laptop and full mode both use the profile as it
    is (so lesson 06 finds lesson 05's runs); in quick mode each shrinks its runs for seconds:
    lesson 05 uses batches of 64 (more steps in the same few seconds, so the stand-in is learned a
    little), lesson 06 a stand-in of 384 images, batches of 32 and one epoch."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    quick = profile.data == "standin"
    if lesson == 5:
        recipe = get_recipe(profile.recipe, batch_size=64, eval_batch_size=512) if quick else get_recipe(profile.recipe)
        return LessonSetup(recipe, profile.width, profile.epochs, profile.time_budget)
    if lesson == 6:
        if quick:
            return LessonSetup(get_recipe(profile.recipe, batch_size=32, eval_batch_size=256), profile.width,
                               1, None, standin=(384, 256))
        return LessonSetup(get_recipe(profile.recipe), profile.width, profile.epochs, profile.time_budget)
    raise ValueError(f"Only lessons 5 and 6 train; got lesson {lesson!r}.")


def lesson05_runs(profile: Profile | str | None = None, *, data: tuple[ImageSet, ImageSet] | None = None,
                  seed: int = 0, store: RunStore | None = None, fetch: Callable[..., StoredRun] = fetch_run,
                  **options) -> dict[str, StoredRun]:
    """Lesson 05's two runs, ``{"none": run, "cbam": run}``: from the store, or trained and stored."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    setup = lesson_setup(5, profile)
    data = data if data is not None else setup.load_data(profile)
    return {a: fetch(a, profile=profile, recipe=setup.recipe, width=setup.width, epochs=setup.epochs,
                     time_budget=setup.time_budget, seed=seed, data=data, store=store, **options)
            for a in ("none", "cbam")}


def comparison_runs(seeds: Sequence[int], profile: Profile | str | None = None, *,
                    data: tuple[ImageSet, ImageSet] | None = None, store: RunStore | None = None,
                    fetch: Callable[..., StoredRun] = fetch_run, **options) -> dict[str, dict[str, list[StoredRun]]]:
    """Lesson 06's runs for each seed in ``seeds``: ``{"same epochs": {attention: [run per seed]},
    "same time": {...}}`` for attention "none", "se", "cbam", from the store or trained and stored.

    The plain network sets both budgets. It trains first, for the lesson's epochs (or until its
    time budget ends); SE and CBAM then get its number of optimizer steps ("same epochs"), and,
    separately, its wall-clock seconds ("same time": the time budget, or without one the plain
    run's seconds, with up to three times the epochs to fill them). The plain run is the same in
    both columns.
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    setup = lesson_setup(6, profile)
    data = data if data is not None else setup.load_data(profile)
    common = dict(profile=profile, recipe=setup.recipe, width=setup.width, data=data, store=store, **options)
    runs: dict[str, dict[str, list[StoredRun]]] = {"same epochs": {a: [] for a in COMPARED},
                                                   "same time": {a: [] for a in COMPARED}}
    for seed in seeds:
        base = fetch("none", seed=seed, epochs=setup.epochs, time_budget=setup.time_budget or math.inf, **common)
        runs["same epochs"]["none"].append(base)
        runs["same time"]["none"].append(base)
        # A step budget no smaller than the epochs' steps changes nothing: leave it out, so the
        # run is the same run (and the same stored run) as one trained without it.
        steps = None if base.step >= setup.epochs * max(base.steps_per_epoch, 1) else base.step
        seconds = setup.time_budget or base.history.seconds
        for a in ("se", "cbam"):
            runs["same epochs"][a].append(fetch(a, seed=seed, epochs=setup.epochs, time_budget=math.inf,
                                                max_steps=steps, **common))
            runs["same time"][a].append(fetch(a, seed=seed, epochs=setup.epochs if setup.time_budget else 3 * setup.epochs,
                                              time_budget=seconds, **common))
    return runs


# ----------------------------------------------------------------------------------------------
# prepare a store


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def prepare(profile: Profile | str, seeds: int = 3, *, store: RunStore | None = None,
            data_root: str | os.PathLike | None = None, device: str | None = None,
            progress: bool = True) -> list[StoredRun]:
    """Train (or find) every run lessons 05 and 06 show in ``profile`` with seeds ``0..seeds-1``,
    lesson 05's first, with a progress bar and an estimate of the time left. Returns the runs."""
    from tqdm.auto import tqdm

    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    store = store or RunStore()
    if not store.writable:
        raise RunStoreError(f"The run store {store.root} is read-only: prepare into a writable folder "
                            f"(set CBAM_COURSE_RUNS, or pass --store).")
    shared = 2 if profile.data != "standin" and seeds > 0 else 0  # lesson 06's seed 0 reuses two of lesson 05's
    total = 2 + 5 * seeds - shared
    guess = estimate_seconds(profile, device)
    done: dict[str, StoredRun] = {}
    trained_seconds: list[float] = []
    bar = tqdm(total=total, desc=f"prepare {profile.name}", unit="run", disable=not progress, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} runs [{elapsed}{postfix}]")

    def fetch(attention: str, **kwargs) -> StoredRun:
        started = time.perf_counter()
        run = fetch_run(attention, device=device, progress=progress, live_plot=False, verbose=False, **kwargs)
        if run.spec.run_id not in done:
            done[run.spec.run_id] = run
            if run.trained:
                trained_seconds.append(time.perf_counter() - started)
            bar.write(f"{'trained' if run.trained else 'found  '} {run.folder}  (test acc {run.test_acc:.1f}%)")
            bar.update(1)
            per_run = sum(trained_seconds) / len(trained_seconds) if trained_seconds else guess
            bar.set_postfix_str(f"about {_minutes(max(0, total - bar.n) * per_run)} left", refresh=True)
        return run

    try:
        bar.set_postfix_str(f"about {_minutes(total * guess)} left (estimated)", refresh=True)
        data05 = lesson_setup(5, profile).load_data(profile, data_root)
        lesson05_runs(profile, data=data05, store=store, fetch=fetch)
        setup06 = lesson_setup(6, profile)
        data06 = setup06.load_data(profile, data_root) if setup06.standin else data05  # the same data: load once
        comparison_runs(range(seeds), profile, data=data06, store=store, fetch=fetch)
    finally:
        bar.close()
    return list(done.values())


def pack_store(root: str | os.PathLike, archive: str | os.PathLike, profile: str | None = None) -> Path:
    """Write ``archive`` (a tar) with the finished runs under ``root`` (of one profile, if given),
    as ``runs/<profile>/<run>/...``: extract it anywhere and point ``CBAM_COURSE_RUNS`` at ``runs``."""
    root, archive = Path(root), Path(archive)
    manifests = sorted((root / profile if profile else root).rglob(MANIFEST_NAME))
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".tmp")
    with tarfile.open(tmp, "w") as tar:
        for manifest in manifests:
            try:
                if json.loads(manifest.read_text(encoding="utf-8")).get("finished") is not True:
                    continue
            except (ValueError, AttributeError):
                continue
            for path in sorted(manifest.parent.iterdir()):
                if path.is_file() and not path.name.endswith(".tmp"):
                    tar.add(path, arcname=str(Path("runs") / path.relative_to(root)))
    os.replace(tmp, archive)
    return archive


def prepare_main(argv: list[str]) -> int:
    """``python -m cbam_course prepare ...``: returns the exit code."""
    from .cifar10 import DataError

    p = argparse.ArgumentParser(prog="python -m cbam_course prepare",
                                description="Train every run lessons 05 and 06 show, once, into the run store.")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None,
                   help="quick (the stand-in, for tests), laptop or full (default: laptop on CPU, full on GPU)")
    p.add_argument("--seeds", type=int, default=3, help="random seeds per network for lesson 06 (default 3)")
    p.add_argument("--pack", default=None, help="then write the store's runs of this profile to this tar file")
    p.add_argument("--store", default=None, help="the store's folder (default: $CBAM_COURSE_RUNS, else runs/)")
    p.add_argument("--data", default=None, help="CIFAR-10 folder (default: $CBAM_COURSE_DATA or data/)")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best at hand)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    started = time.perf_counter()
    try:
        profile = get_profile(args.profile or machine_profile())
        store = RunStore(args.store)
        runs = prepare(profile, args.seeds, store=store, data_root=args.data, device=args.device,
                       progress=not args.no_progress)
        trained = sum(r.trained for r in runs)
        print(f"{len(runs)} runs ready in {store.root / profile.name} ({trained} trained now, "
              f"{len(runs) - trained} already there) in {_minutes(time.perf_counter() - started)}.")
        if args.pack:
            archive = pack_store(store.root, args.pack, profile.name)
            print(f"Packed into {archive}: extract it on the hub (tar -xf {archive.name}) and set "
                  f"CBAM_COURSE_RUNS to the runs folder it makes.")
    except (RunStoreError, DataError, ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted: finished runs are stored; run the same command again to go on where it stopped.",
              file=sys.stderr)
        return 130
    return 0
