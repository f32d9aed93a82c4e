"""Gaussian diffusion (DDPM): noise schedules, the epsilon-prediction loss, DDPM and DDIM samplers.

Read top to bottom: the schedule (what noise is added at step t), `q_sample` (jump straight to
step t), the training loss, then the two samplers that run the process backwards, and two
sample-quality figures (energy distance, MMD) to judge samples against held-out data.

A denoiser here is any callable `eps_model(x_t, t)` returning the predicted noise, shaped like
x_t; t is a LongTensor (B,) of steps in [0, T). Class conditioning and classifier-free guidance
are wrappers around that callable (`guided`), so the samplers never see labels.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from lmcourse.checks import check_int, check_number, describe

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
KINDS = ("linear", "cosine")
SPACINGS = ("trailing", "leading", "linspace")   # diffusers' `timestep_spacing` values


class NoiseSchedule:
    """The variance schedule beta_1..beta_T of a diffusion and the quantities derived from it.

    kind="linear": betas evenly spaced from beta_start to beta_end (Ho et al. 2020, DDPM).
    kind="cosine": alphas_cumprod = cos^2((t/T + s) / (1 + s) * pi/2), normalised, with s = 0.008,
        betas clipped at 0.999 (Nichol & Dhariwal 2021, improved DDPM).
    Index i = 0..T-1 stands for step t = i + 1; all tensors are float64 on the CPU, shape (T,).
    """

    def __init__(self, T: int = 1000, kind: str = "linear", beta_start: float = 1e-4, beta_end: float = 0.02,
                 s: float = 0.008):
        check_int("T", T)
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not a schedule; use one of {KINDS}")
        check_number("beta_start", beta_start, 0, 1, low_open=True, high_open=True)
        check_number("beta_end", beta_end, 0, 1, low_open=True, high_open=True)
        check_number("s", s, 0, fix="0.008 is Nichol & Dhariwal's offset")
        if not beta_start <= beta_end:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got beta_start={beta_start}, beta_end={beta_end}")
        self.T, self.kind = T, kind
        if kind == "linear":
            betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        else:
            steps = torch.arange(T + 1, dtype=torch.float64) / T
            f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            abar = f / f[0]
            betas = (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
        self.betas = betas                                          # (T,)
        self.alphas = 1.0 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)     # abar_t
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        # variance of q(x_{t-1} | x_t, x_0): the "beta tilde" of DDPM
        self.posterior_variance = betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
        # its mean is coef1 * x0 + coef2 * x_t (DDPM eq. 7), computed here in float64
        self.posterior_mean_coef1 = self.alphas_cumprod_prev.sqrt() * betas / (1 - self.alphas_cumprod)
        self.posterior_mean_coef2 = self.alphas.sqrt() * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)

    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio abar_t / (1 - abar_t) for each step, shape (T,)."""
        return self.alphas_cumprod / (1 - self.alphas_cumprod)

    def check_t(self, t: torch.Tensor, batch: int | None = None) -> torch.Tensor:
        """t as a LongTensor (B,) after checking its range [0, T) and (if given) its length."""
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"t must be a LongTensor (B,) of steps, got {describe(t)}; wrap it: torch.tensor(t)")
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise ValueError(f"t must hold integer steps, got dtype {t.dtype}; use torch.long")
        if t.dim() != 1:
            raise ValueError(f"t must have shape (B,), got {tuple(t.shape)}")
        if batch is not None and len(t) != batch:
            raise ValueError(f"t has {len(t)} steps but x0 has batch size {batch}; give one step per example")
        if len(t) and (int(t.min()) < 0 or int(t.max()) >= self.T):
            raise ValueError(f"t must lie in [0, {self.T}) (index i stands for step i + 1), "
                             f"got values in [{int(t.min())}, {int(t.max())}]")
        return t.long()

    def gather(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """values[t] reshaped to (B, 1, ..., 1) so it broadcasts against `like` (B, ...)."""
        out = values.to(like.device)[t.to(like.device)].to(like.dtype)
        return out.reshape(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise: a draw of q(x_t | x0), shape of x0 (B, ...)."""
        _check_data("x0", x0)
        t = self.check_t(t, batch=x0.shape[0])
        if noise is None:
            noise = torch.randn_like(x0)
        elif noise.shape != x0.shape:
            raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
        abar = self.gather(self.alphas_cumprod, t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Invert q_sample: x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), shape of x_t (B, ...)."""
        t = self.check_t(t, batch=x_t.shape[0])
        if eps.shape != x_t.shape:
            raise ValueError(f"eps must have the shape of x_t {tuple(x_t.shape)}, got {tuple(eps.shape)}")
        abar = self.gather(self.alphas_cumprod, t, x_t)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()

    def __repr__(self) -> str:
        return f"NoiseSchedule(T={self.T}, kind={self.kind!r})"


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer steps t (B,) -> (B, dim), as in the Transformer and DDPM."""
    if check_int("dim", dim, minimum=2) % 2:
        raise ValueError(f"dim must be an even int >= 2, got {dim}")
    check_number("max_period", max_period, 0, low_open=True, fix="10000 is the Transformer's")
    if not isinstance(t, torch.Tensor) or t.dim() != 1:
        raise ValueError(f"t must be a tensor of steps, shape (B,), got {describe(t)}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None, :]                    # (B, half)
    return torch.cat([angles.cos(), angles.sin()], dim=-1)          # (B, dim)


def diffusion_loss(eps_model: EpsModel, schedule: NoiseSchedule, x0: torch.Tensor) -> torch.Tensor:
    """The simple DDPM objective: mean squared error between true and predicted noise at a random t."""
    _check_schedule(schedule)
    _check_data("x0", x0)
    if not torch.isfinite(x0).all():  # a pass over x0, small beside the network's; nan would train on nan
        raise ValueError(f"x0 holds nan or inf values ({int((~torch.isfinite(x0)).sum())} of {x0.numel()}); "
                         "clean the data (a failed normalisation divides by a zero std)")
    t = torch.randint(0, schedule.T, (x0.shape[0],), device=x0.device)
    noise = torch.randn_like(x0)
    return F.mse_loss(predict_noise(eps_model, schedule.q_sample(x0, t, noise), t), noise)


def predict_noise(eps_model: EpsModel, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """eps_model(x_t, t), after checking that it is shaped like x_t (a mismatch would broadcast silently)."""
    eps = eps_model(x_t, t)
    if not isinstance(eps, torch.Tensor) or eps.shape != x_t.shape:
        raise ValueError(f"eps_model must return the predicted noise shaped like its input x_t {tuple(x_t.shape)}, "
                         f"got {describe(eps)}; make its output layer give one value per input value")
    return eps


def _check_data(name: str, x: object) -> None:
    """A batch of data (B, ...): a float tensor with at least one example (shape checks only: no pass over it)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor (B, ...), got {describe(x)}; convert with {name}.float()")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be batched, shape (B, ...) with B >= 1, got {tuple(x.shape)}; "
                         f"add the batch dimension with {name}[None], or pass at least one example")


def _check_schedule(schedule: NoiseSchedule) -> None:
    if not isinstance(schedule, NoiseSchedule):
        raise ValueError(f"schedule must be a NoiseSchedule, got {describe(schedule)}; e.g. NoiseSchedule(T=1000)")


def _check_clip(clip: float | None) -> None:
    if clip is not None:
        check_number("clip", clip, 0, low_open=True, fix="the range [-clip, clip] of the data (1.0 for images), or None")


def guided(eps_model: Callable[..., torch.Tensor], y: torch.Tensor, guidance: float = 0.0,
           null_class: int | None = None) -> EpsModel:
    """Classifier-free guidance with weight w (Ho & Salimans 2022; chapter 07 derives it), as a plain eps_model.

    eps_model(x, t, y) must have been trained with labels sometimes replaced by `null_class`.
    guidance = 0 is plain conditional sampling.
    """
    check_number("guidance", guidance, 0, fix="0 is plain conditional sampling")
    if guidance > 0 and null_class is None:
        raise ValueError("guidance > 0 needs null_class, the label the model was trained with for 'no class'")
    if null_class is not None:
        check_int("null_class", null_class, minimum=0, fix="the label the model was trained with for 'no class'")
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.dtype == torch.bool or y.dim() != 1:
        raise ValueError(f"y must be integer class labels, shape (B,), got {describe(y)}; convert with y.long()")

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        cond = eps_model(x, t, y)
        if guidance == 0:
            return cond
        uncond = eps_model(x, t, torch.full_like(y, null_class))
        return (1 + guidance) * cond - guidance * uncond
    return eps


def _check_shape(shape: object) -> tuple[int, ...]:
    """The samplers' output shape (B, ...): a tuple of positive ints (a string or 2.5 is not silently cast)."""
    sizes = isinstance(shape, (tuple, list, torch.Size)) and all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape)
    if not sizes or len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"shape must be a tuple (B, ...) of positive ints, got {shape!r}; "
                         "e.g. (1000, 2) for 1000 points in 2-D")
    return tuple(int(s) for s in shape)


