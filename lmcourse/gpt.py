"""GPT: a decoder-only Transformer language model, and the import of GPT-2 weights from transformers.

Read top to bottom: the config, the MLP, the block (pre-norm, causal multi-head attention from
`lmcourse.attention`, which also owns the key/value cache of generation), the positions and mask of
left-padded batches, the model, then `GPT.from_hf` (a table of transformers' names for our weights).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.attention import KVCache, MultiHeadAttention, check_key_padding, merge_masks
from lmcourse.checkpoint import read_checkpoint
from lmcourse.checks import check_int, check_number, check_positive_ints, check_targets, check_token_ids, describe
from lmcourse.train import adamw


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
        check_number("dropout", self.dropout, 0, 1, high_open=True)
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be True or False, got {self.bias!r}")


class MLP(nn.Module):
    """Position-wise feed-forward: expand to 4 * n_embd, GELU (tanh form, as GPT-2), project back."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    """Pre-norm Transformer block: x + attention(LN(x)), then x + MLP(LN(x)).

    forward(x (B, T, n_embd), mask=None, kv_cache=None, layer=0): causal self-attention, or `mask`
    (B, 1, T, past + T) when the GPT has built one for padding; with a kv_cache, layer `layer` of it is
    read and extended by the attention module.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, dropout=config.dropout, bias=config.bias)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, kv_cache: KVCache | None = None,
                layer: int = 0) -> torch.Tensor:
        h = self.ln_1(x)
        a, _ = self.attn(h, h, h, mask=mask, is_causal=mask is None, kv_cache=kv_cache, layer=layer)
        x = x + self.dropout(a)
        return x + self.mlp(self.ln_2(x))


