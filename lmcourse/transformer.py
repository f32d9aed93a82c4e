"""The Transformer, piece by piece: positional encodings, the feed-forward block, encoder and decoder layers.

Read top to bottom: where a token is (sinusoidal or learned positions), what each position does on its
own (`FeedForward`), then the two layers of "Attention Is All You Need" built on our
`lmcourse.attention.MultiHeadAttention`, each with the layer norm after the residual sum (post-norm,
the 2017 paper and BERT) or before the sub-layer (pre-norm, GPT-2 and most models since: the residual
stream is never normalised, so gradients reach early layers undamped and training needs no warm-up).
`EncoderLayer.from_torch` / `DecoderLayer.from_torch` copy torch's layers, with identical outputs.
Last, `Encoder`: token embeddings + positions + a stack of encoder layers (a small BERT body).

Shapes are batch-first: x (B, T, d_model). Masks follow torch's attention convention, True = may attend;
`key_padding` (B, T) is True for real tokens, False for padding (the opposite of torch's
`src_key_padding_mask`, whose True means "ignore"; one of those is refused, see
`lmcourse.attention.check_key_padding`). Masks are merged by `lmcourse.attention.merge_masks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.attention import MultiHeadAttention, check_features, check_key_padding
from lmcourse.checks import check_int, check_number, check_positive_ints, check_token_ids, describe

__all__ = ["DecoderLayer", "Encoder", "EncoderLayer", "FeedForward", "LearnedPositionalEncoding",
           "SinusoidalPositionalEncoding", "TransformerConfig", "sinusoidal_positions"]

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


# ----------------------------------------------------------------------------- positions

def sinusoidal_positions(n_positions: int, d_model: int) -> torch.Tensor:
    """The fixed encodings of Vaswani et al. (2017): (n_positions, d_model).

    PE[pos, 2i] = sin(pos / 10000^(2i/d_model)), PE[pos, 2i+1] = cos(same angle). Each pair of
    dimensions is a clock of its own wavelength (2 pi to 10000 * 2 pi), so PE[pos + k] is a fixed
    rotation of PE[pos]: relative offsets are linear functions of the encodings.
    """
    check_int("n_positions", n_positions)
    if check_int("d_model", d_model, minimum=2) % 2:
        raise ValueError(f"need n_positions >= 1 and an even d_model >= 2, got n_positions={n_positions}, "
                         f"d_model={d_model}")
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]           # (T, 1)
    inv_freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (d/2,)
    angles = position * inv_freq                                                  # (T, d/2)
    pe = torch.empty(n_positions, d_model)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angles), torch.cos(angles)
    return pe


def _check_length(x: torch.Tensor, max_len: int, d_model: int) -> None:
    if x.ndim != 3 or x.shape[1] > max_len or x.shape[2] != d_model:
        raise ValueError(f"x must be (batch, T, d_model={d_model}) with T <= max_len={max_len}, got shape "
                         f"{tuple(x.shape)}; build the encoding with a larger max_len")


class SinusoidalPositionalEncoding(nn.Module):
    """x (B, T, d_model) -> x + PE[:T]: fixed, no parameters, defined for any position up to max_len."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        self.max_len = check_int("max_len", max_len)
        self.register_buffer("pe", sinusoidal_positions(max_len, d_model), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_length(x, self.max_len, self.pe.shape[1])
        return x + self.pe[: x.shape[1]].to(x.dtype)


class LearnedPositionalEncoding(nn.Module):
    """x (B, T, d_model) -> x + P[:T] with P a trained (max_len, d_model) table (BERT, GPT-2)."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        check_positive_ints(d_model=d_model, max_len=max_len)
        self.max_len = max_len
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_length(x, self.max_len, self.weight.shape[1])
        return x + self.weight[: x.shape[1]]


# ----------------------------------------------------------------------------- blocks

class FeedForward(nn.Module):
    """The position-wise MLP: linear2(dropout(act(linear1(x)))), d_model -> d_ff -> d_model, same on every token."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu", bias: bool = True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        check_positive_ints(d_model=d_model, d_ff=d_ff)
        check_number("dropout", dropout, 0, 1, high_open=True)
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim == 0 or x.shape[-1] != self.linear1.in_features:
            raise ValueError(f"x must have shape (..., d_model={self.linear1.in_features}), got {describe(x)}")
        return self.linear2(self.dropout(ACTIVATIONS[self.activation](self.linear1(x))))  # (B, T, d_model)


def _check_sizes(d_model: int, n_heads: int, d_ff: int, dropout: float, layer_norm_eps: float, norm_first: bool) -> None:
    check_positive_ints(d_model=d_model, n_heads=n_heads, d_ff=d_ff)
    _check_norm_first(norm_first)
    check_number("dropout", dropout, 0, 1, high_open=True)
    check_number("layer_norm_eps", layer_norm_eps, 0, fix="1e-5 is usual")
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")


def _check_norm_first(norm_first: bool) -> None:
    if not isinstance(norm_first, bool):
        raise ValueError(f"norm_first must be True (pre-norm) or False (post-norm), got {norm_first!r}")


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward, each wrapped in a residual connection and a layer norm.

    norm_first=False (post-norm): x = LN(x + attn(x)); x = LN(x + ff(x)).
    norm_first=True (pre-norm):   x = x + attn(LN(x)); x = x + ff(LN(x)).
    The same parameters and numbers as torch.nn.TransformerEncoderLayer(batch_first=True) (see `from_torch`).
    forward(x (B, T, d_model), mask=None, key_padding=None ((B, T), True = real), need_weights=False)
    -> (x (B, T, d_model), weights (B, H, T, T) or None). mask: as `MultiHeadAttention`'s, True = may attend
    or float additive: (T, T), (B, T, T) per example, (B, 1, 1, T), (B or 1, H, T, T) per head.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", norm_first: bool = False, layer_norm_eps: float = 1e-5, bias: bool = True):
        super().__init__()
        _check_sizes(d_model, n_heads, d_ff, dropout, layer_norm_eps, norm_first)
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
        self.ff = FeedForward(d_model, d_ff, dropout, activation, bias)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def _sa(self, x, mask, key_padding, need_weights):
        out, weights = self.self_attn(x, x, x, mask=mask, need_weights=need_weights, key_padding=key_padding)
        return self.dropout1(out), weights

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, key_padding: torch.Tensor | None = None,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        check_features("x", x, self.self_attn.d_model, self.norm1.weight.dtype)
        if self.norm_first:
            a, weights = self._sa(self.norm1(x), mask, key_padding, need_weights)
            x = x + a
            x = x + self.dropout2(self.ff(self.norm2(x)))
        else:
            a, weights = self._sa(x, mask, key_padding, need_weights)
            x = self.norm1(x + a)
            x = self.norm2(x + self.dropout2(self.ff(x)))
        return x, weights

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> EncoderLayer:
        """An EncoderLayer with the weights of a batch_first torch.nn.TransformerEncoderLayer (same outputs)."""
        ours = cls(**_torch_layer_arguments(layer))
        ours.self_attn.load_torch_weights(layer.self_attn)
        _copy_ff_and_norms(ours, layer, ("norm1", "norm2"))
        return ours.to(layer.linear1.weight.device, layer.linear1.weight.dtype)


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder's output (memory), feed-forward; residuals + norms.

    The same parameters and numbers as torch.nn.TransformerDecoderLayer(batch_first=True).
    forward(x (B, T, d), memory (B, S, d), memory_padding=None, need_weights=False, *, tgt_mask=None,
    memory_mask=None, tgt_padding=None, is_causal=True)
    -> (x (B, T, d), (self weights (B, H, T, T), cross weights (B, H, T, S)) or None).
    Self-attention: causal (is_causal) and tgt_mask (T, T) and tgt_padding (B, T); cross-attention:
    memory_mask (T, S) and memory_padding (B, S). Paddings are True for real tokens; masks True = may attend
    or float additive, shaped as `MultiHeadAttention`'s. torch's tgt_key_padding_mask and
    memory_key_padding_mask are the inverted paddings; its bool tgt_mask and memory_mask the inverted masks.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", norm_first: bool = False, layer_norm_eps: float = 1e-5, bias: bool = True):
        super().__init__()
        _check_sizes(d_model, n_heads, d_ff, dropout, layer_norm_eps, norm_first)
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
        self.ff = FeedForward(d_model, d_ff, dropout, activation, bias)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_padding: torch.Tensor | None = None,
                need_weights: bool = False, *, tgt_mask: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None, tgt_padding: torch.Tensor | None = None,
                is_causal: bool = True) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        dtype = self.norm1.weight.dtype
        check_features("x", x, self.self_attn.d_model, dtype)
        check_features("memory", memory, self.cross_attn.kdim, dtype)

        def sa(h):
            out, w = self.self_attn(h, h, h, mask=tgt_mask, is_causal=is_causal, need_weights=need_weights,
                                    key_padding=tgt_padding)
            return self.dropout1(out), w

        def ca(h):
            out, w = self.cross_attn(h, memory, memory, mask=memory_mask, need_weights=need_weights,
                                     key_padding=memory_padding)
            return self.dropout2(out), w

        if self.norm_first:
            a, w_self = sa(self.norm1(x))
            x = x + a
            c, w_cross = ca(self.norm2(x))
            x = x + c
            x = x + self.dropout3(self.ff(self.norm3(x)))
        else:
            a, w_self = sa(x)
            x = self.norm1(x + a)
            c, w_cross = ca(x)
            x = self.norm2(x + c)
            x = self.norm3(x + self.dropout3(self.ff(x)))
        return x, ((w_self, w_cross) if need_weights else None)

    @classmethod
    def from_torch(cls, layer: nn.TransformerDecoderLayer) -> DecoderLayer:
        """A DecoderLayer with the weights of a batch_first torch.nn.TransformerDecoderLayer (same outputs)."""
        ours = cls(**_torch_layer_arguments(layer))
        ours.self_attn.load_torch_weights(layer.self_attn)
        ours.cross_attn.load_torch_weights(layer.multihead_attn)
        _copy_ff_and_norms(ours, layer, ("norm1", "norm2", "norm3"))
        return ours.to(layer.linear1.weight.device, layer.linear1.weight.dtype)


