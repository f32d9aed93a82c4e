"""Chapter 09 · capstone: mixture weights by EM, a moving-block bootstrap interval, and the project.

Each exercise is the step next to one the chapter shows: EM for the weights of K models after section 6's grid
over one λ; a circular moving-block bootstrap after section 7's fixed blocks (`lmcourse.stats.block_bootstrap`);
and the project, the learner's model scored by the checker on held-out text it chooses, against a model
section 7 shows (the char LSTM of the zoo, behind none of the mixtures section 7 prints) with a paired interval that must
lie below 0. Every expected value is computed after the learner's function has returned,
from copies of the inputs it was given.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from lmcourse.exercises.grading import (
    Wrong,
    call,
    exercise,
    expect_pair,
    forbidding,
    real_number,
    rng,
    same_array,
    same_number,
)

ID_MIXTURE, ID_BOOTSTRAP, ID_PROJECT = "09.mixture_weights", "09.moving_block_bootstrap", "09.project"


# ------------------------------------------------------------------------------------------------ mixture weights

def _synthetic_log_probs(g: np.random.Generator, n: int, spreads: list[float]) -> np.ndarray:
    """ln p (K, n) of n characters under K made-up models: a difficulty every model shares, plus each model's own
    errors, scaled by its spread (occasionally large, so that mixing helps); every value at most 0."""
    difficulty = g.gamma(1.5, 0.8, size=n)
    own = g.gamma(0.5, 1.0, size=(len(spreads), n)) * np.asarray(spreads)[:, None]
    return -(difficulty + own)


def _mixture_log_probs(weights: np.ndarray, log_probs: np.ndarray) -> np.ndarray:
    """ln sum_k w_k p_k(t) for each t: (n,), from weights (K,) and ln p (K, n), in logs."""
    with np.errstate(divide="ignore"):  # a weight of exactly 0 is a model left out
        return np.logaddexp.reduce(np.log(weights)[:, None] + log_probs, axis=0)


def _best_mean_log_likelihood(log_probs: np.ndarray) -> float:
    """The largest mean ln-likelihood any weights on the simplex reach on ln p (K, n): EM run far past where a
    learner would stop (the objective is concave in the weights, so its maximum value is unique)."""
    p = np.exp(log_probs)
    weights = np.full(len(p), 1 / len(p))
    for _ in range(2000):  # within 1e-6 of the maximum on these cases; the check allows 1e-4
        weights = (weights[:, None] * p / (weights @ p)).mean(axis=1)
    return float(np.log(weights @ p).mean())


@exercise(ID_MIXTURE, "mixture weights by EM, fitted on the tuning characters", hints=[
    "Section 6 mixes two models with one weight λ, found on a grid over the tuning characters. With K models a grid "
    "of K - 1 weights is too big. Where does the log of a sum make the weights hard to solve for directly?",
    "EM: pretend that each character was produced by one of the K models, chosen at random with the weights. Given "
    "the weights, each model's share of the blame for character t follows from Bayes' rule (the shares of one "
    "character add up to 1); given the shares, the best weight of a model is easy. Alternate the two until the "
    "tuning log-likelihood stops improving, starting from equal weights; only then score the other characters.",
    "Why it works: each round never lowers the tuning log-likelihood, which is concave in the weights, so where EM "
    "stops improving it has reached the maximum value (two nearly identical models may split their weight any way "
    "at that value: the checker looks at the likelihood, not at the split). Work with ln p and logaddexp, or "
    "with p itself once per round: these probabilities are not small enough to underflow.",
])
def check_mixture_weights(mixture_weights) -> None:
    g = rng(ID_MIXTURE)
    n = 3000
    a_and_b = _synthetic_log_probs(g, 2 * n, [1.0, 0.8])
    near_copy = _synthetic_log_probs(g, 2 * n, [1.0, 0.7, 0.9])
    near_copy[1] = np.minimum(near_copy[0] + g.normal(0, 0.001, 2 * n), 0)  # a second copy of model 0, all but equal
    useless = _synthetic_log_probs(g, 2 * n, [1.0, 0.8, 6.0])
    shifted = np.concatenate([_synthetic_log_probs(g, n, [0.4, 1.5]), _synthetic_log_probs(g, n, [1.5, 0.4])], axis=1)
    cases = [("two models, 3,000 tuning and 3,000 scored characters", a_and_b),
             ("three models, two of them nearly identical (their split of the weight is not identifiable)", near_copy),
             ("three models, one of them far worse (its best weight is about 0)", useless),
             ("two models, the first better on the tuning characters, the second on the scored ones", shifted),
             ("a single model", a_and_b[:1])]
    for name, log_probs in cases:
        _mixture_case(name, mixture_weights, log_probs[:, :n], log_probs[:, n:])


def _mixture_case(name: str, mixture_weights, tune: np.ndarray, scored: np.ndarray) -> None:
    with forbidding("lmcourse.stats", "sklearn.mixture", "scipy.optimize"):
        got = call(name, mixture_weights, tune.copy(), scored.copy())
    weights, nats = expect_pair(name, got, "(weights, scored_nats)")
    weights = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=np.float64)
    K = len(tune)
    if weights.shape != (K,) or not np.isfinite(weights).all():
        raise Wrong(name, f"weights must be {K} finite numbers, shape ({K},); got shape {weights.shape}")
    if (weights < -1e-12).any() or abs(weights.sum() - 1) > 1e-6:
        raise Wrong(name, "the weights must be non-negative and sum to 1: they are the probabilities of choosing each "
                          "model")
    weights = np.clip(weights, 0, None)
    # only now: the best the tuning characters allow, and the learner's weights scored by the checker
    reached, best = float(_mixture_log_probs(weights, tune).mean()), _best_mean_log_likelihood(tune)
    if reached < best - 1e-4:
        raise Wrong(name, f"your weights reach a mean log-likelihood {best - reached:.2g} nats/char below the best "
                          "weights on the tuning characters: are they fitted on those, and did EM run until it stopped "
                          "improving?")
    same_number(name, nats, float(-_mixture_log_probs(weights, scored).mean()), rtol=1e-7, atol=1e-7,
                what="scored_nats (the mixture's nats/char on the scored characters, with your weights)")


# ------------------------------------------------------------------------------------------------ moving blocks

def _circular_block_means(diff: np.ndarray, block: int, n_boot: int, seed: int) -> np.ndarray:
    """n_boot resampled means of diff (N,) by the circular block bootstrap, from sums of wrapped blocks."""
    N = len(diff)
    wrapped = np.concatenate([[0.0], np.cumsum(np.concatenate([diff, diff[:block]]))])
    full, rest = divmod(N, block)
    starts = np.arange(N)
    sums = {length: wrapped[starts + length] - wrapped[starts] for length in {block, rest} if length}
    g, means = np.random.default_rng(seed), []
    for _ in range(0, n_boot, 2000):  # in chunks: (2000, N / block) starts at a time
        total = sums[block][g.integers(0, N, size=(2000, full))].sum(axis=1)
        if rest:
            total += sums[rest][g.integers(0, N, size=2000)]
        means.append(total / N)
    return np.concatenate(means)[:n_boot]


def _ar1(g: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """An AR(1) series x_t = phi x_{t-1} + e_t, started from its stationary law: neighbours correlated by phi."""
    x = np.empty(n)
    x[0] = g.normal(0, 1 / math.sqrt(1 - phi ** 2))
    for t, e in enumerate(g.normal(size=n - 1), start=1):
        x[t] = phi * x[t - 1] + e
    return x


@exercise(ID_BOOTSTRAP, "a paired interval by the circular moving-block bootstrap", hints=[
    "Section 7 and `lmcourse.stats.block_bootstrap` cut the text into fixed blocks. Here a block may start at any "
    "position. What is resampled (one series, or two?), what does a resample look like, and how long must it be?",
    "Work on the per-character difference: that keeps the pairing. Draw block starts uniformly from all N "
    "positions, take `block` consecutive values from each (after the last position comes the first again), and "
    "join enough blocks to cover N, cutting the last one short. The interval comes from the resampled means.",
    "Why: inside a block neighbouring characters keep their dependence, which iid resampling (block = 1) throws "
    "away, so on real text its interval is too narrow. Wrapping around makes every position equally likely to "
    "be drawn, so the resampled means centre on the observed mean; a resample shorter than N would make them "
    "spread more than the mean of N characters does.",
])
def check_moving_block_bootstrap(moving_block_bootstrap) -> None:
    g = rng(ID_BOOTSTRAP)
    shared = g.gamma(2.0, 0.8, size=2000)  # per-character difficulty, shared by both models
    ends = np.where((np.arange(2000) < 100) | (np.arange(2000) >= 1900), 1.0, 0.0) + g.normal(0, 0.05, 2000)
    periodic = np.tile(g.normal(0, 1, 7), 143)[:1000]
    cases = [("block = 1 (the iid bootstrap), 2,000 characters of two models with a shared difficulty",
              shared + g.normal(0, 0.3, 2000), shared - 0.05 + g.normal(0, 0.3, 2000), 1, 0),
             ("4,000 characters whose differences are an AR(1) series (neighbours correlated by 0.9), block = 100",
              shared[0] + _ar1(g, 4000, 0.9), np.full(4000, shared[0]), 100, 3),
             ("2,000 characters, the models differ only near both ends of the text, block = 200",
              1.5 + ends, np.full(2000, 1.5), 200, 1),
             ("1,000 characters whose differences repeat every 7, block = 7 (1,000 is not a multiple of 7)",
              2 + periodic, np.full(1000, 2.0), 7, 5)]
    for name, a, b, block, seed in cases:
        _bootstrap_case(name, moving_block_bootstrap, a, b, block, seed)
    whole = g.gamma(2.0, 0.8, size=500)
    with forbidding("lmcourse.stats", "scipy.stats._resampling", "arch.bootstrap"):
        got = call("block = N = 500: every resample is the whole text, turned", moving_block_bootstrap,
                   whole + 0.1, whole.copy(), 500, 2000, 2)
    interval = _interval("block = N", got)
    same_array("block = N = 500: every resample is the whole text, turned", interval,
               np.full(2, float(np.mean((whole + 0.1) - whole))), atol=1e-9, rtol=0, what="(low, high)")
    # one block and 400 characters of a second; one hard passage of 100 characters: a resample of N // block
    # blocks (600 characters) misses the passage's second copy, and its interval ends about a sixth too low
    passage = ((np.arange(1000) >= 450) & (np.arange(1000) < 550)) + g.normal(0, 0.05, 1000)
    _bootstrap_case("1,000 characters, one hard passage in the middle, block = 600 (each resample: one whole block "
                    "and 400 characters of a second)", moving_block_bootstrap, 1.5 + passage, np.full(1000, 1.5), 600, 7)


def _interval(name: str, got) -> np.ndarray:
    if not isinstance(got, (tuple, list, np.ndarray)) or len(got) != 2:
        raise Wrong(name, f"return a pair (low, high), got {type(got).__name__}")
    low, high = (real_number(name, value, "low and high") for value in got)
    if low > high:
        raise Wrong(name, "low is above high")
    return np.array([low, high])


def _bootstrap_case(name: str, moving_block_bootstrap, a: np.ndarray, b: np.ndarray, block: int, seed: int) -> None:
    with forbidding("lmcourse.stats", "scipy.stats._resampling", "arch.bootstrap"):
        got = call(name, moving_block_bootstrap, a.copy(), b.copy(), block, 2000, seed)
    interval = _interval(name, got)
    # only now: the checker's own circular block bootstrap with many resamples; any right answer with 2,000
    # resamples lands within a tenth of the interval's width of it (its Monte Carlo error is about 1.5 % of the width)
    reference = np.percentile(_circular_block_means(a - b, block, 20_000, seed + 1), [2.5, 97.5])
    width = reference[1] - reference[0]
    off = np.abs(interval - reference) > 0.1 * width
    if off.any():
        what = {(True, False): "low end", (False, True): "high end", (True, True): "interval"}[tuple(off)]
        wider = (interval[1] - interval[0]) / width
        raise Wrong(name, f"the {what} is off by more than a tenth of the interval's width (your interval is "
                          f"{wider:.2f} times as wide as it should be)")


# ------------------------------------------------------------------------------------------------ the project

TUNED_NGRAM = dict(order=8, smoothing="modified_kneser_ney")  # section 7's tuned n-gram (chosen on tuning characters)
BAR_MODEL, BAR_LABEL = "char-lstm-wiki", "char LSTM (zoo)"   # the bar: section 7's char LSTM, behind none of its mixtures
BAR_PARTS = 8        # read as section 7 reads it: the held-out text in 8 consecutive parts, the state carried through each
BAR_CHARS = 100_000  # the full run's scored characters: the first of the validation split
BAR_NATS = 1.3680    # the bar on those; tests/test_exercises.py checks that the package and the zoo still give it
TUNED_NATS = 1.3966  # the tuned n-gram on those (checked there too)
PROBED = (60, 700)        # positions whose whole next-character distribution the checker sums
PROBE_AFTER = 20          # characters after the probed one: the probe reads a value inside the array, not its end


@functools.cache
def held_out(eval_chars: int) -> np.ndarray:
    """The first eval_chars characters of the wiki validation split as course-tokenizer ids (N,) int64."""
    from lmcourse import data

    return np.array(data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "valid")[:eval_chars]), dtype=np.int64)


@functools.cache
def ngram_log_probs(eval_chars: int) -> dict[str, np.ndarray]:
    """ln p of every held-out character after the first, (N - 1,), under the unigram and the tuned n-gram, both
    trained on the whole wiki training split (a few seconds, once per process)."""
    from lmcourse import data
    from lmcourse.ngram import NGramLM

    train = data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "train"))
    ids = held_out(eval_chars)
    return {"unigram": NGramLM(1).fit(train).log_probs(ids)[1:],
            "tuned": NGramLM(TUNED_NGRAM["order"], smoothing=TUNED_NGRAM["smoothing"]).fit(train).log_probs(ids)[1:]}


@functools.cache
def bar_log_probs(eval_chars: int) -> np.ndarray:
    """ln p of every held-out character after the first, (N - 1,), under the bar: section 7's char LSTM (zoo), read
    as section 7 reads it (BAR_PARTS consecutive parts, the state carried through each; once per process)."""
    import torch

    from lmcourse import zoo
    from lmcourse.sequences import token_log_probs

    model, _, _ = zoo.load(BAR_MODEL)
    ids = torch.as_tensor(held_out(eval_chars))
    part = math.ceil((len(ids) - 1) / BAR_PARTS)
    return token_log_probs(model, ids, part, batch_size=BAR_PARTS).double().numpy()


def _scored(name: str, log_probs, ids: np.ndarray) -> np.ndarray:
    """The learner's ln p of ids[1:], checked: an array of N - 1 finite numbers, none above 0."""
    got = call(name, log_probs, ids.copy())
    if hasattr(got, "detach"):
        got = got.detach().cpu().double().numpy()
    got = np.asarray(got, dtype=np.float64) if isinstance(got, (np.ndarray, list, tuple)) else got
    if not isinstance(got, np.ndarray) or got.shape != (len(ids) - 1,):
        raise Wrong(name, f"return ln p of each character after the first: an array of shape ({len(ids) - 1},), got "
                          f"{getattr(got, 'shape', type(got).__name__)}")
    if not np.isfinite(got).all() or (got > 1e-6).any():
        raise Wrong(name, "every ln p must be finite and at most 0 (a probability is at most 1); are these log "
                          "probabilities, in natural log?")
    return got


