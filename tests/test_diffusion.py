"""Gaussian diffusion: schedules, q_sample, samplers and sample-quality figures against closed forms."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from lmcourse.denoisers import MLPDenoiser
from lmcourse.diffusion import (
    NoiseSchedule,
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
    ddpm_step,
    diffusion_loss,
    energy_distance,
    guided,
    mmd_rbf,
    timestep_embedding,
)
from lmcourse.toy2d import make_toy2d, near_data_share


def test_linear_schedule_is_ddpm_linspace():
    s = NoiseSchedule(1000, "linear")
    assert torch.allclose(s.betas, torch.tensor(np.linspace(1e-4, 0.02, 1000)))
    assert torch.allclose(s.alphas_cumprod, torch.tensor(np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))))


def test_cosine_schedule_matches_improved_ddpm_formula():
    T, s_off = 1000, 0.008
    s = NoiseSchedule(T, "cosine")
    f = lambda t: math.cos((t / T + s_off) / (1 + s_off) * math.pi / 2) ** 2  # noqa: E731
    expected = [min(1 - f(i + 1) / f(i), 0.999) for i in range(T)]
    assert torch.allclose(s.betas, torch.tensor(expected, dtype=torch.float64))
    assert s.betas.max() == pytest.approx(0.999)                 # the last beta is clipped
    unclipped = s.alphas_cumprod[:900]
    assert torch.allclose(unclipped, torch.tensor([f(i + 1) / f(0) for i in range(900)], dtype=torch.float64))


def test_snr_decreases_and_ends_near_zero():
    for kind in ("linear", "cosine"):
        snr = NoiseSchedule(1000, kind).snr()
        assert (snr[1:] < snr[:-1]).all()
        assert snr[-1] < 1e-4


def test_q_sample_is_the_closed_form():
    s = NoiseSchedule(100)
    x0, noise, t = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 10, 50, 99])
    abar = s.alphas_cumprod[t].float()[:, None]
    assert torch.allclose(s.q_sample(x0, t, noise), abar.sqrt() * x0 + (1 - abar).sqrt() * noise)


def test_q_sample_at_T_is_standard_normal():
    s = NoiseSchedule(1000)
    x0 = torch.full((20000, 2), 3.0)
    xT = s.q_sample(x0, torch.full((20000,), 999))
    assert xT.mean().abs() < 0.05 and (xT.std() - 1).abs() < 0.05


def test_predict_x0_inverts_q_sample():
    s = NoiseSchedule(1000, "cosine")
    x0, noise, t = torch.randn(8, 1, 8, 8, dtype=torch.float64), torch.randn(8, 1, 8, 8, dtype=torch.float64), torch.arange(0, 800, 100)
    assert torch.allclose(s.predict_x0(s.q_sample(x0, t, noise), t, noise), x0)


@pytest.mark.parametrize("t, message", [(torch.tensor([0, 1000]), r"\[0, 1000\)"), (torch.tensor([-1, 3]), r"\[0, 1000\)"),
                                        (torch.tensor([0.5, 1.0]), "integer"), (torch.tensor([1, 2, 3]), "batch size"),
                                        (torch.tensor([[1, 2]]), r"shape \(B,\)")])
def test_q_sample_rejects_bad_t(t, message):
    with pytest.raises(ValueError, match=message):
        NoiseSchedule(1000).q_sample(torch.zeros(2, 2), t)


def test_q_sample_rejects_bad_shapes():
    s = NoiseSchedule(10)
    with pytest.raises(ValueError, match="noise must have the shape"):
        s.q_sample(torch.zeros(2, 2), torch.tensor([1, 2]), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="batched"):
        s.q_sample(torch.zeros(2), torch.tensor([1, 2]))


@pytest.mark.parametrize("kwargs, message", [({"kind": "quadratic"}, "kind"), ({"T": 0}, "T must"),
                                             ({"beta_start": 0.1, "beta_end": 0.01}, "beta_start")])
def test_schedule_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NoiseSchedule(**kwargs)


def test_timestep_embedding_is_sin_cos_of_geometric_frequencies():
    t = torch.tensor([0, 7, 500])
    emb = timestep_embedding(t, 8)
    freqs = 10000 ** (-torch.arange(4) / 4)
    assert torch.allclose(emb, torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], 1), atol=1e-5)
    with pytest.raises(ValueError, match="even"):
        timestep_embedding(t, 7)


def gaussian_oracle(schedule, mu, sigma):
    """The exact eps-prediction for data N(mu, sigma^2 I): E[eps | x_t]."""
    def eps(x, t):
        abar = schedule.gather(schedule.alphas_cumprod, t, x)
        return (1 - abar).sqrt() * (x - abar.sqrt() * mu) / (abar * sigma ** 2 + 1 - abar)
    return eps


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_with_the_exact_denoiser_reproduce_a_gaussian(sampler):
    s, mu, sigma = NoiseSchedule(200, "cosine"), 1.5, 0.5  # linear betas need T ~ 1000 to reach noise
    gen = torch.Generator().manual_seed(0)
    eps = gaussian_oracle(s, mu, sigma)
    if sampler == "ddpm":
        x = ddpm_sample(eps, s, (4000, 2), generator=gen)
    else:
        x = ddim_sample(eps, s, (4000, 2), steps=50, generator=gen)
    assert abs(float(x.mean()) - mu) < 0.03 and abs(float(x.std()) - sigma) < 0.03


def test_ddim_is_deterministic_given_x_T_and_returns_its_trajectory():
    s = NoiseSchedule(100)
    eps = gaussian_oracle(s, 0.0, 1.0)
    a, traj = ddim_sample(eps, s, (5, 2), steps=10, generator=torch.Generator().manual_seed(1), return_trajectory=True)
    b = ddim_sample(eps, s, (5, 2), steps=10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and len(traj) == 11 and torch.equal(traj[-1], a)
    with pytest.raises(ValueError, match="steps"):
        ddim_sample(eps, s, (5, 2), steps=0)


def diffusers_timesteps(T, steps, spacing):
    """DDIMScheduler.set_timesteps (steps_offset=0), descending, as diffusers writes it."""
    if spacing == "leading":
        return (np.arange(0, steps) * (T // steps)).round()[::-1].copy().astype(np.int64)
    if spacing == "trailing":
        return np.round(np.arange(T, 0, -T / steps)).astype(np.int64) - 1
    return np.linspace(0, T - 1, steps).round()[::-1].copy().astype(np.int64)


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("T", [1000, 7, 200])
def test_ddim_timesteps_are_diffusers_for_every_step_count(T, spacing):
    for steps in range(1, T + 1):
        want = diffusers_timesteps(T, steps, spacing)
        if len(want) == steps + 1:  # np.arange's round-off adds a last value 0, index -1: dropped
            assert spacing == "trailing" and want[-1] == -1
            want = want[:-1]
        assert ddim_timesteps(T, steps, spacing).tolist() == want[::-1].tolist(), steps
        if spacing == "leading" or (spacing == "trailing" and T % steps == 0):  # DDIMScheduler.step: t - T // steps
            assert (np.diff(want) == -(T // steps)).all()


def diffusers_ddim(eps_model, schedule, visits, x, eta=0.0, clip=None, generator=None):
    """DDIMScheduler.step (epsilon prediction, set_alpha_to_one=True, use_clipped_model_output=True) along the
    descending `visits`, each step to the next visit (DDPMScheduler.previous_timestep's rule), in float64."""
    abar = schedule.alphas_cumprod.tolist()
    for t, prev in zip(visits, list(visits[1:]) + [-1]):
        a_t, a_prev = abar[t], (abar[prev] if prev >= 0 else 1.0)
        eps = eps_model(x, torch.full((len(x),), int(t)))
        x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5
        std = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5
        x = a_prev ** 0.5 * x0 + (1 - a_prev - std ** 2) ** 0.5 * eps
        if eta > 0:
            x = x + std * torch.randn(x.shape, generator=generator).double()
    return x


@pytest.mark.parametrize("min_alpha_cumprod", [0.0, 3e-4])
@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
def test_ddim_sample_is_diffusers_step_over_the_steps_above_min_alpha_cumprod(spacing, min_alpha_cumprod):
    s = NoiseSchedule(1000, "cosine")
    usable = sum(a >= min_alpha_cumprod for a in s.alphas_cumprod.tolist())     # 1000, or 988 above 3e-4
    eps = gaussian_oracle(s, 1.0, 0.5)
    for steps, eta, clip in [(k, 0.0, None) for k in range(1, 31)] + [(7, 1.0, None), (13, 0.0, 1.0), (101, 0.0, None)]:
        x = ddim_sample(eps, s, (64, 1), steps, eta=eta, clip=clip, generator=torch.Generator().manual_seed(steps),
                        spacing=spacing, min_alpha_cumprod=min_alpha_cumprod)
        g = torch.Generator().manual_seed(steps)
        x_T = torch.randn(64, 1, generator=g).double()                                    # the sampler's x_T
        visits = diffusers_timesteps(usable, steps, spacing)[:steps]
        want = diffusers_ddim(eps, s, visits, x_T, eta, clip, generator=g)
        # float32 round-off divided by sqrt(abar) (5e-5 at the cosine schedule's last step) gives up to ~1e-3
        torch.testing.assert_close(x.double(), want, atol=2e-3, rtol=1e-3, msg=f"{steps} steps")


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [1, 2, 5, 50])
def test_few_step_ddim_with_the_exact_denoiser_matches_the_closed_form(kind, steps):
    """For data N(mu, sigma^2) and the exact denoiser, each DDIM step (eta = 0) scales x - sqrt(abar) mu by
    (sqrt(abar_prev abar) sigma^2 + sqrt((1 - abar_prev)(1 - abar))) / (abar sigma^2 + 1 - abar)."""
    s, mu, sigma = NoiseSchedule(1000, kind), 3.0, 0.5
    x = ddim_sample(gaussian_oracle(s, mu, sigma), s, (2000, 1), steps=steps, generator=torch.Generator().manual_seed(0))
    x_T = torch.randn(2000, 1, generator=torch.Generator().manual_seed(0)).double()  # the sampler's x_T
    usable = int((s.alphas_cumprod >= 3e-4).sum())                                  # the default min_alpha_cumprod
    visits = np.round(np.arange(usable, 0, -usable / steps))[:steps].astype(np.int64) - 1  # trailing, from the top
    abar = [float(s.alphas_cumprod[i]) for i in visits] + [1.0]
    factor = math.prod((math.sqrt(p * a) * sigma ** 2 + math.sqrt((1 - p) * (1 - a))) / (a * sigma ** 2 + 1 - a)
                       for a, p in zip(abar[:-1], abar[1:]))
    want = mu + factor * (x_T - math.sqrt(abar[0]) * mu)
    torch.testing.assert_close(x.double(), want, atol=2e-3, rtol=1e-3)
    if steps == 1:  # one step from the top lands near the posterior mean E[x0 | x_T], about mu: it denoises
        assert (x - mu).abs().max() < 0.02


