"""Intervals: how sure a measured number is, the ones this course uses, each written once.

A result means little without its uncertainty, and a claim that model A beats model B rests on an
interval for their *difference* that excludes 0, measured on the same held-out items (paired), so that
the items' shared difficulty cancels. Every function returns an `Interval(estimate, low, high)`.

- a proportion (an accuracy on n independent items): `wilson` (the default: good at any rate, even near
  0 or 1, where the normal approximation p ± 1.96 sqrt(p(1-p)/n) breaks down) or `exact_binomial`
  (Clopper-Pearson: never too narrow, often too wide); the difference of two independent proportions
  (two samplers, each judged on its own samples): `proportion_difference`;
- a mean of a few independent values (one per seed): `t_interval`, and `paired_t_interval` for the
  per-seed difference of two models trained with the same seeds; the difference of the means of two groups of
  independent values that are *not* paired (two models' own samples, each scored once): `welch_t_interval`;
- a mean over many items: `bootstrap` (resample the items), `paired_bootstrap` (resample the items' differences);
- a median of repetitions whose spread is skewed (timings, with a few slow outliers): `median_interval`;
- a mean over the characters of a text, which are *not* independent (neighbours share context):
  `block_bootstrap`, which resamples blocks of consecutive values so that the dependence inside a block stays.
  The correlation of two such series read side by side (a unit's state and a text feature):
  `block_bootstrap_correlation`, which resamples blocks of consecutive pairs; whether one series follows a third more
  closely than another does (two units' states and one feature): `paired_block_bootstrap_correlation_difference`,
  which draws the same blocks for both correlations.

Several tests read at once: each 95 % interval alone excludes a true difference of 0 one time in 20, so among many
tests some "win" by chance. `bonferroni` gives the confidence level at which to compute each of them so that all hold
together at 95 %; a difference then counts only if its interval at that level excludes 0.
"""

from __future__ import annotations

import math
import reprlib
from typing import NamedTuple

import numpy as np

from lmcourse.checks import check_int

__all__ = ["Interval", "block_bootstrap", "block_bootstrap_correlation", "bonferroni", "bootstrap", "exact_binomial",
           "median_interval", "paired_block_bootstrap_correlation_difference", "paired_bootstrap", "paired_t_interval",
           "proportion_difference", "t_interval", "welch_t_interval", "wilson"]


class Interval(NamedTuple):
    """A measured value and its interval: `low <= estimate <= high` (for the percentile bootstrap, usually)."""

    estimate: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        """(high - low) / 2: the "±" of a symmetric interval."""
        return (self.high - self.low) / 2

    def excludes(self, value: float = 0.0) -> bool:
        """True when `value` lies outside [low, high] (for a difference: the sign is established)."""
        return not self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}]"


def _z(confidence: float) -> float:
    """The standard normal quantile for a two-sided interval, 1.96 for 95 %."""
    _check_confidence(confidence)
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def _check_confidence(confidence: float) -> None:
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence!r}")


def _check_counts(successes: int, n: int) -> None:
    for name, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be a whole number (a count), got {value!r}; for a rate p on n items "
                             f"pass successes=round(p * n)")
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got successes={successes}, n={n}")


