"""The runs lessons 05 and 06 show, and ``python -m cbam_course prepare``, which trains them all once.

    python -m cbam_course prepare --profile quick|laptop|full [--seeds 3] [--pack runs.tar]

The lessons and ``prepare`` take their runs from the same functions here (:func:`lesson_setup`,
:func:`lesson05_runs`, :func:`comparison_runs`), so a prepared store holds exactly the runs the
lessons look up (:mod:`cbam_course.train.store`). ``prepare`` trains in the order that lets a
class start soonest: lesson 05's two runs, then lesson 06's runs seed by seed (the first seed
reuses lesson 05's runs where they are the same run). Interrupted, it resumes where it stopped.

A lesson's first screen asks :func:`plan_lesson` which of its runs the store holds before it
estimates what the lesson costs, and lesson 06 takes its seeds from :func:`comparison_seeds`:
every seed whose runs the store holds. Both look the runs up by the same identities the lessons
fetch, without training or loading any but the plain runs that set the others' budgets.
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

from .cifar10 import DataError
from .data import ImageSet, make_standin
from .files import atomic_path
from ..i18n import N_, tr
from .recipes import (PROFILES, Profile, Recipe, describe_mode, estimate_seconds, get_profile, get_recipe,
                      machine_profile)
from .store import MANIFEST_NAME, RunStore, RunStoreError, StoredRun, _shown, fetch_run, make_spec

__all__ = ["LessonSetup", "lesson_setup", "lesson05_runs", "comparison_runs", "LessonPlan", "plan_lesson",
           "comparison_seeds", "noise_note", "prepare", "pack_store", "prepare_main"]

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

    def load_data(self, profile: Profile, root: str | os.PathLike | None = None,
                  download: bool = True) -> tuple[ImageSet, ImageSet]:
        """The lesson's ``(train, test)`` data (CIFAR-10 is downloaded if missing, unless ``download``
        is False: then a missing copy raises ``DataError``)."""
        from .run import load_profile_data

        if self.standin:
            return make_standin(*self.standin, seed=0)
        return load_profile_data(profile, root, download=download)


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
    raise ValueError(tr("Only lessons 5 and 6 train; got lesson {lesson}.", lesson=repr(lesson)))


def lesson05_runs(profile: Profile | str | None = None, *, data: tuple[ImageSet, ImageSet] | None = None,
                  seed: int = 0, store: RunStore | None = None, fetch: Callable[..., StoredRun] = fetch_run,
                  **options) -> dict[str, StoredRun]:
    """Lesson 05's two runs, ``{"none": run, "cbam": run}``: from the store, or trained and stored."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    setup = lesson_setup(5, profile)
    data = data if data is not None else setup.load_data(profile)
    return {a: fetch(a, profile=profile, recipe=setup.recipe, width=setup.width, data=data, store=store,
                     **request, **options)
            for a, request in _lesson05_requests(setup, seed)}


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
        base = fetch("none", **_plain_request(setup, seed), **common)
        runs["same epochs"]["none"].append(base)
        runs["same time"]["none"].append(base)
        for budget, a, request in _budgeted_requests(setup, seed, base):
            runs[budget][a].append(fetch(a, **request, **common))
    return runs


# The runs themselves, as the arguments of fetch_run beside profile, recipe, width and data: the
# one place that says which runs the lessons use, for fetching them and for looking them up.


def _lesson05_requests(setup: LessonSetup, seed: int) -> list[tuple[str, dict]]:
    """Lesson 05's two runs as ``(attention, arguments)``: the plain and the CBAM network."""
    return [(a, dict(seed=seed, epochs=setup.epochs, time_budget=setup.time_budget)) for a in ("none", "cbam")]


def _plain_request(setup: LessonSetup, seed: int) -> dict:
    """Lesson 06's plain run of ``seed``: the lesson's epochs, or until its time budget ends."""
    return dict(seed=seed, epochs=setup.epochs, time_budget=setup.time_budget or math.inf)


def _budgeted_requests(setup: LessonSetup, seed: int, base: StoredRun | None) -> list[tuple[str, str, dict | None]]:
    """SE's and CBAM's runs of ``seed`` as ``(budget, attention, arguments)``, with the budgets the
    plain run ``base`` sets: its steps (same epochs) and its seconds (same time, when the lesson has
    no time budget). While the plain run is not trained (``base`` None) the arguments that need
    it are unknown: None."""
    same_epochs = same_time = None
    if base is not None:
        # A step budget no smaller than the epochs' steps changes nothing: leave it out, so the
        # run is the same run (and the same stored run) as one trained without it.
        steps = None if base.step >= setup.epochs * max(base.steps_per_epoch, 1) else base.step
        same_epochs = dict(seed=seed, epochs=setup.epochs, time_budget=math.inf, max_steps=steps)
    seconds = setup.time_budget or (base.history.seconds if base is not None else None)
    if seconds is not None:
        same_time = dict(seed=seed, epochs=setup.epochs if setup.time_budget else 3 * setup.epochs,
                         time_budget=seconds)
    return [(budget, a, request) for a in ("se", "cbam")
            for budget, request in (("same epochs", same_epochs), ("same time", same_time))]


