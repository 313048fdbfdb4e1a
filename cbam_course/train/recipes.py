"""Training recipes (optimizer, schedule, loss, batch, epochs) and run profiles.

Every number a recipe or profile uses sits in this file, in the ``RECIPES`` and ``PROFILES``
tables below, so tuning means editing one obvious place. The measurements behind them are in
docs/performance.md.

- ``day50``: the Day 50 lesson's recipe, unchanged: Adam (lr 1e-3, weight decay 1e-4),
  ReduceLROnPlateau(mode="min", factor=0.5, patience=5) stepped on the test loss after every
  epoch (it halves the rate on the 6th epoch in a row whose loss is not below the best so far by
  more than a relative 1e-4, torch's default threshold), batch 128, 50 epochs, plain cross-entropy.
  (The lesson passed ``verbose=True``; newer torch removed that argument, so it is left out.) Kept
  faithfully, with its flaw: the schedule is steered by the test set, so the test accuracy it
  reports (the last epoch's, in the lesson and here) is no longer an unseen result.
- ``fast``: SGD with Nesterov momentum 0.9, a one-cycle learning rate (warm up, then anneal
  to almost zero), label smoothing 0.1, batch 256. One-cycle schedules reach a given accuracy
  in far fewer epochs than a plateau schedule (Smith & Topin 2019, "Super-convergence");
  label smoothing (Szegedy et al. 2016) regularises short runs cheaply. It holds out 10% of the
  training images (5,000 of CIFAR-10's 50,000) as a validation set for the curves, and tests once.
- ``fast128``: ``fast`` in batches of 128 (the Day 50 lesson's size), for the CPU, where a batch
  of 128 trains faster per image than one of 256 and the few passes a laptop affords get twice
  the steps.

A profile says how big a run is: ``quick`` (the stand-in, seconds), ``laptop`` (real CIFAR-10 on a
CPU in about ten minutes at a smaller width, recipe ``fast128``), ``full`` (the Day 50 lesson's
network with the fast recipe for 20 epochs, for a GPU; ``recipe="day50", epochs=50`` trains the
lesson's way). ``get_profile()`` picks one from quick mode or ``$CBAM_COURSE_PROFILE``, else quick.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn

from ..i18n import N_, tr
from ..runtime import PROFILE_ENV, quick_mode

__all__ = ["Recipe", "RECIPES", "get_recipe", "parse_overrides", "OneCycle", "Profile", "PROFILES", "get_profile",
           "machine_profile", "estimate_seconds", "describe_mode"]


class OneCycle:
    """A one-cycle learning rate driven by the run's progress (0 to 1), not by a step count.

    Progress is the larger of "steps done / steps planned" and "seconds spent / time budget",
    so a time-budgeted run still anneals to the end of its budget. Shape as torch's
    ``OneCycleLR`` (cosine): from ``max_lr / div_factor`` up to ``max_lr`` over the first
    ``pct_start`` of the run, then down to ``max_lr / final_div_factor``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_lr: float, pct_start: float = 0.25,
                 div_factor: float = 25.0, final_div_factor: float = 1e4) -> None:
        self.optimizer = optimizer
        self.max_lr, self.pct_start = max_lr, pct_start
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        self.progress = 0.0
        self.set_progress(0.0)

    def lr_at(self, progress: float) -> float:
        """The learning rate at ``progress`` (clamped to 0..1)."""
        p = min(max(progress, 0.0), 1.0)
        start, peak = self.max_lr / self.div_factor, self.max_lr
        end = self.max_lr / self.final_div_factor
        if p < self.pct_start:
            t, a, b = p / self.pct_start, start, peak
        else:
            t, a, b = (p - self.pct_start) / (1.0 - self.pct_start), peak, end
        return b + (a - b) * (1 + math.cos(math.pi * t)) / 2

    def set_progress(self, progress: float) -> None:
        self.progress = float(progress)
        lr = self.lr_at(progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def state_dict(self) -> dict:
        return {"progress": self.progress}

    def load_state_dict(self, state: dict) -> None:
        self.set_progress(state["progress"])


@dataclass(frozen=True)
class Recipe:
    """How to train: optimizer, learning-rate schedule, loss and batch size.

    ``schedule`` is "plateau" (ReduceLROnPlateau, stepped after each epoch on the loss of the
    set evaluated then) or "onecycle" (:class:`OneCycle`, updated before every step).
    ``holdout`` is the share of the training images held out as a validation set: each epoch is
    evaluated on it, and the test set once, at the end. With 0 (the Day 50 lesson's way) each
    epoch is evaluated on the test set, and training decisions then see the test set.
    """

    name: str
    optimizer: str = "adam"          # "adam" or "sgd"
    lr: float = 1e-3                 # Adam's lr, or the one-cycle peak
    weight_decay: float = 1e-4
    momentum: float = 0.9            # SGD only
    nesterov: bool = False           # SGD only
    schedule: str = "plateau"        # "plateau" or "onecycle"
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    pct_start: float = 0.25          # one-cycle: share of the run spent warming up
    div_factor: float = 25.0         # one-cycle: start lr = lr / div_factor
    final_div_factor: float = 1e4    # one-cycle: end lr = lr / final_div_factor
    label_smoothing: float = 0.0
    holdout: float = 0.0             # share of the training images held out for validation
    crop_padding: int = 4            # the random crop's zero padding
    batch_size: int = 128
    eval_batch_size: int = 100
    epochs: int = 50

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        params = [p for p in model.parameters() if p.requires_grad]
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
                                   weight_decay=self.weight_decay)
        raise ValueError(tr("Recipe {name}: unknown optimizer {optimizer}; use 'adam' or 'sgd'.",
                            name=repr(self.name), optimizer=repr(self.optimizer)))

    def make_scheduler(self, optimizer: torch.optim.Optimizer):
        """ReduceLROnPlateau (no ``verbose``: newer torch removed it) or :class:`OneCycle`."""
        if self.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=self.plateau_factor, patience=self.plateau_patience)
        if self.schedule == "onecycle":
            return OneCycle(optimizer, self.lr, self.pct_start, self.div_factor, self.final_div_factor)
        raise ValueError(tr("Recipe {name}: unknown schedule {schedule}; use 'plateau' or 'onecycle'.",
                            name=repr(self.name), schedule=repr(self.schedule)))

    def make_criterion(self) -> nn.Module:
        return nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        return cls(**d)


