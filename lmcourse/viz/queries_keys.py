"""The query and key vectors of every head, read from a model as it runs: what the neuron view shows.

A head's weight for query i and key j is softmax_j(q_i . k_j * scale), scale = 1/sqrt(head_dim). To show
how it comes about we need q and k themselves, which a model does not return. `capture_queries_keys`
hooks the model's own projections for one forward pass and hands the model back unchanged:

- a course model (`GPT`, `Encoder`, anything built on `MultiHeadAttention`): its q_proj and k_proj;
- Hugging Face BERT-style self-attention (modules with `query` and `key` projections) and GPT-2 (its
  fused `c_attn`, split into q, k, v), run with output_attentions=True and attn_implementation="eager".

It also returns the model's own attention weights, so the softmax shown is the model's, masks included.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from lmcourse.attention import MultiHeadAttention
from lmcourse.viz.attention import attention_array
from lmcourse.viz.capture import capture_attention

__all__ = ["QueriesKeys", "capture_queries_keys"]


class QueriesKeys(NamedTuple):
    """What `capture_queries_keys` returns, for one batch element."""

    queries: np.ndarray  # (L, H, Tq, head_dim)
    keys: np.ndarray     # (L, H, Tk, head_dim)
    weights: np.ndarray  # (L, H, Tq, Tk): the model's attention weights
    scale: float         # the factor on q . k before the softmax (1/sqrt(head_dim))


def _heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    B, T, D = x.shape
    return x.detach().float().reshape(B, T, n_head, D // n_head).transpose(1, 2)  # (B, H, T, head_dim)


def _hf_projections(model: nn.Module) -> list[tuple[nn.Module, str, int]]:
    """(module to hook, what it gives, n_head) for a Hugging Face model's self-attention layers, in order:
    "q" / "k" for BERT's query / key Linear layers, "qkv" for GPT-2's fused c_attn."""
    found = []
    for module in model.modules():
        if all(hasattr(module, a) for a in ("query", "key", "num_attention_heads")):
            found += [(module.query, "q", module.num_attention_heads), (module.key, "k", module.num_attention_heads)]
        elif hasattr(module, "c_attn") and hasattr(module, "num_heads") and not getattr(module, "is_cross_attention", False):
            found.append((module.c_attn, "qkv", module.num_heads))
    return found


@torch.no_grad()
def capture_queries_keys(model: nn.Module, *inputs, batch_index: int = 0, **kwargs) -> QueriesKeys:
    """Run `model(*inputs, **kwargs)` once in eval mode and return every self-attention layer's queries, keys
    and weights (a `QueriesKeys` of numpy arrays for batch element `batch_index`).

    model: a course model built on `MultiHeadAttention` (a GPT, an Encoder) or a Hugging Face BERT or GPT-2
    loaded with attn_implementation="eager" (output_attentions=True is added). The model is unchanged after.
    """
    course = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    hf = [] if course else _hf_projections(model)
    if not course and not hf:
        raise ValueError(f"{type(model).__name__} has neither MultiHeadAttention modules nor Hugging Face BERT / GPT-2 "
                         "self-attention (query/key or c_attn projections); the neuron view cannot read its q and k")
    got: dict[str, list[torch.Tensor]] = {"q": [], "k": []}

    def keep(what: str, n_head: int):
        def hook(module, args, output):
            if what == "qkv":
                q, k, _ = output.split(output.shape[-1] // 3, dim=-1)
                got["q"].append(_heads(q, n_head))
                got["k"].append(_heads(k, n_head))
            else:
                got[what].append(_heads(output, n_head))
        return hook

    if course:
        targets = [(m.q_proj, "q", m.n_head) for m in course] + [(m.k_proj, "k", m.n_head) for m in course]
    else:
        targets = hf
    handles = [module.register_forward_hook(keep(what, n)) for module, what, n in targets]
    was_training = model.training
    try:
        if course:
            weights = capture_attention(model, *inputs, **kwargs)
        else:
            model.eval()
            weights = model(*inputs, output_attentions=True, **kwargs).attentions
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    arr = attention_array(weights, batch_index)  # (L, H, Tq, Tk)
    queries = torch.stack([q[batch_index] for q in got["q"]]).numpy()  # (L, H, Tq, head_dim)
    keys = torch.stack([k[batch_index] for k in got["k"]]).numpy()
    if queries.shape[:2] != arr.shape[:2] or keys.shape[2] != arr.shape[3]:
        raise ValueError(f"captured queries {queries.shape} and keys {keys.shape} do not match the attention weights "
                         f"{arr.shape}: the model has attention the neuron view does not know (cross-attention?)")
    return QueriesKeys(queries, keys, arr, 1.0 / float(np.sqrt(queries.shape[-1])))
