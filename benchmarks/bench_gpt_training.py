"""GPT training throughput: our GPT vs transformers' GPT2LMHeadModel with the same weights, and MFU on CUDA.

Both models are built from one config (no download): the transformers model first, ours copied from it with
`GPT.from_hf`, so the first losses agree. A step is forward + backward + AdamW. On CUDA both run under bf16
autocast and ours is also `torch.compile`d; model-FLOPs utilisation (MFU) = tokens/s x training FLOPs per
token (`GPT.flops_per_token()["exact"]`) / the GPU's dense bf16 peak. On CPU there is no meaningful peak, so
only the ratio is reported. ratio = our tokens/s / reference tokens/s (> 1: ours faster).
"""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from lmcourse.core import get_device, peak_flops
from lmcourse.gpt import GPT


def _sizes(device: torch.device, fast: bool) -> dict:
    if device.type == "cuda" and not fast:  # GPT-2 small, about 124M parameters
        return dict(vocab=50304, block=1024, layers=12, heads=12, width=768, batch=16, steps=20)
    if fast:
        return dict(vocab=512, block=64, layers=2, heads=2, width=64, batch=4, steps=3)
    return dict(vocab=1024, block=128, layers=4, heads=4, width=256, batch=8, steps=10)


def _tokens_per_second(model, step, batch: torch.Tensor, steps: int, device: torch.device) -> tuple[float, float]:
    """(tokens/s over `steps` steps after two warm-up steps, the first loss)."""
    first = step(model, batch)
    step(model, batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step(model, batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch.numel() * steps / (time.perf_counter() - start), first


def _trainer(dtype: torch.dtype | None, loss_of):
    """A train step for a model: forward under autocast (if dtype), backward, AdamW step; returns the loss."""
    optimizers = {}

    def step(model, batch):
        opt = optimizers.setdefault(id(model), torch.optim.AdamW(model.parameters(), lr=1e-4))
        with torch.autocast(batch.device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_of(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def run(fast: bool) -> list[dict]:
    import transformers

    device = get_device()
    s = _sizes(device, fast)
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=s["vocab"], n_positions=s["block"], n_embd=s["width"],
                                     n_layer=s["layers"], n_head=s["heads"], resid_pdrop=0.0, embd_pdrop=0.0,
                                     attn_pdrop=0.0, attn_implementation="sdpa")
    reference = transformers.GPT2LMHeadModel(config).to(device).train()
    ours = GPT.from_hf(reference).to(device).train()
    batch = torch.randint(s["vocab"], (s["batch"], s["block"] + 1), device=device)
    dtype = torch.bfloat16 if device.type == "cuda" else None

    ref_step = _trainer(dtype, lambda m, b: F.cross_entropy(m(input_ids=b[:, :-1]).logits.flatten(0, 1).float(),
                                                            b[:, 1:].flatten()))
    our_step = _trainer(dtype, lambda m, b: m(b[:, :-1], b[:, 1:])[1])
    ref_speed, ref_loss = _tokens_per_second(reference, ref_step, batch, s["steps"], device)
    our_speed, our_loss = _tokens_per_second(ours, our_step, batch, s["steps"], device)
    name = f"GPT {s['layers']}x{s['width']}, vocab {s['vocab']}, {s['batch']}x{s['block']} tokens/step, {device.type}"
    precision = "bf16 autocast" if dtype else "fp32"
    rows = [{"benchmark": f"training step throughput, {name}, {precision}", "ours": f"{our_speed:,.0f} tokens/s",
             "reference": f"{ref_speed:,.0f} tokens/s (transformers GPT2LMHeadModel, sdpa)",
             "ratio": f"{our_speed / ref_speed:.2f}",
             "note": f"same weights; first losses {our_loss:.4f} vs {ref_loss:.4f}; {ours.num_parameters() / 1e6:.1f}M parameters "
                     "(position embeddings not counted)"}]
    if device.type == "cuda":
        compiled = torch.compile(ours)
        speed, _ = _tokens_per_second(compiled, our_step, batch, s["steps"], device)
        flops = ours.flops_per_token(s["block"])["exact"]
        peak = peak_flops(device)
        mfu = f"MFU {speed * flops / peak:.1%} of {peak / 1e12:.0f} TFLOP/s" if peak else "MFU: unknown GPU peak"
        rows.append({"benchmark": f"training step throughput, {name}, bf16 + torch.compile",
                     "ours": f"{speed:,.0f} tokens/s ({mfu})", "reference": f"{ref_speed:,.0f} tokens/s (transformers)",
                     "ratio": f"{speed / ref_speed:.2f}",
                     "note": f"{torch.cuda.get_device_name(device)}; {flops / 1e6:.0f} MFLOP/token (exact count)"})
    return rows