# ----------------------------------------------------------------------------------------------
# what a lesson will load and what it must train: its first screen


STORED, TO_TRAIN = "stored", "to train"


class _Lookup:
    """Looks a lesson's runs up in a store as :func:`fetch_run` would (:meth:`RunStore.find`),
    training nothing. It opens (checks and loads) only the plain runs whose steps and seconds set
    the other runs' budgets, and the first stored run, to time what loading one costs here."""

    def __init__(self, store: RunStore, profile: Profile, setup: LessonSetup, data: tuple[ImageSet, ImageSet]):
        self.store, self.profile, self.setup, self.data = store, profile, setup, data
        self.state: dict[str, str] = {}      # run_id -> STORED, TO_TRAIN, or what is wrong with it
        self.unknown: set[tuple] = set()     # runs whose budget waits on a plain run still to train
        self.open_seconds: list[float] = []
        self.opened: dict[str, tuple[str, StoredRun | None]] = {}  # the plain runs: run_id -> (state, run)

    def look(self, attention: str, request: dict, *, open_it: bool = False) -> tuple[str, StoredRun | None]:
        """The run's state (STORED, TO_TRAIN, or what is wrong with it); with ``open_it`` also the
        run itself, opened (None unless stored)."""
        spec = make_spec(attention, profile=self.profile, recipe=self.setup.recipe, width=self.setup.width,
                         data=self.data, **request)
        if open_it and spec.run_id in self.opened:
            state, run = self.opened[spec.run_id]
        else:
            state, run = self._find(spec, open_it)
        self.state[spec.run_id] = state
        if open_it:
            self.opened[spec.run_id] = (state, run)
        return state, run

    def _find(self, spec, open_it: bool) -> tuple[str, StoredRun | None]:
        try:
            found = self.store.find(spec)
            if found is None or not found.finished:
                return TO_TRAIN, None
            if not open_it and self.open_seconds:   # open one run, to time what loading costs
                return STORED, None
            started = time.perf_counter()
            run = self.store.open(found, spec, device="cpu")
            self.open_seconds.append(time.perf_counter() - started)
            return STORED, run if open_it else None
        except RunStoreError as err:
            return " ".join(str(err).split()), None

    def seed06(self, seed: int) -> list[str]:
        """Look up lesson 06's runs of ``seed``; their states (an unknown run counts as TO_TRAIN)."""
        state, base = self.look("none", _plain_request(self.setup, seed), open_it=True)
        states = [state]
        for budget, a, request in _budgeted_requests(self.setup, seed, base):
            if request is None:
                self.unknown.add((seed, budget, a))
                states.append(TO_TRAIN)
            else:
                states.append(self.look(a, request)[0])
        return states


@dataclass(frozen=True)
class LessonPlan:
    """What a lesson's runs will cost: how many it uses, how many the run store holds (loaded, not
    trained) and how many it must train. :meth:`describe` is the lesson's first screen."""

    lesson: int
    profile: Profile
    seeds: tuple[int, ...]
    runs: int                      # the distinct runs the lesson uses
    stored: int | None             # how many of them the store holds, finished; None: not looked up
    store: str                     # the store's folder, as shown
    load_seconds: float = 0.0      # about how long loading the stored ones takes here
    problems: tuple[str, ...] = ()  # stored runs the lesson cannot use: what is wrong, what to do
    note: str = ""                 # why the store was not looked up (an N_ message, shown with tr)

    @property
    def to_train(self) -> int:
        return self.runs - (self.stored or 0)

    def describe(self) -> str:
        """The lesson's first words: its mode, its runs (loaded or trained) and what they cost
        here, the other modes, how to switch; for lesson 06 its seeds and what they allow. In the
        learner's language."""
        lines = [describe_mode(self.profile, self.runs, stored=self.stored, store=self.store,
                               load_seconds=self.load_seconds)]
        if self.note:
            lines.append(tr(self.note))
        if self.problems:
            n, first = len(self.problems), self.problems[0]
            if n > 1:
                lines.append(tr("{n} runs in the run store cannot be used; the lesson will stop there. The first: "
                                "{problem}", n=n, problem=first))
            else:
                lines.append(tr("{n} run in the run store cannot be used; the lesson will stop there. The first: "
                                "{problem}", n=n, problem=first))
        if self.lesson == 6:
            lines.append(noise_note(self.profile, self.seeds))
        return "\n".join(lines)