# ---- the recipes: every number in one place ---------------------------------------------------
RECIPES: dict[str, Recipe] = {
    "day50": Recipe(name="day50", optimizer="adam", lr=1e-3, weight_decay=1e-4, schedule="plateau",
                   plateau_factor=0.5, plateau_patience=5, label_smoothing=0.0,
                   batch_size=128, eval_batch_size=100, epochs=50),
    "fast": Recipe(name="fast", optimizer="sgd", lr=0.2, weight_decay=5e-4, momentum=0.9, nesterov=True,
                   schedule="onecycle", pct_start=0.25, div_factor=25.0, final_div_factor=1e4,
                   label_smoothing=0.1, holdout=0.1, batch_size=256, eval_batch_size=500, epochs=15),
}
RECIPES["fast128"] = replace(RECIPES["fast"], name="fast128", batch_size=128)


def get_recipe(name: str | Recipe, **overrides) -> Recipe:
    """The recipe called ``name`` ("day50", "fast" or "fast128"), with any field overridden."""
    if isinstance(name, Recipe):
        return replace(name, **overrides) if overrides else name
    if name not in RECIPES:
        raise ValueError(tr("Unknown recipe {name}: choose one of {names}.", name=repr(name),
                            names=", ".join(map(repr, RECIPES))))
    return replace(RECIPES[name], **overrides) if overrides else RECIPES[name]


def parse_overrides(pairs: list[str]) -> dict:
    """``["batch_size=512", "label_smoothing=0.2"]`` -> typed :class:`Recipe` field overrides
    (the command line's ``--set FIELD=VALUE``). Raises ValueError naming the fields for a pair
    that is not one."""
    from dataclasses import fields

    kinds = {f.name: (f.type if isinstance(f.type, str) else f.type.__name__) for f in fields(Recipe)}
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in kinds or key == "name":
            raise ValueError(tr("--set {pair}: use FIELD=VALUE with one of the recipe's fields: {fields}.",
                                pair=repr(pair), fields=", ".join(k for k in kinds if k != "name")))
        kind = kinds[key]
        out[key] = (value.lower() in ("1", "true", "yes", "on") if kind == "bool" else
                    int(value) if kind == "int" else float(value) if kind == "float" else value)
    return out


