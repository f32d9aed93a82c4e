"""Word vectors: gensim word2vec training, the standard similarity/analogy evaluations, and a bias probe.

Vectors travel as gensim `KeyedVectors` (`kv[word]` -> (vector_size,) array), so gensim's models and
our from-scratch skip-gram (`lmcourse.skipgram`) are evaluated by the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from lmcourse.core import check_positive_ints
from lmcourse.data import load_corpus, shipped_path
from lmcourse.tokenizers import split_sentences, split_words

__all__ = ["corpus_sentences", "train_word2vec", "to_keyed_vectors", "evaluate_embeddings", "word_pairs",
           "analogy_questions", "cosine_similarity", "nearest_neighbours", "analogy", "weat", "one_hot_memory"]


def corpus_sentences(name: str = "wiki", split: str = "all", max_words: int | None = None) -> list[list[str]]:
    """The corpus as lists of lower-cased words (punctuation dropped), sentence by sentence.

    `max_words` keeps whole sentences from the start until about that many words (fast mode).
    """
    if max_words is not None and max_words < 1:
        raise ValueError(f"max_words must be a positive number of words or None, got {max_words}")
    sentences, total = [], 0
    for s in split_sentences(load_corpus(name, split)):
        words = [w for w in split_words(s) if any(c.isalnum() for c in w)]
        if words:
            sentences.append(words)
            total += len(words)
            if max_words is not None and total >= max_words:
                break
    return sentences


def _check_sentences(sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    if isinstance(sentences, str):
        raise ValueError("sentences must be a list of word lists, got a str; split it first, e.g. "
                         "[split_words(s) for s in split_sentences(text)]")
    out = [list(s) for s in sentences]
    if not any(out):
        raise ValueError("sentences is empty (no words); pass a non-empty list of word lists")
    return out


def train_word2vec(sentences: Sequence[Sequence[str]], sg: int = 1, vector_size: int = 100, window: int = 5,
                   min_count: int = 5, negative: int = 5, sample: float = 1e-3, epochs: int = 5,
                   seed: int = 0, workers: int = 2, **kwargs):
    """Train gensim's Word2Vec (sg=1 skip-gram, sg=0 CBOW) and return the model (`.wv` holds the vectors).

    The classic settings: 100-dimensional vectors, a window of 5 words each side (gensim samples the
    effective window uniformly in 1..window per word), 5 negative samples, frequent-word subsampling 1e-3.
    """
    from gensim.models import Word2Vec

    if sg not in (0, 1):
        raise ValueError(f"sg must be 1 (skip-gram) or 0 (CBOW), got {sg!r}")
    check_positive_ints(vector_size=vector_size, window=window, min_count=min_count, epochs=epochs, workers=workers)
    sentences = _check_sentences(sentences)
    return Word2Vec(sentences, sg=sg, vector_size=vector_size, window=window, min_count=min_count,
                    negative=negative, sample=sample, epochs=epochs, seed=seed, workers=workers, **kwargs)


def to_keyed_vectors(words: Sequence[str], vectors) -> "KeyedVectors":  # noqa: F821
    """gensim KeyedVectors from a word list and a (len(words), dim) array or tensor."""
    from gensim.models import KeyedVectors

    vectors = np.asarray(vectors.detach().cpu() if hasattr(vectors, "detach") else vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"vectors must have shape (len(words)={len(words)}, dim), got {vectors.shape}")
    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors(list(words), vectors)
    return kv


def word_pairs(name: str) -> list[tuple[str, str, float]]:
    """(word1, word2, human score) from a shipped set: "wordsim353" or "simlex999" (lower-cased)."""
    if name not in ("wordsim353", "simlex999"):
        raise ValueError(f"name={name!r} is not a word-pair set; choose 'wordsim353' or 'simlex999'")
    pairs = []
    for line in shipped_path(name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        a, b, score = line.split("\t")[:3]
        pairs.append((a.lower(), b.lower(), float(score)))
    return pairs


def analogy_questions() -> list[tuple[str, str, str, str, str]]:
    """Google analogy questions (a, b, c, expected d, section): a is to b as c is to d, lower-cased."""
    section, out = "", []
    for line in shipped_path("google_analogies").read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            section = line[1:].strip()
        elif line.strip():
            a, b, c, d = line.lower().split()
            out.append((a, b, c, d, section))
    return out


def _in(kv, word: str) -> bool:
    return word in kv.key_to_index


def _pair_eval(kv, name: str) -> dict:
    from scipy.stats import spearmanr

    pairs = word_pairs(name)
    found = [(a, b, s) for a, b, s in pairs if _in(kv, a) and _in(kv, b)]
    if len(found) < 3:
        return {"spearman": float("nan"), "pairs": len(found), "oov": 1 - len(found) / len(pairs)}
    model = [float(cosine_similarity(kv[a], kv[b])) for a, b, _ in found]
    rho = spearmanr(model, [s for _, _, s in found]).correlation
    return {"spearman": float(rho), "pairs": len(found), "oov": 1 - len(found) / len(pairs)}


def _analogy_eval(kv, restrict_vocab: int) -> dict:
    questions = analogy_questions()
    words = kv.index_to_key[:restrict_vocab]
    index = {w: i for i, w in enumerate(words)}
    found = [q for q in questions if all(w in index for w in q[:4])]
    if not found:
        return {"accuracy": float("nan"), "questions": 0, "oov": 1.0}
    unit = _unit(kv.vectors[:len(words)])
    ids = np.array([[index[w] for w in q[:4]] for q in found])  # (Q, 4)
    correct = 0
    for start in range(0, len(ids), 1024):
        block = ids[start:start + 1024]
        target = unit[block[:, 1]] - unit[block[:, 0]] + unit[block[:, 2]]  # 3CosAdd: b - a + c, (B, dim)
        scores = target @ unit.T  # (B, V)
        rows = np.arange(len(block))
        for col in range(3):
            scores[rows, block[:, col]] = -np.inf  # the question words never count as answers
        correct += int((scores.argmax(1) == block[:, 3]).sum())
    return {"accuracy": correct / len(found), "questions": len(found), "oov": 1 - len(found) / len(questions)}


def evaluate_embeddings(kv, restrict_vocab: int = 30000) -> dict[str, dict]:
    """Word-vector quality on the shipped sets.

    Returns {"ws353": {"spearman", "pairs", "oov"}, "simlex999": {...}, "analogy": {"accuracy", "questions", "oov"}}.
    Spearman correlation between cosine similarity and human scores on the pairs whose both words have vectors;
    analogy accuracy by 3CosAdd over the `restrict_vocab` most frequent words, on questions whose four words
    are all there (as gensim's `evaluate_word_analogies`). `oov` is the share of pairs/questions left out.
    """
    if hasattr(kv, "wv"):
        kv = kv.wv
    if not hasattr(kv, "key_to_index"):
        raise ValueError(f"kv must be gensim KeyedVectors (or a model with .wv), got {type(kv).__name__}; "
                         "wrap a word list and matrix with lmcourse.embeddings.to_keyed_vectors(words, vectors)")
    if restrict_vocab < 1:
        raise ValueError(f"restrict_vocab must be a positive number of words, got {restrict_vocab}")
    return {"ws353": _pair_eval(kv, "wordsim353"), "simlex999": _pair_eval(kv, "simlex999"),
            "analogy": _analogy_eval(kv, restrict_vocab)}


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_similarity(u, v) -> float | np.ndarray:
    """cos(u, v) = u.v / (|u| |v|) along the last axis (0 where a vector is all zeros)."""
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    if u.shape[-1] != v.shape[-1]:
        raise ValueError(f"u and v must have the same last dimension, got {u.shape} and {v.shape}")
    return (_unit(u) * _unit(v)).sum(-1)


def _need(kv, words: Iterable[str]) -> None:
    missing = [w for w in words if not _in(kv, w)]
    if missing:
        raise ValueError(f"word(s) {missing} are not in the vectors' vocabulary ({len(kv.key_to_index)} words); "
                         "check the spelling (vectors are lower-cased) or lower min_count")


def nearest_neighbours(kv, word: str, topn: int = 10) -> list[tuple[str, float]]:
    """The `topn` words with the highest cosine similarity to `word` (itself excluded), best first."""
    if hasattr(kv, "wv"):
        kv = kv.wv
    if topn < 1:
        raise ValueError(f"topn must be a positive integer, got {topn}")
    _need(kv, [word])
    return _ranked(kv, _unit(kv[word]), exclude={word}, topn=topn)


def _ranked(kv, target: np.ndarray, exclude: set[str], topn: int) -> list[tuple[str, float]]:
    sims = _unit(kv.vectors) @ _unit(target)  # (V,)
    order = np.argsort(-sims, kind="stable")
    out = []
    for i in order:
        w = kv.index_to_key[i]
        if w not in exclude:
            out.append((w, float(sims[i])))
            if len(out) == topn:
                break
    return out


def analogy(kv, a: str, b: str, c: str, topn: int = 5) -> list[tuple[str, float]]:
    """a is to b as c is to ?: the words nearest to unit(b) - unit(a) + unit(c) (3CosAdd), a, b, c excluded."""
    if hasattr(kv, "wv"):
        kv = kv.wv
    if topn < 1:
        raise ValueError(f"topn must be a positive integer, got {topn}")
    _need(kv, [a, b, c])
    target = _unit(kv[b]) - _unit(kv[a]) + _unit(kv[c])
    return _ranked(kv, target, exclude={a, b, c}, topn=topn)


def weat(kv, targets_x: Sequence[str], targets_y: Sequence[str], attributes_a: Sequence[str],
         attributes_b: Sequence[str], n_permutations: int = 10000, seed: int = 0) -> dict:
    """WEAT (Caliskan et al., 2017): do targets X sit closer to attributes A (and Y to B) than the reverse?

    s(w) = mean cos(w, A) - mean cos(w, B); effect size d = (mean s(X) - mean s(Y)) / std s(X u Y);
    one-sided p-value: the share of random equal-size re-splits of X u Y whose statistic
    sum s(X') - sum s(Y') is at least the observed one. Words missing from the vectors are dropped and
    listed under "missing". Returns {"effect_size", "p_value", "statistic", "n_x", "n_y", "missing"}.
    """
    if hasattr(kv, "wv"):
        kv = kv.wv
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer, got {n_permutations}")
    groups, missing = {}, []
    for name, words in (("targets_x", targets_x), ("targets_y", targets_y),
                        ("attributes_a", attributes_a), ("attributes_b", attributes_b)):
        present = [w for w in words if _in(kv, w)]
        missing += [w for w in words if not _in(kv, w)]
        if len(present) < (2 if name.startswith("targets") else 1):
            raise ValueError(f"{name} has too few words with vectors ({present} of {list(words)}); "
                             "use words in the vocabulary (targets need at least 2)")
        groups[name] = _unit(np.stack([kv[w] for w in present]))
    x, y = groups["targets_x"], groups["targets_y"]
    targets = np.concatenate([x, y])  # (nx + ny, dim)
    s = (targets @ groups["attributes_a"].T).mean(1) - (targets @ groups["attributes_b"].T).mean(1)
    nx = len(x)
    observed = s[:nx].sum() - s[nx:].sum()
    rng = np.random.default_rng(seed)
    total = s.sum()
    perm = np.array([rng.permutation(len(s))[:nx] for _ in range(n_permutations)])  # (P, nx)
    stats = 2 * s[perm].sum(1) - total  # sum s(X') - sum s(Y')
    p = (1 + np.sum(stats >= observed - 1e-12)) / (1 + n_permutations)
    d = (s[:nx].mean() - s[nx:].mean()) / s.std(ddof=1)
    return {"effect_size": float(d), "p_value": float(p), "statistic": float(observed),
            "n_x": nx, "n_y": len(y), "missing": missing}


def one_hot_memory(vocab_size: int, dim: int = 100, bytes_per_number: int = 4) -> dict:
    """Size of one word vector and of the whole table, one-hot (vocab_size wide) vs dense (dim wide)."""
    if vocab_size < 1 or dim < 1:
        raise ValueError(f"vocab_size and dim must be positive, got {vocab_size} and {dim}")
    return {"one_hot_dim": vocab_size, "dense_dim": dim,
            "one_hot_table_mb": vocab_size * vocab_size * bytes_per_number / 1e6,
            "dense_table_mb": vocab_size * dim * bytes_per_number / 1e6}
