"""Lesson 06's noise tests (cbam_course.train.stats): a thin layer over scipy.stats, checked against
scipy itself, against textbook values and by hand. No distribution is computed here any more."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cbam_course.train.stats import TTestResult, bootstrap_interval, holm, paired_t_test, welch_t_test

# Student (1908)'s sleep data, as in R's `sleep`: extra hours of sleep of the same 10 patients
# under two drugs. R: t.test(g1, g2, paired=TRUE) gives t = -4.0621, df = 9, p-value = 0.002833;
# t.test(g1, g2) (Welch, R's default) gives t = -1.8608, df = 17.776, p-value = 0.07939.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_paired_t_on_the_textbook_sleep_data():
    result = paired_t_test(SLEEP_1, SLEEP_2)
    assert result.test == "paired t"
    assert result.t == pytest.approx(-4.0621, abs=1e-4)
    assert result.dof == 9
    assert result.p == pytest.approx(0.002833, abs=1e-6)
    assert result.difference == pytest.approx(-1.58)
    assert result.t == pytest.approx(result.difference / result.standard_error)


def test_welch_t_on_the_textbook_sleep_data():
    result = welch_t_test(SLEEP_1, SLEEP_2)
    assert result.test == "Welch t"
    assert result.t == pytest.approx(-1.8608, abs=1e-4)
    assert result.dof == pytest.approx(17.776, abs=1e-3)
    assert result.p == pytest.approx(0.07939, abs=1e-5)
    # The same data, paired, is far more certain: the patients' own differences cancel.
    assert paired_t_test(SLEEP_1, SLEEP_2).p < result.p / 20


@pytest.mark.parametrize("a, b", [([85.1, 85.6, 84.9], [84.2, 84.8, 84.0]),
                                  ([20.1, 22.3, 19.8, 21.7, 20.9], [18.2, 25.0, 15.1, 19.9, 20.0]),
                                  (SLEEP_1, SLEEP_2)])
def test_the_layer_returns_what_scipy_computes(a, b):
    rel, ind = scipy_stats.ttest_rel(a, b), scipy_stats.ttest_ind(a, b, equal_var=False)
    assert tuple(paired_t_test(a, b)) == pytest.approx((rel.statistic, rel.df, rel.pvalue), rel=1e-12)
    assert tuple(welch_t_test(a, b)) == pytest.approx((ind.statistic, ind.df, ind.pvalue), rel=1e-12)


def test_welch_by_hand_and_unpacks_to_t_dof_p():
    # means 2 and 5, both variances 1, n = 3: se = sqrt(2/3), t = -3/se, dof = 4 exactly.
    result = welch_t_test([1, 2, 3], [4, 5, 6])
    t, dof, p = result
    assert isinstance(result, TTestResult)
    assert t == pytest.approx(-3 / math.sqrt(2 / 3))
    assert dof == pytest.approx(4.0)
    assert p == pytest.approx(0.021311641128756727, rel=1e-9)   # the closed form for 4 degrees of freedom
    assert result.difference == pytest.approx(-3.0)
    assert result.standard_error == pytest.approx(math.sqrt(2 / 3))


def test_paired_and_welch_share_the_difference_and_differ_in_its_standard_error():
    """se_paired² = se_welch² - 2 cov(a, b) / n: pairing removes the noise both runs of a seed share."""
    a, b = [85.1, 85.6, 84.9, 85.4], [84.6, 85.3, 84.2, 85.0]
    paired, welch = paired_t_test(a, b), welch_t_test(a, b)
    assert paired.difference == pytest.approx(welch.difference)
    cov = float(np.cov(a, b, ddof=1)[0, 1])
    assert paired.standard_error ** 2 == pytest.approx(welch.standard_error ** 2 - 2 * cov / len(a))
    assert cov > 0 and paired.p < welch.p


def test_edge_cases_say_what_is_wrong():
    with pytest.raises(ValueError, match="at least 2 runs"):
        welch_t_test([90.0], [89.0, 88.0])
    with pytest.raises(ValueError, match="at least 2 runs"):
        paired_t_test([90.0], [89.0])
    with pytest.raises(ValueError, match="one run of each network per seed"):
        paired_t_test([1.0, 2.0, 3.0], [1.0, 2.0])
    # No spread at all, where scipy returns nan: no difference is certainly none, any other certain.
    assert tuple(welch_t_test([1.0, 1.0], [1.0, 1.0])) == (0.0, 2.0, 1.0)
    assert welch_t_test([2.0, 2.0], [1.0, 1.0]).p == 0.0
    assert tuple(paired_t_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])) == (0.0, 2.0, 1.0)
    assert paired_t_test([2.0, 3.0, 4.0], [1.0, 2.0, 3.0]).t == math.inf
    assert paired_t_test([10.38, 10.0, 10.0], [10.28, 9.9, 9.9]).p == 0.0   # equal up to float rounding


def test_one_network_without_spread_is_tested_without_scipys_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")   # scipy warns of "precision loss" for identical values
        result = welch_t_test([10.0, 10.0, 10.0], [10.38, 10.0, 10.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = scipy_stats.ttest_ind([10.0] * 3, [10.38, 10.0, 10.0], equal_var=False)
    assert (result.t, result.p) == pytest.approx((want.statistic, want.pvalue))


def test_bootstrap_interval_is_scipys_seeded_percentile_interval():
    a, b = [85.1, 85.6, 84.9, 85.4], [84.2, 84.8, 84.5, 84.0]
    lo, hi = bootstrap_interval(a, b, n_resamples=4000, seed=1)
    assert (lo, hi) == bootstrap_interval(a, b, n_resamples=4000, seed=1)
    want = scipy_stats.bootstrap((np.array(a), np.array(b)), lambda x, y, axis: x.mean(axis) - y.mean(axis),
                                 vectorized=True, method="percentile", n_resamples=4000,
                                 rng=np.random.default_rng(1)).confidence_interval
    assert (lo, hi) == pytest.approx((want.low, want.high))
    diff = sum(a) / 4 - sum(b) / 4
    assert lo < diff < hi and lo > 0            # every resample of a beats every resample of b here
    # the mean of one group: constant data gives a zero-width interval
    assert bootstrap_interval([3.0, 3.0, 3.0]) == (3.0, 3.0)
    # more confidence, wider interval
    lo99, hi99 = bootstrap_interval(a, b, confidence=0.99, n_resamples=4000, seed=1)
    assert lo99 <= lo and hi99 >= hi
    with pytest.raises(ValueError, match="at least 2 runs"):
        bootstrap_interval([1.0], [1.0, 2.0])


def test_a_paired_bootstrap_resamples_seeds_and_is_the_interval_of_the_differences():
    paired = bootstrap_interval(SLEEP_1, SLEEP_2, paired=True, n_resamples=4000, seed=0)
    diffs = [x - y for x, y in zip(SLEEP_1, SLEEP_2)]
    assert paired == bootstrap_interval(diffs, n_resamples=4000, seed=0)
    assert paired[1] < 0                                    # every patient but one slept more on drug 2
    unpaired = bootstrap_interval(SLEEP_1, SLEEP_2, n_resamples=4000, seed=0)
    assert paired[1] - paired[0] < unpaired[1] - unpaired[0]


def test_holm_against_values_worked_by_hand_and_bonferroni():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    p = [0.2, 0.011, 0.9, 0.04, 0.013, 0.5]
    adjusted = holm(p)
    bonferroni = [min(1.0, x * len(p)) for x in p]
    assert all(x <= h <= bf for x, h, bf in zip(p, adjusted, bonferroni))
    assert holm([0.5]) == [0.5] and holm([]) == [] and holm([0.6, 0.7]) == [1.0, 1.0]
    with pytest.raises(ValueError, match="between 0 and 1"):
        holm([0.5, float("nan")])
