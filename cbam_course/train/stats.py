"""Telling a difference from noise, for lesson 06 and its exercise: a thin layer over ``scipy.stats``.

Each function takes the final test accuracies of runs, one per random seed, of two networks and
asks whether the difference of their means is larger than seed-to-seed noise explains. scipy
computes the tests and the bootstrap; this module only gives them one shape and plain errors.

- :func:`paired_t_test` (``scipy.stats.ttest_rel``) is for runs paired by seed: the two networks
  of a pair share the seed's batch order and augmentation, as lesson 06's runs do. It tests the
  mean of the per-seed differences, so noise that moves both networks of a seed alike cancels.
  It assumes independent pairs and differences that are roughly normal; ``n - 1`` degrees of freedom.
- :func:`welch_t_test` (``scipy.stats.ttest_ind(equal_var=False)``) treats the two groups as
  independent and does not assume they are equally noisy. With 3 seeds a side it has about 2-4
  degrees of freedom, so only a large difference reaches a small p-value.
- :func:`bootstrap_interval` (``scipy.stats.bootstrap``, percentile method) assumes only
  independent runs (or pairs), but it resamples the few values it has: with 3-5 seeds its
  interval is rough and tends to be too narrow.
- :func:`holm` adjusts the p-values of several tests run at once (Holm, 1979), so that the chance
  of any false "real difference" among them stays below the level chosen.

What this layer adds to scipy: one result type for both t-tests (difference, standard error, t,
degrees of freedom, p; it unpacks as ``t, dof, p``), a clear error when a group has fewer than
two runs, the exact answer for runs without any spread (where scipy returns nan), and a seeded
bootstrap.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as _scipy

from ..i18n import tr

__all__ = ["TTestResult", "paired_t_test", "welch_t_test", "bootstrap_interval", "holm"]


@dataclass(frozen=True)
class TTestResult:
    """A two-sided t-test of mean(a) - mean(b): the difference, its standard error, t, dof and p."""

    test: str               # "paired t" or "Welch t"
    difference: float       # mean(a) - mean(b); for paired runs also the mean of the differences
    standard_error: float   # of the difference
    t: float                # difference / standard_error
    dof: float              # degrees of freedom of the t distribution the p-value comes from
    p: float                # two-sided p-value

    def __iter__(self):   # t, dof, p = welch_t_test(a, b)
        return iter((self.t, self.dof, self.p))


def _runs(values: Sequence[float], name: str, test: str) -> np.ndarray:
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    if len(v) < 2:
        raise ValueError(tr("{test} needs at least 2 runs in {name}, got {n}: one run cannot measure its own noise. "
                            "Train more seeds.", test=test, name=name, n=len(v)))
    return v


def _constant(v: np.ndarray) -> bool:
    """All values equal, up to float rounding (accuracies differ by at least 0.01 points)."""
    return float(np.ptp(v)) <= 1e-12 * max(1.0, float(np.abs(v).max()))


def _quietly(test, *args, **kwargs):
    """Call a scipy test without its warning that one group's values are (nearly) identical: a
    network that scores the same on every seed is data, not a numerical accident."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        return test(*args, **kwargs)


