"""Recurrent cells written out gate by gate, and a multi-layer batch-first sequence wrapper.

Each cell has the same parameter names, shapes, gate order and call signature as its torch
counterpart, so ``ours.load_state_dict(torch_cell.state_dict())`` works and gives equal outputs:

- ``RNNCell``:  weight_ih (H, I), weight_hh (H, H), bias_ih (H,), bias_hh (H,)
- ``LSTMCell``: weight_ih (4H, I), weight_hh (4H, H), biases (4H,); gate order i, f, g, o
- ``GRUCell``:  weight_ih (3H, I), weight_hh (3H, H), biases (3H,); gate order r, z, n

``RNN`` / ``LSTM`` / ``GRU`` run a stack of those cells over a batch-first sequence with the
parameter names of ``torch.nn.LSTM`` (``weight_ih_l0``, ``weight_hh_l0``, ..., ``weight_ih_l0_reverse``
when bidirectional), so a state dict copies both ways. Like torch's, they take a ``PackedSequence``
of variable-length sequences (or a padded batch with ``lengths=``).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from lmcourse.checks import check_int, check_number, check_positive_ints, describe

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "lstm_gates"]


def _dtype_mismatch(t: torch.Tensor, expected: torch.dtype) -> bool:
    """t's dtype differs from `expected` outside autocast (inside it, half-precision activations are intended)."""
    return t.dtype != expected and not torch.is_autocast_enabled(t.device.type)


class _CellBase(nn.Module):
    """Shared parameters: ``gates`` blocks of size ``hidden_size`` stacked in the weight rows."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        check_positive_ints(input_size=input_size, hidden_size=hidden_size)
        if not isinstance(bias, bool):
            raise ValueError(f"bias must be True or False, got {bias!r}")
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
        if _dtype_mismatch(x, self.weight_ih.dtype):
            raise ValueError(f"input has dtype {x.dtype} but the cell's weights are {self.weight_ih.dtype}; convert "
                             f"one to the other: input.to({self.weight_ih.dtype}) or cell.to({x.dtype})")
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
        if _dtype_mismatch(s, x.dtype):
            raise ValueError(f"{name} has dtype {s.dtype} but the input is {x.dtype}; pass {name}.to({x.dtype})")
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


def _reversal_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) index that reverses each row's first lengths[b] steps and leaves its padding where it is.

    Reading x[b, index[b]] flips a sequence within its own length; the index is its own inverse.
    """
    t = torch.arange(steps, device=lengths.device)[None]  # (1, T)
    last = lengths[:, None] - 1  # (B, 1)
    return torch.where(t <= last, last - t, t)


