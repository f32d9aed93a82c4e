"""Train a reference model from its recipe and write its weights and card (`python -m lmcourse.zoo train NAME`).

The run is not resumable, but it is atomic: the weights and the card are each written to a temporary file
and renamed into place, so nothing half-written is ever called NAME.pt or NAME.json.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import torch
from torch import nn

from lmcourse.core import get_device, seed_everything
from lmcourse.data import load_corpus
from lmcourse.files import atomic_write_bytes
from lmcourse.train import autocast_dtype, cosine_schedule, count_parameters
from lmcourse.train import train as train_loop
from lmcourse.zoo.build import build, build_tokenizer, tokenizer_sha256
from lmcourse.zoo.cards import (
    CARD_FORMAT,
    METRICS,
    card_path,
    describe_device,
    provenance,
    text_sha256,
    weights_path,
    write_card,
)
from lmcourse.zoo.recipes import get_recipe
from lmcourse.zoo.weights import read_weights, weights_bytes


def train(name: str, device: torch.device | str | None = None, root: str | os.PathLike | None = None,
          progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Train reference model `name` from its recipe; write ROOT/weights/NAME.pt and ROOT/cards/NAME.json.

    device: where to train (default `lmcourse.get_device()`: cuda > mps > cpu); root: the zoo folder
    (default: the package's). Returns (the trained model in float32, in eval mode, on `device`; the card).
    """
    recipe = get_recipe(name)
    device = get_device(None if device is None else str(device))
    started = time.perf_counter()
    seed_everything(recipe.seed)
    tokenizer = build_tokenizer(recipe)
    train_text, valid_text = load_corpus(recipe.corpus, recipe.split), load_corpus(recipe.corpus, "valid")
    train_ids = torch.tensor(tokenizer.encode(train_text))
    valid_ids = torch.tensor(tokenizer.encode(valid_text))  # a char tokenizer: nats/token = nats/char
    trainable = build(recipe, tokenizer)
    model = trainable.model.to(device)

    def curve_point(_model: nn.Module) -> float:  # the first eval_chars held-out characters
        return trainable.score(valid_ids, recipe.eval_chars)

    model.eval()
    with torch.no_grad():
        untrained = curve_point(model)
    history = train_loop(
        model, trainable.batches(train_ids), optimizer=trainable.optimizer(), steps=recipe.steps,
        loss_fn=trainable.loss_fn, evaluate=curve_point, eval_every=recipe.eval_every, grad_clip=recipe.grad_clip,
        lr_schedule=cosine_schedule(recipe.lr, recipe.steps, recipe.warmup_steps, recipe.min_lr),
        mixed_precision=recipe.mixed_precision, progress=progress, desc=f"zoo {name}")
    train_seconds = history.seconds[-1]
    model.eval()

    # The card's score is that of the model as saved: the weights cast to dtype_on_disk, read back as `load` does.
    payload = weights_bytes(model, recipe.dtype_on_disk)
    saved = build(recipe, tokenizer)
    saved.model.load_state_dict(read_weights(payload, f"the new weights of {name!r}"))
    saved.model.to(device).eval()
    with torch.no_grad():
        valid_saved = saved.score(valid_ids, None)
        valid_before_cast = trainable.score(valid_ids, None) if recipe.dtype_on_disk != "float32" else valid_saved

    unit = METRICS[trainable.metric]
    autocast = autocast_dtype(device, recipe.mixed_precision)  # what lmcourse.train.train trained in
    precision = "float32" if autocast is None else f"{str(autocast).removeprefix('torch.')} autocast"
    card = {
        "card_format": CARD_FORMAT, "name": name, "about": recipe.about, "recipe": recipe.as_dict(),
        "data_sha256": text_sha256(train_text), "data_characters": len(train_text),
        "valid_characters": len(valid_text),
        "tokenizer_vocab_size": tokenizer.vocab_size, "tokenizer_sha256": tokenizer_sha256(tokenizer),
        "weights_sha256": hashlib.sha256(payload).hexdigest(), "weights_bytes": len(payload),
        "parameters": count_parameters(model), "steps_taken": history.step[-1] + 1,
        "train_seconds": round(train_seconds, 3),  # the training loop, with its curve evaluations
        "device": describe_device(device, precision),
        "metric": trainable.metric,
        "curve": {"step": [0] + [s + 1 for s in history.eval_step],
                  trainable.metric: [untrained] + history.eval_loss,
                  "note": f"held-out {unit} on the first {recipe.eval_chars:,} tokens of the {recipe.corpus} "
                          "valid split, during training (in the training precision)"},
        f"valid_{trainable.metric}": valid_saved,
        f"valid_{trainable.metric}_before_cast": valid_before_cast,
        "valid_note": f"{unit} on the whole {recipe.corpus} valid split ({len(valid_text):,} characters, scored "
                      f"in {trainable.scoring}) with the model as "
                      f"saved: weights cast to {recipe.dtype_on_disk} and back to float32, as lmcourse.zoo.load "
                      f"returns it; valid_{trainable.metric}_before_cast is the same score before the cast",
        **provenance(),
    }
    card["wall_seconds"] = round(time.perf_counter() - started, 3)  # everything: data, training, final scores
    atomic_write_bytes(weights_path(name, root), payload)
    write_card(card_path(name, root), card)
    return model, card

