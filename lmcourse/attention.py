"""Attention: scaled dot-product attention from scratch, masks, the key/value cache, and multi-head attention.

Read top to bottom: the masks (torch's convention, boolean True = may attend) and `merge_masks`, the one
place where an attention mask, `is_causal` and a key-padding mask become one mask for the scores; the
explicit `scaled_dot_product_attention` that returns its weights and the stages it goes through (raw
scores, masked, softmax) for the visualizers; the `KVCache` of generation; then `MultiHeadAttention`,
whose fast path is torch's fused `F.scaled_dot_product_attention` and whose parameters copy one-to-one
from `torch.nn.MultiheadAttention`.

Shapes are batch-first: q (..., Tq, d), k (..., Tk, d), v (..., Tk, d_v), weights (..., Tq, Tk).
Two kinds of mask, never confused:
- `mask`: which query may attend which key, bool (True = may attend) or float (added to the scores),
  broadcastable to the scores (..., Tq, Tk). A 2-D mask is always (Tq, Tk), the same for every example.
- `key_padding`: (B, Tk) bool, True for a real key, False for padding (the polarity of transformers'
  `attention_mask` and of `padding_mask`; torch's `key_padding_mask` is the opposite, True = padding,
  and is refused when it shows: a row of nothing but padding, or padding at the start of every row).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.checks import check_int, check_number, check_positive_ints, describe

__all__ = [
    "attention_stages",
    "causal_mask",
    "check_features",
    "check_key_padding",
    "check_mask",
    "KVCache",
    "merge_masks",
    "MultiHeadAttention",
    "padding_mask",
    "scaled_dot_product_attention",
]


# ----------------------------------------------------------------------------- masks

def causal_mask(t_q: int, t_k: int | None = None, device: torch.device | str | None = None,
                past: int = 0) -> torch.Tensor:
    """(t_q, t_k) bool, True where query i may attend key j, i.e. j <= past + i.

    past=0: top-left aligned, as torch's is_causal. past > 0: the queries follow `past` cached positions
    (generation with a KV cache), so query i sits at position past + i.
    """
    t_k = t_q if t_k is None else t_k
    check_positive_ints(t_q=t_q, t_k=t_k)
    check_int("past", past, minimum=0)
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=past)


def padding_mask(lengths: torch.Tensor | list[int], t_k: int | None = None) -> torch.Tensor:
    """(B, 1, 1, t_k) bool key-padding mask, True for the first lengths[b] keys of sequence b.

    Broadcasts against (B, heads, Tq, Tk) weights; use mask[:, 0] for unheaded (B, Tq, Tk) attention.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1 or lengths.numel() == 0 or lengths.dtype.is_floating_point:
        raise ValueError(f"lengths must be a non-empty 1-D sequence of ints, got shape {tuple(lengths.shape)}, "
                         f"dtype {lengths.dtype}")
    t_k = int(lengths.max()) if t_k is None else check_int("t_k", t_k)
    if int(lengths.min()) < 0 or int(lengths.max()) > t_k:
        raise ValueError(f"lengths must be in [0, t_k={t_k}], got {lengths.tolist()}")
    return (torch.arange(t_k, device=lengths.device) < lengths[:, None])[:, None, None, :]


def check_mask(mask: torch.Tensor | None, scores_shape: torch.Size | tuple[int, ...], name: str = "mask") -> None:
    """Raise ValueError unless `mask` is None, or a bool/float tensor broadcastable to `scores_shape` (..., Tq, Tk)
    (a float mask without NaN)."""
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
    if mask.is_floating_point() and torch.isnan(mask).any():
        raise ValueError(f"{name} holds nan; a float mask is added to the scores: use 0 for 'may attend' and "
                         "-inf for 'may not'")


