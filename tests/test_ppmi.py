import numpy as np
import pytest

from lmcourse.ppmi import cooccurrence_counts, ppmi_matrix, ppmi_svd

SENTENCES = [["a", "b", "c", "a"], ["b", "a", "d"], ["c", "a", "b", "b"]]


def test_counts_are_the_pairs_within_the_window():
    words, counts = cooccurrence_counts(SENTENCES, window=2, min_count=1)
    index = {w: i for i, w in enumerate(words)}
    dense = np.zeros((len(words), len(words)))
    for s in SENTENCES:                                    # the definition, loop by loop
        for i, w in enumerate(s):
            for j, c in enumerate(s):
                if i != j and abs(i - j) <= 2:
                    dense[index[w], index[c]] += 1
    assert words[0] == "a"                                 # most frequent first
    np.testing.assert_array_equal(counts.toarray(), dense)
    np.testing.assert_array_equal(dense, dense.T)


def test_rare_words_are_dropped_before_the_windows():
    words, counts = cooccurrence_counts([["x", "rare", "y"], ["x", "y"]], window=1, min_count=2)
    assert words == ["x", "y"]
    assert counts[0, 1] == 2                              # "x rare y" becomes "x y", as word2vec sees it


def test_ppmi_matches_the_formula():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 5, size=(6, 6)).astype(float)
    for alpha in (1.0, 0.75):
        total = counts.sum()
        p_w = counts.sum(1) / total
        ctx = counts.sum(0) ** alpha
        with np.errstate(divide="ignore"):
            want = np.maximum(np.log(counts / total) - np.log(p_w)[:, None] - np.log(ctx / ctx.sum())[None], 0)
        np.testing.assert_allclose(ppmi_matrix(counts, alpha).toarray(), want, atol=1e-12)


def test_svd_vectors_span_the_top_singular_directions():
    rng = np.random.default_rng(1)
    sentences = [list(rng.choice(list("abcdefghij"), size=6, p=np.arange(1, 11) / 55)) for _ in range(300)]
    kv = ppmi_svd(sentences, dim=6, window=2, min_count=1, eig=1.0)
    words, counts = cooccurrence_counts(sentences, window=2, min_count=1)
    u, s, _ = np.linalg.svd(ppmi_matrix(counts).toarray())
    vectors = np.stack([kv[w] for w in words])             # (V, 6) = U_6 S_6, up to the sign of each column
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=0), s[:6], rtol=1e-6)
    np.testing.assert_allclose(vectors @ vectors.T, (u[:, :6] * s[:6]) @ (u[:, :6] * s[:6]).T, atol=1e-6)   # float32 vectors


def test_ppmi_svd_is_deterministic_and_finds_similar_words():
    # "cat" and "dog" share every context, "car" shares none of theirs
    sentences = [["the", a, "sat", "on", "the", "mat"] for a in ("cat", "dog")] * 20 + \
                [["my", "car", "needs", "new", "tyres"]] * 20
    kv = ppmi_svd(sentences, dim=3, window=2, min_count=1)
    again = ppmi_svd(sentences, dim=3, window=2, min_count=1)
    np.testing.assert_array_equal(kv.vectors, again.vectors)
    assert kv.similarity("cat", "dog") > 0.99 > kv.similarity("cat", "car")


@pytest.mark.parametrize("kwargs, match", [
    ({"dim": 50}, "dim=50 must be below"),
    ({"alpha": 0}, "alpha"),
    ({"eig": 2}, "eig"),
    ({"min_count": 100}, "no word occurs"),
])
def test_bad_input_is_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ppmi_svd(SENTENCES, **{"min_count": 1, "dim": 2, **kwargs})
