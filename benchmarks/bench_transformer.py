"""Transformer layers: our EncoderLayer (on lmcourse.attention.MultiHeadAttention) vs torch.nn.TransformerEncoderLayer.

Same weights (copied with `from_torch`), batch 8, n_embd 256, 8 heads, n_inner 1024, pre-norm; forward time in
inference (no gradients) and a training step (forward + backward). torch's inference path may use its
fused "fast path" kernel, which is what a user of torch gets; ratio = torch time / our time (> 1: ours faster).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.timing import best_seconds
from lmcourse.transformer import EncoderLayer

B, D, H, F = 8, 256, 8, 1024


def run(fast: bool) -> list[dict]:
    torch.manual_seed(0)
    rows = []
    repeats = 3 if fast else 10
    for T in ([64] if fast else [64, 256]):
        ref = nn.TransformerEncoderLayer(D, H, F, dropout=0.0, batch_first=True, norm_first=True)
        ours = EncoderLayer.from_torch(ref)
        x = torch.randn(B, T, D)
        ref.eval(), ours.eval()
        with torch.no_grad():
            same = torch.allclose(ours(x)[0], ref(x), atol=1e-4)
            t_ref = best_seconds(lambda: ref(x), repeats)
            t_ours = best_seconds(lambda: ours(x), repeats)
        rows.append({"benchmark": f"encoder layer inference, T={T}", "ours": f"{t_ours * 1e3:.2f} ms",
                     "reference": f"{t_ref * 1e3:.2f} ms (torch)", "ratio": round(t_ref / t_ours, 2),
                     "note": f"outputs equal: {same}"})
        ref.train(), ours.train()
        t_ref = best_seconds(lambda: ref(x).sum().backward(), repeats)
        t_ours = best_seconds(lambda: ours(x)[0].sum().backward(), repeats)
        rows.append({"benchmark": f"encoder layer train step, T={T}", "ours": f"{t_ours * 1e3:.2f} ms",
                     "reference": f"{t_ref * 1e3:.2f} ms (torch)", "ratio": round(t_ref / t_ours, 2),
                     "note": "forward + backward"})
    return rows
