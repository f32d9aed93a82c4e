"""The hand-written LSTM (a Python loop over time of gate-by-gate cells) against torch's fused nn.LSTM.

Same weights, same (batch, time, features) input, forward + backward. The ratio is reference time / our time
(>1 would mean ours is faster; expect well below 1: the teaching version pays one Python step per time step,
torch's kernel fuses the gates and, on CUDA, runs cuDNN).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.timing import best_seconds
from lmcourse import get_device
from lmcourse.rnn import LSTM


def _time(module: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Seconds for the fastest forward + backward."""
    return best_seconds(lambda: module(x)[0].sum().backward(), repeats, x.device)


def run(fast: bool) -> list[dict]:
    device = get_device()
    batch, T, I, H = (16, 32, 32, 64) if fast else (32, 128, 64, 256)
    repeats = 3 if fast else 10
    torch.manual_seed(0)
    ref = nn.LSTM(I, H, batch_first=True).to(device)
    ours = LSTM(I, H).to(device)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(batch, T, I, device=device)
    with torch.no_grad():
        max_diff = (ours(x)[0] - ref(x)[0]).abs().max().item()
    t_ours, t_ref = _time(ours, x, repeats), _time(ref, x, repeats)
    tokens = batch * T
    kernel = "cuDNN" if device.type == "cuda" else f"fused {device.type} kernel"
    return [{"benchmark": f"LSTM forward+backward, B={batch} T={T} I={I} H={H} on {device.type}",
             "ours": f"{tokens / t_ours:,.0f} tokens/s", "reference": f"{tokens / t_ref:,.0f} tokens/s (nn.LSTM, {kernel})",
             "ratio": f"{t_ref / t_ours:.2f}", "note": f"same weights, max |output difference| {max_diff:.1e}"}]
