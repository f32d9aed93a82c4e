"""lmcourse.stats against scipy and closed forms."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from lmcourse import stats


@pytest.mark.parametrize("k, n", [(0, 1), (0, 20), (3, 20), (10, 20), (20, 20), (97, 100), (5000, 10000), (1, 3)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_equals_scipy(k, n, confidence):
    ours = stats.wilson(k, n, confidence)
    theirs = scipy_stats.binomtest(k, n).proportion_ci(confidence, method="wilson")
    assert ours.estimate == k / n
    assert ours.low == pytest.approx(theirs.low, abs=1e-12) and ours.high == pytest.approx(theirs.high, abs=1e-12)


@pytest.mark.parametrize("k, n", [(0, 1), (0, 20), (3, 20), (20, 20), (97, 100), (123, 1000)])
def test_exact_binomial_equals_scipy_clopper_pearson(k, n):
    ours = stats.exact_binomial(k, n)
    theirs = scipy_stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    assert ours.low == pytest.approx(theirs.low, abs=1e-12) and ours.high == pytest.approx(theirs.high, abs=1e-12)


@pytest.mark.parametrize("a, b, low, high", [  # Newcombe (1998), Table II, method 10, printed to 4 decimals
    ((56, 70), (48, 80), 0.0524, 0.3339), ((9, 10), (3, 10), 0.1705, 0.8090), ((6, 7), (2, 7), 0.0582, 0.8062),
    ((5, 56), (0, 29), -0.0381, 0.1926), ((0, 10), (0, 20), -0.1611, 0.2775), ((10, 10), (0, 20), 0.6791, 1.0)])
def test_proportion_difference_equals_newcombes_published_intervals(a, b, low, high):
    ours = stats.proportion_difference(*a, *b)
    assert ours.estimate == pytest.approx(a[0] / a[1] - b[0] / b[1])
    assert ours.low == pytest.approx(low, abs=5e-5) and ours.high == pytest.approx(high, abs=5e-5)


def test_wilson_is_much_narrower_near_one_than_the_half_width_at_one_half():
    """The measurement mistake the course once made: a binomial margin computed at p = 0.5 instead of the observed rate."""
    n = 1000
    at_observed = stats.wilson(980, n).half_width
    at_one_half = 1.96 * math.sqrt(0.25 / n)
    assert at_observed < 0.5 * at_one_half


@pytest.mark.parametrize("values", [[1.0, 2.0], [0.3, 0.1, 0.5, 0.2, 0.4], list(np.linspace(-1, 3, 17))])
def test_t_interval_equals_scipy(values):
    ours = stats.t_interval(values)
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert ours.estimate == pytest.approx(np.mean(values))
    assert ours.low == pytest.approx(low) and ours.high == pytest.approx(high)


def test_paired_t_interval_is_the_t_interval_of_the_differences():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=6), rng.normal(size=6)
    assert stats.paired_t_interval(a, b) == stats.t_interval(a - b)
    result = scipy_stats.ttest_rel(a, b).confidence_interval(0.95)
    assert stats.paired_t_interval(a, b).low == pytest.approx(result.low)


@pytest.mark.parametrize("sizes, scales", [((16, 16), (0.2, 0.1)), ((5, 12), (1.0, 3.0)), ((2, 3), (1.0, 1.0)),
                                           ((40, 7), (0.5, 2.5))])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_welch_t_interval_equals_scipy(sizes, scales, confidence):
    rng = np.random.default_rng(sum(sizes))
    a, b = rng.normal(1.5, scales[0], sizes[0]), rng.normal(1.0, scales[1], sizes[1])
    ours = stats.welch_t_interval(a, b, confidence)
    theirs = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence_level=confidence)
    assert ours.estimate == pytest.approx(a.mean() - b.mean())
    assert ours.low == pytest.approx(theirs.low) and ours.high == pytest.approx(theirs.high)


def test_welch_t_interval_with_equal_sizes_and_variances_is_the_pooled_t_interval():
    """Closed form: n values each side with the same sample variance give Welch's degrees of freedom 2 (n - 1) and the
    pooled standard error, so the interval is the mean difference ± t(0.975, 2n - 2) sqrt(2 s^2 / n)."""
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = a - 0.75 + 10.0                      # the same spread, shifted: s^2 = 5/3 in both
    ours = stats.welch_t_interval(a, b)
    half = scipy_stats.t.ppf(0.975, 6) * math.sqrt(2 * (5 / 3) / 4)
    assert ours.estimate == pytest.approx(-9.25)
    assert ours.low == pytest.approx(-9.25 - half) and ours.high == pytest.approx(-9.25 + half)


def test_welch_t_interval_of_two_constant_groups_is_their_difference():
    assert stats.welch_t_interval([2.0, 2.0, 2.0], [0.5, 0.5]) == stats.Interval(1.5, 1.5, 1.5)


@pytest.mark.parametrize("n", [6, 7, 10, 20, 100, 101])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_median_interval_equals_scipys_quantile_test(n, confidence):
    x = np.random.default_rng(n).exponential(size=n)   # skewed, as timings are
    ours = stats.median_interval(x, confidence)
    theirs = scipy_stats.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(confidence)
    assert ours.estimate == np.median(x)
    assert (ours.low, ours.high) == (theirs.low, theirs.high)


def test_median_interval_ignores_how_far_out_an_outlier_lies():
    x = np.arange(1.0, 101.0)
    assert stats.median_interval(np.append(x[:-1], 1e9)) == stats.median_interval(x)


def test_median_interval_refuses_too_few_values_for_the_confidence():
    with pytest.raises(ValueError, match="at least 6 numbers"):
        stats.median_interval([1.0, 2.0, 3.0, 4.0, 5.0])


def test_bootstrap_of_many_normal_values_matches_the_normal_interval():
    x = np.random.default_rng(1).normal(2.0, 3.0, size=4000)
    ours = stats.bootstrap(x, n_boot=4000)
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    assert ours.estimate == pytest.approx(x.mean())
    assert ours.low == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert ours.high == pytest.approx(x.mean() + half, abs=0.1 * half)


def test_bootstrap_repeats_with_its_seed_and_differs_with_another():
    x = np.arange(50.0)
    assert stats.bootstrap(x, seed=3) == stats.bootstrap(x, seed=3)
    assert stats.bootstrap(x, seed=3) != stats.bootstrap(x, seed=4)


def test_paired_bootstrap_cancels_the_items_shared_difficulty():
    rng = np.random.default_rng(2)
    difficulty = rng.exponential(2.0, size=3000)  # most of each item's loss is shared by both models
    a, b = difficulty + 0.05 + rng.normal(0, 0.1, 3000), difficulty + rng.normal(0, 0.1, 3000)
    paired = stats.paired_bootstrap(a, b)
    assert paired.excludes(0) and paired.low > 0
    unpaired_half = 1.96 * math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert paired.half_width < 0.2 * unpaired_half  # an unpaired comparison could not see the 0.05


def test_block_bootstrap_with_blocks_of_one_is_the_plain_bootstrap():
    x = np.random.default_rng(3).normal(size=400)
    assert stats.block_bootstrap(x, block=1) == stats.bootstrap(x)


def test_block_bootstrap_widens_the_interval_of_a_dependent_series():
    """An AR(1) series with strong dependence: resampling single values is far too sure; blocks are not."""
    rng = np.random.default_rng(4)
    x = np.empty(20000)
    x[0] = 0.0
    for i in range(1, len(x)):
        x[i] = 0.95 * x[i - 1] + rng.normal()
    plain, blocked = stats.bootstrap(x), stats.block_bootstrap(x, block=500)
    # the true standard error of the mean of AR(1) is sqrt((1 + phi) / (1 - phi)) = 6.2x the i.i.d. one
    assert blocked.half_width > 3 * plain.half_width


def test_block_bootstrap_correlation_of_independent_pairs_matches_fishers_interval():
    """Closed form for independent normal pairs: Fisher's z, atanh(r) +- 1.96 / sqrt(n - 3), mapped back by tanh."""
    rng = np.random.default_rng(5)
    n, rho = 2000, 0.6
    x = rng.normal(size=n)
    y = rho * x + math.sqrt(1 - rho ** 2) * rng.normal(size=n)
    ours = stats.block_bootstrap_correlation(x, y, block=1, n_boot=4000)
    r = np.corrcoef(x, y)[0, 1]
    half = 1.96 / math.sqrt(n - 3)
    low, high = math.tanh(math.atanh(r) - half), math.tanh(math.atanh(r) + half)
    assert ours.estimate == pytest.approx(r)
    assert ours.low == pytest.approx(low, abs=0.15 * (high - low) / 2)
    assert ours.high == pytest.approx(high, abs=0.15 * (high - low) / 2)


