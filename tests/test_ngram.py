import math
import random
import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from lmcourse.data import MarkovSource
from lmcourse.ngram import BOS, EOS, NGramLM
from lmcourse.tokenizers import UNK

SENTENCES = [s.split() for s in [
    "the cat sat on the mat", "the dog sat on the log", "a cat ate the dog", "the mat was on the dog",
    "a dog and a cat sat", "on the log the cat sat"]]
HELD_OUT = [s.split() for s in ["the cat sat on the log", "a zebra ate the mat", "the dog sat"]]


def padded(sentences, n):
    return [[BOS] * (n - 1) + s + [EOS] for s in sentences]


def ngrams(sentences, n):
    """The n-grams ending at every predicted token, as tuples (a plain-Python reference)."""
    return [tuple(s[i - n + 1:i + 1]) for s in padded(sentences, n) for i in range(n - 1, len(s))]


def random_corpus(n_sentences, seed):
    """Sentences of 1..6 words drawn from 20 words with Zipf-like frequencies, so n-grams repeat at every order."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(20)]
    return [rng.choices(words, [1 / (r + 1) ** 1.5 for r in range(20)], k=rng.randint(1, 6))
            for _ in range(n_sentences)]


TRAIN, TEST = random_corpus(100, seed=0), random_corpus(15, seed=1)
ALL_SMOOTHINGS = ["mle", "add_k", "kneser_ney", "modified_kneser_ney"]


class ReferenceNGram:
    """The n-gram model written straight from the formulas with dicts and recursion, slow and independent of
    lmcourse.ngram: MLE, add-k, and interpolated Kneser-Ney with one discount or three (Chen & Goodman 1998)."""

    def __init__(self, sentences, n, smoothing, k=1.0, discount=0.75):
        self.n, self.smoothing, self.k = n, smoothing, k
        self.vocab = {UNK, BOS, EOS} | {w for s in sentences for w in s}
        grams = ngrams(sentences, n)
        self.counts = {n: Counter(grams)}
        for m in range(n - 1, 0, -1):
            if smoothing in ("kneser_ney", "modified_kneser_ney"):   # continuation counts: distinct left extensions
                self.counts[m] = Counter(g[1:] for g in self.counts[m + 1])
            else:
                self.counts[m] = Counter(g[-m:] for g in grams)
        self.total, self.types = {}, {}      # per order: c(h .) and the numbers of words seen 1, 2, 3+ times after h
        for m, counts in self.counts.items():
            self.total[m], self.types[m] = Counter(), defaultdict(lambda: [0, 0, 0])
            for g, c in counts.items():
                self.total[m][g[:-1]] += c
                self.types[m][g[:-1]][min(c, 3) - 1] += 1
        single = (discount, discount, discount)
        self.D = {m: single if smoothing != "modified_kneser_ney" else self.modified_discounts(counts)
                  for m, counts in self.counts.items()}

    @staticmethod
    def modified_discounts(counts):
        n1, n2, n3, n4 = (sum(c == i for c in counts.values()) for i in (1, 2, 3, 4))
        y = n1 / (n1 + 2 * n2)
        return 1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3

    def prob(self, word, context):
        known = lambda t: t if t in self.vocab else UNK  # noqa: E731
        context = tuple(map(known, context))[-(self.n - 1):] if self.n > 1 else ()
        return self._p(known(word), context)

    def _p(self, word, h):
        m = len(h) + 1
        c, total = self.counts[m][h + (word,)], self.total[m][h]
        if self.smoothing == "add_k":
            return (c + self.k) / (total + self.k * len(self.vocab))
        if self.smoothing == "mle":
            return c / total if total else self._p(word, h[1:])
        lower = 1 / len(self.vocab) if m == 1 else self._p(word, h[1:])
        if total == 0:
            return lower
        D = self.D[m]
        discounted = max(c - D[min(c, 3) - 1], 0) if c else 0
        freed = sum(d * t for d, t in zip(D, self.types[m].get(h, [0, 0, 0])))
        return (discounted + freed * lower) / total


@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k", "mle"])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_conditional_distribution_sums_to_one_for_seen_and_unseen_contexts(smoothing, order):
    lm = NGramLM(order, smoothing, k=0.5).fit(SENTENCES)
    contexts = [(), ("the",), (BOS, BOS, BOS), ("the", "cat", "sat"), ("zebra", "unicorn", "the"),
                ("never", "seen", "context"), (UNK,)]
    for context in contexts:
        dist = lm.distribution(context)
        assert dist.shape == (lm.vocab_size,)
        assert dist.sum() == pytest.approx(1.0, abs=1e-12)
        assert sum(lm.prob(w, context) for w in lm.vocab) == pytest.approx(1.0, abs=1e-12)


def test_character_streams_sum_to_one_too():
    lm = NGramLM(5).fit("abracadabra, a cadaver")
    for context in ["abra", "zzzz", "", "a"]:
        assert lm.distribution(context).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_kneser_ney_equals_a_direct_dictionary_implementation(order):
    lm = NGramLM(order, "kneser_ney", discount=0.6).fit(SENTENCES)
    ref = ReferenceNGram(SENTENCES, order, "kneser_ney", discount=0.6)
    contexts = [(BOS,) * (order - 1), ("the",) * (order - 1), (BOS, "on", "the")[3 - (order - 1):],
                ("zebra",) * (order - 1)]
    for context in contexts:
        for word in lm.vocab:
            assert lm.prob(word, context) == pytest.approx(ref.prob(word, context), abs=1e-12)


def contexts_of_every_length(sentences, order):
    """The context of every position of `sentences` cut to each length 0..order-1, plus never-seen contexts."""
    full = {g[:-1] for g in ngrams(sentences, order)} | {("zebra",) * (order - 1), (UNK, "w0", "w1", "w2")[:order - 1]}
    return sorted({c[len(c) - m:] for c in full for m in range(order)})


@pytest.mark.parametrize("smoothing", ALL_SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_prob_and_distribution_equal_the_by_hand_model_for_contexts_of_every_length(order, smoothing):
    # contexts shorter than order-1 are the lower-order estimate (25.1: they lost their first tokens)
    lm = NGramLM(order, smoothing, k=0.5, discount=0.7).fit(TRAIN)
    ref = ReferenceNGram(TRAIN, order, smoothing, k=0.5, discount=0.7)
    for context in contexts_of_every_length(TEST, order):
        expected = [ref.prob(w, context) for w in lm.vocab]
        np.testing.assert_allclose(lm.distribution(context), expected, rtol=1e-12, atol=1e-15)
        assert lm.distribution(context).sum() == pytest.approx(1.0, abs=1e-12)
        for word in ("w0", "w3", EOS, "zebra"):
            assert lm.prob(word, context) == pytest.approx(ref.prob(word, context), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("smoothing", ALL_SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_log_probs_equal_prob_at_every_position(order, smoothing):
    lm = NGramLM(order, smoothing).fit(TRAIN)
    expected = [lm.prob(g[-1], g[:-1]) for g in ngrams(TEST, order)]
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(lm.log_probs(TEST), np.log(expected), rtol=1e-12)


def test_modified_kneser_ney_discounts_follow_the_count_of_counts():
    lm = NGramLM(4, "modified_kneser_ney").fit(TRAIN)
    ref = ReferenceNGram(TRAIN, 4, "modified_kneser_ney")
    for j in range(4):
        np.testing.assert_allclose(lm.discounts[j], ref.D[j + 1], rtol=1e-12)


def test_modified_kneser_ney_refuses_counts_it_cannot_estimate_discounts_from():
    with pytest.raises(ValueError, match=r"count-of-counts n1..n4 = \(.*smoothing='kneser_ney'"):
        NGramLM(3, "modified_kneser_ney").fit(SENTENCES)


def test_kneser_ney_lower_orders_use_continuation_counts():
    # "francisco" is frequent but follows only "san": its continuation unigram is small
    text = [["san", "francisco"]] * 10 + [["a", "b"], ["c", "b"], ["d", "b"]]
    lm = NGramLM(2).fit(text)
    assert lm.prob("b", ()) > lm.prob("francisco", ())
    assert NGramLM(2, "mle").fit(text).prob("francisco", ()) > NGramLM(2, "mle").fit(text).prob("b", ())


def nltk_model(cls, sentences, n, **kwargs):
    nltk_lm = pytest.importorskip("nltk.lm")
    from nltk.util import everygrams
    model = getattr(nltk_lm, cls)(order=n, **kwargs)
    train = [list(everygrams(s, max_len=n)) for s in padded(sentences, n)]
    model.fit(train, [t for s in padded(sentences, n) for t in s])
    return model


@pytest.mark.parametrize("k", [1.0, 0.1, 2.5])
@pytest.mark.parametrize("order", [2, 3])
def test_add_k_equals_nltk_lidstone_and_laplace(order, k):
    ours = NGramLM(order, "add_k", k=k).fit(SENTENCES)
    theirs = nltk_model("Laplace", SENTENCES, order) if k == 1.0 else nltk_model("Lidstone", SENTENCES, order, gamma=k)
    assert len(theirs.vocab) == ours.vocab_size
    contexts = {g[:-1] for g in ngrams(SENTENCES + HELD_OUT, order)} | {("zebra", "cat")[-(order - 1):]}
    for context in contexts:
        for word in ["cat", "sat", "the", EOS, "zebra", "dog"]:
            # nltk maps words outside its vocabulary to its own <UNK>, as we map them to <unk>
            assert ours.prob(word, context) == pytest.approx(theirs.score(word, list(context)), abs=1e-9)


def test_mle_is_count_ratio_and_gives_zero_to_unseen_words():
    lm = NGramLM(2, "mle").fit(SENTENCES)
    grams = Counter(ngrams(SENTENCES, 2))
    after_the = sum(c for g, c in grams.items() if g[0] == "the")
    assert lm.prob("cat", ("the",)) == pytest.approx(grams[("the", "cat")] / after_the)
    assert lm.prob("zebra", ("the",)) == 0.0
    assert lm.cross_entropy(HELD_OUT) == math.inf


def test_kneser_ney_and_add_k_give_finite_perplexity_on_unseen_words():
    for smoothing in ["kneser_ney", "add_k"]:
        lm = NGramLM(3, smoothing).fit(SENTENCES)
        assert np.isfinite(lm.perplexity(HELD_OUT))


def test_cross_entropy_is_the_mean_negative_log_prob_over_padded_sentences():
    lm = NGramLM(3).fit(SENTENCES)
    logs = [math.log(lm.prob(g[-1], g[:-1])) for g in ngrams(HELD_OUT, 3)]
    assert lm.cross_entropy(HELD_OUT) == pytest.approx(-sum(logs) / len(logs), abs=1e-12)
    assert lm.perplexity(HELD_OUT) == pytest.approx(math.exp(-sum(logs) / len(logs)))


def test_stream_scoring_pads_only_the_start():
    tokens = list("abcabcabd")
    lm = NGramLM(2).fit(tokens)
    expected = [math.log(lm.prob(t, (p,))) for p, t in zip([BOS] + tokens[:-1], tokens)]
    assert lm.log_probs(tokens) == pytest.approx(expected)


def test_min_count_maps_rare_words_to_unk():
    lm = NGramLM(2, min_count=2).fit(SENTENCES)
    assert "ate" not in lm.index and "cat" in lm.index
    assert lm.prob("ate", ("a",)) == lm.prob(UNK, ("a",)) > 0


def test_matching_order_kneser_ney_approaches_the_markov_entropy_rate():
    source = MarkovSource(4, 1, seed=0)
    lm = NGramLM(2).fit(source.sample(50_000, seed=1))
    assert lm.cross_entropy(source.sample(20_000, seed=2)) == pytest.approx(source.entropy_rate(), abs=0.02)


def test_generate_is_reproducible_and_greedy_follows_the_argmax():
    lm = NGramLM(3).fit(SENTENCES)
    assert lm.generate(15, seed=3) == lm.generate(15, seed=3)
    greedy = lm.generate(4, context=("the",), greedy=True)
    history = [BOS, "the"]
    for token in greedy:
        assert token == lm.vocab[int(np.argmax(lm.distribution(history)))]
        history = history[1:] + [token] if token != EOS else [BOS, BOS]
    assert BOS not in lm.generate(200, seed=0, temperature=2.0)


def test_low_temperature_concentrates_on_the_most_likely_token():
    lm = NGramLM(2).fit(SENTENCES)
    cold = lm.generate(50, context=("on",), temperature=0.05, seed=0)
    assert cold[0] == lm.generate(1, context=("on",), greedy=True)[0]


@pytest.mark.parametrize("kwargs, match", [
    ({"order": 0}, "order"), ({"order": 2.5}, "order"), ({"order": 2, "smoothing": "witten_bell"}, "smoothing"),
    ({"order": 2, "k": 0}, "k must be > 0"), ({"order": 2, "k": -1}, "k must be > 0"),
    ({"order": 2, "discount": 1.0}, "discount"), ({"order": 2, "min_count": 0}, "min_count")])
def test_bad_constructor_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NGramLM(**kwargs)


def test_bad_use_raises_value_error():
    with pytest.raises(ValueError, match="empty"):
        NGramLM(2).fit([])
    with pytest.raises(ValueError, match="empty"):
        NGramLM(2).fit([[], []])
    with pytest.raises(ValueError, match="fit"):
        NGramLM(2).prob("a", ())
    lm = NGramLM(2).fit(SENTENCES)
    with pytest.raises(ValueError, match="temperature"):
        lm.generate(3, temperature=0)
    with pytest.raises(ValueError, match="n must be"):
        lm.generate(-1)
    with pytest.raises(ValueError, match="nothing to score"):
        NGramLM(2).fit("abc").cross_entropy("")


def test_numpy_int_streams_and_lists_give_the_same_model():
    tokens = MarkovSource(5, 1, seed=4).sample(2_000, seed=0)
    from_list, from_array = NGramLM(3).fit(tokens), NGramLM(3).fit(np.array(tokens))
    held_out = np.array(MarkovSource(5, 1, seed=4).sample(500, seed=1))
    assert from_array.cross_entropy(held_out) == from_list.cross_entropy(held_out.tolist())
    assert from_array.prob(2, np.array([1, 3])) == from_list.prob(2, (1, 3))


def test_generation_restarts_the_sentence_after_end_of_sentence():
    lm = NGramLM(3).fit([["a", "b"], ["a", "c"]])
    tokens = lm.generate(30, greedy=True)
    assert tokens[:3] == ["a", "b", EOS] or tokens[:3] == ["a", "c", EOS]
    assert tokens[3:6] == tokens[:3]


# ----------------------------------------------------------------------------- ARPA export

def read_arpa(path):
    """An independent ARPA reader: {n-gram tuple: (log10 p, log10 backoff)} and the header's n-gram counts."""
    entries, header, order = {}, {}, 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := re.fullmatch(r"ngram (\d+)=(\d+)", line):
            header[int(match[1])] = int(match[2])
        elif match := re.fullmatch(r"\\(\d+)-grams:", line):
            order = int(match[1])
        elif order and line and not line.startswith("\\"):
            fields = line.split()
            backoff = float(fields[order + 1]) if len(fields) > order + 1 else 0.0
            entries[tuple(fields[1:order + 1])] = (float(fields[0]), backoff)
    return entries, header


