"""Device choice, seeding and fast mode: the three switches every notebook sets first."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from lmcourse.checks import check_int, check_positive_ints  # noqa: F401  (check_positive_ints: its old home)

DEVICE_ENV = "LMCOURSE_DEVICE"
FAST_ENV = "LMCOURSE_FAST"
MIN_TORCH = (2, 4)  # torch.amp, scaled_dot_product_attention with is_causal, weights_only loading
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def check_torch_version(version: str = torch.__version__) -> None:
    """Raise ImportError with the fix when torch is older than the course needs."""
    major, minor = (int(part) for part in version.split("+")[0].split(".")[:2])
    if (major, minor) < MIN_TORCH:
        raise ImportError(f"lmcourse needs torch >= {'.'.join(map(str, MIN_TORCH))}, found {version}; "
                          "upgrade inside the course environment: pip install -c constraints.txt torch")


check_torch_version()


def available_devices() -> list[str]:
    """Names of the devices torch can use here, best first: cuda:N..., mps, cpu."""
    names = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names + ["cpu"]


def get_device(prefer: str | None = None) -> torch.device:
    """The device to compute on: `prefer`, else $LMCOURSE_DEVICE, else cuda > mps > cpu.

    Asking for a device that is not here raises ValueError naming what is available.
    """
    wanted = prefer if prefer is not None else os.environ.get(DEVICE_ENV, "").strip() or None
    available = available_devices()
    if wanted is None:
        return torch.device(available[0])
    source = "prefer" if prefer is not None else f"${DEVICE_ENV}"
    try:
        device = torch.device(wanted)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{source}={wanted!r} is not a device name; use one of {available}") from exc
    name = str(device)
    if device.type == "cuda" and device.index is None:
        name = "cuda:0"
    if name not in available:
        raise ValueError(f"{source}={wanted!r} asks for a device that is not available here; "
                         f"available: {available}")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so that a run repeats."""
    check_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds cuda and mps generators too


def fast_mode() -> bool:
    """True when $LMCOURSE_FAST asks for the small, quick version of every notebook."""
    value = os.environ.get(FAST_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"${FAST_ENV}={value!r} is not understood; set it to 1 (fast) or 0 (full)")


# Dense (no sparsity) bf16 tensor-core peak per GPU, FLOP/s, from the vendors' data sheets (T4: fp16).
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "4090": 165e12,
                   "T4": 65e12}


def peak_flops(device: torch.device | str) -> float | None:
    """A CUDA device's dense bf16 peak in FLOP/s, found by its name; None on CPU, mps or a GPU not in the table."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a device name; use one of {available_devices()}") from exc
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)
