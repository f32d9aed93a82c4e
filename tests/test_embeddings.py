import numpy as np
import pytest
from scipy.stats import spearmanr

from lmcourse.embeddings import (
    analogy,
    analogy_questions,
    corpus_sentences,
    cosine_similarity,
    evaluate_embeddings,
    nearest_neighbours,
    nearest_to_sum,
    one_hot_memory,
    to_keyed_vectors,
    train_word2vec,
    weat,
    word_pairs,
)

TOY = [["the", "king", "rules", "the", "land"], ["the", "queen", "rules", "the", "land"],
       ["a", "man", "walks"], ["a", "woman", "walks"]] * 20


@pytest.fixture(scope="module")
def random_kv():
    """Random vectors for the words of the shipped sets (plus extras), so evaluation can be checked exactly."""
    words = sorted({w for a, b, _ in word_pairs("wordsim353") for w in (a, b)}
                   | {w for q in analogy_questions()[:600] for w in q[:4]})
    rng = np.random.default_rng(0)
    return to_keyed_vectors(words, rng.normal(size=(len(words), 20)))


def test_corpus_sentences_are_lowercase_word_lists_without_punctuation():
    sentences = corpus_sentences("wiki", max_words=2000)
    assert 2000 <= sum(map(len, sentences)) < 3000
    assert all(w == w.lower() and any(c.isalnum() for c in w) for s in sentences for w in s)


def test_corpus_sentences_rejects_bad_max_words():
    with pytest.raises(ValueError, match="max_words"):
        corpus_sentences("wiki", max_words=0)


def test_train_word2vec_returns_gensim_model_with_requested_size():
    model = train_word2vec(TOY, sg=1, vector_size=16, window=2, min_count=1, epochs=2, workers=1)
    assert model.wv.vector_size == 16 and "king" in model.wv and model.sg == 1
    assert train_word2vec(TOY, sg=0, vector_size=8, min_count=1, epochs=1, workers=1).sg == 0


@pytest.mark.parametrize("kwargs, word", [({"sg": 2}, "sg"), ({"window": 0}, "window"),
                                          ({"vector_size": -1}, "vector_size")])
def test_train_word2vec_rejects_bad_settings(kwargs, word):
    with pytest.raises(ValueError, match=word):
        train_word2vec(TOY, **kwargs)


@pytest.mark.parametrize("sentences", [[], [[]], "some text"])
def test_train_word2vec_rejects_empty_or_unsplit_corpus(sentences):
    with pytest.raises(ValueError, match="sentences"):
        train_word2vec(sentences)


def test_cosine_similarity_matches_gensim_and_handles_batches():
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    kv = to_keyed_vectors(["a", "b"], np.stack([u[0], v[0]]))
    assert cosine_similarity(u[0], v[0]) == pytest.approx(kv.similarity("a", "b"), abs=1e-6)
    np.testing.assert_allclose(cosine_similarity(u, v), [cosine_similarity(a, b) for a, b in zip(u, v)])
    with pytest.raises(ValueError, match="same last dimension"):
        cosine_similarity(u[0], v[0, :3])


def test_pair_scores_match_gensim_evaluate_word_pairs(random_kv):
    from lmcourse.data import shipped_path
    ours = evaluate_embeddings(random_kv)
    pearson, spearman, oov = random_kv.evaluate_word_pairs(str(shipped_path("wordsim353")))
    assert ours["ws353"]["spearman"] == pytest.approx(spearman.correlation, abs=1e-6)
    assert ours["ws353"]["oov"] == pytest.approx(oov / 100, abs=1e-9)
    assert ours["ws353"]["oov"] == 0.0 and ours["simlex999"]["oov"] > 0


def test_analogy_accuracy_matches_gensim_evaluate_word_analogies(random_kv):
    from lmcourse.data import shipped_path
    kv = to_keyed_vectors(random_kv.index_to_key, random_kv.vectors)
    # plant a structure so some questions are answered right: d = b - a + c exactly for the first 300
    for a, b, c, d, _ in analogy_questions()[:300]:
        if len({a, b, c, d}) == 4 and d not in (a, b, c):
            kv.vectors[kv.key_to_index[d]] = kv[b] - kv[a] + kv[c]
    kv.fill_norms(force=True)
    ours = evaluate_embeddings(kv, restrict_vocab=100000)["analogy"]
    score, sections = kv.evaluate_word_analogies(str(shipped_path("google_analogies")), restrict_vocab=100000)
    total = sections[-1]
    assert ours["questions"] == len(total["correct"]) + len(total["incorrect"])
    assert ours["accuracy"] == pytest.approx(score, abs=1e-9)
    assert 0 < ours["accuracy"] < 1 and 0 < ours["oov"] < 1


