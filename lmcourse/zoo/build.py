"""From a recipe to its tokenizer and its model, with what training and scoring that kind of model need.

Each model kind is one function `kind(recipe, tokenizer) -> Trainable`, registered in `KINDS`; a new kind
is one more such function.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lmcourse.charlm import CharLSTM, TBPTTLoss
from lmcourse.data import corpus_tokenizer, load_corpus
from lmcourse.gpt import GPT, GPTConfig
from lmcourse.mlm import MaskedLM, SpecialTokens, evaluate_mlm, mlm_batches
from lmcourse.sequences import consecutive_windows, cross_entropy, random_windows
from lmcourse.text_diffusion import TextDenoiser, diffusion_bound, masked_diffusion_loss, masked_lm_loss
from lmcourse.tokenizers import BPETokenizer
from lmcourse.train import Batch, adamw, default_loss
from lmcourse.transformer import TransformerConfig
from lmcourse.zoo.recipes import Recipe

SCORE_TOKENS = 16_384  # tokens per batch when scoring held-out text: few Python steps, modest memory
LSTM_SCORE_PARTS = 32  # an LSTM scores the held-out text in this many parts, state carried (as chapter 03 does)
BOUND_TIMES = 8        # a masked-diffusion model's bound averages each window over this many masking rates


@dataclass
class Trainable:
    """A freshly initialised model of one kind, and what training and scoring it need.

    tokenizer: what the model reads (for a masked LM, the tokenizer with [MASK] and the other specials).
    optimizer(): the recipe's AdamW over the model's parameters (call it after moving the model to its device).
    batches(train_ids (N,)): endless training batches for `lmcourse.train.train`.
    score(valid_ids (N,), max_tokens): the held-out score in `metric` (a key of lmcourse.zoo.cards.METRICS).
    scoring: how score reads the held-out text, for the card.
    """

    model: nn.Module
    tokenizer: Any
    optimizer: Callable[[], torch.optim.Optimizer]
    batches: Callable[[torch.Tensor], Iterator[Batch]]
    score: Callable[[torch.Tensor, int | None], float]
    scoring: str
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor] = default_loss
    metric: str = "nats_per_char"


def gpt(recipe: Recipe, tokenizer) -> Trainable:
    """A `lmcourse.gpt.GPT` trained on random windows, scored with `lmcourse.sequences.cross_entropy`."""
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=recipe.block_size, **recipe.model))

    def score(ids: torch.Tensor, max_tokens: int | None) -> float:
        device = next(model.parameters()).device
        return cross_entropy(lambda x: model(x)[0], ids, recipe.block_size, batch_size=max(1, SCORE_TOKENS // recipe.block_size),
                             device=device, max_tokens=max_tokens)

    return Trainable(model, tokenizer, _optimizer(model, recipe),
                     lambda ids: random_windows(ids, recipe.block_size, recipe.batch_size, seed=recipe.seed), score,
                     scoring=f"windows of {recipe.block_size} tokens, each read from its start")


def char_lstm(recipe: Recipe, tokenizer) -> Trainable:
    """A `lmcourse.charlm.CharLSTM` trained with truncated backpropagation through time (chapter 03's way).

    Training reads `batch_size` parallel streams of the text, `block_size` characters at a time, the state
    carried from one window to the next (`charlm.TBPTTLoss`). Scoring reads the held-out text in
    LSTM_SCORE_PARTS consecutive parts with the state carried through each, as chapter 03 scores its LSTM.
    """
    model = CharLSTM(tokenizer.vocab_size, **recipe.model)

    def score(ids: torch.Tensor, max_tokens: int | None) -> float:
        device = next(model.parameters()).device
        n = len(ids) - 1 if max_tokens is None else min(max_tokens, len(ids) - 1)
        part = math.ceil(n / LSTM_SCORE_PARTS)
        return cross_entropy(model, ids, part, batch_size=LSTM_SCORE_PARTS, device=device, max_tokens=max_tokens)

    return Trainable(model, tokenizer, _optimizer(model, recipe),
                     lambda ids: consecutive_windows(ids, recipe.block_size, recipe.batch_size), score,
                     scoring=f"{LSTM_SCORE_PARTS} consecutive parts, the LSTM state carried through each",
                     loss_fn=TBPTTLoss())


def masked_lm(recipe: Recipe, tokenizer) -> Trainable:
    """A `lmcourse.mlm.MaskedLM` (chapter 05's BERT) trained on random windows masked anew at each step.

    Training picks `recipe.mask_prob` of the tokens (BERT's 80/10/10 rule); the score is the cross-entropy of
    the held-out tokens picked at BERT's 15 % (`lmcourse.mlm.evaluate_mlm`, the same fixed masking every time).
    """
    specials = SpecialTokens(tokenizer)
    model = MaskedLM(TransformerConfig(specials.vocab_size, max_len=recipe.block_size, **recipe.model))

    def score(ids: torch.Tensor, max_tokens: int | None) -> float:
        n_windows = len(ids) // recipe.block_size if max_tokens is None else max(1, max_tokens // recipe.block_size)
        return evaluate_mlm(model, ids, specials, recipe.block_size, n_windows=n_windows, mask_prob=0.15)["loss"]

    return Trainable(model, specials, _optimizer(model, recipe),
                     lambda ids: mlm_batches(ids, specials, recipe.block_size, recipe.batch_size,
                                             mask_prob=recipe.mask_prob, seed=recipe.seed), score,
                     scoring=f"{recipe.block_size}-token windows, 15 % of the tokens picked by a fixed seed",
                     metric="masked_nats_per_token")


def text_diffusion(recipe: Recipe, tokenizer) -> Trainable:
    """A masked-diffusion `lmcourse.text_diffusion.TextDenoiser` (chapter 07), scored on its bound.

    Each step masks every random window at its own rate t. The loss is the continuous-time ELBO
    (`masked_diffusion_loss`, MDLM's objective) when recipe.max_mask_rate is None; otherwise chapter 07's
    masked-LM loss (`masked_lm_loss`: every masked token weighs the same) at rates up to max_mask_rate, which has
    the same minimiser. The score is the bound on the held-out text (`diffusion_bound`, BOUND_TIMES rates per
    window): an upper bound on nats/char, read beside an AR model's exact cross-entropy.
    """
    model = TextDenoiser(tokenizer.vocab_size, recipe.block_size, **recipe.model)

    def score(ids: torch.Tensor, max_tokens: int | None) -> float:
        device = next(model.parameters()).device
        return diffusion_bound(model, ids, recipe.block_size, n_times=BOUND_TIMES,
                               batch_size=max(1, SCORE_TOKENS // recipe.block_size), device=device,
                               max_tokens=max_tokens, seed=recipe.seed)

    def loss(model: nn.Module, batch: Batch) -> torch.Tensor:  # the windows x; the shifted targets are not used
        if recipe.max_mask_rate is None:
            return masked_diffusion_loss(model, batch[0])
        return masked_lm_loss(model, batch[0], t_max=recipe.max_mask_rate)

    return Trainable(model, tokenizer, _optimizer(model, recipe),
                     lambda ids: random_windows(ids, recipe.block_size, recipe.batch_size, seed=recipe.seed), score,
                     scoring=f"consecutive windows of {recipe.block_size} tokens, each masked at {BOUND_TIMES} "
                             "stratified rates (a Monte Carlo estimate of the bound)",
                     loss_fn=loss, metric="bound_nats_per_char")


def _optimizer(model: nn.Module, recipe: Recipe) -> Callable[[], torch.optim.Optimizer]:
    """The recipe's AdamW (decay on matrices only), made once the model is on its device."""
    return lambda: adamw(model, recipe.lr, recipe.weight_decay, recipe.betas, device=next(model.parameters()).device)


KINDS: dict[str, Callable[[Recipe, Any], Trainable]] = {
    "gpt": gpt, "char_lstm": char_lstm, "masked_lm": masked_lm, "text_diffusion": text_diffusion}
TOKENIZERS: dict[str, Callable[[str], Any]] = {
    "char": lambda corpus: corpus_tokenizer(corpus, "char"),
    "bpe4096": lambda corpus: BPETokenizer.from_text(load_corpus(corpus, "train"), 4096),  # chapter 05's size
}


def build_tokenizer(recipe: Recipe):
    """The recipe's tokenizer, built from its corpus's train split."""
    if recipe.tokenizer not in TOKENIZERS:
        raise ValueError(f"recipe {recipe.name!r} asks for tokenizer {recipe.tokenizer!r}; lmcourse.zoo knows "
                         f"{sorted(TOKENIZERS)}: add it to lmcourse.zoo.build.TOKENIZERS")
    return TOKENIZERS[recipe.tokenizer](recipe.corpus)


def tokenizer_sha256(tokenizer) -> str:
    """A fingerprint of a tokenizer: the sha256 of its tokens in id order (as JSON); of a BPE tokenizer, of its
    Hugging Face JSON (vocabulary and merges)."""
    if isinstance(tokenizer, BPETokenizer):
        return hashlib.sha256(tokenizer.tokenizer.to_str().encode("utf-8")).hexdigest()
    return hashlib.sha256(json.dumps(tokenizer.vocab.itos).encode("utf-8")).hexdigest()


def build(recipe: Recipe, tokenizer) -> Trainable:
    """A new model of the recipe's kind and size for `tokenizer` (on the CPU, initialised from the torch seed)."""
    if recipe.kind not in KINDS:
        raise ValueError(f"recipe {recipe.name!r} asks for model kind {recipe.kind!r}; lmcourse.zoo knows "
                         f"{sorted(KINDS)}: add a function to lmcourse.zoo.build.KINDS")
    try:
        return KINDS[recipe.kind](recipe, tokenizer)
    except TypeError as exc:  # a config key the model does not take
        raise ValueError(f"recipe {recipe.name!r} has model config {recipe.model}, which a {recipe.kind!r} model "
                         f"does not take ({exc})") from exc
