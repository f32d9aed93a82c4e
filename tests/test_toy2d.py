"""Two-dimensional toy data and the on-support share used to judge 2-D diffusion samples."""

import pytest
import torch

from lmcourse.toy2d import make_toy2d, near_data_share


def test_a_second_data_sample_lies_on_the_moons_and_a_gaussian_does_not():
    reference = make_toy2d("moons", 5000, seed=1)
    data = make_toy2d("moons", 1000, seed=2)
    gaussian = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    assert near_data_share(data, reference) > 0.97
    assert near_data_share(gaussian, reference) < 0.6


def test_near_data_share_counts_points_within_the_radius():
    reference = torch.tensor([[0.0, 0.0]])
    points = torch.tensor([[0.05, 0.0], [0.0, 0.2], [3.0, 3.0], [-0.09, 0.0]])
    assert near_data_share(points, reference, radius=0.1) == pytest.approx(0.5)


def test_near_data_share_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="points and reference"):
        near_data_share(torch.zeros(3, 2), torch.zeros(3, 3))


def test_near_data_share_refuses_nan_points_instead_of_counting_them_far():
    points = torch.tensor([[0.0, 0.0], [float("nan"), 0.0]])
    with pytest.raises(ValueError, match=r"points holds nan or inf values \(1 of 2\)"):
        near_data_share(points, torch.zeros(3, 2))