def plan_lesson(lesson: int, profile: Profile | str | None = None, *, seeds: Sequence[int] | None = None,
                data: tuple[ImageSet, ImageSet] | None = None, store: RunStore | str | os.PathLike | None = None,
                data_root: str | os.PathLike | None = None) -> LessonPlan:
    """Which of lesson 5's or 6's runs the run store holds, looked up by the identities the lesson
    fetches (:func:`lesson05_runs`, :func:`comparison_runs`), before anything trains.

    ``data`` is the lesson's data (:meth:`LessonSetup.load_data`); without it CIFAR-10 is read if
    it is on disk (not downloaded; without it the store is not looked up, and the plan says so).
    ``seeds``: lesson 05 uses seed 0; lesson 06 the given ones, by default :func:`comparison_seeds`.
    Lesson 06's SE and CBAM runs under the same epochs take the plain run's step count, so a seed
    whose plain run is not stored must train all five of its runs.
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    setup = lesson_setup(lesson, profile)
    store = store if isinstance(store, RunStore) else RunStore(store)
    seeds = (0,) if lesson == 5 else tuple(seeds) if seeds is not None else None
    if data is None:
        try:
            data = setup.load_data(profile, data_root, download=False)
        except DataError:
            seeds = seeds if seeds is not None else (0,)
            runs = (len(_lesson05_requests(setup, 0)) if lesson == 5
                    else len(seeds) * (1 + len(_budgeted_requests(setup, 0, None))))
            return LessonPlan(lesson, profile, seeds, runs, None, _shown(store.root),
                              note=N_("CIFAR-10 is not on this machine yet (the lesson downloads it when it loads "
                                      "its data), so the run store was not searched: the estimate assumes every run "
                                      "is trained."))
    look = _Lookup(store, profile, setup, data)
    if seeds is None:
        seeds = tuple(_comparison_seeds(look, 1))
        look.state.clear()   # count only the chosen seeds' runs
        look.unknown.clear()
    if lesson == 5:
        for a, request in _lesson05_requests(setup, seeds[0]):
            look.look(a, request)
    else:
        for seed in seeds:
            look.seed06(seed)
    stored = sum(state == STORED for state in look.state.values())
    problems = tuple(state for state in look.state.values() if state not in (STORED, TO_TRAIN))
    per_run = sum(look.open_seconds) / len(look.open_seconds) if look.open_seconds else 1.0
    return LessonPlan(lesson, profile, seeds, len(look.state) + len(look.unknown), stored, _shown(store.root),
                      load_seconds=stored * per_run, problems=problems)


def comparison_seeds(profile: Profile | str | None = None, *, data: tuple[ImageSet, ImageSet] | None = None,
                     store: RunStore | str | os.PathLike | None = None, at_least: int = 1) -> list[int]:
    """Lesson 06's seeds: ``0 .. at_least-1``, and every other seed for which the run store holds
    all five of lesson 06's runs in ``profile`` (three seeds after ``prepare --seeds 3``).

    A seed counts only when every run is there (the plain network's, and SE's and CBAM's under
    both budgets), found by its identity, so using it trains nothing.
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    setup = lesson_setup(6, profile)
    store = store if isinstance(store, RunStore) else RunStore(store)
    data = data if data is not None else setup.load_data(profile)
    return _comparison_seeds(_Lookup(store, profile, setup, data), at_least)


def _comparison_seeds(look: _Lookup, at_least: int) -> list[int]:
    candidates = look.store.stored_seeds(look.profile.name, "none", look.setup.width)
    more = sorted(s for s in candidates if s >= at_least)
    return list(range(at_least)) + [s for s in more if all(state == STORED for state in look.seed06(s))]


