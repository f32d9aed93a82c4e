"""Masked (absorbing-state) diffusion for text, and its autoregressive twin: the same network, causal.

Forward process: at time t in [0, 1] each token is independently replaced by [MASK] with
probability t. This is MDLM's log-linear noise schedule (sigma(t) = -log(1 - t), so the share of
tokens kept is alpha_t = 1 - t). The reverse model sees the partly masked sequence
(bidirectionally) and predicts the clean token at every masked position.

The continuous-time ELBO (D3PM: Austin et al. 2021; SEDD: Lou et al. 2024; MDLM: Sahoo et al. 2024;
MD4: Shi et al. 2024) is a weighted masked cross-entropy:

    -log p(x) <= integral_0^1 (1/t) E_{x_t ~ q(.|x, t)} [ sum_{i masked} -log p_theta(x_i | x_t) ] dt

which is chapter 05's masked-LM loss with a random masking rate t instead of 15 % and a 1/t weight.
`masked_diffusion_loss` estimates it without bias, so it upper-bounds nats per token. We train with
`masked_lm_loss` (the same minimiser, faster on a small budget) and score with the ELBO. Sampling runs
the process backwards: start all-masked, and on the way from t to s < t reveal each still-masked
token with the probability the forward process implies (chapter 07 derives it), drawing it from the model's prediction.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.checks import check_int, check_number, check_positive_ints, check_targets, check_token_ids, describe
from lmcourse.transformer import EncoderLayer, LearnedPositionalEncoding, init_weights

BOUND_T_MIN = 1e-3   # the bound integrates the masking rate t over [BOUND_T_MIN, 1] instead of (0, 1]


def alibi_bias(T: int, n_head: int, causal: bool) -> torch.Tensor:
    """Additive attention scores (n_head, T, T) that penalise distance, ALiBi-style (Press et al. 2022).

    Heads come in pairs; pair k pays 4^-k per position of distance beyond the nearest key the head may
    read (1, 1/4, 1/16, ...): the first pair reads the nearest characters, later pairs further.
    Bidirectional (causal=False): the first head of a pair looks strictly left (keys j < i), the second
    strictly right (j > i). A position's own token is already in its residual stream, and is [MASK]
    exactly where it must be predicted, so from the first step each head puts its largest weight on the
    nearest neighbour on its side. (The left heads of position 0 and the right heads of position T - 1
    read nothing: their output is zero.) Causal: every head looks left, the position itself included
    (j <= i), as a next-token model must.
    """
    check_positive_ints(T=T, n_head=n_head)
    i = torch.arange(T)
    offset = i[:, None] - i[None, :]                                   # (T, T): i - j, > 0 for keys on the left
    slopes = 4.0 ** -(torch.arange(n_head) // 2).float()               # (n_head,): 1, 1, 1/4, 1/4, ...
    if causal:
        allowed, distance = (offset >= 0).expand(n_head, T, T), offset.abs()
    else:
        looks_left = (torch.arange(n_head) % 2 == 0)[:, None, None]
        allowed, distance = torch.where(looks_left, offset > 0, offset < 0), offset.abs() - 1
    bias = -slopes[:, None, None] * distance                           # (n_head, T, T)
    return bias.masked_fill(~allowed, float("-inf"))


class TextDenoiser(nn.Module):
    """A pre-norm Transformer from the course's blocks (`lmcourse.transformer.EncoderLayer`):
    ids (B, T) -> logits (B, T, vocab_size).

    causal=False: the masked-diffusion denoiser; its input vocabulary has one extra id, `mask_id`.
    causal=True: the same network with a causal mask, a next-token language model (the AR twin). It is
    deliberately not `lmcourse.gpt.GPT`: the twin keeps every part of the denoiser (the distance bias, the
    extra input row, the initialisation), so that a difference between the two measures the objective alone.
    Positions enter twice: learned absolute embeddings, and a distance penalty on the attention scores
    (`alibi_bias`), without which a bidirectional model first has to discover where its neighbours are.
    """

    def __init__(self, vocab_size: int, block_size: int = 128, n_layer: int = 4, n_head: int = 4,
                 n_embd: int = 128, dropout: float = 0.0, causal: bool = False):
        super().__init__()
        check_positive_ints(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                            n_embd=n_embd)
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")
        if not isinstance(causal, bool):
            raise ValueError(f"causal must be a bool, got {causal!r}; True for the AR twin, False for the denoiser")
        self.vocab_size, self.block_size, self.causal = vocab_size, block_size, causal
        self.mask_id = vocab_size                                   # the absorbing state
        self.tok = nn.Embedding(vocab_size + 1, n_embd)
        self.pos = LearnedPositionalEncoding(n_embd, block_size)
        self.layers = nn.ModuleList(EncoderLayer(n_embd, n_head, 4 * n_embd, dropout, "gelu", norm_first=True)
                                    for _ in range(n_layer))
        self.norm = nn.LayerNorm(n_embd)                            # pre-norm: normalise the stream once at the end
        self.head = nn.Linear(n_embd, vocab_size)
        self.register_buffer("attn_bias", alibi_bias(block_size, n_head, causal), persistent=False)
        init_weights(self)                                          # GPT-2's (not its depth scaling)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        idx = check_token_ids("idx", idx, self.vocab_size + 1, ndim=2)          # mask_id is a valid input
        if idx.numel() == 0:
            raise ValueError(f"idx is empty, shape {tuple(idx.shape)}; pass at least one sequence of one token")
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size={self.block_size}; crop the input")
        x = self.pos(self.tok(idx))                                             # (B, T, n_embd)
        mask = self.attn_bias[None, :, :T, :T]                                  # (1, n_head, T, T), additive
        for layer in self.layers:
            x, _ = layer(x, mask=mask)
        return self.head(self.norm(x))                                          # (B, T, vocab_size)


def absorb_tokens(x0: torch.Tensor, t: torch.Tensor, mask_id: int,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward process q(x_t | x_0): each token of x0 (B, L) becomes mask_id with probability t (B,).

    mask_id is the absorbing state: once masked, a token stays masked. (Not chapter 05's BERT rule,
    `lmcourse.mlm.mask_tokens`, which also swaps and keeps tokens.) Returns (x_t (B, L), masked (B, L) bool).
    """
    mask_id = check_int("mask_id", mask_id, minimum=0, fix="the model's mask_id (its vocab_size)")
    x0 = check_token_ids("x0", x0, ndim=2)
    if x0.numel() and int(x0.max()) >= mask_id:
        raise ValueError(f"x0 holds token id {int(x0.max())} >= mask_id={mask_id}; x0 is clean text, its ids lie "
                         "below the mask id (mask only once: pass the original ids)")
    _check_times(t, len(x0), zero_ok=True)
    return _absorb(x0, t, mask_id, generator)