@torch.no_grad()
def ddpm_sample(eps_model: EpsModel, schedule: NoiseSchedule, shape: tuple[int, ...], device: torch.device | str = "cpu",
                generator: torch.Generator | None = None, return_trajectory: bool = False,
                clip: float | None = None):
    """Ancestral sampling: x_T ~ N(0, I), then T steps of x_{t-1} ~ p(x_{t-1} | x_t).

    Uses the posterior mean from the predicted noise and variance beta_tilde_t (no noise at the last step).
    clip: clamp the predicted x0 to [-clip, clip] (images), or None.
    Returns x_0 (shape), or (x_0, trajectory list of T + 1 tensors on the CPU) if return_trajectory.
    """
    shape = _check_shape(shape)
    _check_schedule(schedule)
    _check_clip(clip)
    x = torch.randn(shape, device=device, generator=generator)
    trajectory = [x.cpu()] if return_trajectory else None
    for i in reversed(range(schedule.T)):
        t = torch.full((shape[0],), i, device=device, dtype=torch.long)
        x = ddpm_step(eps_model, schedule, x, t, generator=generator, clip=clip)
        if return_trajectory:
            trajectory.append(x.cpu())
    _check_samples(x, steps=f"{schedule.T} DDPM steps")
    return (x, trajectory) if return_trajectory else x


