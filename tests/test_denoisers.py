"""The noise-prediction networks and the toy data: shapes, use of t and labels, bad input."""

import pytest
import torch

from lmcourse.denoisers import MLPDenoiser, NaiveDenoiser, UNet8
from lmcourse.toy2d import make_toy2d


def test_mlp_denoiser_depends_on_t_and_keeps_shape():
    model = MLPDenoiser()
    x = torch.randn(5, 2)
    a, b = model(x, torch.full((5,), 3)), model(x, torch.full((5,), 900))
    assert a.shape == (5, 2) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        model(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))


def test_naive_denoiser_ignores_t():
    model = NaiveDenoiser()
    x = torch.randn(5, 2)
    assert torch.equal(model(x, torch.full((5,), 3)), model(x, torch.full((5,), 900)))


def test_unet8_shapes_labels_and_errors():
    model = UNet8(channels=16, num_classes=10)
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([0, 10, 999])
    out = model(x, t, torch.tensor([0, 5, 10]))           # 10 is the null class
    assert out.shape == x.shape
    assert not torch.allclose(out, model(x, t, torch.tensor([1, 5, 10])))
    with pytest.raises(ValueError, match="class-conditional"):
        model(x, t)
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        model(torch.randn(3, 64), t, torch.zeros(3, dtype=torch.long))
    assert UNet8(channels=16)(x, t).shape == x.shape


@pytest.mark.parametrize("name", ["moons", "spiral", "gaussians"])
def test_toy_data_is_reproducible_and_roughly_unit_scale(name):
    a, b = make_toy2d(name, 2000, seed=3), make_toy2d(name, 2000, seed=3)
    assert a.shape == (2000, 2) and torch.equal(a, b)
    assert ((a.std(0) > 0.6) & (a.std(0) < 1.4)).all() and a.mean(0).abs().max() < 0.3


def test_toy_data_rejects_unknown_names():
    with pytest.raises(ValueError, match="toy data set"):
        make_toy2d("swissroll")


@pytest.mark.parametrize("model, x", [(MLPDenoiser(), torch.zeros(4, 2, dtype=torch.float64)),
                                      (UNet8(channels=8), torch.zeros(2, 1, 8, 8, dtype=torch.float64)),
                                      (NaiveDenoiser(), torch.zeros(4, 2, dtype=torch.float64))])
def test_denoisers_name_a_dtype_that_differs_from_their_weights(model, x):
    with pytest.raises(ValueError, match="x has dtype torch.float64 but the denoiser's weights are torch.float32"):
        model(x, torch.zeros(len(x), dtype=torch.long))


def test_denoisers_accept_other_dtypes_under_autocast():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = MLPDenoiser()(torch.zeros(4, 2, dtype=torch.bfloat16), torch.zeros(4, dtype=torch.long))
    assert out.shape == (4, 2)


def test_naive_denoiser_names_a_width_mismatch():
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\), got a tensor of shape \(4, 3\)"):
        NaiveDenoiser()(torch.zeros(4, 3))
