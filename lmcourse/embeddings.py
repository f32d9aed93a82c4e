"""Word vectors: gensim word2vec training, the standard similarity/analogy evaluations, and a bias probe.

Vectors travel as gensim `KeyedVectors` (`kv[word]` -> (vector_size,) array), so gensim's models and
our from-scratch skip-gram (`lmcourse.skipgram`) are evaluated by the same code.
"""

from __future__ import annotations

import reprlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from lmcourse.checks import check_int, check_number, check_positive_ints
from lmcourse.data import load_corpus, shipped_path
from lmcourse.files import atomic_path, cache_dir, sha256_file
from lmcourse.tokenizers import split_sentences, split_words

__all__ = ["corpus_sentences", "train_word2vec", "to_keyed_vectors", "evaluate_embeddings", "word_pairs",
           "pair_similarities", "analogy_questions", "analogy_results", "download_text8", "cosine_similarity",
           "nearest_neighbours", "nearest_to_sum", "analogy", "weat", "one_hot_memory"]


def corpus_sentences(name: str = "wiki", split: str = "all", max_words: int | None = None) -> list[list[str]]:
    """The corpus as lists of lower-cased words (punctuation dropped), sentence by sentence.

    `max_words` keeps whole sentences from the start until about that many words (fast mode).
    """
    if max_words is not None:
        check_int("max_words", max_words, fix="a number of words, or None for the whole corpus")
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
    strings = [s for s in sentences if isinstance(s, str)]
    if strings:
        raise ValueError(f"sentences must be word lists, got a str sentence {strings[0][:40]!r}; split each one, "
                         "e.g. [split_words(s) for s in sentences]")
    out = [list(s) for s in sentences]
    if not any(out):
        raise ValueError("sentences is empty (no words); pass a non-empty list of word lists")
    return out


TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"  # 31,344,016 bytes, unpacked: one line of 100,000,000 bytes
TEXT8_SHA256 = "6e890197040d37d85beb962ae1f041ff1d9a9ca8d20c7d99c85027eebf51dca7"  # of the unpacked text


def download_text8(timeout: float = 60.0) -> "Path":  # noqa: F821
    """Fetch text8 (the first 10^8 bytes of Mahoney's cleaned text of a 2006 English Wikipedia dump: 17M lower-case
    words) into the cache, unpack it, check its sha256 and return the path of the text. Offline: ConnectionError."""
    import io
    import urllib.error
    import urllib.request
    import zipfile

    target = cache_dir() / "downloads" / "text8.txt"
    if target.is_file() and sha256_file(target) == TEXT8_SHA256:
        return target
    check_number("timeout", timeout, 0, low_open=True, fix="seconds to wait for the server")
    try:
        with urllib.request.urlopen(TEXT8_URL, timeout=timeout) as response:
            payload = response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ConnectionError(f"could not download text8 from {TEXT8_URL} ({exc}); this machine seems to be offline. "
                              "The embedded 'wiki' corpus needs no network.") from exc
    try:
        text = zipfile.ZipFile(io.BytesIO(payload)).read("text8")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ConnectionError(f"the download from {TEXT8_URL} is not the text8 zip ({len(payload):,} bytes); "
                              "the transfer broke or the file moved: try again later") from exc
    with atomic_path(target) as tmp:
        tmp.write_bytes(text)
        if sha256_file(tmp) != TEXT8_SHA256:
            raise ValueError("the unpacked text8 has the wrong sha256 (the file upstream changed); nothing was saved")
    return target


def train_word2vec(sentences: Sequence[Sequence[str]], sg: int = 1, vector_size: int = 100, window: int = 5,
                   min_count: int = 5, negative: int = 5, sample: float = 1e-3, epochs: int = 5,
                   seed: int = 0, workers: int = 2, **kwargs):
    """Train gensim's Word2Vec (sg=1 skip-gram, sg=0 CBOW) and return the model (`.wv` holds the vectors).

    The classic settings: 100-dimensional vectors, a window of 5 words each side (gensim samples the
    effective window uniformly in 1..window per word), 5 negative samples, frequent-word subsampling 1e-3.
    """
    from gensim.models import Word2Vec

    check_int("sg", sg, minimum=0, maximum=1, fix="1 for skip-gram, 0 for CBOW")
    check_positive_ints(vector_size=vector_size, window=window, min_count=min_count, epochs=epochs, workers=workers)
    check_int("negative", negative, minimum=0 if kwargs.get("hs") else 1, fix="5 is usual; 0 only with hs=1")
    check_number("sample", sample, 0, fix="1e-3 is usual; 0 turns subsampling off")
    sentences = _check_sentences(sentences)
    return Word2Vec(sentences, sg=sg, vector_size=vector_size, window=window, min_count=min_count,
                    negative=negative, sample=sample, epochs=epochs, seed=seed, workers=workers, **kwargs)


