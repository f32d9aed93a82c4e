"""Reference models: recipes in code, weights and cards in the repository, verified by sha256 on load.

    model, tokenizer, card = lmcourse.zoo.load("gpt-char-wiki")   # verified; float32, eval mode
    python -m lmcourse.zoo list                                    # what there is, trained or not, sizes
    python -m lmcourse.zoo train gpt-char-wiki [--device cuda]     # reproduce one (<= 45 min on 2 CPU cores)
    python -m lmcourse.zoo show gpt-char-wiki                      # its recipe and card

A chapter trains its small model live, then loads the reference model (the same idea trained longer) and
evaluates it live on the same held-out text; the card's numbers describe the run, they are not results.

    recipes    the Recipe dataclass and the RECIPES registry
    build      recipe -> tokenizer and model (one function per model kind)
    weights    the state dict on disk, in the recipe's dtype
    cards      where the files live, and the card (provenance, curve, scores)
    training   train(name): train, score, write weights and card atomically
    loading    load(name): verify, then return (model, tokenizer, card)
    cli        python -m lmcourse.zoo list | train NAME | show NAME
"""

from lmcourse.zoo.cards import CARD_FIELDS, card_path, read_card, weights_path
from lmcourse.zoo.loading import load
from lmcourse.zoo.recipes import RECIPES, Recipe, get_recipe
from lmcourse.zoo.training import train

__all__ = ["CARD_FIELDS", "RECIPES", "Recipe", "card_path", "get_recipe", "load", "read_card", "train", "weights_path"]
