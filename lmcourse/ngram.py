"""N-gram language models: counting, MLE, add-k and (modified) interpolated Kneser-Ney, scored in numpy.

    lm = NGramLM(3).fit(sentences)            # a list of token lists (padded per sentence) ...
    lm = NGramLM(5).fit(char_ids)             # ... or one flat stream of any hashable tokens
    lm.prob("cat", ("the",)) ; lm.cross_entropy(held_out) ; lm.generate(20, seed=0)
    lm.to_arpa("model.arpa")                  # Kneser-Ney models in the ARPA backoff format (KenLM, SRILM)

Every n-gram is stored as one integer key (its token ids read as digits in base V), so counting
is `np.unique` and looking up a million n-grams is one `np.searchsorted`: no Python loop per token.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path

import numpy as np

from lmcourse.checks import check_int, check_number, describe
from lmcourse.tokenizers import UNK

BOS, EOS = "<s>", "</s>"
SPECIALS = (UNK, BOS, EOS)
KNESER_NEY = ("kneser_ney", "modified_kneser_ney")
SMOOTHINGS = (*KNESER_NEY, "add_k", "mle")


class _Table:
    """Counts of the k-grams of one order (never empty), with the totals of their contexts and, once
    discounted (Kneser-Ney), the probability mass each context frees for the lower order."""

    def __init__(self, keys: np.ndarray, counts: np.ndarray, vocab_size: int):
        self.keys, self.counts = keys, counts.astype(np.float64)      # sorted unique k-gram keys, their counts
        context = keys // vocab_size                                   # the (k-1)-token context: sorted too
        self.context_keys, self.context_starts = np.unique(context, return_index=True)
        self.context_total = np.add.reduceat(self.counts, self.context_starts)   # c(h .): all counts after h
        self.discounts = np.zeros(3)                                   # (D1, D2, D3+): none until discount()
        self.context_freed = np.zeros(len(self.context_keys))

    def discount(self, discounts: np.ndarray) -> None:
        """Subtract D1, D2, D3+ from k-grams seen 1, 2, 3+ times: context h frees D . (N1, N2, N3+)(h .)."""
        seen = np.minimum(self.counts, 3)
        self.discounts = discounts
        self.context_freed = sum(d * np.add.reduceat((seen == c).astype(np.float64), self.context_starts)
                                 for c, d in zip((1, 2, 3), discounts))

    def count_of_counts(self) -> np.ndarray:
        """n1..n4: how many k-grams have count 1, 2, 3 and 4, shape (4,)."""
        return np.bincount(self.counts.astype(np.int64), minlength=5)[1:5]

    def count(self, keys: np.ndarray) -> np.ndarray:
        """Count of each k-gram key (0 where unseen), shape of `keys`."""
        i = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[i] == keys, self.counts[i], 0.0)

    def context(self, context_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(found, total, freed) for each context key; total and freed are 0 where the context is unseen."""
        i = np.minimum(np.searchsorted(self.context_keys, context_keys), len(self.context_keys) - 1)
        found = self.context_keys[i] == context_keys
        return found, np.where(found, self.context_total[i], 0.0), np.where(found, self.context_freed[i], 0.0)