def _torch_layer_arguments(layer: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer) -> dict:
    """The constructor arguments that give our layer the shapes and options of a torch layer."""
    if not layer.self_attn.batch_first:
        raise ValueError(f"from_torch needs a {type(layer).__name__}(..., batch_first=True)")
    return dict(d_model=layer.self_attn.embed_dim, n_heads=layer.self_attn.num_heads,
                d_ff=layer.linear1.out_features, dropout=layer.dropout.p,
                activation=_torch_activation(layer.activation), norm_first=layer.norm_first,
                layer_norm_eps=layer.norm1.eps, bias=layer.linear1.bias is not None)


def _torch_activation(activation) -> str:
    if activation in (F.relu, "relu") or isinstance(activation, nn.ReLU):
        return "relu"
    if activation in (F.gelu, "gelu") or isinstance(activation, nn.GELU):
        return "gelu"
    raise ValueError(f"from_torch supports relu or gelu layers, got activation {activation!r}")


@torch.no_grad()
def _copy_ff_and_norms(ours: nn.Module, theirs: nn.Module, norms: tuple[str, ...]) -> None:
    ours.ff.linear1.load_state_dict(theirs.linear1.state_dict())
    ours.ff.linear2.load_state_dict(theirs.linear2.state_dict())
    for name in norms:
        getattr(ours, name).load_state_dict(getattr(theirs, name).state_dict())


