"""Chapter 04 · attention: masked softmax, scaled dot-product attention, multi-head attention."""

from __future__ import annotations

import torch

from lmcourse.exercises.grading import Wrong, call, exercise, expect_pair, generator, same_tensor

ID_SOFTMAX, ID_SDPA, ID_MHA = "04.masked_softmax", "04.scaled_dot_product_attention", "04.multi_head_attention"


def _random_mask(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=g) < 0.6


def _fully_masked_rows(mask: torch.Tensor) -> torch.Tensor:
    """A (B, 1, Tq, Tk) mask with query 0 of example 0 and the last query of the last example masked out entirely
    (padded queries): an unguarded -inf fill gives NaN there, a -1e9 fill uniform weights instead of zeros."""
    mask = mask.clone()
    mask[0, :, 0] = False
    mask[-1, :, -1] = False
    return mask


@exercise(ID_SOFTMAX, "masked softmax", hints=[
    "Which scores may a query use? torch's convention: mask True = may attend. The masked entries must get weight "
    "exactly 0, also when a whole row is masked, and float16 must not overflow.",
    "Fill the disallowed scores with the most negative finite number of the dtype (torch.finfo(scores.dtype).min), "
    "never -1e20 (that is -inf in float16) and never -inf (a fully masked row becomes 0/0 = NaN).",
    "weights = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(-1), then multiply by the mask so "
    "a fully masked row is all zeros, not uniform.",
])
def check_masked_softmax(masked_softmax) -> None:
    from lmcourse.attention import attention_stages

    def case(name: str, q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor, atol: float) -> None:
        stages = attention_stages(q, k, mask)  # the reference: "scores" in, "weights" out
        got = call(name, masked_softmax, stages["scores"].clone(), mask.clone())
        same_tensor(name, got, stages["weights"], atol=atol, rtol=1e-3)

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


@exercise(ID_SDPA, "scaled dot-product attention", hints=[
    "Three steps: scores from q and k, the mask, a softmax over the keys, then a weighted sum of v. What is d in 1/sqrt(d)?",
    "scores = q @ k.transpose(-2, -1) / sqrt(q.shape[-1]) (the size of one query vector, the head dimension); the "
    "mask is a boolean broadcast over the leading dimensions, True = may attend.",
    "weights = your masked_softmax(scores, mask) (or plain softmax without a mask); return (weights @ v, weights).",
])
def check_scaled_dot_product_attention(attention) -> None:
    from lmcourse.attention import scaled_dot_product_attention

    g = generator(ID_SDPA)
    cases = [
        ("self-attention (2, 5, 8), no mask", (2, 5, 8), (2, 5, 8), (2, 5, 8), None),
        ("cross-attention Tq=3, Tk=6, d_v=4 != d=16", (2, 3, 16), (2, 6, 16), (2, 6, 4), None),
        ("(B, heads, T, head_dim) with a causal mask", (2, 4, 6, 8), (2, 4, 6, 8), (2, 4, 6, 8),
         torch.ones(6, 6, dtype=torch.bool).tril()),
        ("padding mask (B, 1, 1, Tk)", (2, 2, 5, 8), (2, 2, 5, 8), (2, 2, 5, 8),
         torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, None, :]),
        ("padded queries: a fully masked row in each example", (2, 2, 5, 8), (2, 2, 5, 8), (2, 2, 5, 8),
         _fully_masked_rows(torch.ones(2, 1, 5, 5, dtype=torch.bool).tril())),
    ]
    for name, sq, sk, sv, mask in cases:
        q, k, v = (torch.randn(s, generator=g) for s in (sq, sk, sv))
        want_out, want_weights = scaled_dot_product_attention(q, k, v, mask)
        got = call(name, attention, q.clone(), k.clone(), v.clone(), None if mask is None else mask.clone())
        got = expect_pair(name, got, "(out, weights)")
        same_tensor(name, got[1], want_weights, atol=1e-5, what="weights")
        same_tensor(name, got[0], want_out, atol=1e-5, what="out")


@exercise(ID_MHA, "multi-head attention as a module", hints=[
    "Project, split into heads, attend within each head, merge, project back. Which dimension does each head's "
    "attention scale by, and in which order do you reshape (B, T, d_model) into (B, heads, T, head_dim)?",
    "x.view(B, T, n_heads, head_dim).transpose(1, 2) splits the heads (a direct view to (B, n_heads, T, head_dim) "
    "mixes positions); scale by sqrt(head_dim), not sqrt(d_model).",
    "q, k, v = split(q_proj(query)), split(k_proj(key)), split(v_proj(value)); y = softmax(q k^T / sqrt(head_dim) "
    "masked) v; y.transpose(1, 2).reshape(B, Tq, d_model); return out_proj(y).",
])
def check_multi_head_attention(module_class) -> None:
    from lmcourse.attention import MultiHeadAttention

    # query, key and value are three different tensors except in the first case, so a module that uses key as
    # the value, or swaps them, shows
    cases = [("d_model=32, 4 heads, self-attention (query = key = value)", 32, 4, 2, 5, 5, None),
             ("d_model=32, 4 heads, query, key and value all different", 32, 4, 2, 5, 5, None),
             ("d_model=48, 3 heads, cross-attention Tq=4, Tk=7", 48, 3, 2, 4, 7, None),
             ("d_model=32, 8 heads, causal mask", 32, 8, 3, 6, 6, torch.ones(6, 6, dtype=torch.bool).tril()),
             ("d_model=24, 2 heads, padding mask (B, 1, 1, Tk)", 24, 2, 2, 5, 5,
              torch.tensor([[True] * 5, [True, True, False, False, False]])[:, None, None, :]),
             ("d_model=32, 4 heads, padded queries: a fully masked row in each example", 32, 4, 2, 5, 5,
              _fully_masked_rows(torch.ones(2, 1, 5, 5, dtype=torch.bool).tril()))]
    for i, (name, d_model, n_heads, B, Tq, Tk, mask) in enumerate(cases):
        g = generator(ID_MHA, i)
        with torch.random.fork_rng():  # random weights without touching the notebook's random state
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=g)))
            reference = MultiHeadAttention(d_model, n_heads).eval()
        module = call(name, module_class, d_model, n_heads)
        try:
            module.load_state_dict(reference.state_dict())
        except Exception as exc:
            raise Wrong(name, "your module must have q_proj, k_proj, v_proj, out_proj = nn.Linear(d_model, d_model) "
                              f"and no other parameters ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        query, key, value = (torch.randn(B, T, d_model, generator=g) for T in (Tq, Tk, Tk))
        if i == 0:
            key = value = query
        with torch.no_grad():
            want, _ = reference(query, key, value, mask=mask)
            got = call(name, module.eval(), query.clone(), key.clone(), value.clone(),
                       None if mask is None else mask.clone())
        if isinstance(got, tuple):
            got = got[0]
        same_tensor(name, got, want, atol=1e-5)