def test_ddim_with_many_steps_and_the_exact_denoiser_reaches_the_data_distribution():
    s, mu, sigma = NoiseSchedule(1000, "linear"), 3.0, 0.5
    x = ddim_sample(gaussian_oracle(s, mu, sigma), s, (4000, 1), steps=200, generator=torch.Generator().manual_seed(0))
    assert abs(float(x.mean()) - mu) < 0.03 and abs(float(x.std()) - sigma) < 0.03


def test_ddpm_step_at_t0_returns_the_predicted_x0():
    s = NoiseSchedule(100)
    x0, noise = torch.randn(6, 2), torch.randn(6, 2)
    t = torch.zeros(6, dtype=torch.long)
    x_t = s.q_sample(x0, t, noise)
    assert torch.allclose(ddpm_step(lambda x, tt: noise, s, x_t, t), x0, atol=1e-5)


def test_diffusion_loss_is_zero_for_the_noise_oracle_and_positive_otherwise():
    s = NoiseSchedule(100)
    x0 = torch.randn(64, 2)
    torch.manual_seed(0)  # replay the draws diffusion_loss makes: t, then the noise
    torch.randint(0, 100, (64,))  # the time steps diffusion_loss draws first
    noise = torch.randn(64, 2)
    torch.manual_seed(0)
    assert diffusion_loss(lambda x, tt: noise, s, x0).item() == pytest.approx(0.0, abs=1e-12)
    assert diffusion_loss(lambda x, tt: torch.zeros_like(x), s, x0).item() > 0.5


