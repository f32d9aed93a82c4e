"""Our NGramLM against nltk.lm on the same trigram data from the news corpus: fit time, scoring speed, perplexity."""

from __future__ import annotations

import math
import time

from lmcourse.data import load_corpus
from lmcourse.ngram import NGramLM
from lmcourse.tokenizers import split_sentences, split_words

ORDER = 3


def _sentences(split: str) -> list[list[str]]:
    return [split_words(s) for s in split_sentences(load_corpus("lee", split))]


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def run(fast: bool) -> list[dict]:
    from nltk.lm import KneserNeyInterpolated, Laplace
    from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
    from nltk.util import ngrams

    train, valid = _sentences("train"), _sentences("valid")
    ours, ours_fit = _timed(lambda: NGramLM(ORDER).fit(train))

    def nltk_fit(cls):
        model = cls(ORDER)
        grams, vocab = padded_everygram_pipeline(ORDER, train)
        model.fit(grams, vocab)
        return model

    theirs, theirs_fit = _timed(lambda: nltk_fit(KneserNeyInterpolated))
    held_out = [g for s in valid for g in ngrams(list(pad_both_ends(s, ORDER)), ORDER)]
    n_nltk = 40 if fast else 2000                                   # nltk KN needs ~tens of ms per trigram
    theirs_ppl, theirs_score = _timed(lambda: theirs.perplexity(held_out[:n_nltk]))
    repeats = 3
    ours_score = min(_timed(lambda: ours.cross_entropy(valid))[1] for _ in range(repeats))
    n_ours = len(ours.log_probs(valid))
    ours_ppl = ours.perplexity(valid)
    per_ours, per_theirs = ours_score / n_ours, theirs_score / n_nltk
    laplace_ours = NGramLM(ORDER, "add_k").fit(train)
    laplace_theirs = nltk_fit(Laplace)
    n_lap = 200 if fast else 2000
    lap_ours_t = _timed(lambda: laplace_ours.log_probs(valid))[1] / n_ours
    lap_theirs_t = _timed(lambda: [laplace_theirs.logscore(g[-1], g[:-1]) for g in held_out[:n_lap]])[1] / n_lap
    unseen = sum(1 for g in held_out[:n_nltk] if g[-1] not in theirs.vocab)
    return [
        {"benchmark": f"fit a KN trigram model on the news corpus train split ({sum(map(len, train)):,} words)",
         "ours": f"{ours_fit:.2f} s", "reference": f"{theirs_fit:.2f} s (nltk.lm KneserNeyInterpolated)",
         "ratio": f"{theirs_fit / ours_fit:.1f}", "note": "same sentences; nltk pads n-1 </s>, we pad one"},
        {"benchmark": "score held-out text with the KN trigram model (time per token)",
         "ours": f"{per_ours * 1e6:.2f} µs/token ({n_ours:,} tokens)",
         "reference": f"{per_theirs * 1e6:,.0f} µs/trigram ({n_nltk:,} trigrams, nltk)",
         "ratio": f"{per_theirs / per_ours:,.0f}", "note": "ours: numpy searchsorted over integer n-gram keys"},
        {"benchmark": "held-out perplexity of the KN trigram model",
         "ours": f"{ours_ppl:.1f} (all {n_ours:,} tokens)",
         "reference": f"{theirs_ppl if math.isfinite(theirs_ppl) else 'inf'} (first {n_nltk:,} trigrams, nltk; "
                      f"{unseen} unseen words among them)",
         "ratio": "finite vs inf" if not math.isfinite(theirs_ppl) else f"{theirs_ppl / ours_ppl:.2f}",
         "note": "nltk KN gives probability 0 to a word outside its vocabulary; ours keeps <unk> mass"},
        {"benchmark": "score held-out text with the add-one (Laplace) trigram model (time per token)",
         "ours": f"{lap_ours_t * 1e6:.2f} µs/token",
         "reference": f"{lap_theirs_t * 1e6:,.0f} µs/trigram (nltk Laplace)",
         "ratio": f"{lap_theirs_t / lap_ours_t:,.0f}", "note": "identical probabilities to 1e-9 (tests/test_ngram.py)"},
    ]
