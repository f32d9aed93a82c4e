"""Chapter 01 · language-model probability: Kneser-Ney with continuation counts, add-k, perplexity."""

from __future__ import annotations

from collections import Counter

import numpy as np

from lmcourse.exercises.grading import call, exercise, forbidding, rng, same_number

ID_KN, ID_ADD_K, ID_PPL = "01.kneser_ney_bigram", "01.add_k_prob", "01.perplexity"

SUBJECTS = ["i", "you", "the cat", "the old dog", "a friend from san francisco", "my sister"]
VERBS = ["like", "visited", "saw", "left"]
OBJECTS = ["san francisco", "the cat", "a dog", "the park", "new york", "the old town", "francisco"]


def toy_corpus(n: int, seed: int) -> list[list[str]]:
    """Sentences in which "francisco" is frequent but follows almost only "san" (Kneser-Ney's favourite case)."""
    g = np.random.default_rng(seed)
    return [f"{g.choice(SUBJECTS)} {g.choice(VERBS)} {g.choice(OBJECTS)}".split() for _ in range(n)]


def _bigram_model(smoothing: str, sentences: list[list[str]], **options):
    """NGramLM(2, smoothing, **options) fitted on `sentences`: the reference, built after the learner's answer."""
    from lmcourse.ngram import NGramLM

    return NGramLM(2, smoothing, **options).fit(sentences)


def _bigram_counts(sentences: list[list[str]]) -> tuple[Counter, list[str]]:
    """What the learner gets: the bigram counts {(prev, word): count} and the vocabulary, as NGramLM(2) counts them."""
    lm = _bigram_model("add_k", sentences)
    table, V = lm.tables[1], len(lm.vocab)  # the top order keeps raw counts, whatever the smoothing
    counts = Counter({(lm.vocab[int(k) // V], lm.vocab[int(k) % V]): int(c) for k, c in zip(table.keys, table.counts)})
    return counts, list(lm.vocab)


# The point of these exercises is to write the estimate: the package's n-gram model (and NLTK's) is refused.
NGRAM_REFERENCES = ("lmcourse.ngram", "nltk.lm", "nltk.probability.KneserNeyProbDist")


@exercise(ID_KN, "interpolated Kneser-Ney bigram probability", hints=[
    "Two levels: a discounted bigram estimate, plus the freed mass d * N1+(prev .) / c(prev .) spread by a "
    "*continuation* distribution: how many different words precede w, not how often w occurs.",
    "N1+(. w) = number of distinct prev with count(prev, w) > 0. The lower level is itself discounted and "
    "interpolated with the uniform 1/V: p_cont(w) = (max(N1+(. w) - d, 0) + d * #{w: N1+(. w) > 0} / V) / N1+(. .), "
    "with N1+(. .) the number of distinct bigrams.",
    "If c(prev .) = 0 return p_cont(w); else (max(c(prev, w) - d, 0) + d * N1+(prev .) * p_cont(w)) / c(prev .), "
    "where c(prev .) sums the counts of bigrams starting with prev and N1+(prev .) counts their distinct words.",
])
def check_kneser_ney_bigram(kneser_ney_bigram) -> None:
    pairs = [("a seen bigram", "the", "cat"), ("'francisco' after 'the' (frequent word, one left context)", "the", "francisco"),
             ("'san francisco'", "san", "francisco"), ("a word after an unseen context", "<unk>", "park"),
             ("an out-of-vocabulary word", "the", "<unk>")]
    small, large = toy_corpus(60, seed=1), toy_corpus(400, seed=2)
    counts, vocab = _bigram_counts(small)
    cases = [(f"{name}, discount {discount}", small, prev, word, discount)
             for discount in (0.75, 0.5) for name, prev, word in pairs]
    large_counts, large_vocab = _bigram_counts(large)
    cases += [(f"random pair {i + 1} of a 400-sentence corpus", large, prev, word, 0.75)
              for i, (prev, word) in enumerate(rng(ID_KN).choice(large_vocab, size=(5, 2)))]
    models = {}
    with forbidding(*NGRAM_REFERENCES):
        for case, sentences, prev, word, discount in cases:
            given = (counts, vocab) if sentences is small else (large_counts, large_vocab)
            got = call(case, kneser_ney_bigram, Counter(given[0]), list(given[1]), prev, word, discount)
            key = (id(sentences), discount)
            if key not in models:  # the reference, fitted after the learner's first answer on its corpus
                models[key] = _bigram_model("kneser_ney", sentences, discount=discount)
            same_number(case, got, models[key].prob(word, (prev,)), rtol=1e-9)


@exercise(ID_ADD_K, "add-k smoothed bigram probability", hints=[
    "Add k to the count of every possible bigram after prev, seen or not: how many possible next words are there?",
    "The numerator is count(prev, word) + k; the denominator is c(prev .) + k * V, with c(prev .) the count of all "
    "bigrams starting with prev and V = len(vocab).",
    "c_prev = sum(c for (a, _), c in bigram_counts.items() if a == prev); "
    "return (bigram_counts.get((prev, word), 0) + k) / (c_prev + k * len(vocab)).",
])
def check_add_k_prob(add_k_prob) -> None:
    sentences = toy_corpus(60, seed=3)
    counts, vocab = _bigram_counts(sentences)
    with forbidding(*NGRAM_REFERENCES):
        for k in (1.0, 0.1):
            lm = None
            for name, prev, word in [("a seen bigram", "the", "cat"), ("an unseen bigram", "cat", "visited"),
                                     ("an unseen context", "<unk>", "park"), ("end of sentence", "park", "</s>")]:
                case = f"{name}, k={k}"
                got = call(case, add_k_prob, Counter(counts), list(vocab), prev, word, k)
                if lm is None:  # the reference, fitted after the learner's first answer
                    lm = _bigram_model("add_k", sentences, k=k)
                same_number(case, got, lm.prob(word, (prev,)), rtol=1e-9)


@exercise(ID_PPL, "perplexity from probabilities", hints=[
    "Perplexity is e to the cross-entropy, and the cross-entropy is an average of negative log probabilities.",
    "Average in log space: the product of 100,000 probabilities underflows to 0 long before you take its root.",
    "return float(np.exp(-np.mean(np.log(probs)))).",
])
def check_perplexity(perplexity) -> None:
    g = rng(ID_PPL)
    cases = [
        ("a fair die, 10 rolls", np.full(10, 1 / 6)),
        ("a single token", np.array([0.25])),
        ("certain predictions (p = 1)", np.ones(7)),
        ("300 random probabilities", g.dirichlet(np.ones(50), size=300)[:, 0].clip(1e-6)),
        ("100,000 tokens with p in [0.001, 0.01]", g.uniform(1e-3, 1e-2, size=100_000)),
    ]
    for name, probs in cases:
        got = call(name, perplexity, probs.copy())
        same_number(name, got, float(np.exp(-np.mean(np.log(probs)))), rtol=1e-6)
