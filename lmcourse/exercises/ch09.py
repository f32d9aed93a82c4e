"""Chapter 09 · capstone: cross-entropy from logits, a paired bootstrap interval, and the project: the learner's
model, scored by the checker on held-out text it chooses, against the best Kneser-Ney n-gram of orders 4-7 (discount
0.75) with a paired interval: the check passes a valid model; the verdict line (better, level, behind) is the grade."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch.nn import functional as F

from lmcourse.exercises.grading import Wrong, call, exercise, forbidding, generator, rng, same_array, same_number
from lmcourse.stats import block_bootstrap

ID_CE, ID_BOOTSTRAP, ID_PROJECT = "09.cross_entropy_nats", "09.paired_bootstrap", "09.project"
NGRAM_ORDERS = (4, 5, 6, 7)  # the best Kneser-Ney order on the course corpus lies in here (chapter 01: up to 7)


@exercise(ID_CE, "cross-entropy from logits, in nats per token", hints=[
    "The score of every model in the table: the average over positions of -log p(true token). Compute log p "
    "without ever forming p itself; large or float16 logits must not overflow.",
    "log p = logits - logsumexp(logits) (torch.log_softmax does this stably, in float32 for float16 input); "
    "pick the true token's entry with gather, negate, average. Natural log: nats, not bits.",
    "return float(-torch.log_softmax(logits.float(), dim=-1).gather(1, targets[:, None]).mean()).",
])
def check_cross_entropy_nats(cross_entropy_nats) -> None:
    g = generator(ID_CE)
    cases = [("1000 positions, 191 characters", torch.randn(1000, 191, generator=g) * 2),
             ("one position", torch.randn(1, 5, generator=g)),
             ("confident logits in the hundreds", torch.randn(50, 30, generator=g) * 300),
             ("float16 logits", (torch.randn(200, 64, generator=g) * 8).half())]
    for name, logits in cases:
        targets = torch.randint(logits.shape[1], (logits.shape[0],), generator=g)
        with forbidding(F.cross_entropy, torch.nn.CrossEntropyLoss, torch._C._nn.cross_entropy_loss,
                        "lmcourse.sequences.cross_entropy"):
            got = call(name, cross_entropy_nats, logits.clone(), targets.clone())
        same_number(name, got, F.cross_entropy(logits.float(), targets).item(), rtol=1e-4, atol=1e-6)


def _paired_bootstrap(nll_a: np.ndarray, nll_b: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """95 % percentile interval of mean(nll_a - nll_b), resampling positions (the same ones for both models)."""
    diff = nll_a - nll_b
    index = np.random.default_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))
    return np.percentile(diff[index].mean(axis=1), [2.5, 97.5])


@exercise(ID_BOOTSTRAP, "a paired bootstrap interval", hints=[
    "Both models are scored on the same characters, so resample *positions*, and take the same positions for "
    "both models: the per-position difference is what you resample. A 95 % interval cuts 2.5 % on each side.",
    "diff = nll_a - nll_b; index = np.random.default_rng(seed).integers(0, N, size=(n_boot, N)); "
    "means = diff[index].mean(axis=1).",
    "return tuple(np.percentile(means, [2.5, 97.5])).",
])
def check_paired_bootstrap(paired_bootstrap) -> None:
    g = rng(ID_BOOTSTRAP)
    shared = g.gamma(2.0, 0.8, size=3000)  # per-character difficulty, shared by both models
    cases = [("3000 positions, model B better by ~0.05", shared + g.normal(0, 0.3, 3000),
              shared - 0.05 + g.normal(0, 0.3, 3000), 1000, 0),
             ("the same models, another seed", shared + g.normal(0, 0.3, 3000), shared + g.normal(0, 0.3, 3000), 500, 7),
             ("20 positions", g.gamma(2.0, 0.8, 20), g.gamma(2.0, 0.8, 20), 2000, 1)]
    for name, a, b, n_boot, seed in cases:
        with forbidding("lmcourse.stats", "scipy.stats._resampling"):
            got = call(name, paired_bootstrap, a.copy(), b.copy(), n_boot, seed)
        if not isinstance(got, (tuple, list, np.ndarray)) or len(got) != 2:
            raise Wrong(name, f"return a pair (low, high), got {type(got).__name__}")
        same_array(name, np.asarray(got, dtype=np.float64), _paired_bootstrap(a, b, n_boot, seed), atol=1e-9,
                   rtol=1e-7, what="(low, high)")


@functools.cache
def held_out(eval_chars: int) -> np.ndarray:
    """The first eval_chars characters of the wiki validation split as course-tokenizer ids (N,) int64."""
    from lmcourse import data

    return np.array(data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "valid")[:eval_chars]), dtype=np.int64)


@functools.cache
def ngram_log_probs(eval_chars: int) -> dict[int, np.ndarray]:
    """ln p of every held-out character after the first, (N - 1,), under the Kneser-Ney unigram and NGRAM_ORDERS
    trained on the whole wiki training split (a few seconds, once per process)."""
    from lmcourse import data
    from lmcourse.ngram import NGramLM

    train = data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "train"))
    ids = held_out(eval_chars)
    return {order: NGramLM(order).fit(train).log_probs(ids)[1:] for order in (1, *NGRAM_ORDERS)}


def _scored(name: str, log_probs, ids: np.ndarray) -> np.ndarray:
    """The learner's ln p of ids[1:], checked: an array of N - 1 finite numbers, none above 0."""
    got = call(name, log_probs, ids.copy())
    if isinstance(got, torch.Tensor):
        got = got.detach().cpu().double().numpy()
    got = np.asarray(got, dtype=np.float64) if isinstance(got, (np.ndarray, list, tuple)) else got
    if not isinstance(got, np.ndarray) or got.shape != (len(ids) - 1,):
        raise Wrong(name, f"return ln p of each character after the first: an array of shape ({len(ids) - 1},), got "
                          f"{getattr(got, 'shape', type(got).__name__)}")
    if not np.isfinite(got).all() or (got > 1e-6).any():
        raise Wrong(name, "every ln p must be finite and at most 0 (a probability is at most 1); are these log "
                          "probabilities, in natural log?")
    return got


