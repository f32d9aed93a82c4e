"""Recipes of the reference models: everything a training run depends on, written down in code.

A recipe names its data, tokenizer, model kind and size, seed, optimiser, schedule and number of steps,
so that `python -m lmcourse.zoo train NAME` reproduces the shipped weights (up to the device's arithmetic).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lmcourse.checks import check_int, check_number

DTYPES_ON_DISK = ("bfloat16", "float16", "float32")
MIXED_PRECISIONS = ("auto", "bf16", "fp16", "off")


@dataclass(frozen=True)
class Recipe:
    """One reference model: what it is trained on, how, and for how long."""

    name: str
    about: str                         # one line: what the model is
    corpus: str                        # lmcourse.data.load_corpus(corpus, split) is the training text
    split: str
    tokenizer: str                     # "char": the course's lmcourse.data.corpus_tokenizer(corpus, "char")
    kind: str                          # the model kind, a key of lmcourse.zoo.build.KINDS ("gpt", "char_lstm", ...)
    model: dict[str, Any] = field(hash=False)  # the kind's config, less vocab_size (from the tokenizer) and block_size
    seed: int
    lr: float                          # AdamW's peak learning rate
    betas: tuple[float, float]
    weight_decay: float                # on matrices only (embeddings, Linear weights)
    warmup_steps: int                  # linear warm-up, then cosine decay to min_lr at the last step
    min_lr: float
    grad_clip: float
    batch_size: int
    block_size: int                    # tokens of context (an LSTM's: characters per truncated-BPTT window)
    steps: int
    eval_every: int                    # steps between points of the held-out curve
    eval_chars: int                    # the curve scores the first eval_chars tokens (characters) of the valid split
    dtype_on_disk: str                 # "bfloat16" halves the file; the card reports the score it costs
    mask_prob: float | None = None     # a masked LM's share of tokens picked for prediction in training; else None
    mixed_precision: str = "auto"      # lmcourse.train.train's: "auto" autocasts on CUDA only, "bf16" on a CPU too
    max_mask_rate: float | None = None  # a masked-diffusion LM: None trains on its ELBO (masked_diffusion_loss), a rate
                                        # in (0, 1] on the masked-LM loss at rates up to it (masked_lm_loss); else None

    def __post_init__(self) -> None:
        for name in ("name", "about", "corpus", "tokenizer", "kind"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"Recipe.{name} must be a non-empty str, got {getattr(self, name)!r}")
        if self.split != "train":
            raise ValueError(f"Recipe.split must be 'train' (the valid split is the held-out text every chapter "
                             f"scores on), got {self.split!r}")
        if not isinstance(self.model, dict):
            raise ValueError(f"Recipe.model must be a dict of the model's config, got {self.model!r}")
        check_int("seed", self.seed, minimum=0)
        for name in ("batch_size", "block_size", "steps", "eval_every", "eval_chars"):
            check_int(name, getattr(self, name))
        check_int("warmup_steps", self.warmup_steps, 0, self.steps, fix="warm-up steps, at most steps")
        check_number("lr", self.lr, 0, low_open=True)
        check_number("min_lr", self.min_lr, 0, self.lr, fix="the learning rate at the last step, between 0 and lr")
        check_number("weight_decay", self.weight_decay, 0)
        check_number("grad_clip", self.grad_clip, 0, low_open=True)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"Recipe.betas must be two numbers in [0, 1), got {self.betas!r}; (0.9, 0.99) is usual")
        if (self.kind == "masked_lm") != (self.mask_prob is not None):
            raise ValueError(f"Recipe.mask_prob must be a share in (0, 1) for a masked LM and None for other kinds; "
                             f"got kind {self.kind!r} with mask_prob {self.mask_prob!r}")
        if self.mask_prob is not None:
            check_number("mask_prob", self.mask_prob, 0, 1, low_open=True, high_open=True, fix="BERT uses 0.15")
        if self.max_mask_rate is not None:
            if self.kind != "text_diffusion":
                raise ValueError(f"Recipe.max_mask_rate is for a masked-diffusion LM (kind 'text_diffusion'); got kind "
                                 f"{self.kind!r} with max_mask_rate {self.max_mask_rate!r}: leave it None")
            check_number("max_mask_rate", self.max_mask_rate, 0, 1, low_open=True,
                         fix="the highest masking rate trained on, or None to train on the ELBO")
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"Recipe.mixed_precision must be one of {MIXED_PRECISIONS}, got {self.mixed_precision!r}")
        if self.dtype_on_disk not in DTYPES_ON_DISK:
            raise ValueError(f"Recipe.dtype_on_disk must be one of {DTYPES_ON_DISK}, got {self.dtype_on_disk!r}")

    def as_dict(self) -> dict[str, Any]:
        """The recipe as plain JSON data (betas as a list), as stored in the card."""
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data


# The trials that chose diffusion-char-wiki's training loss, as measured then (one run each, nothing else on the 2 cores
# of an AMD EPYC): its recipe with the schedule shortened to `steps`, each model's bound (nats/char) on the first
# `valid_chars` characters of the valid split. A record of those runs: chapter 07 prints it, nothing re-runs it.
DIFFUSION_LOSS_TRIALS = {
    "steps": 500, "valid_chars": 65_536, "seed": 0,
    "bound_nats_per_char": {"ELBO (masked_diffusion_loss)": 2.292,
                            "ELBO, each window's masked tokens averaged": 2.292,
                            "masked-LM loss at rates up to 1 (masked_lm_loss, t_max=1)": 2.221,
                            "masked-LM loss at rates up to 0.5 (masked_lm_loss, t_max=0.5)": 2.143}}

RECIPE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Recipe) if f.default is not dataclasses.MISSING}

RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe(
        name="gpt-char-wiki",
        about="a character-level GPT (4 layers, 192 wide) trained on the wiki corpus's train split",
        corpus="wiki", split="train", tokenizer="char", kind="gpt",
        model={"n_layer": 4, "n_head": 4, "n_embd": 192, "dropout": 0.1, "attn_dropout": 0.0},
        seed=0, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.1, warmup_steps=100, min_lr=2e-4, grad_clip=1.0,
        batch_size=32, block_size=256,
        steps=6000, mixed_precision="bf16",
        # Without dropout it overfits: the float32 recipe (4,000 steps, 43 min on 2 cores of an Intel Xeon) scored 1.14
        # nats/char on the first 300,000 training characters and 1.397 on the valid split, and 6,400 bf16 steps scored
        # 1.411 (the curve lowest at step 5,000). Dropout 0.1 where GPT-2 puts it (embeddings, each branch's output)
        # costs 15 % per bf16 step (0.39 s against 0.34 s on 2 cores of an AMD EPYC with AVX512-BF16); on the attention
        # weights too it costs 2.5 times (0.85 s: torch's fused kernel on a CPU has no dropout), so attn_dropout is 0.
        # 6,000 steps took 43.0 min with the curve and the scoring and scored 1.362 on the valid split; the curve still
        # falls at the end (1.410 at step 5,750, 1.405 at 6,000); 49M characters read, about 18 passes.
        eval_every=250, eval_chars=32_768, dtype_on_disk="bfloat16"),
    Recipe(
        name="char-lstm-wiki",
        about="a character-level LSTM (2 layers of 512) trained on the wiki corpus's train split, state carried",
        corpus="wiki", split="train", tokenizer="char", kind="char_lstm",
        model={"embed_dim": 64, "hidden_size": 512, "num_layers": 2, "dropout": 0.25},
        # chapter 03's recipe (AdamW at a high peak, truncated BPTT over 32 streams of 128 characters), made wider
        # and deeper; 150-step trials on 2 CPU threads: 8e-3 beat 3e-3 (2.11 vs 2.31 held-out nats/char), 6e-3
        # is a little below the faster one for a run 30 times longer.
        seed=0, lr=6e-3, betas=(0.9, 0.99), weight_decay=0.05, warmup_steps=100, min_lr=3e-4, grad_clip=1.0,
        batch_size=32, block_size=128,
        # 0.43 s/step measured on 2 idle CPU cores (about 9,500 characters/s): 4,800 steps fit in 45 minutes
        # with the curve and the final scoring; 19.7M characters read, about 7 passes over the training text.
        steps=4800,
        eval_every=300, eval_chars=32_768, dtype_on_disk="bfloat16"),
    Recipe(
        name="mlm-bpe-wiki",
        about="a masked LM (BERT body, 4 layers, 192 wide) on 4,096 byte-pair tokens of the wiki train split",
        corpus="wiki", split="train", tokenizer="bpe4096", kind="masked_lm",
        model={"n_layer": 4, "n_head": 4, "n_embd": 192, "dropout": 0.1},
        # chapter 05's masked LM (40 % of the tokens picked, BERT's 80/10/10 rule, AdamW) made twice as deep,
        # 1.5 times as wide, with windows twice as long and 6.25 times as many steps (7,500 vs 1,200)
        seed=0, lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01, warmup_steps=200, min_lr=1e-4, grad_clip=1.0,
        batch_size=32, block_size=128,
        # In float32 a step took about 0.52 s on 2 CPU cores of an Intel Xeon, and 4,000 steps scored 4.374 nats per
        # picked token on the valid split (the curve still falling: 4.358 at step 3,600, 4.325 at 4,000). In bf16
        # autocast a step takes about 0.31 s on 2 idle cores of an AMD EPYC with AVX512-BF16: 7,500 steps took 43.5 min
        # with the curve and the scoring (about 3 of them lost to another process on the machine) and scored 3.663;
        # 31M tokens read, about 37 passes, each with fresh masks; the curve still falls at the end (3.655, 3.624).
        steps=7500, mixed_precision="bf16",
        eval_every=500, eval_chars=16_384, dtype_on_disk="bfloat16", mask_prob=0.4),
    Recipe(
        name="diffusion-char-wiki",
        about="a masked-diffusion LM on characters (chapter 07's denoiser, 4 layers, 192 wide), wiki train split",
        corpus="wiki", split="train", tokenizer="char", kind="text_diffusion",
        model={"n_layer": 4, "n_head": 4, "n_embd": 192, "dropout": 0.0},
        # gpt-char-wiki's recipe, bidirectional and masked: the same width, depth, windows, batch, optimiser, schedule
        # and steps, so that the two reference models differ in what they predict (and in the GPT's dropout)
        seed=0, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.1, warmup_steps=100, min_lr=2e-4, grad_clip=1.0,
        batch_size=32, block_size=256,
        # In bf16 autocast a step takes about 0.36 s on 2 cores of an AMD EPYC with AVX512-BF16 (0.74 s in float32 on
        # a Xeon); 49M characters read, about 18 passes over the training text, each with fresh masks.
        steps=6000, mixed_precision="bf16",
        # Trained on chapter 07's masked-LM loss at rates up to 0.5, not on the bound (the ELBO): DIFFUSION_LOSS_TRIALS.
        # 6,000 steps took 38.7 min with the curve and the scoring and scored 1.758 on the valid split (trained on the
        # ELBO: 1.867; in float32 for 3,200 steps: 1.956); the curve still falls at the end (1.808 at step 5,750, 1.799).
        max_mask_rate=0.5,
        eval_every=250, eval_chars=32_768, dtype_on_disk="bfloat16"),
    Recipe(
        name="tiny-test",
        about="a one-layer, 32-wide character GPT trained for 20 steps: the recipe the unit tests train",
        corpus="wiki", split="train", tokenizer="char", kind="gpt",
        model={"n_layer": 1, "n_head": 2, "n_embd": 32, "dropout": 0.0},
        seed=0, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1, warmup_steps=5, min_lr=1e-3, grad_clip=1.0,
        batch_size=8, block_size=32, steps=20, eval_every=10, eval_chars=2048, dtype_on_disk="bfloat16"),
    Recipe(
        name="tiny-test-lstm",
        about="a one-layer, 32-wide character LSTM trained for 20 steps: the LSTM recipe the unit tests train",
        corpus="wiki", split="train", tokenizer="char", kind="char_lstm",
        model={"embed_dim": 16, "hidden_size": 32, "num_layers": 1, "dropout": 0.0},
        seed=0, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.05, warmup_steps=5, min_lr=1e-3, grad_clip=1.0,
        batch_size=8, block_size=32, steps=20, eval_every=10, eval_chars=2048, dtype_on_disk="bfloat16"),
    Recipe(
        name="tiny-test-mlm",
        about="a one-layer, 32-wide masked LM trained for 20 steps: the masked-LM recipe the unit tests train",
        corpus="wiki", split="train", tokenizer="bpe4096", kind="masked_lm",
        model={"n_layer": 1, "n_head": 2, "n_embd": 32, "dropout": 0.0},
        seed=0, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.01, warmup_steps=5, min_lr=1e-3, grad_clip=1.0,
        batch_size=8, block_size=32, steps=20, eval_every=10, eval_chars=2048, dtype_on_disk="bfloat16",
        mask_prob=0.4),
    Recipe(
        name="tiny-test-diffusion",
        about="a one-layer, 32-wide masked-diffusion LM trained for 20 steps: the diffusion recipe the unit tests train",
        corpus="wiki", split="train", tokenizer="char", kind="text_diffusion",
        model={"n_layer": 1, "n_head": 2, "n_embd": 32, "dropout": 0.0},
        seed=0, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1, warmup_steps=5, min_lr=1e-3, grad_clip=1.0,
        batch_size=8, block_size=32, steps=20, eval_every=10, eval_chars=2048, dtype_on_disk="bfloat16"),
]}


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`; ValueError listing the known names otherwise."""
    if name not in RECIPES:
        raise ValueError(f"name={name!r} is not a reference model of lmcourse.zoo; the known ones are "
                         f"{', '.join(sorted(RECIPES))} (python -m lmcourse.zoo list)")
    return RECIPES[name]
