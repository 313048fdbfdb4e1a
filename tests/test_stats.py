"""Welch's t-test and the bootstrap interval of lesson 06 (cbam_course.train.stats), against exact values."""
import math

import pytest

from cbam_course.train.stats import (bootstrap_interval, regularized_incomplete_beta, t_two_sided_p,
                                     welch_t_test)


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.5, 12.706, 40.0])
def test_t_tail_matches_closed_forms_for_one_two_and_four_degrees_of_freedom(t):
    # Student's t has closed-form tails for 1 (Cauchy), 2 and 4 degrees of freedom.
    assert t_two_sided_p(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-12)
    assert t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    s = t * t / 4
    cdf4 = 0.5 + 3 / 8 * (t / math.sqrt(1 + s)) * (1 - t * t / (12 * (1 + s)))
    assert t_two_sided_p(t, 4) == pytest.approx(2 * (1 - cdf4), abs=1e-12)


@pytest.mark.parametrize("dof, critical", [(1, 12.706), (2, 4.303), (5, 2.571), (10, 2.228), (30, 2.042),
                                           (1000, 1.962)])
def test_t_tables_two_sided_five_percent_critical_values(dof, critical):
    assert t_two_sided_p(critical, dof) == pytest.approx(0.05, abs=2e-4)


def test_incomplete_beta_against_exact_values_and_mpmath():
    assert regularized_incomplete_beta(1, 1, 0.3) == pytest.approx(0.3)          # uniform
    assert regularized_incomplete_beta(2, 1, 0.3) == pytest.approx(0.09)         # x^2
    assert regularized_incomplete_beta(1, 3, 0.5) == pytest.approx(1 - 0.5 ** 3)  # 1-(1-x)^3
    assert regularized_incomplete_beta(0.5, 0.5, 0.25) == pytest.approx(2 / math.pi * math.asin(0.5))
    mpmath = pytest.importorskip("mpmath")
    for a, b, x in [(1.37, 0.5, 0.42), (7.5, 0.5, 0.93), (0.8, 4.2, 0.05), (30, 0.5, 0.99)]:
        want = float(mpmath.betainc(a, b, 0, x, regularized=True))
        assert regularized_incomplete_beta(a, b, x) == pytest.approx(want, rel=1e-10, abs=1e-14)
    with pytest.raises(ValueError, match="0 <= x <= 1"):
        regularized_incomplete_beta(1, 1, 1.5)


def test_welch_by_hand_and_unpacks_to_t_dof_p():
    # means 2 and 5, both variances 1, n = 3: se = sqrt(2/3), t = -3/se, dof = 4 exactly.
    result = welch_t_test([1, 2, 3], [4, 5, 6])
    t, dof, p = result
    assert t == pytest.approx(-3 / math.sqrt(2 / 3))
    assert dof == pytest.approx(4.0)
    assert p == pytest.approx(0.021311641128756727, rel=1e-9)   # the closed form for 4 degrees of freedom
    assert result.difference == pytest.approx(-3.0)
    assert result.standard_error == pytest.approx(math.sqrt(2 / 3))


def test_welch_unequal_variances_uses_welch_satterthwaite():
    a, b = [20.1, 22.3, 19.8, 21.7, 20.9], [18.2, 25.0, 15.1]
    t, dof, p = welch_t_test(a, b)
    ma, mb = sum(a) / 5, sum(b) / 3
    va = sum((x - ma) ** 2 for x in a) / 4
    vb = sum((x - mb) ** 2 for x in b) / 2
    se2 = va / 5 + vb / 3
    assert t == pytest.approx((ma - mb) / math.sqrt(se2))
    assert dof == pytest.approx(se2 ** 2 / ((va / 5) ** 2 / 4 + (vb / 3) ** 2 / 2))
    assert 2 < dof < 3 and 0.5 < p < 1        # the noisy group dominates: few degrees of freedom
    assert welch_t_test(b, a).p == pytest.approx(p)


def test_welch_edge_cases_say_what_is_wrong():
    with pytest.raises(ValueError, match="at least 2 runs"):
        welch_t_test([90.0], [89.0, 88.0])
    assert tuple(welch_t_test([1.0, 1.0], [1.0, 1.0])) == (0.0, 2.0, 1.0)
    assert welch_t_test([2.0, 2.0], [1.0, 1.0]).p == 0.0


def test_bootstrap_interval_is_seeded_and_brackets_the_difference():
    a, b = [85.1, 85.6, 84.9, 85.4], [84.2, 84.8, 84.5, 84.0]
    lo, hi = bootstrap_interval(a, b, n_resamples=4000, seed=1)
    assert (lo, hi) == bootstrap_interval(a, b, n_resamples=4000, seed=1)
    diff = sum(a) / 4 - sum(b) / 4
    assert lo < diff < hi and lo > 0            # every resample of a beats every resample of b here
    # the mean of one group: constant data gives a zero-width interval
    assert bootstrap_interval([3.0, 3.0, 3.0]) == (3.0, 3.0)
    # more confidence, wider interval
    lo99, hi99 = bootstrap_interval(a, b, confidence=0.99, n_resamples=4000, seed=1)
    assert lo99 <= lo and hi99 >= hi
    with pytest.raises(ValueError, match="empty"):
        bootstrap_interval([], [1.0])