def to_keyed_vectors(words: Sequence[str], vectors) -> "KeyedVectors":  # noqa: F821
    """gensim KeyedVectors from a word list and a (len(words), dim) array or tensor."""
    from gensim.models import KeyedVectors

    vectors = np.asarray(vectors.detach().cpu() if hasattr(vectors, "detach") else vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"vectors must have shape (len(words)={len(words)}, dim), got {vectors.shape}")
    _check_finite(vectors, list(words), "vectors")
    repeated = [w for w, n in Counter(words).items() if n > 1]
    if repeated:
        raise ValueError(f"words must be distinct, got {repeated[:5]} more than once; one vector per word")
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


def _keyed_vectors(kv) -> "KeyedVectors":  # noqa: F821
    """`kv` itself, or a trained model's `.wv`; anything else is refused naming what it is."""
    kv = getattr(kv, "wv", kv)
    if not hasattr(kv, "key_to_index"):
        raise ValueError(f"kv must be gensim KeyedVectors (or a model with .wv), got {type(kv).__name__}; "
                         "wrap a word list and matrix with lmcourse.embeddings.to_keyed_vectors(words, vectors)")
    return kv


def _in(kv, word: str) -> bool:
    return word in kv.key_to_index


def pair_similarities(kv, name: str) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """The pairs of `name` ("wordsim353", "simlex999") whose both words have vectors, with their cosine
    similarities (P,) and human scores (P,): what a bootstrap over pairs resamples."""
    kv = _keyed_vectors(kv)
    found = [(a, b, s) for a, b, s in word_pairs(name) if _in(kv, a) and _in(kv, b)]
    model = np.array([float(cosine_similarity(kv[a], kv[b])) for a, b, _ in found])
    return [(a, b) for a, b, _ in found], model, np.array([s for _, _, s in found])


def _pair_eval(kv, name: str) -> dict:
    from scipy.stats import spearmanr

    n_pairs = len(word_pairs(name))
    found, model, human = pair_similarities(kv, name)
    if len(found) < 3:
        return {"spearman": float("nan"), "pairs": len(found), "oov": 1 - len(found) / n_pairs}
    rho = spearmanr(model, human).correlation
    return {"spearman": float(rho), "pairs": len(found), "oov": 1 - len(found) / n_pairs}


def analogy_results(kv, restrict_vocab: int = 30000, questions=None) -> tuple[list[tuple], np.ndarray]:
    """The analogy questions (default: all Google ones) whose four words are among the `restrict_vocab` most
    frequent words, and whether 3CosAdd answers each one right (Q,) bool: what a bootstrap resamples."""
    kv = _keyed_vectors(kv)
    check_int("restrict_vocab", restrict_vocab, fix="the number of most frequent words to search for answers")
    questions = analogy_questions() if questions is None else list(questions)
    words = kv.index_to_key[:restrict_vocab]
    index = {w: i for i, w in enumerate(words)}
    found = [q for q in questions if all(w in index for w in q[:4])]
    if not found:
        return [], np.zeros(0, dtype=bool)
    unit = _unit(kv.vectors[:len(words)])
    ids = np.array([[index[w] for w in q[:4]] for q in found])  # (Q, 4)
    right = []
    for start in range(0, len(ids), 1024):
        block = ids[start:start + 1024]
        target = unit[block[:, 1]] - unit[block[:, 0]] + unit[block[:, 2]]  # 3CosAdd: b - a + c, (B, dim)
        scores = target @ unit.T  # (B, V)
        rows = np.arange(len(block))
        for col in range(3):
            scores[rows, block[:, col]] = -np.inf  # the question words never count as answers
        right.append(scores.argmax(1) == block[:, 3])
    return found, np.concatenate(right)


def _analogy_eval(kv, restrict_vocab: int) -> dict:
    n_questions = len(analogy_questions())
    found, right = analogy_results(kv, restrict_vocab)
    if not found:
        return {"accuracy": float("nan"), "questions": 0, "oov": 1.0}
    return {"accuracy": float(right.mean()), "questions": len(found), "oov": 1 - len(found) / n_questions}