def test_guidance_combines_conditional_and_unconditional_predictions():
    model = lambda x, t, y: x * (y[:, None].float() + 1)  # noqa: E731
    x, t, y = torch.ones(3, 2), torch.zeros(3, dtype=torch.long), torch.tensor([1, 2, 3])
    assert torch.equal(guided(model, y)(x, t), model(x, t, y))
    w, null = 2.0, 10
    expected = (1 + w) * model(x, t, y) - w * model(x, t, torch.full_like(y, null))
    assert torch.allclose(guided(model, y, w, null_class=null)(x, t), expected)
    with pytest.raises(ValueError, match="null_class"):
        guided(model, y, 1.0)


def test_energy_distance_matches_scipy_up_to_the_unbiased_correction():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 300), rng.normal(0.5, 1.2, 200)
    ours = energy_distance(torch.tensor(x)[:, None], torch.tensor(y)[:, None])
    dxx, dyy = np.abs(x[:, None] - x[None]).sum(), np.abs(y[:, None] - y[None]).sum()
    n, m = len(x), len(y)
    v_statistic = ours + dxx * (1 / (n * (n - 1)) - 1 / n ** 2) + dyy * (1 / (m * (m - 1)) - 1 / m ** 2)
    assert v_statistic == pytest.approx(scipy.stats.energy_distance(x, y) ** 2, rel=1e-9)