def arpa_log10_prob(entries, word, context):
    """log10 P(word | context) by backoff: the listed n-gram, else the context's backoff weight (0 if unlisted)
    plus the estimate after the context's oldest token is dropped."""
    if context + (word,) in entries:
        return entries[context + (word,)][0]
    return entries.get(context, (0.0, 0.0))[1] + arpa_log10_prob(entries, word, context[1:])


def arpa_words(lm, tokens):
    return tuple(t if t in lm.index else UNK for t in tokens)


@pytest.mark.parametrize("smoothing", ["kneser_ney", "modified_kneser_ney"])
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_arpa_backoff_reproduces_prob_at_every_held_out_position(order, smoothing, tmp_path):
    lm = NGramLM(order, smoothing).fit(TRAIN)
    entries, header = read_arpa(lm.to_arpa(tmp_path / "lm.arpa"))
    assert header == {k: sum(len(g) == k for g in entries) for k in range(1, order + 1)}
    assert {g for g in entries if len(g) == 1} == {(w,) for w in lm.vocab}
    assert all(g[:-1] in entries for g in entries if len(g) > 1)   # every context has its line
    for g in ngrams(TEST, order):
        expected = math.log10(lm.prob(g[-1], g[:-1]))
        assert arpa_log10_prob(entries, *arpa_words(lm, g[-1:]), arpa_words(lm, g[:-1])) == pytest.approx(
            expected, abs=1e-8)