@dataclass(frozen=True)
class Profile:
    """How big a run is, and what to expect from it.

    ``expected_time`` and ``expected_accuracy`` are plain-words statements that come from
    measurements (docs/performance.md says how they were made). They and ``description`` are
    written in English, marked ``N_``: show them with ``tr(profile.expected_time)``, in the
    learner's language. (A run's identity holds only the profile's name and budgets.)
    """

    name: str
    data: str                         # "standin" or "cifar10"
    width: int
    recipe: str
    epochs: int
    max_steps: int | None = None      # stop after this many steps (quick mode)
    time_budget: float | None = None  # seconds for the whole run, evaluation included
    n_train: int | None = None        # stand-in sizes (data == "standin")
    n_test: int | None = None
    device: str = "any"               # where it is meant to run: "cpu", "cuda" or "any"
    cpu_bfloat16: bool = False        # bfloat16 autocast may be chosen on CPUs that compute it natively
    tune_setup: bool = False          # on a CPU, time the candidate set-ups first and keep the fastest
    tta: bool = False                 # the final test also with flip test-time augmentation
    expected_time: str = N_("to be measured")
    expected_accuracy: str = N_("to be measured")
    description: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# ---- the profiles: every number in one place --------------------------------------------------
PROFILES: dict[str, Profile] = {
    "quick": Profile(name="quick", data="standin", width=16, recipe="fast", epochs=2, max_steps=30,
                     n_train=1024, n_test=512, device="any",
                     expected_time=N_("seconds per run (30 steps at width 16)"),
                     expected_accuracy=N_("whatever the stand-in gives, which says nothing about CIFAR-10"),
                     description=N_("The generated stand-in and a few steps: checks that everything runs.")),
    "laptop": Profile(name="laptop", data="cifar10", width=32, recipe="fast128", epochs=30,
                      time_budget=600.0, device="cpu", cpu_bfloat16=True, tune_setup=True, tta=True,
                      expected_time=N_("10 minutes wall (the time budget decides how many epochs)"),
                      expected_accuracy=N_("80.5-80.8% (81.4-81.5% with flip TTA) on 2 cores running AVX2 kernels in float32, as most laptops do (two runs, an Intel Xeon capped to AVX2, section 3b); a slower laptop fits fewer passes: 78.5-79.5% on an AMD EPYC with AVX2 that fit about 1,900-2,000 steps instead of 2,400 (three runs, section 3c); 84.3% (85.0%) on the same 2 cores as the Xeon with AVX-512 and native bfloat16 (one run); JPEG copy of CIFAR-10, docs/performance.md"),
                      description=N_("Real CIFAR-10 on a laptop CPU in about ten minutes, at width 32.")),
    "full": Profile(name="full", data="cifar10", width=64, recipe="fast", epochs=20, device="cuda", tta=True,
                    expected_time=N_("about 1 minute on an H100 GPU (50 s there, loading and evaluation included)"),
                    expected_accuracy=N_("87.85% (88.73% with flip TTA) on the JPEG copy of CIFAR-10, one run on an H100 (bfloat16 autocast, channels_last); in the same set-up one run of the Day 50 lesson's own recipe reached 87.88% after its 50 epochs, in 4.4 minutes. That run differs from the lesson's 91.11% in more than the data (precision, memory layout, torch, data pipeline, random seed), so it is no measure of what the JPEG copy costs (docs/performance.md, section 4)"),
                    description=N_("The Day 50 lesson's network (width 64) with the fast recipe, 20 epochs: for a GPU.")),
}


def machine_profile() -> str:
    """The profile a machine is built for: "full" with a CUDA GPU, "laptop" without."""
    return "full" if torch.cuda.is_available() else "laptop"


def get_profile(name: str | None = None, default: str = "quick") -> Profile:
    """The profile called ``name``. Without a name: "quick" in quick mode (``CBAM_COURSE_QUICK=1``,
    so CI stays quick whatever else is set), else ``$CBAM_COURSE_PROFILE`` (the one switch that
    sets a class's mode: ``make lab PROFILE=laptop``, or a hub's environment), else ``default``.

    The default is "quick", so that nobody starts an hour of training unawares by running a lesson;
    the command line passes :func:`machine_profile` instead, because there you asked to train."""
    if name is None and quick_mode():
        name = "quick"
    if name is None:
        name = os.environ.get(PROFILE_ENV, "").strip().lower() or default
    if name not in PROFILES:
        raise ValueError(tr("Unknown profile {name}: choose one of {names} (set {env} or pass the name).",
                            name=repr(name), names=", ".join(map(repr, PROFILES)), env=PROFILE_ENV))
    return PROFILES[name]


