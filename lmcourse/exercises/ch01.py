"""Chapter 01 · language-model probability: the Kneser-Ney trigram, discounts from count-of-counts, a weight chosen on dev.

Each exercise is the step next to one the chapter shows: the trigram's middle level after the bigram written out
in code, the discounts a held-out experiment measures estimated without holding anything out, and the
interpolation weight of a bigram with a unigram chosen on a development split and reported once on a test split,
after add-k's k was swept on the very sentences it was scored on. The package's n-gram model (and nltk's) is
refused while the learner's code runs; every expected value is computed from `lmcourse.ngram.NGramLM` after the
learner's function has returned.
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


def _swapped_corpus(n: int, seed: int) -> list[list[str]]:
    """toy_corpus's sentences with subject and object swapped ("the park saw my sister"): bigrams the training text
    rarely has, so a split of them wants more of the unigram than a split like the training text does."""
    g = np.random.default_rng(seed)
    return [f"{g.choice(OBJECTS)} {g.choice(VERBS)} {g.choice(SUBJECTS)}".split() for _ in range(n)]


def _mixture_perplexity(bigram, unigram, sentences: list[list[str]], weight: float) -> float:
    """Perplexity of weight * P_bigram + (1 - weight) * P_unigram on `sentences`, with NGramLM's padding, </s>
    and <unk>, pooled over every predicted token (bigram, unigram: NGramLMs fitted on the same text)."""
    p = weight * np.exp(bigram.log_probs(sentences)) + (1 - weight) * np.exp(unigram.log_probs(sentences))
    return float(np.exp(-np.log(p).mean()))


def _why_not_chosen(chosen: float, grid: list[float], dev: list[float], test: list[float]) -> str:
    """How a chosen weight differs from the grid's best on dev (the classic mistakes first), without naming it."""
    if chosen not in grid:
        return "the chosen λ is not one of the weights in lambdas"
    i = grid.index(chosen)
    if i == int(np.argmin(test)):
        return "the chosen λ is the grid's best on the test sentences: choose on dev, the test split only reports"
    if i == int(np.argmax(dev)):
        return "the chosen λ has the highest dev perplexity of the grid: perplexity is a loss, lower is better"
    return "the chosen λ is not the weight of the grid with the lowest dev perplexity"


@exercise(ID_PPL, "interpolation weight chosen on dev, perplexity reported on test", hints=[
    "Two parts: a function that scores one split with the mixture for one λ, and the protocol that uses it (every "
    "λ of the grid on dev, then the chosen one on test). Section 1 scored one sentence with one model; section 5 "
    "says what is padded, what is predicted and what an unknown word becomes.",
    "The mixture is one model: for each predicted token (every word, then </s>; the bigram's first history is "
    "<s>; a word outside the vocabulary is <unk>), mix the two probabilities, then take the log. A split's "
    "perplexity pools all of its predicted tokens, as NGramLM.perplexity does for a list of sentences.",
    "Perplexity is a loss: the chosen λ is the one with the lowest dev perplexity, and the test sentences play no "
    "part in choosing it (a choice made on test flatters the number it reports). Score test once, with that λ, "
    "and return both.",
])
def check_held_out_perplexity(held_out_perplexity) -> None:
    train = toy_corpus(80, seed=5)
    like_train, swapped = toy_corpus(30, seed=6), _swapped_corpus(30, seed=10)
    unknown_words = _with_unknown_words(toy_corpus(30, seed=8), seed=9)
    mixed = toy_corpus(20, seed=11) + _swapped_corpus(10, seed=12)
    cases = [("dev like the training text, test with subjects and objects swapped", like_train, swapped,
              [0.1, 0.3, 0.5, 0.7, 0.9]),
             ("dev swapped, test with unknown words (two in a row in one sentence), an unsorted grid", swapped,
              unknown_words, [0.8, 0.2, 0.6, 0.4, 0.95, 0.05, 0.7]),
             ("dev a mix of both kinds, test like the training text, a fine grid", mixed, like_train,
              [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]),
             ("a grid of one weight, dev with unknown words", unknown_words, swapped, [0.6])]
    given = (_frozen(_model(2, train, "mle")), _frozen(_model(1, train, "add_k", k=1.0)))  # tables, not answers
    with forbidding(*NGRAM_REFERENCES):
        for case, dev, test, grid in cases:
            got = call(case, held_out_perplexity, *given, [list(s) for s in dev], [list(s) for s in test], list(grid))
            if isinstance(got, np.ndarray):
                got = got.tolist()
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise Wrong(case, f"return (chosen λ, test perplexity) as a tuple, got {type(got).__name__}")
            chosen = real_number(case, got[0], "the chosen λ")
            bigram, unigram = _model(2, train, "mle"), _model(1, train, "add_k", k=1.0)  # after the learner's call
            dev_ppl = [_mixture_perplexity(bigram, unigram, dev, weight) for weight in grid]
            test_ppl = [_mixture_perplexity(bigram, unigram, test, weight) for weight in grid]
            best = int(np.argmin(dev_ppl))
            if chosen != grid[best]:
                raise Wrong(case, _why_not_chosen(chosen, grid, dev_ppl, test_ppl))
            reported = real_number(case, got[1], "the test perplexity")
            if abs(reported - dev_ppl[best]) <= 1e-9 * dev_ppl[best] and abs(dev_ppl[best] - test_ppl[best]) > 1e-6:
                raise Wrong(case, "the test perplexity is the chosen λ's perplexity on dev; report it on test")
            same_number(case, reported, test_ppl[best], rtol=1e-9, what="the test perplexity")