def test_block_bootstrap_correlation_widens_the_interval_of_dependent_pairs():
    """Each of 200 independent pairs repeated 20 times in a row: resampling single pairs counts 4,000 pairs of evidence
    (too narrow, by sqrt(20) = 4.5 times); blocks of 20 resample the 200 that there are."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=200)
    y = 0.5 * x + rng.normal(size=200)
    x, y = np.repeat(x, 20), np.repeat(y, 20)
    plain = stats.block_bootstrap_correlation(x, y, block=1)
    blocked = stats.block_bootstrap_correlation(x, y, block=20)
    assert plain.estimate == blocked.estimate == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert blocked.half_width > 3 * plain.half_width


def test_block_bootstrap_correlation_is_unchanged_by_shifting_and_scaling_either_series():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=300), rng.normal(size=300)
    y = y + x
    a = stats.block_bootstrap_correlation(x, y, block=10)
    b = stats.block_bootstrap_correlation(1e3 * x + 5.0, y - 7.0, block=10)   # the same resamples (the same seed)
    assert a.estimate == pytest.approx(b.estimate)
    assert a.low == pytest.approx(b.low) and a.high == pytest.approx(b.high)


def test_paired_correlation_difference_of_a_series_against_itself_is_exactly_0():
    """The same series on both sides: every resample gives the same r twice, so the estimate and both ends are 0."""
    rng = np.random.default_rng(8)
    y = rng.normal(size=1000)
    x = y + rng.normal(size=1000)
    assert stats.paired_block_bootstrap_correlation_difference(x, x, y, block=20) == stats.Interval(0.0, 0.0, 0.0)


def test_paired_correlation_difference_of_a_strongly_and_a_weakly_correlated_series_is_above_0():
    """|r| about 0.89 against about 0.45 (noise of sd 0.5 and 2 on the same y): the difference is the estimate, and its
    interval lies above 0."""
    rng = np.random.default_rng(9)
    y = rng.normal(size=2000)
    strong, weak = y + 0.5 * rng.normal(size=2000), y + 2.0 * rng.normal(size=2000)
    ours = stats.paired_block_bootstrap_correlation_difference(strong, weak, y, block=20)
    assert ours.estimate == pytest.approx(abs(np.corrcoef(strong, y)[0, 1]) - abs(np.corrcoef(weak, y)[0, 1]))
    assert ours.low > 0 and ours.low <= ours.estimate <= ours.high


def test_paired_correlation_difference_compares_sizes_not_signs():
    """A unit's sign is arbitrary: negating either series changes nothing (the same blocks, the same |r|)."""
    rng = np.random.default_rng(10)
    y = rng.normal(size=600)
    a, b = y + rng.normal(size=600), y + 1.5 * rng.normal(size=600)
    ours = stats.paired_block_bootstrap_correlation_difference(a, b, y, block=10)
    assert stats.paired_block_bootstrap_correlation_difference(-a, b, y, block=10) == pytest.approx(ours)
    assert stats.paired_block_bootstrap_correlation_difference(a, -b, -y, block=10) == pytest.approx(ours)


