"""Chapter 03 · RNNs: a GRU step, an LSTM step, gradient-norm clipping, truncated backpropagation through time."""

from __future__ import annotations

import torch
from torch import nn

from lmcourse.exercises.grading import Wrong, call, exercise, expect_pair, generator, same_tensor

ID_GRU, ID_LSTM, ID_CLIP, ID_TBPTT = "03.gru_step", "03.lstm_step", "03.clip_grad_norm", "03.truncated_bptt"


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
    "torch's GRU: gates r, z, n in that order in the weight rows. Where does the reset gate act: on h before "
    "the hidden projection, or on the projected h? And which of n and h does z keep?",
    "gi = x @ W_ih.T + b_ih and gh = h @ W_hh.T + b_hh, each split with .chunk(3, dim=1) into r, z, n parts; "
    "r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z).",
    "The candidate n is a tanh of the input part plus r times the *projected* state part (bias included). The "
    "new state mixes n and h unit by unit with z as the weight of the old state h (z = 1 keeps h unchanged).",
])
def check_gru_step(gru_step) -> None:
    from lmcourse.rnn import GRUCell

    g = generator(ID_GRU)
    for name, B, I, H, scale, dtype in [("batch 3, input 5, hidden 4", 3, 5, 4, 0.5, torch.float32),
                                        ("batch 1, input 2, hidden 7", 1, 2, 7, 0.5, torch.float32),
                                        ("large weights (saturated gates), float64", 4, 3, 6, 3.0, torch.float64)]:
        cell = _cell(GRUCell, I, H, g, scale).to(dtype)
        x, h = torch.randn(B, I, generator=g).to(dtype), torch.randn(B, H, generator=g).to(dtype)
        with torch.no_grad():
            want = cell(x, h)
            got = call(name, gru_step, x.clone(), h.clone(), *_weights(cell))
        same_tensor(name, got, want, atol=1e-5)


@exercise(ID_LSTM, "an LSTM step", hints=[
    "torch's LSTM: the four gate blocks are stacked in the order i, f, g, o. Which nonlinearity does each take, "
    "and what does the output gate multiply?",
    "gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, then i, f, g, o = gates.chunk(4, dim=1); i, f, o through "
    "sigmoid, g through tanh.",
    "c_new = f * c + i * g; h_new = o * tanh(c_new); return (h_new, c_new).",
])
def check_lstm_step(lstm_step) -> None:
    from lmcourse.rnn import LSTMCell

    g = generator(ID_LSTM)
    for name, B, I, H, scale in [("batch 3, input 5, hidden 4", 3, 5, 4, 0.5),
                                 ("batch 2, input 1, hidden 8", 2, 1, 8, 0.5),
                                 ("large weights (saturated gates)", 4, 3, 6, 3.0)]:
        cell = _cell(LSTMCell, I, H, g, scale)
        x, h, c = (torch.randn(B, n, generator=g) for n in (I, H, H))
        with torch.no_grad():
            want_h, want_c = cell(x, (h, c))
            got = call(name, lstm_step, x.clone(), h.clone(), c.clone(), *_weights(cell))
        got = expect_pair(name, got, "(h_new, c_new)")
        same_tensor(name, got[1], want_c, atol=1e-5, what="c_new")
        same_tensor(name, got[0], want_h, atol=1e-5, what="h_new")


@exercise(ID_CLIP, "clipping the gradient norm", hints=[
    "One norm for all the gradients together (as if they were one long vector), and a rescaling only when that "
    "norm is above max_norm. The direction of the update must not change.",
    "total = sqrt(sum of g.pow(2).sum() over all tensors); if total > max_norm, multiply every tensor by "
    "max_norm / total; otherwise return them unchanged. Mind all-zero gradients.",
    "scale = min(1.0, max_norm / (total + 1e-6)); return [g * scale for g in grads].",
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
        params = [nn.Parameter(torch.zeros_like(t)) for t in grads]
        for p, t in zip(params, grads):
            p.grad = t.clone()
        nn.utils.clip_grad_norm_(params, max_norm)
        got = call(name, clip_grad_norm, [t.clone() for t in grads], max_norm)
        if not isinstance(got, (list, tuple)) or len(got) != len(grads):
            raise Wrong(name, f"return a list of {len(grads)} tensors, one per gradient, got {type(got).__name__}")
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


@exercise(ID_TBPTT, "truncated backpropagation through time", hints=[
    "Two things happen at every chunk boundary: the chunk's loss is backpropagated, and the state is carried on "
    "to the next chunk without its history. What happens if the history is kept, or if the state is reset?",
    "for each chunk of k steps (the last may be shorter): loss = sum over its steps of h.square().mean(); "
    "loss.backward() (gradients add up in the parameters' .grad); then h = h.detach().",
    "Do not zero the gradients between chunks, do not reset h to h0, and return the final h (detached).",
])
def check_truncated_bptt(truncated_bptt) -> None:
    from lmcourse.rnn import GRUCell

    g = generator(ID_TBPTT)
    for name, T, k in [("12 steps in chunks of 4", 12, 4), ("10 steps in chunks of 4 (a short last chunk)", 10, 4),
                       ("6 steps, k = 6 (full backpropagation)", 6, 6), ("5 steps, k = 1", 5, 1)]:
        reference = _cell(GRUCell, 3, 4, g, 0.7)
        learner = _cell(GRUCell, 3, 4, g, 0.7)
        learner.load_state_dict(reference.state_dict())
        xs, h0 = torch.randn(T, 2, 3, generator=g), torch.randn(2, 4, generator=g)
        want_h = _reference_tbptt(reference, xs, h0, k)
        got_h = call(name, truncated_bptt, learner, xs.clone(), h0.clone(), k)
        same_tensor(name, got_h, want_h, atol=1e-5, what="the final h")
        for (pname, p), q in zip(reference.named_parameters(), learner.parameters()):
            if q.grad is None:
                raise Wrong(name, f"{pname}.grad is None: call loss.backward() on each chunk")
            same_tensor(name, q.grad, p.grad, atol=1e-5, what=f"the gradient of {pname}")
