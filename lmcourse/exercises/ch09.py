"""Chapter 09 · capstone: cross-entropy from logits, a paired bootstrap interval, and the project's score
against the best n-gram."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch.nn import functional as F

from lmcourse.exercises.grading import Wrong, call, exercise, generator, real_number, rng, same_array, same_number

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
        want = F.cross_entropy(logits.float(), targets).item()
        got = call(name, cross_entropy_nats, logits.clone(), targets.clone())
        same_number(name, got, want, rtol=1e-4, atol=1e-6)


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
        got = call(name, paired_bootstrap, a.copy(), b.copy(), n_boot, seed)
        if not isinstance(got, (tuple, list, np.ndarray)) or len(got) != 2:
            raise Wrong(name, f"return a pair (low, high), got {type(got).__name__}")
        same_array(name, np.asarray(got, dtype=np.float64), _paired_bootstrap(a, b, n_boot, seed), atol=1e-9,
                   rtol=1e-7, what="(low, high)")


@functools.cache
def ngram_scores(eval_chars: int) -> dict[int, float]:
    """Kneser-Ney nats/char of the unigram and of NGRAM_ORDERS on the first eval_chars validation characters of
    the wiki corpus, trained on its whole training split (about ten seconds, once per process)."""
    from lmcourse import data
    from lmcourse.ngram import NGramLM

    tokenizer = data.corpus_tokenizer("wiki")
    train = tokenizer.encode(data.load_corpus("wiki", "train"))
    valid = tokenizer.encode(data.load_corpus("wiki", "valid")[:eval_chars])
    return {order: NGramLM(order).fit(train).cross_entropy(valid) for order in (1, *NGRAM_ORDERS)}


@exercise(ID_PROJECT, "the capstone project: your model against the best n-gram", hints=[
    "Give a function that returns your model's cross-entropy on the held-out characters, in nats per character: "
    "a mean over characters (not a sum), natural log (not bits), not a perplexity.",
    "Use the course's scoring: lmcourse.sequences.cross_entropy(logits_fn, valid_ids, block_size) for a neural "
    "model, NGramLM.cross_entropy(valid_ids) for an n-gram, on the first eval_chars validation characters.",
])
def check_project(score, eval_chars: int = 100_000) -> str:
    name = f"your model on the first {eval_chars:,} validation characters"
    nats = real_number(name, call(name, score), what="your score")
    if not 0 < nats < math.inf:
        raise Wrong(name, "a cross-entropy of real text is a finite number above 0 nats/char")
    scores = ngram_scores(eval_chars)
    if nats >= scores[1]:
        raise Wrong(name, "your score is not better than the unigram model's: is it nats per character (not a "
                          "perplexity, not a sum), on held-out text?")
    order = min(NGRAM_ORDERS, key=scores.get)
    gap = nats - scores[order]
    verdict = "better than" if gap < 0 else "behind"
    return (f"  {nats:.3f} nats/char ({nats / math.log(2):.3f} bits/char): {abs(gap):.3f} nats/char {verdict} the "
            f"best n-gram ({order}-gram Kneser-Ney, {scores[order]:.3f}); the unigram scores {scores[1]:.3f}.")