def _check_samples(x: torch.Tensor, steps: str) -> None:
    """Refuse a sampler's nan or inf output (one check at the end, not a sync per step)."""
    if not torch.isfinite(x).all():
        raise ValueError(f"the samples hold nan or inf values ({int((~torch.isfinite(x)).flatten(1).any(1).sum())} "
                         f"of {len(x)}) after {steps}: eps_model returned nan or inf, or the steps diverged")


@torch.no_grad()
def ddpm_step(eps_model: EpsModel, schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor,
              generator: torch.Generator | None = None, clip: float | None = None) -> torch.Tensor:
    """One reverse step x_t -> x_{t-1} (all examples at the same or different steps t (B,))."""
    _check_schedule(schedule)
    _check_clip(clip)
    t = schedule.check_t(t, batch=x_t.shape[0])
    eps = predict_noise(eps_model, x_t, t)
    x0 = schedule.predict_x0(x_t, t, eps)
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
    # mean of q(x_{t-1} | x_t, x0) with x0 predicted (DDPM eq. 7)
    mean = schedule.gather(schedule.posterior_mean_coef1, t, x_t) * x0 + schedule.gather(schedule.posterior_mean_coef2, t, x_t) * x_t
    var = schedule.gather(schedule.posterior_variance, t, x_t)
    noise = torch.randn(x_t.shape, device=x_t.device, generator=generator)
    nonzero = (t > 0).to(x_t.dtype).reshape(-1, *([1] * (x_t.dim() - 1)))
    return mean + nonzero * var.sqrt() * noise


