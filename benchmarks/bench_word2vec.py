"""Our torch skip-gram with negative sampling against gensim's Word2Vec (sg=1): speed and WordSim-353 quality.

Same corpus (the Wikipedia extract, or its first 30,000 words in fast mode), vector size 100, window 5,
5 negatives, sample 1e-3, min_count 5 and epochs. gensim runs its C loop on 2 threads; ours runs batched
torch (1,024 pairs a step) on `lmcourse.get_device()`.
"""

from __future__ import annotations

import time

from lmcourse.core import get_device
from lmcourse.embeddings import corpus_sentences, evaluate_embeddings, train_word2vec
from lmcourse.skipgram import train_skipgram


def run(fast: bool) -> list[dict]:
    sentences = corpus_sentences("wiki", max_words=30_000 if fast else None)
    epochs = 1 if fast else 5
    settings = {"vector_size": 100, "window": 5, "negative": 5, "min_count": 5, "sample": 1e-3, "epochs": epochs,
                "seed": 0}

    start = time.perf_counter()
    model = train_word2vec(sentences, sg=1, workers=2, **settings)
    gensim_seconds = time.perf_counter() - start
    gensim_wps = model.corpus_total_words * epochs / gensim_seconds
    gensim_ws = evaluate_embeddings(model.wv)["ws353"]["spearman"]

    device = get_device()
    ours = train_skipgram(sentences, device=device, **settings)
    ours_ws = evaluate_embeddings(ours.kv)["ws353"]["spearman"]
    words = sum(map(len, sentences))
    return [
        {"benchmark": f"skip-gram training speed, {words:,} words x {epochs} epoch(s)",
         "ours": f"{ours.words_per_second:,.0f} words/s", "reference": f"{gensim_wps:,.0f} words/s (gensim, 2 workers)",
         "ratio": f"{ours.words_per_second / gensim_wps:.2f}",
         "note": f"torch SGNS on {device}, 1,024 pairs per step, vs gensim's C loop"},
        {"benchmark": "skip-gram WordSim-353 Spearman, same settings",
         "ours": f"{ours_ws:.3f}", "reference": f"{gensim_ws:.3f} (gensim)",
         "ratio": f"{ours_ws / gensim_ws:.2f}" if gensim_ws == gensim_ws and gensim_ws > 0 else "n/a",
         "note": "OOV pairs left out; fast mode's 30k words leave most pairs out and the number is noise"},
    ]
