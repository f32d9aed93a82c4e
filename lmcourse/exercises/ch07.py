"""Chapter 07 · diffusion: the forward process q_sample, the DDPM posterior, the masked-diffusion loss."""

from __future__ import annotations

import torch
from torch import nn

from lmcourse.exercises.grading import call, exercise, expect_pair, generator, same_number, same_tensor

ID_Q_SAMPLE, ID_POSTERIOR, ID_MASKED = "07.q_sample", "07.ddpm_posterior", "07.masked_diffusion_loss"


def _schedules():
    from lmcourse.diffusion import NoiseSchedule

    return NoiseSchedule(1000, "linear"), NoiseSchedule(200, "cosine")


@exercise(ID_Q_SAMPLE, "the forward process q(x_t | x_0)", hints=[
    "x_t mixes the clean data and the noise with weights that depend on how much signal survives *all* steps "
    "up to t (a cumulative product), and the weights are square roots. Does your code work for images (B, C, H, W)?",
    "abar = schedule.alphas_cumprod[t] (B,), cast to x0's dtype and reshaped to (B, 1, ..., 1) so it broadcasts "
    "over every other dimension of x0: abar.view(-1, *[1] * (x0.dim() - 1)).",
    "return abar.sqrt() * x0 + (1 - abar).sqrt() * noise.",
])
def check_q_sample(q_sample) -> None:
    linear, cosine = _schedules()
    g = generator(ID_Q_SAMPLE)
    cases = [("points (4, 2), linear schedule, t = 0, 10, 500, 999", linear, (4, 2), torch.tensor([0, 10, 500, 999])),
             ("images (3, 1, 8, 8), cosine schedule", cosine, (3, 1, 8, 8), torch.tensor([0, 99, 199])),
             ("one example, (1, 5)", linear, (1, 5), torch.tensor([250]))]
    for name, schedule, shape, t in cases:
        x0, noise = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        got = call(name, q_sample, schedule, x0.clone(), t.clone(), noise.clone())
        same_tensor(name, got, schedule.q_sample(x0, t, noise), atol=1e-5)   # the task asks for x0's dtype: float64 is wrong


@exercise(ID_POSTERIOR, "the DDPM posterior q(x_{t-1} | x_t, x_0)", hints=[
    "Both the mean and the variance need ᾱ of the step *before* t. What is it at the first step (index 0)? "
    "And the variance is not β_t itself (that is the other choice DDPM discusses).",
    "abar_prev = torch.cat([torch.ones(1), schedule.alphas_cumprod[:-1]]); coef_x0 = sqrt(abar_prev) β / (1 - ᾱ), "
    "coef_xt = sqrt(α) (1 - abar_prev) / (1 - ᾱ), variance = β (1 - abar_prev) / (1 - ᾱ), all taken at t.",
    "mean = coef_x0[t] * x0 + coef_xt[t] * x_t with the (B,) coefficients reshaped to (B, 1, ..., 1); "
    "return (mean, variance[t]).",
])
def check_ddpm_posterior(ddpm_posterior) -> None:
    linear, cosine = _schedules()
    g = generator(ID_POSTERIOR)
    cases = [("points (4, 2), linear schedule", linear, (4, 2), torch.tensor([1, 10, 500, 999])),
             ("the first step, t = 0 (variance 0, mean x0)", linear, (2, 3), torch.tensor([0, 0])),
             ("images (3, 1, 8, 8), cosine schedule", cosine, (3, 1, 8, 8), torch.tensor([0, 57, 199]))]
    for name, schedule, shape, t in cases:
        x0, x_t = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        want_mean = (schedule.gather(schedule.posterior_mean_coef1, t, x0) * x0 +
                     schedule.gather(schedule.posterior_mean_coef2, t, x_t) * x_t)
        got = call(name, ddpm_posterior, schedule, x0.clone(), x_t.clone(), t.clone())
        got = expect_pair(name, got, "(mean, variance)")
        same_tensor(name, got[0], want_mean, atol=1e-5, dtype=False, what="the mean")
        same_tensor(name, got[1], schedule.posterior_variance[t], atol=1e-7, rtol=1e-4, dtype=False,
                    what="the variance")


class _FixedLogits(nn.Module):
    """A stand-in denoiser that returns the same logits whatever it is given."""

    def __init__(self, logits: torch.Tensor, vocab_size: int):
        super().__init__()
        self.logits, self.vocab_size, self.mask_id = logits, vocab_size, vocab_size

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.logits


@exercise(ID_MASKED, "the masked-diffusion loss", hints=[
    "Only masked positions are predicted, each with a cross-entropy; the continuous-time bound weighs a "
    "sequence's sum by 1/t (few masks at small t must count more). What do you divide by: masked tokens or L?",
    "nll = F.cross_entropy(logits.transpose(1, 2), x0, reduction='none') (B, L); per sequence: "
    "(nll * masked).sum(1) / t / L; then the mean over the batch.",
    "return ((nll * masked).sum(dim=1) / t / x0.shape[1]).mean() (in nats per token).",
])
def check_masked_diffusion_loss(masked_diffusion_loss) -> None:
    from lmcourse.text_diffusion import masked_diffusion_loss as reference

    g = generator(ID_MASKED)
    cases = [("4 sequences of 16, t in [0.1, 1]", 4, 16, torch.tensor([0.1, 0.4, 0.7, 1.0])),
             ("t = 1: everything masked", 2, 12, torch.tensor([1.0, 1.0])),
             ("small t: few or no masked tokens", 3, 20, torch.tensor([0.02, 0.05, 0.001])),
             ("one sequence of 64, t = 0.5", 1, 64, torch.tensor([0.5]))]
    V = 11
    for name, B, L, t in cases:
        x0, logits = torch.randint(V, (B, L), generator=g), torch.randn(B, L, V, generator=g) * 2
        seed = int(torch.randint(2**31, (1,), generator=g))
        masked = torch.rand(x0.shape, generator=torch.Generator().manual_seed(seed)) < t[:, None]  # as the reference draws it
        want = reference(_FixedLogits(logits, V), x0, t=t.clone(), generator=torch.Generator().manual_seed(seed))
        got = call(name, masked_diffusion_loss, logits.clone(), x0.clone(), masked.clone(), t.clone())
        same_number(name, got, want.item(), rtol=1e-5, what="the loss")