def _default_eval_chars() -> int:
    from lmcourse import fast_mode

    return 10_000 if fast_mode() else BAR_CHARS


@exercise(ID_PROJECT, "the capstone project: ahead of section 7's char LSTM (zoo), the interval below 0", hints=[
    "Give a function of held-out ids (N,) returning ln p(ids[t + 1] | ids[: t + 1]) for t = 0..N-2: natural-log "
    "probabilities from a model trained on the training split only, each using only the characters before it.",
    "The checker feeds your function texts it chose: the held-out text, the same text with its end changed "
    "(earlier values must not move), and short texts with each of the 191 characters in one position (their "
    "probabilities there must sum to 1, wherever that position is in the text). A neural model: log_softmax of "
    "its logits, gathered at the next id; an n-gram: its log_probs.",
    "The bar is a network that section 7 shows behind none of the mixtures it prints, so re-mixing those does not "
    "pass. Models whose errors differ help each other most when mixed: a strong network and strong counts, with "
    "weights fitted on characters the checker does not score (Exercise 1), or a network of your own trained longer.",
])
def check_project(log_probs, eval_chars: int | None = None) -> str:
    eval_chars = _default_eval_chars() if eval_chars is None else eval_chars
    ids = held_out(eval_chars)
    name = f"the first {eval_chars:,} validation characters"
    got = _scored(name, log_probs, ids)
    for cut in (len(ids) // 2, len(ids) - 200):  # the future changed: the past's probabilities must not move
        changed = ids.copy()
        changed[cut + 1:] = np.random.default_rng(cut).permutation(changed[cut + 1:])
        case = f"the same text with the characters after position {cut:,} shuffled"
        if not np.allclose(_scored(case, log_probs, changed)[:cut], got[:cut], atol=1e-4, rtol=1e-4):
            raise Wrong(case, "ln p of characters before the change moved: each probability may only use the "
                              "characters before it")
    V = _vocab_size()
    for t in PROBED:
        if t + 2 + PROBE_AFTER > len(ids):
            continue
        case = (f"the next-character distribution after the first {t + 1} characters ({PROBE_AFTER} characters "
                "follow it)")
        total = 0.0
        for v in range(V):
            probe = ids[:t + 2 + PROBE_AFTER].copy()
            probe[t + 1] = v
            total += np.exp(_scored(case, log_probs, probe)[t])
        if abs(total - 1) > 1e-3:
            raise Wrong(case, f"the probabilities of the {V} possible next characters sum to {total:.4g}, not 1")
    return _verdict(name, got, {**ngram_log_probs(eval_chars), "bar": bar_log_probs(eval_chars)})


def _verdict(name: str, got: np.ndarray, scores: dict[str, np.ndarray]) -> str:
    """The grade, from ln p (N - 1,) of the learner (`got`) and of `scores` "unigram", "tuned" and "bar": right only
    when the learner's nats/char minus the bar's has a 95 % block bootstrap interval below 0 (paired, per character).
    Anything else (level with the bar, or behind it) is Wrong, with the difference and its interval."""
    from lmcourse.stats import block_bootstrap

    nats, unigram = float(-got.mean()), float(-scores["unigram"].mean())
    bar, tuned = float(-scores["bar"].mean()), float(-scores["tuned"].mean())
    if nats >= unigram:
        raise Wrong(name, f"your model scores {nats:.3f} nats/char, not better than the unigram model ({unigram:.3f}): "
                          "is it trained?")
    block = min(1000, len(got) // 2)
    gap = block_bootstrap(scores["bar"] - got, block=block)       # your nll minus the bar's, per character
    vs_tuned = block_bootstrap(scores["tuned"] - got, block=block)
    stored = "" if len(got) + 1 == BAR_CHARS else f"; {BAR_NATS} on the first {BAR_CHARS:,}"
    said = (f"{nats:.3f} nats/char ({nats / math.log(2):.3f} bits/char) on {len(got) + 1:,} held-out characters, "
            f"scored here; minus the bar, section 7's {BAR_LABEL} ({bar:.3f} on these characters{stored}): "
            f"{gap.estimate:+.3f} nats/char, 95% interval [{gap.low:+.3f}, {gap.high:+.3f}] (blocks of {block:,} "
            f"characters); minus the tuned n-gram (modified Kneser-Ney {TUNED_NGRAM['order']}-gram, {tuned:.3f}): "
            f"{vs_tuned.estimate:+.3f} [{vs_tuned.low:+.3f}, {vs_tuned.high:+.3f}]")
    if gap.high >= 0:
        where = "behind the bar" if gap.low > 0 else "not separable from the bar (the interval holds 0)"
        raise Wrong(name, f"your model is valid but {where}: {said}. The project asks for an interval below 0: "
                          "section 7's mixtures do not get there")
    return (f"  {said}. Verdict: ahead of the bar, the interval below 0. Not checked (the checker sees your function, "
            "not how it was made): that it learned from the training split only and was tuned on characters it does "
            "not score.")


def _vocab_size() -> int:
    from lmcourse import data

    return data.corpus_tokenizer("wiki").vocab_size
