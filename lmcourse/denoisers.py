"""Noise-prediction networks for Gaussian diffusion: an MLP for 2-D points, a small U-Net for 8x8 images.

Both take (x_t, t[, y]) and return the predicted noise, shaped like x_t. The step t enters through
the sinusoidal `timestep_embedding`; a class label y (conditional models) enters the same way,
through a learned embedding with one extra row, `null_class`, for classifier-free guidance.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.checks import check_int, check_positive_ints, check_token_ids, describe
from lmcourse.diffusion import timestep_embedding


def _check_input(x: torch.Tensor, shape_ok: bool, expected: str, weight: torch.Tensor) -> None:
    """x's shape (`expected`, e.g. "(B, 2)") and dtype: float64 data into float32 weights fails deep in a layer."""
    if not isinstance(x, torch.Tensor) or not shape_ok:
        raise ValueError(f"x must have shape {expected}, got {describe(x)}; the data (or the sampler's shape) "
                         "must match the denoiser's input size")
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):  # autocast casts on purpose
        raise ValueError(f"x has dtype {x.dtype} but the denoiser's weights are {weight.dtype}; convert the data "
                         f"with x.to({weight.dtype}) (or the model with .to({x.dtype}))")


def _check_steps(t: torch.Tensor, x: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor) or t.is_floating_point() or t.dtype == torch.bool or t.shape != x.shape[:1]:
        raise ValueError(f"t must hold one integer step per example, shape ({x.shape[0]},), got {describe(t)}")


class MLPDenoiser(nn.Module):
    """eps_theta(x_t, t) for points x_t (B, dim): residual SiLU blocks, each told the step t."""

    def __init__(self, dim: int = 2, hidden: int = 128, n_blocks: int = 3, time_dim: int = 32):
        super().__init__()
        check_positive_ints(dim=dim, hidden=hidden, n_blocks=n_blocks)
        if check_int("time_dim", time_dim, minimum=2) % 2:
            raise ValueError(f"time_dim must be an even int >= 2 (sine and cosine pairs), got {time_dim}")
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                                  nn.Linear(hidden, hidden)) for _ in range(n_blocks))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        dim = self.inp.in_features
        _check_input(x, isinstance(x, torch.Tensor) and x.dim() == 2 and x.shape[1] == dim, f"(B, {dim})",
                     self.inp.weight)
        _check_steps(t, x)
        temb = self.time_mlp(timestep_embedding(t, self.time_dim))  # (B, hidden)
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h + temb)                                   # the step is added before every block
        return self.out(h)                                            # (B, dim)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with GroupNorm, plus the (time + class) embedding added in between."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        check_positive_ints(c_in=c_in, c_out=c_out, emb_dim=emb_dim)
        self.norm1, self.conv1 = nn.GroupNorm(8, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(8, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class UNet8(nn.Module):
    """A two-level U-Net for 1x8x8 images: 8x8 -> 4x4 -> 8x8 with skip connections.

    num_classes: if given, forward takes labels y (B,) in [0, num_classes], where
    `null_class` = num_classes means "no label" (dropped at random in training for guidance).
    """

    def __init__(self, channels: int = 64, num_classes: int | None = None, emb_dim: int = 128):
        super().__init__()
        if check_int("channels", channels) % 8:
            raise ValueError(f"channels must be a multiple of 8 (GroupNorm uses 8 groups), got {channels}")
        if num_classes is not None:
            check_int("num_classes", num_classes, fix="or None for an unconditional model")
        if check_int("emb_dim", emb_dim, minimum=2) % 2:
            raise ValueError(f"emb_dim must be an even int >= 2, got {emb_dim}")
        self.emb_dim, self.num_classes = emb_dim, num_classes
        self.null_class = num_classes
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim) if num_classes is not None else None
        c = channels
        self.inp = nn.Conv2d(1, c, 3, padding=1)
        self.down1 = ResBlock(c, c, emb_dim)
        self.pool = nn.Conv2d(c, c, 3, stride=2, padding=1)                 # 8x8 -> 4x4
        self.mid1, self.mid2 = ResBlock(c, 2 * c, emb_dim), ResBlock(2 * c, 2 * c, emb_dim)
        self.up = nn.ConvTranspose2d(2 * c, c, 2, stride=2)                 # 4x4 -> 8x8
        self.up1 = ResBlock(2 * c, c, emb_dim)                              # after concatenating the skip
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        _check_input(x, isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[1:] == (1, 8, 8), "(B, 1, 8, 8)",
                     self.inp.weight)
        _check_steps(t, x)
        emb = self.time_mlp(timestep_embedding(t, self.emb_dim))          # (B, emb_dim)
        if self.class_emb is not None:
            if y is None:
                raise ValueError("this UNet8 is class-conditional; pass labels y (B,), null_class for none")
            try:
                emb = emb + self.class_emb(y)
            except (IndexError, RuntimeError):  # labels outside [0, null_class] or not integers: say which
                check_token_ids("y", y, self.num_classes + 1)
                raise
        h0 = self.down1(self.inp(x), emb)                                  # (B, c, 8, 8)
        h = self.mid2(self.mid1(self.pool(h0), emb), emb)                  # (B, 2c, 4, 4)
        h = self.up1(torch.cat([self.up(h), h0], dim=1), emb)              # (B, c, 8, 8)
        return self.out(h)                                                 # (B, 1, 8, 8)


class NaiveDenoiser(nn.Module):
    """THE PITFALL, kept to be shown: an MLP trained to reproduce its noisy input; it takes t and ignores it."""

    def __init__(self, dim: int = 2, hidden: int = 128):
        super().__init__()
        check_positive_ints(dim=dim, hidden=hidden)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        dim = self.net[0].in_features
        _check_input(x, isinstance(x, torch.Tensor) and x.dim() == 2 and x.shape[1] == dim, f"(B, {dim})",
                     self.net[0].weight)
        return self.net(x)   # t is never used
