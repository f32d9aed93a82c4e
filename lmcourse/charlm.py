"""A character-level LSTM language model and an LSTM sentence classifier.

``CharLSTM`` uses ``torch.nn.LSTM`` (the fused cuDNN kernel on a GPU) by default, or the
hand-written ``lmcourse.rnn.LSTM`` with ``impl="ours"``; the two share parameter names, so the
weights of one load into the other. ``cell="gru"`` or ``cell="rnn"`` (Elman, tanh) puts the other
recurrent cells of chapter 03 in the same model, for comparisons at the same recipe.
Text is drawn from it with `lmcourse.generate.generate`, the sampler of every model of the course: the
carried state plays the part of the GPT's key/value cache (`StateCache`), so each new character costs one step.
"""
from __future__ import annotations

import torch
from torch import nn

from lmcourse import rnn
from lmcourse.checks import check_int, check_number, check_positive_ints, check_targets, check_token_ids, describe

__all__ = ["CharLSTM", "StateCache", "LSTMClassifier", "lm_loss", "TBPTTLoss"]


CELLS = {"lstm": (nn.LSTM, rnn.LSTM), "gru": (nn.GRU, rnn.GRU), "rnn": (nn.RNN, rnn.RNN)}  # torch's, ours


def _make_recurrent(impl: str, input_size: int, hidden_size: int, num_layers: int, dropout: float,
               cell: str = "lstm") -> nn.Module:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)} ('rnn' is the Elman RNN with tanh), got {cell!r}")
    dropout = dropout if num_layers > 1 else 0.0
    if impl == "torch":
        return CELLS[cell][0](input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
    if impl == "ours":
        return CELLS[cell][1](input_size, hidden_size, num_layers, dropout=dropout)
    raise ValueError(f"impl must be 'torch' (nn.LSTM, cuDNN on GPU) or 'ours' (lmcourse.rnn.LSTM), got {impl!r}")


def _embed(embed: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
    """ids (B, T) -> embed(ids) (B, T, E), naming the mistake when ids are not (batch, time) token ids.

    The shape is checked on every call (free); the range of the ids only when the lookup fails, so a
    training step does not pay for a pass over its ids.
    """
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        check_token_ids("ids", ids, embed.num_embeddings, ndim=2)  # raises, naming what ids are
    if ids.numel() == 0:
        raise ValueError(f"ids is empty, shape {tuple(ids.shape)}; pass at least one sequence of one token")
    try:
        return embed(ids)
    except (IndexError, RuntimeError):  # ids outside the vocabulary or not integers: name the mistake
        check_token_ids("ids", ids, embed.num_embeddings, ndim=2)
        raise


def _unpack(batch, names: tuple[str, ...]) -> tuple:
    """batch as a tuple of len(names) items, or a ValueError naming what it is instead."""
    if not isinstance(batch, (tuple, list)) or len(batch) != len(names):
        got = f"{len(batch)} items" if isinstance(batch, (tuple, list)) else describe(batch)
        raise ValueError(f"batch must be a tuple ({', '.join(names)}), got {got}")
    return tuple(batch)


def _next_token_loss(logits: torch.Tensor, targets: torch.Tensor, name: str = "y") -> torch.Tensor:
    """Mean cross-entropy (nats) of logits (B, T, V) against integer targets (B, T)."""
    check_targets(name, targets, logits.shape[:2])
    try:
        return nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
    except IndexError as exc:  # named only when it happens: a range check would cost a pass over the targets
        raise ValueError(f"{name} holds ids outside the vocabulary [0, vocab_size={logits.size(-1)}); encode the "
                         f"text with the tokenizer the model was built for ({exc})") from exc


class StateCache:
    """The carried LSTM state in the role of `lmcourse.generate`'s key/value cache.

    An LSTM needs no growing cache: (h, c) (L, B, H) sums up every token read so far, so each generation
    step feeds only the new token. `length` counts the tokens read (generate feeds ids[:, length:]).
    """

    def __init__(self):
        self.length, self.state = 0, None

    def reorder(self, index: torch.Tensor) -> None:
        """Beam search moved rows: row i now continues what was row index[i]."""
        if self.state is not None:
            self.state = tuple(s[:, index] for s in self.state)


class CharLSTM(nn.Module):
    """Embedding -> LSTM stack -> linear head.  ids (B, T) -> logits (B, T, V).

    `lmcourse.generate.generate(model, ...)` drives it with its state carried (`new_kv_cache`): one new
    character per step, with every option of generate (top-k, top-p, beam search, ...).
    `cell="gru"` or `"rnn"` (Elman) swaps the recurrent cell (the module keeps the name `lstm`, so the
    LSTM's saved weights keep their keys); the state is then `(h,)` instead of `(h, c)`.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 256, num_layers: int = 1,
                 dropout: float = 0.0, impl: str = "torch", cell: str = "lstm"):
        super().__init__()
        check_positive_ints(vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden_size, num_layers=num_layers)
        check_number("dropout", dropout, 0, 1, high_open=True)
        self.vocab_size, self.impl, self.cell = vocab_size, impl, cell
        self.num_layers, self.hidden_size = num_layers, hidden_size
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = _make_recurrent(impl, embed_dim, hidden_size, num_layers, dropout, cell)
        self.head = nn.Linear(hidden_size, vocab_size)

    def _check_state(self, state, batch: int) -> None:
        """state: None, or (h, c) for an LSTM and (h,) for a GRU or RNN, each (num_layers, batch, hidden_size)."""
        if state is None:
            return
        shape, dtype = (self.num_layers, batch, self.hidden_size), self.head.weight.dtype

        def wrong(s) -> bool:  # under autocast a half-precision state is intended
            return (not isinstance(s, torch.Tensor) or tuple(s.shape) != shape
                    or (s.dtype != dtype and not torch.is_autocast_enabled(s.device.type)))

        what = "a pair (h, c)" if self.cell == "lstm" else "a 1-tuple (h,)"
        if not isinstance(state, (tuple, list)) or len(state) != len(self._state_names) or any(map(wrong, state)):
            got = ", ".join(map(describe, state)) if isinstance(state, (tuple, list)) else describe(state)
            raise ValueError(f"state must be {what} of {dtype} tensors of shape (num_layers={shape[0]}, "
                             f"batch={batch}, hidden_size={shape[2]}), got {got}; pass the state returned by "
                             "the previous call with return_state=True, or None")

    @property
    def _state_names(self) -> tuple[str, ...]:
        return ("h", "c") if self.cell == "lstm" else ("h",)

    def new_kv_cache(self, max_len: int | None = None) -> StateCache:
        """An empty StateCache for `forward(ids, kv_cache=...)`, as `lmcourse.generate` asks of a model.

        max_len is accepted for generate's sake and unused: the state has the same size at every length.
        """
        return StateCache()

    def forward(self, ids: torch.Tensor, state=None, return_state: bool = False, kv_cache: StateCache | None = None):
        """ids (B, T) int64 -> logits (B, T, V); with return_state also the final (h, c) (L, B, H) ((h,) for GRU/RNN).

        kv_cache: a StateCache to start from and update (the state then comes from it, not from `state`).
        """
        x = _embed(self.embed, ids)  # (B, T, E)
        if kv_cache is not None:
            if state is not None:
                raise ValueError("pass state or kv_cache, not both: the cache carries the state")
            state = kv_cache.state
            if state is not None and state[0].shape[1] != ids.shape[0]:
                raise ValueError(f"kv_cache carries the state of a batch of {state[0].shape[1]} sequences, got ids "
                                 f"of a batch of {ids.shape[0]}; start a fresh cache (model.new_kv_cache()) per batch")
        self._check_state(state, ids.shape[0])
        if self.cell == "lstm":
            out, state = self.lstm(x, state)  # (B, T, H)
        else:                                 # GRU and RNN take and return h alone
            out, h = self.lstm(x, None if state is None else state[0])
            state = (h,)
        if kv_cache is not None:
            kv_cache.state, kv_cache.length = state, kv_cache.length + ids.shape[1]
        logits = self.head(out)  # (B, T, V)
        return (logits, state) if return_state else logits


class LSTMClassifier(nn.Module):
    """The classic keras example: embedding -> LSTM -> dense softmax over classes.

    ids (B, T) with ``pad_id`` padding on the right, lengths (B,) -> logits (B, num_classes), read
    from the hidden state at each sequence's last real token.
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, embed_dim: int = 32, hidden_size: int = 64,
                 impl: str = "torch", pad_id: int = 0):
        super().__init__()
        check_int("num_classes", num_classes, minimum=2)
        check_positive_ints(vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden_size)
        check_int("pad_id", pad_id, minimum=-vocab_size, maximum=vocab_size - 1, fix="the padding token's id")
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.lstm = _make_recurrent(impl, embed_dim, hidden_size, 1, 0.0)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T), lengths (B,) -> logits (B, C)."""
        x = _embed(self.embed, ids)  # (B, T, E)
        if not isinstance(lengths, torch.Tensor) or lengths.shape != (ids.shape[0],):
            raise ValueError(f"ids must be (batch, time) and lengths (batch,), got {tuple(ids.shape)} "
                             f"and {describe(lengths)}; OrderTask.batch gives both")
        if int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]:
            raise ValueError(f"lengths must be in [1, {ids.shape[1]}], got [{int(lengths.min())}, "
                             f"{int(lengths.max())}]")
        # padded steps come after the last real one, so the forward LSTM's output there is unaffected by them
        out, _ = self.lstm(x)  # (B, T, H)
        last = out[torch.arange(ids.shape[0], device=ids.device), lengths.to(ids.device) - 1]  # (B, H)
        return self.head(last)  # (B, C)


def lm_loss(model: CharLSTM, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Next-character cross-entropy (nats) of a batch (x (B, T), y (B, T)); the `loss_fn` for `lmcourse.train.train`."""
    x, y = _unpack(batch, ("x", "y"))
    return _next_token_loss(model(x), y)  # logits (B, T, V)


class TBPTTLoss:
    """Next-character loss with truncated backpropagation through time, the `loss_fn` for `lmcourse.train.train`.

    Feed it the batches of `lmcourse.sequences.consecutive_windows` (x (B, T), y (B, T), first): the final
    LSTM state of one window is the initial state of the next, detached, so information flows forward
    across windows while gradients stop at window borders. The state restarts at zero when `first` is True.
    """

    def __init__(self):
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, model: CharLSTM, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y, first = _unpack(batch, ("x", "y", "first"))
        if bool(first) or self.state is None or self.state[0].shape[1] != x.shape[0]:
            self.state = None
        logits, state = model(x, self.state, return_state=True)  # (B, T, V)
        self.state = tuple(s.detach() for s in state)  # carry the values, cut the gradient
        return _next_token_loss(logits, y)
