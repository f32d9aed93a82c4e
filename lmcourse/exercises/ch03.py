"""Chapter 03 · RNNs: a GRU step (the notebook writes out the LSTM's), an LSTM run over a padded batch, gradient-norm
clipping, truncated backpropagation through time.

Every checker calls the learner's code first, on copies of its inputs, inside `forbidding(...)` (the package's and
torch's versions of what the exercise asks for are refused), and only then computes what it expects."""

from __future__ import annotations

import copy

import torch
from torch import nn

from lmcourse.exercises.grading import Wrong, call, exercise, expect_pair, forbidding, generator, same_tensor

ID_GRU, ID_LAST, ID_CLIP, ID_TBPTT = "03.gru_step", "03.last_states", "03.clip_grad_norm", "03.truncated_bptt"

# torch's and the package's GRU, and the ATen kernels behind torch's cells
_GRU_REFERENCES = ("lmcourse.rnn.GRUCell", "lmcourse.rnn._Stack", "torch.nn.GRUCell", "torch.nn.GRU",
                   "torch.nn.modules.rnn.RNNBase", "torch.gru_cell", "torch.gru")
# an LSTM (or any recurrence) over a whole padded batch: the loop over time is the exercise, the cell is given
_SEQUENCE_REFERENCES = ("lmcourse.rnn._Stack", "lmcourse.charlm.LSTMClassifier", "torch.nn.LSTM",
                        "torch.nn.modules.rnn.RNNBase", "torch.lstm", "torch.nn.utils.rnn.pack_padded_sequence",
                        "torch.nn.utils.rnn.pack_sequence")
_CLIP_REFERENCES = ("torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_norm",
                    "torch.nn.utils.clip_grads_with_norm_", "torch.nn.utils.get_total_norm")


def _cell(kind, input_size: int, hidden_size: int, g: torch.Generator, scale: float = 1.0):
    """A package cell (lmcourse.rnn.GRUCell / LSTMCell) with weights drawn from `g`."""
    cell = kind(input_size, hidden_size)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return cell


def _weights(cell) -> tuple[torch.Tensor, ...]:
    return tuple(p.detach().clone() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))


@exercise(ID_GRU, "a GRU step", hints=[
    "Section 1 writes the LSTM out; 'The GRU, in words' says what each of the GRU's gates does. torch stacks the "
    "three blocks of the weights and biases in the order r, z, n: split each projection into three.",
    "Project x and h separately, each with its own bias, and split both into r, z and n parts. Each gate is a "
    "sigmoid of its x part plus its h part; the candidate is a tanh, and it takes the h part only through the "
    "reset gate.",
    "The reset gate scales the *projected* h part of the candidate (bias included), not h itself. The new state is "
    "a unit-by-unit blend of the candidate and the old state in which z is the share of the *old* state: z = 1 "
    "keeps h as it was.",
])
def check_gru_step(gru_step) -> None:
    from lmcourse.rnn import GRUCell

    g = generator(ID_GRU)
    cases = [("batch 3, input 5, hidden 4", 3, 5, 4, 0.5, torch.float32),
             ("batch 1, input 2, hidden 7", 1, 2, 7, 0.5, torch.float32),
             ("hidden size 1", 2, 3, 1, 0.8, torch.float32),
             ("large weights (saturated gates), float64", 4, 3, 6, 3.0, torch.float64)]
    for name, B, I, H, scale, dtype in cases:
        cell = _cell(GRUCell, I, H, g, scale).to(dtype)
        x, h = torch.randn(B, I, generator=g).to(dtype), torch.randn(B, H, generator=g).to(dtype)
        with forbidding(*_GRU_REFERENCES):
            got = call(name, gru_step, x.clone(), h.clone(), *_weights(cell))
        with torch.no_grad():
            want = cell(x, h)
        same_tensor(name, got, want, atol=1e-5, what="h_new")


