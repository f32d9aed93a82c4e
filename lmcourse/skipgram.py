"""Skip-gram with negative sampling (word2vec SGNS) from scratch in torch.

For every centre word c and every context word o within a random window around it, push the
centre's input vector v_c towards the context's output vector u_o and away from K words drawn from
the unigram distribution raised to 0.75:

    loss(c, o) = -log sigma(u_o . v_c) - sum_k log sigma(-u_k . v_c)

Frequent words are randomly dropped first (subsampling, as gensim's `sample`), and the learning rate
falls linearly from `alpha` to `min_alpha`, as in word2vec. The update is word2vec's own SGD step on
mini-batches of pairs (`sgd_step`, tested equal to autograd on `SkipGramNS.loss`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from lmcourse.checks import check_int, check_number, check_positive_ints, check_token_ids
from lmcourse.progress import progress_bar

__all__ = ["build_vocab", "keep_probabilities", "negative_table", "skipgram_pairs", "SkipGramNS",
           "sgd_step", "train_skipgram", "SkipGramResult"]


def build_vocab(sentences: Sequence[Sequence[str]], min_count: int = 5) -> tuple[list[str], np.ndarray]:
    """Words seen at least `min_count` times, most frequent first (ties alphabetical), and their counts."""
    from lmcourse.embeddings import _check_sentences

    check_int("min_count", min_count)
    counts = Counter(w for s in _check_sentences(sentences) for w in s)
    kept = sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
    if not kept:
        raise ValueError(f"no word occurs min_count={min_count} times; lower min_count or give more text")
    return [w for w, _ in kept], np.array([c for _, c in kept], dtype=np.int64)


def _check_counts(counts) -> np.ndarray:
    """`counts` (V,) as floats, after checking that each is a finite count >= 0."""
    counts = np.asarray(counts, dtype=np.float64)
    bad = counts[~np.isfinite(counts) | (counts < 0)]
    if len(bad):
        raise ValueError(f"counts must be word counts >= 0, got {bad[0]:g}; pass the counts build_vocab returns")
    return counts


def keep_probabilities(counts: np.ndarray, sample: float = 1e-3) -> np.ndarray:
    """Probability of keeping each occurrence of a word (word2vec/gensim formula; 1 for rare words).

    With threshold t = sample * total: keep(w) = (sqrt(count/t) + 1) * t / count, capped at 1.
    sample=0 keeps everything.
    """
    counts = _check_counts(counts)
    check_number("sample", sample, 0, fix="0 turns subsampling off")
    if sample == 0:
        return np.ones_like(counts)
    t = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / t) + 1) * t / counts)


def negative_table(counts: np.ndarray, power: float = 0.75, size: int = 1_000_000) -> torch.Tensor:
    """A table of word ids in which word w fills a share count(w)^power / sum count^power (draw uniformly)."""
    check_number("power", power, fix="0.75 is word2vec's")
    check_int("size", size)
    counts = _check_counts(counts)
    if not counts.sum() > 0:
        raise ValueError(f"counts is empty or all 0 ({len(counts)} counts); the table needs at least one word "
                         "seen at least once: pass build_vocab's counts")
    p = counts ** power
    cdf = np.cumsum(p / p.sum())
    return torch.from_numpy(np.searchsorted(cdf, (np.arange(size) + 0.5) / size).clip(0, len(p) - 1))


def skipgram_pairs(ids: np.ndarray, sentence_ids: np.ndarray, window: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(centre, context) id pairs from a flat token stream.

    ids, sentence_ids: (N,) token ids and the sentence each token belongs to. Each centre draws its
    window b uniformly in 1..window (nearer words are used more often) and pairs with every word at
    distance <= b in the same sentence. Returns two (P,) arrays.
    """
    check_int("window", window)
    if np.shape(sentence_ids) != np.shape(ids):
        raise ValueError(f"sentence_ids must have the shape of ids {np.shape(ids)}, one sentence index per token, "
                         f"got {np.shape(sentence_ids)}")
    b = rng.integers(1, window + 1, size=len(ids))  # (N,) reduced window per centre
    centres, contexts = [], []
    for offset in range(1, window + 1):
        for sign in (1, -1):
            i = np.arange(max(0, -sign * offset), len(ids) - max(0, sign * offset))
            j = i + sign * offset
            ok = (sentence_ids[i] == sentence_ids[j]) & (b[i] >= offset)
            centres.append(ids[i[ok]])
            contexts.append(ids[j[ok]])
    return np.concatenate(centres), np.concatenate(contexts)