def _values(name: str, values, minimum: int = 2) -> np.ndarray:
    """`values` as a 1-D float array of finite numbers with at least `minimum` entries."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D sequence of numbers, got {reprlib.repr(values)} ({exc})") from None
    if array.ndim != 1 or len(array) < minimum:
        raise ValueError(f"{name} must be a 1-D sequence of at least {minimum} numbers, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds {int((~np.isfinite(array)).sum())} NaN or infinite values; "
                         "an interval of them would be meaningless: drop or fix them first")
    return array


def _pair(a, b) -> np.ndarray:
    """a - b for two equally long 1-D sequences (the same items scored by two models)."""
    a, b = _values("a", a), _values("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must score the same items (paired), got {len(a)} and {len(b)} values")
    return a - b


# ----------------------------------------------------------------------------- proportions

def wilson(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of the proportion successes / n (for an accuracy: right answers of n items).

    It inverts the score test: the interval is every p whose normal test would not reject the observed
    rate, which keeps it inside [0, 1] and honest near 0 and 1 (0 of 20 gives [0, 0.16], not [0, 0]).
    """
    _check_counts(successes, n)
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def exact_binomial(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Clopper-Pearson interval of successes / n, from the binomial distribution itself (covers at least `confidence`)."""
    _check_counts(successes, n)
    _check_confidence(confidence)
    from scipy.stats import beta

    alpha = 1 - confidence
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return Interval(successes / n, low, high)


def proportion_difference(successes_a: int, n_a: int, successes_b: int, n_b: int,
                          confidence: float = 0.95) -> Interval:
    """Difference of two independent proportions, a - b, with Newcombe's (1998) hybrid score interval.

    Each side's distance from the estimate combines the two Wilson intervals' half-widths on that side
    (low: a's lower and b's upper), so it inherits Wilson's honesty near 0 and 1. For the same items
    scored twice (paired), use `paired_bootstrap` on the per-item 0/1 outcomes instead.
    """
    a, b = wilson(successes_a, n_a, confidence), wilson(successes_b, n_b, confidence)
    d = a.estimate - b.estimate
    return Interval(d, d - math.hypot(a.estimate - a.low, b.high - b.estimate),
                    d + math.hypot(a.high - a.estimate, b.estimate - b.low))


# ----------------------------------------------------------------------------- a few independent values

def t_interval(values, confidence: float = 0.95) -> Interval:
    """Mean of a few independent values (one per seed) and its Student-t interval (n - 1 degrees of freedom)."""
    x = _values("values", values)
    _check_confidence(confidence)
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, len(x) - 1)) * x.std(ddof=1) / math.sqrt(len(x))
    return Interval(float(x.mean()), float(x.mean() - half), float(x.mean() + half))


def paired_t_interval(a, b, confidence: float = 0.95) -> Interval:
    """Mean of a - b over paired values (the same seeds, or the same parts of a text) and its t interval."""
    return t_interval(_pair(a, b), confidence)


def welch_t_interval(a, b, confidence: float = 0.95) -> Interval:
    """mean(a) - mean(b) for two independent groups (not paired, sizes may differ) and its Welch t interval.

    Each group keeps its own variance (no pooling), and the degrees of freedom are Welch-Satterthwaite's,
    (v_a + v_b)^2 / (v_a^2 / (n_a - 1) + v_b^2 / (n_b - 1)) with v = s^2 / n: the interval of
    `scipy.stats.ttest_ind(a, b, equal_var=False)`. For the same items scored twice use `paired_t_interval`.
    """
    x, y = _values("a", a), _values("b", b)
    _check_confidence(confidence)
    from scipy.stats import t

    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)     # squared standard errors of the two means
    diff = float(x.mean() - y.mean())
    if va + vb == 0:                                             # both groups constant: no spread to widen by
        return Interval(diff, diff, diff)
    dof = (va + vb) ** 2 / (va ** 2 / (len(x) - 1) + vb ** 2 / (len(y) - 1))
    half = float(t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(va + vb)
    return Interval(diff, diff - half, diff + half)


def median_interval(values, confidence: float = 0.95) -> Interval:
    """Median of independent repetitions (timings) and its distribution-free interval, [x_(l), x_(n+1-l)] of the
    sorted values: the number of values below the true median is Binomial(n, 1/2), and l is the largest rank
    with 2 P(that number < l) <= 1 - confidence. No assumption on the shape, so a few slow outliers do no harm;
    the interval of `scipy.stats.quantile_test(values, p=0.5)`."""
    x = np.sort(_values("values", values))
    _check_confidence(confidence)
    from scipy.stats import binom

    n = len(x)
    ranks = [l for l in range(1, n // 2 + 1) if 2 * binom.cdf(l - 1, n, 0.5) <= 1 - confidence]
    if not ranks:
        raise ValueError(f"values must hold at least {math.ceil(math.log2(2 / (1 - confidence)))} numbers for a "
                         f"{confidence:.0%} interval of the median, got {n}: repeat the measurement more often")
    l = ranks[-1]
    return Interval(float(np.median(x)), float(x[l - 1]), float(x[n - l]))


# ----------------------------------------------------------------------------- many items: the bootstrap

def _percentile_interval(estimate: float, means: np.ndarray, confidence: float) -> Interval:
    low, high = np.percentile(means, [50 * (1 - confidence), 50 * (1 + confidence)])
    return Interval(estimate, float(low), float(high))


def _check_resamples(n_boot: int) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 100:
        raise ValueError(f"n_boot must be an int >= 100 (1,000-10,000 is usual), got {n_boot!r}")


def bootstrap(values, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Mean of `values` (one per independent item) and its percentile bootstrap interval: resample the items
    with replacement n_boot times and take the middle `confidence` of the resampled means."""
    x = _values("values", values)
    _check_confidence(confidence)
    _check_resamples(n_boot)
    check_int("seed", seed, minimum=0)
    index = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    return _percentile_interval(float(x.mean()), x[index].mean(axis=1), confidence)


def paired_bootstrap(a, b, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Mean of a - b over the same items scored twice, and its bootstrap interval (the items resampled together)."""
    return bootstrap(_pair(a, b), confidence, n_boot, seed)


def block_bootstrap(values, block: int, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Mean of a dependent series (per-character losses of a text) and its block bootstrap interval.

    The series is cut into consecutive blocks of `block` values (a remainder shorter than a block is
    dropped from the resampling, not from the estimate); blocks are resampled with replacement. Blocks much
    longer than the dependence (a few hundred characters for a language model's losses) keep it inside
    them, so the interval is not too narrow, as resampling single characters would make it.
    """
    x = _values("values", values)
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 1 <= block <= len(x) // 2:
        raise ValueError(f"block must be an int in [1, len(values) // 2 = {len(x) // 2}] so that at least two "
                         f"blocks exist, got {block!r}")
    _check_confidence(confidence)
    _check_resamples(n_boot)
    check_int("seed", seed, minimum=0)
    blocks = x[: len(x) // block * block].reshape(-1, block).mean(axis=1)  # (n_blocks,) block means
    index = _draw_blocks(len(x), block, n_boot, seed)
    return _percentile_interval(float(x.mean()), blocks[index].mean(axis=1), confidence)


def _side_by_side(block: int, **series) -> list[np.ndarray]:
    """The named series as float arrays, checked for a block bootstrap of their correlations: equally long (one value
    of each per position), each varying, and `block` short enough that at least two blocks exist."""
    arrays = [_values(name, values, minimum=3) for name, values in series.items()]
    names = list(series)
    if len({len(a) for a in arrays}) > 1:
        raise ValueError(f"{', '.join(names[:-1])} and {names[-1]} must be read side by side (one value of each per "
                         f"position), got {', '.join(str(len(a)) for a in arrays[:-1])} and {len(arrays[-1])} values")
    for name, a in zip(names, arrays):
        if a.std() == 0:
            raise ValueError(f"{name} is constant: its correlation is undefined; pass a series that varies")
    n = len(arrays[0])
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 1 <= block <= n // 2:
        raise ValueError(f"block must be an int in [1, len({names[0]}) // 2 = {n // 2}] so that at least two "
                         f"blocks exist, got {block!r}")
    return arrays


def _draw_blocks(n: int, block: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n // block) block numbers drawn with replacement: one row per resample of the n positions."""
    n_blocks = n // block
    return np.random.default_rng(seed).integers(0, n_blocks, size=(n_boot, n_blocks))


def _block_resampled_correlations(x: np.ndarray, y: np.ndarray, block: int, index: np.ndarray) -> np.ndarray:
    """Pearson r of x and y (n,) in each resample of `index` (n_boot, n // block), the blocks drawn; the remainder
    shorter than a block is left out. Returns (n_boot,) r, NaN where x or y is constant in a resample."""
    a, b = x - x.mean(), y - y.mean()          # centred once: r of every resample is unchanged, the sums stay small
    n_blocks = len(a) // block
    sums = {name: v[: n_blocks * block].reshape(n_blocks, block).sum(axis=1)     # (n_blocks,) per-block sums
            for name, v in (("x", a), ("y", b), ("xx", a * a), ("yy", b * b), ("xy", a * b))}
    s = {name: v[index].sum(axis=1) for name, v in sums.items()}                 # (n_boot,) each
    n = n_blocks * block
    vx, vy = n * s["xx"] - s["x"] ** 2, n * s["yy"] - s["y"] ** 2             # n^2 times each resample's variances
    defined = (vx > 1e-9 * n * n * a.var()) & (vy > 1e-9 * n * n * b.var())    # not constant (rounding aside)
    r = np.full(len(index), np.nan)
    r[defined] = (n * s["xy"] - s["x"] * s["y"])[defined] / np.sqrt(vx[defined] * vy[defined])
    return r


def block_bootstrap_correlation(x, y, block: int, confidence: float = 0.95, n_boot: int = 2000,
                                seed: int = 0) -> Interval:
    """Pearson r of two series read side by side (a unit's state and a text feature, one value per character), and its
    block bootstrap interval.

    The pairs (x_i, y_i) are cut into consecutive blocks of `block` pairs (a remainder shorter than a block is dropped
    from the resampling, not from the estimate); n_boot times the blocks are resampled with replacement and r is
    computed again. With `block=1` and independent pairs this is the plain bootstrap of r, close to Fisher's interval
    tanh(atanh(r) +- z / sqrt(n - 3)); neighbouring characters are not independent, and that interval, which counts
    every pair as new evidence, is then too narrow: blocks longer than the dependence keep it inside them. Resamples in
    which x or y is constant (r undefined) are left out.
    """
    a, b = _side_by_side(block, x=x, y=y)
    _check_confidence(confidence)
    _check_resamples(n_boot)
    check_int("seed", seed, minimum=0)
    estimate = float(np.corrcoef(a, b)[0, 1])
    r = _block_resampled_correlations(a, b, block, _draw_blocks(len(a), block, n_boot, seed))
    r = r[~np.isnan(r)]
    if len(r) < n_boot // 2:
        raise ValueError(f"x or y is constant in {n_boot - len(r)} of {n_boot} resamples (it varies in too few "
                         f"blocks of {block}); use shorter blocks or a longer series")
    return _percentile_interval(estimate, r, confidence)


def paired_block_bootstrap_correlation_difference(x_a, x_b, y, block: int, confidence: float = 0.95,
                                                  n_boot: int = 2000, seed: int = 0) -> Interval:
    """|r(x_a, y)| - |r(x_b, y)|: how much more closely series x_a follows y than x_b does (two units' states and one
    text feature, one value per character, all read side by side), and its paired block bootstrap interval.

    The positions are cut into blocks of `block` as in `block_bootstrap_correlation`, and every resample draws the
    *same* blocks for both correlations: the same text, so what moves both r together (a stretch of long words, say)
    cancels in the difference. Two separate intervals, one per r, cannot show this: they overlap even when the
    difference is certain. Sizes are compared because the sign of a unit's state is arbitrary (a unit that falls as the
    feature rises follows it as closely as one that rises with it). Resamples in which any series is constant are left
    out. Returns Interval(difference of the sizes on all positions, low, high).
    """
    a, b, f = _side_by_side(block, x_a=x_a, x_b=x_b, y=y)
    _check_confidence(confidence)
    _check_resamples(n_boot)
    check_int("seed", seed, minimum=0)
    estimate = abs(float(np.corrcoef(a, f)[0, 1])) - abs(float(np.corrcoef(b, f)[0, 1]))
    index = _draw_blocks(len(f), block, n_boot, seed)                          # one draw of blocks, used for both
    difference = (np.abs(_block_resampled_correlations(a, f, block, index))
                  - np.abs(_block_resampled_correlations(b, f, block, index)))  # (n_boot,), NaN where undefined
    difference = difference[~np.isnan(difference)]
    if len(difference) < n_boot // 2:
        raise ValueError(f"x_a, x_b or y is constant in {n_boot - len(difference)} of {n_boot} resamples (it varies "
                         f"in too few blocks of {block}); use shorter blocks or a longer series")
    return _percentile_interval(estimate, difference, confidence)


# ----------------------------------------------------------------------------- several tests at once

def bonferroni(n_tests: int, confidence: float = 0.95) -> float:
    """The confidence level for each of `n_tests` intervals read together: 1 - (1 - confidence) / n_tests.

    The chance that any of them misses its true value is then at most 1 - confidence (Bonferroni's bound, which
    holds however the tests depend on each other): 3 tests at 95 % are each read at 98.33 %.
    """
    check_int("n_tests", n_tests, minimum=1, fix="the number of tests read together, e.g. 3")
    _check_confidence(confidence)
    return 1 - (1 - confidence) / n_tests