def test_sample_distances_are_near_zero_for_one_law_and_large_for_two():
    g = torch.Generator().manual_seed(0)
    a, b, c = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g) + 2
    assert abs(energy_distance(a, b)) < 0.05 < energy_distance(a, c)
    assert abs(mmd_rbf(a, b)) < 0.01 < mmd_rbf(a, c)
    with pytest.raises(ValueError, match="feature size"):
        energy_distance(a, torch.zeros(5, 3))


def test_mmd_matches_a_direct_double_sum():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(7, 2, generator=g, dtype=torch.float64), torch.randn(5, 2, generator=g, dtype=torch.float64)
    k = lambda a, b: math.exp(-float(((a - b) ** 2).sum()) / 2)  # noqa: E731  bandwidth 1
    kxx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
    kyy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    kxy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / 35
    assert mmd_rbf(x, y, bandwidth=1.0) == pytest.approx(kxx + kyy - 2 * kxy)


@pytest.mark.slow
def test_ddim_on_a_trained_cosine_model_lands_on_the_moons_as_often_as_ddpm():
    torch.manual_seed(0)  # diffusion_loss draws its steps and noise from the global generator
    s, data = NoiseSchedule(1000, "cosine"), make_toy2d("moons", 20_000, seed=0)
    model = MLPDenoiser(hidden=64)
    opt, batches = torch.optim.Adam(model.parameters(), lr=2e-3), torch.Generator().manual_seed(0)
    for _ in range(2000):
        loss = diffusion_loss(model, s, data[torch.randint(0, len(data), (256,), generator=batches)])
        opt.zero_grad()
        loss.backward()
        opt.step()
    moons, shape = make_toy2d("moons", 5000, seed=3), (1000, 2)
    ddpm = near_data_share(ddpm_sample(model.eval(), s, shape, generator=torch.Generator().manual_seed(1)), moons)
    ddim = {k: ddim_sample(model, s, shape, k, generator=torch.Generator().manual_seed(1)) for k in (1, 2, 10, 50)}
    assert ddpm > 0.9
    for k in (10, 50):
        assert near_data_share(ddim[k], moons) > ddpm - 0.06
    for k in (1, 2):  # one step from abar = 3e-4 multiplies eps's error by 58: std ~3, not the 1 000 from T - 1
        assert ddim[k].std() < 4
    from_the_last_step = ddim_sample(model, s, shape, 50, generator=torch.Generator().manual_seed(1),
                                     min_alpha_cumprod=0)  # diffusers' range: the first step at abar = 2.4e-9
    assert from_the_last_step.std() > 5 and near_data_share(from_the_last_step, moons) < 0.1


