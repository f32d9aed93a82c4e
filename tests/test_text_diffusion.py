"""Masked (absorbing) text diffusion: forward masking, the ELBO estimate, sampling, the AR twin."""

import math

import pytest
import scipy.stats
import torch

from lmcourse.text_diffusion import (
    TextDenoiser,
    absorb_tokens,
    alibi_bias,
    ar_loss,
    diffusion_bound,
    infill,
    infill_by_span,
    masked_diffusion_loss,
    masked_lm_loss,
    masking_times,
    sample_text,
)


class Uniform(torch.nn.Module):
    """Predicts the uniform distribution everywhere: -log p = log V at every masked position."""

    def __init__(self, vocab_size, block_size=32):
        super().__init__()
        self.vocab_size, self.mask_id, self.block_size = vocab_size, vocab_size, block_size

    def forward(self, idx):
        return torch.zeros(*idx.shape, self.vocab_size)


def test_absorb_tokens_masks_a_fraction_t():
    x0 = torch.randint(0, 5, (3, 20000))
    x_t, masked = absorb_tokens(x0, torch.tensor([0.0, 0.3, 1.0]), mask_id=5)
    assert masked[0].sum() == 0 and masked[2].all()
    assert abs(masked[1].float().mean() - 0.3) < 0.02
    assert torch.equal(x_t[masked], torch.full((int(masked.sum()),), 5)) and torch.equal(x_t[~masked], x0[~masked])


@pytest.mark.parametrize("t, message", [(torch.tensor([1.5, 0.1]), r"\[0, 1\]"), (torch.tensor([0.1]), "one time per")])
def test_absorb_tokens_rejects_bad_t(t, message):
    with pytest.raises(ValueError, match=message):
        absorb_tokens(torch.zeros(2, 4, dtype=torch.long), t, mask_id=9)


def test_loss_of_a_uniform_model_is_log_v_times_masked_fraction_over_t():
    x0, t = torch.randint(0, 7, (4, 32)), torch.tensor([0.2, 0.4, 0.6, 0.8])
    torch.manual_seed(0)
    loss = masked_diffusion_loss(Uniform(7), x0, t=t)
    torch.manual_seed(0)
    _, masked = absorb_tokens(x0, t, 7)
    expected = (math.log(7) * masked.sum(1) / t / 32).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_bound_of_a_uniform_model_is_log_v():
    # the ELBO of the uniform model is exactly log V per token; the estimate must be unbiased
    ids = torch.randint(0, 11, (64 * 40,))
    assert diffusion_bound(Uniform(11, 64), ids, n_times=32) == pytest.approx(math.log(11), rel=0.03)


class SureWhenFewMasked(Uniform):
    """Logit 10 (1 - m) on token 0, m the window's masked share: sure of it at low masking rates, not at high ones."""

    def forward(self, idx):
        logits = torch.zeros(*idx.shape, self.vocab_size)
        logits[..., 0] = 10 * (1 - (idx == self.mask_id).float().mean(1, keepdim=True))
        return logits


def test_bound_split_by_masking_rate_adds_up_to_the_bound():
    # the uniform model's integrand is log V at every rate: each part is log V times its range's share
    ids = torch.randint(0, 11, (64 * 100,))
    for low, high in ((1e-3, 0.5), (0.5, 1.0)):
        part = diffusion_bound(Uniform(11, 64), ids, n_times=32, t_range=(low, high))
        assert part == pytest.approx(math.log(11) * (high - low) / (1 - 1e-3), rel=0.03)
    # each part scores only its own rates: on all-zero text this model's loss is near 0 below t = 0.5, large above
    model, zeros = SureWhenFewMasked(7, 64), torch.zeros(64 * 100, dtype=torch.long)
    low, high = (diffusion_bound(model, zeros, n_times=32, t_range=r) for r in ((1e-3, 0.5), (0.5, 1.0)))
    assert high > 20 * low
    assert low + high == pytest.approx(diffusion_bound(model, zeros, n_times=32), rel=0.05)