def _flip_steps(x: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    """x (B, T, F) with each sequence's steps in reverse order: all T of them, or x[b, index[b]] for padded rows."""
    if index is None:
        return x.flip(1)
    return x[torch.arange(x.shape[0], device=x.device)[:, None], index]


def _pack_like(padded: torch.Tensor, like: PackedSequence) -> PackedSequence:
    """padded (B, T, F), rows in the caller's batch order -> a PackedSequence with the layout of `like`.

    A PackedSequence stores step 0 of every sequence, then step 1 of those still running, ...; within a
    step the sequences come longest first (``like.sorted_indices``).
    """
    B = padded.shape[0]
    order = like.sorted_indices if like.sorted_indices is not None else torch.arange(B, device=padded.device)
    time_major = padded[order].transpose(0, 1)  # (T, B, F), rows in packing order
    running = torch.arange(B)[None] < like.batch_sizes[:, None]  # (T, B): is sequence b still running at step t
    return PackedSequence(time_major[running.to(padded.device)], like.batch_sizes, like.sorted_indices,
                          like.unsorted_indices)


class _Stack(nn.Module):
    """A stack of cells run over (B, T, I) with torch.nn.LSTM's parameter names (batch_first only).

    bidirectional=True gives each layer a second cell that reads the sequence backwards: the same
    recurrence run over the flipped sequence, its outputs flipped back into place and concatenated with
    the forward ones, so every position sees its whole sentence, (B, T, 2H). torch names that cell's
    parameters ``weight_ih_l0_reverse`` etc., and the next layer reads the 2H-wide concatenation.
    """

    cell_class: type = RNNCell
    has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = True, dropout: float = 0.0, bidirectional: bool = False, **cell_kwargs):
        super().__init__()
        check_int("num_layers", num_layers)
        if not batch_first:
            raise ValueError("batch_first must be True: this wrapper takes (batch, time, features) only")
        if not isinstance(bidirectional, bool):
            raise ValueError(f"bidirectional must be True or False, got {bidirectional!r}")
        check_number("dropout", dropout, 0, 1, high_open=True)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, True, dropout
        self.bidirectional, self.num_directions = bidirectional, 2 if bidirectional else 1
        D = self.num_directions
        # cells[l * D + d]: layer l, direction d (0 forward, 1 backward), the order of torch's h_n
        self.cells = nn.ModuleList(
            self.cell_class(input_size if l == 0 else D * hidden_size, hidden_size, bias, **cell_kwargs)
            for l in range(num_layers) for _ in range(D))

    def _torch_name(self, index: int, name: str) -> str:
        """torch's name for parameter `name` of cells[index]: weight_ih_l1, or weight_ih_l1_reverse backwards."""
        layer, direction = divmod(index, self.num_directions)
        return f"{name}_l{layer}" + ("_reverse" if direction else "")

    # torch names: weight_ih_l0 ... ; map them onto cells.0.weight_ih ...
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for index in range(len(self.cells)):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                key = prefix + self._torch_name(index, name)
                if key in state_dict:
                    state_dict[f"{prefix}cells.{index}.{name}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def torch_state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters under torch.nn.LSTM/GRU/RNN names, for ``torch_module.load_state_dict``."""
        return {self._torch_name(index, name): p for index, cell in enumerate(self.cells)
                for name, p in cell.named_parameters()}

    def _check_input(self, input: torch.Tensor) -> None:
        if not isinstance(input, torch.Tensor) or input.dim() != 3:
            got = tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__
            raise ValueError(f"input must be (batch, time, input_size={self.input_size}), got {got}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input has {input.shape[-1]} features but input_size={self.input_size}")
        weight = self.cells[0].weight_ih
        if _dtype_mismatch(input, weight.dtype):
            raise ValueError(f"input has dtype {input.dtype} but the weights are {weight.dtype}; convert one to "
                             f"the other: input.to({weight.dtype}) or model.to({input.dtype})")
        if input.shape[0] == 0 or input.shape[1] == 0:
            raise ValueError(f"input is empty, shape {tuple(input.shape)}; pass at least one sequence of one step")

    def _check_lengths(self, lengths, input: torch.Tensor) -> torch.Tensor:
        """lengths (B,) of the real steps of each right-padded row, each in [1, T]; returned on input's device."""
        B, T = input.shape[:2]
        lengths = torch.as_tensor(lengths)
        if lengths.is_floating_point() or lengths.dtype == torch.bool or tuple(lengths.shape) != (B,):
            raise ValueError(f"lengths must hold one integer length per sequence, shape (batch={B},), got "
                             f"{describe(lengths)}")
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > T:
            raise ValueError(f"lengths must be in [1, time={T}], got lengths in [{low}, {high}]")
        return lengths.to(input.device)

    def _initial(self, x: torch.Tensor, hx) -> tuple[torch.Tensor, ...]:
        """The initial state as a tuple of (L*D, B, H) tensors: (h0,), or (h0, c0) for an LSTM; zeros if hx is None."""
        B = x.shape[0]
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        layers = f"num_layers={self.num_layers}" if not self.bidirectional else f"num_layers*2={shape[0]}"

        def check(name, s):
            if s is None:
                return x.new_zeros(shape)
            if not isinstance(s, torch.Tensor) or tuple(s.shape) != shape:
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"{name} must have shape ({layers}, batch={B}, hidden_size={self.hidden_size}), "
                                 f"got {got}")
            if _dtype_mismatch(s, x.dtype):
                raise ValueError(f"{name} has dtype {s.dtype} but the input is {x.dtype}; pass {name}.to({x.dtype})")
            return s

        if self.has_cell_state:
            if hx is None:
                return check("h0", None), check("c0", None)
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError("hx must be a tuple (h0, c0) for an LSTM, got " + type(hx).__name__)
            return check("h0", hx[0]), check("c0", hx[1])
        return (check("h0", hx),)

    def _step(self, cell: nn.Module, x: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        out = cell(x, state) if self.has_cell_state else cell(x, state[0])
        return out if self.has_cell_state else (out,)

    def _run(self, cell: nn.Module, x: torch.Tensor, state: tuple[torch.Tensor, ...],
             real: torch.Tensor | None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One cell over x (B, T, F) from state ((B, H),) or ((B, H), (B, H)) -> outputs (B, T, H), final state.

        real (B, T) marks the real steps of padded rows: at padding the state is carried on unchanged (so
        the final state is the one at the last real step) and the output is zero.
        """
        outs = []
        for t in range(x.shape[1]):
            new = self._step(cell, x[:, t], state)
            h = new[0]
            if real is not None:
                keep = real[:, t, None]  # (B, 1)
                new = tuple(torch.where(keep, n, s) for n, s in zip(new, state))
                h = h.masked_fill(~keep, 0.0)
            state = new
            outs.append(h)
        return torch.stack(outs, dim=1), state

    def forward(self, input: torch.Tensor | PackedSequence, hx=None, lengths=None):
        """input (B, T, I) -> output (B, T, D*H) of the top layer, and the final state(s) (L*D, B, H).

        D = 2 if bidirectional else 1; h_n rows are ordered layer by layer, forward then backward, as torch's.
        Variable lengths: pass a PackedSequence (the output is one too, laid out as torch's), or a right-padded
        input with lengths (B,): outputs at padding are zero, and each final state is the one after the
        sequence's last real step (backwards: after reading from that step back to the first).
        """
        packed = input if isinstance(input, PackedSequence) else None
        if packed is not None:
            if lengths is not None:
                raise ValueError("lengths must be None when input is a PackedSequence: it carries its lengths")
            input, lengths = pad_packed_sequence(packed, batch_first=True)  # rows back in the caller's order
        self._check_input(input)
        real = reverse = None
        if lengths is not None:
            lengths = self._check_lengths(lengths, input)
            real = torch.arange(input.shape[1], device=input.device)[None] < lengths[:, None]  # (B, T)
            reverse = _reversal_index(lengths, input.shape[1])
        state = self._initial(input, hx)
        layer_in, finals = input, []
        for l in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                index = l * self.num_directions + d
                start = tuple(s[index] for s in state)
                if d == 0:
                    out, final = self._run(self.cells[index], layer_in, start, real)
                else:  # backward: the same recurrence over each sequence flipped in place, flipped back after
                    out, final = self._run(self.cells[index], _flip_steps(layer_in, reverse), start, real)
                    out = _flip_steps(out, reverse)
                outs.append(out)
                finals.append(final)
            layer_in = torch.cat(outs, dim=-1)  # (B, T, D*H)
            if self.dropout and self.training and l < self.num_layers - 1:
                layer_in = nn.functional.dropout(layer_in, self.dropout, training=True)
        output = layer_in if packed is None else _pack_like(layer_in, packed)
        h_n = torch.stack([f[0] for f in finals])  # (L*D, B, H)
        if self.has_cell_state:
            return output, (h_n, torch.stack([f[1] for f in finals]))
        return output, h_n


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
