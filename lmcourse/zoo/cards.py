"""Where a reference model lives, and its card: the JSON record of how, on what and where it was trained.

    ZOO/weights/NAME.pt     the weights (see lmcourse.zoo.weights)
    ZOO/cards/NAME.json     the card: the recipe, sha256 of data and weights, device, time, commit, curve

ZOO is this package's folder by default; tests pass another `root` so they never write into the package.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from lmcourse.files import atomic_write_text

ZOO = Path(__file__).resolve().parent
CARD_FORMAT = 1

# Every card holds these; lmcourse.zoo.load refuses a card that lacks one.
CARD_FIELDS = (
    "card_format", "name", "about", "recipe",
    "data_sha256", "data_characters", "valid_characters",
    "tokenizer_vocab_size", "tokenizer_sha256",
    "weights_sha256", "weights_bytes", "parameters",
    "steps_taken", "wall_seconds", "train_seconds", "device", "torch_version", "python_version", "git_commit",
    "metric", "curve", "valid_note", "date",
)
# and the held-out score in the card's metric: valid_METRIC, valid_METRIC_before_cast (see `card_scores`)
METRICS = {"nats_per_char": "nats/char", "masked_nats_per_token": "nats per masked token",
           "bound_nats_per_char": "nats/char (an upper bound)"}


def weights_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where the weights of reference model `name` live: ROOT/weights/NAME.pt."""
    return Path(root if root is not None else ZOO) / "weights" / f"{name}.pt"


def card_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where the card of reference model `name` lives: ROOT/cards/NAME.json."""
    return Path(root if root is not None else ZOO) / "cards" / f"{name}.json"


def train_command(name: str) -> str:
    """The command that (re)trains reference model `name`, quoted for an error message."""
    return f"`python -m lmcourse.zoo train {name}`"


def text_sha256(text: str) -> str:
    """The hex sha256 of `text` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe_device(device: torch.device, precision: str) -> dict[str, Any]:
    """What a run computed on: device type and name, the CPU, and the threads torch used."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "Apple GPU" if device.type == "mps" \
        else cpu_name()
    return {"type": device.type, "name": name, "cpu": cpu_name(), "cpus_usable": usable,
            "torch_threads": torch.get_num_threads(), "precision": precision}


def git_commit() -> str | None:
    """`git rev-parse HEAD` of the checkout holding this package, or None (not a git checkout, no git)."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ZOO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def provenance() -> dict[str, Any]:
    """The software and the moment of a run: torch and Python versions, the git commit, the date (UTC)."""
    return {"torch_version": torch.__version__, "python_version": platform.python_version(),
            "git_commit": git_commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def write_card(path: Path, card: dict[str, Any]) -> None:
    """Write `card` as indented JSON, atomically."""
    missing = [f for f in CARD_FIELDS + (f"valid_{card.get('metric')}",) if f not in card]
    if missing:
        raise ValueError(f"the card of {card.get('name')!r} lacks {missing}; this is a bug in lmcourse.zoo")
    atomic_write_text(path, json.dumps(card, indent=1) + "\n")


def card_scores(card: dict[str, Any]) -> tuple[float, float, str]:
    """A card's held-out score as saved, before the cast to the dtype on disk, and its unit ("nats/char")."""
    metric = card["metric"]
    return card[f"valid_{metric}"], card[f"valid_{metric}_before_cast"], METRICS[metric]


def read_card(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The card of reference model `name`, after checking it is JSON with every field of `CARD_FIELDS`."""
    path = card_path(name, root)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: reference model {name!r} has no card; train it with "
                                f"{train_command(name)} or restore the file with git (git checkout -- {path})")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable JSON card ({exc}); re-train with {train_command(name)} or "
                         f"restore the file with git (git checkout -- {path})") from exc
    missing = [f for f in CARD_FIELDS if not isinstance(card, dict) or f not in card]
    if not missing and card["metric"] not in METRICS:
        missing = [f"metric (one of {', '.join(METRICS)}, not {card['metric']!r})"]
    if not missing:
        missing = [f for f in (f"valid_{card['metric']}", f"valid_{card['metric']}_before_cast") if f not in card]
    if missing:
        raise ValueError(f"{path} lacks the field(s) {', '.join(missing)} that every card of lmcourse.zoo holds; "
                         f"re-train with {train_command(name)} or restore the file with git (git checkout -- {path})")
    if card["card_format"] != CARD_FORMAT:
        raise ValueError(f"{path} has card_format {card['card_format']!r}; this lmcourse reads format {CARD_FORMAT}: "
                         f"re-train with {train_command(name)}, or use the lmcourse that wrote it")
    return card