def check_key_padding(key_padding: torch.Tensor, batch: int, t_k: int, name: str = "key_padding") -> torch.Tensor:
    """`key_padding` as a (batch, t_k) bool tensor, True = real key, after refusing what it cannot be.

    Refused: another dtype or shape; a row with no real key (nothing to attend); padding at the start of
    every row. The last two are what torch's `key_padding_mask` (True = padding) of a right-padded batch
    looks like, so a mask of the opposite polarity is refused instead of silently inverted. (Left padding
    keeps at least one full row, so it passes.) Reads the mask once: call it once per forward, not per layer.
    """
    if not isinstance(key_padding, torch.Tensor) or key_padding.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor (batch, T), True for real tokens, got {describe(key_padding)}; "
                         f"from 0/1 ids use {name}.bool()")
    if tuple(key_padding.shape) != (batch, t_k):
        raise ValueError(f"{name} must have shape (batch, keys) = {(batch, t_k)}, True for real tokens, "
                         f"got shape {tuple(key_padding.shape)}")
    empty_rows = ~key_padding.any(dim=-1)  # (batch,)
    if empty_rows.any() or not key_padding[:, 0].any():
        why = (f"rows {empty_rows.nonzero().flatten().tolist()} hold no real token" if empty_rows.any()
               else "every row starts with padding")
        raise ValueError(f"{name} is True for real tokens and False for padding, but {why}: this looks like torch's "
                         f"key_padding_mask (True = padding); pass ~{name}, or drop the padding every row shares")
    return key_padding


def _refuse_ambiguous_2d_mask(mask: torch.Tensor | None, batch: int | None, t_q: int) -> None:
    """A 2-D mask is (Tq, Tk). When batch == Tq it has the shape of a (batch, Tk) key padding too: refuse it."""
    if isinstance(mask, torch.Tensor) and mask.ndim == 2 and batch is not None and batch == t_q > 1:
        raise ValueError(f"mask of shape {tuple(mask.shape)} is ambiguous when batch == Tq == {t_q}: a 2-D mask is "
                         "(Tq, Tk), one mask for every example, and a (batch, Tk) key padding has the same shape. "
                         "Pass mask[None] (1, Tq, Tk) for one mask for all examples, or key_padding=(batch, Tk) "
                         "(True = real token) for padding")


def merge_masks(mask: torch.Tensor | None, key_padding: torch.Tensor | None, is_causal: bool,
                scores_shape: torch.Size | tuple[int, ...], past: int = 0,
                device: torch.device | str | None = None) -> torch.Tensor | None:
    """One mask for the scores (..., Tq, Tk) from an attention mask, a key padding and causality; None if nothing is masked.

    mask: bool (True = may attend) or float (added to the scores), broadcastable to scores_shape.
    key_padding: (B, Tk) bool, True = real key (checked with `check_key_padding` by the caller).
    is_causal: query i may attend keys j <= past + i (`causal_mask`, built on `device`).
    The result is bool when every part is, else float with -inf where a bool part forbids (never the
    dtype's finite minimum: a row whose allowed keys are all -inf would then put its weight on a
    forbidden key). Its shape is the broadcast of the parts (the causal part has the scores' rank).
    """
    t_q, t_k = scores_shape[-2], scores_shape[-1]
    allowed = None  # the bool parts, True = may attend
    if is_causal and past < t_k - 1:  # else the causal mask forbids nothing (one new token after the cache)
        allowed = causal_mask(t_q, t_k, device=device, past=past)[(None,) * (len(scores_shape) - 2)]  # (1, .., Tq, Tk)
    if key_padding is not None:
        real = key_padding.view(key_padding.shape[0], *[1] * (len(scores_shape) - 2), t_k)  # (B, 1, ..., 1, Tk)
        allowed = real if allowed is None else allowed & real
    if mask is None or allowed is None:
        return allowed if mask is None else mask
    if mask.dtype == torch.bool:
        return mask & allowed
    return torch.where(allowed, mask, float("-inf"))


# ----------------------------------------------------------------------------- explicit attention

def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor) or x.ndim < 2 or not x.is_floating_point():
            raise ValueError(f"{name} must be a float tensor of shape (..., T, d), got {describe(x)}")
    if not q.dtype == k.dtype == v.dtype:
        raise ValueError(f"q, k and v must share one dtype, got {q.dtype}, {k.dtype} and {v.dtype}; convert with "
                         f".to({q.dtype})")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share their last dimension (d), got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2] or k.shape[-2] == 0:
        raise ValueError(f"k and v must have the same number of keys, at least one, got k {tuple(k.shape)} and "
                         f"v {tuple(v.shape)}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(f"the leading (batch, heads) dimensions of q {tuple(q.shape)}, k {tuple(k.shape)} and "
                         f"v {tuple(v.shape)} do not broadcast") from None


