"""Two-dimensional toy data sets for diffusion: two moons, a spiral, a ring of Gaussians.

Each is scaled to roughly unit variance per coordinate, the scale DDPM's schedules assume.
"""

from __future__ import annotations

import math

import numpy as np
import torch

TOY_DATASETS = ("moons", "spiral", "gaussians")


def make_toy2d(name: str = "moons", n: int = 1000, seed: int = 0) -> torch.Tensor:
    """n points of the named 2-D data set as a float32 tensor (n, 2); the same seed gives the same points."""
    if name not in TOY_DATASETS:
        raise ValueError(f"name={name!r} is not a toy data set; use one of {TOY_DATASETS}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    rng = np.random.default_rng(seed)
    if name == "moons":
        upper = rng.random(n) < 0.5
        angle = rng.random(n) * math.pi
        x = np.where(upper, np.cos(angle), 1 - np.cos(angle))
        y = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
        points = np.stack([x, y], 1) + 0.06 * rng.standard_normal((n, 2))
        points = (points - [0.5, 0.25]) / [0.87, 0.5]
    elif name == "spiral":
        r = np.sqrt(rng.random(n)) * 3 * math.pi + 0.5
        points = np.stack([r * np.cos(r), r * np.sin(r)], 1) / 5.0 + 0.04 * rng.standard_normal((n, 2))
        points = (points - [-0.27, 0.31]) / [1.07, 0.86]
    else:
        centre = rng.integers(0, 8, n) * (2 * math.pi / 8)
        points = 1.4 * np.stack([np.cos(centre), np.sin(centre)], 1) + 0.1 * rng.standard_normal((n, 2))
    return torch.tensor(points, dtype=torch.float32)