# ----------------------------------------------------------------------------- a whole encoder

@dataclass
class TransformerConfig:
    """Sizes of an `Encoder` (a small BERT body). d_ff defaults to 4 * d_model."""

    vocab_size: int
    max_len: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_model: int = 128
    d_ff: int | None = None
    dropout: float = 0.1
    positional: str = "learned"
    norm_first: bool = True
    activation: str = "gelu"

    def __post_init__(self) -> None:
        check_positive_ints(vocab_size=self.vocab_size, max_len=self.max_len, n_layers=self.n_layers,
                            n_heads=self.n_heads, d_model=self.d_model)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if self.positional not in ("learned", "sinusoidal"):
            raise ValueError(f"positional must be 'learned' or 'sinusoidal', got {self.positional!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        _check_norm_first(self.norm_first)
        check_number("dropout", self.dropout, 0, 1, high_open=True)
        self.d_ff = 4 * self.d_model if self.d_ff is None else check_int("d_ff", self.d_ff, fix="None gives 4 * d_model")


class Encoder(nn.Module):
    """Token embeddings + positions + n_layers `EncoderLayer`s (+ a final LayerNorm when pre-norm).

    forward(ids (B, T) long, key_padding=None ((B, T) bool, True = real token), need_weights=False)
    -> (hidden (B, T, d_model), per-layer weights [(B, H, T, T)] * n_layers or None).
    key_padding is checked once and handed to every layer as a (B, 1, 1, T) mask.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        pos_cls = LearnedPositionalEncoding if c.positional == "learned" else SinusoidalPositionalEncoding
        self.pos = pos_cls(c.d_model, c.max_len)
        self.dropout = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(EncoderLayer(c.d_model, c.n_heads, c.d_ff, c.dropout, c.activation, c.norm_first)
                                    for _ in range(c.n_layers))
        # pre-norm leaves the residual stream un-normalised: normalise once at the end (as GPT-2)
        self.norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        nn.init.normal_(self.tok_emb.weight, std=0.02)

    def forward(self, ids: torch.Tensor, key_padding: torch.Tensor | None = None,
                need_weights: bool = False) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        ids = check_token_ids("ids", ids, self.config.vocab_size, ndim=2)
        if ids.shape[1] == 0:
            raise ValueError(f"ids must hold at least one token per row, got shape {tuple(ids.shape)}")
        mask = None if key_padding is None else check_key_padding(key_padding, *ids.shape)[:, None, None, :]
        x = self.dropout(self.pos(self.tok_emb(ids)))  # (B, T, d_model)
        all_weights = []
        for layer in self.layers:
            x, w = layer(x, mask=mask, need_weights=need_weights)
            all_weights.append(w)
        return self.norm(x), (all_weights if need_weights else None)
