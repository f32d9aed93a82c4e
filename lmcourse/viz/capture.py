"""Attention weights from any course model, without changing its code.

`Encoder(ids, need_weights=True)` returns its weights; `GPT` and other models that call
`MultiHeadAttention` without `need_weights` do not. `capture_attention` runs the model once and
asks every `MultiHeadAttention` inside it for its weights on the way (the explicit path: the same
outputs as the fused kernel), then hands the model back unchanged. A GPT's cached generation goes
through the same modules (they own the KV cache), so `capture_attention(gpt, new_ids, kv_cache=cache)`
gives the new positions' rows (B, n_head, T_new, past + T_new).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from lmcourse.attention import MultiHeadAttention

__all__ = ["capture_attention"]

_NEED_WEIGHTS = list(inspect.signature(MultiHeadAttention.forward).parameters).index("need_weights") - 1  # minus self


@torch.no_grad()
def capture_attention(model: nn.Module, *inputs, which: str | None = None, **kwargs) -> list[torch.Tensor]:
    """Run `model(*inputs, **kwargs)` in eval mode and return the weights (B, n_head, Tq, Tk) of every
    `MultiHeadAttention` call, in call order (one per layer for a GPT or an encoder).

    which: keep only modules whose name contains it, e.g. "cross_attn" for a decoder's cross-attention.
    The model's train/eval mode is restored afterwards; its outputs are not changed.
    """
    modules = {name: m for name, m in model.named_modules() if isinstance(m, MultiHeadAttention)}
    if which is not None:
        modules = {name: m for name, m in modules.items() if which in name}
    if not modules:
        kinds = sorted({name for name, m in model.named_modules() if isinstance(m, MultiHeadAttention)})
        raise ValueError(f"model has no MultiHeadAttention{f' whose name contains which={which!r}' if which else ''}"
                         f"; its attention modules are {kinds or 'none'}. For a Hugging Face model, call it with "
                         "output_attentions=True instead")
    captured: list[torch.Tensor] = []
    asked: list[bool] = []

    def before(module, args, kw):  # force need_weights=True, remember what the caller asked for
        if len(args) > _NEED_WEIGHTS:
            asked.append(bool(args[_NEED_WEIGHTS]))
            args = args[:_NEED_WEIGHTS] + (True,) + args[_NEED_WEIGHTS + 1:]
        else:
            asked.append(bool(kw.get("need_weights", False)))
            kw = {**kw, "need_weights": True}
        return args, kw

    def after(module, args, kw, output):
        out, weights = output
        captured.append(weights.detach())
        return out, (weights if asked.pop() else None)

    handles = [h for m in modules.values() for h in (m.register_forward_pre_hook(before, with_kwargs=True),
                                                     m.register_forward_hook(after, with_kwargs=True))]
    was_training = model.training
    model.eval()  # dropout off: the weights a learner should look at
    try:
        model(*inputs, **kwargs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    if not captured:
        raise ValueError(f"the model called none of its MultiHeadAttention modules {sorted(modules)}; check that "
                         "these inputs reach them (and which=, if given)")
    return captured