def _last_states(cell, xs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The state after step lengths[b] of each row of xs (B, T, I); zeros for a row of length 0."""
    B, T, _ = xs.shape
    h = c = xs.new_zeros(B, cell.hidden_size)
    for t in range(T):
        h_new, c_new = cell(xs[:, t], (h, c))
        real = (t < lengths)[:, None]  # (B, 1)
        h, c = torch.where(real, h_new, h), torch.where(real, c_new, c)
    return h, c


@exercise(ID_LAST, "an LSTM over a padded batch", hints=[
    "Section 5's classifier reads each sentence up to its last real word; everything after it is padding. "
    "Run the cell one step at a time from a zero state: what must happen to a row's state at a step that is "
    "padding for that row?",
    "At every step the whole batch goes through the cell, but only the rows whose sequence is still running may "
    "take the new (h, c); the others keep the state they had. lengths tells, at step t, which rows those are.",
    "Keep both h and c of a finished row frozen (not reset, not read off the last column), so that a row of "
    "length 0 ends where it started: at zeros. Make the zero state in the dtype of xs.",
])
def check_last_states(last_states) -> None:
    from lmcourse.rnn import LSTMCell

    g = generator(ID_LAST)
    cases = [("batch 4, T=6, lengths 6, 3, 1, 5", [6, 3, 1, 5], 3, 5, torch.float32),
             ("every sequence of full length", [4, 4], 2, 3, torch.float32),
             ("a sequence of length 0 (its state stays zero)", [2, 0, 4], 3, 4, torch.float32),
             ("float64, lengths 1 and 3", [1, 3], 2, 6, torch.float64)]
    for name, lengths, I, H, dtype in cases:
        cell = _cell(LSTMCell, I, H, g, 0.6).to(dtype)
        lengths = torch.tensor(lengths)
        xs = torch.randn(len(lengths), int(lengths.max()), I, generator=g).to(dtype)
        with forbidding(*_SEQUENCE_REFERENCES), torch.no_grad():
            got = call(name, last_states, copy.deepcopy(cell), xs.clone(), lengths.clone())
        got = expect_pair(name, got, "(h, c)")
        with torch.no_grad():
            want_h, want_c = _last_states(cell, xs, lengths)
        same_tensor(name, got[0], want_h, atol=1e-5, what="h")
        same_tensor(name, got[1], want_c, atol=1e-5, what="c")


@exercise(ID_CLIP, "clipping the gradient norm", hints=[
    "Section 3's clipping cell lets torch.nn.utils.clip_grad_norm_ rescale the whole model's gradient: one norm "
    "for all the gradients together, as if they were one long vector, not one norm per tensor.",
    "Only a total norm above max_norm changes anything, and then every tensor is multiplied by the same factor, so "
    "the direction stays. Mind the small constant torch adds to the norm, and all-zero gradients.",
    "The factor is whatever brings the total norm down to max_norm (with torch's 1e-6 added to the norm), and it "
    "never exceeds 1: small gradients come back as they were.",
])
def check_clip_grad_norm(clip_grad_norm) -> None:
    g = generator(ID_CLIP)
    cases = [
        ("three tensors, total norm far above max_norm=1", [(4, 3), (3,), (2, 2, 2)], 10.0, 1.0),
        ("norm below max_norm=100: unchanged", [(5,), (2, 3)], 1.0, 100.0),
        ("one large tensor among small ones, max_norm=0.5", [(3,), (50,), (2,)], 1.0, 0.5),
        ("all-zero gradients: no NaN", [(3,), (2, 2)], 0.0, 1.0),
    ]
    for name, shapes, scale, max_norm in cases:
        grads = [torch.randn(s, generator=g) * scale for s in shapes]
        if name.startswith("one large"):
            grads[1] = grads[1] * 30
        with forbidding(*_CLIP_REFERENCES):
            got = call(name, clip_grad_norm, [t.clone() for t in grads], max_norm)
        if not isinstance(got, (list, tuple)) or len(got) != len(grads):
            raise Wrong(name, f"return a list of {len(grads)} tensors, one per gradient, got {type(got).__name__}")
        params = [nn.Parameter(torch.zeros_like(t)) for t in grads]
        for p, t in zip(params, grads):
            p.grad = t.clone()
        nn.utils.clip_grad_norm_(params, max_norm)
        for i, (a, p) in enumerate(zip(got, params)):
            same_tensor(name, a, p.grad, atol=1e-6, rtol=1e-4, what=f"gradient {i}")


def _reference_tbptt(cell: nn.Module, xs: torch.Tensor, h0: torch.Tensor, k: int) -> torch.Tensor:
    """Truncated BPTT as the task states it: backward every k steps, the state carried on but detached."""
    h = h0
    for start in range(0, len(xs), k):
        loss = sum((h := cell(x, h)).square().mean() for x in xs[start:start + k])
        loss.backward()
        h = h.detach()
    return h


class _BackwardLog(nn.Module):
    """The cell handed to the learner: it runs `cell` and notes, at each backward pass that reaches the cell's
    weights, how many steps had run by then, so that one backward per chunk, at the chunk's end, can be told from
    one backward over all chunks at the end (the same gradients, but every chunk's graph held until then)."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell, self.steps, self.backward_after = cell, 0, []
        next(cell.parameters()).register_hook(self._note_backward)   # a leaf's hook runs once per backward pass

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        self.steps += 1
        return self.cell(x, h)

    def _note_backward(self, grad: torch.Tensor) -> None:
        self.backward_after.append(self.steps)


@exercise(ID_TBPTT, "truncated backpropagation through time", hints=[
    "Section 2's 'Truncated backpropagation through time' carries the state from one window to the next. Two things "
    "happen at every chunk boundary here: the chunk's loss is backpropagated, and the state goes on to the next "
    "chunk without its history.",
    "Walk over the sequence chunk by chunk (the last chunk may be shorter), sum the chunk's per-step losses, and "
    "call backward once per chunk: the gradients of all chunks add up in the parameters' .grad.",
    "Keep the state's value across a boundary but cut its graph (so no backward reaches into an earlier chunk); do "
    "not zero the gradients between chunks, do not restart from h0, and return the final state without its graph.",
])
def check_truncated_bptt(truncated_bptt) -> None:
    from lmcourse.rnn import GRUCell

    g = generator(ID_TBPTT)
    for name, T, k in [("12 steps in chunks of 4", 12, 4), ("10 steps in chunks of 4 (a short last chunk)", 10, 4),
                       ("6 steps, k = 6 (full backpropagation)", 6, 6), ("5 steps, k = 1", 5, 1),
                       ("5 steps, k = 8 (one chunk shorter than k)", 5, 8)]:
        reference = _cell(GRUCell, 3, 4, g, 0.7)
        learner = copy.deepcopy(reference)
        xs, h0 = torch.randn(T, 2, 3, generator=g), torch.randn(2, 4, generator=g)
        log = _BackwardLog(learner)   # the learner's cell, with its steps and backward passes noted
        with forbidding():  # the checker's own code (this module) is refused in any case
            got_h = call(name, truncated_bptt, log, xs.clone(), h0.clone(), k)
        want_h = _reference_tbptt(reference, xs, h0, k)
        same_tensor(name, got_h, want_h, atol=1e-5, what="the final h")
        for (pname, p), q in zip(reference.named_parameters(), learner.parameters()):
            if q.grad is None:
                raise Wrong(name, f"{pname}.grad is None: call loss.backward() on each chunk")
            same_tensor(name, q.grad, p.grad, atol=1e-5, what=f"the gradient of {pname}")
        chunks = -(-T // k)   # ceil(T / k)
        if len(log.backward_after) != chunks:
            raise Wrong(name, f"loss.backward() ran {len(log.backward_after)} time(s) over {chunks} chunk(s): call it "
                              "once per chunk, at the chunk's end (one backward over all chunks at the end gives the "
                              "same gradients but holds every chunk's graph until then, which truncation avoids)")
        if log.backward_after != [min(T, (i + 1) * k) for i in range(chunks)]:
            raise Wrong(name, "each chunk's loss.backward() must run at the end of that chunk, before the next "
                              "chunk's steps, not later")
