"""Self-checks for the notebooks' exercises: they say right or wrong, with a hint, and never crash the notebook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _matches(answer: Any, expected: Any, atol: float) -> bool:
    if isinstance(expected, torch.Tensor) or isinstance(answer, torch.Tensor):
        a, e = torch.as_tensor(answer).double().cpu(), torch.as_tensor(expected).double().cpu()
        return a.shape == e.shape and torch.allclose(a, e, atol=atol, rtol=0)
    if isinstance(expected, (float, int, np.ndarray, np.floating)) and not isinstance(expected, bool):
        a, e = np.asarray(answer, dtype=float), np.asarray(expected, dtype=float)
        return a.shape == e.shape and bool(np.allclose(a, e, atol=atol, rtol=0))
    return answer == expected


def check(answer: Any | Callable[[], Any], expected: Any, hint: str, atol: float = 1e-6) -> bool:
    """Print whether `answer` equals `expected` (numbers and tensors to `atol`) and return it.

    `answer` may be a function of no arguments: it is called here, so a stub that raises
    NotImplementedError reads as "not answered yet" instead of an error.
    """
    if callable(answer):
        try:
            answer = answer()
        except NotImplementedError:
            print(f"… not answered yet. Hint: {hint}")
            return False
        except Exception as exc:  # the learner's code failed: say how, keep the notebook going
            print(f"✗ your code raised {type(exc).__name__}: {exc}. Hint: {hint}")
            return False
    if answer is None or answer is Ellipsis:
        print(f"… not answered yet. Hint: {hint}")
        return False
    try:
        right = _matches(answer, expected, atol)
    except (TypeError, ValueError):
        right = False
    print("✓ right!" if right else f"✗ not quite: got {answer!r}. Hint: {hint}")
    return right
