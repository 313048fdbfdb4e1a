"""Telling a difference from noise, for lesson 06: Welch's t-test and a bootstrap interval.

Both take the final accuracies of independent runs (one per random seed) of two networks and ask
whether the difference of their means is larger than seed-to-seed noise explains.

- :func:`welch_t_test` assumes independent runs and means that are roughly normal; it does not
  assume the two networks are equally noisy. With 3 seeds a side it has about 2-4 degrees of
  freedom, so only a large difference reaches a small p-value.
- :func:`bootstrap_interval` assumes only independent runs, but it resamples the few values it
  has: with 3-5 seeds its interval is rough and tends to be too narrow.

No scipy: the t-distribution's tail comes from the regularized incomplete beta function,
computed with the continued fraction of Numerical Recipes (tests compare it with exact values).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

__all__ = ["WelchResult", "welch_t_test", "t_two_sided_p", "bootstrap_interval", "regularized_incomplete_beta"]


def _beta_continued_fraction(a: float, b: float, x: float, max_iter: int = 500, eps: float = 1e-15) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz), converging fast for x < (a+1)/(a+b+2)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            return h
    raise ArithmeticError(f"the incomplete beta's continued fraction did not converge for a={a}, b={b}, x={x}")


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 <= x <= 1.

    It gives the tails of Student's t distribution (:func:`t_two_sided_p`).
    """
    if a <= 0 or b <= 0:
        raise ValueError(f"regularized_incomplete_beta needs a > 0 and b > 0, got a={a}, b={b}.")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"regularized_incomplete_beta needs 0 <= x <= 1, got x={x}.")
    if x == 0.0 or x == 1.0:
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, dof: float) -> float:
    """P(|T| >= |t|) for Student's t with ``dof`` degrees of freedom (``dof`` need not be whole)."""
    if dof <= 0:
        raise ValueError(f"t_two_sided_p needs dof > 0, got {dof}.")
    if math.isinf(t):
        return 0.0
    return regularized_incomplete_beta(dof / 2.0, 0.5, dof / (dof + t * t))


@dataclass(frozen=True)
class WelchResult:
    """Welch's t-test of mean(a) - mean(b): the difference, its standard error, t, dof and p."""

    difference: float
    standard_error: float
    t: float
    dof: float
    p: float

    def __iter__(self):   # t, dof, p = welch_t_test(a, b)
        return iter((self.t, self.dof, self.p))


def _mean_var(values: Sequence[float], name: str) -> tuple[int, float, float]:
    v = [float(x) for x in values]
    if len(v) < 2:
        raise ValueError(f"welch_t_test needs at least 2 runs in {name}, got {len(v)}: one run cannot "
                         f"measure its own noise. Train more seeds.")
    m = sum(v) / len(v)
    return len(v), m, sum((x - m) ** 2 for x in v) / (len(v) - 1)


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> WelchResult:
    """Welch's two-sided t-test of "mean(a) = mean(b)" for two groups of independent runs.

    ``t, dof, p = welch_t_test(a, b)`` (the result also has ``.difference`` and
    ``.standard_error``). Assumes the runs are independent and their means roughly normal; the
    two groups may have different variances. A small p (say below 0.05) says a difference this
    large would be rare if the true means were equal; a large p says the runs cannot tell,
    not that the networks are equal.
    """
    na, ma, va = _mean_var(a, "a")
    nb, mb, vb = _mean_var(b, "b")
    diff = ma - mb
    sa, sb = va / na, vb / nb
    se = math.sqrt(sa + sb)
    if se == 0.0:   # both groups constant: no noise at all
        return WelchResult(diff, 0.0, 0.0 if diff == 0 else math.copysign(math.inf, diff),
                           float(na + nb - 2), 1.0 if diff == 0 else 0.0)
    t = diff / se
    dof = (sa + sb) ** 2 / ((sa * sa / (na - 1) if sa else 0.0) + (sb * sb / (nb - 1) if sb else 0.0))
    return WelchResult(diff, se, t, dof, t_two_sided_p(t, dof))


def bootstrap_interval(a: Sequence[float], b: Sequence[float] | None = None, *, confidence: float = 0.95,
                       n_resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval for mean(a) - mean(b) (or for mean(a) when ``b`` is None).

    Each resample draws ``len(a)`` runs from ``a`` and ``len(b)`` from ``b`` with replacement.
    Assumes only independent runs; with few runs (3-5 seeds) the resamples repeat the same few
    values, so the interval is rough and tends to be too narrow. Seeded: the same call gives the
    same interval.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bootstrap_interval needs 0 < confidence < 1, got {confidence}.")
    groups = [[float(x) for x in a]] + ([[float(x) for x in b]] if b is not None else [])
    if any(len(g) == 0 for g in groups):
        raise ValueError("bootstrap_interval got an empty group; give at least one run per group.")
    rng = random.Random(seed)
    stats = []
    for _ in range(n_resamples):
        means = [sum(rng.choices(g, k=len(g))) / len(g) for g in groups]
        stats.append(means[0] - (means[1] if len(means) > 1 else 0.0))
    stats.sort()
    tail = (1.0 - confidence) / 2.0
    lo = stats[min(len(stats) - 1, max(0, int(math.floor(tail * n_resamples))))]
    hi = stats[min(len(stats) - 1, max(0, int(math.ceil((1.0 - tail) * n_resamples)) - 1))]
    return lo, hi
