"""Attention: scaled dot-product attention from scratch, masks, and multi-head attention.

Read top to bottom: the masks (torch's convention, boolean True = may attend), the explicit
`scaled_dot_product_attention` that returns its weights, the stages it goes through (raw scores,
masked, softmax) for the visualizers, then `MultiHeadAttention`, whose fast path is torch's fused
`F.scaled_dot_product_attention` and whose parameters copy one-to-one from `torch.nn.MultiheadAttention`.

Shapes are batch-first: q (..., Tq, d), k (..., Tk, d), v (..., Tk, d_v), weights (..., Tq, Tk).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.checks import check_number, check_positive_ints

__all__ = [
    "attention_stages",
    "causal_mask",
    "check_mask",
    "MultiHeadAttention",
    "padding_mask",
    "scaled_dot_product_attention",
]


# ----------------------------------------------------------------------------- masks

def causal_mask(t_q: int, t_k: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """(t_q, t_k) bool, True where query i may attend key j, i.e. j <= i (top-left aligned, as torch's is_causal)."""
    t_k = t_q if t_k is None else t_k
    check_positive_ints(t_q=t_q, t_k=t_k)
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor | list[int], t_k: int | None = None) -> torch.Tensor:
    """(B, 1, 1, t_k) bool key-padding mask, True for the first lengths[b] keys of sequence b.

    Broadcasts against (B, heads, Tq, Tk) weights; use mask[:, 0] for unheaded (B, Tq, Tk) attention.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1 or lengths.numel() == 0 or lengths.dtype.is_floating_point:
        raise ValueError(f"lengths must be a non-empty 1-D sequence of ints, got shape {tuple(lengths.shape)}, "
                         f"dtype {lengths.dtype}")
    t_k = int(lengths.max()) if t_k is None else t_k
    if int(lengths.min()) < 0 or int(lengths.max()) > t_k:
        raise ValueError(f"lengths must be in [0, t_k={t_k}], got {lengths.tolist()}")
    return (torch.arange(t_k, device=lengths.device) < lengths[:, None])[:, None, None, :]


def check_mask(mask: torch.Tensor | None, scores_shape: torch.Size | tuple[int, ...], name: str = "mask") -> None:
    """Raise ValueError unless `mask` is None, or a bool/float tensor broadcastable to `scores_shape` (..., Tq, Tk)."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.dtype.is_floating_point:
        raise ValueError(f"{name} must be bool (True = may attend) or a float additive mask, got dtype {mask.dtype}; "
                         f"convert with {name}.bool() if 1 means 'may attend'")
    try:
        shape = torch.broadcast_shapes(mask.shape, tuple(scores_shape))
    except RuntimeError:
        shape = None
    if shape != torch.Size(scores_shape):
        raise ValueError(f"{name} of shape {tuple(mask.shape)} does not broadcast to the attention scores "
                         f"{tuple(scores_shape)} (..., queries, keys); give (Tq, Tk), (B, Tq, Tk) or (B, heads, Tq, Tk), "
                         f"or padding_mask(lengths) for (B, 1, 1, Tk)")


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor) or x.ndim < 2:
            raise ValueError(f"{name} must be a tensor of shape (..., T, d), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share their last dimension (d), got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys, got k {tuple(k.shape)} and v {tuple(v.shape)}")


# ----------------------------------------------------------------------------- explicit attention

