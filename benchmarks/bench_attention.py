"""Attention: our explicit path vs our fused path vs torch.nn.MultiheadAttention, time and peak memory vs sequence length.

Forward pass of self-attention, batch 4, n_embd 256, 8 heads, causal, no gradients. Memory: on CPU, all
bytes the call allocates (torch.profiler; an upper bound on the peak); on CUDA, torch.cuda.max_memory_allocated.
Runs on CPU, and on CUDA too when a GPU is there.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.timing import best_seconds
from lmcourse.attention import MultiHeadAttention, causal_mask

B, D, H = 4, 256, 8


def _peak_bytes(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # The CPU profiler gives each op's allocations, not a reliable running peak: report everything the
    # call allocated (an upper bound on its peak, and what scales with T x T when weights are materialised).
    return sum(max(e.self_cpu_memory_usage, 0) for e in prof.events())


def run(fast: bool) -> list[dict]:
    torch.manual_seed(0)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        ref = nn.MultiheadAttention(D, H, batch_first=True).to(device).eval()
        ours = MultiHeadAttention.from_torch(ref).eval()
        lengths = [128, 256] if fast else ([128, 512, 1024, 2048] if device.type == "cpu" else [512, 2048, 8192])
        for T in lengths:
            x = torch.randn(B, T, D, device=device)
            future = ~causal_mask(T, device=device)  # nn.MultiheadAttention: True = may NOT attend
            repeats = 2 if fast else 5
            with torch.no_grad():
                fused = lambda: ours(x, x, x, is_causal=True)  # noqa: E731
                explicit = lambda: ours(x, x, x, is_causal=True, need_weights=True)  # noqa: E731
                torch_mha = lambda: ref(x, x, x, attn_mask=future, is_causal=True, need_weights=False)  # noqa: E731
                t_fused, t_explicit, t_torch = (best_seconds(f, repeats, device) for f in (fused, explicit, torch_mha))
                m_fused, m_explicit, m_torch = (_peak_bytes(f, device) / 2**20 for f in (fused, explicit, torch_mha))
            where = f"{device.type.upper()}, T={T} (B={B}, d={D}, {H} heads, causal, forward)"
            rows.append({"benchmark": f"attention time, {where}",
                         "ours": f"{1e3 * t_fused:.2f} ms fused / {1e3 * t_explicit:.2f} ms explicit",
                         "reference": f"{1e3 * t_torch:.2f} ms nn.MultiheadAttention",
                         "ratio": f"{t_torch / t_fused:.2f}",
                         "note": f"ratio: torch / our fused; explicit is {t_explicit / t_fused:.1f}x slower than fused; "
                                 "nn.MultiheadAttention needs a (T, T) causal mask, which takes it off the fused kernel"})
            rows.append({"benchmark": f"attention memory ({'allocated' if device.type == 'cpu' else 'peak'}), {where}",
                         "ours": f"{m_fused:.1f} MiB fused / {m_explicit:.1f} MiB explicit",
                         "reference": f"{m_torch:.1f} MiB nn.MultiheadAttention",
                         "ratio": f"{m_torch / max(m_fused, 1e-9):.2f}",
                         "note": f"ratio: torch / our fused; one (B, H, T, T) fp32 tensor is {B * H * T * T * 4 / 2**20:.0f} MiB: "
                                 "explicit makes ~4 (scores, masked, softmax, weights), fused none"})
    return rows


if __name__ == "__main__":
    for row in run(fast=True):
        print(row)
