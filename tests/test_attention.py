"""lmcourse.attention against torch's fused attention and torch.nn.MultiheadAttention."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.attention import (
    MultiHeadAttention,
    attention_stages,
    causal_mask,
    merge_masks,
    padding_mask,
    scaled_dot_product_attention,
)


def qkv(B=2, H=3, Tq=5, Tk=7, d=8, dv=6, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, Tq, d, generator=g, dtype=dtype), torch.randn(B, H, Tk, d, generator=g, dtype=dtype),
            torch.randn(B, H, Tk, dv, generator=g, dtype=dtype))


def test_sdpa_equals_torch_without_mask():
    q, k, v = qkv()
    out, w = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)
    assert w.shape == (2, 3, 5, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5))


def test_sdpa_equals_torch_with_bool_mask():
    q, k, v = qkv()
    mask = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(1)) > 0.4
    mask[..., 0] = True  # every query may attend something
    out, w = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-5, rtol=1e-5)
    assert (w.masked_select(~mask.expand_as(w)) == 0).all()


def test_sdpa_equals_torch_with_float_mask():
    q, k, v = qkv()
    bias = torch.randn(5, 7, generator=torch.Generator().manual_seed(2))
    out, _ = scaled_dot_product_attention(q, k, v, bias)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=bias), atol=1e-5, rtol=1e-5)


def test_sdpa_causal_equals_torch_is_causal():
    q, k, v = qkv(Tq=6, Tk=6)
    out, w = scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5, rtol=1e-5)
    assert (w.triu(1) == 0).all()


def test_sdpa_scale_is_one_over_sqrt_d():
    q, k, _ = qkv(d=16)
    scores = attention_stages(q, k)["scores"]
    torch.testing.assert_close(scores, q @ k.transpose(-2, -1) / math.sqrt(16))


def test_sdpa_custom_scale_equals_torch():
    q, k, v = qkv()
    out, _ = scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=0.3), atol=1e-5, rtol=1e-5)


def test_masking_stays_finite_in_half_precision():
    for dtype in (torch.float16, torch.bfloat16):
        q, k, v = qkv(dtype=dtype)
        mask = causal_mask(5, 7)
        out, w = scaled_dot_product_attention(q, k, v, mask)
        stages = attention_stages(q, k, mask)
        assert torch.isfinite(stages["masked"]).all() and torch.isfinite(out).all() and torch.isfinite(w).all()
        ref, _ = scaled_dot_product_attention(q.float(), k.float(), v.float(), mask)
        torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)


def test_fully_masked_row_gives_zero_weights_not_nan():
    q, k, v = qkv(B=1, H=1, Tq=2, Tk=3)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all()
    assert (w[..., 1, :] == 0).all() and (out[..., 1, :] == 0).all()


def test_dropout_zero_in_eval_and_scales_in_training():
    q, k, v = qkv()
    torch.manual_seed(0)
    out_eval, _ = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=False)
    torch.testing.assert_close(out_eval, scaled_dot_product_attention(q, k, v)[0])
    out_train, w = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert not torch.allclose(out_train, out_eval)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5))  # the weights returned are before dropout


def test_causal_and_padding_masks():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    m = padding_mask([2, 3])
    assert m.shape == (2, 1, 1, 3) and m[0, 0, 0].tolist() == [True, True, False] and m[1].all()


def test_sdpa_rejects_bad_mask_dtype():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="mask must be bool"):
        scaled_dot_product_attention(q, k, v, torch.ones(5, 7, dtype=torch.long))


def test_sdpa_rejects_bad_mask_shape():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"does not broadcast.*\(5, 7\)|does not broadcast"):
        scaled_dot_product_attention(q, k, v, torch.ones(7, 5, dtype=torch.bool))


def test_sdpa_rejects_mismatched_qk_and_bad_dropout():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="last dimension"):
        scaled_dot_product_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="number of keys"):
        scaled_dot_product_attention(q, k, v[..., :3, :])
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.5)


def torch_pair(d=16, h=4, bias=True, seed=0):
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(d, h, bias=bias, batch_first=True).eval()
    with torch.no_grad():  # non-zero biases, so the copy of every tensor is tested
        for p in ref.parameters():
            p.normal_(0, 0.3)
    return ref, MultiHeadAttention.from_torch(ref).eval()


@pytest.mark.parametrize("bias", [True, False])
def test_mha_equals_torch_self_attention(bias):
    ref, ours = torch_pair(bias=bias)
    x = torch.randn(2, 6, 16)
    want, want_w = ref(x, x, x, need_weights=True, average_attn_weights=False)
    got, w = ours(x, x, x, need_weights=True)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, want_w, atol=1e-5, rtol=1e-5)
    fused, none = ours(x, x, x)
    assert none is None
    torch.testing.assert_close(fused, want, atol=1e-5, rtol=1e-5)


def test_mha_equals_torch_cross_attention_with_padding():
    ref, ours = torch_pair()
    query, memory = torch.randn(2, 4, 16), torch.randn(2, 7, 16)
    lengths = [5, 7]
    keep = padding_mask(lengths, 7)  # (B, 1, 1, Tk), True = may attend
    want, want_w = ref(query, memory, memory, key_padding_mask=~keep[:, 0, 0], need_weights=True,
                       average_attn_weights=False)
    fused, _ = ours(query, memory, memory, mask=keep)
    torch.testing.assert_close(fused, want, atol=1e-5, rtol=1e-5)
    got, w = ours(query, memory, memory, mask=keep, need_weights=True)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, want_w, atol=1e-5, rtol=1e-5)
    assert w.shape == (2, 4, 4, 7)


def test_mha_causal_equals_torch_attn_mask():
    ref, ours = torch_pair()
    x = torch.randn(2, 6, 16)
    want, _ = ref(x, x, x, attn_mask=~causal_mask(6))  # torch's nn.MultiheadAttention: True = NOT allowed
    for need_weights in (True, False):
        got, _ = ours(x, x, x, is_causal=True, need_weights=need_weights)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_mha_causal_combined_with_padding_mask():
    _, ours = torch_pair()
    x = torch.randn(2, 6, 16)
    keep = padding_mask([4, 6], 6)
    a, _ = ours(x, x, x, mask=keep, is_causal=True)
    b, w = ours(x, x, x, mask=keep & causal_mask(6), need_weights=True)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert (w[0, :, :, 4:] == 0).all() and (w.triu(1) == 0).all()


def test_causal_output_at_t_ignores_later_positions():
    _, ours = torch_pair()
    x = torch.randn(1, 8, 16)
    y = x.clone()
    y[:, 5:] = torch.randn(1, 3, 16)  # change positions 5, 6, 7
    for need_weights in (True, False):
        a, _ = ours(x, x, x, is_causal=True, need_weights=need_weights)
        b, _ = ours(y, y, y, is_causal=True, need_weights=need_weights)
        torch.testing.assert_close(a[:, :5], b[:, :5], atol=1e-6, rtol=1e-6)
        assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_mha_gradients_flow_to_every_parameter():
    _, ours = torch_pair()
    x = torch.randn(2, 5, 16, requires_grad=True)
    ours.train()
    out, _ = ours(x, x, x, is_causal=True)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ours.parameters())


def test_mha_rejects_d_model_not_divisible_by_heads():
    with pytest.raises(ValueError, match="n_embd=10 must be divisible by n_head=4"):
        MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(8, 2, dropout=1.0)


def test_mha_rejects_bad_inputs():
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(2, 3, 8)
    with pytest.raises(ValueError, match="query must have shape"):
        mha(torch.randn(2, 3, 6), x, x)
    with pytest.raises(ValueError, match="mask must be bool"):
        mha(x, x, x, mask=torch.ones(3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(x, x, x, mask=torch.ones(4, 3, dtype=torch.bool))


@pytest.mark.parametrize("B", [4, 2])  # 4 = n_head, where reading the mask as (heads, Tq, Tk) ran silently
def test_mha_3d_mask_is_one_mask_per_example_shared_by_the_heads(B):
    ref, ours = torch_pair()
    x = torch.randn(B, 5, 16, generator=torch.Generator().manual_seed(2))
    keep = torch.rand(B, 5, 5, generator=torch.Generator().manual_seed(3)) > 0.5
    keep[..., 0] = True  # every query may attend something
    # torch reads a 3-D mask as (B * n_head, Tq, Tk) with True = ignore
    want, want_w = ref(x, x, x, attn_mask=~keep.repeat_interleave(ref.num_heads, 0), need_weights=True,
                       average_attn_weights=False)
    for need_weights in (False, True):
        got, w = ours(x, x, x, mask=keep, need_weights=need_weights)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, want_w, atol=1e-5, rtol=1e-5)


def test_mha_3d_mask_of_another_batch_size_is_refused():
    _, ours = torch_pair()
    x = torch.randn(2, 5, 16)
    with pytest.raises(ValueError, match=r"expected \(2, 5, 5\), got \(4, 5, 5\)"):
        ours(x, x, x, mask=torch.ones(4, 5, 5, dtype=torch.bool))


def test_fully_masked_row_of_a_float_mask_matches_torch_fused_attention():
    q, k, v = qkv(B=1, H=2, Tq=2, Tk=3)
    bias = torch.tensor([[0.0, -1.0, float("-inf")], [float("-inf")] * 3])
    out, w = scaled_dot_product_attention(q, k, v, bias)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=bias), atol=1e-5, rtol=1e-5)
    assert (w[..., 1, :] == 0).all() and (out[..., 1, :] == 0).all()
    _, ours = torch_pair()
    x = torch.randn(1, 2, 16)
    bias = torch.tensor([[0.0, float("-inf")], [float("-inf")] * 2])
    fused, _ = ours(x, x, x, mask=bias)
    explicit, _ = ours(x, x, x, mask=bias, need_weights=True)
    assert torch.isfinite(explicit).all()
    torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- parity sweeps (issue 25)

def random_mask(kind, shape, g, dtype):
    """A bool (True = may attend) or float (0 / random / -inf) mask of `shape` with a fully masked row."""
    allowed = torch.rand(shape, generator=g) > 0.4
    allowed[..., 1, :] = False  # query 1 may attend nothing
    if kind == "bool":
        return allowed
    bias = torch.randn(shape, generator=g, dtype=dtype)
    return bias.masked_fill(~allowed, float("-inf"))


def with_causal(mask, t_q, t_k):
    """The reference's combination of a mask with is_causal (torch's kernel takes one or the other)."""
    causal = causal_mask(t_q, t_k)
    if mask is None:
        return causal
    return mask & causal if mask.dtype == torch.bool else mask.masked_fill(~causal, float("-inf"))


SWEEP = [(dtype, kind, is_causal, B, H, Tq, Tk)
         for dtype in (torch.float32, torch.float64)
         for kind in (None, "bool", "float")
         for is_causal in (False, True)
         for B, H, Tq, Tk in ((2, 3, 5, 7), (3, 3, 4, 4), (4, 2, 4, 6), (1, 2, 6, 3))]  # B == H; B == Tq; Tq > Tk


def test_sdpa_equals_torch_over_dtypes_masks_causality_and_shapes():
    g = torch.Generator().manual_seed(5)
    for dtype, kind, is_causal, B, H, Tq, Tk in SWEEP:
        q, k, v = (torch.randn(B, H, t, 8, generator=g, dtype=dtype) for t in (Tq, Tk, Tk))
        mask = None if kind is None else random_mask(kind, (B, 1, Tq, Tk), g, dtype)
        reference_mask = with_causal(mask, Tq, Tk) if is_causal else mask
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=reference_mask)
        got, w = scaled_dot_product_attention(q, k, v, mask, is_causal=is_causal)
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(got, want, atol=tol, rtol=tol, msg=f"{dtype} {kind} causal={is_causal} {B, H, Tq, Tk}")
        assert torch.isfinite(w).all() and w.dtype == dtype


def test_float_mask_with_is_causal_never_attends_the_future():
    # query 1's only allowed past keys are -inf in the float mask: torch gives it zero output, never a future key
    q, k, v = qkv(B=1, H=1, Tq=4, Tk=4)
    bias = torch.zeros(4, 4)
    bias[1, :2] = float("-inf")
    out, w = scaled_dot_product_attention(q, k, v, bias, is_causal=True)
    assert (w.triu(1) == 0).all() and (w[..., 1, :] == 0).all() and (out[..., 1, :] == 0).all()


def test_float64_softmax_is_exact_and_a_fully_masked_bool_row_is_zero_not_nan():
    q, k, v = qkv(dtype=torch.float64)
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[2] = False
    out, w = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-14, rtol=1e-14)
    assert (w[..., 2, :] == 0).all() and torch.isfinite(out).all()


def torch_mask(mask):
    """Our mask (True = may attend, or float) as nn.MultiheadAttention's attn_mask (True = may NOT attend)."""
    return ~mask if mask.dtype == torch.bool else mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mha_equals_torch_with_masks_key_padding_and_causality(dtype):
    g = torch.Generator().manual_seed(6)
    ref, ours = torch_pair()
    ref, ours = ref.to(dtype), ours.to(dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for kind in (None, "bool", "float"):
        for is_causal in (False, True):
            for B, Tq, Tk in ((2, 5, 5), (4, 3, 6), (3, 3, 3)):  # B == n_head; B == Tq (3-D masks only)
                query, key = torch.randn(B, Tq, 16, generator=g, dtype=dtype), torch.randn(B, Tk, 16, generator=g, dtype=dtype)
                mask = None if kind is None else random_mask(kind, (B, Tq, Tk), g, dtype)
                real = torch.arange(Tk)[None, :] < torch.randint(1, Tk + 1, (B,), generator=g)[:, None]
                real[0] = True  # one full row, as a right-padded batch has
                combined = with_causal(mask, Tq, Tk) if is_causal else mask
                per_head = None if combined is None else torch_mask(combined).repeat_interleave(4, 0) if combined.ndim == 3 \
                    else torch_mask(combined)
                padding = ~real if kind != "float" else torch.zeros(B, Tk, dtype=dtype).masked_fill(~real, -math.inf)
                want, want_w = ref(query, key, key, attn_mask=per_head, key_padding_mask=padding, need_weights=True,
                                   average_attn_weights=False)
                keep = want_w.sum(-1).isfinite().all(1) & (want_w.sum(-1) > 0).all(1)  # rows torch leaves as NaN: skip
                for need_weights in (False, True):
                    got, w = ours(query, key, key, mask=mask, is_causal=is_causal, need_weights=need_weights,
                                  key_padding=real)
                    torch.testing.assert_close(got[keep], want[keep], atol=tol, rtol=tol)
                    assert torch.isfinite(got).all()
                torch.testing.assert_close(w.transpose(1, 2)[keep], want_w.transpose(1, 2)[keep], atol=tol, rtol=tol)


def test_mha_need_weights_true_and_false_agree_on_fully_masked_rows():
    _, ours = torch_pair()
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 5, 16, generator=g)
    for kind in ("bool", "float"):
        mask = random_mask(kind, (2, 5, 5), g, torch.float32)
        fused, _ = ours(x, x, x, mask=mask, is_causal=True)
        explicit, _ = ours(x, x, x, mask=mask, is_causal=True, need_weights=True)
        torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- masks never misread (issue 26)

