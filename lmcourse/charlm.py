"""A character-level LSTM language model and an LSTM sentence classifier.

``CharLSTM`` uses ``torch.nn.LSTM`` (the fused cuDNN kernel on a GPU) by default, or the
hand-written ``lmcourse.rnn.LSTM`` with ``impl="ours"``; the two share parameter names, so the
weights of one load into the other.
"""
from __future__ import annotations

import torch
from torch import nn

from lmcourse import rnn
from lmcourse.checks import check_int, check_number, check_positive_ints, check_targets, check_token_ids

__all__ = ["CharLSTM", "LSTMClassifier", "sample", "lm_loss", "TBPTTLoss"]


def _make_lstm(impl: str, input_size: int, hidden_size: int, num_layers: int, dropout: float) -> nn.Module:
    if impl == "torch":
        return nn.LSTM(input_size, hidden_size, num_layers, batch_first=True,
                       dropout=dropout if num_layers > 1 else 0.0)
    if impl == "ours":
        return rnn.LSTM(input_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0)
    raise ValueError(f"impl must be 'torch' (nn.LSTM, cuDNN on GPU) or 'ours' (lmcourse.rnn.LSTM), got {impl!r}")


class CharLSTM(nn.Module):
    """Embedding -> LSTM stack -> linear head.  ids (B, T) -> logits (B, T, V)."""

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 256, num_layers: int = 1,
                 dropout: float = 0.0, impl: str = "torch"):
        super().__init__()
        check_positive_ints(vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden_size, num_layers=num_layers)
        check_number("dropout", dropout, 0, 1, high_open=True)
        self.vocab_size, self.impl = vocab_size, impl
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = _make_lstm(impl, embed_dim, hidden_size, num_layers, dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, state=None, return_state: bool = False):
        """ids (B, T) int64 -> logits (B, T, V); with return_state also the final (h, c) (L, B, H)."""
        ids = check_token_ids("ids", ids, self.vocab_size, ndim=2)
        out, state = self.lstm(self.embed(ids), state)  # (B, T, H)
        logits = self.head(out)  # (B, T, V)
        return (logits, state) if return_state else logits


@torch.no_grad()
def sample(model: CharLSTM, prompt_ids: list[int], n: int, temperature: float = 1.0,
           generator: torch.Generator | None = None) -> list[int]:
    """Continue ``prompt_ids`` by ``n`` ids, carrying the LSTM state (O(1) work per new character).

    temperature 0 is greedy; higher flattens the distribution.
    """
    check_number("temperature", temperature, 0, fix="0 is greedy")
    if not len(prompt_ids):
        raise ValueError("prompt_ids must hold at least one id")
    check_int("n", n, minimum=0)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.tensor([prompt_ids], device=device)
    logits, state = model(x, return_state=True)
    out = []
    for _ in range(n):
        last = logits[0, -1].float()
        if temperature == 0:
            nxt = int(last.argmax())
        else:
            probs = torch.softmax(last / temperature, dim=-1)
            nxt = int(torch.multinomial(probs.cpu(), 1, generator=generator))
        out.append(nxt)
        logits, state = model(torch.tensor([[nxt]], device=device), state, return_state=True)
    model.train(was_training)
    return out


class LSTMClassifier(nn.Module):
    """The classic keras example: embedding -> LSTM -> dense softmax over classes.

    ids (B, T) with ``pad_id`` padding on the right, lengths (B,) -> logits (B, num_classes), read
    from the hidden state at each sequence's last real token.
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, embed_dim: int = 32, hidden_size: int = 64,
                 impl: str = "torch", pad_id: int = 0):
        super().__init__()
        check_int("num_classes", num_classes, minimum=2)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.lstm = _make_lstm(impl, embed_dim, hidden_size, 1, 0.0)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2 or lengths.shape != (ids.shape[0],):
            raise ValueError(f"ids must be (batch, time) and lengths (batch,), got {tuple(ids.shape)} "
                             f"and {tuple(lengths.shape)}")
        if int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]:
            raise ValueError(f"lengths must be in [1, {ids.shape[1]}], got [{int(lengths.min())}, "
                             f"{int(lengths.max())}]")
        out, _ = self.lstm(self.embed(ids))  # (B, T, H)
        last = out[torch.arange(ids.shape[0], device=ids.device), lengths.to(ids.device) - 1]  # (B, H)
        return self.head(last)  # (B, C)


def lm_loss(model: CharLSTM, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Next-character cross-entropy (nats) of a batch (x (B, T), y (B, T)); the `loss_fn` for `lmcourse.train.train`."""
    x, y = batch
    check_targets("y", y, x.shape)
    logits = model(x)  # (B, T, V)
    return nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten())


class TBPTTLoss:
    """Next-character loss with truncated backpropagation through time, the `loss_fn` for `lmcourse.train.train`.

    Feed it the batches of `lmcourse.sequences.consecutive_windows` (x (B, T), y (B, T), first): the final
    LSTM state of one window is the initial state of the next, detached, so information flows forward
    across windows while gradients stop at window borders. The state restarts at zero when `first` is True.
    """

    def __init__(self):
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, model: CharLSTM, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y, first = batch
        if bool(first) or self.state is None or self.state[0].shape[1] != x.shape[0]:
            self.state = None
        logits, state = model(x, self.state, return_state=True)  # (B, T, V)
        self.state = tuple(s.detach() for s in state)  # carry the values, cut the gradient
        return nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