def attention_stages(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None,
                     scale: float | None = None) -> dict[str, torch.Tensor]:
    """The three stages of attention weights, for teaching and for `plot_attention(stage=...)`.

    Returns {"scores": q k^T * scale, "masked": scores with disallowed entries at the dtype's most
    negative finite number (never -inf, so half precision stays finite) or plus a float mask,
    "weights": softmax(masked)}, each (..., Tq, Tk). Rows with no allowed key (all False, or all -inf in
    a float mask) get all-zero weights (not NaN, not uniform), as torch's fused
    `F.scaled_dot_product_attention` gives. The softmax runs in float32 for half precision (exact there),
    in the input's dtype otherwise (float64 stays float64).
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
    half = scores.dtype in (torch.float16, torch.bfloat16)
    weights = torch.softmax(masked.float() if half else masked, dim=-1).to(scores.dtype)
    if allowed is not None:
        weights = weights * allowed  # a fully masked row: zeros, not a uniform spread over forbidden keys
    elif mask is not None:  # a float mask with a row of -inf: zeros as torch's fused kernel gives, not 0/0 = NaN
        weights = weights.masked_fill(torch.isneginf(masked).all(-1, keepdim=True), 0.0)
    return {"scores": scores, "masked": masked, "weights": weights}


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, dropout_p: float = 0.0, *,
                                 is_causal: bool = False, scale: float | None = None, training: bool = True,
                                 key_padding: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d) + mask) v, written out, returning the weights too.

    q (..., Tq, d), k (..., Tk, d), v (..., Tk, d_v); mask bool (True = may attend) or float (added to
    the scores), broadcastable to (..., Tq, Tk) as in torch (a 2-D mask is (Tq, Tk); refused when the
    batch q.shape[0] equals Tq, where a (batch, Tk) key padding has its shape: pass mask[None]);
    is_causal: query i may attend keys j <= i, combined with the mask; key_padding (B, Tk) bool, True =
    real key, for batched q (B, ..., Tq, d). Returns out (..., Tq, d_v) and weights (..., Tq, Tk)
    (before dropout). Equal to torch.nn.functional.scaled_dot_product_attention; NaN in q, k or v
    comes out as NaN (torch's fused CPU kernel turns NaN in q or k into finite numbers).
    The scale 1/sqrt(d): with independent unit-variance q and k entries, q.k has variance d. Without the
    scale the scores spread further apart as d grows and the softmax saturates towards one-hot: its Jacobian
    d weights / d scores goes to 0 for most entries (the keys with weight near 0 get a gradient near 0).
    Dividing by sqrt(d) keeps the scores at unit variance, so how peaked the softmax is, and the size of the
    gradient to q, do not depend on d. (The gradient to q itself does not vanish without the scale at
    moderate d: it is that Jacobian times keys that are sqrt(d) times longer; chapter 04 measures both.)
    """
    _check_qkv(q, k, v)
    check_number("dropout_p", dropout_p, 0, 1, high_open=True)
    batch = q.shape[0] if q.ndim >= 3 else None
    t_q, t_k = q.shape[-2], k.shape[-2]
    _refuse_ambiguous_2d_mask(mask, batch, t_q)
    scores_shape = (*torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]), t_q, t_k)
    check_mask(mask, scores_shape)
    if key_padding is not None:
        if batch is None:
            raise ValueError(f"key_padding needs batched q (B, ..., Tq, d), got q of shape {tuple(q.shape)}")
        check_key_padding(key_padding, batch, t_k)
    mask = merge_masks(mask, key_padding, is_causal, scores_shape, device=q.device)
    weights = attention_stages(q, k, mask, scale)["weights"]  # (..., Tq, Tk)
    dropped = F.dropout(weights, p=dropout_p, training=training) if dropout_p > 0 else weights
    return dropped @ v, weights  # (..., Tq, d_v), (..., Tq, Tk)


# ----------------------------------------------------------------------------- the key/value cache

