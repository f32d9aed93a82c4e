"""Masked-language-model pretraining (BERT): hide tokens, predict them from both sides.

Read top to bottom: `SpecialTokens` adds [PAD] [MASK] [CLS] [SEP] after a course tokenizer's ids;
`mask_tokens` is BERT's 80/10/10 rule; `MLMHead` and `MaskedLM` put a vocabulary classifier on an
`lmcourse.transformer.Encoder`; `mlm_batches` and `evaluate_mlm` feed and score it.

Why 80/10/10: the model picks 15% of positions to predict. If every picked token became [MASK], the
model would only learn good representations for [MASK] positions, a token that never occurs at
fine-tuning time. Leaving 10% unchanged and replacing 10% by a random token makes every input token
possibly a target, so the model must keep a useful representation of each one.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.checks import check_int, check_number, check_positive_ints, check_targets, check_token_ids, describe
from lmcourse.tokenizers import UNK
from lmcourse.transformer import Encoder, TransformerConfig

__all__ = ["IGNORE_INDEX", "MLMHead", "MaskedLM", "SpecialTokens", "evaluate_mlm", "mask_tokens", "mlm_batches",
           "never_picked"]

IGNORE_INDEX = -100  # the label of positions not predicted (torch's cross_entropy default ignore_index)


class SpecialTokens:
    """A course tokenizer plus BERT's special tokens, appended after its ids.

    ids 0..n_regular-1 are the tokenizer's (0 is <unk>); then [PAD], [MASK], [CLS], [SEP].
    encode(text) -> list of ids (no specials); `pair(a, b)` -> [CLS] a [SEP] b [SEP].
    """

    NAMES = ("[PAD]", "[MASK]", "[CLS]", "[SEP]")

    def __init__(self, tokenizer):
        if not all(hasattr(tokenizer, name) for name in ("vocab_size", "encode", "decode")):
            raise ValueError(f"tokenizer must be a course tokenizer (with vocab_size, encode and decode), got "
                             f"{describe(tokenizer)}; e.g. SpecialTokens(CharTokenizer.from_text(text))")
        self.tokenizer = tokenizer
        self.n_regular = tokenizer.vocab_size
        self.pad_id, self.mask_id, self.cls_id, self.sep_id = range(self.n_regular, self.n_regular + 4)

    @property
    def vocab_size(self) -> int:
        return self.n_regular + len(self.NAMES)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def token(self, i: int) -> str:
        """The text of one id, specials included."""
        check_int("i", i, 0, self.vocab_size - 1, fix="a token id of this vocabulary")
        if i >= self.n_regular:
            return self.NAMES[i - self.n_regular]
        return self.tokenizer.decode([i]) if i else UNK

    def tokens(self, ids) -> list[str]:
        return [self.token(int(i)) for i in ids]

    def batch(self, sequences: list[list[int]], max_len: int, cls: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Id lists -> ([CLS] + ids, cut to max_len, right-padded) (N, T) and key_padding (N, T) True = real."""
        if not sequences:
            raise ValueError("sequences is empty; give at least one list of ids")
        rows = [([self.cls_id] if cls else []) + list(s) for s in sequences]
        rows = [r[:check_int("max_len", max_len)] for r in rows]
        T = max(len(r) for r in rows)
        ids = torch.full((len(rows), T), self.pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        check_token_ids("sequences", ids, self.vocab_size)
        return ids, ids != self.pad_id


def mask_tokens(ids: torch.Tensor, mask_id: int, n_regular: int, mask_prob: float = 0.15,
                special: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking rule: pick each position with probability mask_prob; of the picked, 80% -> [MASK],
    10% -> a random regular token (id in [0, n_regular)), 10% unchanged.

    ids (B, T) long; special (B, T) bool marks positions never picked ([CLS], [PAD], ...; default: ids >= n_regular).
    Returns (inputs (B, T), labels (B, T)): labels hold the original id at picked positions, IGNORE_INDEX elsewhere.
    """
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long:
        raise ValueError(f"ids must be a long tensor, got {type(ids).__name__} {getattr(ids, 'dtype', '')}")
    check_number("mask_prob", mask_prob, 0, 1, low_open=True, high_open=True, fix="BERT uses 0.15")
    check_int("n_regular", n_regular)
    check_int("mask_id", mask_id, 0, fix="the id of [MASK], e.g. SpecialTokens.mask_id")
    if special is not None and (not isinstance(special, torch.Tensor) or special.dtype != torch.bool
                                or special.shape != ids.shape):
        raise ValueError(f"special must be a bool tensor shaped like ids {tuple(ids.shape)}, got {describe(special)}")
    special = ids >= n_regular if special is None else special
    rand = torch.rand(ids.shape, generator=generator, device="cpu").to(ids.device)
    picked = (rand < mask_prob) & ~special  # (B, T)
    labels = torch.where(picked, ids, torch.full_like(ids, IGNORE_INDEX))
    # one more uniform number splits the picked positions 80 / 10 / 10
    split = torch.rand(ids.shape, generator=generator, device="cpu").to(ids.device)
    to_mask = picked & (split < 0.8)
    to_random = picked & (split >= 0.8) & (split < 0.9)
    random_ids = torch.randint(n_regular, ids.shape, generator=generator, device="cpu").to(ids.device)
    inputs = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels


class MLMHead(nn.Module):
    """BERT's prediction head: dense + GELU + LayerNorm, then a linear map to the vocabulary,
    whose weight is tied to the token embedding (the same matrix reads tokens in and writes them out)."""

    def __init__(self, n_embd: int, embedding: nn.Embedding):
        super().__init__()
        check_int("n_embd", n_embd)
        if not isinstance(embedding, nn.Embedding) or embedding.embedding_dim != n_embd:
            raise ValueError(f"n_embd={n_embd} must be the width of the tied token embedding, got "
                             f"{getattr(embedding, 'embedding_dim', describe(embedding))}; pass the encoder's tok_emb "
                             "and its n_embd")
        self.dense = nn.Linear(n_embd, n_embd)
        self.norm = nn.LayerNorm(n_embd)
        self.embedding = embedding
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(F.gelu(self.dense(h))) @ self.embedding.weight.T + self.bias  # (..., vocab_size)


class MaskedLM(nn.Module):
    """An `Encoder` with an `MLMHead`.

    forward(inputs (B, T), labels=None, key_padding=None) -> (logits, loss). With labels, logits are
    only computed where a label is set: (N_picked, vocab_size), and loss is their mean cross-entropy
    (nats/token); without labels, logits are (B, T, vocab_size) and loss is None.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise ValueError(f"config must be a TransformerConfig, got {describe(config)}; "
                             "e.g. MaskedLM(TransformerConfig(vocab_size, max_len=64))")
        self.encoder = Encoder(config)
        self.head = MLMHead(config.n_embd, self.encoder.tok_emb)

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor | None = None,
                key_padding: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not isinstance(inputs, torch.Tensor) or inputs.is_floating_point() or inputs.dtype == torch.bool:
            check_token_ids("inputs", inputs)  # raises, naming what inputs are (the dtype check reads no values)
        h, _ = self.encoder(inputs, key_padding=key_padding)  # (B, T, n_embd)
        if labels is None:
            return self.head(h), None
        check_targets("labels", labels, inputs.shape)
        picked = labels != IGNORE_INDEX
        logits = self.head(h[picked])  # (N_picked, vocab): the other 85% need no vocabulary softmax
        try:
            return logits, F.cross_entropy(logits, labels[picked])
        except IndexError as exc:  # named only when it happens: a range check would cost a pass over the labels
            raise ValueError(f"labels hold ids outside the vocabulary [0, vocab_size={logits.size(-1)}) "
                             f"({IGNORE_INDEX} marks a position not predicted): {exc}") from exc


def _windows(ids: torch.Tensor, block_size: int, starts: torch.Tensor, cls_id: int | None) -> torch.Tensor:
    width = block_size - (cls_id is not None)
    x = ids[starts[:, None] + torch.arange(width)]  # (B, width)
    if cls_id is not None:
        x = torch.cat([torch.full((len(starts), 1), cls_id, dtype=torch.long), x], dim=1)
    return x  # (B, block_size)


def never_picked(x: torch.Tensor, specials: SpecialTokens, pick_unk: bool = False) -> torch.Tensor:
    """(B, T) bool: the special tokens, and <unk> (id 0) unless pick_unk: predicting "<unk>" teaches nothing."""
    if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.dtype == torch.bool:
        raise ValueError(f"x must be a tensor of token ids, got {describe(x)}")
    special = x >= specials.n_regular
    return special if pick_unk else special | (x == 0)


def mlm_batches(ids, specials: SpecialTokens, block_size: int, batch_size: int, mask_prob: float = 0.15,
                seed: int = 0, pick_unk: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (inputs (B, T), labels (B, T)) batches: random windows of `ids`, [CLS] first, masked anew each time
    (<unk> tokens are never targets unless pick_unk)."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.ndim != 1 or len(ids) <= block_size:
        raise ValueError(f"ids must be a 1-D token stream longer than block_size={block_size}, got shape {tuple(ids.shape)}")
    check_token_ids("ids", ids, specials.vocab_size)  # once here, not per batch
    check_int("block_size", block_size, minimum=2, fix="[CLS] and at least one token")
    check_int("batch_size", batch_size)
    check_number("mask_prob", mask_prob, 0, 1, low_open=True, high_open=True, fix="BERT uses 0.15")
    check_int("seed", seed, 0)
    generator = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(len(ids) - block_size, (batch_size,), generator=generator)
        x = _windows(ids, block_size, starts, specials.cls_id)
        yield mask_tokens(x, specials.mask_id, specials.n_regular, mask_prob, never_picked(x, specials, pick_unk),
                          generator=generator)


@torch.no_grad()
def _count_per_window(row: torch.Tensor, where: torch.Tensor | None, n_windows: int) -> list[int]:
    """Per window, how many positions (row (N,): each one's window) have `where` (N,) bool True (None: all)."""
    return torch.bincount(row if where is None else row[where], minlength=n_windows).tolist()


def evaluate_mlm(model: MaskedLM, ids, specials: SpecialTokens, block_size: int, n_windows: int = 256,
                 batch_size: int = 64, mask_prob: float = 0.15, seed: int = 1234,
                 pick_unk: bool = False, baseline_token: int | None = None,
                 unigram: torch.Tensor | None = None, per_window: bool = False) -> dict:
    """Masked-token loss (nats/token) and accuracy on fixed windows of held-out `ids` with a fixed masking
    (the same seed every call, so numbers compare across training).

    Returns {"loss", "accuracy", "n"} over every picked position (80 % shown as [MASK], 10 % as a random token,
    10 % unchanged: an unchanged one is easy to "predict"), and {"mask_loss", "mask_accuracy", "mask_n"} over the
    positions shown as [MASK] only, the honest fill-in score (mask_loss is nan if no position shows [MASK]). With
    baseline_token, also "baseline_accuracy" and "mask_baseline_accuracy": the accuracy of always guessing that
    token (e.g. the most frequent one) there. With unigram (V,), a distribution over the vocabulary (token counts
    of the training text, normalised), also "unigram_loss" and "mask_unigram_loss": the loss at the same picked
    positions (at the [MASK] positions only) of always predicting it, the floor a model that reads no context
    reaches. With per_window, also "window_mask_n" and "window_mask_hits" (and, with baseline_token,
    "window_mask_baseline_hits"): lists with one int per window, its [MASK] positions and the right guesses there,
    for an interval that resamples whole windows (the positions of one window are not independent)."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError(f"ids must be a non-empty 1-D stream of held-out token ids, got shape {tuple(ids.shape)}")
    check_token_ids("ids", ids, specials.vocab_size)
    check_int("block_size", block_size, 2, len(ids) - 1, fix="windows must fit inside ids")
    check_positive_ints(n_windows=n_windows, batch_size=batch_size)
    check_number("mask_prob", mask_prob, 0, 1, low_open=True, high_open=True, fix="BERT uses 0.15")
    check_int("seed", seed, 0)
    if baseline_token is not None:
        check_int("baseline_token", baseline_token, 0, specials.vocab_size - 1, fix="a token id, or None")
    if unigram is not None:
        unigram = torch.as_tensor(unigram, dtype=torch.float64)
        if unigram.shape != (specials.vocab_size,) or (unigram < 0).any() or abs(float(unigram.sum()) - 1) > 1e-6:
            raise ValueError(f"unigram must be a distribution over the {specials.vocab_size} tokens (non-negative, "
                             f"summing to 1), got shape {tuple(unigram.shape)}; pass counts / counts.sum()")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stride = max(1, (len(ids) - block_size) // n_windows)
    starts = torch.arange(0, len(ids) - block_size, stride)[:n_windows]
    generator = torch.Generator().manual_seed(seed)
    total_loss, correct, count, baseline, unigram_loss = 0.0, 0, 0, 0, 0.0
    mask_correct, mask_count, mask_baseline, mask_loss, mask_unigram_loss = 0, 0, 0, 0.0, 0.0
    windows = {"window_mask_n": [], "window_mask_hits": [], "window_mask_baseline_hits": []}
    for i in range(0, len(starts), batch_size):
        x = _windows(ids, block_size, starts[i:i + batch_size], specials.cls_id)
        inputs, labels = mask_tokens(x, specials.mask_id, specials.n_regular, mask_prob,
                                     never_picked(x, specials, pick_unk), generator=generator)
        logits, _ = model(inputs.to(device), labels.to(device))
        picked = labels != IGNORE_INDEX
        target = labels[picked].to(device)
        shown_mask = (inputs[picked] == specials.mask_id).to(device)  # (N_picked,) the [MASK] positions
        total_loss += F.cross_entropy(logits.float(), target, reduction="sum").item()
        if shown_mask.any():
            mask_loss += F.cross_entropy(logits[shown_mask].float(), target[shown_mask], reduction="sum").item()
        hit = logits.argmax(-1) == target
        correct += hit.sum().item()
        mask_correct += hit[shown_mask].sum().item()
        if baseline_token is not None:
            baseline += (target == baseline_token).sum().item()
            mask_baseline += (target[shown_mask] == baseline_token).sum().item()
        if unigram is not None:
            unigram_loss -= unigram[target.cpu()].log().sum().item()
            mask_unigram_loss -= unigram[target.cpu()[shown_mask.cpu()]].log().sum().item()
        count += len(target)
        mask_count += shown_mask.sum().item()
        if per_window:
            row = picked.nonzero()[:, 0].to(device)[shown_mask]  # the window of each [MASK] position, in logits' order
            windows["window_mask_n"] += _count_per_window(row, None, len(x))
            windows["window_mask_hits"] += _count_per_window(row, hit[shown_mask], len(x))
            if baseline_token is not None:
                windows["window_mask_baseline_hits"] += _count_per_window(row, target[shown_mask] == baseline_token,
                                                                          len(x))
    model.train(was_training)
    if count == 0:
        raise ValueError(f"no position of ids was masked in {len(starts)} windows (mask_prob={mask_prob}, "
                         f"n_windows={n_windows}): raise mask_prob or n_windows, or give ids with regular tokens "
                         "(special tokens and <unk> are never targets unless pick_unk=True)")
    result = {"loss": total_loss / count, "accuracy": correct / count, "n": count,
              "mask_loss": mask_loss / mask_count if mask_count else float("nan"),
              "mask_accuracy": mask_correct / max(mask_count, 1), "mask_n": mask_count}
    if baseline_token is not None:
        result["baseline_accuracy"] = baseline / count
        result["mask_baseline_accuracy"] = mask_baseline / max(mask_count, 1)
    if unigram is not None:
        result["unigram_loss"] = unigram_loss / count
        result["mask_unigram_loss"] = mask_unigram_loss / mask_count if mask_count else float("nan")
    if per_window:
        result |= {name: counts for name, counts in windows.items()
                   if baseline_token is not None or name != "window_mask_baseline_hits"}
    return result