def noise_note(profile: Profile | str | None, seeds: Sequence[int]) -> str:
    """What lesson 06 can say about seed-to-seed noise with ``seeds``, and how to get more seeds."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    seeds = list(seeds)
    listed = ", ".join(map(str, seeds))
    more = tr("For three seeds, prepare them once (`python -m cbam_course prepare --profile {profile} --seeds 3`, "
              "trained into the run store) and run the lesson again, or set SEEDS = [0, 1, 2] in its first code "
              "cell and wait for the training (five runs per seed, {time} per seed here).",
              profile=profile.name, time=_minutes(5 * estimate_seconds(profile)))
    if len(seeds) >= 3:
        return tr("Seeds {seeds}: {n} runs per network, enough to measure the seed-to-seed noise and test each "
                  "difference against it.", seeds=listed, n=len(seeds))
    if len(seeds) == 2:
        return tr("Seeds {seeds}: two runs per network give only a very rough noise estimate (a paired test with "
                  "one degree of freedom). {more}", seeds=listed, more=more)
    return tr("One seed ({seeds}): one run per network measures no noise, so this lesson cannot tell a real "
              "difference from chance, and its tests are skipped. {more}", seeds=listed, more=more)


# ----------------------------------------------------------------------------------------------
# prepare a store


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return tr("{seconds:.0f} s", seconds=seconds)
    if seconds < 5400:
        return tr("{minutes:.0f} min", minutes=seconds / 60)
    return tr("{hours:.1f} h", hours=seconds / 3600)


def prepare(profile: Profile | str, seeds: int = 3, *, store: RunStore | None = None,
            data_root: str | os.PathLike | None = None, device: str | None = None,
            progress: bool = True) -> list[StoredRun]:
    """Train (or find) every run lessons 05 and 06 show in ``profile`` with seeds ``0..seeds-1``,
    lesson 05's first, with a progress bar and an estimate of the time left. Returns the runs."""
    from tqdm.auto import tqdm

    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    store = store or RunStore()
    if not store.writable:
        raise RunStoreError(tr("The run store {root} is read-only: prepare into a writable folder (set "
                               "CBAM_COURSE_RUNS, or pass --store).", root=store.root))
    shared = 2 if profile.data != "standin" and seeds > 0 else 0  # lesson 06's seed 0 reuses two of lesson 05's
    total = 2 + 5 * seeds - shared
    guess = estimate_seconds(profile, device)
    done: dict[str, StoredRun] = {}
    trained_seconds: list[float] = []
    bar = tqdm(total=total, desc=tr("prepare {profile}", profile=profile.name), unit=tr("run"), disable=not progress,
               dynamic_ncols=True, bar_format=tr("{l_bar}{bar}| {n_fmt}/{total_fmt} runs [{elapsed}{postfix}]"))

    def fetch(attention: str, **kwargs) -> StoredRun:
        started = time.perf_counter()
        run = fetch_run(attention, device=device, progress=progress, live_plot=False, verbose=False, **kwargs)
        if run.spec.run_id not in done:
            done[run.spec.run_id] = run
            if run.trained:
                trained_seconds.append(time.perf_counter() - started)
            if run.trained:
                bar.write(tr("trained {folder}  (test acc {acc:.1f}%)", folder=run.folder, acc=run.test_acc))
            else:
                bar.write(tr("found   {folder}  (test acc {acc:.1f}%)", folder=run.folder, acc=run.test_acc))
            bar.update(1)
            per_run = sum(trained_seconds) / len(trained_seconds) if trained_seconds else guess
            bar.set_postfix_str(tr("about {time} left", time=_minutes(max(0, total - bar.n) * per_run)), refresh=True)
        return run

    try:
        bar.set_postfix_str(tr("about {time} left (estimated)", time=_minutes(total * guess)), refresh=True)
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
    with atomic_path(archive) as tmp, tarfile.open(tmp, "w") as tar:
        for manifest in manifests:
            try:
                if json.loads(manifest.read_text(encoding="utf-8")).get("finished") is not True:
                    continue
            except (ValueError, AttributeError):
                continue
            for path in sorted(manifest.parent.iterdir()):
                if path.is_file() and not path.name.endswith(".tmp"):
                    tar.add(path, arcname=str(Path("runs") / path.relative_to(root)))
    return archive


def prepare_main(argv: list[str]) -> int:
    """``python -m cbam_course prepare ...``: returns the exit code."""
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
        p.error(tr("--seeds must be at least 1"))
    started = time.perf_counter()
    try:
        profile = get_profile(args.profile or machine_profile())
        store = RunStore(args.store)
        runs = prepare(profile, args.seeds, store=store, data_root=args.data, device=args.device,
                       progress=not args.no_progress)
        trained = sum(r.trained for r in runs)
        print(tr("{n} runs ready in {folder} ({trained} trained now, {found} already there) in {time}.",
                 n=len(runs), folder=store.root / profile.name, trained=trained, found=len(runs) - trained,
                 time=_minutes(time.perf_counter() - started)))
        if args.pack:
            archive = pack_store(store.root, args.pack, profile.name)
            print(tr("Packed into {archive}: extract it on the hub (tar -xf {name}) and set CBAM_COURSE_RUNS to the "
                     "runs folder it makes.", archive=archive, name=archive.name))
    except (RunStoreError, DataError, ValueError, OSError) as err:
        print(tr("error: {message}", message=" ".join(str(err).split())), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(tr("Interrupted: finished runs are stored; run the same command again to go on where it stopped."),
              file=sys.stderr)
        return 130
    return 0