def evaluate_embeddings(kv, restrict_vocab: int = 30000) -> dict[str, dict]:
    """Word-vector quality on the shipped sets.

    Returns {"ws353": {"spearman", "pairs", "oov"}, "simlex999": {...}, "analogy": {"accuracy", "questions", "oov"}}.
    Spearman correlation between cosine similarity and human scores on the pairs whose both words have vectors;
    analogy accuracy by 3CosAdd over the `restrict_vocab` most frequent words, on questions whose four words
    are all there (as gensim's `evaluate_word_analogies`). `oov` is the share of pairs/questions left out.

    Against gensim's `evaluate_word_pairs` / `evaluate_word_analogies`, which a learner may compare with:
    - `oov` is a fraction in [0, 1]; gensim reports the OOV ratio in percent (0-100).
    - `restrict_vocab` applies to the analogies only; the word pairs use every word that has a vector
      (gensim restricts pairs too, to its default 300,000 most frequent words; ours is 30,000 for analogies).
    - No case folding: the sets are lower-cased and looked up as they are, so a vector for "Paris" does not
      answer "paris" (gensim, case_insensitive=True by default, upper-cases both sides and matches the most
      frequent variant). Lower-case the training text to compare with gensim's numbers.
    """
    kv = _keyed_vectors(kv)
    check_int("restrict_vocab", restrict_vocab, fix="the number of most frequent words to search for answers")
    _check_finite(kv.vectors, kv.index_to_key, "kv")
    return {"ws353": _pair_eval(kv, "wordsim353"), "simlex999": _pair_eval(kv, "simlex999"),
            "analogy": _analogy_eval(kv, restrict_vocab)}


def _check_finite(vectors: np.ndarray, words: Sequence[str], name: str) -> None:
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=-1))
    if len(bad):
        raise ValueError(f"{name} holds {len(bad)} vectors that are not finite (NaN or inf), e.g. for "
                         f"{words[bad[0]]!r}; the training diverged: lower the learning rate and train again")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _vector(name: str, x) -> np.ndarray:
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a vector of numbers (an array, tensor or list), got {reprlib.repr(x)} "
                         f"({exc})") from None


def cosine_similarity(u, v) -> float | np.ndarray:
    """cos(u, v) = u.v / (|u| |v|) along the last axis (0 where a vector is all zeros)."""
    u, v = _vector("u", u), _vector("v", v)
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
    kv = _keyed_vectors(kv)
    check_int("topn", topn)
    _need(kv, [word])
    _check_finite(kv.vectors, kv.index_to_key, "kv")
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
    kv = _keyed_vectors(kv)
    check_int("topn", topn)
    _need(kv, [a, b, c])
    _check_finite(kv.vectors, kv.index_to_key, "kv")
    target = _unit(kv[b]) - _unit(kv[a]) + _unit(kv[c])
    return _ranked(kv, target, exclude={a, b, c}, topn=topn)


def nearest_to_sum(kv, terms: Sequence[tuple[int, str]], topn: int = 10) -> list[tuple[str, float]]:
    """The `topn` words nearest to sum(sign * unit(word)) over terms [(+1 or -1, word), ...], those words excluded."""
    kv = _keyed_vectors(kv)
    check_int("topn", topn)
    _need(kv, [w for _, w in terms])
    _check_finite(kv.vectors, kv.index_to_key, "kv")
    target = sum(sign * _unit(kv[w]) for sign, w in terms)
    return _ranked(kv, target, exclude={w for _, w in terms}, topn=topn)


def weat(kv, targets_x: Sequence[str], targets_y: Sequence[str], attributes_a: Sequence[str],
         attributes_b: Sequence[str], n_permutations: int = 10000, seed: int = 0) -> dict:
    """WEAT (Caliskan et al., 2017): do targets X sit closer to attributes A (and Y to B) than the reverse?

    s(w) = mean cos(w, A) - mean cos(w, B); effect size d = (mean s(X) - mean s(Y)) / std s(X u Y);
    one-sided p-value: the share of random equal-size re-splits of X u Y whose statistic
    sum s(X') - sum s(Y') is at least the observed one. Words missing from the vectors are dropped and
    listed under "missing". Returns {"effect_size", "p_value", "statistic", "n_x", "n_y", "missing"}.
    """
    kv = _keyed_vectors(kv)
    check_int("n_permutations", n_permutations)
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
    check_positive_ints(vocab_size=vocab_size, dim=dim, bytes_per_number=bytes_per_number)
    return {"one_hot_dim": vocab_size, "dense_dim": dim,
            "one_hot_table_mb": vocab_size * vocab_size * bytes_per_number / 1e6,
            "dense_table_mb": vocab_size * dim * bytes_per_number / 1e6}
