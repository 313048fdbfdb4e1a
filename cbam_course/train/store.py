"""The run store: each training run of lessons 05 and 06 is trained once, then loaded.

A run is named by what determines it (:class:`RunSpec`): the network (attention, width), the
recipe (its whole ``to_dict()``), the profile and its budgets (epochs, seconds, steps), the random
seed, the data (CIFAR-10 or the stand-in), and :data:`MODEL_VERSION`. A canonical JSON of that is
hashed, and the run lives in ``<store>/<profile>/<attention>-w<width>-seed<seed>-<hash8>/``:
``checkpoint.pt`` and ``metrics.json`` (written by the Trainer after every epoch) and
``manifest.json`` (the identity, each file's sha256, the machine, the wall time, the date, and
``finished``). :func:`fetch_run` looks a run up and loads it, or trains it (resuming an
interrupted one) and stores it.

Where the store is: ``$CBAM_COURSE_RUNS`` if set, else ``runs/`` at the repository root when the
package runs from a source checkout (so a lesson finds it whatever its working folder), else
``runs/`` under the per-user cache folder. A read-only store is only read: what it lacks is
trained into the per-user folder (``$XDG_CACHE_HOME/cbam_course/runs``, default
``~/.cache/cbam_course/runs``), and the lesson says so.

One run is trained by one process at a time: the process that trains (or resumes) it holds a lock
on its folder (POSIX ``flock``), and another kernel asking for the same run (a
lesson open twice, the English and the Chinese lesson run side by side, a class sharing one store)
waits, then loads what the first one stored. The operating system drops the lock of a process that
dies, so an interrupted run can always be resumed. (Windows has no ``flock``: there the runs are not
locked.)

Nothing wrong is loaded quietly: a missing or damaged file, a checksum that does not match, a
partial run in a read-only store, a run of another model version, a manifest that does not parse
and a checkpoint that is not one each raise :class:`RunStoreError`, whose message says what is
wrong and what to do (a notebook shows only that message, not a traceback).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from contextlib import contextmanager
import json
import math
import os
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from .files import atomic_write
from ..i18n import N_, tr
from ..models import AttentionCNN
from ..fast.cpu import machine
from ..runtime import RUNS_ENV, get_device
from .checkpoints import CHECKPOINT_NAME, METRICS_NAME, CheckpointError, check_compatible, load_checkpoint
from .data import ImageSet
from .history import History
from .recipes import Profile, Recipe, get_profile, get_recipe
from .run import load_profile_data, train_model
from .trainer import Trainer

__all__ = ["MODEL_VERSION", "MANIFEST_NAME", "TRAINING_NOTE", "RunStoreError", "RunInterrupted", "RunSpec",
           "Found", "StoredRun", "RunStore", "make_spec", "data_identity", "fetch_run", "default_store_root"]

MODEL_VERSION = 2
"""The version of what a stored run means. Bump it when a change makes old runs wrong or renames
what identifies them (the network, the training loop, the data pipeline, how a recipe is applied,
a recipe's name): every stored run then stops matching, and the lessons say that the store must be
prepared again. 2: the recipes "seed" and "laptop" were renamed "day50" and "fast128"."""

MANIFEST_NAME = "manifest.json"
TRAINING_NOTE = N_("training (not in the run store yet)")  # what a lesson prints for a run it must train (English)
MANIFEST_FORMAT = "cbam_course.run/1"
_FILES = (CHECKPOINT_NAME, METRICS_NAME)


class RunStoreError(RuntimeError):
    """A stored run that cannot be used: damaged, partial, of another model version, or not a
    run at all. The message says what is wrong and what to do; a notebook shows just that."""

    def _render_traceback_(self) -> list[str]:  # IPython: the message, not a traceback
        return [f"{type(self).__name__}: {self}"]


class RunInterrupted(KeyboardInterrupt):
    """Training was stopped (Ctrl-C, Jupyter's stop button); the run is kept to resume."""

    def _render_traceback_(self) -> list[str]:
        return [tr("Interrupted: {message}", message=self)]


# ----------------------------------------------------------------------------------------------
# identity


def _canonical(value: Any) -> Any:
    """JSON-able and stable: tuples become lists, an infinite budget becomes None (no budget)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def data_identity(train: ImageSet, test: ImageSet) -> dict:
    """What identifies the data of a run: CIFAR-10 or the stand-in, its sizes, and a fingerprint
    of its pixels and labels (every 97th image, all labels). A stand-in's description (sizes and
    seed) is part of it; CIFAR-10's is not, because it names the folder the images were read
    from, which differs between the machine that prepared a store and a class's hub."""
    h = hashlib.sha256()
    for part in (train, test):
        h.update(part.labels.to(torch.int64).contiguous().numpy().tobytes())
        h.update(part.images[::97].contiguous().numpy().tobytes())
    return {"kind": "standin" if train.is_standin else "cifar10", "n_train": len(train), "n_test": len(test),
            "description": [train.description, test.description] if train.is_standin else "CIFAR-10",
            "fingerprint": h.hexdigest()[:16]}


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run; equal specs name the same stored run."""

    attention: str
    width: int
    recipe: dict
    profile: str
    epochs: int
    time_budget: float | None
    max_steps: int | None
    seed: int
    data: dict
    model_version: int = MODEL_VERSION

    def identity(self) -> dict:
        """The identity as canonical JSON-able data (what is hashed, and kept in the manifest)."""
        return _canonical(asdict(self))

    @property
    def run_id(self) -> str:
        """sha256 of the canonical JSON of :meth:`identity` (sorted keys, no spaces)."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def folder_name(self) -> str:
        """Readable, and unique by its hash: ``cbam-w32-seed0-1a2b3c4d``."""
        return f"{self.attention}-w{self.width}-seed{self.seed}-{self.run_id[:8]}"

    def describe(self) -> str:
        """The run in words, for messages (in the learner's language)."""
        return tr("attention={attention}, width {width}, seed {seed}, profile {profile}", attention=repr(self.attention),
                  width=self.width, seed=self.seed, profile=repr(self.profile))


def make_spec(attention: str, *, profile: Profile | str | None = None, recipe: Recipe | str | None = None,
              width: int | None = None, epochs: int | None = None, time_budget: float | None = None,
              max_steps: int | None = None, seed: int = 0,
              data: tuple[ImageSet, ImageSet]) -> RunSpec:
    """The :class:`RunSpec` of the run :func:`~cbam_course.train.train_model` would train with
    these arguments: defaults are filled in from the profile exactly as ``train_model`` does."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    recipe_obj = get_recipe(recipe or profile.recipe)
    budget = time_budget if time_budget is not None else profile.time_budget
    steps = max_steps if max_steps is not None else profile.max_steps
    return RunSpec(attention=attention, width=int(width or profile.width), recipe=recipe_obj.to_dict(),
                   profile=profile.name, epochs=int(epochs or profile.epochs),
                   time_budget=None if budget is None or not math.isfinite(budget) else float(budget),
                   max_steps=None if steps is None else int(steps), seed=int(seed),
                   data=data_identity(*data), model_version=MODEL_VERSION)


def _unversioned(identity: dict) -> dict:
    """An identity without what a new model version may change: the version and the recipe's name."""
    recipe = {k: v for k, v in (identity.get("recipe") or {}).items() if k != "name"}
    return {**identity, "model_version": None, "recipe": recipe}


# ----------------------------------------------------------------------------------------------
# where the store is


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cbam_course" / "runs"


def default_store_root() -> Path:
    """``$CBAM_COURSE_RUNS``; else ``runs/`` at the repository root in a source checkout (found
    from the package, not the working folder: lessons run in ``notebooks/``); else the per-user
    cache folder (an installed package has no repository)."""
    if os.environ.get(RUNS_ENV, "").strip():
        return Path(os.environ[RUNS_ENV].strip()).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "cbam_course").is_dir():
        return repo / "runs"
    return _cache_root()


