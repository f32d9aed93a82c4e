"""Recurrent cells written out gate by gate, and a multi-layer batch-first sequence wrapper.

Each cell has the same parameter names, shapes, gate order and call signature as its torch
counterpart, so ``ours.load_state_dict(torch_cell.state_dict())`` works and gives equal outputs:

- ``RNNCell``:  weight_ih (H, I), weight_hh (H, H), bias_ih (H,), bias_hh (H,)
- ``LSTMCell``: weight_ih (4H, I), weight_hh (4H, H), biases (4H,); gate order i, f, g, o
- ``GRUCell``:  weight_ih (3H, I), weight_hh (3H, H), biases (3H,); gate order r, z, n

``RNN`` / ``LSTM`` / ``GRU`` run a stack of those cells over a batch-first sequence with the
parameter names of ``torch.nn.LSTM`` (``weight_ih_l0``, ``weight_hh_l0``, ...), so a state dict
copies both ways.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lmcourse.checks import check_int, check_number, check_positive_ints

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "lstm_gates"]


class _CellBase(nn.Module):
    """Shared parameters: ``gates`` blocks of size ``hidden_size`` stacked in the weight rows."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        check_positive_ints(input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        g = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(g, input_size))
        self.weight_hh = nn.Parameter(torch.empty(g, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(g))
            self.bias_hh = nn.Parameter(torch.empty(g))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)) for every parameter, as torch does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _projections(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gi = x @ self.weight_ih.T  # (B, G*H)
        gh = h @ self.weight_hh.T  # (B, G*H)
        if self.bias:
            gi = gi + self.bias_ih
            gh = gh + self.bias_hh
        return gi, gh

    def _check_input(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"input must be a float tensor, got dtype {x.dtype}; embed token ids first "
                             "(nn.Embedding) or convert with input.float()")
        if x.dim() not in (1, 2):
            raise ValueError(f"input must be (batch, input_size) or (input_size,), got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input has {x.shape[-1]} features but the cell was built with "
                             f"input_size={self.input_size}; pass (batch, {self.input_size})")
        unbatched = x.dim() == 1
        return (x.unsqueeze(0) if unbatched else x), unbatched

    def _check_state(self, name: str, s: torch.Tensor | None, x: torch.Tensor, unbatched: bool) -> torch.Tensor:
        batch = x.shape[0]
        if s is None:
            return x.new_zeros(batch, self.hidden_size)
        if not isinstance(s, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(s).__name__}")
        if unbatched:
            s = s.unsqueeze(0) if s.dim() == 1 else s
        if tuple(s.shape) != (batch, self.hidden_size):
            raise ValueError(f"{name} has shape {tuple(s.shape)} but must be (batch={batch}, "
                             f"hidden_size={self.hidden_size}) to match the input")
        return s

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """Elman cell: h' = tanh(W_ih x + b_ih + W_hh h + b_hh).  x (B, I), h (B, H) -> h' (B, H)."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        x, unbatched = self._check_input(input)
        h = self._check_state("hx", hx, x, unbatched)
        gi, gh = self._projections(x, h)
        out = torch.tanh(gi + gh) if self.nonlinearity == "tanh" else torch.relu(gi + gh)
        return out.squeeze(0) if unbatched else out


def lstm_gates(cell: "LSTMCell", input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> dict[str, torch.Tensor]:
    """One LSTM step with every intermediate returned: i, f, g, o (B, H) each, and c, h (B, H)."""
    x, unbatched = cell._check_input(input)
    if hx is None:
        h = c = None
    else:
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise ValueError("hx must be a tuple (h, c) of two tensors, got " + type(hx).__name__)
        h, c = hx
    h = cell._check_state("h", h, x, unbatched)
    c = cell._check_state("c", c, x, unbatched)
    gi, gh = cell._projections(x, h)
    i, f, g, o = (gi + gh).chunk(4, dim=1)  # torch's gate order: input, forget, cell candidate, output
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * c + i * g  # forget part of the old memory, write the gated candidate
    h_new = o * torch.tanh(c_new)  # expose a gated view of the memory
    out = {"i": i, "f": f, "g": g, "o": o, "c": c_new, "h": h_new}
    return {k: v.squeeze(0) for k, v in out.items()} if unbatched else out


class LSTMCell(_CellBase):
    """LSTM cell, gate order (i, f, g, o) as in torch.  x (B, I), (h, c) (B, H) each -> (h', c')."""

    gates = 4

    def forward(self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        s = lstm_gates(self, input, hx)
        return s["h"], s["c"]


class GRUCell(_CellBase):
    """GRU cell, gate order (r, z, n) as in torch.  x (B, I), h (B, H) -> h' (B, H).

    r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r * h_n), h' = (1 - z) n + z h,
    where the reset gate multiplies the *projected* hidden state h_n (bias included), as torch does.
    """

    gates = 3

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        x, unbatched = self._check_input(input)
        h = self._check_state("hx", hx, x, unbatched)
        gi, gh = self._projections(x, h)
        xr, xz, xn = gi.chunk(3, dim=1)
        hr, hz, hn = gh.chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        out = (1 - z) * n + z * h
        return out.squeeze(0) if unbatched else out


class _Stack(nn.Module):
    """A stack of cells run over (B, T, I) with torch.nn.LSTM's parameter names (batch_first only)."""

    cell_class: type = RNNCell
    has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = True, dropout: float = 0.0, **cell_kwargs):
        super().__init__()
        check_int("num_layers", num_layers)
        if not batch_first:
            raise ValueError("batch_first must be True: this wrapper takes (batch, time, features) only")
        if cell_kwargs.get("bidirectional"):
            raise ValueError("bidirectional=True is not supported by these hand-written stacks; use "
                             "torch.nn.LSTM/GRU/RNN(..., bidirectional=True), or run a second stack on the reversed input")
        cell_kwargs.pop("bidirectional", None)
        check_number("dropout", dropout, 0, 1, high_open=True)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, True, dropout
        self.cells = nn.ModuleList(
            self.cell_class(input_size if l == 0 else hidden_size, hidden_size, bias, **cell_kwargs)
            for l in range(num_layers))

    # torch names: weight_ih_l0 ... ; map them onto cells.0.weight_ih ...
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for l in range(self.num_layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                key = f"{prefix}{name}_l{l}"
                if key in state_dict:
                    state_dict[f"{prefix}cells.{l}.{name}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def torch_state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters under torch.nn.LSTM/GRU/RNN names, for ``torch_module.load_state_dict``."""
        return {f"{name}_l{l}": p for l, cell in enumerate(self.cells) for name, p in cell.named_parameters()}

    def _initial(self, x: torch.Tensor, hx):
        B = x.shape[0]
        shape = (self.num_layers, B, self.hidden_size)

        def check(name, s):
            if s is None:
                return x.new_zeros(shape)
            if not isinstance(s, torch.Tensor) or tuple(s.shape) != shape:
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"{name} must have shape (num_layers={self.num_layers}, batch={B}, "
                                 f"hidden_size={self.hidden_size}), got {got}")
            return s

        if self.has_cell_state:
            if hx is None:
                return check("h0", None), check("c0", None)
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError("hx must be a tuple (h0, c0) for an LSTM, got " + type(hx).__name__)
            return check("h0", hx[0]), check("c0", hx[1])
        return check("h0", hx)

    def forward(self, input: torch.Tensor, hx=None):
        """input (B, T, I) -> output (B, T, H) of the top layer, and the final state(s) (L, B, H)."""
        if not isinstance(input, torch.Tensor) or input.dim() != 3:
            got = tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__
            raise ValueError(f"input must be (batch, time, input_size={self.input_size}), got {got}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input has {input.shape[-1]} features but input_size={self.input_size}")
        state = self._initial(input, hx)
        layer_in = input
        finals_h, finals_c = [], []
        for l, cell in enumerate(self.cells):
            if self.has_cell_state:
                h, c = state[0][l], state[1][l]
            else:
                h = state[l]
            outs = []
            for t in range(layer_in.shape[1]):
                if self.has_cell_state:
                    h, c = cell(layer_in[:, t], (h, c))
                else:
                    h = cell(layer_in[:, t], h)
                outs.append(h)
            layer_in = torch.stack(outs, dim=1)  # (B, T, H)
            finals_h.append(h)
            if self.has_cell_state:
                finals_c.append(c)
            if self.dropout and self.training and l < self.num_layers - 1:
                layer_in = nn.functional.dropout(layer_in, self.dropout, training=True)
        h_n = torch.stack(finals_h)  # (L, B, H)
        if self.has_cell_state:
            return layer_in, (h_n, torch.stack(finals_c))
        return layer_in, h_n


class RNN(_Stack):
    """Multi-layer Elman RNN, batch first; equal to ``torch.nn.RNN(..., batch_first=True)``."""

    cell_class = RNNCell


class LSTM(_Stack):
    """Multi-layer LSTM, batch first; equal to ``torch.nn.LSTM(..., batch_first=True)``."""

    cell_class = LSTMCell
    has_cell_state = True


class GRU(_Stack):
    """Multi-layer GRU, batch first; equal to ``torch.nn.GRU(..., batch_first=True)``."""

    cell_class = GRUCell