def _no_spread(test: str, difference: float, dof: float) -> TTestResult:
    """Runs without any spread: no noise at all, so any difference is certain and none is nothing."""
    if difference == 0.0:
        return TTestResult(test, 0.0, 0.0, 0.0, dof, 1.0)
    return TTestResult(test, difference, 0.0, math.copysign(math.inf, difference), dof, 0.0)


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> TTestResult:
    """The paired two-sided t-test of "mean(a) = mean(b)" (``scipy.stats.ttest_rel``).

    ``a[i]`` and ``b[i]`` must come from the same seed (the same batches and augmentation). The
    test looks at the differences ``a[i] - b[i]``: t is their mean over its standard error,
    ``sd(d) / sqrt(n)``, with ``n - 1`` degrees of freedom. Assumes independent pairs and roughly
    normal differences. A large p says these runs cannot tell, not that the networks are equal.
    """
    x, y = _runs(a, "a", "paired_t_test"), _runs(b, "b", "paired_t_test")
    if len(x) != len(y):
        raise ValueError(tr("paired_t_test needs one run of each network per seed, got {a} and {b} runs: pair them "
                            "by seed, or use welch_t_test for independent groups.", a=len(x), b=len(y)))
    d = x - y
    difference, dof = float(d.mean()), float(len(d) - 1)
    if _constant(d):
        return _no_spread("paired t", difference, dof)
    result = _quietly(_scipy.ttest_rel, x, y)
    return TTestResult("paired t", difference, float(d.std(ddof=1) / math.sqrt(len(d))),
                       float(result.statistic), float(result.df), float(result.pvalue))


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> TTestResult:
    """Welch's two-sided t-test of "mean(a) = mean(b)" (``scipy.stats.ttest_ind(equal_var=False)``).

    ``t, dof, p = welch_t_test(a, b)``. For two groups of independent runs, which may differ in
    size and in noise: the standard error is ``sqrt(s_a²/n_a + s_b²/n_b)`` and the degrees of
    freedom are Welch-Satterthwaite's. A small p (say below 0.05) says a difference this large
    would be rare if the true means were equal; a large p says the runs cannot tell, not that
    the networks are equal.
    """
    x, y = _runs(a, "a", "welch_t_test"), _runs(b, "b", "welch_t_test")
    difference = float(x.mean() - y.mean())
    sa, sb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    if _constant(x) and _constant(y):
        return _no_spread("Welch t", difference, float(len(x) + len(y) - 2))
    result = _quietly(_scipy.ttest_ind, x, y, equal_var=False)
    return TTestResult("Welch t", difference, float(math.sqrt(sa + sb)), float(result.statistic),
                       float(result.df), float(result.pvalue))


def bootstrap_interval(a: Sequence[float], b: Sequence[float] | None = None, *, paired: bool = False,
                       confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval (``scipy.stats.bootstrap``) for mean(a) - mean(b), or for
    mean(a) when ``b`` is None.

    Unpaired, each resample draws ``len(a)`` runs from ``a`` and ``len(b)`` from ``b`` with
    replacement. ``paired=True`` resamples the seeds instead, keeping each seed's two runs
    together (the interval of the mean of ``a[i] - b[i]``). Assumes only independent runs or
    pairs; with few of them (3-5 seeds) the resamples repeat the same few values, so the interval
    is rough and tends to be too narrow. Seeded: the same call gives the same interval.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(tr("bootstrap_interval needs 0 < confidence < 1, got {confidence}.", confidence=confidence))
    x = np.asarray([float(v) for v in a], dtype=np.float64)
    y = None if b is None else np.asarray([float(v) for v in b], dtype=np.float64)
    if len(x) < 2 or (y is not None and len(y) < 2):
        if y is None:
            raise ValueError(tr("bootstrap_interval needs at least 2 runs per group, got {a}: one run has no spread "
                                "to resample.", a=len(x)))
        raise ValueError(tr("bootstrap_interval needs at least 2 runs per group, got {a} and {b}: one run has no "
                            "spread to resample.", a=len(x), b=len(y)))
    options = dict(method="percentile", confidence_level=confidence, n_resamples=n_resamples,
                   rng=np.random.default_rng(seed))
    if y is not None and paired:
        if len(x) != len(y):
            raise ValueError(tr("a paired bootstrap needs one run of each network per seed, got {a} and {b}.",
                                a=len(x), b=len(y)))
        x, y = x - y, None
    if y is None:
        result = _scipy.bootstrap((x,), np.mean, vectorized=True, **options)
    else:
        result = _scipy.bootstrap((x, y), lambda u, v, axis: u.mean(axis) - v.mean(axis), vectorized=True, **options)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's adjusted p-values (Holm, 1979), in the order given.

    With m tests at once, some small p-values appear by chance alone: six independent tests of
    no difference at all give at least one p below 0.05 about a quarter of the time (1 - 0.95⁶).
    Holm sorts the p-values, multiplies the smallest by m, the next by m - 1, and so on (keeping
    the sequence from decreasing, capped at 1). Comparing the adjusted values with 0.05 keeps the
    chance of any false finding among all m tests at most 5%. It never rejects less than
    Bonferroni's correction (every p times m), which it improves on.
    """
    p = [float(x) for x in p_values]
    if any(not 0.0 <= x <= 1.0 for x in p):
        raise ValueError(tr("holm needs p-values between 0 and 1, got {p}.", p=p))
    m, adjusted, running = len(p), [0.0] * len(p), 0.0
    for rank, i in enumerate(sorted(range(m), key=p.__getitem__)):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted
