"""int8 dynamic quantisation of the chapter's GPT: size and CPU inference speed against float32."""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from benchmarks.timing import best_seconds
from lmcourse.gpt import GPT, GPTConfig


def _size_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def _tokens_per_second(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.no_grad():
        return x.numel() / best_seconds(lambda: model(x), repeats)


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` whose Linear layers hold int8 weights (activations quantised on the fly)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao is deprecated in favour of torchao; the API still works
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def run(fast: bool) -> list[dict]:
    torch.manual_seed(0)
    width = 128 if fast else 256
    model = GPT(GPTConfig(vocab_size=1024, block_size=128, n_layer=4, n_head=4, n_embd=width)).eval()
    quantized = quantize_int8(model)
    x = torch.randint(1024, (8, 128))
    repeats = 2 if fast else 5
    speed_q, speed_f = _tokens_per_second(quantized, x, repeats), _tokens_per_second(model, x, repeats)
    size_q, size_f = _size_bytes(quantized), _size_bytes(model)
    with torch.no_grad():
        drift = (quantized(x)[0] - model(x)[0]).abs().mean().item()
    name = f"4x{width} GPT, vocab 1024"
    return [{"benchmark": f"int8 dynamic quantisation, model size ({name})", "ours": f"{size_q / 1e6:.2f} MB",
             "reference": f"{size_f / 1e6:.2f} MB (float32)", "ratio": f"{size_f / size_q:.2f}",
             "note": "the tied head is stored twice once quantised"},
            {"benchmark": f"int8 dynamic quantisation, forward speed ({name}, 8x128 tokens)",
             "ours": f"{speed_q:.0f} tokens/s", "reference": f"{speed_f:.0f} tokens/s (float32)",
             "ratio": f"{speed_q / speed_f:.2f}", "note": f"mean |logit change| {drift:.3f}"}]