def test_kenlm_reads_our_arpa_and_agrees(tmp_path):
    kenlm = pytest.importorskip("kenlm")
    for smoothing, order in [("kneser_ney", 3), ("modified_kneser_ney", 4)]:
        lm = NGramLM(order, smoothing).fit(TRAIN)
        model = kenlm.Model(str(lm.to_arpa(tmp_path / f"{smoothing}.arpa")))
        for g in ngrams(TEST, order):
            state, next_state = kenlm.State(), kenlm.State()
            model.NullContextWrite(state)
            for token in arpa_words(lm, g[:-1]):         # our order-1 <s> padding, not KenLM's single <s>
                model.BaseScore(state, token, next_state)
                state, next_state = next_state, state
            score = model.BaseScore(state, arpa_words(lm, g[-1:])[0], next_state)
            assert score == pytest.approx(math.log10(lm.prob(g[-1], g[:-1])), abs=1e-5)  # KenLM keeps float32


def test_to_arpa_refuses_models_and_tokens_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match="smoothing='add_k'.*'kneser_ney'"):
        NGramLM(2, "add_k").fit(SENTENCES).to_arpa(tmp_path / "lm.arpa")
    with pytest.raises(ValueError, match="token ' ' cannot be an ARPA word"):
        NGramLM(2).fit("a cat").to_arpa(tmp_path / "lm.arpa")
    with pytest.raises(ValueError, match="print the same"):
        NGramLM(2).fit([1, "1", 2]).to_arpa(tmp_path / "lm.arpa")


