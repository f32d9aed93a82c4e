"""Checkpoints that load safely (`weights_only=True`) and are written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmcourse.files import atomic_path


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    **metadata: Any) -> Path:
    """Save model (and optimizer) state with plain-data `metadata` (step, loss, config...).

    Written to a temporary file first, then renamed, so an interrupted save never corrupts
    the previous checkpoint. Returns the path written.
    """
    state = {"model": model.state_dict(), "metadata": metadata}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` into `model` (and `optimizer`); return its metadata.

    Uses `weights_only=True`, so a file cannot run code when it is loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist; check the path or train and save first")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or holds objects that are not plain data
        raise ValueError(f"checkpoint {str(path)!r} could not be read ({type(exc).__name__}: {exc}); "
                         "it is corrupt or not a lmcourse checkpoint: delete it and save again") from exc
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"checkpoint {str(path)!r} has no 'model' entry; it was not written by save_checkpoint")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {str(path)!r} does not fit this model ({exc}); "
                         "build the model with the configuration the checkpoint was trained with") from exc
    if optimizer is not None:
        if "optimizer" not in state:
            raise ValueError(f"checkpoint {str(path)!r} holds no optimizer state; pass optimizer=None")
        optimizer.load_state_dict(state["optimizer"])
    return state.get("metadata", {})