def test_merge_masks_combines_bool_float_causal_and_key_padding():
    real = torch.tensor([[True, True, False], [True, True, True]])
    bias = torch.randn(3, 3)
    merged_bool = merge_masks(torch.ones(3, 3, dtype=torch.bool), real, True, (2, 1, 3, 3))
    want_bool = causal_mask(3) & real[:, None, None, :]
    assert merged_bool.dtype == torch.bool and torch.equal(merged_bool, want_bool)
    merged_float = merge_masks(bias, real, True, (2, 1, 3, 3))
    assert torch.equal(merged_float, torch.where(want_bool, bias, float("-inf")))
    assert merge_masks(None, None, False, (2, 1, 3, 3)) is None
    assert merge_masks(None, None, True, (2, 1, 1, 4), past=3) is None  # one new token may see every cached key


def test_two_d_mask_is_refused_where_it_could_be_key_padding():
    q, k, v = torch.randn(2, 2, 4), torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    padding = torch.tensor([[True, True, False], [True, True, True]])  # (B, Tk), and B == Tq
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3\) is ambiguous.*mask\[None\]"):
        scaled_dot_product_attention(q, k, v, padding)
    want, _ = scaled_dot_product_attention(q, k, v, padding[:, None, :])  # (B, 1, Tk): per example
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, key_padding=padding)[0], want)


