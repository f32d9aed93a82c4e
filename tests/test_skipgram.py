import numpy as np
import pytest
import torch

from lmcourse.skipgram import (
    SkipGramNS,
    build_vocab,
    keep_probabilities,
    negative_table,
    sgd_step,
    skipgram_pairs,
    train_skipgram,
)

TOY = [["the", "king", "rules", "the", "land"], ["the", "queen", "rules", "the", "land"],
       ["a", "man", "walks", "home"], ["a", "woman", "walks", "home"]] * 30


def test_build_vocab_sorts_by_count_and_drops_rare_words():
    words, counts = build_vocab([["b", "a", "b", "c"], ["a", "b"]], min_count=2)
    assert words == ["b", "a"] and counts.tolist() == [3, 2]
    with pytest.raises(ValueError, match="min_count"):
        build_vocab([["a"]], min_count=0)
    with pytest.raises(ValueError, match="empty"):
        build_vocab([[]])
    with pytest.raises(ValueError, match="min_count=5"):
        build_vocab([["a"]], min_count=5)


def test_keep_probabilities_follow_the_gensim_formula():
    from gensim.models import Word2Vec
    model = Word2Vec(TOY, min_count=1, sample=0.05, vector_size=4, epochs=1, workers=1)
    words, counts = build_vocab(TOY, min_count=1)
    ours = keep_probabilities(counts, sample=0.05)
    theirs = np.array([model.wv.get_vecattr(w, "sample_int") for w in words]) / 2**32
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert keep_probabilities(counts, 0).tolist() == [1.0] * len(counts)
    with pytest.raises(ValueError, match="sample"):
        keep_probabilities(counts, -1)


def test_negative_table_has_unigram_to_the_075_shares():
    counts = np.array([1000, 100, 10, 1])
    table = negative_table(counts, size=200_000)
    share = np.bincount(table.numpy(), minlength=4) / len(table)
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    np.testing.assert_allclose(share, expected, atol=1e-4)


def test_skipgram_pairs_stay_in_sentence_and_window():
    ids = np.arange(10)
    sentence_ids = np.array([0] * 6 + [1] * 4)
    centre, context = skipgram_pairs(ids, sentence_ids, window=2, rng=np.random.default_rng(0))
    assert len(centre) > 0
    assert np.all(sentence_ids[centre] == sentence_ids[context])
    assert np.all((np.abs(centre - context) >= 1) & (np.abs(centre - context) <= 2))
    # window=1: exactly the neighbouring pairs, both directions
    c1, o1 = skipgram_pairs(ids, sentence_ids, window=1, rng=np.random.default_rng(0))
    assert sorted(zip(c1.tolist(), o1.tolist())) == sorted(
        [(i, i + 1) for i in (0, 1, 2, 3, 4, 6, 7, 8)] + [(i + 1, i) for i in (0, 1, 2, 3, 4, 6, 7, 8)])
    with pytest.raises(ValueError, match="window"):
        skipgram_pairs(ids, sentence_ids, window=0, rng=np.random.default_rng(0))


def test_skipgram_pairs_prefer_near_words_like_word2vec():
    ids = np.arange(2000)
    centre, context = skipgram_pairs(ids, np.zeros(2000, dtype=int), window=4, rng=np.random.default_rng(0))
    dist = np.bincount(np.abs(centre - context), minlength=5)[1:]
    expected = np.array([4, 3, 2, 1]) / 4 * 2 * 2000  # P(b >= d) = (5 - d) / 4, two sides
    np.testing.assert_allclose(dist, expected, rtol=0.06)


def test_sgd_step_equals_autograd_sgd_on_the_sgns_loss():
    torch.manual_seed(0)
    a, b = SkipGramNS(12, 6, seed=1), SkipGramNS(12, 6, seed=1)
    with torch.no_grad():
        a.emb_out.normal_()
        b.emb_out.copy_(a.emb_out)
    centre = torch.tensor([0, 3, 3, 7])  # repeated ids: gradients must add up
    context = torch.tensor([1, 2, 2, 0])
    negatives = torch.tensor([[4, 5], [5, 6], [1, 1], [3, 9]])
    loss_ref = b.loss(centre, context, negatives)
    loss_ref.backward()
    with torch.no_grad():
        for p in b.parameters():
            p -= 0.1 * p.grad
    loss = sgd_step(a, centre, context, negatives, lr=0.1)
    assert loss == pytest.approx(float(loss_ref.detach()), abs=1e-5)
    torch.testing.assert_close(a.emb_in, b.emb_in)
    torch.testing.assert_close(a.emb_out, b.emb_out)


def test_skipgram_init_matches_word2vec_and_rejects_bad_sizes():
    m = SkipGramNS(50, 10)
    assert m.emb_in.abs().max() <= 0.05 and m.emb_out.abs().max() == 0
    with pytest.raises(ValueError, match="vocab_size"):
        SkipGramNS(0, 10)


def test_train_skipgram_learns_toy_structure_and_lowers_loss():
    result = train_skipgram(TOY, vector_size=16, window=2, min_count=1, sample=0, epochs=15, batch_size=64, seed=0)
    assert result.losses[-1] < result.losses[0]
    kv = result.kv
    assert kv.vector_size == 16 and set(kv.index_to_key) == {w for s in TOY for w in s}
    # words used in the same contexts end up closer than unrelated ones
    assert kv.similarity("king", "queen") > kv.similarity("king", "walks")
    assert kv.similarity("man", "woman") > kv.similarity("man", "rules")
    assert result.words_per_second > 0


@pytest.mark.parametrize("kwargs, word", [({"window": 0}, "window"), ({"negative": 0}, "negative"),
                                          ({"epochs": 0}, "epochs"), ({"alpha": 0.001, "min_alpha": 0.01},
                                                                      "min_alpha")])
def test_train_skipgram_rejects_bad_settings(kwargs, word):
    with pytest.raises(ValueError, match=word):
        train_skipgram(TOY, **kwargs)


def test_train_skipgram_rejects_empty_corpus():
    with pytest.raises(ValueError, match="sentences"):
        train_skipgram([[]])
