"""Token streams for language models: training windows, and cross-entropy on held-out text.

Every language model of the course is scored by `cross_entropy`, on the same validation text,
so its nats/char numbers compare across chapters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Dataset

from lmcourse.checks import check_int, check_positive_ints, check_token_ids


def _as_ids(ids) -> torch.Tensor:
    if isinstance(ids, str):
        raise ValueError("ids must be token ids, got a str; encode the text first, e.g. tokenizer.encode(text)")
    ids = torch.as_tensor(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D sequence of token ids, got shape {tuple(ids.shape)}")
    if len(ids) == 0:
        raise ValueError("ids is empty; pass a 1-D sequence of token ids (encode the text with the tokenizer)")
    return check_token_ids("ids", ids)


def random_windows(ids, block_size: int, batch_size: int, seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches of random windows: inputs x (B, T) and next-token targets y (B, T), y = x shifted by one."""
    ids = _as_ids(ids)
    check_positive_ints(block_size=block_size, batch_size=batch_size)
    if len(ids) <= block_size:
        raise ValueError(f"ids has {len(ids)} tokens; need more than block_size={block_size}")
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    offsets = torch.arange(block_size)
    while True:
        starts = torch.randint(len(ids) - block_size, (batch_size,), generator=generator)
        windows = starts[:, None] + offsets  # (B, T)
        yield ids[windows], ids[windows + 1]


def consecutive_windows(ids, block_size: int, batch_size: int
                        ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Endless batches for truncated backpropagation through time: row b of batch k+1 continues row b of batch k.

    The stream is cut into `batch_size` equal parts, read side by side, `block_size` tokens at a time;
    after the last full window of the parts it starts again from their beginnings.
    Yields x (B, T), y (B, T) (x shifted by one) and `first` (a 0-d bool tensor: True when the windows
    start the parts again, so a carried recurrent state must be reset).
    """
    ids = _as_ids(ids)
    check_positive_ints(block_size=block_size, batch_size=batch_size)
    part = (len(ids) - 1) // batch_size
    n_windows = part // block_size
    if n_windows < 1:
        raise ValueError(f"ids has {len(ids)} tokens: too few for {batch_size} parts of at least "
                         f"block_size={block_size} tokens each; lower batch_size or block_size")
    rows = torch.arange(batch_size)[:, None] * part  # (B, 1) start of each part
    offsets = torch.arange(block_size)
    while True:
        for k in range(n_windows):
            index = rows + k * block_size + offsets  # (B, T)
            yield ids[index], ids[index + 1], torch.tensor(k == 0)


class Windows(Dataset):
    """Consecutive, non-overlapping windows of a token stream as a Dataset: item i is (x (T,), y (T,)).

    For a DataLoader, e.g. with a DistributedSampler; `random_windows` is the endless alternative.
    """

    def __init__(self, ids, block_size: int):
        self.ids = _as_ids(ids)
        check_int("block_size", block_size, 1, len(self.ids) - 1)
        self.block_size = block_size

    def __len__(self) -> int:
        return (len(self.ids) - 1) // self.block_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"window index {i} is out of range: there are {len(self)} windows")
        start = i * self.block_size
        return self.ids[start:start + self.block_size], self.ids[start + 1:start + self.block_size + 1]


@torch.no_grad()
def token_log_probs(logits_fn: Callable[[torch.Tensor], torch.Tensor], ids, block_size: int,
                    batch_size: int = 32, device: torch.device | str = "cpu", max_tokens: int | None = None,
                    stride: int | None = None) -> torch.Tensor:
    """ln p(token | the tokens before it in its window) for every token of held-out `ids` after the first: (N - 1,).

    logits_fn: x (B, T) -> logits (B, T, vocab). `ids` is read in windows of `block_size` that start every
    `stride` tokens (default: block_size, windows side by side, so a token at position t of a window sees the
    t tokens before it). With stride < block_size the windows overlap and each token is scored in the first
    window where it is new: every token but those of the first window sees at least block_size - stride tokens
    before it (the sliding window with which a fixed-length model is usually scored), at block_size / stride
    times the cost. max_tokens: score only the first max_tokens tokens (fast mode).
    """
    ids = _as_ids(ids)
    check_positive_ints(block_size=block_size, batch_size=batch_size)
    stride = block_size if stride is None else check_int("stride", stride, 1, block_size,
                                                         fix="tokens between window starts, at most block_size")
    if max_tokens is not None:
        ids = ids[: check_int("max_tokens", max_tokens, fix="or None to score all of ids") + 1]
    if len(ids) < 2:
        raise ValueError("ids needs at least two tokens to score")
    windows = []                                    # (start, end, first new target): x = ids[start:end]
    start, scored = 0, 0                            # targets ids[1..scored] are scored already
    while scored < len(ids) - 1:
        end = min(start + block_size, len(ids) - 1)
        windows.append((start, end, scored - start))
        start, scored = start + stride, end
    scores = []
    for first in range(0, len(windows), batch_size):
        batch = windows[first:first + batch_size]
        xs = [ids[a:b] for a, b, _ in batch]
        length = max(len(x) for x in xs)
        x = torch.stack([torch.nn.functional.pad(t, (0, length - len(t))) for t in xs]).to(device)
        logits = logits_fn(x).float()
        if logits.ndim != 3 or logits.shape[:2] != x.shape:
            raise ValueError(f"logits_fn must return logits of shape (batch, T, vocab) = ({x.shape[0]}, {x.shape[1]}, "
                             f"vocab), got {tuple(logits.shape)}")
        ys = [ids[a + 1:b + 1] for a, b, _ in batch]
        largest = max(int(y.max()) for y in ys)
        if largest >= logits.size(-1):
            raise ValueError(f"ids hold token id {largest}, outside the vocabulary of the logits ({logits.size(-1)} "
                             "tokens): score with the tokenizer the model was trained with")
        log_p = torch.log_softmax(logits, dim=-1).cpu()                                   # (B, T, vocab)
        scores += [log_p[i, new:len(y)].gather(1, y[new:, None])[:, 0]
                   for i, ((_, _, new), y) in enumerate(zip(batch, ys))]
    return torch.cat(scores)


def cross_entropy(logits_fn: Callable[[torch.Tensor], torch.Tensor], ids, block_size: int,
                  batch_size: int = 32, device: torch.device | str = "cpu", max_tokens: int | None = None,
                  stride: int | None = None) -> float:
    """Average -log p(next token) in nats over held-out `ids`: the mean of -`token_log_probs` (same arguments).

    Every token after the first is scored once; by default a token at position t of a window sees the t tokens
    before it in that window (`stride` < block_size: at least block_size - stride, see `token_log_probs`).
    """
    return -token_log_probs(logits_fn, ids, block_size, batch_size, device, max_tokens, stride).double().mean().item()
