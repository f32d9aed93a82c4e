"""Weights on disk: a plain state dict (`torch.save`, loadable with `weights_only=True`) in the recipe's dtype.

Casting to bfloat16 halves the file; loading casts back to float32, so the model computes as it trained
(the card reports the held-out score both before and after the cast).
"""

from __future__ import annotations

import io

import torch
from torch import nn

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def weights_bytes(model: nn.Module, dtype_on_disk: str) -> bytes:
    """The model's state dict on the CPU, floating tensors cast to `dtype_on_disk`, as the bytes `torch.save` writes.

    Tied weights (GPT's token embedding and output head) stay one tensor, stored once.
    """
    if dtype_on_disk not in DTYPES:
        raise ValueError(f"dtype_on_disk must be one of {sorted(DTYPES)}, got {dtype_on_disk!r}")
    cast: dict[tuple, torch.Tensor] = {}
    state = {}
    for key, tensor in model.state_dict().items():
        same = (tensor.device, tensor.data_ptr(), tuple(tensor.shape), tensor.stride())  # tied weights share this
        if same not in cast:
            dtype = DTYPES[dtype_on_disk] if tensor.is_floating_point() else tensor.dtype
            cast[same] = tensor.detach().to("cpu", dtype).clone()  # own storage: torch.save writes a view's whole storage
        state[key] = cast[same]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def read_weights(payload: bytes, source: str) -> dict[str, torch.Tensor]:
    """A state dict from `weights_bytes`' bytes (read with `weights_only=True`), floating tensors cast to float32.

    source: the file the bytes came from, named in errors.
    """
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{source} could not be read as torch weights ({type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source} does not hold a state dict (names -> tensors); it was not written by lmcourse.zoo")
    return {key: t.float() if t.is_floating_point() else t for key, t in state.items()}
