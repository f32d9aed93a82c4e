"""Turning text into integer ids and back: characters or words, with an `<unk>` for the unseen."""

from __future__ import annotations

import functools
import numbers
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

from lmcourse.checks import check_int, describe

UNK = "<unk>"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z0-9])")


def _check_text(text: str) -> str:
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {describe(text)}; join a list of lines with '\\n'.join(lines)")
    return text


@functools.cache
def _word_pattern() -> re.Pattern:
    """A word: letters and digits with the combining marks that follow them (accents, vowel signs), and inner
    apostrophes; else one punctuation mark. Python's \\w has no combining marks, hence the explicit class
    (built once, on first use: a scan of all code points takes ~0.1 s)."""
    marks = [c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)).startswith("M")]
    ranges, first = [], marks[0]
    for mark, after in zip(marks, marks[1:] + [-1]):
        if after != mark + 1:                      # a run of consecutive code points ends here
            ranges.append(f"{chr(first)}-{chr(mark)}")
            first = after
    letter = rf"\w+(?:[{''.join(ranges)}]+\w*)*"
    return re.compile(rf"{letter}(?:['’]{letter})*|[^\w\s]")


def split_words(text: str, lowercase: bool = True) -> list[str]:
    """Words and punctuation marks: "Don't stop." -> ["don't", "stop", "."].

    The text is first put in Unicode NFC form, so an accent typed as a separate combining character
    ("e\\u0301cole") gives the same word as the precomposed one ("\\u00e9cole"): ["\\u00e9cole"].
    """
    text = unicodedata.normalize("NFC", _check_text(text))
    return _word_pattern().findall(text.lower() if lowercase else text)


def split_sentences(text: str) -> list[str]:
    """Sentences, split after . ! ? when a capital, digit or quote follows; one line never spans two."""
    return [s.strip() for line in _check_text(text).splitlines() for s in _SENTENCE_END.split(line) if s.strip()]


class Vocabulary:
    """A fixed list of tokens; id 0 is `<unk>`, the id of every token not in the list."""

    def __init__(self, tokens: Iterable[str]):
        tokens = list(tokens)
        for t in tokens:
            if not isinstance(t, str):
                raise ValueError(f"tokens must all be strs, got {t!r}; e.g. Vocabulary(['a', 'b'])")
        repeated = [t for t, n in Counter(tokens).items() if n > 1]
        if repeated:
            raise ValueError(f"tokens must be distinct, got {repeated[0]!r} more than once; give each token once, "
                             "e.g. list(dict.fromkeys(tokens))")
        self.itos = [UNK] + [t for t in tokens if t != UNK]
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def from_counts(cls, counts: Counter, min_count: int = 1, max_size: int | None = None) -> Vocabulary:
        """Tokens seen at least `min_count` times, most frequent first (ties alphabetical)."""
        if not isinstance(counts, Mapping):
            raise ValueError(f"counts must map each token to its count, got {describe(counts)}; e.g. Counter(tokens)")
        check_int("min_count", min_count)
        if max_size is not None:
            check_int("max_size", max_size, fix="the largest vocabulary to keep, or None for all")
        if not counts:
            raise ValueError("cannot build a vocabulary from an empty text; give some training text")
        kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        if not kept:
            top, n = counts.most_common(1)[0]
            raise ValueError(f"min_count={min_count} keeps no token, so every token would be <unk>: the most "
                             f"frequent, {top!r}, appears {n} times; use min_count <= {n}")
        return cls(kept[:max_size] if max_size is not None else kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def ids(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi.get(t, 0) for t in tokens]

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """The token of each id; ValueError naming an id that is not an int in [0, len(self))."""
        return [self.itos[i] for i in _check_ids(ids, len(self))]


def _check_ids(ids: Iterable[int], vocab_size: int) -> list[int]:
    """`ids` (a list, an array or a tensor) as plain ints, after checking each is an int in [0, vocab_size)."""
    try:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)  # a tensor or an array: plain ints
    except TypeError:
        raise ValueError(f"ids must be a sequence of token ids, got {describe(ids)}; e.g. tokenizer.decode([5, 2])") \
            from None
    bad = [i for i in ids if not isinstance(i, numbers.Integral) or isinstance(i, bool) or not 0 <= i < vocab_size]
    if bad:
        raise ValueError(f"ids {bad[:5]} are not token ids of this vocabulary: ids must be ints in "
                         f"[0, vocab_size={vocab_size}); decode ids made by this tokenizer")
    return ids


class CharTokenizer:
    """Characters as tokens. Characters rarer than `min_count` in the training text become `<unk>`."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab

    @classmethod
    def from_text(cls, text: str, min_count: int = 1) -> CharTokenizer:
        _check_text(text)
        return cls(Vocabulary.from_counts(Counter(text), min_count))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        return self.vocab.ids(_check_text(text))

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to text; `<unk>` shows as the replacement character '\ufffd'."""
        return "".join("\ufffd" if t == UNK else t for t in self.vocab.tokens(ids))


class WordTokenizer:
    """Lower-cased words and punctuation (see `split_words`); words rarer than `min_count` become `<unk>`."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab

    @classmethod
    def from_text(cls, text: str, min_count: int = 1, max_size: int | None = None) -> WordTokenizer:
        _check_text(text)
        return cls(Vocabulary.from_counts(Counter(split_words(text)), min_count, max_size))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        return self.vocab.ids(split_words(_check_text(text)))

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.vocab.tokens(ids))


class BPETokenizer:
    """Byte-level byte-pair encoding (GPT-2's scheme), trained with Hugging Face `tokenizers`.

    Frequent byte sequences become one token ("the", " city", "ism"): several characters per token,
    and no text is ever out of vocabulary. Id 0 is `<unk>` like the other course tokenizers, reserved
    but never produced (every byte has a token): the text "<unk>" is encoded as its bytes like any other
    text, and decode shows id 0 as the replacement character '\ufffd', as CharTokenizer does.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        # Hugging Face matches special tokens inside the text by default: "<unk>" typed in a text would
        # become id 0 and vanish on decode. Encode it as the bytes it is.
        tokenizer.encode_special_tokens = True

    @classmethod
    def from_text(cls, text: str, vocab_size: int = 1024) -> BPETokenizer:
        """Learn `vocab_size` tokens (the 256 bytes, `<unk>` and the merges) from `text`, one line at a time."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if not _check_text(text).strip():
            raise ValueError("cannot train a BPE tokenizer on an empty text; give some training text")
        check_int("vocab_size", vocab_size, minimum=258, fix="more than the 256 bytes and <unk>")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, special_tokens=[UNK],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(text.split("\n"), trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(_check_text(text)).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to text; the reserved id 0 (`<unk>`) shows as '\ufffd'."""
        ids = _check_ids(ids, self.vocab_size)
        pieces, start = [], 0
        for end in [i for i, token_id in enumerate(ids) if token_id == 0] + [len(ids)]:
            pieces.append(self.tokenizer.decode(ids[start:end]))
            start = end + 1
        return "\ufffd".join(pieces)
