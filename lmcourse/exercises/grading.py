"""The grading machinery behind `check`: a registry of exercises, and the helpers checkers use to call
the learner's code and compare its answer with the reference, saying how it differs but never what the
reference value is."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


class NotAnswered(Exception):
    """The learner's function is still the stub (raises NotImplementedError), or returns nothing (the message
    says so: a function whose body computes but forgets `return`)."""


class Wrong(Exception):
    """The answer differs from the reference on one case; the message says which case and how."""

    def __init__(self, case: str, how: str):
        super().__init__(f"case '{case}': {how}")
        self.case, self.how = case, how


@dataclass(frozen=True)
class Exercise:
    """One exercise: a stable id "NN.name", a title, its checker and hints in escalating order.

    `checker(answer, **context)` calls `answer` on its cases and raises Wrong or NotAnswered; it may return a
    note to print under the verdict (the project's score against its baselines).
    """

    id: str
    title: str
    checker: Callable[..., None]
    hints: tuple[str, ...]

    @property
    def chapter(self) -> str:
        return self.id.split(".", 1)[0]


REGISTRY: dict[str, Exercise] = {}


def exercise(exercise_id: str, title: str, hints: list[str]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator registering a checker under `exercise_id` ("NN.name")."""
    chapter, _, name = exercise_id.partition(".")
    if not (len(chapter) == 2 and chapter.isdigit() and name.isidentifier()):
        raise ValueError(f"exercise_id must look like '04.masked_softmax', got {exercise_id!r}")
    if len(hints) < 2:
        raise ValueError(f"{exercise_id}: give at least two hints (a nudge, then more), got {len(hints)}")

    def register(checker: Callable[..., None]) -> Callable[..., None]:
        if exercise_id in REGISTRY:
            raise ValueError(f"exercise {exercise_id!r} is registered twice")
        REGISTRY[exercise_id] = Exercise(exercise_id, title, checker, tuple(hints))
        return checker

    return register


def generator(exercise_id: str, case: int = 0) -> torch.Generator:
    """A torch generator seeded from the exercise id: the same cases on every run (stable notebook outputs)."""
    return torch.Generator().manual_seed(zlib.crc32(exercise_id.encode()) + 7919 * case)


def rng(exercise_id: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(exercise_id.encode()))


# ------------------------------------------------------------------------------------------------
# Calling the learner's code

def call(case: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
    """fn(*args, **kwargs) on one case: NotImplementedError or None -> NotAnswered; an error -> Wrong."""
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError:
        raise NotAnswered from None
    except (NotAnswered, Wrong):
        raise
    except Exception as exc:  # the learner's code failed: say how, on which case
        raise Wrong(case, f"your code raised {type(exc).__name__}: {exc}") from None
    if out is None:
        raise NotAnswered(f"on case '{case}' your function returned None: does it end with `return`?")
    if out is Ellipsis:
        raise NotAnswered
    return out


# ------------------------------------------------------------------------------------------------
# Comparing an answer with the reference

def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def expect_pair(case: str, got: Any, names: str) -> tuple:
    """`got` if it is a 2-tuple, else Wrong saying what to return: names like "(out, weights)"."""
    if not isinstance(got, tuple) or len(got) != 2:
        raise Wrong(case, f"return a tuple {names}, got {type(got).__name__}")
    return got


def same_tensor(case: str, got: Any, want: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4,
                dtype: bool = True, what: str = "the output") -> None:
    """Raise Wrong unless `got` is a tensor like `want`: type, shape, dtype (if `dtype`), NaN and inf
    in the same places, and values within atol + rtol * |want|."""
    if not isinstance(got, torch.Tensor):
        raise Wrong(case, f"{what} is a {type(got).__name__}; return a torch.Tensor")
    if tuple(got.shape) != tuple(want.shape):
        raise Wrong(case, f"{what} has shape {tuple(got.shape)}, but it should have shape {tuple(want.shape)}")
    if dtype and got.dtype != want.dtype:
        raise Wrong(case, f"{what} has dtype {got.dtype}, but it should keep dtype {want.dtype}")
    if want.dtype == torch.bool or not (want.dtype.is_floating_point or got.dtype.is_floating_point):
        differ = (got.cpu() != want.cpu()).numpy()
        if differ.any():
            raise Wrong(case, f"{what} is wrong at {_where(differ)}")
        return
    same_array(case, _as_array(got), _as_array(want), atol, rtol, what)


def _where(bad: np.ndarray) -> str:
    """'N of M entries, e.g. at index (i, j)' for a boolean array of the entries that are wrong."""
    first = tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape))
    return f"{int(bad.sum())} of {bad.size} entries, e.g. at index {first}"


def same_array(case: str, got: np.ndarray, want: np.ndarray, atol: float, rtol: float,
               what: str = "the output") -> None:
    """The value part of `same_tensor` for float arrays: NaN, infinities, then values within atol + rtol |want|."""
    if got.shape != want.shape:
        raise Wrong(case, f"{what} has shape {got.shape}, but it should have shape {want.shape}")
    nan = np.isnan(got) & ~np.isnan(want)
    if nan.any():
        raise Wrong(case, f"{what} is NaN at {_where(nan)}")
    inf_got, inf_want = np.isinf(got), np.isinf(want)
    if (inf_got & ~inf_want).any():
        raise Wrong(case, f"{what} is infinite where a finite value belongs, at {_where(inf_got & ~inf_want)}")
    wrong_inf = inf_want & ((got != want) | ~inf_got)
    if wrong_inf.any():
        raise Wrong(case, f"{what} should be {'-inf' if want[wrong_inf].flat[0] < 0 else 'inf'} at {_where(wrong_inf)}")
    finite = ~inf_want & ~np.isnan(want)
    error, tolerance = np.abs(got - np.where(finite, want, 0)), atol + rtol * np.abs(np.where(finite, want, 0))
    off = finite & ~(error <= tolerance)
    if off.any():
        close = bool(np.all(error[finite] <= 10 * tolerance[finite] + 1e-2 * np.abs(want[finite])))
        near = " (close: check precision, or a small term you left out)" if close else ""
        raise Wrong(case, f"{what} has wrong values at {_where(off)}{near}")


def real_number(case: str, got: Any, what: str = "the result") -> float:
    """`got` as a float, or Wrong unless it is a real number (a Python/numpy number or a one-element tensor), not NaN."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.detach().item()
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.integer, np.floating)):
        raise Wrong(case, f"{what} is a {type(got).__name__}; return a number (float)")
    if math.isnan(got):
        raise Wrong(case, f"{what} is NaN")
    return float(got)


def same_number(case: str, got: Any, want: float, rtol: float = 1e-6, atol: float = 1e-9, what: str = "the result") -> None:
    """Raise Wrong unless `got` is a real number within atol + rtol * |want| of `want` (not saying `want`)."""
    got = real_number(case, got, what)
    if math.isinf(got) != math.isinf(want) or (math.isinf(got) and got != want):
        raise Wrong(case, f"{what} is {'infinite' if math.isinf(got) else 'finite'}, which it should not be")
    if math.isinf(want):
        return
    error = abs(got - want)
    if error > atol + rtol * abs(want):
        near = " (close: within 1 %)" if error <= 1e-2 * abs(want) else ""
        raise Wrong(case, f"{what} is wrong{near}")


def same_value(case: str, got: Any, want: Any, what: str = "the result") -> None:
    """Exact equality for ints, strings, tuples of them."""
    if got != want:
        shown = repr(got) if len(repr(got)) < 60 else type(got).__name__
        raise Wrong(case, f"{what} {shown} is not right")
