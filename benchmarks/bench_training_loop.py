"""The shared training loop against a bare hand-written torch loop: what does the convenience cost?"""

from __future__ import annotations

import time

import torch
from torch import nn

from lmcourse.train import train


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(64, 64), nn.Flatten(), nn.Linear(64 * 16, 256), nn.GELU(), nn.Linear(256, 64))


def _batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randint(64, (32, 16), generator=g), torch.randint(64, (32,), generator=g)) for _ in range(n)]


def _loss(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def run(fast: bool) -> list[dict]:
    steps = 100 if fast else 1000
    batches = _batches(steps)

    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for batch in batches:
        loss = _loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    bare = time.perf_counter() - start

    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    train(model, batches, optimizer=opt, steps=steps, loss_fn=_loss, progress=False)
    ours = time.perf_counter() - start
    return [{"benchmark": f"training loop overhead, {steps} steps of a small MLP",
             "ours": f"{steps / ours:.0f} steps/s", "reference": f"{steps / bare:.0f} steps/s (bare torch loop)",
             "ratio": f"{bare / ours:.2f}", "note": "lmcourse.train.train vs the same steps written by hand"}]
