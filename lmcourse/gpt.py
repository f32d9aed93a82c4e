"""GPT: a decoder-only Transformer language model, and the import of GPT-2 weights from transformers.

Read top to bottom: the config, the positions and mask of left-padded batches, the model, then `GPT.from_hf`
(a table of transformers' names for our weights). A block is chapter 05's `lmcourse.transformer.EncoderLayer`,
pre-norm and causal, with GPT-2's tanh GELU; its attention (`lmcourse.attention.MultiHeadAttention`) also
owns the key/value cache of generation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.attention import KVCache, check_key_padding, merge_masks
from lmcourse.checkpoint import read_checkpoint
from lmcourse.checks import check_int, check_number, check_positive_ints, check_targets, check_token_ids, describe
from lmcourse.train import adamw
from lmcourse.transformer import EncoderLayer, init_weights


@dataclass
class GPTConfig:
    """Sizes of a GPT. GPT-2 small is GPTConfig(50257, 1024, 12, 12, 768)."""

    vocab_size: int
    block_size: int  # the longest context, in tokens
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0  # on the embeddings and each block's branch outputs (GPT-2's embd_pdrop, resid_pdrop)
    attn_dropout: float | None = None  # on the attention weights (GPT-2's attn_pdrop); None: the same as dropout
    bias: bool = True  # biases in Linear layers and LayerNorms, as GPT-2

    def __post_init__(self) -> None:
        check_positive_ints(vocab_size=self.vocab_size, block_size=self.block_size, n_layer=self.n_layer,
                            n_head=self.n_head, n_embd=self.n_embd)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}; "
                             f"e.g. n_embd={self.n_head * max(1, round(self.n_embd / self.n_head))}")
        check_number("dropout", self.dropout, 0, 1, high_open=True)
        if self.attn_dropout is not None:
            check_number("attn_dropout", self.attn_dropout, 0, 1, high_open=True,
                         fix="0 keeps torch's fused attention kernel on a CPU; None uses dropout's")
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be True or False, got {self.bias!r}")


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
        # a block: pre-norm x + attn(LN(x)), then x + MLP(LN(x)); causal self-attention, an MLP 4 * n_embd wide
        # with no dropout inside it (GPT-2's placement)
        self.blocks = nn.ModuleList(
            EncoderLayer(config.n_embd, config.n_head, 4 * config.n_embd, config.dropout, "gelu_tanh",
                         norm_first=True, bias=config.bias, causal=True, attn_dropout=config.attn_dropout,
                         ff_dropout=0.0) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one matrix reads tokens in and scores them out
        init_weights(self, n_layer=config.n_layer)  # GPT-2's, residual projections scaled down with depth
        self.register_load_state_dict_pre_hook(_rename_nanogpt_keys)  # checkpoints of the earlier GPT

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
                attention_mask: torch.Tensor | None = None,
                logits_to_keep: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) token ids -> (logits (B, T, vocab), mean cross-entropy against targets (B, T) or None).

        kv_cache: idx holds the positions after the cached ones; their keys and values are added to it.
        attention_mask: (B, past + T) over the cached positions and these, 1/True for real tokens and 0/False
        for left padding (transformers' convention); see `left_padding` for positions and masking.
        logits_to_keep: k >= 1 returns the logits of the last k positions only, (B, min(k, T), vocab): the final
        LayerNorm and the output head run on those alone (generation needs the last one; transformers' name).
        The loss needs every position, so it cannot be combined with targets.
        """
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.shape[1] == 0:
            raise ValueError(f"idx must have shape (batch, time >= 1), got {describe(idx)}")
        if logits_to_keep is not None:
            check_int("logits_to_keep", logits_to_keep, fix="the number of last positions to score, or None for all")
            if targets is not None:
                raise ValueError(f"logits_to_keep={logits_to_keep} cannot be combined with targets: the loss needs the "
                                 "logits of every position; pass targets or logits_to_keep, not both")
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
            x, _ = block(x, mask, kv_cache=kv_cache, layer=layer)  # causal, and mask (padding) if given
        if logits_to_keep is not None:
            x = x[:, -logits_to_keep:]  # (B, min(k, T), n_embd): the head's work only where logits are wanted
        logits = self.lm_head(self.ln_f(x))  # (B, T or min(k, T), vocab)
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
    "ln_1.weight": ("norm1.weight", False),
    "ln_1.bias": ("norm1.bias", False),
    "attn.c_proj.weight": ("self_attn.out_proj.weight", True),
    "attn.c_proj.bias": ("self_attn.out_proj.bias", False),
    "ln_2.weight": ("norm2.weight", False),
    "ln_2.bias": ("norm2.bias", False),
    "mlp.c_fc.weight": ("ff.linear1.weight", True),
    "mlp.c_fc.bias": ("ff.linear1.bias", False),
    "mlp.c_proj.weight": ("ff.linear2.weight", True),
    "mlp.c_proj.bias": ("ff.linear2.bias", False),
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
            ours[f"{mine}self_attn.{proj}.weight"], ours[f"{mine}self_attn.{proj}.bias"] = weight, bias
    ours["lm_head.weight"] = ours["wte.weight"]  # tied
    return ours


# Checkpoints written before the GPT's blocks were `EncoderLayer`s name a block's parts as nanoGPT and GPT-2 do.
# Every load_state_dict of a GPT (GPT.from_checkpoint, lmcourse.zoo.load, checkpoint.load_checkpoint) renames them.
NANOGPT_BLOCK_NAMES = {"ln_1.": "norm1.", "attn.": "self_attn.", "ln_2.": "norm2.", "mlp.c_fc.": "ff.linear1.",
                       "mlp.c_proj.": "ff.linear2."}


def _rename_nanogpt_keys(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Rename, in place, blocks.{i}.ln_1.weight to blocks.{i}.norm1.weight and so on (a load_state_dict pre-hook)."""
    for key in [k for k in state_dict if k.startswith(prefix + "blocks.")]:
        i, name = key[len(prefix + "blocks."):].split(".", 1)
        old = next((old for old in NANOGPT_BLOCK_NAMES if name.startswith(old)), None)
        if old is not None:
            state_dict[f"{prefix}blocks.{i}.{NANOGPT_BLOCK_NAMES[old]}{name[len(old):]}"] = state_dict.pop(key)
