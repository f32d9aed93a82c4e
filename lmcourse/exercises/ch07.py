"""Chapter 07 · diffusion: the DDIM step, classifier-free guidance in one network call, the unmasking step.

Each exercise is the step next to one the chapter shows: DDIM's deterministic step after DDPM's, the guided
noise prediction after the score view of guidance, the reveal step of the masked-diffusion sampler after its
forward process. Every expected value is computed after the learner's function has returned, from copies of
the inputs it was given.
"""

from __future__ import annotations

import torch

from lmcourse.exercises.grading import Wrong, call, exercise, forbidding, generator, same_tensor

ID_DDIM, ID_GUIDED, ID_REVEAL = "07.ddim_step", "07.guided_eps", "07.reveal_step"


def _schedules():
    from lmcourse.diffusion import NoiseSchedule

    return NoiseSchedule(1000, "linear"), NoiseSchedule(200, "cosine")


def _steps(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-example value (B,) reshaped to (B, 1, ..., 1) to broadcast over `like` (B, ...)."""
    return t.reshape(-1, *([1] * (like.dim() - 1)))


class StandInDenoiser:
    """A stand-in for a trained network: eps_model(x_t, t) (or eps_model(x_t, t, y) with classes) returns a smooth
    function of x_t, of the step t and of the label y, shaped and typed like x_t. It counts its calls."""

    def __init__(self, n_classes: int = 0):
        self.n_classes, self.calls, self.batch_sizes = n_classes, 0, []

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.shape != (len(x_t),):
            raise ValueError(f"eps_model needs t as a LongTensor of shape ({len(x_t)},), one step per example, "
                             f"got {t.dtype if isinstance(t, torch.Tensor) else type(t).__name__} "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else ''}")
        if self.n_classes and (not isinstance(y, torch.Tensor) or y.dtype != torch.long or y.shape != (len(x_t),)):
            raise ValueError(f"eps_model needs y as a LongTensor of shape ({len(x_t)},), one label per example")
        self.calls += 1
        self.batch_sizes.append(len(x_t))
        shift = torch.sin(0.05 * t.double() + 0.3)
        if self.n_classes:
            if int(y.min()) < 0 or int(y.max()) > self.n_classes:
                raise ValueError(f"labels must lie in [0, {self.n_classes}] ({self.n_classes}: no class)")
            shift = shift + 0.4 * torch.cos(1.7 * y.double() + 0.5)
        pattern = torch.linspace(-1, 1, x_t[0].numel(), dtype=torch.float64).reshape(x_t.shape[1:])
        return (0.8 * torch.tanh(1.3 * x_t.double() + _steps(shift, x_t) * (1 + pattern))).to(x_t.dtype)


# ------------------------------------------------------------------------------------------------ the DDIM step

@exercise(ID_DDIM, "one deterministic DDIM step", hints=[
    "Section 4 says it in words: predict x0 from x_t, then jump to the earlier step along the same noise "
    "direction. Which step's ᾱ belongs to each of the two halves, and what is ᾱ when t_prev = -1 (the data)?",
    "The first half inverts the forward process of section 1 at step t, with the network's noise in place of the "
    "true one; the second half runs the forward process again, at step t_prev, from that estimate and with that "
    "same noise. Index with t and t_prev per example; ᾱ before the first step is 1, not alphas_cumprod[-1].",
    "Why it works: if the network's noise were the true one, x_t and the step's result would be two points of one "
    "noising path of the same x0, at two noise levels. Nothing random is added, so the same x_T always gives the "
    "same sample. Compute in float64 if you like, but hand back x_t's dtype.",
])
def check_ddim_step(ddim_step) -> None:
    linear, cosine = _schedules()
    g = generator(ID_DDIM)
    cases = [("points (4, 2), linear schedule, t = 999, 500, 20, 1 to 979, 480, 0, 0", linear, (4, 2),
              [999, 500, 20, 1], [979, 480, 0, 0], torch.float32),
             ("images (3, 1, 8, 8), cosine schedule (T = 200), t = 199, 100, 10 to 189, 90, 0", cosine, (3, 1, 8, 8),
              [199, 100, 10], [189, 90, 0], torch.float32),
             ("the last step, t_prev = -1: it lands on the data", linear, (3, 2), [0, 5, 40], [-1, -1, -1],
              torch.float32),
             ("consecutive steps t_prev = t - 1, one jump from 999 to -1", linear, (5, 3), [1, 2, 300, 998, 999],
              [0, 1, 299, 997, -1], torch.float32),
             ("float64 points (2, 2)", cosine, (2, 2), [150, 60], [120, -1], torch.float64)]
    for name, schedule, shape, t, t_prev, dtype in cases:
        x_t = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
        _ddim_case(name, ddim_step, schedule, x_t, torch.tensor(t), torch.tensor(t_prev))


def _ddim_case(name, ddim_step, schedule, x_t, t, t_prev) -> None:
    with forbidding("lmcourse.diffusion.ddim_sample"):
        got = call(name, ddim_step, StandInDenoiser(), schedule, x_t.clone(), t.clone(), t_prev.clone())
    # the expected value, only now
    abar = schedule.alphas_cumprod
    abar_t = _steps(abar[t], x_t)
    abar_prev = _steps(torch.where(t_prev >= 0, abar[t_prev.clamp(min=0)], torch.ones((), dtype=abar.dtype)), x_t)
    eps = StandInDenoiser()(x_t, t).double()
    x0 = (x_t.double() - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()
    same_tensor(name, got, (abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * eps).to(x_t.dtype), atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------------ guidance

@exercise(ID_GUIDED, "classifier-free guidance in one network call", hints=[
    "Section 5: guidance samples from p(x | y) p(y | x)^w, and a noise prediction is a scaled score. Write the "
    "score of that product with Bayes' rule, then turn each score back into a noise prediction. What must "
    "w = 0 give?",
    "You need the conditional and the unconditional prediction at the same x_t and t. One call can give both: a "
    "batch of 2B inputs, the same x_t and t twice, the labels y in one half and null_class in the other; then "
    "split the answer back into its halves, in the order you stacked them.",
    "The idea: guidance extrapolates, from the unconditional prediction through the conditional one and on past "
    "it, the further the larger w is (at w = 0 it stops at the conditional one), pushing the sample towards what "
    "makes y likely. The sign of each term follows from the scores; their common factor -sqrt(1 - ᾱ_t) cancels.",
])
def check_guided_eps(guided_eps) -> None:
    g = generator(ID_GUIDED)
    null = 10
    cases = [("points (4, 2), w = 2, labels 0..3", (4, 2), torch.tensor([0, 1, 2, 3]), 2.0, torch.float32),
             ("images (3, 1, 8, 8), w = 0.5", (3, 1, 8, 8), torch.tensor([7, 2, 9]), 0.5, torch.float32),
             ("w = 0: plain conditional sampling", (3, 2), torch.tensor([5, 5, 1]), 0.0, torch.float32),
             ("some labels already null_class (unconditional examples), w = 3", (4, 3), torch.tensor([null, 4, null, 8]),
              3.0, torch.float32),
             ("one example, float64, w = 7.5", (1, 5), torch.tensor([6]), 7.5, torch.float64)]
    for name, shape, y, w, dtype in cases:
        x_t = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
        t = torch.randint(1000, (shape[0],), generator=g)
        _guided_case(name, guided_eps, x_t, t, y, w, null)


def _guided_case(name, guided_eps, x_t, t, y, w, null) -> None:
    model = StandInDenoiser(n_classes=null)
    with forbidding("lmcourse.diffusion.guided"):
        got = call(name, guided_eps, model, x_t.clone(), t.clone(), y.clone(), w, null)
    if model.calls != 1:
        raise Wrong(name, f"your function called eps_model {model.calls} times; call it once, on one batch "
                          "that holds the conditional and the unconditional inputs")
    # the expected value, only now
    cond = StandInDenoiser(null)(x_t, t, y).double()
    uncond = StandInDenoiser(null)(x_t, t, torch.full_like(y, null)).double()
    same_tensor(name, got, ((1 + w) * cond - w * uncond).to(x_t.dtype), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------ unmasking

@exercise(ID_REVEAL, "one step of the masked-diffusion sampler", hints=[
    "Section 6's forward process: each token is masked at time t with probability t, independently, and once "
    "masked it stays masked as t grows. Going back from t to s, which tokens can change, and with what "
    "probability is a token that is masked at t no longer masked at s?",
    "Give each token the time at which the forward process masks it, uniform on [0, 1]: it is masked at t when "
    "that time lies below t. Knowing it is masked at t, where can its time lie, and which part of that range "
    "means it is visible at s? Each row has its own t and s.",
    "The reveal probability is a conditional one: the forward process's masking probabilities at s and at t both "
    "enter it. Check it at the ends: from t to s = t nothing is revealed, at s = 0 everything still masked is. "
    "Revealed tokens are never changed again, and a token is revealed where u falls below the probability.",
])
def check_reveal_step(reveal_step) -> None:
    g = generator(ID_REVEAL)
    V, mask_id = 27, 27
    cases = [("4 rows of 32, all masked, t = 1 to s = 0.75 (the first step)", (4, 32), [1.0] * 4, [0.75] * 4, 1.0),
             ("s = 0: the last step", (3, 24), [0.125] * 3, [0.0] * 3, 0.4),
             ("rows at different times t = 0.9, 0.5, 0.2, 0.6; one row has no mask left", (4, 40),
              [0.9, 0.5, 0.2, 0.6], [0.6, 0.25, 0.1, 0.3], 0.5),
             ("u exactly the reveal probability (not revealed): t = 1 to s = 0.5, t = 0.5 to s = 0.25", (4, 16),
              [1.0, 0.5, 1.0, 0.5], [0.5, 0.25, 0.5, 0.25], 0.6),
             ("one row of 128, t = 0.5 to s = 0.46875", (1, 128), [0.5], [0.46875], 0.5),
             ("small steps late in sampling: t = 0.1 to 0.05, 0.05 to 0.025, 0.02 to 0.01, 0.01 to 0", (4, 64),
              [0.1, 0.05, 0.02, 0.01], [0.05, 0.025, 0.01, 0.0], 0.1)]
    for name, shape, t, s, share_masked in cases:
        x = torch.randint(V, shape, generator=g)
        x[torch.rand(shape, generator=g) < share_masked] = mask_id
        if "no mask left" in name:
            x[-1] = torch.randint(V, shape[1:], generator=g)
        draws = torch.randint(V, shape, generator=g)
        u = torch.rand(shape, generator=g)
        t_, s_ = torch.tensor(t, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
        if name.startswith("u exactly"):
            u[:, ::3] = 0.5
        _reveal_case(name, reveal_step, x, draws, u, t_, s_, mask_id)


def _reveal_case(name, reveal_step, x, draws, u, t, s, mask_id) -> None:
    with forbidding("lmcourse.text_diffusion.sample_text"):
        got = call(name, reveal_step, x.clone(), draws.clone(), u.clone(), t.clone(), s.clone(), mask_id)
    # the expected value, only now: a token masked at t was masked at a uniform time in [0, t]; visible at s if above s
    reveal = (x == mask_id) & (u.double() < ((t - s) / t)[:, None])
    same_tensor(name, got, torch.where(reveal, draws, x))