# ----------------------------------------------------------------------------- input never misread (26)

def test_a_word_model_refuses_a_str_it_would_read_character_by_character():
    lm = NGramLM(2).fit(SENTENCES)
    for score in (lm.cross_entropy, lm.log_probs, lm.perplexity):
        with pytest.raises(ValueError, match=r"tokens is a str \('the cat sat'\).*not characters.*split"):
            score("the cat sat")
    for use in (lambda: lm.prob("sat", "the cat"), lambda: lm.distribution("the"), lambda: lm.generate(3, "the")):
        with pytest.raises(ValueError, match="context is a str"):
            use()


def test_a_character_model_reads_a_str_as_its_characters():
    lm = NGramLM(3).fit("the cat sat")
    assert lm.char_level and NGramLM(3).fit(list("the cat sat")).char_level and not NGramLM(3).fit(SENTENCES).char_level
    assert lm.cross_entropy("a cat") == lm.cross_entropy(list("a cat"))
    assert lm.prob("t", "ca") == lm.prob("t", ["c", "a"])


def test_sentences_given_as_strings_are_refused_instead_of_read_as_one_token_each():
    with pytest.raises(ValueError, match="'the cat sat', several words as one token"):
        NGramLM(2).fit(["the cat sat", "the dog"])
    with pytest.raises(ValueError, match="tokens holds 'the cat sat'.*split"):
        NGramLM(2).fit(SENTENCES).cross_entropy(["the cat sat", "a dog"])
    chars = NGramLM(2).fit("the cat sat")
    with pytest.raises(ValueError, match="tokens holds 'the'.*characters"):
        chars.cross_entropy(["the", "cat"])
    with pytest.raises(ValueError, match="token holds 'cat'.*characters"):
        chars.prob("cat", "the ")


def test_unhashable_tokens_are_refused_with_a_value_error():
    with pytest.raises(ValueError, match=r"token holds a list \(\['cat'\]\)"):
        NGramLM(2).fit(SENTENCES).prob(["cat"], ("the",))
    with pytest.raises(ValueError, match="hashable"):
        NGramLM(2).fit([[["a"]]])
