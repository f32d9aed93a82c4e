"""Two-dimensional toy data sets for diffusion: two moons, a spiral, a ring of Gaussians.

Each is scaled to roughly unit variance per coordinate, the scale DDPM's schedules assume.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lmcourse.checks import check_int, check_number, describe

TOY_DATASETS = ("moons", "spiral", "gaussians")


def make_toy2d(name: str = "moons", n: int = 1000, seed: int = 0) -> torch.Tensor:
    """n points of the named 2-D data set as a float32 tensor (n, 2); the same seed gives the same points."""
    if name not in TOY_DATASETS:
        raise ValueError(f"name={name!r} is not a toy data set; use one of {TOY_DATASETS}")
    check_int("n", n)
    check_int("seed", seed, minimum=0)
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


def near_data_share(points: torch.Tensor, reference: torch.Tensor, radius: float = 0.1) -> float:
    """The share of `points` (N, 2) within `radius` of their nearest `reference` point (M, 2).

    With a dense reference sample of the data, it says how many samples lie on the data's support
    (for the moons: on a moon, not in the gap between them). A second data sample gives its ceiling.
    """
    tensors = isinstance(points, torch.Tensor) and isinstance(reference, torch.Tensor)
    if not tensors or points.dim() != 2 or reference.dim() != 2 or points.shape[1] != reference.shape[1]:
        raise ValueError(f"points and reference must be tensors (N, d) and (M, d), got {describe(points)} "
                         f"and {describe(reference)}")
    if not len(points) or not len(reference):
        raise ValueError(f"points and reference need at least one point each, got shapes {tuple(points.shape)} "
                         f"and {tuple(reference.shape)}")
    check_number("radius", radius, 0, low_open=True, fix="a distance in the data's units, e.g. 0.1")
    if not torch.isfinite(points).all():  # nan is never "near": a diverged sampler would score a plain 0 %
        raise ValueError(f"points holds nan or inf values ({int((~torch.isfinite(points)).any(1).sum())} of "
                         f"{len(points)}); the sampler diverged: check its steps and schedule")
    nearest = torch.cdist(points.double(), reference.double()).min(dim=1).values   # (N,)
    return float((nearest < radius).double().mean())
