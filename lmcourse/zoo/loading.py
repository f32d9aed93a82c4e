"""Load a reference model after checking that it is the one its card describes (`lmcourse.zoo.load`).

Checked before any weight is used: the card is complete, its recipe is the one in code, the weights file's
sha256 is the card's, and the training text and tokenizer are the ones the model was trained on. Any mismatch
is a ValueError naming the file, both hashes and the fix; a model is never loaded silently.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import torch
from torch import nn

from lmcourse.core import get_device
from lmcourse.data import load_corpus
from lmcourse.zoo.build import build, build_tokenizer, tokenizer_sha256
from lmcourse.zoo.cards import card_path, read_card, text_sha256, train_command, weights_path
from lmcourse.zoo.recipes import RECIPE_DEFAULTS, get_recipe
from lmcourse.zoo.weights import read_weights


def _fix(name: str, path: os.PathLike) -> str:
    return f"re-train with {train_command(name)} or restore the file with git (git checkout -- {path})"


def load(name: str, device: torch.device | str = "cpu", root: str | os.PathLike | None = None
         ) -> tuple[nn.Module, Any, dict[str, Any]]:
    """Reference model `name` -> (model in float32 and eval mode on `device`, its tokenizer, its card).

    The tokenizer is what the model reads: for a masked LM, an `lmcourse.mlm.SpecialTokens` ([MASK] and the rest).

    root: the zoo folder (default: the package's). Raises ValueError for an unknown name or any mismatch
    with the card, FileNotFoundError when the model has not been trained (saying how to train it).
    """
    recipe = get_recipe(name)
    device = get_device(str(device))
    weights = weights_path(name, root)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} does not exist: reference model {name!r} has not been trained here. "
                                f"Train it with {train_command(name)} (add --device cuda on a GPU), "
                                f"or restore the shipped file with git (git checkout -- {weights})")
    card = read_card(name, root)
    card_file = card_path(name, root)
    trained_with = card["recipe"]
    # a field added to Recipe after a card was written is the same recipe when it has its default value
    changed = sorted(k for k, v in recipe.as_dict().items() if trained_with.get(k, RECIPE_DEFAULTS.get(k)) != v)
    if changed:
        trained = ", ".join(f"{k}={trained_with.get(k)!r}" for k in changed)
        in_code = ", ".join(f"{k}={getattr(recipe, k)!r}" for k in changed)
        raise ValueError(f"{card_file} was trained with {trained}, but lmcourse.zoo's recipe {name!r} now says "
                         f"{in_code}: the weights are not what the recipe makes; {_fix(name, weights)}")
    payload = weights.read_bytes()
    actual = hashlib.sha256(payload).hexdigest()
    if actual != card["weights_sha256"]:
        raise ValueError(f"{weights} has sha256 {actual}, but its card {card_file} says {card['weights_sha256']}: "
                         f"the file is damaged or not the one the card describes; {_fix(name, weights)}")
    data = text_sha256(load_corpus(recipe.corpus, recipe.split))
    if data != card["data_sha256"]:
        raise ValueError(f"the training text ({recipe.corpus!r}, split {recipe.split!r}) now has sha256 {data}, but "
                         f"{card_file} was trained on text with sha256 {card['data_sha256']} (another gensim, or "
                         f"lmcourse.data cleans it differently now); {_fix(name, weights)}")
    tokenizer = build_tokenizer(recipe)
    if tokenizer_sha256(tokenizer) != card["tokenizer_sha256"]:
        raise ValueError(f"the {recipe.tokenizer!r} tokenizer of {recipe.corpus!r} now has sha256 "
                         f"{tokenizer_sha256(tokenizer)} ({tokenizer.vocab_size} tokens), but {card_file} was "
                         f"trained with sha256 {card['tokenizer_sha256']} ({card['tokenizer_vocab_size']} tokens); "
                         f"{_fix(name, weights)}")
    trainable = build(recipe, tokenizer)
    model = trainable.model
    try:
        model.load_state_dict(read_weights(payload, str(weights)))
    except RuntimeError as exc:
        raise ValueError(f"{weights} does not fit the {recipe.kind!r} model of the recipe ({exc}); "
                         f"{_fix(name, weights)}") from exc
    return model.to(device).eval(), trainable.tokenizer, card
