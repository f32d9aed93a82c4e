"""Count-based word vectors: positive PMI of word-context co-occurrences, reduced by a truncated SVD.

The baseline word2vec is measured against (Levy, Goldberg & Dagan, 2015, "Improving distributional
similarity with lessons learned from word embeddings"): count which words occur within `window`
positions of each other, weight each count by how much more often the pair occurs than chance,

    PPMI(w, c) = max(0, log P(w, c) / (P(w) P_alpha(c))),   P_alpha(c) = #(c)^alpha / sum_c' #(c')^alpha,

and keep the top `dim` singular directions of that (V, V) matrix. alpha = 0.75 smooths the context
distribution as word2vec's negative sampling does; the word vectors are U * S^eig (eig = 0.5 weighs the
singular values as Levy et al. recommend; 1 is the textbook truncated SVD).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import svds

from lmcourse.checks import check_number, check_positive_ints
from lmcourse.embeddings import _check_sentences, to_keyed_vectors

__all__ = ["cooccurrence_counts", "ppmi_matrix", "ppmi_svd"]


def cooccurrence_counts(sentences: Sequence[Sequence[str]], window: int = 5, min_count: int = 5):
    """(words, counts): the words seen at least `min_count` times, most frequent first, and the sparse
    (V, V) matrix whose (w, c) entry counts how often c occurs within `window` positions of w in a sentence
    (symmetric; rarer words are removed before the windows are taken, as word2vec does)."""
    check_positive_ints(window=window, min_count=min_count)
    sentences = _check_sentences(sentences)
    frequency = Counter(w for s in sentences for w in s)
    words = [w for w, n in sorted(frequency.items(), key=lambda item: (-item[1], item[0])) if n >= min_count]
    if not words:
        raise ValueError(f"no word occurs min_count={min_count} times; lower min_count or pass more text")
    index = {w: i for i, w in enumerate(words)}
    rows, cols = [], []
    for s in sentences:
        ids = np.array([index[w] for w in s if w in index], dtype=np.int64)
        for offset in range(1, window + 1):          # each pair at distance `offset`, both directions
            rows += [ids[:-offset], ids[offset:]]
            cols += [ids[offset:], ids[:-offset]]
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    counts = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(words), len(words))).tocsr()
    counts.sum_duplicates()
    return words, counts


def ppmi_matrix(counts, alpha: float = 0.75):
    """Positive PMI (sparse, same shape) of a (V, V) co-occurrence count matrix, with the context
    distribution raised to `alpha` (1: plain PPMI)."""
    check_number("alpha", alpha, 0, 1, low_open=True, fix="0.75 as in word2vec, or 1 for plain PPMI")
    counts = sparse.csr_matrix(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        raise ValueError("counts is all zeros: no co-occurrence was counted; pass more text or a larger window")
    p_word = np.asarray(counts.sum(axis=1)).ravel() / total                  # (V,)
    context = np.asarray(counts.sum(axis=0)).ravel() ** alpha
    p_context = context / context.sum()                                    # (V,)
    coo = counts.tocoo()
    pmi = np.log(coo.data / total) - np.log(p_word[coo.row]) - np.log(p_context[coo.col])
    keep = pmi > 0
    return sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)


def ppmi_svd(sentences: Sequence[Sequence[str]], dim: int = 100, window: int = 5, min_count: int = 5,
             alpha: float = 0.75, eig: float = 0.5, seed: int = 0):
    """Word vectors (gensim KeyedVectors, `dim` numbers per word) from the truncated SVD of the PPMI matrix.

    Deterministic for a given `seed` (the SVD's starting vector); the sign of each direction is fixed so that
    its largest entry is positive.
    """
    check_positive_ints(dim=dim)
    check_number("eig", eig, 0, 1, fix="0.5 as in Levy et al. (2015), or 1 for U * S")
    words, counts = cooccurrence_counts(sentences, window=window, min_count=min_count)
    if dim >= len(words):
        raise ValueError(f"dim={dim} must be below the vocabulary size {len(words)}; lower dim or min_count")
    start = np.random.default_rng(seed).standard_normal(len(words))
    u, s, _ = svds(ppmi_matrix(counts, alpha), k=dim, v0=start)            # u (V, dim), s (dim,) ascending
    order = np.argsort(s)[::-1]
    u, s = u[:, order], s[order]
    u *= np.sign(u[np.abs(u).argmax(axis=0), np.arange(dim)])              # one sign per direction
    return to_keyed_vectors(words, u * s ** eig)