def test_paired_correlation_difference_sees_what_two_separate_intervals_cannot():
    """Two series that share most of their noise (b is a plus a little more): their r differ by about 0.015, and each
    r's own interval is about 0.05 wide, so the two intervals overlap; resampling the same blocks for both moves the
    two r together, and the interval of their difference is far narrower and excludes 0."""
    rng = np.random.default_rng(11)
    y = rng.normal(size=2000)
    a = y + rng.normal(size=2000)
    b = a + 0.3 * rng.normal(size=2000)
    paired = stats.paired_block_bootstrap_correlation_difference(a, b, y, block=20)
    alone_a = stats.block_bootstrap_correlation(a, y, block=20)
    alone_b = stats.block_bootstrap_correlation(b, y, block=20)
    assert alone_a.low < alone_b.high                      # the separate intervals overlap
    assert paired.low > 0                                  # the paired one settles the sign
    assert paired.half_width < 0.5 * math.hypot(alone_a.half_width, alone_b.half_width)


def test_bonferroni_shares_the_error_rate_among_the_tests():
    assert stats.bonferroni(1) == pytest.approx(0.95)
    assert stats.bonferroni(3) == pytest.approx(1 - 0.05 / 3)
    assert stats.bonferroni(4, confidence=0.9) == pytest.approx(0.975)


