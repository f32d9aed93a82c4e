"""The zoo's command line.

    python -m lmcourse.zoo list                              # every recipe: trained or not, size on disk
    python -m lmcourse.zoo train NAME [--device cuda]        # train it; writes weights/NAME.pt and cards/NAME.json
    python -m lmcourse.zoo show NAME                         # its recipe and, once trained, its card
"""

from __future__ import annotations

import argparse
import os
import sys

from lmcourse.zoo.cards import ZOO, card_scores, read_card, weights_path
from lmcourse.zoo.recipes import RECIPES, get_recipe
from lmcourse.zoo.training import train

WEIGHTS_BUDGET_BYTES = 25_000_000  # all shipped weights together (COURSE.md)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.1f} kB"


def list_models(root: str | os.PathLike | None = None) -> str:
    """A table of every recipe: name, trained or not, weights' size on disk, what it is."""
    rows, total = [("name", "trained", "size", "about")], 0
    for name, recipe in sorted(RECIPES.items()):
        path = weights_path(name, root)
        size = path.stat().st_size if path.is_file() else None
        total += size or 0
        rows.append((name, "yes" if size is not None else "no", _size(size) if size is not None else "-", recipe.about))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3] for row in rows]
    lines.append(f"all weights: {_size(total)} on disk (the course allows {_size(WEIGHTS_BUDGET_BYTES)})")
    return "\n".join(lines)


def show_model(name: str, root: str | os.PathLike | None = None) -> str:
    """The recipe of `name` and, if trained, the main facts of its card and its held-out curve."""
    recipe = get_recipe(name)
    lines = [f"{name}: {recipe.about}", "recipe:"]
    lines += [f"  {key} = {value!r}" for key, value in recipe.as_dict().items() if key not in ("name", "about")]
    if not weights_path(name, root).is_file():
        return "\n".join(lines + [f"not trained: python -m lmcourse.zoo train {name}"])
    card = read_card(name, root)
    device, (saved, before_cast, unit) = card["device"], card_scores(card)
    lines += [
        f"trained: {card['steps_taken']} steps in {card['wall_seconds'] / 60:.1f} min on {device['type']} "
        f"({device['name']}, {device['torch_threads']} torch threads, {device['precision']}), {card['date']}",
        f"commit {card['git_commit']}, torch {card['torch_version']}",
        f"{card['parameters']:,} parameters, weights {_size(card['weights_bytes'])} ({recipe.dtype_on_disk}), "
        f"sha256 {card['weights_sha256'][:16]}...",
        f"valid: {saved:.4f} {unit} as saved ({before_cast:.4f} before the cast to {recipe.dtype_on_disk})",
        "held-out curve (first eval_chars of the valid split):",
    ]
    lines += [f"  step {step:>7,}  {value:.4f} {unit}"
              for step, value in zip(card["curve"]["step"], card["curve"][card["metric"]])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv), do the command, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lmcourse.zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--root", help=f"the folder holding weights/ and cards/ (default: {ZOO})")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[where], help="every reference model: trained or not, size on disk")
    train_parser = sub.add_parser("train", parents=[where], help="train NAME from its recipe, write weights and card")
    train_parser.add_argument("name")
    train_parser.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: cuda > mps > cpu, or $LMCOURSE_DEVICE)")
    show = sub.add_parser("show", parents=[where], help="NAME's recipe and card")
    show.add_argument("name")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print(list_models(args.root))
        elif args.command == "show":
            print(show_model(args.name, args.root))
        else:
            _, card = train(args.name, device=args.device, root=args.root)
            saved, _, unit = card_scores(card)
            print(f"{args.name}: {saved:.4f} {unit} on the valid split, "
                  f"{card['wall_seconds'] / 60:.1f} min on {card['device']['name']}; wrote "
                  f"{weights_path(args.name, args.root)} and its card")
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
