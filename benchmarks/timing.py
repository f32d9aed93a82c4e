"""Timing for the benchmarks: the best of several runs after a warm-up, waiting for the GPU where there is one."""

from __future__ import annotations

import time
from typing import Callable

import torch


def best_seconds(fn: Callable[[], object], repeats: int, device: torch.device | str = "cpu") -> float:
    """The fastest of `repeats` calls of fn() in seconds (one warm-up call first; CUDA work is synchronised)."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    fn()
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best