PROBED = (60, 700)  # positions whose whole next-character distribution the checker sums


@exercise(ID_PROJECT, "the capstone project: your model is valid and scored; the verdict line below is the grade", hints=[
    "Give a function of held-out ids (N,) returning ln p(ids[t + 1] | ids[: t + 1]) for t = 0..N-2: natural-log "
    "probabilities from a model trained on the training split only, each using only the characters before it.",
    "The checker feeds your function texts it chose: the held-out text, the same text with its end changed "
    "(earlier values must not move), and short texts ending in each of the 191 characters (their probabilities "
    "must sum to 1). A neural model: log_softmax of its logits, gathered at the next id; an n-gram: its log_probs.",
])
def check_project(log_probs, eval_chars: int = 100_000) -> str:
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
        if t + 1 >= len(ids):
            continue
        case = f"the next-character distribution after the first {t + 1} characters"
        total = sum(np.exp(_scored(case, log_probs, np.append(ids[:t + 1], v))[-1]) for v in range(V))
        if abs(total - 1) > 1e-3:
            raise Wrong(case, f"the probabilities of the {V} possible next characters sum to {total:.4g}, not 1")
    nats = float(-got.mean())
    scores = ngram_log_probs(eval_chars)
    if nats >= -scores[1].mean():
        raise Wrong(name, f"your model scores {nats:.3f} nats/char, not better than the unigram model "
                          f"({-scores[1].mean():.3f}): is it trained?")
    order = max(NGRAM_ORDERS, key=lambda o: scores[o].mean())
    block = min(1000, len(got) // 2)
    gap = block_bootstrap(scores[order] - got, block=block)  # your nll minus the n-gram's, per character
    verdict = ("better than" if gap.high < 0 else "behind" if gap.low > 0 else "level (within the interval) with")
    return (f"  {nats:.3f} nats/char ({nats / math.log(2):.3f} bits/char), scored here. Verdict: {verdict} the best "
            f"Kneser-Ney n-gram of orders {NGRAM_ORDERS[0]}-{NGRAM_ORDERS[-1]} at discount 0.75 (the {order}-gram, "
            f"{-scores[order].mean():.3f}); the difference {gap.estimate:+.3f} nats/char, 95% interval [{gap.low:+.3f}, "
            f"{gap.high:+.3f}] (blocks of {block:,} characters); the unigram scores {-scores[1].mean():.3f}.")


def _vocab_size() -> int:
    from lmcourse import data

    return data.corpus_tokenizer("wiki").vocab_size
