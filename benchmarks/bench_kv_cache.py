"""Generation with and without the KV cache, at two sizes: the course's small GPT and a GPT-2-small-sized one.

Greedy generation of batch 1 after a 16-token prompt, random weights (the speed of a step does not depend on
the weights' values). Without the cache every step runs the whole sequence through the model again; with it,
one token per step, its keys and values written in place into buffers allocated once. Both run the output head on
the last position only (`GPT.forward(logits_to_keep=1)`, as `generate` asks).
"""

from __future__ import annotations

import time

import torch

from lmcourse.generate import generate
from lmcourse.gpt import GPT, GPTConfig

SIZES = {  # name: (config, new-token counts in full mode, timed repeats)
    "4x128 GPT, vocab 1024": (GPTConfig(vocab_size=1024, block_size=256, n_layer=4, n_head=4, n_embd=128),
                              [50, 100, 200], 3),
    # GPT-2 small: 124M parameters. Without the cache, 200 tokens take about a minute on 2 CPU cores: one timed run
    "124M GPT-2-small config": (GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768),
                                [200], 1),
}


def _timed_generate(model: GPT, prompt: torch.Tensor, new_tokens: int, use_cache: bool, repeats: int):
    """(tokens, best seconds of `repeats` runs) after a short warm-up generation."""
    generate(model, prompt, 4, use_cache=use_cache)
    best, tokens = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = generate(model, prompt, new_tokens, use_cache=use_cache)
        best = min(best, time.perf_counter() - start)
    return tokens, best


def run(fast: bool) -> list[dict]:
    rows = []
    for name, (config, lengths, repeats) in SIZES.items():
        if fast and config.n_layer > 4:
            continue  # the smoke run skips the 124M model
        torch.manual_seed(0)
        model = GPT(config).eval()
        prompt = torch.randint(config.vocab_size, (1, 16))
        for new_tokens in ([20] if fast else lengths):
            cached, t_cached = _timed_generate(model, prompt, new_tokens, True, 1 if fast else repeats)
            full, t_full = _timed_generate(model, prompt, new_tokens, False, 1 if fast else repeats)
            if not torch.equal(cached, full):
                raise AssertionError(f"{name}: the cached and uncached tokens differ at {new_tokens} new tokens")
            rows.append({"benchmark": f"greedy generation, {new_tokens} new tokens after 16 ({name}, batch 1, CPU)",
                         "ours": f"{new_tokens / t_cached:.1f} tokens/s (KV cache)",
                         "reference": f"{new_tokens / t_full:.1f} tokens/s (no cache)",
                         "ratio": f"{t_full / t_cached:.2f}",
                         "note": f"identical tokens (checked); best of {repeats} run{'s' * (repeats > 1)}, "
                                 "cache preallocated and written in place"})
    return rows


if __name__ == "__main__":
    for row in run(fast=False):
        print(row)
