"""Chapter 04 · attention: masked softmax, Bahdanau's additive attention (the notebook gives Luong's score), grouped-query
attention (the notebook writes out multi-head attention).

Every checker calls the learner's code first, on copies of its inputs, inside `forbidding(...)` (the package's and
torch's attention are refused), and only then computes what it expects. Keys and values always differ, and every
masked exercise has fully masked rows (a padded query: all-zero weights, not NaN, not uniform)."""

from __future__ import annotations

import math

import torch

from lmcourse.exercises.grading import call, exercise, expect_pair, forbidding, generator, same_tensor

ID_SOFTMAX, ID_ADDITIVE, ID_GQA = "04.masked_softmax", "04.additive_attention", "04.grouped_query_attention"

# the package's attention (every function of lmcourse.attention and lmcourse.seq2seq) and torch's
_ATTENTION_REFERENCES = ("lmcourse.attention", "lmcourse.seq2seq", "torch.nn.functional.scaled_dot_product_attention",
                         "torch.nn.MultiheadAttention", "torch.nn.functional.multi_head_attention_forward")


def _random_mask(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=g) < 0.6


def _fully_masked_rows(mask: torch.Tensor) -> torch.Tensor:
    """A (B, ..., Tq, Tk) mask with query 0 of example 0 and the last query of the last example masked out entirely
    (padded queries): an unguarded -inf fill gives NaN there, a -1e9 fill uniform weights instead of zeros."""
    mask = mask.clone()
    mask[0, ..., 0, :] = False
    mask[-1, ..., -1, :] = False
    return mask


@exercise(ID_SOFTMAX, "masked softmax", hints=[
    "Section 2's 'three stages' cell says what the masked stage fills in, and why neither -inf nor -1e20. The mask "
    "says True where a query may attend.",
    "The fill must be a finite number in every dtype (torch.finfo knows each dtype's most negative one): then a fully "
    "masked row comes out of the softmax uniform, not NaN. In float16, take the softmax in float32 and cast back.",
    "A uniform row over forbidden keys is still wrong: after the softmax, every weight the mask forbids must become "
    "exactly 0, which leaves a fully masked row all zeros.",
])
def check_masked_softmax(masked_softmax) -> None:
    from lmcourse.attention import attention_stages

    def case(name: str, q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor, atol: float) -> None:
        scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)  # exactly attention_stages' "scores"
        with forbidding(*_ATTENTION_REFERENCES):
            got = call(name, masked_softmax, scores.clone(), mask.clone())
        want = attention_stages(q, k, mask)["weights"]  # the reference: "scores" in, "weights" out
        same_tensor(name, got, want, atol=atol, rtol=1e-3, what="the weights")

    g = generator(ID_SOFTMAX)
    q, k = torch.randn(2, 5, 8, generator=g), torch.randn(2, 7, 8, generator=g)
    case("random scores (2, 5, 7) and mask", q, k, _random_mask((2, 5, 7), g), 1e-6)
    mask = _random_mask((2, 5, 7), g)
    mask[0, 1] = False
    mask[1, 4] = False
    case("rows 1 of batch 0 and 4 of batch 1 fully masked", q, k, mask, 1e-6)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    case("(B, heads, T, T) scores with a (T, T) causal mask", torch.randn(2, 3, 6, 4, generator=g),
         torch.randn(2, 3, 6, 4, generator=g), causal, 1e-6)
    mask = _random_mask((3, 7), g)
    mask[2] = False
    case("float16 scores up to ~±200, one fully masked row", (40 * torch.randn(3, 16, generator=g)).half(),
         torch.randn(7, 16, generator=g).half(), mask, 2e-3)


def _additive_reference(query, keys, values, mask, W_q, W_k, b, v) -> tuple[torch.Tensor, torch.Tensor]:
    """The package's Bahdanau scorer with these weights; zero weights (and context) on a row with no real position."""
    from lmcourse.seq2seq import BahdanauAttention

    A, Dq = W_q.shape
    scorer = BahdanauAttention(Dq, W_k.shape[1], A).to(query.dtype)
    with torch.no_grad():
        scorer.w_q.weight.copy_(W_q)
        scorer.w_k.weight.copy_(W_k)
        scorer.w_k.bias.copy_(b)
        scorer.v.weight.copy_(v[None])
        _, weights = scorer(query, keys, mask)
    weights = weights * mask
    return (weights[:, :, None] * values).sum(1), weights