def _absorb(x0: torch.Tensor, t: torch.Tensor, mask_id: int,
            generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """absorb_tokens without the checks, for the losses that have already made them (no second pass per step)."""
    u = torch.rand(x0.shape, generator=generator, device=generator.device if generator else x0.device)
    masked = u.to(x0.device) < t[:, None]
    return torch.where(masked, torch.full_like(x0, mask_id), x0), masked


def _check_times(t: object, batch: int, zero_ok: bool) -> None:
    """Masking rates t (batch,), one per sequence, in [0, 1] (zero_ok) or in (0, 1] (the ELBO divides by t)."""
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.shape != (batch,):
        raise ValueError(f"t must be a float tensor of shape ({batch},), one time per sequence, got {describe(t)}")
    if not len(t):
        return
    low, high, nan = float(t.min()), float(t.max()), bool(t.isnan().any())
    if nan or low < 0 or high > 1 or (low == 0 and not zero_ok):
        interval = "[0, 1]" if zero_ok else "(0, 1] (the bound weighs each sequence by 1/t)"
        raise ValueError(f"t must lie in {interval}, got values in [{low}, {high}] (nan: {nan}); "
                         "draw it with masking_times")


def _check_windows(model: TextDenoiser, x0: object) -> torch.Tensor:
    """Clean windows x0 (B, L) for a loss: ids of the model's vocabulary (no mask_id), at least one token."""
    x0 = check_token_ids("x0", x0, model.vocab_size, ndim=2)
    if x0.numel() == 0:
        raise ValueError(f"x0 is empty, shape {tuple(x0.shape)}; pass at least one window of one token")
    return x0


def masking_times(batch_size: int, t_min: float = BOUND_T_MIN, device: torch.device | str = "cpu",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Stratified masking rates t (batch_size,) in [t_min, 1]: one shared uniform offset, one draw per stratum.

    The strata are dealt to the rows in a random order, so each t_i is uniform on [t_min, 1] and the loss of
    a fixed batch is an unbiased estimate of that batch's bound (without the shuffle, row 0 would always get
    the lightest masking and the last row the heaviest). A batch still spans light to heavy masking, so the
    variance of its loss drops (MDLM's "low-discrepancy sampler").
    """
    check_int("batch_size", batch_size)
    check_number("t_min", t_min, 0, 1, low_open=True, high_open=True)
    offset = torch.rand((), generator=generator)
    strata = torch.randperm(batch_size, generator=generator)                   # row i gets stratum strata[i]
    u = (offset + strata) / batch_size
    return (t_min + (1 - t_min) * u).to(device)


def masked_diffusion_loss(model: TextDenoiser, x0: torch.Tensor, t: torch.Tensor | None = None,
                          t_min: float = BOUND_T_MIN, generator: torch.Generator | None = None) -> torch.Tensor:
    """The continuous-time ELBO estimate for clean windows x0 (B, L), in nats per token.

    t (B,): the masking rates to use, in (0, 1]; by default stratified draws (`masking_times`).
    """
    x0 = _check_windows(model, x0)                                             # clean text: no mask_id
    check_number("t_min", t_min, 0, 1, low_open=True, high_open=True)
    B, L = x0.shape
    if t is None:
        t = masking_times(B, t_min, device=x0.device, generator=generator)
    _check_times(t, B, zero_ok=False)
    x_t, masked = _absorb(x0, t, model.mask_id, generator)
    nll = F.cross_entropy(model(x_t).transpose(1, 2), x0, reduction="none")   # (B, L): chapter 05's MLM loss ...
    masked_nll = (nll * masked).sum(1)                                        # ... on the masked positions only
    return (masked_nll / t).mean() / L                                        # weighted by 1/t: the ELBO


def masked_lm_loss(model: TextDenoiser, x0: torch.Tensor, t_max: float = 0.5,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The loss we train the masked diffusion LM with: chapter 05's masked-LM loss at random masking rates.

    Each clean window of x0 (B, L) is masked at its own rate t, stratified over (0, t_max] (`masking_times`);
    every masked token shows [MASK] (not chapter 05's 80/10/10 rule: no random or unchanged picks, so a visible
    token is always the true one, as in the forward process the sampler reverses); the loss is the mean
    cross-entropy over all masked tokens of the batch (a scalar, nats per masked token).
    Every mask pattern keeps a positive probability, so its minimiser is the ELBO's (the true conditional of
    each masked token given the visible ones), and the ELBO (`masked_diffusion_loss`, `diffusion_bound`)
    still scores the model. The reason to try it on a small budget (tested against the weighted loss on the text
    only in one-run trials: lmcourse.zoo.recipes.DIFFUSION_LOSS_TRIALS, printed in chapter 07): every masked
    token counts the same (the 1/t weight gives the few masked tokens of a lightly masked window a large, noisy
    weight), and the rates stay where the visible context says something about the hidden tokens.
    """
    x0 = _check_windows(model, x0)
    check_number("t_max", t_max, 0, 1, low_open=True)
    t = t_max * masking_times(len(x0), device=x0.device, generator=generator)          # (B,)
    x_t, masked = _absorb(x0, t, model.mask_id, generator)
    nll = F.cross_entropy(model(x_t).transpose(1, 2), x0, reduction="none")            # (B, L)
    return (nll * masked).sum() / masked.sum().clamp(min=1)


@torch.no_grad()
def diffusion_bound(model: TextDenoiser, ids, block_size: int | None = None, n_times: int = 8,
                    batch_size: int = 32, device: torch.device | str = "cpu", max_tokens: int | None = None,
                    seed: int = 0, t_range: tuple[float, float] = (BOUND_T_MIN, 1.0)) -> float:
    """The ELBO bound in nats/token on held-out `ids` (1-D), in consecutive windows (n, block_size).

    Each window is scored at n_times stratified times t (a Monte Carlo estimate of the integral).
    It upper-bounds the model's -log p per token: compare with an AR model's exact cross-entropy
    knowing that the diffusion number is a bound, not a likelihood.
    t_range=(low, high): score only the masking rates in [low, high] and return their contribution to
    the bound, so the parts of a split of [BOUND_T_MIN, 1], e.g. (1e-3, 0.5) and (0.5, 1), add up to it.
    """
    ids = _check_stream(model, ids)
    block_size = model.block_size if block_size is None else check_int("block_size", block_size, 1, model.block_size)
    check_positive_ints(n_times=n_times, batch_size=batch_size)
    if not (isinstance(t_range, (tuple, list)) and len(t_range) == 2):
        raise ValueError(f"t_range must be a pair (low, high) of masking rates, got {t_range!r}")
    low = check_number("t_range[0]", t_range[0], BOUND_T_MIN, 1, high_open=True,
                       fix=f"the bound starts at {BOUND_T_MIN}")
    high = check_number("t_range[1]", t_range[1], low, 1, low_open=True, fix="it must lie above t_range[0]")
    if max_tokens is not None:
        ids = ids[:check_int("max_tokens", max_tokens)]
    n_windows = len(ids) // block_size
    if n_windows < 1:
        raise ValueError(f"ids needs at least block_size={block_size} tokens, got {len(ids)}")
    windows = ids[: n_windows * block_size].view(n_windows, block_size)
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for k in range(n_times):
        for first in range(0, n_windows, batch_size):
            x0 = windows[first:first + batch_size].to(device)
            u = (torch.rand(len(x0), generator=gen) + k) / n_times                 # stratum k of n_times
            t = (low + (high - low) * u).to(device)
            total += float(masked_diffusion_loss(model, x0, t=t, generator=gen)) * len(x0)
    return total / (n_times * n_windows) * ((high - low) / (1 - BOUND_T_MIN))   # the range's part of the integral


@torch.no_grad()
def sample_text(model: TextDenoiser, n: int, length: int | None = None, steps: int = 64,
                temperature: float = 1.0, device: torch.device | str = "cpu",
                generator: torch.Generator | None = None, return_trajectory: bool = False):
    """Iterative unmasking: from all-[MASK] at t = 1 to t = 0 in `steps` equal steps. Returns ids (n, length)."""
    check_int("n", n)
    length = model.block_size if length is None else check_int("length", length, 1, model.block_size)
    check_int("steps", steps)
    check_number("temperature", temperature, 0, low_open=True)
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


@torch.no_grad()
def infill(model: TextDenoiser, windows: torch.Tensor, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the span [start, start + length) of each window (N, T), left to right, one token at a time.

    A masked-diffusion model sees the whole window with the span masked, the right-hand context
    included; a causal model sees only what lies before each position.
    Returns (nats (N, length): -log p(true token | context, true tokens of the span before it),
    guesses (N, length): the greedy fill, each token the argmax given the guesses before it).
    """
    windows = check_token_ids("windows", windows, model.vocab_size, ndim=2)
    T = windows.shape[1]
    fix = f"need 0 < start < start + length <= T={T}: a span with at least one token before it"
    check_int("start", start, 1, T - 1, fix=fix)
    check_int("length", length, 1, T - start, fix=fix)
    span = range(start, start + length)
    if model.causal:
        logits = model(windows[:, :start + length - 1])[:, start - 1:]                   # (N, length, V)
        nats = F.cross_entropy(logits.transpose(1, 2).float(), windows[:, span], reduction="none")
        guess = windows[:, :start]
        for _ in span:
            guess = torch.cat([guess, model(guess[:, -model.block_size:])[:, -1].argmax(-1, keepdim=True)], 1)
        return nats, guess[:, start:]
    truth, guess = windows.clone(), windows.clone()
    truth[:, span] = guess[:, span] = model.mask_id
    nats = torch.empty(len(windows), length, device=windows.device)
    for j, i in enumerate(span):
        logits = model(truth)[:, i]
        nats[:, j] = F.cross_entropy(logits.float(), windows[:, i], reduction="none")
        truth[:, i] = windows[:, i]                                                      # teacher forcing
        guess[:, i] = (logits if j == 0 else model(guess)[:, i]).argmax(-1)              # j = 0: the same input
    return nats, guess[:, start:start + length]


def infill_by_span(model: TextDenoiser, ids, spans, hidden: int, block_size: int | None = None,
                   device: torch.device | str = "cpu") -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """`infill` at several span lengths with the same number of hidden tokens for each.

    ids: held-out tokens (1-D), cut into consecutive windows of block_size. For each span length s in
    `spans`, the first hidden // s windows get s tokens hidden in their middle and filled left to right.
    Returns {s: (nats (hidden // s, s), correct (hidden // s, s) bool: the greedy fill equals the truth)}.
    """
    ids = _check_stream(model, ids)
    block_size = model.block_size if block_size is None else check_int("block_size", block_size, 1, model.block_size)
    check_int("hidden", hidden)
    if not isinstance(spans, (list, tuple, range)) or not spans:
        raise ValueError(f"spans must be a non-empty list of span lengths, e.g. (1, 2, 4), got {spans!r} (empty or "
                         "not a list)")
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and 1 <= s <= block_size - 2 for s in spans):
        raise ValueError(f"spans must hold ints in [1, {block_size - 2}] (a span needs a token on each side in a "
                         f"window of {block_size}), got {spans!r}")
    windows = ids[: len(ids) // block_size * block_size].view(-1, block_size)
    out = {}
    for s in spans:
        n = hidden // s
        if not 0 < n <= len(windows):
            raise ValueError(f"span {s}: need 1 to {len(windows)} windows of {block_size} tokens, "
                             f"hidden={hidden} asks for {n}")
        batch = windows[:n].to(device)
        start = (block_size - s) // 2
        nats, guess = infill(model, batch, start, s)
        out[s] = (nats.cpu(), (guess == batch[:, start:start + s]).cpu())
    return out


def ar_loss(model: TextDenoiser, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of a causal TextDenoiser on a batch (x, y) of shifted windows."""
    logits = model(x)
    y = check_targets("y", y, logits.shape[:2])
    try:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    except IndexError:  # named only when it happens: a range check would cost a pass over y every step
        check_token_ids("y", y, model.vocab_size)
        raise


def _check_stream(model: TextDenoiser, ids: object) -> torch.Tensor:
    """Held-out token ids (N,) of the model's vocabulary, at least one."""
    if isinstance(ids, (list, tuple)) and not ids:
        raise ValueError("ids is empty; pass the held-out text's token ids")
    ids = check_token_ids("ids", torch.as_tensor(ids), model.vocab_size, ndim=1)
    if not len(ids):
        raise ValueError("ids is empty; pass the held-out text's token ids")
    return ids


def nats_to_bits(nats: float) -> float:
    """Convert nats to bits (nan stays nan: a failed measurement must not become a number)."""
    if not isinstance(nats, numbers.Real) or isinstance(nats, bool):
        raise ValueError(f"nats must be a number, got {nats!r}; convert text with float()")
    return nats / math.log(2)
