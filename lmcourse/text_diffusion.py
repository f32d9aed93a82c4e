"""Masked (absorbing-state) diffusion for text, and a same-sized autoregressive baseline.

Forward process: at time t in [0, 1] each token is independently replaced by [MASK] with
probability t (the linear schedule alpha_t = 1 - t of MDLM / RADD). The reverse model sees the
partly masked sequence (bidirectionally) and predicts the clean token at every masked position.

The continuous-time ELBO (Sahoo et al. 2024, Shi et al. 2024) is a weighted masked cross-entropy:

    -log p(x) <= integral_0^1 (1/t) E_{x_t ~ q(.|x, t)} [ sum_{i masked} -log p_theta(x_i | x_t) ] dt

so `masked_diffusion_loss` is an unbiased estimate of an upper bound on nats per token.
Sampling runs the process backwards: start all-masked, and on the way from t to s < t reveal each
still-masked token with probability (t - s) / t, drawing it from the model's prediction.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class TextDenoiser(nn.Module):
    """A small pre-norm Transformer over tokens (B, T) -> logits (B, T, vocab_size).

    causal=False: the masked-diffusion denoiser; its input vocabulary has one extra id, `mask_id`.
    causal=True: the same network as a next-token (autoregressive) language model, the baseline.
    """

    def __init__(self, vocab_size: int, block_size: int = 64, n_layer: int = 2, n_head: int = 4,
                 n_embd: int = 128, dropout: float = 0.0, causal: bool = False):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")
        self.vocab_size, self.block_size, self.causal = vocab_size, block_size, causal
        self.mask_id = vocab_size                                   # the absorbing state
        self.tok = nn.Embedding(vocab_size + 1, n_embd)
        self.pos = nn.Embedding(block_size, n_embd)
        layer = nn.TransformerEncoderLayer(n_embd, n_head, 4 * n_embd, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, n_layer, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size={self.block_size}; crop the input")
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))        # (B, T, n_embd)
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=idx.device) if self.causal else None
        x = self.blocks(x, mask=mask, is_causal=self.causal)
        return self.head(self.norm(x))                                          # (B, T, vocab_size)


def mask_tokens(x0: torch.Tensor, t: torch.Tensor, mask_id: int,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward process q(x_t | x_0): each token of x0 (B, L) becomes mask_id with probability t (B,).

    Returns (x_t (B, L), masked (B, L) bool).
    """
    if x0.dim() != 2:
        raise ValueError(f"x0 must have shape (B, L), got {tuple(x0.shape)}")
    if t.shape != (x0.shape[0],):
        raise ValueError(f"t must have shape ({x0.shape[0]},), one time per sequence, got {tuple(t.shape)}")
    if float(t.min()) < 0 or float(t.max()) > 1:
        raise ValueError(f"t must lie in [0, 1], got values in [{float(t.min())}, {float(t.max())}]")
    u = torch.rand(x0.shape, device=x0.device, generator=generator)
    masked = u < t[:, None]
    return torch.where(masked, torch.full_like(x0, mask_id), x0), masked


def masked_diffusion_loss(model: TextDenoiser, x0: torch.Tensor, t: torch.Tensor | None = None,
                          t_min: float = 1e-3) -> torch.Tensor:
    """The continuous-time ELBO estimate, in nats per token: mean over the batch of
    (1/t) * sum over masked positions of -log p(x0_i | x_t), divided by L.

    t (B,): the times to use; by default stratified ("low-discrepancy") draws in [t_min, 1].
    """
    B, L = x0.shape
    if t is None:
        t = (torch.rand((), device=x0.device) + torch.arange(B, device=x0.device)) / B   # one per stratum
        t = t_min + (1 - t_min) * t
    x_t, masked = mask_tokens(x0, t, model.mask_id)
    logits = model(x_t)                                                           # (B, L, V)
    nll = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")            # (B, L)
    return ((nll * masked).sum(1) / t / L).mean()


@torch.no_grad()
def diffusion_bound(model: TextDenoiser, ids, block_size: int | None = None, n_times: int = 8,
                    batch_size: int = 32, device: torch.device | str = "cpu", max_tokens: int | None = None,
                    seed: int = 0) -> float:
    """The ELBO bound in nats/token on held-out `ids`, in consecutive windows of block_size.

    Each window is scored at n_times stratified times t (a Monte Carlo estimate of the integral).
    It upper-bounds the model's -log p per token: compare with an AR model's exact cross-entropy
    knowing that the diffusion number is a bound, not a likelihood.
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    block_size = block_size or model.block_size
    if max_tokens is not None:
        ids = ids[:max_tokens]
    n_windows = len(ids) // block_size
    if n_windows < 1:
        raise ValueError(f"ids needs at least block_size={block_size} tokens, got {len(ids)}")
    if n_times < 1:
        raise ValueError(f"n_times must be >= 1, got {n_times}")
    windows = ids[: n_windows * block_size].view(n_windows, block_size)
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for k in range(n_times):
        for first in range(0, n_windows, batch_size):
            x0 = windows[first:first + batch_size].to(device)
            u = (torch.rand(len(x0), generator=gen) + k) / n_times                 # stratum k of n_times
            t = (1e-3 + (1 - 1e-3) * u).to(device)
            total += float(masked_diffusion_loss(model, x0, t=t)) * len(x0)
    return total / (n_times * n_windows)


@torch.no_grad()
def sample_text(model: TextDenoiser, n: int, length: int | None = None, steps: int = 64,
                temperature: float = 1.0, device: torch.device | str = "cpu",
                generator: torch.Generator | None = None, return_trajectory: bool = False):
    """Iterative unmasking: from all-[MASK] at t = 1 to t = 0 in `steps` equal steps. Returns ids (n, length)."""
    length = length or model.block_size
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    x = torch.full((n, length), model.mask_id, dtype=torch.long, device=device)
    trajectory = [x.cpu()] if return_trajectory else None
    times = torch.linspace(1, 0, steps + 1)
    for t, s in zip(times[:-1].tolist(), times[1:].tolist()):
        masked = x == model.mask_id
        probs = F.softmax(model(x).float() / temperature, dim=-1)                 # (n, L, V)
        draw = torch.multinomial(probs.view(-1, probs.shape[-1]), 1, generator=generator).view(n, length)
        reveal = masked & (torch.rand(x.shape, device=device, generator=generator) < (t - s) / t)
        x = torch.where(reveal, draw, x)
        if return_trajectory:
            trajectory.append(x.cpu())
    return (x, trajectory) if return_trajectory else x


def ar_loss(model: TextDenoiser, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of a causal TextDenoiser on a batch (x, y) of shifted windows."""
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def nats_to_bits(nats: float) -> float:
    """Convert nats to bits."""
    return nats / math.log(2)