def _writable(path: Path) -> bool:
    """True if runs can be written under ``path``: its nearest existing folder is writable and has
    a write permission bit (a folder chmod-ed read-only counts as read-only even for root)."""
    p = path
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    return p.is_dir() and os.access(p, os.W_OK) and bool(p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# a stored run


@dataclass(frozen=True)
class Found:
    """A run :meth:`RunStore.find` found: its folder and manifest, and whether it is finished
    (ready to load) or was interrupted (to resume)."""

    folder: Path
    manifest: dict = field(repr=False)
    finished: bool = True


@dataclass
class StoredRun:
    """A finished run, loaded from the store (or just trained into it): what lessons use in
    place of a Trainer (``.model``, ``.history``, ``.step``, ``.epoch``)."""

    spec: RunSpec
    folder: Path
    model: AttentionCNN
    history: History
    step: int
    epoch: int
    steps_per_epoch: int
    manifest: dict = field(repr=False)
    trained: bool = False   # True when this call trained (some of) it, False when it was only loaded

    @property
    def test_acc(self) -> float:
        """The final test accuracy (%): the test measured once at the end, or, for a run whose
        history has no such record, its last epoch's test accuracy."""
        final = getattr(self.history, "final_test_acc", None)
        return float(final) if final is not None else float(self.history.column("test_acc")[-1])


def _what_to_do(folder: Path, writable: bool, profile: str) -> str:
    if writable:
        return tr("Delete the folder {folder} and run again to train this run afresh (or `python -m cbam_course "
                  "prepare --profile {profile}` to prepare the whole store).", folder=folder, profile=profile)
    return tr("This store is read-only: ask whoever prepared it to run `python -m cbam_course prepare --profile "
              "{profile}` again and replace it, or set {env} to a writable folder to train your own.",
              profile=profile, env=RUNS_ENV)


class RunStore:
    """A store of runs under ``root`` (default :func:`default_store_root`). A read-only root is
    only read; runs it lacks go to ``fallback`` (the per-user cache folder)."""

    def __init__(self, root: str | os.PathLike | None = None, fallback: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_store_root()
        self.fallback = Path(fallback) if fallback is not None else _cache_root()

    @property
    def writable(self) -> bool:
        return _writable(self.root)

    def folder(self, spec: RunSpec, root: Path | None = None) -> Path:
        return (root or self.root) / spec.profile / spec.folder_name

    def places(self) -> list[Path]:
        """The roots looked in, in order: the store, then the per-user folder if it differs."""
        return [self.root] + ([self.fallback] if self.fallback.resolve() != self.root.resolve() else [])

    def write_root(self) -> Path:
        """Where a missing run is trained: the store if writable, else the per-user folder."""
        return self.root if self.writable else self.fallback

    # -- checking --
    def read_manifest(self, folder: Path, spec: RunSpec, writable: bool) -> dict | None:
        """The manifest of ``folder``, checked against ``spec``; None when the folder holds nothing.
        Raises :class:`RunStoreError` for a manifest that does not parse, another model version
        or another identity. A partial run comes back with ``finished`` false."""
        todo = _what_to_do(folder, writable, spec.profile)
        path = folder / MANIFEST_NAME
        if not path.is_file():
            if any((folder / name).exists() for name in _FILES):
                return {"finished": False, "files": {}}
            return None
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError(tr("a JSON {kind}, not an object", kind=type(manifest).__name__))
        except (ValueError, UnicodeDecodeError) as err:
            raise RunStoreError(tr("The manifest {path} does not parse ({error}: {detail}), so this run cannot be "
                                   "trusted. {todo}", path=path, error=type(err).__name__, detail=str(err)[:100],
                                   todo=todo)) from None
        version = manifest.get("model_version")
        if version != MODEL_VERSION:
            raise RunStoreError(tr(
                "The run in {folder} comes from model version {version} of the course, and this one is version "
                "{current}: its numbers no longer describe this code. {todo}", folder=folder, version=version,
                current=MODEL_VERSION, todo=todo))
        if manifest.get("run_id") != spec.run_id:
            raise RunStoreError(tr("The manifest {path} describes another run than its folder's name says (was the "
                                   "folder renamed or copied over?). {todo}", path=path, todo=todo))
        return manifest

    def check_files(self, folder: Path, manifest: dict, spec: RunSpec, writable: bool) -> None:
        """Raise :class:`RunStoreError` unless every file the manifest lists is there, with its sha256."""
        todo = _what_to_do(folder, writable, spec.profile)
        files = manifest.get("files") or {}
        for name in _FILES:
            if name not in files:
                raise RunStoreError(tr("The manifest of {folder} lists no {name}: the run is incomplete. {todo}",
                                       folder=folder, name=name, todo=todo))
            path = folder / name
            if not path.is_file():
                raise RunStoreError(tr("{path} is missing: the run is incomplete. {todo}", path=path, todo=todo))
            if _sha256(path) != files[name].get("sha256"):
                raise RunStoreError(tr("{path} is damaged: its checksum (sha256) does not match the one recorded "
                                       "when the run was stored. {todo}", path=path, todo=todo))

    def find_other_versions(self, spec: RunSpec) -> list[Path]:
        """Stored runs that match ``spec`` in all but the model version (and the recipe's name,
        which a version may change)."""
        found = []
        for root in self.places():
            for manifest in (root / spec.profile).glob(f"{spec.attention}-w{spec.width}-seed{spec.seed}-*/{MANIFEST_NAME}"):
                try:
                    identity = json.loads(manifest.read_text(encoding="utf-8")).get("identity") or {}
                except (ValueError, OSError, UnicodeDecodeError):
                    continue
                if identity.get("model_version") != MODEL_VERSION and _unversioned(identity) == _unversioned(spec.identity()):
                    found.append(manifest.parent)
        return found

    # -- looking up --
    def find(self, spec: RunSpec) -> Found | None:
        """Where the store holds ``spec``, without loading it: the first place (:meth:`places`) with
        a manifest for it, finished or (in a writable place) interrupted; None when no place has it.

        This is the one lookup, shared by :func:`fetch_run` and the lessons' first screen
        (:func:`cbam_course.train.prepare.plan_lesson`). Raises :class:`RunStoreError` for a
        manifest that cannot be trusted, a partial run in a read-only place, and a run stored
        only from another model version of the course. File checksums are checked by :meth:`open`.
        """
        for root in self.places():
            folder = self.folder(spec, root)
            writable = _writable(folder)
            manifest = self.read_manifest(folder, spec, writable)
            if manifest is None:
                continue
            if manifest.get("finished"):
                return Found(folder, manifest, True)
            if not writable:
                raise RunStoreError(tr("The run in {folder} is partial: it was not finished when the store was "
                                       "copied. {todo}", folder=folder, todo=_what_to_do(folder, False, spec.profile)))
            return Found(folder, manifest, False)
        old = self.find_other_versions(spec)
        if old:
            raise RunStoreError(tr(
                "The store holds this run from another model version of the course ({folder}), not from this one "
                "(version {current}): its numbers no longer describe this code. {todo}", folder=old[0],
                current=MODEL_VERSION, todo=_what_to_do(old[0], _writable(old[0]), spec.profile)))
        return None

    def open(self, found: Found, spec: RunSpec, device: str | torch.device | None = None) -> StoredRun:
        """Check the files of a finished run :meth:`find` found (their sha256), then load it."""
        writable = _writable(found.folder)
        self.check_files(found.folder, found.manifest, spec, writable)
        return self.load(found.folder, found.manifest, spec, device, writable)

    def stored_seeds(self, profile: str, attention: str, width: int) -> set[int]:
        """The seeds in the names of the runs of ``attention`` at ``width`` stored for ``profile``,
        in every place. A hint of which seeds to look up, not a lookup: a name does not say which
        recipe, budgets or data the run had (:meth:`find` checks that)."""
        seeds = set()
        for root in self.places():
            for folder in (root / profile).glob(f"{attention}-w{width}-seed*-*"):
                seed = folder.name[len(f"{attention}-w{width}-seed"):].rsplit("-", 1)[0]
                if seed.isdigit():
                    seeds.add(int(seed))
        return seeds

    # -- loading --
    def load(self, folder: Path, manifest: dict, spec: RunSpec, device: str | torch.device | None = None,
             writable: bool = False) -> StoredRun:
        """Load a finished, checked run: the network (weights only), its history and step counts."""
        todo = _what_to_do(folder, writable, spec.profile)
        try:
            ckpt = load_checkpoint(folder / CHECKPOINT_NAME)
            num_classes = int(((ckpt.get("config") or {}).get("model") or {}).get("num_classes", 10))
            model = AttentionCNN(num_classes=num_classes, attention=spec.attention, width=spec.width)
            check_compatible(ckpt, model, folder / CHECKPOINT_NAME)
            model.load_state_dict(ckpt["model"])
            history = History.from_dict(ckpt["history"])
            step, epoch = int(ckpt["step"]), int(ckpt["epoch"])
        except CheckpointError as err:
            raise RunStoreError(tr("The checkpoint of the stored run {folder} cannot be used: {reason} {todo}",
                                   folder=folder, reason=" ".join(str(err).split()), todo=todo)) from None
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise RunStoreError(tr("{path} is not a checkpoint of this run ({error}: {detail}). {todo}",
                                   path=folder / CHECKPOINT_NAME, error=type(err).__name__, detail=str(err)[:120],
                                   todo=todo)) from None
        model = model.to(torch.device(device) if device is not None else get_device()).eval()
        return StoredRun(spec, folder, model, history, step, epoch,
                         int(manifest.get("steps_per_epoch") or 0), manifest)

    # -- writing --
    def write_manifest(self, folder: Path, spec: RunSpec, *, finished: bool, wall_seconds: float = 0.0,
                       steps_per_epoch: int = 0, extra: dict | None = None) -> dict:
        """Write ``manifest.json`` atomically: the identity, and once finished each file's sha256,
        the machine, the wall time and the date."""
        manifest = {"format": MANIFEST_FORMAT, "model_version": MODEL_VERSION, "run_id": spec.run_id,
                    "identity": spec.identity(), "finished": finished}
        if finished:
            manifest.update(
                files={name: {"sha256": _sha256(folder / name), "bytes": (folder / name).stat().st_size}
                       for name in _FILES},
                machine=machine(), wall_seconds=round(wall_seconds, 2),
                date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                steps_per_epoch=steps_per_epoch, **(extra or {}))
        atomic_write(folder / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return manifest


# ----------------------------------------------------------------------------------------------
# look up, else train


def _shown(path: Path) -> str:
    """A path as a learner can find it: relative to the working folder when that is short."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if rel.count("..") <= 1 else str(path)


def _loaded_message(run: StoredRun) -> str:
    m = run.manifest
    when = str(m.get("date", "?"))[:10]
    where = m.get("machine") or {}
    machine = where.get("gpu") if where.get("gpu", "no GPU") != "no GPU" else where.get("cpu", "?")
    minutes = float(m.get("wall_seconds") or 0) / 60
    return tr("{attention}, seed {seed}: loaded from the run store, not trained: {folder} (trained {when} on "
              "{machine}, {minutes:.1f} min). To train it afresh, delete that folder and run this again.",
              attention=run.spec.attention, seed=run.spec.seed, folder=_shown(run.folder), when=when, machine=machine,
              minutes=minutes)


def _finished(trainer: Any) -> bool:
    """Whether ``train_model`` returned because the run ended, not because it was interrupted:
    the Trainer records the final test once a run ends."""
    return trainer.history.test is not None


@contextmanager
def _claimed(folder: Path, spec: RunSpec, say: Callable[..., None]) -> Iterator[None]:
    """Hold a lock on the run's ``folder`` (created, empty, if need be: an empty folder is no run)
    for the ``with`` block: no other process trains ``spec`` meanwhile; one that holds it already
    is waited for (and said so)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(tr("{attention}, seed {seed}: another process is training this run; waiting for it to finish, "
                   "then loading it.", attention=spec.attention, seed=spec.seed))
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # and with it the lock


def fetch_run(attention: str = "cbam", *, profile: Profile | str | None = None,
              recipe: Recipe | str | None = None, width: int | None = None, epochs: int | None = None,
              time_budget: float | None = None, max_steps: int | None = None, seed: int = 0,
              data: tuple[ImageSet, ImageSet] | None = None, data_root: str | os.PathLike | None = None,
              store: RunStore | str | os.PathLike | None = None, device: str | torch.device | None = None,
              progress: bool = True, live_plot: bool | None = None, verbose: bool = True) -> StoredRun:
    """The run :func:`~cbam_course.train.train_model` would train with these arguments, from the
    run store if it is there (loaded, not trained, and said so), else trained and stored.

    An interrupted run in a writable store resumes where it stopped. A read-only store is never
    written to: a run it lacks is trained into the per-user folder (``RunStore.fallback``).
    Raises :class:`RunStoreError` for a stored run that cannot be trusted (the message says what
    to do) and :class:`RunInterrupted` when training is stopped (run it again to resume).
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    store = store if isinstance(store, RunStore) else RunStore(store)
    if data is None:
        data = load_profile_data(profile, data_root, seed)
    spec = make_spec(attention, profile=profile, recipe=recipe, width=width, epochs=epochs,
                     time_budget=time_budget, max_steps=max_steps, seed=seed, data=data)
    say = print if verbose else (lambda *a, **k: None)

    def stored() -> StoredRun | None:
        found = store.find(spec)
        if found is None or not found.finished:
            return None
        run = store.open(found, spec, device)
        say(_loaded_message(run))
        return run

    run = stored()
    if run is not None:
        return run
    target = store.folder(spec, store.write_root())
    if not _writable(target):
        raise RunStoreError(tr("Run {run} is not in the store {root}, and neither it nor {fallback} can be written "
                               "to: set {env} to a writable folder.", run=spec.describe(), root=store.root,
                               fallback=store.fallback, env=RUNS_ENV))
    with _claimed(target, spec, say):
        run = stored()  # another process may have stored it while this one waited
        if run is not None:
            return run
        found = store.find(spec)
        resume_in = found.folder if found is not None else None
        if resume_in is not None and not (resume_in / CHECKPOINT_NAME).exists():
            resume_in = None  # stopped before its first checkpoint: nothing to resume, so it starts again
        folder = resume_in or target
        if store.write_root() != store.root and resume_in is None:
            say(tr("The run store {root} is read-only and lacks {run}: training it into your own folder {folder} "
                   "instead.", root=_shown(store.root), run=spec.describe(), folder=_shown(folder)))
        return _train_into(folder, spec, store, profile, data, resume=resume_in is not None, device=device,
                           progress=progress, live_plot=live_plot, say=say)


def _train_into(folder: Path, spec: RunSpec, store: RunStore, profile: Profile, data: tuple[ImageSet, ImageSet],
                *, resume: bool, device, progress: bool, live_plot: bool | None, say) -> StoredRun:
    """Train (or resume) ``spec`` in ``folder``, then write its finished manifest and load it back."""
    budget, steps, spent = spec.time_budget, spec.max_steps, 0.0
    if resume:
        try:
            done_steps, spent = Trainer.saved_progress(folder / CHECKPOINT_NAME)
        except CheckpointError as err:
            raise RunStoreError(tr("The unfinished run in {folder} cannot be resumed ({reason}). Delete that folder "
                                   "and run again to train it afresh.", folder=folder,
                                   reason=" ".join(str(err).split())[:200])) from None
        say(tr("{attention}, seed {seed}: resuming the unfinished run in {folder} ({steps} steps done).",
               attention=spec.attention, seed=spec.seed, folder=_shown(folder), steps=done_steps))
        steps = None if steps is None else max(1, steps - done_steps)
        budget = None if budget is None else max(1.0, budget - spent)
    else:
        store.write_manifest(folder, spec, finished=False)
        say(tr("{attention}, seed {seed}: {note}; it will be stored in {folder}.", attention=spec.attention,
               seed=spec.seed, note=tr(TRAINING_NOTE), folder=_shown(folder)))
    started = time.perf_counter()
    trainer = train_model(spec.attention, profile=profile, recipe=get_recipe(Recipe.from_dict(spec.recipe)),
                          epochs=spec.epochs, width=spec.width, data=data, out_dir=folder, resume=resume,
                          seed=spec.seed, time_budget=budget if budget is not None else math.inf,
                          max_steps=steps, device=device, progress=progress, live_plot=live_plot)
    if not _finished(trainer):
        raise RunInterrupted(tr("training stopped after {steps} steps; the run is kept unfinished in {folder}: run "
                                "this again to resume it.", steps=trainer.step, folder=_shown(folder)))
    manifest = store.write_manifest(folder, spec, finished=True, wall_seconds=spent + time.perf_counter() - started,
                                    steps_per_epoch=len(trainer.train_loader),
                                    extra={"steps": trainer.step, "epochs": trainer.epoch})
    run = store.load(folder, manifest, spec, device, writable=True)
    run.trained = True
    return run