def test_key_padding_of_torch_polarity_is_refused():
    _, ours = torch_pair()
    x = torch.randn(2, 3, 16)
    torch_style = torch.tensor([[False, False, True], [False, True, True]])  # True = padding, right-padded
    with pytest.raises(ValueError, match="every row starts with padding.*key_padding_mask"):
        ours(x, x, x, key_padding=torch_style)
    with pytest.raises(ValueError, match=r"rows \[0\] hold no real token"):
        ours(x, x, x, key_padding=torch.tensor([[False] * 3, [True] * 3]))
    left_padded = torch.tensor([[False, True, True], [True, True, True]])
    assert torch.isfinite(ours(x, x, x, key_padding=left_padded)[0]).all()


def test_three_d_mask_is_per_example_and_per_head_masks_are_four_d():
    _, ours = torch_pair()  # 4 heads
    x = torch.randn(4, 3, 16)
    per_head = torch.rand(1, 4, 3, 3, generator=torch.Generator().manual_seed(8)) > 0.3
    per_head[..., 0] = True
    _, w = ours(x, x, x, mask=per_head, need_weights=True)
    assert ((w == 0) | per_head).all() and (w.masked_select(~per_head.expand_as(w)) == 0).all()
    with pytest.raises(ValueError, match=r"\(1, n_head, Tq, Tk\) with n_head=4"):
        ours(x[:2], x[:2], x[:2], mask=per_head[0])