def test_predict_x0_refuses_steps_outside_the_schedule():
    s, x = NoiseSchedule(10), torch.zeros(2, 2)
    for t in (torch.tensor([-1, 0]), torch.tensor([0, 10])):  # -1 used to wrap to the last step
        with pytest.raises(ValueError, match=r"t must lie in \[0, 10\)"):
            s.predict_x0(x, t, x)
    with pytest.raises(ValueError, match="eps must have the shape of x_t"):
        s.predict_x0(x, torch.tensor([0, 1]), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="t must be a LongTensor"):
        s.q_sample(x, [0, 1])


@pytest.mark.parametrize("shape", ["22", (2.5, 2), (True, 2), (4,), (0, 2), None])
@pytest.mark.parametrize("sampler", [ddpm_sample, ddim_sample])
def test_samplers_refuse_shapes_that_are_not_tuples_of_positive_ints(sampler, shape):
    with pytest.raises(ValueError, match="shape must be a tuple"):  # "22" used to give (2, 2)
        sampler(lambda x, t: x, NoiseSchedule(10), shape)


@pytest.mark.parametrize("sampler, extra", [(ddpm_sample, {}), (ddim_sample, {"steps": 5})])
def test_samplers_refuse_to_return_nan(sampler, extra):
    with pytest.raises(ValueError, match="eps_model returned nan"):
        sampler(lambda x, t: torch.full_like(x, float("nan")), NoiseSchedule(10), (4, 2), **extra)


@pytest.mark.parametrize("x0, message", [(torch.zeros(4, 2, dtype=torch.long), "x0 must be a float tensor"),
                                         (torch.zeros(0, 2), r"B >= 1, got \(0, 2\)"),
                                         (torch.full((4, 2), float("nan")), "x0 holds nan")])
def test_diffusion_loss_names_bad_data(x0, message):
    with pytest.raises(ValueError, match=message):
        diffusion_loss(lambda x, t: x, NoiseSchedule(10), x0)


@pytest.mark.parametrize("kwargs, message", [({"spacing": "uniform"}, "spacing='uniform'"),
                                             ({"min_alpha_cumprod": 1.0}, "min_alpha_cumprod must be"),
                                             ({"min_alpha_cumprod": 0.99999}, "leaves no step"),
                                             ({"steps": 989}, r"steps must be an int in \[1, 988\]")])
def test_ddim_sample_names_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ddim_sample(lambda x, t: x, NoiseSchedule(1000, "cosine"), (2, 2), **kwargs)


def test_sample_distances_propagate_nan_and_name_1d_input():
    x = torch.randn(5, 2)
    assert math.isnan(energy_distance(torch.full((5, 2), float("nan")), x))
    assert math.isnan(mmd_rbf(torch.full((5, 2), float("nan")), x))
    with pytest.raises(ValueError, match=r"\(5,\)"):
        energy_distance(torch.zeros(5), x)