@exercise(ID_ADDITIVE, "Bahdanau's additive attention", hints=[
    "Section 1's table gives Luong's score, one product per position; Bahdanau's replaces it with a small network. "
    "Which weights act on the decoder state, which on the encoder states, and where does v come in?",
    "Both states are mapped into the same attention space of size A (W_q for the query, W_k and its bias b for every "
    "key), added position by position, passed through tanh, and v turns each A-vector into one score. Then a masked "
    "softmax over the positions, as in Exercise 1.",
    "The scores come from the keys, the context from the values: a weighted sum over the positions. A padded "
    "position gets weight exactly 0, and an example with no real position gets zero weights and a zero context.",
])
def check_additive_attention(additive_attention) -> None:
    g = generator(ID_ADDITIVE)
    # (name, B, S, Dq, Dk, Dv, A, lengths, weight scale, dtype); keys and values always differ
    cases = [("batch 3, 5 positions, all real", 3, 5, 4, 6, 3, 7, [5, 5, 5], 0.5, torch.float32),
             ("padding: lengths 5, 2 and 1", 3, 5, 4, 6, 3, 7, [5, 2, 1], 0.5, torch.float32),
             ("an example with no real position (fully masked)", 2, 4, 5, 3, 2, 6, [0, 3], 0.5, torch.float32),
             ("one position (S = 1)", 2, 1, 3, 3, 4, 5, [1, 1], 0.5, torch.float32),
             ("float64, large weights (saturated tanh), one empty example", 3, 6, 4, 5, 3, 8, [6, 0, 4], 3.0,
              torch.float64)]
    for name, B, S, Dq, Dk, Dv, A, lengths, scale, dtype in cases:
        query, keys, values = (torch.randn(*shape, generator=g).to(dtype) for shape in ((B, Dq), (B, S, Dk), (B, S, Dv)))
        W_q, W_k, b, v = (scale * torch.randn(*shape, generator=g).to(dtype) for shape in ((A, Dq), (A, Dk), (A,), (A,)))
        mask = torch.arange(S)[None] < torch.tensor(lengths)[:, None]  # (B, S), True at real positions
        inputs = (query, keys, values, mask, W_q, W_k, b, v)
        with forbidding(*_ATTENTION_REFERENCES):
            got = call(name, additive_attention, *(t.clone() for t in inputs))
        got = expect_pair(name, got, "(context, weights)")
        want_context, want_weights = _additive_reference(*inputs)
        same_tensor(name, got[1], want_weights, atol=1e-5, what="weights")
        same_tensor(name, got[0], want_context, atol=1e-5, what="context")


@exercise(ID_GQA, "grouped-query attention", hints=[
    "Section 3 gives every query head its own keys and values; here n_heads / n_kv_heads consecutive query heads "
    "share one key/value head. Which key/value head does query head h read?",
    "Give every query head the key and value head of its group (a consecutive repeat along the head axis, not a "
    "tiling of the whole head axis), then attend as in section 2: scores scaled by the root of the head size, the "
    "mask as in Exercise 1 (it may differ per query head), a weighted sum of the values.",
    "Groups are consecutive: with groups of two, heads 0 and 1 read key/value head 0. A fully masked query row gets "
    "all-zero weights and a zero output, also in float16, where the fill must be finite and the result stay in "
    "q's dtype.",
])
def check_grouped_query_attention(grouped_query_attention) -> None:
    from lmcourse.attention import scaled_dot_product_attention

    g = generator(ID_GQA)
    B = 2
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    # (name, n_heads, n_kv_heads, Tq, Tk, d, d_v, mask, dtype); q, k and v are always three different tensors
    cases = [
        ("4 query heads, 2 key/value heads, self-attention, no mask", 4, 2, 5, 5, 8, 8, None, torch.float32),
        ("6 query heads in groups of 3, cross-attention Tq=3, Tk=7, d_v=5 != d=4", 6, 2, 3, 7, 4, 5, None,
         torch.float32),
        ("multi-query (1 key/value head), causal (T, T) mask", 4, 1, 5, 5, 8, 8, causal, torch.float32),
        ("3 heads, 3 key/value heads (plain multi-head), padding mask (B, 1, 1, Tk)", 3, 3, 4, 6, 8, 8,
         torch.tensor([[True] * 6, [True, True, True, False, False, False]])[:, None, None, :], torch.float32),
        ("a mask per query head (B, n_heads, Tq, Tk) with fully masked rows", 4, 2, 5, 6, 8, 8,
         _fully_masked_rows(_random_mask((B, 4, 5, 6), g)), torch.float32),
        ("float16, 8 query heads, 2 key/value heads, causal mask with padded queries", 8, 2, 5, 5, 16, 16,
         _fully_masked_rows(causal.expand(B, 1, 5, 5)), torch.float16),
    ]
    for name, n_heads, n_kv, Tq, Tk, d, d_v, mask, dtype in cases:
        q = torch.randn(B, n_heads, Tq, d, generator=g).to(dtype)
        k = torch.randn(B, n_kv, Tk, d, generator=g).to(dtype)
        v = torch.randn(B, n_kv, Tk, d_v, generator=g).to(dtype)
        with forbidding(*_ATTENTION_REFERENCES):
            got = call(name, grouped_query_attention, q.clone(), k.clone(), v.clone(),
                       None if mask is None else mask.clone())
        got = expect_pair(name, got, "(out, weights)")
        group = n_heads // n_kv
        want_out, want_weights = scaled_dot_product_attention(q, k.repeat_interleave(group, dim=1),
                                                              v.repeat_interleave(group, dim=1), mask)
        atol = 2e-3 if dtype == torch.float16 else 1e-5
        same_tensor(name, got[1], want_weights, atol=atol, rtol=1e-3, what="weights")
        same_tensor(name, got[0], want_out, atol=atol, rtol=1e-3, what="out")