def estimate_seconds(profile: Profile, device: str | torch.device | None = None) -> float:
    """About how long one training run of ``profile`` takes on this machine, data loading and
    evaluation included: the time budget where the profile has one, else a few timed training
    steps of its network here, times the steps it plans."""
    if profile.time_budget:
        return profile.time_budget
    import time

    from ..models import AttentionCNN
    from ..runtime import get_device

    device = torch.device(device) if device is not None else get_device()
    recipe = get_recipe(profile.recipe)
    n_train = profile.n_train or 50_000
    steps = profile.epochs * math.ceil(n_train / recipe.batch_size)
    steps = min(steps, profile.max_steps) if profile.max_steps else steps
    batch = min(recipe.batch_size, 64)  # a step's cost grows with the batch: time a small one, scale it
    model = AttentionCNN(attention="cbam", width=profile.width).to(device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    times = []
    for _ in range(3):  # the first is a warm-up
        t0 = time.perf_counter()
        nn.functional.cross_entropy(model(x), y).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    per_step = min(times[1:]) * recipe.batch_size / batch
    evaluation = 1.2 if profile.data == "standin" else 1.1  # a test pass per epoch, at ~1/3 of a step per image
    return per_step * steps * evaluation + (5.0 if profile.data == "standin" else 20.0)


def _count(n: int, one: str, many: str) -> str:
    """``one`` or ``many`` (templates with ``{n}``, marked ``N_`` where written) for ``n``, in the learner's language."""
    return tr(one if n == 1 else many, n=n)


def describe_mode(profile: Profile, trainings: int, what: str | None = None, *, stored: int | None = None,
                  store: str = "", load_seconds: float = 0.0) -> str:
    """Which mode a lesson runs in, what it and the other modes cost on this machine, and how to
    switch: a lesson's first words, so that nobody starts a long run unawares.

    ``trainings`` counts the lesson's runs (in ``what``, by default "this lesson"). ``stored``,
    when known, says how many of them the run store ``store`` holds
    (:func:`cbam_course.train.prepare.plan_lesson` looks them up); those are loaded, in about
    ``load_seconds`` together, and only the rest are trained. Unknown (None), every run is counted
    as a training. In the learner's language."""
    what = tr("this lesson") if what is None else what

    def about(seconds: float) -> str:
        if seconds < 120:
            return tr("about {seconds:.0f} s", seconds=max(1.0, seconds))
        return tr("about {minutes:.0f} minutes", minutes=seconds / 60)

    def cost(p: Profile, n: int = trainings) -> str:
        return about(n * estimate_seconds(p))

    data = tr("the generated stand-in (coloured shapes, not photographs)") if profile.data == "standin" else tr("real CIFAR-10")
    runs = _count(trainings, N_("{n} run"), N_("{n} runs"))
    if stored is None:
        first = tr("{runs} in {what}: {cost} on this machine (estimated).",
                   runs=_count(trainings, N_("{n} training run"), N_("{n} training runs")), what=what, cost=cost(profile))
    elif stored >= trainings:
        first = tr("{runs} in {what}, all in the run store ({store}): loaded, not trained, {time} on this machine "
                   "(estimated).", runs=runs, what=what, store=store, time=about(load_seconds))
    elif stored == 0:
        first = tr("{runs} in {what}, none of them in the run store ({store}) yet: all trained here, {cost} on this "
                   "machine (estimated).", runs=runs, what=what, store=store, cost=cost(profile))
    else:
        first = tr("{runs} in {what}: {stored} in the run store ({store}), loaded ({time}); {to_train} to train, "
                   "{cost} on this machine (estimated).", runs=runs, what=what, stored=stored, store=store,
                   time=about(load_seconds), to_train=trainings - stored, cost=cost(profile, trainings - stored))
    others = "; ".join(f"{p.name!r} {cost(p)}" for p in PROFILES.values() if p.name != profile.name)
    return "\n".join([
        tr("Mode: {name}: {data}, {first}", name=repr(profile.name), data=data, first=first),
        tr("The other modes here, training every run: {others} (laptop and full train on real CIFAR-10; "
           "full is meant for a GPU).", others=others),
        tr("To switch: set {env}=quick|laptop|full before starting Jupyter (`make lab PROFILE=laptop`; "
           "on a hub, in the learners' environment), or put `%env {env}=laptop` in a new first "
           "cell and run the lesson from the top.", env=PROFILE_ENV)])
