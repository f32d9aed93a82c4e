"""GPT: a decoder-only Transformer language model, and the import of GPT-2 weights from transformers.

Read top to bottom: the config, the key/value cache, the MLP, the block (pre-norm, causal
multi-head attention from `lmcourse.attention`), the model, then `GPT.from_hf`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.attention import MultiHeadAttention
from lmcourse.checkpoint import read_checkpoint
from lmcourse.checks import check_int, check_number, check_positive_ints, check_targets, check_token_ids, describe


@dataclass
class GPTConfig:
    """Sizes of a GPT. GPT-2 small is GPTConfig(50257, 1024, 12, 12, 768)."""

    vocab_size: int
    block_size: int  # the longest context, in tokens
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    bias: bool = True  # biases in Linear layers and LayerNorms, as GPT-2

    def __post_init__(self) -> None:
        check_positive_ints(vocab_size=self.vocab_size, block_size=self.block_size, n_layer=self.n_layer,
                            n_head=self.n_head, n_embd=self.n_embd)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}; "
                             f"e.g. n_embd={self.n_head * max(1, round(self.n_embd / self.n_head))}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class KVCache:
    """The keys and values every layer has computed so far, so that generation feeds one new token per step.

    Each layer's keys and values live in a buffer allocated once, (B, n_head, max_len, head_dim), and each
    step writes its new positions into it in place: no tensor is copied per step (growing the cache with
    torch.cat would copy all t cached positions at every step, O(t^2) work over a generation).
    keys[layer][:, :, :layer_length(layer)] are the filled positions. Without the cache, step t of
    generation recomputes all t positions; with it, only the new one (attention still reads all t).
    max_len: the capacity (GPT.new_kv_cache gives block_size); None or too small: it doubles when full.
    """

    def __init__(self, n_layer: int, max_len: int | None = None):
        if max_len is not None and max_len < 1:
            raise ValueError(f"max_len must be >= 1 or None, got {max_len}")
        self.max_len = max_len
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


class MLP(nn.Module):
    """Position-wise feed-forward: expand to 4 * n_embd, GELU (tanh form, as GPT-2), project back."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


def cached_attention(attn: MultiHeadAttention, x: torch.Tensor, cache: KVCache, layer: int) -> torch.Tensor:
    """Causal self-attention of the new positions x (B, T_new, C) to the cached ones and themselves.

    Uses `attn`'s own projection weights, so it computes exactly what `attn(x, x, x, is_causal=True)`
    would for these positions given the whole sequence.
    """
    B, T_new, C = x.shape
    n_head, head_dim = attn.n_heads, C // attn.n_heads
    q, k, v = (proj(x).view(B, T_new, n_head, head_dim).transpose(1, 2)  # (B, n_head, T_new, head_dim)
               for proj in (attn.q_proj, attn.k_proj, attn.v_proj))
    past = cache.layer_length(layer)
    k, v = cache.update(layer, k, v)  # (B, n_head, past + T_new, head_dim)
    mask = None  # one new token may see every cached key
    if T_new > 1:  # new position i sits at past + i and may see keys 0..past + i (True = may attend)
        mask = torch.arange(past + T_new, device=x.device)[None, :] <= past + torch.arange(T_new, device=x.device)[:, None]
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, n_head, T_new, head_dim)
    return attn.out_proj(y.transpose(1, 2).reshape(B, T_new, C))