def test_evaluate_embeddings_accepts_a_model_and_rejects_other_objects():
    model = train_word2vec(TOY, vector_size=8, min_count=1, epochs=1, workers=1)
    result = evaluate_embeddings(model)
    assert set(result) == {"ws353", "simlex999", "analogy"}
    assert result["analogy"]["questions"] < 10 and result["analogy"]["oov"] > 0.99
    with pytest.raises(ValueError, match="KeyedVectors"):
        evaluate_embeddings({"king": [1.0]})


def test_nearest_neighbours_and_analogy_match_gensim_most_similar(random_kv):
    assert [w for w, _ in nearest_neighbours(random_kv, "king", topn=5)] == \
        [w for w, _ in random_kv.most_similar("king", topn=5)]
    ours = analogy(random_kv, "man", "king", "woman", topn=5)
    ref = random_kv.most_similar(positive=["king", "woman"], negative=["man"], topn=5)
    assert [w for w, _ in ours] == [w for w, _ in ref]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in ref], atol=1e-5)


def test_lookups_name_missing_words_and_bad_topn(random_kv):
    with pytest.raises(ValueError, match="zzzqx"):
        nearest_neighbours(random_kv, "zzzqx")
    with pytest.raises(ValueError, match="zzzqx"):
        analogy(random_kv, "man", "king", "zzzqx")
    with pytest.raises(ValueError, match="topn"):
        nearest_neighbours(random_kv, "king", topn=0)


def _weat_reference(kv, X, Y, A, B):
    def s(w):
        return np.mean([kv.similarity(w, a) for a in A]) - np.mean([kv.similarity(w, b) for b in B])
    sx, sy = [s(w) for w in X], [s(w) for w in Y]
    return (np.mean(sx) - np.mean(sy)) / np.std(sx + sy, ddof=1), sum(sx) - sum(sy)


def test_weat_effect_size_matches_the_formula_and_detects_a_planted_association():
    rng = np.random.default_rng(3)
    words = [f"x{i}" for i in range(8)] + [f"y{i}" for i in range(8)] + [f"a{i}" for i in range(4)] + \
        [f"b{i}" for i in range(4)]
    vectors = rng.normal(size=(len(words), 30))
    direction = rng.normal(size=30) * 3
    vectors[:8] += direction   # X leans towards A
    vectors[16:20] += direction
    kv = to_keyed_vectors(words, vectors)
    X, Y, A, B = words[:8], words[8:16], words[16:20], words[20:24]
    result = weat(kv, X, Y, A, B, n_permutations=2000)
    d, stat = _weat_reference(kv, X, Y, A, B)
    assert result["effect_size"] == pytest.approx(d, abs=1e-6)
    assert result["statistic"] == pytest.approx(stat, abs=1e-6)
    assert result["effect_size"] > 1 and result["p_value"] < 0.01
    swapped = weat(kv, Y, X, A, B, n_permutations=2000)
    assert swapped["effect_size"] == pytest.approx(-d, abs=1e-6) and swapped["p_value"] > 0.9


def test_weat_on_unrelated_random_words_is_not_significant_and_lists_missing():
    rng = np.random.default_rng(4)
    words = [f"w{i}" for i in range(24)]
    kv = to_keyed_vectors(words, rng.normal(size=(24, 30)))
    result = weat(kv, words[:8] + ["nope"], words[8:16], words[16:20], words[20:24], n_permutations=2000)
    assert result["missing"] == ["nope"] and 0.01 < result["p_value"] < 0.99
    with pytest.raises(ValueError, match="targets_x"):
        weat(kv, ["nope", "w1"], words[8:16], words[16:20], words[20:24])
    with pytest.raises(ValueError, match="n_permutations"):
        weat(kv, words[:8], words[8:16], words[16:20], words[20:24], n_permutations=0)


def test_one_hot_memory_counts_bytes():
    m = one_hot_memory(10000, dim=100)
    assert m["one_hot_table_mb"] == 400.0 and m["dense_table_mb"] == 4.0
    with pytest.raises(ValueError, match="vocab_size"):
        one_hot_memory(0)