# ----------------------------------------------------------------------------- NaN and obscure errors (issue 26)

@pytest.mark.parametrize("where", ["query", "key", "value", "weights"])
def test_nan_is_refused_before_the_fused_kernel_and_propagates_on_the_explicit_path(where):
    _, ours = torch_pair()
    x = torch.randn(2, 3, 16)
    inputs = {"query": x, "key": x.clone(), "value": x.clone()}
    if where == "weights":
        with torch.no_grad():
            ours.k_proj.weight[0, 0] = float("nan")
    else:
        inputs[where] = inputs[where].clone().index_fill_(1, torch.tensor([1]), float("nan"))
    with pytest.raises(ValueError, match=f"{'k_proj' if where == 'weights' else where}.*nan"):
        ours(*inputs.values(), is_causal=True)
    explicit, _ = ours(*inputs.values(), is_causal=True, need_weights=True)
    assert torch.isnan(explicit).any()  # visible, never finite numbers from NaN


def test_dtype_and_width_mismatches_are_named():
    _, ours = torch_pair()
    x = torch.randn(2, 3, 16)
    with pytest.raises(ValueError, match="query has dtype torch.float64 but the weights are torch.float32"):
        ours(x.double(), x.double(), x.double())
    with pytest.raises(ValueError, match=r"key must have shape \(batch, T >= 1, kdim=16\)"):
        ours(x, torch.randn(2, 3, 8), x)
    with pytest.raises(ValueError, match="q, k and v must share one dtype"):
        scaled_dot_product_attention(x, x.double(), x)


# ----------------------------------------------------------------------------- kdim / vdim (issue 25)

@pytest.mark.parametrize("bias", [True, False])
def test_mha_with_kdim_and_vdim_equals_torch(bias):
    torch.manual_seed(9)
    ref = nn.MultiheadAttention(16, 4, bias=bias, kdim=6, vdim=10, batch_first=True).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.3)
    ours = MultiHeadAttention.from_torch(ref).eval()
    query, key, value = torch.randn(3, 4, 16), torch.randn(3, 7, 6), torch.randn(3, 7, 10)
    real = torch.arange(7)[None, :] < torch.tensor([7, 5, 2])[:, None]
    want, want_w = ref(query, key, value, key_padding_mask=~real, need_weights=True, average_attn_weights=False)
    for need_weights in (False, True):
        got, w = ours(query, key, value, key_padding=real, need_weights=need_weights)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, want_w, atol=1e-5, rtol=1e-5)