class Block(nn.Module):
    """Pre-norm Transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, dropout=config.dropout, bias=config.bias)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, kv_cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        h = self.ln_1(x)
        if kv_cache is None:
            a, _ = self.attn(h, h, h, is_causal=True)
        else:
            a = cached_attention(self.attn, h, kv_cache, layer)
        x = x + self.dropout(a)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token + position embeddings, n_layer blocks, a final LayerNorm and a head tied to the token embedding."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one matrix reads tokens in and scores them out
        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream by 1/sqrt(2 * n_layer), so
        # the stream's variance does not grow with depth (each block adds two such writes)
        for name, p in self.named_parameters():
            if name.endswith(("out_proj.weight", "c_proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def new_kv_cache(self, max_len: int | None = None) -> KVCache:
        """An empty key/value cache for `forward(idx, kv_cache=...)` (used by `lmcourse.generate`), with room for
        max_len positions (default block_size; generate asks for prompt + new tokens)."""
        return KVCache(self.config.n_layer, self.config.block_size if max_len is None else max_len)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                kv_cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) token ids -> (logits (B, T, vocab), mean cross-entropy against targets (B, T) or None).

        kv_cache: idx holds the positions after the cached ones; their keys and values are added to it.
        """
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2:
            raise ValueError(f"idx must have shape (batch, time), got {describe(idx)}")
        start = kv_cache.length if kv_cache is not None else 0
        T = idx.size(1)
        if start + T > self.config.block_size:
            raise ValueError(f"sequence length {start + T} exceeds block_size={self.config.block_size}; "
                             "crop the input to its last block_size tokens")
        pos = torch.arange(start, start + T, device=idx.device)
        try:
            tok = self.wte(idx)  # (B, T, n_embd)
        except (IndexError, RuntimeError):  # ids outside the vocabulary or not integers: name the mistake (free when right)
            check_token_ids("idx", idx, self.config.vocab_size)
            raise
        x = self.drop(tok + self.wpe(pos))  # (B, T, n_embd)
        for layer, block in enumerate(self.blocks):
            x = block(x, kv_cache, layer)
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab)
        loss = None
        if targets is not None:
            check_targets("targets", targets, idx.shape)
            try:
                loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-100)
            except IndexError as exc:
                raise ValueError(f"targets hold ids outside [0, vocab_size={self.config.vocab_size}) (-100 marks a "
                                 f"position to ignore): {exc}") from exc
        return logits, loss

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameters (tied weights counted once); non_embedding drops the position embedding, as in scaling laws."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def flops_per_token(self, context: int | None = None) -> dict[str, int]:
        """Training FLOPs per token: the 6N rule and an exact count of the matrix multiplies (forward x 3).

        N counts the weights used in matmuls (token embedding too, as the output head);
        attention adds 2 * 2 * n_layer * context * n_embd per token forward (scores and weighted sum).
        """
        c = self.config
        context = c.block_size if context is None else check_int("context", context)
        d, L = c.n_embd, c.n_layer
        matmul_params = L * (4 * d * d + 8 * d * d) + c.vocab_size * d  # attn q,k,v,out + MLP + head
        attention = 2 * 2 * L * context * d  # q.k for `context` keys, then the weighted sum of as many values
        forward = 2 * matmul_params + attention
        return {"6N": 6 * self.num_parameters(), "exact": 3 * forward, "forward": forward, "attention": attention}

    def configure_optimizer(self, lr: float, weight_decay: float = 0.1, betas: tuple[float, float] = (0.9, 0.95),
                            device: torch.device | str | None = None) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices (Linear weights, embeddings) only; biases and LayerNorms are not decayed."""
        check_number("lr", lr, 0, low_open=True)
        check_number("weight_decay", weight_decay, 0, fix="0.1 is usual; 0 turns it off")
        params = {id(p): p for p in self.parameters() if p.requires_grad}.values()  # tied weight once
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        fused = device is not None and torch.device(device).type == "cuda"
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> GPT:
        """A GPT rebuilt from `save_checkpoint(path, gpt, config=gpt.config)`: the config, then the weights."""
        state = read_checkpoint(path, map_location)
        config = state.get("metadata", {}).get("config")
        if not isinstance(config, dict):
            raise ValueError(f"checkpoint {str(path)!r} has no GPT config; save it with "
                             f"save_checkpoint(path, model, config=model.config)")
        try:
            model = cls(GPTConfig(**config))
        except TypeError as exc:
            raise ValueError(f"checkpoint {str(path)!r} holds config {config}, which is not a GPTConfig ({exc})") from exc
        model.load_state_dict(state["model"])
        return model.to(map_location)

    @classmethod
    def from_hf(cls, model: nn.Module) -> GPT:
        """Copy a transformers `GPT2LMHeadModel` into a new GPT with identical logits.

        GPT-2 stores its linear layers as `Conv1D`, with weights (in, out): the transpose of
        nn.Linear's (out, in). Its attention projects q, k, v with one fused `c_attn`; we split it.
        """
        hf = getattr(model, "config", None)
        if getattr(hf, "model_type", None) != "gpt2":
            raise ValueError(f"model must be a transformers GPT2LMHeadModel, got a {type(model).__name__} with "
                             f"model_type {getattr(hf, 'model_type', None)!r}")
        if getattr(hf, "activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"activation_function {hf.activation_function!r} is not GPT-2's tanh GELU; "
                             "only 'gelu_new' converts exactly")
        config = GPTConfig(vocab_size=hf.vocab_size, block_size=hf.n_positions, n_layer=hf.n_layer,
                           n_head=hf.n_head, n_embd=hf.n_embd, dropout=0.0, bias=True)
        ours = cls(config)
        sd = model.state_dict()
        d = config.n_embd
        with torch.no_grad():
            ours.wte.weight.copy_(sd["transformer.wte.weight"])
            ours.wpe.weight.copy_(sd["transformer.wpe.weight"])
            ours.ln_f.weight.copy_(sd["transformer.ln_f.weight"])
            ours.ln_f.bias.copy_(sd["transformer.ln_f.bias"])
            for i, block in enumerate(ours.blocks):
                p = f"transformer.h.{i}."
                for ln in ("ln_1", "ln_2"):
                    getattr(block, ln).weight.copy_(sd[p + ln + ".weight"])
                    getattr(block, ln).bias.copy_(sd[p + ln + ".bias"])
                w_qkv, b_qkv = sd[p + "attn.c_attn.weight"].t(), sd[p + "attn.c_attn.bias"]  # (3d, d), (3d,)
                for j, proj in enumerate((block.attn.q_proj, block.attn.k_proj, block.attn.v_proj)):
                    proj.weight.copy_(w_qkv[j * d:(j + 1) * d])
                    proj.bias.copy_(b_qkv[j * d:(j + 1) * d])
                block.attn.out_proj.weight.copy_(sd[p + "attn.c_proj.weight"].t())
                block.attn.out_proj.bias.copy_(sd[p + "attn.c_proj.bias"])
                block.mlp.c_fc.weight.copy_(sd[p + "mlp.c_fc.weight"].t())
                block.mlp.c_fc.bias.copy_(sd[p + "mlp.c_fc.bias"])
                block.mlp.c_proj.weight.copy_(sd[p + "mlp.c_proj.weight"].t())
                block.mlp.c_proj.bias.copy_(sd[p + "mlp.c_proj.bias"])
        eps = getattr(hf, "layer_norm_epsilon", 1e-5)
        for module in ours.modules():
            if isinstance(module, nn.LayerNorm):
                module.eps = eps
        return ours.to(next(model.parameters()).dtype).eval()
