"""Checkpoints that load safely (`weights_only=True`) and are written atomically.

A checkpoint is {"format": 1, "model": state_dict, "metadata": {...}, "optimizer": state_dict?}. The metadata
holds only what `weights_only` loading accepts back: None, bool, int, float, str, tensors, and lists, tuples
and dicts of those. Dataclasses (a `GPTConfig`) are saved as dicts and NumPy scalars as Python numbers;
anything else is refused when saving, naming its key, so a file that was saved always loads.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lmcourse.files import atomic_path

FORMAT = 1  # raise when the layout changes; files of a newer format are refused with "upgrade lmcourse"
_PLAIN = (type(None), bool, int, float, str)


def plain_metadata(value: Any, key: str = "metadata") -> Any:
    """`value` as data `weights_only` loading gives back: dataclasses -> dicts, NumPy scalars -> Python numbers.

    Raises TypeError naming `key` (e.g. "metadata['config']['when']") for anything else.
    """
    if type(value) in _PLAIN or type(value) is torch.Tensor or type(value) is nn.Parameter:
        return value
    if isinstance(value, np.generic) and value.ndim == 0 and value.dtype.kind in "biufc":
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if type(value) is dict:
        for k in value:
            if type(k) not in _PLAIN:
                raise TypeError(f"{key} has a key {k!r} of type {type(k).__name__}; use str keys")
        return {k: plain_metadata(v, f"{key}[{k!r}]") for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(plain_metadata(v, f"{key}[{i}]") for i, v in enumerate(value))
    if isinstance(value, np.ndarray):
        raise TypeError(f"{key} is a NumPy array, which a safe (weights_only) load cannot read back; "
                        f"save torch.from_numpy(array) or array.tolist() instead")
    raise TypeError(f"{key} is a {type(value).__module__}.{type(value).__qualname__}, which a safe (weights_only) "
                    f"load cannot read back; save plain data instead (str(...), a number, a dict or a list)")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    **metadata: Any) -> Path:
    """Save model (and optimizer) state with plain-data `metadata` (step, loss, config=model.config...).

    Metadata is checked before anything is written (see `plain_metadata`). Written to a temporary file,
    flushed to disk, then renamed, so an interrupted save never corrupts the previous checkpoint.
    Returns the path written.
    """
    _check_module(model)
    state = {"format": FORMAT, "model": model.state_dict(), "metadata": plain_metadata(metadata)}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def _check_map_location(map_location: str | torch.device) -> None:
    try:
        device = torch.device(map_location)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"map_location={map_location!r} is not a device ({exc}); use 'cpu', 'cuda' or 'mps'") from None
    available = {"cpu": True, "meta": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, True):
        raise ValueError(f"map_location={map_location!r}: this machine has no {device.type} device; "
                         f"use map_location='cpu' (or lmcourse.get_device())")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"map_location={map_location!r}: this machine has {torch.cuda.device_count()} CUDA "
                         f"device(s); use 'cuda:0' .. 'cuda:{torch.cuda.device_count() - 1}' or 'cpu'")


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checked contents of a checkpoint: {"model": state_dict, "metadata": dict, "optimizer"?: state_dict}.

    Uses `weights_only=True`, so a file cannot run code when it is loaded. Each way to fail says why:
    missing file, a map_location this machine lacks, a newer format, objects that are not plain data,
    or a damaged file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist; check the path or train and save first")
    _check_map_location(map_location)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        if "Weights only load failed" in str(exc):  # a valid file holding objects that are not plain data
            found = re.search(r"GLOBAL ([\w.]+)", str(exc))
            raise ValueError(f"checkpoint {str(path)!r} could not be read safely: it holds objects that a "
                             f"weights_only load refuses ({found.group(1) if found else why}); "
                             "it was not written by this save_checkpoint. If you trust its source, load it with "
                             "torch.load(path, weights_only=False) and save it again with save_checkpoint") from exc
        raise ValueError(f"checkpoint {str(path)!r} could not be read ({why}); it is corrupt (an interrupted "
                         "copy?) or not a torch file: delete it and save again") from exc
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"checkpoint {str(path)!r} has no 'model' entry; it was not written by save_checkpoint")
    version = state.get("format", 1)
    if not isinstance(version, int) or version > FORMAT:
        raise ValueError(f"checkpoint {str(path)!r} has format {version!r}, newer than this lmcourse reads "
                         f"(format {FORMAT}); upgrade lmcourse (pip install -U -e .) to load it")
    return state


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` into `model` (and `optimizer`); return its metadata.

    Uses `weights_only=True`, so a file cannot run code when it is loaded (see `read_checkpoint`).
    """
    _check_module(model)
    state = read_checkpoint(path, map_location)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {str(path)!r} does not fit this model ({exc}); "
                         "build the model with the configuration the checkpoint was trained with") from exc
    if optimizer is not None:
        if "optimizer" not in state:
            raise ValueError(f"checkpoint {str(path)!r} holds no optimizer state; pass optimizer=None")
        if list(state["model"]) != list(model.state_dict()):  # an optimizer's state is by position, not by name
            raise ValueError(f"checkpoint {str(path)!r} was written by an earlier lmcourse whose model held its "
                             "parameters in another order, so its optimizer state would update the wrong ones; load "
                             "the weights with optimizer=None and start a new optimizer")
        optimizer.load_state_dict(state["optimizer"])
    return state.get("metadata", {})


def _check_module(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module (the model whose weights are saved or loaded), "
                         f"got a {type(model).__name__}")