def attention_stages(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None,
                     scale: float | None = None) -> dict[str, torch.Tensor]:
    """The three stages of attention weights, for teaching and for `plot_attention(stage=...)`.

    Returns {"scores": q k^T * scale, "masked": scores with disallowed entries at the dtype's most
    negative finite number (never -inf, so half precision stays finite), "weights": softmax(masked)},
    each (..., Tq, Tk). Rows with no allowed key (all False, or all -inf in a float mask) get all-zero
    weights (not NaN, not uniform), as torch's fused `F.scaled_dot_product_attention` gives.
    """
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share their last dimension (d), got q {tuple(q.shape)} and k {tuple(k.shape)}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else check_number("scale", scale, fix="None gives 1/sqrt(d)")
    # Scale q before the product (not the product after): smaller intermediates, no fp16 overflow.
    scores = (q * scale) @ k.transpose(-2, -1)  # (..., Tq, Tk)
    check_mask(mask, scores.shape)
    masked, allowed = scores, None
    if mask is not None and mask.dtype == torch.bool:
        allowed = mask
        masked = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    elif mask is not None:
        masked = scores + mask.to(scores.dtype)
    weights = torch.softmax(masked.float(), dim=-1).to(scores.dtype)  # softmax in fp32: exact in half precision
    if allowed is not None:
        weights = weights * allowed  # a fully masked row: zeros, not a uniform spread over forbidden keys
    elif mask is not None:  # a float mask with a row of -inf: zeros as torch's fused kernel gives, not 0/0 = NaN
        weights = weights.masked_fill(torch.isneginf(masked).all(-1, keepdim=True), 0.0)
    return {"scores": scores, "masked": masked, "weights": weights}


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, dropout_p: float = 0.0, *,
                                 is_causal: bool = False, scale: float | None = None,
                                 training: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d) + mask) v, written out, returning the weights too.

    q (..., Tq, d), k (..., Tk, d), v (..., Tk, d_v); mask bool (True = may attend) or float (added to
    the scores), broadcastable to (..., Tq, Tk). Returns out (..., Tq, d_v) and weights (..., Tq, Tk)
    (before dropout). Equal to torch.nn.functional.scaled_dot_product_attention.
    The scale 1/sqrt(d): with unit-variance q and k entries, q.k has variance d; dividing by sqrt(d)
    keeps the scores at unit variance, so the softmax neither saturates (one-hot, vanishing gradients)
    as d grows nor flattens.
    """
    _check_qkv(q, k, v)
    check_number("dropout_p", dropout_p, 0, 1, high_open=True)
    if is_causal:
        causal = causal_mask(q.shape[-2], k.shape[-2], device=q.device)
        if mask is None:
            mask = causal
        elif mask.dtype == torch.bool:
            mask = mask & causal
        else:
            mask = mask.masked_fill(~causal, torch.finfo(mask.dtype).min)
    weights = attention_stages(q, k, mask, scale)["weights"]  # (..., Tq, Tk)
    dropped = F.dropout(weights, p=dropout_p, training=training) if dropout_p > 0 else weights
    return dropped @ v, weights  # (..., Tq, d_v), (..., Tq, Tk)


# ----------------------------------------------------------------------------- multi-head attention

class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate q/k/v projections, each head of size d_model // n_heads.

    forward(query (B, Tq, d_model), key (B, Tk, d_model), value (B, Tk, d_model), mask=None,
    is_causal=False, need_weights=False) -> (out (B, Tq, d_model), weights (B, n_heads, Tq, Tk) or None).
    mask: bool (True = may attend) or float additive: (Tq, Tk) for every example and head; (B, Tq, Tk)
    one per example, shared by the heads; (B, 1, 1, Tk) from `padding_mask`; or (B, n_heads, Tq, Tk).
    (torch.nn.MultiheadAttention reads a 3-D mask as (B * n_heads, Tq, Tk) instead.)
    Without need_weights it runs torch's fused kernel; with it, the explicit path (same numbers).
    Parameters: q_proj, k_proj, v_proj, out_proj (nn.Linear); `from_torch` copies a torch.nn.MultiheadAttention.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        check_positive_ints(d_model=d_model, n_heads=n_heads)
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}; "
                             f"e.g. d_model={n_heads * max(1, round(d_model / n_heads))}")
        check_number("dropout", dropout, 0, 1, high_open=True)
        self.d_model, self.n_heads, self.head_dim, self.dropout = d_model, n_heads, d_model // n_heads, dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, head_dim)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None = None, is_causal: bool = False,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        for name, x in (("query", query), ("key", key), ("value", value)):
            if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != self.d_model:
                raise ValueError(f"{name} must have shape (batch, T, d_model={self.d_model}), got "
                                 f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
            if not x.is_floating_point():
                raise ValueError(f"{name} must be a float tensor, got dtype {x.dtype}; embed token ids first")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(f"query, key, value must share the batch size and key/value the length, got "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        B, Tq, _ = query.shape
        Tk = key.shape[1]
        if isinstance(mask, torch.Tensor) and mask.ndim == 3:  # (B, Tq, Tk): one mask per example, shared by the heads
            if mask.shape[0] not in (1, B) or mask.shape[1:] not in ((Tq, Tk), (1, Tk), (Tq, 1), (1, 1)):
                raise ValueError(f"a 3-D mask is one (queries, keys) mask per example: expected ({B}, {Tq}, {Tk}), "
                                 f"got {tuple(mask.shape)}; for one mask per head give (B, n_heads, Tq, Tk)")
            mask = mask[:, None]  # (B, 1, Tq, Tk)
        check_mask(mask, (B, self.n_heads, Tq, Tk))
        q, k, v = self._split(self.q_proj(query)), self._split(self.k_proj(key)), self._split(self.v_proj(value))
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            y, weights = scaled_dot_product_attention(q, k, v, mask, p, is_causal=is_causal, training=self.training)
        else:
            if is_causal and mask is not None:  # torch's kernel takes one or the other; combine them
                causal = causal_mask(Tq, Tk, device=q.device)
                mask = mask & causal if mask.dtype == torch.bool else mask.masked_fill(~causal, float("-inf"))
                is_causal = False
            if mask is not None and mask.dtype.is_floating_point:
                mask = mask.to(q.dtype)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        y = y.transpose(1, 2).reshape(B, Tq, self.d_model)  # (B, Tq, d_model): heads side by side
        return self.out_proj(y), weights

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A MultiHeadAttention with the weights of a batch_first torch.nn.MultiheadAttention (same outputs)."""
        if mha.in_proj_weight is None:
            raise ValueError("from_torch needs a MultiheadAttention with equal q/k/v sizes (kdim = vdim = embed_dim)")
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("from_torch does not support add_bias_kv or add_zero_attn")
        bias = mha.in_proj_bias is not None
        ours = cls(mha.embed_dim, mha.num_heads, dropout=mha.dropout, bias=bias)
        ours.load_torch_weights(mha)
        return ours.to(mha.in_proj_weight.device, mha.in_proj_weight.dtype)

    @torch.no_grad()
    def load_torch_weights(self, mha: nn.MultiheadAttention) -> None:
        """Copy a torch.nn.MultiheadAttention's in_proj (stacked q, k, v) and out_proj into this module."""
        if (mha.embed_dim, mha.num_heads) != (self.d_model, self.n_heads):
            raise ValueError(f"sizes differ: torch has embed_dim={mha.embed_dim}, num_heads={mha.num_heads}; "
                             f"this module d_model={self.d_model}, n_heads={self.n_heads}")
        for j, proj in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            proj.weight.copy_(mha.in_proj_weight[j * self.d_model:(j + 1) * self.d_model])
            if proj.bias is not None:
                proj.bias.copy_(mha.in_proj_bias[j * self.d_model:(j + 1) * self.d_model])
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if self.out_proj.bias is not None:
            self.out_proj.bias.copy_(mha.out_proj.bias)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, head_dim={self.head_dim}, dropout={self.dropout}"