def left_padding(attention_mask: torch.Tensor, T: int, past: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (B, T) and attention mask (B, 1, T, past + T) of the last T tokens of left-padded sequences.

    attention_mask (B, past + T): 1/True for real tokens, 0/False for padding (transformers' convention).
    As transformers' GPT-2 in `generate`: a token's position counts the real tokens before it
    (cumsum - 1; padding gets 0), and query i may attend the real keys j <= past + i. A padding position
    attends only itself: its row would otherwise be empty, which some of torch's kernels turn into NaN
    (no real token attends it, so what it computes is never read).
    """
    B = attention_mask.shape[0] if isinstance(attention_mask, torch.Tensor) else -1
    if isinstance(attention_mask, torch.Tensor) and not attention_mask.is_floating_point():
        attention_mask = attention_mask.bool()
    real = check_key_padding(attention_mask, B, past + T, name="attention_mask")  # (B, past + T)
    positions = (real.long().cumsum(-1) - 1).masked_fill(~real, 0)[:, past:]  # (B, T)
    mask = merge_masks(None, real, True, (B, 1, T, past + T), past, real.device)  # (B, 1, T, past + T)
    keys = torch.arange(past + T, device=real.device)
    itself = keys[None, :] == past + torch.arange(T, device=real.device)[:, None]  # (T, past + T)
    return positions, mask | itself


class GPT(nn.Module):
    """Token + position embeddings, n_layer blocks, a final LayerNorm and a head tied to the token embedding."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise ValueError(f"config must be a GPTConfig, got {config!r}; build one with GPTConfig(vocab_size, "
                             "block_size, n_layer, n_head, n_embd)")
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
        return KVCache(self.config.n_layer, self.config.block_size if max_len is None else check_int("max_len", max_len))

    def _cached_length(self, kv_cache: KVCache | None) -> int:
        """How many positions kv_cache holds (0 without one), after checking it belongs to a model like this one."""
        if kv_cache is None:
            return 0
        if not isinstance(kv_cache, KVCache):
            raise ValueError(f"kv_cache must be a KVCache from model.new_kv_cache(), got {describe(kv_cache)}")
        if kv_cache.n_layer != self.config.n_layer:
            raise ValueError(f"kv_cache has n_layer={kv_cache.n_layer} layers, this model {self.config.n_layer}; "
                             "use model.new_kv_cache()")
        return kv_cache.length

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        try:
            return self.wte(idx)  # (B, T, n_embd)
        except (IndexError, RuntimeError):  # ids outside the vocabulary or not integers: name the mistake (free when right)
            check_token_ids("idx", idx, self.config.vocab_size)
            raise

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, kv_cache: KVCache | None = None,
                attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) token ids -> (logits (B, T, vocab), mean cross-entropy against targets (B, T) or None).

        kv_cache: idx holds the positions after the cached ones; their keys and values are added to it.
        attention_mask: (B, past + T) over the cached positions and these, 1/True for real tokens and 0/False
        for left padding (transformers' convention); see `left_padding` for positions and masking.
        """
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.shape[1] == 0:
            raise ValueError(f"idx must have shape (batch, time >= 1), got {describe(idx)}")
        past, T = self._cached_length(kv_cache), idx.size(1)
        if past + T > self.config.block_size:
            raise ValueError(f"sequence length {past + T} exceeds block_size={self.config.block_size}; "
                             "crop the input to its last block_size tokens")
        if attention_mask is None:
            pos, mask = torch.arange(past, past + T, device=idx.device), None  # (T,); the attention is causal
        else:
            pos, mask = left_padding(attention_mask, T, past)  # (B, T), (B, 1, T, past + T)
        x = self.drop(self._embed(idx) + self.wpe(pos))  # (B, T, n_embd)
        for layer, block in enumerate(self.blocks):
            x = block(x, mask, kv_cache, layer)
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
        """AdamW with weight decay on matrices (Linear weights, embeddings) only: `lmcourse.train.adamw`."""
        return adamw(self, lr, weight_decay, betas, device)

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
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ValueError(f"checkpoint {str(path)!r} holds config {config}, which does not fit its weights"
                             f"{_config_mismatch(config, state['model'])}; save the config the model was built "
                             f"with ({str(exc).splitlines()[0]})") from exc
        return model.to(map_location)

    @classmethod
    def from_hf(cls, model: nn.Module) -> GPT:
        """Copy a transformers `GPT2LMHeadModel` into a new GPT with identical logits (see `GPT2_KEYS`)."""
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
        ours.load_state_dict(_from_gpt2_names(model.state_dict(), config.n_layer))
        eps = getattr(hf, "layer_norm_epsilon", 1e-5)
        for module in ours.modules():
            if isinstance(module, nn.LayerNorm):
                module.eps = eps
        return ours.to(next(model.parameters()).dtype).eval()


def _config_mismatch(config: dict, weights: dict) -> str:
    """': n_layer=2 but the weights hold 1' for each size the config and the weights disagree on (or '')."""
    try:
        vocab_size, n_embd = weights["wte.weight"].shape
        held = {"vocab_size": vocab_size, "n_embd": n_embd, "block_size": weights["wpe.weight"].shape[0],
                "n_layer": len({name.split(".")[1] for name in weights if name.startswith("blocks.")})}
    except (KeyError, AttributeError, ValueError):  # not a GPT's weights: the raw error says more
        return ""
    wrong = [f"{name}={config.get(name)} but the weights hold {n}" for name, n in held.items() if config.get(name) != n]
    return ": " + ", ".join(wrong) if wrong else ""


# transformers' GPT-2 name (in block i: transformer.h.{i}.NAME) -> (our name, is a Conv1D weight). GPT-2 stores
# its linear layers as Conv1D, with weights (in, out): the transpose of nn.Linear's (out, in).
GPT2_KEYS = {
    "transformer.wte.weight": ("wte.weight", False),
    "transformer.wpe.weight": ("wpe.weight", False),
    "transformer.ln_f.weight": ("ln_f.weight", False),
    "transformer.ln_f.bias": ("ln_f.bias", False),
}
GPT2_BLOCK_KEYS = {
    "ln_1.weight": ("ln_1.weight", False),
    "ln_1.bias": ("ln_1.bias", False),
    "attn.c_proj.weight": ("attn.out_proj.weight", True),
    "attn.c_proj.bias": ("attn.out_proj.bias", False),
    "ln_2.weight": ("ln_2.weight", False),
    "ln_2.bias": ("ln_2.bias", False),
    "mlp.c_fc.weight": ("mlp.c_fc.weight", True),
    "mlp.c_fc.bias": ("mlp.c_fc.bias", False),
    "mlp.c_proj.weight": ("mlp.c_proj.weight", True),
    "mlp.c_proj.bias": ("mlp.c_proj.bias", False),
}


def _from_gpt2_names(hf: dict[str, torch.Tensor], n_layer: int) -> dict[str, torch.Tensor]:
    """transformers' GPT-2 state dict under our names: the two tables, then each block's fused c_attn split."""
    ours = {name: hf[key].t() if conv1d else hf[key] for key, (name, conv1d) in GPT2_KEYS.items()}
    for i in range(n_layer):
        theirs, mine = f"transformer.h.{i}.", f"blocks.{i}."
        for key, (name, conv1d) in GPT2_BLOCK_KEYS.items():
            ours[mine + name] = hf[theirs + key].t() if conv1d else hf[theirs + key]
        # one Conv1D (d, 3d) projects q, k, v side by side: transposed, its rows are q_proj's, k_proj's, v_proj's
        weights, biases = hf[theirs + "attn.c_attn.weight"].t().chunk(3), hf[theirs + "attn.c_attn.bias"].chunk(3)
        for proj, weight, bias in zip(("q_proj", "k_proj", "v_proj"), weights, biases):
            ours[f"{mine}attn.{proj}.weight"], ours[f"{mine}attn.{proj}.bias"] = weight, bias
    ours["lm_head.weight"] = ours["wte.weight"]  # tied
    return ours