class KVCache:
    """The keys and values every layer has computed so far, so that generation feeds one new token per step.

    Each layer's keys and values live in a buffer allocated once, (B, n_head, max_len, head_dim), and each
    step writes its new positions into it in place: no tensor is copied per step (growing the cache with
    torch.cat would copy all t cached positions at every step, O(t^2) work over a generation).
    keys[layer][:, :, :layer_length(layer)] are the filled positions. Without the cache, step t of
    generation recomputes all t positions; with it, only the new one (attention still reads all t).
    `MultiHeadAttention(..., kv_cache=cache, layer=i)` reads and extends layer i.
    max_len: the capacity (GPT.new_kv_cache gives block_size); None or too small: it doubles when full.
    """

    def __init__(self, n_layer: int, max_len: int | None = None):
        self.n_layer = check_int("n_layer", n_layer)
        self.max_len = None if max_len is None else check_int("max_len", max_len, fix="or None to grow as needed")
        self.keys: list[torch.Tensor | None] = [None] * n_layer  # (B, n_head, capacity, head_dim) buffers
        self.values: list[torch.Tensor | None] = [None] * n_layer
        self.lengths = [0] * n_layer

    @property
    def length(self) -> int:
        """How many positions are cached (the position of the next token)."""
        return self.lengths[0]

    def layer_length(self, layer: int) -> int:
        """How many positions `layer` has cached (during a forward pass, earlier layers are ahead)."""
        return self.lengths[layer]

    def _reserve(self, layer: int, k: torch.Tensor, v: torch.Tensor, needed: int) -> None:
        buffer = self.keys[layer]
        capacity = 0 if buffer is None else buffer.size(2)
        if needed <= capacity:
            return
        size = max(needed, self.max_len or 0, 2 * capacity)
        B, n_head, _, head_dim = k.shape
        keys, values = k.new_empty(B, n_head, size, head_dim), v.new_empty(B, n_head, size, v.size(-1))
        if buffer is not None:  # only when the capacity was too small: copy once, then double
            n = self.lengths[layer]
            keys[:, :, :n], values[:, :, :n] = buffer[:, :, :n], self.values[layer][:, :, :n]
        self.keys[layer], self.values[layer] = keys, values

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new positions' k, v (B, n_head, T_new, head_dim) in place; return views of all of them
        (B, n_head, T, head_dim)."""
        buffer = self.keys[layer]
        if buffer is not None and buffer.shape[0] != k.shape[0]:
            raise ValueError(f"this kv_cache holds a batch of {buffer.shape[0]} sequences, got a batch of "
                             f"{k.shape[0]}; start a new cache (model.new_kv_cache()) for another batch")
        start = self.lengths[layer]
        end = start + k.size(2)
        self._reserve(layer, k, v, end)
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        self.lengths[layer] = end
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows `index` (beam search continues some beams and drops others; same batch size)."""
        for buffers in (self.keys, self.values):
            for layer, buffer in enumerate(buffers):
                if buffer is not None:
                    n = self.lengths[layer]
                    buffer[:, :, :n] = buffer[:, :, :n].index_select(0, index)


# ----------------------------------------------------------------------------- multi-head attention