def test_to_keyed_vectors_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        to_keyed_vectors(["a", "b"], np.zeros((3, 4)))


def test_word_pairs_reads_the_shipped_sets():
    ws = word_pairs("wordsim353")
    assert len(ws) == 353 and ws[1] == ("tiger", "cat", 7.35)
    assert len(word_pairs("simlex999")) == 999
    assert len(analogy_questions()) == 19544
    with pytest.raises(ValueError, match="simlex999"):
        word_pairs("men")
    assert spearmanr([1, 2, 3], [1, 2, 3]).correlation == pytest.approx(1.0)


def test_pca_2d_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    from lmcourse.viz.embeddings import pca_2d
    x = np.random.default_rng(5).normal(size=(30, 8))
    ours, ref = pca_2d(x), PCA(2).fit_transform(x)
    for k in range(2):
        assert np.allclose(ours[:, k], ref[:, k], atol=1e-8) or np.allclose(ours[:, k], -ref[:, k], atol=1e-8)
    with pytest.raises(ValueError, match="vectors"):
        pca_2d(np.zeros((1, 3)))


def test_parse_query_reads_words_and_signs():
    from lmcourse.viz.embeddings import parse_query
    assert parse_query("King - man + woman") == [(1, "king"), (-1, "man"), (1, "woman")]
    assert parse_query("self-governed") == [(1, "self-governed")]
    for bad in ("", "king man"):
        with pytest.raises(ValueError, match="query"):
            parse_query(bad)


def test_answer_query_is_neighbours_or_3cosadd(random_kv):
    from lmcourse.viz.embeddings import answer_query
    assert answer_query(random_kv, "king", topn=3) == nearest_neighbours(random_kv, "king", topn=3)
    assert answer_query(random_kv, "king - man + woman", topn=3) == analogy(random_kv, "man", "king", "woman", 3)
    assert answer_query(random_kv, "woman + king - man", topn=3) == analogy(random_kv, "man", "woman", "king", 3)
    with pytest.raises(ValueError, match="zzzqx"):
        answer_query(random_kv, "king + zzzqx")
    # another combination: the words nearest to unit(king) + unit(woman), computed by hand
    target = sum(v / np.linalg.norm(v) for v in (random_kv["king"].astype(np.float64), random_kv["woman"].astype(np.float64)))
    sims = {w: float(target @ random_kv[w] / np.linalg.norm(target) / np.linalg.norm(random_kv[w]))
            for w in random_kv.index_to_key if w not in ("king", "woman")}
    best = sorted(sims, key=sims.get, reverse=True)[:3]
    got = answer_query(random_kv, "king + woman", topn=3)
    assert [w for w, _ in got] == best and got == nearest_to_sum(random_kv, [(1, "king"), (1, "woman")], topn=3)
    assert [s for _, s in got] == pytest.approx([sims[w] for w in best], abs=1e-6)  # float32 vectors


def test_plot_word_groups_and_explorer_build():
    import matplotlib
    matplotlib.use("Agg")
    from lmcourse.viz.embeddings import explore_embeddings, plot_word_groups
    kv = to_keyed_vectors(["a", "b", "c", "d"], np.random.default_rng(6).normal(size=(4, 5)))
    fig = plot_word_groups(kv, {"first": ["a", "b"], "second": ["c", "d", "missing"]})
    assert len(fig.axes[0].collections) == 2
    box = explore_embeddings(kv, initial="a")
    assert box.children[0].value == "a"


def test_pair_similarities_and_analogy_results_give_the_evaluation_item_by_item(random_kv):
    from scipy.stats import spearmanr

    from lmcourse.embeddings import analogy_results, pair_similarities
    pairs, model, human = pair_similarities(random_kv, "wordsim353")
    assert len(pairs) == len(model) == len(human) == evaluate_embeddings(random_kv)["ws353"]["pairs"]
    assert spearmanr(model, human).statistic == pytest.approx(evaluate_embeddings(random_kv)["ws353"]["spearman"])
    questions, right = analogy_results(random_kv)
    assert len(questions) == len(right) and right.dtype == bool
    sub, sub_right = analogy_results(random_kv, questions=questions[:5])
    assert sub == questions[:5] and np.array_equal(sub_right, right[:5])


def test_download_text8_offline_says_so(monkeypatch, tmp_path):
    import urllib.error
    import urllib.request

    from lmcourse.embeddings import download_text8
    monkeypatch.setenv("LMCOURSE_CACHE", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match="offline"):
        download_text8()
