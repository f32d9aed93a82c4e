"""Turning text into integer ids and back: characters or words, with an `<unk>` for the unseen."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

UNK = "<unk>"
_WORD = re.compile(r"[\w]+(?:['’][\w]+)*|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z0-9])")


def split_words(text: str, lowercase: bool = True) -> list[str]:
    """Words and punctuation marks: "Don't stop." -> ["don't", "stop", "."]."""
    return _WORD.findall(text.lower() if lowercase else text)


def split_sentences(text: str) -> list[str]:
    """Sentences, split after . ! ? when a capital, digit or quote follows; one line never spans two."""
    return [s.strip() for line in text.splitlines() for s in _SENTENCE_END.split(line) if s.strip()]


class Vocabulary:
    """A fixed list of tokens; id 0 is `<unk>`, the id of every token not in the list."""

    def __init__(self, tokens: Iterable[str]):
        self.itos = [UNK] + [t for t in dict.fromkeys(tokens) if t != UNK]
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def from_counts(cls, counts: Counter, min_count: int = 1, max_size: int | None = None) -> Vocabulary:
        """Tokens seen at least `min_count` times, most frequent first (ties alphabetical)."""
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if not counts:
            raise ValueError("cannot build a vocabulary from an empty text; give some training text")
        kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        return cls(kept[:max_size] if max_size is not None else kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def ids(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi.get(t, 0) for t in tokens]

    def tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]


class CharTokenizer:
    """Characters as tokens. Characters rarer than `min_count` in the training text become `<unk>`."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab

    @classmethod
    def from_text(cls, text: str, min_count: int = 1) -> CharTokenizer:
        return cls(Vocabulary.from_counts(Counter(text), min_count))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        return self.vocab.ids(text)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to text; `<unk>` shows as the replacement character '\ufffd'."""
        return "".join("\ufffd" if i == 0 else self.vocab.itos[i] for i in ids)


class WordTokenizer:
    """Lower-cased words and punctuation (see `split_words`); words rarer than `min_count` become `<unk>`."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab

    @classmethod
    def from_text(cls, text: str, min_count: int = 1, max_size: int | None = None) -> WordTokenizer:
        return cls(Vocabulary.from_counts(Counter(split_words(text)), min_count, max_size))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        return self.vocab.ids(split_words(text))

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.vocab.tokens(ids))


class BPETokenizer:
    """Byte-level byte-pair encoding (GPT-2's scheme), trained with Hugging Face `tokenizers`.

    Frequent byte sequences become one token ("the", " city", "ism"): several characters per token,
    and no text is ever out of vocabulary. Id 0 is `<unk>` like the other course tokenizers, reserved
    but never produced (every byte has a token).
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @classmethod
    def from_text(cls, text: str, vocab_size: int = 1024) -> BPETokenizer:
        """Learn `vocab_size` tokens (the 256 bytes, `<unk>` and the merges) from `text`, one line at a time."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if not text.strip():
            raise ValueError("cannot train a BPE tokenizer on an empty text; give some training text")
        if vocab_size < 257 + 1:
            raise ValueError(f"vocab_size must be > 257 (the 256 bytes and <unk>), got {vocab_size}")
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
        return self.tokenizer.encode(text).ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode(list(ids))
