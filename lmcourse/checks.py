"""Checks of what a user passes in: each raises a ValueError that names the argument, the value and the fix.

Public functions call these at their entry (never inside a per-step loop), so a mistake is named where
it is made instead of surfacing later as an obscure torch error or as silent garbage:

    check_int("max_new_tokens", max_new_tokens, minimum=0)     # refuses True, 2.5, -1
    check_number("eta", eta, low=0)                             # refuses nan, inf, -0.5
    idx = check_token_ids("idx", idx, vocab_size)               # refuses floats and ids outside the vocabulary
"""

from __future__ import annotations

import math
import numbers

import torch


def describe(x: object) -> str:
    """A short description of a value for an error message: a tensor's shape and dtype, else its type."""
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"a {type(x).__name__}"


def check_int(name: str, value: object, minimum: int = 1, maximum: int | None = None, fix: str = "") -> int:
    """`value` as an int in [minimum, maximum]; bools, floats and strings are refused (sizes, counts, steps, seeds)."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, torch.Tensor))
    if ok and minimum <= value and (maximum is None or value <= maximum):
        return int(value)
    bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    raise ValueError(f"{name} must be an int {bounds}, got {value!r}" + (f"; {fix}" if fix else ""))


def check_positive_ints(**values: object) -> None:
    """Raise a ValueError naming the first argument that is not an int >= 1 (sizes, counts, steps)."""
    for name, value in values.items():
        check_int(name, value, minimum=1)


def check_number(name: str, value: object, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, fix: str = "") -> float:
    """`value` as a finite float within the bounds (open or closed); NaN, infinities and bools are refused."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        above = low is None or (value > low if low_open else value >= low)
        below = high is None or (value < high if high_open else value <= high)
        if above and below:
            return float(value)
    if low is not None and high is not None:
        bounds = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        bounds = f"{'>' if low_open else '>='} {low}"
    elif high is not None:
        bounds = f"{'<' if high_open else '<='} {high}"
    else:
        bounds = ""
    if not ok or not bounds:  # NaN, an infinity, a bool or not a number at all
        bounds = f"a finite number {bounds}".rstrip()
    raise ValueError(f"{name} must be {bounds}, got {value!r}" + (f"; {fix}" if fix else ""))


def check_token_ids(name: str, ids: object, vocab_size: int | None = None, ndim: int | None = None) -> torch.Tensor:
    """`ids` as a LongTensor after checking it holds integer token ids in [0, vocab_size).

    Integer dtypes other than int64 (int32 from numpy or a tokenizer) are converted; floats and bools
    are refused, as are ids outside the vocabulary (the check reads min and max: call it once per call
    of a public function, not per step).
    """
    if not isinstance(ids, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of token ids, got {describe(ids)}; wrap a list of ids as "
                         f"torch.tensor([ids])")
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise ValueError(f"{name} must hold integer token ids, got dtype {ids.dtype}; convert with {name}.long() "
                         "(or encode text with the tokenizer)")
    if ndim is not None and ids.ndim != ndim:
        shape = "(batch, time)" if ndim == 2 else "(time,)" if ndim == 1 else f"{ndim} dimensions"
        raise ValueError(f"{name} must have shape {shape}, got {tuple(ids.shape)}")
    if ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or (vocab_size is not None and high >= vocab_size):
            vocab = f"[0, vocab_size={vocab_size})" if vocab_size is not None else "ids >= 0"
            raise ValueError(f"{name} holds token ids in [{low}, {high}], outside the vocabulary {vocab}; encode text "
                             "with the model's own tokenizer, or build the model with a larger vocab_size")
    return ids.long()


def check_targets(name: str, targets: object, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """Targets for a cross-entropy: an integer tensor of exactly `shape` (one class id per prediction)."""
    if (not isinstance(targets, torch.Tensor) or targets.is_floating_point() or targets.dtype == torch.bool
            or tuple(targets.shape) != tuple(shape)):
        raise ValueError(f"{name} must be an integer tensor of shape {tuple(shape)}, one target id per prediction, "
                         f"got {describe(targets)}")
    return targets