def ddim_timesteps(T: int, steps: int, spacing: str = "trailing") -> torch.Tensor:
    """The step indices DDIM visits, ascending, LongTensor (steps,): diffusers' `DDIMScheduler.set_timesteps`.

    spacing, diffusers' `timestep_spacing` (Lin et al. 2024, Table 2):
    "trailing": T / steps apart, the last one T - 1, so every run starts from the noisiest step;
    "leading" (diffusers' default, steps_offset=0): multiples of T // steps from 0 (steps=1 visits 0 only);
    "linspace": np.linspace(0, T - 1, steps), rounded.
    Computed with numpy as diffusers does: "trailing" rounds np.arange(T, 0, -T / steps), whose accumulated
    round-off decides which way values near .5 go. For some step counts (62 of 1..1000 at T = 1000) that arange
    has one value too many, a 0 that becomes index -1 (diffusers keeps it); we keep the first `steps`.
    """
    check_int("T", T)
    check_int("steps", steps, 1, T)
    if spacing == "trailing":
        visits = np.round(np.arange(T, 0, -T / steps))[:steps] - 1
    elif spacing == "leading":
        visits = np.arange(steps) * (T // steps)
    elif spacing == "linspace":
        visits = np.linspace(0, T - 1, steps).round()
    else:
        raise ValueError(f"spacing={spacing!r} is not a DDIM timestep spacing; use one of {SPACINGS}")
    return torch.from_numpy(np.sort(visits).astype(np.int64))


@torch.no_grad()
def ddim_sample(eps_model: EpsModel, schedule: NoiseSchedule, shape: tuple[int, ...], steps: int = 50,
                eta: float = 0.0, device: torch.device | str = "cpu", generator: torch.Generator | None = None,
                return_trajectory: bool = False, clip: float | None = None, spacing: str = "trailing",
                min_alpha_cumprod: float = 3e-4):
    """DDIM (Song et al. 2021): `steps` steps of the same trained model; eta = 0 is deterministic.

    Each step predicts x0_hat, then moves to the earlier step along the predicted noise (plus fresh noise when eta > 0).
    Returns x_0 (shape), or (x_0, trajectory of steps + 1 tensors on the CPU) if return_trajectory.

    Each step is diffusers' `DDIMScheduler.step` (with its `set_alpha_to_one=True`: the last step goes to
    abar = 1), run over the first T' steps of the schedule, those with alphas_cumprod >= min_alpha_cumprod:
    - min_alpha_cumprod: x0_hat = (x_t - sqrt(1 - abar) eps_hat) / sqrt(abar) multiplies the network's error
      in eps by 1 / sqrt(abar), and DDIM carries x0_hat into a much less noisy step (the re-added noise term
      sqrt(1 - abar') eps_hat cancels only a part of it: the error's factor is sqrt(1 - abar') -
      sqrt(abar' (1 - abar) / abar), about -sqrt(abar' / abar) when abar is tiny). The cosine schedule
      ends at abar = 2.4e-9 (a factor 20 000): from there DDIM's samples had std 27 at 50 steps. At 3e-4 the
      factor is 58, and starting from x ~ N(0, I) drops only the signal left at T', sqrt(3e-4) = 1.7 % of
      the data's scale. Measured on the moons with the cosine schedule, DDIM's share of samples on the data
      at 10 steps is 0.53 at 1e-5, 0.92 at 3e-4, 0.94 at 1e-3 (DDPM: 0.97), while the exact denoiser of
      N(1.5, 0.5^2) data lands 1.4 % (3e-4) and 1.8 % (1e-3) short of its mean. 0 runs over all T steps, as
      diffusers does. Zero-terminal-SNR rescaling, the other fix, leaves x0_hat undefined at abar = 0 for a
      noise-predicting model; clipping x0_hat needs bounded data.
    - spacing: the visited steps are `ddim_timesteps(T', steps, spacing)`. Default "trailing": the first
      step is from the noisiest index, so even steps=1 denoises (diffusers' default "leading" starts lower;
      with steps=1 a pure-noise input comes back as noise).
    - Each step lands on the next visited step, as in the DDIM paper and diffusers' `DDPMScheduler`.
      `DDIMScheduler.step` lands on t - T' // steps instead: the same for "leading" and whenever steps
      divides T', otherwise up to an index ("trailing") or many ("linspace") away from the step the model
      is told next, a known diffusers bug (issues 9261, 11347) that cost the exact denoiser 17 % of the
      data's mean (cosine, T = 200, 50 steps).
    - clip=None by default: the data need not lie in [-1, 1] (diffusers clips x0_hat to [-1, 1] by default,
      `clip_sample=True`); clip=1.0 for images. With clip, eps_hat is re-derived from the clipped x0_hat
      (diffusers' `use_clipped_model_output=True`).
    """
    shape = _check_shape(shape)
    _check_schedule(schedule)
    check_number("eta", eta, 0, fix="0 is deterministic DDIM, 1 is DDPM-like noise")
    _check_clip(clip)
    check_number("min_alpha_cumprod", min_alpha_cumprod, 0, 1, high_open=True,
                 fix="3e-4 skips the near-pure-noise end of the schedule, 0 runs over all T steps")
    abar_all = schedule.alphas_cumprod
    usable = int((abar_all >= min_alpha_cumprod).sum())        # abar decreases: the first `usable` steps
    if usable == 0:
        raise ValueError(f"min_alpha_cumprod={min_alpha_cumprod} leaves no step: alphas_cumprod starts at "
                         f"{float(abar_all[0]):.3g}; lower it (3e-4 is the default)")
    check_int("steps", steps, 1, usable, fix=f"the schedule has {usable} steps with alphas_cumprod >= "
              f"min_alpha_cumprod={min_alpha_cumprod}")
    visits = ddim_timesteps(usable, steps, spacing).flip(0).tolist()   # from the noisiest
    x = torch.randn(shape, device=device, generator=generator)
    trajectory = [x.cpu()] if return_trajectory else None
    for i, prev in zip(visits, visits[1:] + [-1]):                 # each step lands on the next visited step
        abar = float(abar_all[i])
        abar_prev = float(abar_all[prev]) if prev >= 0 else 1.0
        t = torch.full((shape[0],), i, device=device, dtype=torch.long)
        eps = predict_noise(eps_model, x, t)
        x0 = schedule.predict_x0(x, t, eps)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x - math.sqrt(abar) * x0) / math.sqrt(1 - abar)
        sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
        x = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - sigma ** 2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(shape, device=device, generator=generator)
        if return_trajectory:
            trajectory.append(x.cpu())
    _check_samples(x, steps=f"{steps} DDIM steps")
    return (x, trajectory) if return_trajectory else x