class NGramLM:
    """An order-`order` n-gram language model over any hashable tokens (words, characters, ids).

    smoothing:
      "mle"        count(h, w) / count(h); unseen contexts back off to the longest seen suffix.
                   Unseen words get probability 0, hence infinite perplexity: the reason to smooth.
      "add_k"      (count(h, w) + k) / (count(h) + k V), V the vocabulary size (k=1 is Laplace);
                   equal to nltk's Lidstone/Laplace.
      "kneser_ney" interpolated Kneser-Ney with one absolute `discount` at every order: the top order
                   uses counts, every lower order uses continuation counts N1+(. h w) (in how many
                   distinct contexts a word follows h), and the unigram level is interpolated with the
                   uniform distribution, so every vocabulary word (and <unk>) has probability > 0.
      "modified_kneser_ney"  the same with three discounts D1, D2, D3+ per order, for n-grams seen once,
                   twice and 3+ times, estimated at fit from that order's count-of-counts n1..n4 (how many
                   distinct n-grams were seen exactly 1..4 times; Chen & Goodman 1998; Exercise 2 of chapter
                   01 derives them). `lm.discounts[j]` holds (D1, D2, D3+) of the (j+1)-grams.
                   `discount` is not used; too little text (n1, n2 or n3 is 0, or an estimate comes out
                   negative) is refused.

    Vocabulary: the training tokens seen at least `min_count` times, plus <unk> (any other token),
    </s> (end of sentence) and <s> (the start padding; it is in the vocabulary, as in nltk, but is
    never a training target). Every conditional distribution sums to 1 over this vocabulary.

    Padding: `fit`/`cross_entropy` take either a flat stream (one long text; order-1 <s> in front)
    or a list of sentences (each padded to <s> ... <s> w1 .. wm </s>, so the model learns how
    sentences start and end, and the first word is predicted too).
    """

    def __init__(self, order: int, smoothing: str = "kneser_ney", k: float = 1.0, discount: float = 0.75,
                 min_count: int = 1):
        check_int("order", order, fix="1 = unigram, 3 = trigram")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
        check_number("k", k, 0, low_open=True, fix="k > 0 for add-k smoothing (k=1 is Laplace)")
        check_number("discount", discount, 0, 1, low_open=True, high_open=True, fix="0.75 is usual for Kneser-Ney")
        check_int("min_count", min_count)
        self.order, self.smoothing, self.k, self.discount = int(order), smoothing, float(k), float(discount)
        self.min_count = int(min_count)
        self.vocab: list[Hashable] = []
        self.index: dict[Hashable, int] = {}
        self.tables: list[_Table] = []   # tables[j] holds the (j+1)-grams
        self.discounts: list[np.ndarray] = []   # Kneser-Ney: discounts[j] = (D1, D2, D3+) of the (j+1)-grams
        self.char_level = False          # fitted on characters (a str, or 1-character strings)?

    # ----------------------------------------------------------------- fitting
    def fit(self, tokens: Iterable) -> NGramLM:
        """Count the n-grams of `tokens` (a flat token sequence or a list of sentences); returns self."""
        sentences, is_stream = _as_sentences(tokens, "tokens")
        try:
            counts = Counter(t for s in sentences for t in s)
        except TypeError:
            raise ValueError("tokens must hold hashable tokens (str, int), or be a list of token lists, got a "
                             "token that is itself a list or an array") from None
        if not counts:
            raise ValueError("tokens is empty: fit needs at least one token (got an empty corpus)")
        sentence = next((t for t in counts if isinstance(t, str) and _several_words(t)), None)
        if sentence is not None:
            raise ValueError(f"tokens holds {sentence[:40]!r}, several words as one token; give sentences as token "
                             "lists, e.g. [s.split() for s in sentences]")
        kept = [t for t, c in counts.items() if c >= self.min_count and t not in SPECIALS]
        self.vocab = list(SPECIALS) + sorted(kept, key=_sort_key)
        self.char_level = all(isinstance(t, str) and len(t) == 1 for t in counts)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        V, n = len(self.vocab), self.order
        if float(V) ** n >= 2.0**62:
            raise ValueError(f"order {n} over a vocabulary of {V} tokens has too many possible n-grams to "
                             f"key as int64 ({V}**{n}); lower the order or raise min_count")
        ids, targets = self._padded_ids(sentences, is_stream)
        keys = self._keys(ids, targets)                           # keys[j]: (j+1)-gram ending at each target
        self.tables = [None] * n
        top_keys, top_counts = np.unique(keys[n - 1], return_counts=True)
        self.tables[n - 1] = _Table(top_keys, top_counts, V)
        for j in range(n - 2, -1, -1):
            if self.smoothing in KNESER_NEY:
                # continuation count of a (j+1)-gram: how many distinct tokens precede it in the (j+2)-grams
                longer = self.tables[j + 1].keys
                kj, cj = np.unique(longer % V ** (j + 1), return_counts=True)
            else:
                kj, cj = np.unique(keys[j], return_counts=True)
            self.tables[j] = _Table(kj, cj, V)
        if self.smoothing == "kneser_ney":
            self.discounts = [np.full(3, self.discount)] * n
        elif self.smoothing == "modified_kneser_ney":
            self.discounts = [_modified_discounts(table.count_of_counts(), j + 1) for j, table in enumerate(self.tables)]
        for table, discounts in zip(self.tables, self.discounts):
            table.discount(discounts)
        return self

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _check_fitted(self) -> None:
        if not self.tables:
            raise ValueError("this NGramLM is not fitted yet: call .fit(tokens) first")

    def _ids(self, tokens: Iterable) -> np.ndarray:
        unk = self.index[UNK]
        get = self.index.get
        return np.fromiter((get(t, unk) for t in tokens), dtype=np.int64)

    def _padded_ids(self, sentences: list, is_stream: bool) -> tuple[np.ndarray, np.ndarray]:
        """All sentences as one id array with their padding, and the positions that are predicted."""
        pad = self.order - 1
        lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
        ids = self._ids(t for s in sentences for t in s)                    # all tokens, unpadded
        if not is_stream:                                                   # </s> after every sentence
            ids = np.insert(ids, np.cumsum(lengths), self.index[EOS])
            lengths = lengths + 1
        ends = np.cumsum(lengths + pad)                                     # one past each padded sentence
        first = ends - lengths                                              # first predicted position of each
        targets = np.repeat(first - np.cumsum(lengths) + lengths, lengths) + np.arange(len(ids))
        padded = np.full(ends[-1] if len(ends) else 0, self.index[BOS], dtype=np.int64)
        padded[targets] = ids
        return padded, targets

    def _keys(self, ids: np.ndarray, positions: np.ndarray) -> list[np.ndarray]:
        """keys[j][i]: the (j+1)-gram ending at positions[i], as sum of ids times powers of V."""
        V, keys = len(self.vocab), []
        key = ids[positions].copy()
        for j in range(self.order):
            if j:
                key = key + ids[positions - j] * V**j
            keys.append(key)
        return keys

    # ----------------------------------------------------------------- scoring
    def _probs(self, context_keys: list[np.ndarray], words: np.ndarray) -> np.ndarray:
        """P(word | context) for arrays of words; context_keys[m] keys the last m context tokens (m < order)."""
        V, levels = len(self.vocab), len(context_keys)
        if self.smoothing == "add_k":
            table = self.tables[levels - 1]
            _, total, _ = table.context(context_keys[-1])
            count = table.count(context_keys[-1] * V + words)
            return (count + self.k) / (total + self.k * V)
        kneser_ney = self.smoothing in KNESER_NEY
        p = np.full(words.shape, 1.0 / V) if kneser_ney else np.zeros(words.shape)
        for j in range(levels):                                 # from unigrams up to the longest context
            table = self.tables[j]
            found, total, freed = table.context(context_keys[j])
            count = table.count(context_keys[j] * V + words)
            safe = np.where(found, total, 1.0)
            if kneser_ney:
                D = table.discounts                             # D1, D2, D3+ for counts 1, 2, 3+
                discounted = np.maximum(count - D[np.clip(count, 1, 3).astype(np.int64) - 1], 0.0)
                new = (discounted + freed * p) / safe
            else:
                new = count / safe
            p = np.where(found, new, p)                         # an unseen context keeps the shorter estimate
        return p

    def _context_keys(self, contexts: np.ndarray, levels: int) -> list[np.ndarray]:
        """contexts: (N, levels-1) ids, oldest first -> keys of their last m tokens, m = 0..levels-1."""
        V = len(self.vocab)
        keys = [np.zeros(len(contexts), dtype=np.int64)]
        for m in range(1, levels):
            keys.append(keys[-1] + contexts[:, -m] * V ** (m - 1))
        return keys

    def prob(self, token: Hashable, context: Sequence = ()) -> float:
        """P(token | context). Only the last order-1 context tokens matter; a shorter context gives the
        lower-order estimate (pass "<s>" tokens to mean the start of a sentence)."""
        self._check_fitted()
        self._check_tokens([token], "token")
        ctx = self._context_ids(context)
        p = self._probs(self._context_keys(ctx, ctx.shape[1] + 1), self._ids([token]))
        return float(p[0])

    def distribution(self, context: Sequence = ()) -> np.ndarray:
        """P(w | context) for every vocabulary token w, shape (V,), in the order of `self.vocab`; sums to 1."""
        self._check_fitted()
        V = len(self.vocab)
        ctx = np.repeat(self._context_ids(context), V, axis=0)   # (V, len(context))
        return self._probs(self._context_keys(ctx, ctx.shape[1] + 1), np.arange(V))

    def _context_ids(self, context: Sequence) -> np.ndarray:
        """Ids of the last order-1 tokens of `context` (all of them if it is shorter), shape (1, m)."""
        if not isinstance(context, (Sequence, np.ndarray)):
            raise ValueError(f"context must be a sequence of tokens, got {context!r}; e.g. ('the',) or ['<s>', 'the']")
        self._refuse_text_for_words(context, "context")
        tokens = list(context)
        self._check_tokens(tokens, "context")
        return self._ids(tokens[max(0, len(tokens) - (self.order - 1)):]).reshape(1, -1)

    def _refuse_text_for_words(self, tokens: object, name: str) -> None:
        """A str is read character by character: right for a character model only."""
        if isinstance(tokens, str) and not self.char_level:
            example = next((t for t in self.vocab if t not in SPECIALS), self.vocab[0])
            raise ValueError(f"{name} is a str ({tokens[:40]!r}), which would be read one character at a time, but "
                             f"this model's tokens are not characters (e.g. {example!r}); pass a list of tokens, "
                             f"e.g. {name}.split() or lmcourse.tokenizers.split_words({name})")

    def _check_tokens(self, tokens: Sequence, name: str) -> None:
        """Refuse what cannot be one of this model's tokens: unhashable values, a word or a line given to a
        character model, a str of several words given to a word model (sentences not split into tokens)."""
        try:
            unknown = set(tokens).difference(self.index)
        except TypeError:
            bad = next(t for t in tokens if not _hashable(t))
            raise ValueError(f"{name} holds {describe(bad)} ({bad!r}) where a token (a str, an int) belongs; "
                             "give a list of tokens, or a list of token lists for sentences") from None
        wrong = {t for t in unknown if isinstance(t, str) and (len(t) != 1 if self.char_level else _several_words(t))}
        if wrong:
            token = next(t for t in tokens if t in wrong)      # the first one, for a message that does not vary
            kind = "characters: score a str or a list of 1-character strings" if self.char_level else \
                "words: split text into tokens first (text.split() or lmcourse.tokenizers.split_words)"
            raise ValueError(f"{name} holds {token[:40]!r}, which is not one token of this model, whose tokens "
                             f"are {kind}")

    def log_probs(self, tokens: Iterable) -> np.ndarray:
        """ln P of every predicted token (with the same padding as fit), shape (n_predicted,)."""
        self._check_fitted()
        self._refuse_text_for_words(tokens, "tokens")
        sentences, is_stream = _as_sentences(tokens, "tokens")
        for sentence in sentences:
            if not isinstance(sentence, str):
                self._check_tokens(sentence, "tokens")
        ids, targets = self._padded_ids(sentences, is_stream)
        if not len(targets):
            raise ValueError("tokens is empty: there is nothing to score")
        n = self.order
        contexts = np.stack([ids[targets - m] for m in range(n - 1, 0, -1)], axis=1) if n > 1 \
            else np.zeros((len(targets), 0), dtype=np.int64)                         # (N, n-1)
        with np.errstate(divide="ignore"):
            return np.log(self._probs(self._context_keys(contexts, n), ids[targets]))

    def cross_entropy(self, tokens: Iterable) -> float:
        """Average -ln P(token | context) in nats/token over `tokens` (inf if any token has probability 0)."""
        return float(-self.log_probs(tokens).mean())

    def perplexity(self, tokens: Iterable) -> float:
        """exp(cross-entropy): the model is as unsure as a uniform choice among this many tokens."""
        return float(np.exp(self.cross_entropy(tokens)))

    # ----------------------------------------------------------------- export
    def to_arpa(self, path: str | Path) -> Path:
        """Write this Kneser-Ney model to `path` in the ARPA backoff format (KenLM, SRILM); returns the path.

        Interpolated Kneser-Ney is a backoff model in disguise, so the file is exact. For k = 1..order it
        lists every k-gram the model counted, plus every prefix of a longer listed n-gram (so each context
        has a line for its backoff weight), and every vocabulary token (<s>, </s>, <unk> included) as a
        unigram. Each line is

            log10 P(w | h)    h w    log10 gamma(h w)

        with P the model's interpolated probability and gamma(h w) the weight the model gives the lower order
        after the context h w (0.0, weight 1, where h w was never a context; the top order has none). A
        backoff reader, P(w | h) = P(h w) if listed else gamma(h) P(w | h[1:]), reproduces `prob` to the
        10 decimals written. Sentences start with order-1 <s>, as in `fit`: to reproduce `cross_entropy`,
        feed that many <s> before each sentence (KenLM's single <s> gives the first words shorter contexts).
        """
        self._check_fitted()
        if self.smoothing not in KNESER_NEY:
            raise ValueError(f"to_arpa writes Kneser-Ney models, got smoothing={self.smoothing!r}, which has no "
                             f"compact backoff form; fit NGramLM({self.order}, 'kneser_ney') to export")
        words = self._arpa_words()
        V, n = len(self.vocab), self.order
        grams = [np.arange(V)] * n                              # grams[j]: keys of the listed (j+1)-grams
        for j in range(n - 1, 0, -1):                           # counted (j+1)-grams and prefixes of longer ones
            longer = grams[j + 1] // V if j < n - 1 else np.zeros(0, dtype=np.int64)
            grams[j] = np.union1d(self.tables[j].keys, longer)
        lines = ["\\data\\", *(f"ngram {j + 1}={len(keys)}" for j, keys in enumerate(grams))]
        for j, keys in enumerate(grams):
            lines += ["", f"\\{j + 1}-grams:"]
            log_p = np.log10(self._probs([(keys // V) % V**m for m in range(j + 1)], keys % V))  # never 0 in KN
            digits = [(keys // V ** (j - i)) % V for i in range(j + 1)]   # token ids, oldest first
            text = [" ".join(words[i] for i in gram) for gram in zip(*(d.tolist() for d in digits))]
            if j == n - 1:
                lines += [f"{lp:.10f}\t{t}" for lp, t in zip(log_p.tolist(), text)]
            else:
                log_gamma = np.log10(self._backoff_weights(j + 1, keys))
                lines += [f"{lp:.10f}\t{t}\t{lb:.10f}" for lp, t, lb in zip(log_p.tolist(), text, log_gamma.tolist())]
        lines += ["", "\\end\\", ""]
        path = Path(path)
        path.write_text("\n".join(lines), encoding="utf-8")
        return path

    def _backoff_weights(self, j: int, context_keys: np.ndarray) -> np.ndarray:
        """gamma(h) = (D . N(h .)) / c(h .) for j-token contexts h, the weight of the lower order; 1 where unseen."""
        found, total, freed = self.tables[j].context(context_keys)
        return np.where(found, freed / np.where(found, total, 1.0), 1.0)

    def _arpa_words(self) -> list[str]:
        """Each vocabulary token as an ARPA word: its str, which must be unique and free of whitespace."""
        words = [str(t) for t in self.vocab]
        for token, word in zip(self.vocab, words):
            if word.split() != [word]:
                raise ValueError(f"token {token!r} cannot be an ARPA word (ARPA separates words by whitespace); "
                                 "fit on tokens without whitespace, e.g. text.replace(' ', '_')")
        if len(set(words)) < len(words):
            twins = sorted({w for w in words if words.count(w) > 1})
            raise ValueError(f"tokens {twins[:3]} print the same as other tokens (e.g. 1 and '1'), so the ARPA file "
                             "could not tell them apart; fit on tokens of one type")
        return words

    # ----------------------------------------------------------------- sampling
    def generate(self, n: int, context: Sequence = (), temperature: float = 1.0, seed: int | None = None,
                 greedy: bool = False) -> list:
        """`n` tokens sampled after `context` (padded with <s> on the left, so () starts a sentence).

        temperature rescales the distribution (p ** (1/temperature)); greedy=True takes the most likely
        token each step. <s> is never emitted; after </s> the context restarts a new sentence.
        """
        self._check_fitted()
        check_int("n", n, minimum=0)
        check_number("temperature", temperature, 0, low_open=True, fix="use greedy=True for argmax")
        if seed is not None:
            check_int("seed", seed, minimum=0)
        self._context_ids(context)
        rng = np.random.default_rng(seed)
        start = [BOS] * (self.order - 1)
        history, out = (start + list(context))[-(self.order - 1):] if self.order > 1 else [], []
        for _ in range(n):
            p = self.distribution(history).copy()
            p[self.index[BOS]] = 0.0
            if greedy:
                i = int(np.argmax(p))
            else:
                logits = np.log(np.maximum(p, 1e-300)) / temperature
                q = np.exp(logits - logits.max()) * (p > 0)
                i = int(rng.choice(len(q), p=q / q.sum()))
            token = self.vocab[i]
            out.append(token)
            if self.order > 1:
                history = start if token == EOS else (history + [token])[1:]
        return out


def _hashable(token: object) -> bool:
    try:
        hash(token)
    except TypeError:   # a list, or a tuple holding one
        return False
    return True


def _several_words(token: str) -> bool:
    return len(token.split()) > 1


def _modified_discounts(count_of_counts: np.ndarray, k: int) -> np.ndarray:
    """(D1, D2, D3+) from the k-grams' count-of-counts n1..n4 (Chen & Goodman 1998), shape (3,)."""
    n1, n2, n3, n4 = (float(c) for c in count_of_counts)
    fix = "fit on more text, lower the order, or use smoothing='kneser_ney' (one discount)"
    if min(n1, n2, n3) == 0:
        raise ValueError(f"modified Kneser-Ney needs {k}-grams seen once, twice and three times to estimate its "
                         f"discounts, got count-of-counts n1..n4 = {tuple(int(c) for c in count_of_counts)}; {fix}")
    y = n1 / (n1 + 2 * n2)
    discounts = np.array([1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3])
    if (discounts < 0).any():
        raise ValueError(f"modified Kneser-Ney estimated negative discounts {discounts.round(3).tolist()} for the "
                         f"{k}-grams (count-of-counts n1..n4 = {tuple(int(c) for c in count_of_counts)}); {fix}")
    return discounts


def _sort_key(token: Hashable) -> tuple[str, str]:
    return type(token).__name__, repr(token)


def _as_sentences(tokens: Iterable, name: str) -> tuple[list, bool]:
    """A flat stream becomes one 'sentence' (is_stream=True); a list of token lists stays as is."""
    if isinstance(tokens, str):
        return [tokens], True
    if isinstance(tokens, np.ndarray):
        return ([tokens.tolist()], True) if tokens.ndim == 1 else ([row.tolist() for row in tokens], False)
    try:
        items = list(tokens)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of tokens or a list of sentences, got {tokens!r}") from None
    if items and all(isinstance(s, (list, tuple, np.ndarray)) for s in items):
        return [list(s) for s in items], False
    return [items], True