def test_bonferroni_intervals_of_independent_null_tests_all_cover_0_at_least_95_percent_of_the_time():
    """5 independent tests of a true difference 0 (Bonferroni's worst case), each a normal 99 % interval: all five
    cover 0 with probability 0.99 ** 5 = 0.951 >= 0.95, and 20,000 simulated trials agree."""
    z = scipy_stats.norm.ppf(0.5 + stats.bonferroni(5) / 2)
    draws = np.random.default_rng(0).normal(size=(20_000, 5))
    assert stats.bonferroni(5) ** 5 >= 0.95
    assert (np.abs(draws) <= z).all(axis=1).mean() == pytest.approx(stats.bonferroni(5) ** 5, abs=0.006)


@pytest.mark.parametrize("call, words", [
    (lambda: stats.bonferroni(0), "n_tests"),
    (lambda: stats.bonferroni(2.0), "n_tests"),
    (lambda: stats.bonferroni(3, confidence=95), "confidence must be in (0, 1)"),
    (lambda: stats.wilson(5, 0), "n=0"),
    (lambda: stats.wilson(6, 5), "successes=6"),
    (lambda: stats.wilson(0.8, 10), "got 0.8"),
    (lambda: stats.wilson(True, 10), "got True"),
    (lambda: stats.wilson(3, 10, confidence=95), "confidence must be in (0, 1)"),
    (lambda: stats.t_interval([1.0]), "at least 2"),
    (lambda: stats.t_interval([1.0, float("nan")]), "NaN"),
    (lambda: stats.welch_t_interval([1.0], [1.0, 2.0]), "at least 2"),
    (lambda: stats.welch_t_interval([1.0, 2.0], [1.0, float("inf")]), "NaN"),
    (lambda: stats.welch_t_interval([1.0, 2.0], [1.0, 2.0], confidence=95), "confidence must be in (0, 1)"),
    (lambda: stats.paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0]), "3 and 2"),
    (lambda: stats.bootstrap([1.0, 2.0], n_boot=10), "n_boot"),
    (lambda: stats.block_bootstrap(np.ones(10), block=6), "block"),
    (lambda: stats.block_bootstrap(np.ones(10), block=0), "block"),
    (lambda: stats.block_bootstrap_correlation(np.arange(10.0), np.arange(9.0), block=2), "10 and 9"),
    (lambda: stats.block_bootstrap_correlation(np.ones(10), np.arange(10.0), block=2), "x is constant"),
    (lambda: stats.block_bootstrap_correlation(np.arange(10.0), np.arange(10.0) ** 2, block=6), "block"),
    (lambda: stats.paired_block_bootstrap_correlation_difference(np.arange(10.0), np.arange(10.0), np.arange(9.0),
                                                                 block=2), "10, 10 and 9"),
    (lambda: stats.paired_block_bootstrap_correlation_difference(np.arange(10.0), np.ones(10), np.arange(10.0),
                                                                 block=2), "x_b is constant"),
    (lambda: stats.paired_block_bootstrap_correlation_difference(np.arange(10.0), np.arange(10.0) ** 2,
                                                                 np.arange(10.0), block=6), "block"),
])
def test_bad_inputs_are_named(call, words):
    with pytest.raises(ValueError) as info:
        call()
    assert words in str(info.value)