def _pairwise_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a.double(), b.double())


def _flat_pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.dim() < 2 or y.dim() < 2:
        raise ValueError(f"x and y must be samples (N, ...) and (M, ...), got shapes {tuple(x.shape)} and "
                         f"{tuple(y.shape)}; make 1-D values one feature each: x[:, None]")
    x, y = x.flatten(1), y.flatten(1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same feature size, got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(x) < 2 or len(y) < 2:
        raise ValueError("x and y need at least two samples each")
    return x, y


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance 2 E|X-Y| - E|X-X'| - E|Y-Y'| between samples x (N, ...) and y (M, ...); 0 iff equal laws.

    The within-sample terms use the unbiased (off-diagonal) means, so two samples of one law give about 0.
    """
    x, y = _flat_pair(x, y)
    n, m = len(x), len(y)
    xy = _pairwise_distance(x, y).mean()
    xx = _pairwise_distance(x, x).sum() / (n * (n - 1))
    yy = _pairwise_distance(y, y).sum() / (m * (m - 1))
    return float(2 * xy - xx - yy)


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> float:
    """Unbiased squared MMD with a Gaussian kernel; bandwidth defaults to the median pairwise distance."""
    x, y = _flat_pair(x, y)
    n, m = len(x), len(y)
    dxx, dyy, dxy = _pairwise_distance(x, x), _pairwise_distance(y, y), _pairwise_distance(x, y)
    if bandwidth is None:
        bandwidth = float(dxy.median())  # nan if the samples hold nan: the MMD is then nan too, as it should be
        if bandwidth == 0:
            raise ValueError("bandwidth=None takes the median distance between x and y, which is 0 here; "
                             "pass a bandwidth > 0")
    else:
        check_number("bandwidth", bandwidth, 0, low_open=True, fix="None takes the median distance")
    k = lambda d: torch.exp(-d ** 2 / (2 * bandwidth ** 2))  # noqa: E731
    kxx = (k(dxx).sum() - n) / (n * (n - 1))
    kyy = (k(dyy).sum() - m) / (m * (m - 1))
    return float(kxx + kyy - 2 * k(dxy).mean())
