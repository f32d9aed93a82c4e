"""Chapter 01 · language-model probability: the Kneser-Ney trigram, discounts from count-of-counts, held-out perplexity.

Each exercise is the step next to one the chapter shows: the trigram's middle level after the bigram written out
in code, the discounts a held-out experiment measures estimated without holding anything out, and the perplexity
of held-out sentences (padding, </s>, <unk>) after the perplexity of one scored sentence. The package's n-gram
model (and nltk's) is refused while the learner's code runs; every expected value is computed from
`lmcourse.ngram.NGramLM` after the learner's function has returned.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

from lmcourse.exercises.grading import Wrong, call, exercise, forbidding, real_number, rng, same_number

ID_KN3, ID_DISCOUNTS, ID_PPL = "01.kneser_ney_trigram", "01.held_out_discounts", "01.held_out_perplexity"

SUBJECTS = ["i", "you", "the cat", "the old dog", "a friend from san francisco", "my sister"]
VERBS = ["like", "visited", "saw", "left"]
OBJECTS = ["san francisco", "the cat", "a dog", "the park", "new york", "the old town", "francisco"]

# The point of these exercises is to write the estimate: the package's n-gram model (and nltk's) is refused.
NGRAM_REFERENCES = ("lmcourse.ngram", "nltk.lm", "nltk.probability.KneserNeyProbDist")


def toy_corpus(n: int, seed: int) -> list[list[str]]:
    """Sentences in which "francisco" is frequent but follows almost only "san" (Kneser-Ney's favourite case)."""
    g = np.random.default_rng(seed)
    return [f"{g.choice(SUBJECTS)} {g.choice(VERBS)} {g.choice(OBJECTS)}".split() for _ in range(n)]


def _model(order: int, sentences: list[list[str]], smoothing: str = "kneser_ney", **options):
    """NGramLM(order, smoothing, **options) fitted on `sentences`: the reference, built after the learner's answer."""
    from lmcourse.ngram import NGramLM

    return NGramLM(order, smoothing, **options).fit(sentences)


def ngram_counts(sentences: list[list[str]], order: int) -> tuple[Counter, list[str]]:
    """What the learner gets: the top-order counts {(w1, .., w_order): count} as NGramLM(order) counts them
    (sentences padded with order-1 <s> and one </s>), and the model's vocabulary."""
    lm = _model(order, sentences, "add_k")
    table, V = lm.tables[order - 1], len(lm.vocab)  # the top order keeps raw counts, whatever the smoothing
    digits = [(table.keys // V ** (order - 1 - i)) % V for i in range(order)]  # token ids, oldest first
    grams = zip(*(d.tolist() for d in digits))
    counts = Counter({tuple(lm.vocab[i] for i in gram): int(c) for gram, c in zip(grams, table.counts)})
    return counts, list(lm.vocab)


def _news_sentences() -> list[list[str]]:
    from lmcourse.data import load_corpus
    from lmcourse.tokenizers import split_sentences, split_words

    return [split_words(s) for s in split_sentences(load_corpus("lee", "train"))]


# ------------------------------------------------------------------------------------------------ the trigram

@exercise(ID_KN3, "interpolated Kneser-Ney trigram probability", hints=[
    "Start from the bigram cell above: its top level is the same for a trigram (the context is now two words), and "
    "its bottom level is the same too. What is new is a level in between: P(word | the last word of the context).",
    "The middle level is used only when the two-word context did not decide, so, like the bottom level, it counts "
    "continuations, not occurrences: in how many distinct contexts u did 'v w' follow u? It is discounted and "
    "interpolated like the others, with its own totals and its own count of distinct next words after v.",
    "Build the levels from the top down: trigram counts -> continuation counts of bigrams (distinct left words of "
    "each v w) -> continuation counts of words (distinct left words of each w among those bigram types). Then "
    "compute from the bottom up; a context never seen at a level (as 'u v' in the trigrams, or as 'v' among the "
    "continuation bigrams) hands over the level below unchanged.",
])
def check_kneser_ney_trigram(kneser_ney_trigram) -> None:
    triples = [("a seen trigram", ("the", "old"), "dog"), ("the start of a sentence", ("<s>", "<s>"), "the"),
               ("'francisco' after 'visited the' (a frequent word, one left context)", ("visited", "the"), "francisco"),
               ("'visited san francisco'", ("visited", "san"), "francisco"),
               ("an unseen two-word context whose last word was seen", ("like", "my"), "sister"),
               ("a context whose last word never precedes anything", ("left", "</s>"), "the"),
               ("an out-of-vocabulary word", ("saw", "the"), "<unk>"), ("the end of a sentence", ("the", "park"), "</s>")]
    small, large = toy_corpus(60, seed=1), toy_corpus(400, seed=2)
    counts, vocab = ngram_counts(small, 3)
    cases = [(f"{name}, discount {discount}", small, context, word, discount)
             for discount in (0.75, 0.5) for name, context, word in triples]
    large_counts, large_vocab = ngram_counts(large, 3)
    cases += [(f"random triple {i + 1} of a 400-sentence corpus", large, (u, v), w, 0.75)
              for i, (u, v, w) in enumerate(rng(ID_KN3).choice(large_vocab, size=(6, 3)).tolist())]
    models = {}
    with forbidding(*NGRAM_REFERENCES):
        for case, sentences, context, word, discount in cases:
            given = (counts, vocab) if sentences is small else (large_counts, large_vocab)
            got = call(case, kneser_ney_trigram, Counter(given[0]), list(given[1]), tuple(context), word, discount)
            key = (id(sentences), discount)
            if key not in models:  # the reference, fitted after the learner's first answer on its corpus
                models[key] = _model(3, sentences, discount=discount)
            same_number(case, got, models[key].prob(word, context), rtol=1e-9)


# ------------------------------------------------------------------------------------------------ the discounts

@exercise(ID_DISCOUNTS, "Kneser-Ney discounts from count-of-counts", hints=[
    "Everything you need is in the count-of-counts: n_c = how many distinct n-grams were seen exactly c times, for "
    "c = 1 to 4. The n-grams themselves, and how many tokens they cover, do not enter.",
    "Good-Turing's idea (the held-out experiment without a held-out half): leave one occurrence out, and an n-gram "
    "seen c + 1 times looks like one seen c times. So the n_{c+1} n-grams seen c + 1 times tell how often one seen c "
    "times comes back in new text: about (c + 1) n_{c+1} / n_c times. Its discount is what c loses to that.",
    "Good-Turing alone is noisy where n_{c+1} is small, so the task's Y = n1 / (n1 + 2 n2) tempers it: the return "
    "count of hint 2 times Y is what a count c is worth, and D_c is c minus that worth, for c = 1, 2 and 3 (D3 "
    "serves every count of 3 or more, so n4 is the last count-of-counts you need). With Y = 1 you would get plain "
    "Good-Turing discounts.",
])
def check_held_out_discounts(held_out_discounts) -> None:
    news = _news_sentences()
    cases = [(f"the {what} of the news corpus", news, order)
             for order, what in enumerate(("words", "bigrams", "trigrams", "4-grams"), start=1)]
    with forbidding(*NGRAM_REFERENCES):
        for case, sentences, order in cases:
            counts, _ = ngram_counts(sentences, order)
            got = call(case, held_out_discounts, counts)
            if isinstance(got, np.ndarray):
                got = got.tolist()
            if not isinstance(got, (tuple, list)) or len(got) != 3:
                raise Wrong(case, f"return the three discounts (D1, D2, D3+) as a tuple, got {type(got).__name__}")
            want = _model(order, sentences, "modified_kneser_ney").discounts[order - 1]  # after the learner's call
            for name, d, w in zip(("D1", "D2", "D3+"), got, want):
                same_number(case, d, float(w), rtol=1e-9, what=name)


# ------------------------------------------------------------------------------------------------ held-out perplexity

class FrozenLM:
    """A fitted n-gram model's probabilities, frozen in a table: what the checker hands to the learner.

    `.order` (n), `.vocab` (every token it knows, <s>, </s> and <unk> included) and `.prob(word, context)` like
    `NGramLM.prob`: only the last order-1 tokens of `context` are used, a shorter context gives the shorter
    history's estimate, and a token outside `vocab` is refused (the model has no probability for it)."""

    def __init__(self, order: int, vocab: list[Hashable], table: dict[tuple, float]):
        self.order, self.vocab, self._table, self._known = order, list(vocab), table, frozenset(vocab)

    def prob(self, word: Hashable, context: Sequence = ()) -> float:
        """P(word | the last order-1 tokens of context)."""
        context = tuple(context)[max(0, len(context) - (self.order - 1)):]
        for token in (*context, word):
            if token not in self._known:
                raise ValueError(f"{token!r} is not in this model's vocabulary (model.vocab): it has no probability")
        return self._table[(*context, word)]


def _frozen(lm) -> FrozenLM:
    """The probabilities of `lm` (an NGramLM) for every context of 0 to order-1 vocabulary tokens."""
    table = {}
    for m in range(lm.order):
        for context in itertools.product(lm.vocab, repeat=m):
            table.update(zip(((*context, w) for w in lm.vocab), lm.distribution(context).tolist()))
    return FrozenLM(lm.order, lm.vocab, table)


def _with_unknown_words(sentences: list[list[str]], seed: int) -> list[list[str]]:
    """Held-out sentences with a few words the model never saw (one sentence gets two in a row)."""
    g = np.random.default_rng(seed)
    out = [list(s) for s in sentences]
    for i, word in zip(g.choice(len(out), size=4, replace=False).tolist(), ["zebra", "quietly", "tomorrow", "paris"]):
        out[i].insert(int(g.integers(0, len(out[i]) + 1)), word)
    out[0][1:1] = ["purple", "zebras"]
    return out


@exercise(ID_PPL, "perplexity of held-out sentences", hints=[
    "Section 1 scored one sentence factor by factor. Do the same for every held-out sentence, then combine: which "
    "tokens are predicted (count them), what history does the first word get, and what does the model do with a "
    "word it never saw?",
    "Pad each sentence as the model was trained: order-1 <s> in front (history only, never predicted) and one </s> "
    "at the end (predicted like a word). Map every word outside model.vocab to <unk> before asking the model.",
    "Perplexity is e to the cross-entropy, and the cross-entropy is the average negative log probability over all "
    "predicted tokens of all sentences together (not an average of per-sentence perplexities, and not of the "
    "probabilities themselves). Natural log and e go together; log2 goes with 2.",
])
def check_held_out_perplexity(held_out_perplexity) -> None:
    train = toy_corpus(80, seed=5)
    held_out = _with_unknown_words(toy_corpus(25, seed=6), seed=7)
    cases = [("a bigram model, 25 held-out sentences with unknown words", 2, held_out),
             ("a trigram model, 25 held-out sentences with unknown words", 3, held_out),
             ("a unigram model (no history)", 1, held_out),
             ("a trigram model, one two-word sentence", 3, [["you", "left"]])]
    models = {order: _frozen(_model(order, train)) for order in {order for _, order, _ in cases}}
    with forbidding(*NGRAM_REFERENCES):
        for case, order, sentences in cases:
            got = call(case, held_out_perplexity, models[order], [list(s) for s in sentences])
            got = real_number(case, got)
            same_number(case, got, _model(order, train).perplexity(sentences), rtol=1e-9)  # after the learner's call