class SkipGramNS(torch.nn.Module):
    """Input vectors `emb_in` (V, dim), the word vectors we keep, and output vectors `emb_out` (V, dim).

    Initialised as word2vec: inputs uniform in +-0.5/dim, outputs zero.
    """

    def __init__(self, vocab_size: int, dim: int, seed: int = 0):
        super().__init__()
        check_positive_ints(vocab_size=vocab_size, dim=dim)
        check_int("seed", seed, minimum=0)
        g = torch.Generator().manual_seed(seed)
        self.emb_in = torch.nn.Parameter((torch.rand(vocab_size, dim, generator=g) - 0.5) / dim)
        self.emb_out = torch.nn.Parameter(torch.zeros(vocab_size, dim))

    def loss(self, centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Summed SGNS loss. centre, context: (B,); negatives: (B, K). Returns a scalar."""
        for name, ids in (("centre", centre), ("context", context), ("negatives", negatives)):
            check_token_ids(name, ids, len(self.emb_in))
        _check_batch(centre, context, negatives)
        v = self.emb_in[centre]  # (B, dim)
        pos = (self.emb_out[context] * v).sum(-1)  # (B,)
        neg = torch.einsum("bkd,bd->bk", self.emb_out[negatives], v)  # (B, K)
        return -(torch.nn.functional.logsigmoid(pos).sum() + torch.nn.functional.logsigmoid(-neg).sum())


def _check_batch(centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> None:
    if centre.ndim != 1 or context.shape != centre.shape or negatives.ndim != 2 or len(negatives) != len(centre):
        raise ValueError(f"centre and context must have shape (B,) and negatives (B, K), got centre "
                         f"{tuple(centre.shape)}, context {tuple(context.shape)}, negatives {tuple(negatives.shape)}")


@torch.no_grad()
def sgd_step(model: SkipGramNS, centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor,
             lr: float) -> float:
    """One word2vec SGD step on a batch of pairs (same as autograd SGD on `model.loss`); returns the loss."""
    check_number("lr", lr, 0, low_open=True)
    _check_batch(centre, context, negatives)
    w_in, w_out = model.emb_in.data, model.emb_out.data
    v = w_in[centre]  # (B, dim)
    u_pos, u_neg = w_out[context], w_out[negatives]  # (B, dim), (B, K, dim)
    s_pos = (u_pos * v).sum(-1)  # (B,)
    s_neg = torch.einsum("bkd,bd->bk", u_neg, v)  # (B, K)
    g_pos = torch.sigmoid(-s_pos) * lr  # -dloss/ds_pos * lr, (B,)
    g_neg = -torch.sigmoid(s_neg) * lr  # (B, K)
    grad_v = g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)  # (B, dim)
    w_out.index_add_(0, context, g_pos[:, None] * v)
    w_out.index_add_(0, negatives.reshape(-1), (g_neg[:, :, None] * v[:, None, :]).reshape(-1, v.shape[1]))
    w_in.index_add_(0, centre, grad_v)
    loss = -(torch.nn.functional.logsigmoid(s_pos).sum() + torch.nn.functional.logsigmoid(-s_neg).sum())
    return float(loss)


@dataclass
class SkipGramResult:
    """What `train_skipgram` returns: the vectors (gensim KeyedVectors), the model, and how training went."""

    kv: object
    model: SkipGramNS
    words: list[str]
    losses: list[float] = field(default_factory=list)  # mean loss per pair, per epoch
    seconds: float = 0.0  # wall time from vocabulary building to the end of the last epoch (callbacks excluded)
    words_per_second: float = 0.0  # corpus words (all, as gensim counts them) x epochs / seconds


def train_skipgram(sentences: Sequence[Sequence[str]], vector_size: int = 100, window: int = 5,
                   negative: int = 5, min_count: int = 5, sample: float = 1e-3, epochs: int = 5,
                   alpha: float = 0.025, min_alpha: float = 1e-4, batch_size: int = 1024, seed: int = 0,
                   device: torch.device | str | None = None, progress: bool = False,
                   callback: Callable[[int, object], None] | None = None,
                   cpu_threads: int | None = 1) -> SkipGramResult:
    """Train SGNS on word lists with gensim's defaults; the vectors are `result.kv` (input vectors).

    `callback(epoch, kv)` runs after every epoch with the current vectors (e.g. to plot quality vs epochs;
    its time is not counted in `seconds`). On the CPU the small per-batch operations run fastest on one
    thread (`cpu_threads`, restored afterwards; None leaves torch's setting alone).
    """
    from lmcourse.embeddings import _check_sentences

    check_positive_ints(vector_size=vector_size, window=window, negative=negative, epochs=epochs,
                        batch_size=batch_size, min_count=min_count)
    check_number("alpha", alpha, 0, low_open=True, fix="0.025 is word2vec's starting learning rate")
    check_number("min_alpha", min_alpha, 0, alpha, low_open=True, fix=f"a final learning rate in (0, alpha={alpha}]")
    check_number("sample", sample, 0, fix="0 turns subsampling off")
    sentences = _check_sentences(sentences)
    device = torch.device(device) if device is not None else torch.device("cpu")
    threads = torch.get_num_threads()
    if device.type == "cpu" and cpu_threads is not None:
        torch.set_num_threads(cpu_threads)
    try:
        return _train(sentences, vector_size, window, negative, min_count, sample, epochs, alpha, min_alpha,
                      batch_size, seed, device, progress, callback)
    finally:
        torch.set_num_threads(threads)


def _train(sentences, vector_size, window, negative, min_count, sample, epochs, alpha, min_alpha, batch_size,
           seed, device, progress, callback) -> SkipGramResult:
    from lmcourse.embeddings import to_keyed_vectors

    start = time.perf_counter()  # vocabulary and pairs count, as in gensim's wall time
    words, counts = build_vocab(sentences, min_count)
    index = {w: i for i, w in enumerate(words)}
    flat, sent = [], []
    for k, s in enumerate(sentences):
        ids = [index[w] for w in s if w in index]
        flat += ids
        sent += [k] * len(ids)
    flat, sent = np.array(flat, dtype=np.int64), np.array(sent, dtype=np.int64)
    keep = keep_probabilities(counts, sample)[flat]  # (N,)
    table = negative_table(counts).to(device)
    model = SkipGramNS(len(words), vector_size, seed=seed).to(device)
    rng = np.random.default_rng(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    result = SkipGramResult(kv=None, model=model, words=words)
    total_words = sum(len(s) for s in sentences) * epochs  # as gensim's corpus_total_words
    bar = progress_bar(total=epochs, desc="skip-gram epochs") if progress else None
    for epoch in range(epochs):
        kept = rng.random(len(flat)) < keep  # subsampling, fresh every epoch
        centre, context = skipgram_pairs(flat[kept], sent[kept], window, rng)
        order = rng.permutation(len(centre))
        centre = torch.from_numpy(centre[order]).to(device)
        context = torch.from_numpy(context[order]).to(device)
        total, n = 0.0, len(centre)
        for lo in range(0, n, batch_size):
            progress_share = (epoch + lo / max(n, 1)) / epochs
            lr = alpha - (alpha - min_alpha) * progress_share
            c, o = centre[lo:lo + batch_size], context[lo:lo + batch_size]
            neg = table[torch.randint(len(table), (len(c), negative), generator=gen, device=device)]  # (B, K)
            total += sgd_step(model, c, o, neg, lr)
        result.losses.append(total / max(n, 1))
        if callback is not None:
            paused = time.perf_counter()
            callback(epoch + 1, to_keyed_vectors(words, model.emb_in.data))
            start += time.perf_counter() - paused
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{result.losses[-1]:.3f}")
    if bar is not None:
        bar.close()
    result.seconds = time.perf_counter() - start
    result.words_per_second = total_words / result.seconds
    result.kv = to_keyed_vectors(words, model.emb_in.data)
    return result