@pytest.mark.parametrize("t_range", [(0.0, 0.5), (0.5, 0.5), (0.6, 0.4), (0.5, 1.5), (float("nan"), 1.0), (0.5,), 0.5])
def test_diffusion_bound_refuses_a_bad_t_range(t_range):
    with pytest.raises(ValueError, match=r"t_range"):
        diffusion_bound(Uniform(7, 8), torch.zeros(16, dtype=torch.long), t_range=t_range)


def test_causal_model_ignores_the_future_and_bidirectional_does_not():
    x = torch.randint(0, 10, (1, 12))
    y = x.clone()
    y[0, 8:] = (y[0, 8:] + 1) % 10
    for causal in (True, False):
        model = TextDenoiser(10, block_size=12, n_layer=1, n_head=2, n_embd=16, causal=causal).eval()
        same = torch.allclose(model(x)[0, :8], model(y)[0, :8], atol=1e-5)
        assert same == causal


def test_ar_loss_matches_torch_cross_entropy():
    model = TextDenoiser(10, block_size=8, n_layer=1, n_head=2, n_embd=16, causal=True)
    x, y = torch.randint(0, 10, (2, 8)), torch.randint(0, 10, (2, 8))
    expected = torch.nn.functional.cross_entropy(model(x).reshape(16, 10), y.reshape(16))
    assert ar_loss(model, x, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_sampling_unmasks_everything_with_valid_tokens():
    model = TextDenoiser(10, block_size=16, n_layer=1, n_head=2, n_embd=16)
    out, traj = sample_text(model, 3, steps=5, generator=torch.Generator().manual_seed(0), return_trajectory=True)
    assert out.shape == (3, 16) and int(out.max()) < 10 and len(traj) == 6
    assert (traj[0] == model.mask_id).all()
    masked_counts = [int((x == model.mask_id).sum()) for x in traj]
    assert masked_counts == sorted(masked_counts, reverse=True) and masked_counts[-1] == 0


def test_text_denoiser_rejects_bad_input():
    with pytest.raises(ValueError, match="divisible"):
        TextDenoiser(10, n_embd=30, n_head=4)
    model = TextDenoiser(10, block_size=8, n_layer=1, n_head=2, n_embd=16)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        model(torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        sample_text(model, 1, temperature=0)


def test_masking_times_are_one_per_stratum():
    t = masking_times(8, t_min=1e-9, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.floor(t * 8).sort().values, torch.arange(8.0))


def test_each_row_of_masking_times_is_uniform_on_t_min_to_1():
    g, t_min = torch.Generator().manual_seed(0), 0.1
    draws = torch.stack([masking_times(4, t_min, generator=g) for _ in range(2000)])   # (2000, 4)
    for row in draws.T:  # without the shuffled strata, row 0 would lie in [0.1, 0.325) every time
        assert scipy.stats.kstest(row.numpy(), scipy.stats.uniform(t_min, 1 - t_min).cdf).pvalue > 1e-3


class CopyLeft(torch.nn.Module):
    """Predicts the token on its left with probability 0.9 when that token is visible, else the uniform law."""

    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size, self.mask_id, self.block_size = vocab_size, vocab_size, 64

    def forward(self, idx):
        V, left = self.vocab_size, idx[:, :-1]
        copy = torch.full((*left.shape, V), math.log(0.1 / (V - 1))).scatter(-1, left.clamp(max=V - 1)[..., None],
                                                                               math.log(0.9))
        logits = torch.zeros(*idx.shape, V)
        logits[:, 1:] = torch.where((left != self.mask_id)[..., None], copy, 0.0)
        return logits


def copy_left_bound(x0, mean_t):
    """E[loss] of CopyLeft per row at masking rate t, linear in t, so its mean over t is its value at mean_t.

    A masked token costs log V when it is the first or its left neighbour is masked too (probability t),
    else -log 0.9 (it equals its left neighbour) or -log(0.1 / (V - 1)); its 1/t weight cancels the t of
    being masked at all.
    """
    V, L = 5, x0.shape[1]
    copy_nats = torch.where(x0[:, 1:] == x0[:, :-1], -math.log(0.9), -math.log(0.1 / (V - 1)))   # (B, L - 1)
    mean_t = torch.as_tensor(mean_t, dtype=torch.float64)
    return (math.log(V) + ((1 - mean_t[:, None]) * copy_nats + mean_t[:, None] * math.log(V)).sum(1)) / L


def test_masked_diffusion_loss_of_a_fixed_batch_averages_to_that_batchs_bound():
    x0 = torch.stack([torch.zeros(16, dtype=torch.long), torch.randint(0, 5, (16,), generator=torch.Generator()
                      .manual_seed(1)), torch.randint(0, 5, (16,), generator=torch.Generator().manual_seed(2)),
                      torch.arange(16) % 2])                          # copy-friendly first row, copy-hostile last
    t_min, B = 0.05, 4                                               # t_min bounds the 1/t weights: less noise
    exact = float(copy_left_bound(x0, [(1 + t_min) / 2] * B).mean())           # t ~ U[t_min, 1] for every row
    row_strata = float(copy_left_bound(x0, [t_min + (1 - t_min) * (i + 0.5) / B for i in range(B)]).mean())
    g = torch.Generator().manual_seed(0)
    losses = torch.tensor([float(masked_diffusion_loss(CopyLeft(5), x0, t_min=t_min, generator=g)) for _ in range(3000)])
    tolerance = 4 * float(losses.std()) / math.sqrt(len(losses))
    assert abs(float(losses.mean()) - exact) < tolerance
    assert abs(row_strata - exact) > 5 * tolerance       # row i fed from stratum i only would be caught


def test_alibi_bias_heads_look_one_way_and_penalise_distance():
    bias = alibi_bias(5, 4, causal=False)
    assert torch.isinf(bias[0, 2, 3]) and torch.isinf(bias[1, 2, 1])          # head 0 looks left, head 1 right
    assert torch.isinf(bias[0, 2, 2]) and torch.isinf(bias[1, 2, 2])          # ... strictly: not at itself
    assert bias[0, 2, 1] == bias[1, 2, 3] == 0 and bias[0, 2, 0] == -1.0 and bias[2, 2, 0] == -1 / 4
    causal = alibi_bias(5, 4, causal=True)
    assert torch.isinf(causal[1, 2, 3]) and causal[1, 2, 2] == 0 and causal[1, 2, 1] == -1.0 and causal[3, 2, 1] == -0.25


def test_bidirectional_edges_with_nothing_on_one_side_stay_finite():
    model = TextDenoiser(10, block_size=8, n_layer=2, n_head=2, n_embd=16).eval()
    assert torch.isfinite(model(torch.randint(0, 11, (2, 8)))).all()


def test_masked_lm_loss_is_the_mean_masked_cross_entropy():
    x0 = torch.randint(0, 7, (6, 40))
    assert masked_lm_loss(Uniform(7, 40), x0, generator=torch.Generator().manual_seed(0)).item() == pytest.approx(math.log(7))
    model = TextDenoiser(7, block_size=40, n_layer=1, n_head=2, n_embd=16)
    loss = masked_lm_loss(model, x0, t_max=0.3, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    t = 0.3 * masking_times(6, generator=g)
    x_t, masked = absorb_tokens(x0, t, 7, generator=g)
    expected = torch.nn.functional.cross_entropy(model(x_t)[masked], x0[masked])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6) and float(t.max()) <= 0.3


def test_infill_by_span_hides_the_same_number_of_tokens_per_length():
    ids = torch.randint(0, 10, (16 * 12,))
    model = TextDenoiser(10, block_size=16, n_layer=1, n_head=2, n_embd=16).eval()
    out = infill_by_span(model, ids, (1, 2, 4), hidden=8)
    assert {s: tuple(nats.shape) for s, (nats, _) in out.items()} == {1: (8, 1), 2: (4, 2), 4: (2, 4)}
    nats, guess = infill(model, ids[:32].view(2, 16), 6, 4)
    assert torch.equal(out[4][0], nats) and torch.equal(out[4][1], guess == ids[:32].view(2, 16)[:, 6:10])
    with pytest.raises(ValueError, match="windows"):
        infill_by_span(model, ids, (1,), hidden=100)


def test_infill_uses_the_right_context_only_when_bidirectional():
    windows = torch.randint(0, 10, (3, 16))
    changed = windows.clone()
    changed[:, 12:] = (changed[:, 12:] + 1) % 10                                 # text after the span differs
    for causal in (True, False):
        torch.manual_seed(0)
        model = TextDenoiser(10, block_size=16, n_layer=1, n_head=2, n_embd=16, causal=causal).eval()
        nats, guess = infill(model, windows, 6, 4)
        nats2, _ = infill(model, changed, 6, 4)
        assert nats.shape == guess.shape == (3, 4) and int(guess.max()) < 10
        assert torch.allclose(nats, nats2, atol=1e-5) == causal


@pytest.mark.parametrize("t", [0.0, 1.5, float("nan")])
def test_masked_diffusion_loss_refuses_times_outside_0_to_1(t):
    # t = 0 would divide an empty masked sum by 0: a nan loss instead of an error
    with pytest.raises(ValueError, match=r"t must lie in \(0, 1\]"):
        masked_diffusion_loss(Uniform(7), torch.zeros(2, 4, dtype=torch.long), t=torch.tensor([0.5, t]))


@pytest.mark.parametrize("call, message", [
    (lambda: absorb_tokens(torch.tensor([[1, 7]]), torch.zeros(1), 7), "x0 holds token id 7 >= mask_id=7"),
    (lambda: absorb_tokens(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long), 7), "int64"),
    (lambda: absorb_tokens(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2), -1), "mask_id must be"),
    (lambda: masked_diffusion_loss(Uniform(7), torch.zeros(0, 3, dtype=torch.long)), r"x0 is empty, shape \(0, 3\)"),
    (lambda: masked_lm_loss(Uniform(7), torch.zeros(2, 0, dtype=torch.long)), r"x0 is empty, shape \(2, 0\)"),
    (lambda: diffusion_bound(Uniform(7), []), "ids is empty"),
    (lambda: TextDenoiser(7, causal="yes"), "causal must be a bool"),
    (lambda: TextDenoiser(7, block_size=8, n_layer=1, n_head=2, n_embd=8)(torch.zeros(1, 0, dtype=torch.long)),
     r"idx is empty, shape \(1, 0\)"),
])
def test_text_diffusion_names_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_infill_and_infill_by_span_name_bad_spans():
    model = TextDenoiser(10, block_size=8, n_layer=1, n_head=2, n_embd=8).eval()
    windows, ids = torch.randint(0, 10, (2, 8)), torch.randint(0, 10, (64,))
    for start, length, name in ((0, 2, "start"), (1.5, 2, "start"), (6, 3, "length"), (1, 0, "length")):
        with pytest.raises(ValueError, match=f"{name} must be an int"):
            infill(model, windows, start, length)
    with pytest.raises(ValueError, match="windows must hold integer"):
        infill(model, windows.float(), 1, 2)
    for spans in ([], [0], [7], ["2"]):
        with pytest.raises(ValueError, match="spans must"):
            infill_by_span(model, ids, spans, hidden=4)


def test_ar_loss_names_targets_outside_the_vocabulary():
    model = TextDenoiser(10, block_size=8, n_layer=1, n_head=2, n_embd=8, causal=True)
    x, y = torch.randint(0, 10, (2, 4)), torch.randint(0, 10, (2, 4))
    y[1, 2] = 12
    with pytest.raises(ValueError, match=r"y holds token ids in \[\d+, 12\]"):
        ar_loss(model, x, y)
