"""The Transformer, piece by piece: positions, the feed-forward, the one block, encoder and decoder layers, init.

Read top to bottom: where a token is (sinusoidal or learned positions), what each position does on its
own (`FeedForward`), then the layers of "Attention Is All You Need" built on our
`lmcourse.attention.MultiHeadAttention`, each with the layer norm after the residual sum (post-norm,
the 2017 paper and BERT) or before the sub-layer (pre-norm, GPT-2 and most models since: the residual
stream is never normalised, so gradients reach early layers undamped and training needs no warm-up).
`EncoderLayer` is the one block of the course: bidirectional, it is BERT's and chapter 05's encoder;
causal and pre-norm, it is the GPT's block (`lmcourse.gpt`: a decoder-only model has no encoder to attend
to, so it needs no cross-attention) and the text denoiser's (`lmcourse.text_diffusion`). `DecoderLayer`
adds the cross-attention. `EncoderLayer.from_torch` / `DecoderLayer.from_torch` copy torch's layers, with
identical outputs. Then `Encoder`: token embeddings + positions + a stack of encoder layers (a small BERT
body), and `init_weights`, the one initialisation of the encoder, the GPT and the text denoiser.

Sizes have one naming across the package, GPT-2's: n_layer, n_head, n_embd (the paper's d_model) and
n_inner (its d_ff). They are the names of saved GPT checkpoints and the zoo's cards, of `scale_out`'s
command line, and of the nanoGPT and transformers GPT-2 code that learners read beside ours; the
encoder, attention and text diffusion follow them.

Shapes are batch-first: x (B, T, n_embd). Masks follow torch's attention convention, True = may attend;
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

from lmcourse.attention import KVCache, MultiHeadAttention, check_features, check_key_padding
from lmcourse.checks import check_int, check_number, check_positive_ints, check_token_ids, describe

__all__ = ["DecoderLayer", "Encoder", "EncoderLayer", "FeedForward", "LearnedPositionalEncoding",
           "SinusoidalPositionalEncoding", "TransformerConfig", "init_weights", "sinusoidal_positions"]


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "gelu_tanh": _gelu_tanh}  # gelu_tanh: GPT-2's GELU


# ----------------------------------------------------------------------------- positions

def sinusoidal_positions(n_positions: int, n_embd: int) -> torch.Tensor:
    """The fixed encodings of Vaswani et al. (2017): (n_positions, n_embd).

    PE[pos, 2i] = sin(pos / 10000^(2i/n_embd)), PE[pos, 2i+1] = cos(same angle). Each pair of
    dimensions is a clock of its own wavelength (2 pi to 10000 * 2 pi), so PE[pos + k] is a fixed
    rotation of PE[pos]: relative offsets are linear functions of the encodings.
    """
    check_int("n_positions", n_positions)
    if check_int("n_embd", n_embd, minimum=2) % 2:
        raise ValueError(f"need n_positions >= 1 and an even n_embd >= 2, got n_positions={n_positions}, "
                         f"n_embd={n_embd}")
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]           # (T, 1)
    inv_freq = torch.exp(torch.arange(0, n_embd, 2) * (-math.log(10000.0) / n_embd))  # (d/2,)
    angles = position * inv_freq                                                  # (T, d/2)
    pe = torch.empty(n_positions, n_embd)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angles), torch.cos(angles)
    return pe


def _check_length(x: torch.Tensor, max_len: int, n_embd: int) -> None:
    if x.ndim != 3 or x.shape[1] > max_len or x.shape[2] != n_embd:
        raise ValueError(f"x must be (batch, T, n_embd={n_embd}) with T <= max_len={max_len}, got shape "
                         f"{tuple(x.shape)}; build the encoding with a larger max_len")


class SinusoidalPositionalEncoding(nn.Module):
    """x (B, T, n_embd) -> x + PE[:T]: fixed, no parameters, defined for any position up to max_len."""

    def __init__(self, n_embd: int, max_len: int = 512):
        super().__init__()
        self.max_len = check_int("max_len", max_len)
        self.register_buffer("pe", sinusoidal_positions(max_len, n_embd), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_length(x, self.max_len, self.pe.shape[1])
        return x + self.pe[: x.shape[1]].to(x.dtype)


class LearnedPositionalEncoding(nn.Module):
    """x (B, T, n_embd) -> x + P[:T] with P a trained (max_len, n_embd) table (BERT, GPT-2)."""

    def __init__(self, n_embd: int, max_len: int = 512):
        super().__init__()
        check_positive_ints(n_embd=n_embd, max_len=max_len)
        self.max_len = max_len
        self.weight = nn.Parameter(torch.randn(max_len, n_embd) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_length(x, self.max_len, self.weight.shape[1])
        return x + self.weight[: x.shape[1]]


# ----------------------------------------------------------------------------- blocks

class FeedForward(nn.Module):
    """The position-wise MLP: linear2(dropout(act(linear1(x)))), n_embd -> n_inner -> n_embd, same on every token.

    activation: "relu" (the 2017 paper), "gelu" (BERT) or "gelu_tanh" (GPT-2's tanh approximation of GELU).
    """

    def __init__(self, n_embd: int, n_inner: int, dropout: float = 0.0, activation: str = "relu", bias: bool = True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        check_positive_ints(n_embd=n_embd, n_inner=n_inner)
        check_number("dropout", dropout, 0, 1, high_open=True)
        self.linear1 = nn.Linear(n_embd, n_inner, bias=bias)
        self.linear2 = nn.Linear(n_inner, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim == 0 or x.shape[-1] != self.linear1.in_features:
            raise ValueError(f"x must have shape (..., n_embd={self.linear1.in_features}), got {describe(x)}")
        return self.linear2(self.dropout(ACTIVATIONS[self.activation](self.linear1(x))))  # (B, T, n_embd)


def _check_sizes(n_embd: int, n_head: int, n_inner: int, dropout: float, layer_norm_eps: float, norm_first: bool) -> None:
    check_positive_ints(n_embd=n_embd, n_head=n_head, n_inner=n_inner)
    _check_norm_first(norm_first)
    check_number("dropout", dropout, 0, 1, high_open=True)
    check_number("layer_norm_eps", layer_norm_eps, 0, fix="1e-5 is usual")
    if n_embd % n_head:
        raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")


def _check_norm_first(norm_first: bool) -> None:
    if not isinstance(norm_first, bool):
        raise ValueError(f"norm_first must be True (pre-norm) or False (post-norm), got {norm_first!r}")


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward, each wrapped in a residual connection and a layer norm.

    norm_first=False (post-norm): x = LN(x + attn(x)); x = LN(x + ff(x)).
    norm_first=True (pre-norm):   x = x + attn(LN(x)); x = x + ff(LN(x)).
    causal=True: position i attends positions <= i only (the GPT's block).
    The same parameters and numbers as torch.nn.TransformerEncoderLayer(batch_first=True) (see `from_torch`;
    causal is torch's forward(..., is_causal=True) with a causal mask).
    forward(x (B, T, n_embd), mask=None, key_padding=None ((B, T), True = real), need_weights=False, *,
    kv_cache=None, layer=0) -> (x (B, T, n_embd), weights (B, H, T, T) or None). mask: as
    `MultiHeadAttention`'s, True = may attend or float additive: (T, T), (B, T, T) per example, (B, 1, 1, T),
    (B or 1, H, T, T) per head; combined with causality. kv_cache, layer: generation, see `KVCache`.
    """

    def __init__(self, n_embd: int, n_head: int, n_inner: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", norm_first: bool = False, layer_norm_eps: float = 1e-5, bias: bool = True,
                 causal: bool = False, *, attn_dropout: float | None = None, ff_dropout: float | None = None):
        super().__init__()
        _check_sizes(n_embd, n_head, n_inner, dropout, layer_norm_eps, norm_first)
        if not isinstance(causal, bool):
            raise ValueError(f"causal must be True (attend earlier positions only) or False, got {causal!r}")
        self.norm_first, self.causal = norm_first, causal
        # dropout on each branch's output; attn_dropout on the attention weights and ff_dropout on the MLP's hidden
        # units default to it, as in torch's TransformerEncoderLayer (GPT-2 has none inside the MLP)
        attn_dropout = dropout if attn_dropout is None else check_number("attn_dropout", attn_dropout, 0, 1,
                                                                          high_open=True)
        ff_dropout = dropout if ff_dropout is None else check_number("ff_dropout", ff_dropout, 0, 1, high_open=True)
        self.self_attn = MultiHeadAttention(n_embd, n_head, dropout=attn_dropout, bias=bias)
        self.ff = FeedForward(n_embd, n_inner, ff_dropout, activation, bias)
        self.norm1 = nn.LayerNorm(n_embd, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(n_embd, eps=layer_norm_eps, bias=bias)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, key_padding: torch.Tensor | None = None,
                need_weights: bool = False, *, kv_cache: KVCache | None = None,
                layer: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        check_features("x", x, self.self_attn.n_embd, self.norm1.weight.dtype)

        def sa(h):
            out, w = self.self_attn(h, h, h, mask=mask, is_causal=self.causal, need_weights=need_weights,
                                    key_padding=key_padding, kv_cache=kv_cache, layer=layer)
            return self.dropout1(out), w

        if self.norm_first:
            a, weights = sa(self.norm1(x))
            x = x + a
            x = x + self.dropout2(self.ff(self.norm2(x)))
        else:
            a, weights = sa(x)
            x = self.norm1(x + a)
            x = self.norm2(x + self.dropout2(self.ff(x)))
        return x, weights

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer, causal: bool = False) -> EncoderLayer:
        """An EncoderLayer with the weights of a batch_first torch.nn.TransformerEncoderLayer (same outputs;
        causal=True: those of torch's forward(..., is_causal=True) with a causal src_mask)."""
        ours = cls(**_torch_layer_arguments(layer), causal=causal)
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

    def __init__(self, n_embd: int, n_head: int, n_inner: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", norm_first: bool = False, layer_norm_eps: float = 1e-5, bias: bool = True):
        super().__init__()
        _check_sizes(n_embd, n_head, n_inner, dropout, layer_norm_eps, norm_first)
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(n_embd, n_head, dropout=dropout, bias=bias)
        self.cross_attn = MultiHeadAttention(n_embd, n_head, dropout=dropout, bias=bias)
        self.ff = FeedForward(n_embd, n_inner, dropout, activation, bias)
        self.norm1 = nn.LayerNorm(n_embd, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(n_embd, eps=layer_norm_eps, bias=bias)
        self.norm3 = nn.LayerNorm(n_embd, eps=layer_norm_eps, bias=bias)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_padding: torch.Tensor | None = None,
                need_weights: bool = False, *, tgt_mask: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None, tgt_padding: torch.Tensor | None = None,
                is_causal: bool = True) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        dtype = self.norm1.weight.dtype
        check_features("x", x, self.self_attn.n_embd, dtype)
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
    return dict(n_embd=layer.self_attn.embed_dim, n_head=layer.self_attn.num_heads,
                n_inner=layer.linear1.out_features, dropout=layer.dropout.p,
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
    """Sizes of an `Encoder` (a small BERT body). n_inner defaults to 4 * n_embd."""

    vocab_size: int
    max_len: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    n_inner: int | None = None
    dropout: float = 0.1
    positional: str = "learned"
    norm_first: bool = True
    activation: str = "gelu"

    def __post_init__(self) -> None:
        check_positive_ints(vocab_size=self.vocab_size, max_len=self.max_len, n_layer=self.n_layer,
                            n_head=self.n_head, n_embd=self.n_embd)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if self.positional not in ("learned", "sinusoidal"):
            raise ValueError(f"positional must be 'learned' or 'sinusoidal', got {self.positional!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        _check_norm_first(self.norm_first)
        check_number("dropout", self.dropout, 0, 1, high_open=True)
        self.n_inner = 4 * self.n_embd if self.n_inner is None else check_int("n_inner", self.n_inner, fix="None gives 4 * n_embd")


class Encoder(nn.Module):
    """Token embeddings + positions + n_layer `EncoderLayer`s (+ a final LayerNorm when pre-norm).

    forward(ids (B, T) long, key_padding=None ((B, T) bool, True = real token), need_weights=False)
    -> (hidden (B, T, n_embd), per-layer weights [(B, H, T, T)] * n_layer or None).
    key_padding is checked once and handed to every layer as a (B, 1, 1, T) mask.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.n_embd)
        pos_cls = LearnedPositionalEncoding if c.positional == "learned" else SinusoidalPositionalEncoding
        self.pos = pos_cls(c.n_embd, c.max_len)
        self.dropout = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(EncoderLayer(c.n_embd, c.n_head, c.n_inner, c.dropout, c.activation, c.norm_first)
                                    for _ in range(c.n_layer))
        # pre-norm leaves the residual stream un-normalised: normalise once at the end (as GPT-2)
        self.norm = nn.LayerNorm(c.n_embd) if c.norm_first else nn.Identity()
        init_weights(self)  # BERT's and GPT-2's: every Linear and Embedding normal(0, 0.02), biases zero

    def forward(self, ids: torch.Tensor, key_padding: torch.Tensor | None = None,
                need_weights: bool = False) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        ids = check_token_ids("ids", ids, self.config.vocab_size, ndim=2)
        if ids.shape[1] == 0:
            raise ValueError(f"ids must hold at least one token per row, got shape {tuple(ids.shape)}")
        mask = None if key_padding is None else check_key_padding(key_padding, *ids.shape)[:, None, None, :]
        x = self.dropout(self.pos(self.tok_emb(ids)))  # (B, T, n_embd)
        all_weights = []
        for layer in self.layers:
            x, w = layer(x, mask=mask, need_weights=need_weights)
            all_weights.append(w)
        return self.norm(x), (all_weights if need_weights else None)


# ----------------------------------------------------------------------------- initialisation

@torch.no_grad()
def init_weights(model: nn.Module, n_layer: int | None = None) -> None:
    """GPT-2's initialisation of `model`, in place: every Linear and Embedding weight normal(0, 0.02), biases zero.

    Small weights give small logits, so training starts near the uniform prediction and moves fast. LayerNorms
    keep their ones and zeros; parameters of other modules (a `LearnedPositionalEncoding`) their own init.
    n_layer: also scale the projections that write into the residual stream (attention's out_proj, the
    feed-forward's linear2) to std 0.02 / sqrt(2 * n_layer), so the stream's variance does not grow with
    depth (each of the n_layer blocks adds two such writes).
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
    if n_layer is not None:
        for name, p in model.named_parameters():
            if name.endswith(("out_proj.weight", "linear2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * check_int("n_layer", n_layer)))
