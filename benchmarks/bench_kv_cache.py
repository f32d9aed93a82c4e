"""Generation with and without the KV cache: tokens per second as the continuation grows."""

from __future__ import annotations

import torch

from benchmarks.timing import best_seconds
from lmcourse.generate import generate
from lmcourse.gpt import GPT, GPTConfig


def _tokens_per_second(model: GPT, prompt: torch.Tensor, new_tokens: int, use_cache: bool, repeats: int) -> float:
    return new_tokens / best_seconds(lambda: generate(model, prompt, new_tokens, use_cache=use_cache), repeats)


def run(fast: bool) -> list[dict]:
    torch.manual_seed(0)
    # the chapter's model: 4 layers, 128 wide, a 1024-token BPE vocabulary (speed does not depend on the weights)
    model = GPT(GPTConfig(vocab_size=1024, block_size=256, n_layer=4, n_head=4, n_embd=128)).eval()
    prompt = torch.randint(1024, (1, 16))
    rows = []
    for new_tokens in ([50] if fast else [50, 100, 200]):
        cached = _tokens_per_second(model, prompt, new_tokens, True, 1 if fast else 3)
        full = _tokens_per_second(model, prompt, new_tokens, False, 1 if fast else 3)
        rows.append({"benchmark": f"greedy generation, {new_tokens} new tokens after 16 (4x128 GPT, batch 1)",
                     "ours": f"{cached:.0f} tokens/s (KV cache)", "reference": f"{full:.0f} tokens/s (no cache)",
                     "ratio": f"{cached / full:.2f}", "note": "identical tokens (tested); the cache feeds one token per step"})
    return rows