def check_features(name: str, x: object, width: int, dtype: torch.dtype | None, width_name: str = "n_embd") -> None:
    """Raise ValueError unless x is a float (batch, T >= 1, width) tensor of the weights' `dtype`.

    Under autocast, or with dtype None (quantized weights, which take any float input), any float dtype passes.
    Named here, the mistakes torch would report as "mat1 and mat2 shapes cannot be multiplied" or "must have the
    same dtype".
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[1] == 0 or x.shape[2] != width:
        raise ValueError(f"{name} must have shape (batch, T >= 1, {width_name}={width}), got {describe(x)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor, got dtype {x.dtype}; embed token ids first")
    if dtype is not None and x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise ValueError(f"{name} has dtype {x.dtype} but the weights are {dtype}; convert the input with "
                         f"{name}.to({dtype}) or the module with module.to({x.dtype})")


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate q/k/v projections, each head of size n_embd // n_head.

    forward(query (B, Tq, n_embd), key (B, Tk, kdim), value (B, Tk, vdim), mask=None, is_causal=False,
    need_weights=False, *, key_padding=None, kv_cache=None, layer=0)
    -> (out (B, Tq, n_embd), weights (B, n_head, Tq, Tk) or None).
    mask: bool (True = may attend) or float additive: (Tq, Tk) for every example and head (refused when
    B == Tq, where it has the shape of a key padding: pass mask[None]); (B, Tq, Tk) one per example, shared
    by the heads; (B, 1, 1, Tk) from `padding_mask`; (B, n_head, Tq, Tk) or (1, n_head, Tq, Tk) per head.
    (torch.nn.MultiheadAttention reads a 3-D mask as (B * n_head, Tq, Tk) instead.)
    key_padding: (B, Tk) bool, True = real key (see `check_key_padding`); is_causal: query i may attend keys
    j <= i, or j <= past + i after `past` cached positions. kv_cache, layer: self-attention during
    generation; the new keys and values are added to layer `layer` of the `KVCache` and the queries attend
    all of them.
    Without need_weights it runs torch's fused kernel; with it, the explicit path (same numbers).
    kdim, vdim: the widths of key and value when they differ from n_embd (cross-attention to a memory).
    Parameters: q_proj, k_proj, v_proj, out_proj (nn.Linear); `from_torch` copies a torch.nn.MultiheadAttention.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None):
        super().__init__()
        kdim, vdim = n_embd if kdim is None else kdim, n_embd if vdim is None else vdim
        check_positive_ints(n_embd=n_embd, n_head=n_head, kdim=kdim, vdim=vdim)
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}; "
                             f"e.g. n_embd={n_head * max(1, round(n_embd / n_head))}")
        check_number("dropout", dropout, 0, 1, high_open=True)
        self.n_embd, self.n_head, self.head_dim, self.dropout = n_embd, n_head, n_embd // n_head, dropout
        self.kdim, self.vdim = kdim, vdim
        self.q_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.k_proj = nn.Linear(kdim, n_embd, bias=bias)
        self.v_proj = nn.Linear(vdim, n_embd, bias=bias)
        self.out_proj = nn.Linear(n_embd, n_embd, bias=bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, head_dim)

    def _check_inputs(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> None:
        weight = self.q_proj.weight      # a method, not a tensor, once torch.ao quantization replaced the Linear
        dtype = weight.dtype if isinstance(weight, torch.Tensor) else None
        for name, x, width, width_name in (("query", query, self.n_embd, "n_embd"), ("key", key, self.kdim, "kdim"),
                                           ("value", value, self.vdim, "vdim")):
            check_features(name, x, width, dtype, width_name)
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(f"query, key, value must share the batch size and key/value the length, got "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")

    def _per_example(self, mask: torch.Tensor | None, B: int, Tq: int, Tk: int) -> torch.Tensor | None:
        """The mask, checked, with a 3-D (B, Tq, Tk) mask viewed as (B, 1, Tq, Tk): one per example, shared by the heads."""
        if isinstance(mask, torch.Tensor) and mask.ndim == 2:
            _refuse_ambiguous_2d_mask(mask, B, Tq)
        if isinstance(mask, torch.Tensor) and mask.ndim == 3:
            if mask.shape[0] not in (1, B) or mask.shape[1:] not in ((Tq, Tk), (1, Tk), (Tq, 1), (1, 1)):
                raise ValueError(f"a 3-D mask is one (queries, keys) mask per example: expected ({B}, {Tq}, {Tk}), "
                                 f"got {tuple(mask.shape)}; for one mask per head give (B, n_head, Tq, Tk) or "
                                 f"(1, n_head, Tq, Tk) with n_head={self.n_head}")
            mask = mask[:, None]  # (B, 1, Tq, Tk)
        check_mask(mask, (B, self.n_head, Tq, Tk))
        return mask

    @staticmethod
    def _refuse_nonfinite(projected: tuple[torch.Tensor, ...], inputs: dict[str, torch.Tensor]) -> None:
        """Refuse NaN/inf in q, k, v before torch's fused CPU kernel, which turns NaN in q or k into finite
        outputs (pytorch issue 141128): a diverged model would otherwise look healthy.

        Called on the CPU only. A NaN or inf anywhere makes the sum of q, k and v non-finite, so three sums
        tell, at no measurable cost (`isfinite(x).all()`, which builds boolean tensors, cost 4 % of the GPT train
        step). On CUDA a check would cost a sync per layer, and its kernels give NaN for NaN. The explicit path
        (need_weights) propagates NaN itself.
        """
        if bool(torch.isfinite(sum(x.sum() for x in projected))):
            return
        if all(bool(torch.isfinite(x).all()) for x in projected):  # finite values whose sum overflowed
            return
        for name, x in inputs.items():
            if not torch.isfinite(x).all():
                raise ValueError(f"{name} holds {int(torch.isnan(x).sum())} nan and {int(torch.isinf(x).sum())} inf "
                                 f"values (shape {tuple(x.shape)}); attention would hide them: look for where they "
                                 "come from (a diverged training run, a float16 overflow, the data)")
        raise ValueError("q_proj, k_proj or v_proj turn finite inputs into nan or inf values: the module's weights "
                         "hold nan or inf (a diverged training run? reload a checkpoint, lower the learning rate)")

    def _fused(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
               key_padding: torch.Tensor | None, is_causal: bool, past: int, dropout_p: float) -> torch.Tensor:
        """torch's fused kernel on (B, H, T, head_dim); plain causal attention uses its own is_causal (no mask built)."""
        kernel_causal = is_causal and past == 0 and mask is None and key_padding is None
        if not kernel_causal:
            B, _, Tq, _ = q.shape
            mask = merge_masks(mask, key_padding, is_causal, (B, self.n_head, Tq, k.shape[2]), past, q.device)
            if mask is not None and mask.is_floating_point():
                mask = mask.to(q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=kernel_causal)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None = None, is_causal: bool = False, need_weights: bool = False, *,
                key_padding: torch.Tensor | None = None, kv_cache: KVCache | None = None,
                layer: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check_inputs(query, key, value)
        B, Tq, _ = query.shape
        q, k, v = self._split(self.q_proj(query)), self._split(self.k_proj(key)), self._split(self.v_proj(value))
        if not need_weights and q.device.type == "cpu":
            self._refuse_nonfinite((q, k, v), {"query": query, "key": key, "value": value})
        past = 0
        if kv_cache is not None:  # the earlier positions' keys and values, then these
            past = kv_cache.layer_length(layer)
            k, v = kv_cache.update(layer, k, v)  # (B, H, past + Tk, head_dim)
        Tk = k.shape[2]
        mask = self._per_example(mask, B, Tq, Tk)
        if key_padding is not None:
            check_key_padding(key_padding, B, Tk)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            mask = merge_masks(mask, key_padding, is_causal, (B, self.n_head, Tq, Tk), past, q.device)
            y, weights = scaled_dot_product_attention(q, k, v, mask, p, training=self.training)
        else:
            y = self._fused(q, k, v, mask, key_padding, is_causal, past, p)  # (B, H, Tq, head_dim)
        y = y.transpose(1, 2).reshape(B, Tq, self.n_embd)  # (B, Tq, n_embd): heads side by side
        return self.out_proj(y), weights

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A MultiHeadAttention with the weights of a batch_first torch.nn.MultiheadAttention (same outputs)."""
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("from_torch does not support add_bias_kv or add_zero_attn")
        ours = cls(mha.embed_dim, mha.num_heads, dropout=mha.dropout, bias=mha.in_proj_bias is not None,
                   kdim=mha.kdim, vdim=mha.vdim)
        ours.load_torch_weights(mha)
        return ours.to(mha.out_proj.weight.device, mha.out_proj.weight.dtype)

    @torch.no_grad()
    def load_torch_weights(self, mha: nn.MultiheadAttention) -> None:
        """Copy a torch.nn.MultiheadAttention's q, k, v projections and out_proj into this module.

        torch stacks the three as in_proj_weight (3 n_embd, n_embd) when kdim = vdim = embed_dim, and keeps
        them apart (q_proj_weight, k_proj_weight, v_proj_weight) otherwise; the biases are in_proj_bias either way.
        """
        theirs = (mha.embed_dim, mha.num_heads, mha.kdim, mha.vdim)
        if theirs != (self.n_embd, self.n_head, self.kdim, self.vdim):
            raise ValueError(f"sizes differ: torch has (embed_dim, num_heads, kdim, vdim) = {theirs}; this module "
                             f"{(self.n_embd, self.n_head, self.kdim, self.vdim)}")
        if mha.in_proj_weight is not None:
            weights = mha.in_proj_weight.chunk(3)
        else:
            weights = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
        biases = (None,) * 3 if mha.in_proj_bias is None else mha.in_proj_bias.chunk(3)
        for proj, weight, bias in zip((self.q_proj, self.k_proj, self.v_proj), weights, biases):
            proj.weight.copy_(weight)
            if proj.bias is not None:
                proj.bias.copy_(bias)
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if self.out_proj.bias is not None:
            self.out_proj.bias.copy_(mha.out_proj.bias)

    def extra_repr(self) -> str:
        other = f", kdim={self.kdim}, vdim={self.vdim}" if (self.kdim, self.vdim) != (self.n_embd,) * 2 else ""
        return f"n_embd={self.n_embd}, n_head={self.n_head}, head_dim={self.head_dim}, dropout={self.dropout}{other}"
