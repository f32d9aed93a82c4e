"""Sentence pairs: a BERT-style input "[CLS] A [SEP] B [SEP]" read as two sentences, as bertviz does.

`sentence_b_start` is the position of B's first token. A filter keeps the attention of one sentence's
queries to one sentence's keys: "A->B" is what the tokens of A read in B. The head view draws only those
lines (the other tokens grey); the model view crops each map to that block.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PAIRS", "check_pair", "pair_mask", "pair_slices"]

PAIRS = ("all", "A->A", "B->B", "A->B", "B->A")


def check_pair(pair: str, sentence_b_start: int | None, n_tokens: int, self_attention: bool = True) -> None:
    """Raise ValueError unless `pair` is one of PAIRS and sentence_b_start splits n_tokens into two sentences."""
    if pair not in PAIRS:
        raise ValueError(f"pair must be one of {PAIRS}, got {pair!r}")
    if sentence_b_start is None:
        if pair != "all":
            raise ValueError(f"pair={pair!r} needs sentence_b_start=, the position of sentence B's first token")
        return
    if not self_attention:
        raise ValueError("sentence_b_start splits one token sequence into two sentences; it needs self-attention "
                         "(the same query and key tokens)")
    if not isinstance(sentence_b_start, (int, np.integer)) or not 0 < sentence_b_start < n_tokens:
        raise ValueError(f"sentence_b_start={sentence_b_start!r} must be a position inside the {n_tokens} tokens "
                         f"(1..{n_tokens - 1}), where sentence B begins")


def pair_slices(pair: str, sentence_b_start: int | None, n_tokens: int) -> tuple[slice, slice]:
    """The (query rows, key columns) of the block `pair` keeps, as slices of 0..n_tokens."""
    a, b = slice(0, sentence_b_start), slice(sentence_b_start, n_tokens)
    everything = slice(0, n_tokens)
    return {"all": (everything, everything), "A->A": (a, a), "B->B": (b, b), "A->B": (a, b), "B->A": (b, a)}[pair]


def pair_mask(pair: str, sentence_b_start: int | None, n_tokens: int) -> np.ndarray:
    """(n_tokens, n_tokens) bool: True where query row and key column are in the block `pair` keeps."""
    rows, cols = pair_slices(pair, sentence_b_start, n_tokens)
    mask = np.zeros((n_tokens, n_tokens), dtype=bool)
    mask[rows, cols] = True
    return mask
