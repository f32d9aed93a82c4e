"""Train the course's GPT on several processes at once (data parallel). Launch it with torchrun:

    torchrun --nproc-per-node 2 -m lmcourse.scale_out --steps 100 --out runs/ddp     # 2 CPU processes or GPUs
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
             -m lmcourse.scale_out --global-batch 512 --out runs/ddp                  # 2 machines x 8 GPUs

Every process trains the same GPT on its shard of each global batch (see `lmcourse.distributed`), with AdamW,
--warmup-steps of linear warm-up to --lr and cosine decay to lr/10 by the last step.
Rank 0 writes `checkpoint.pt` and `result.json` (losses averaged over all processes, tokens/s, a sha256 of the
initial weights);
every rank writes `rank<r>.json` with a sha256 of its weights, which must all agree.

    torchrun --nproc-per-node 2 -m lmcourse.scale_out --allreduce-check --out runs/check

takes one batch instead and writes how far DDP's gradients are from gradients all-reduced by hand.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from lmcourse import distributed
from lmcourse.core import seed_everything
from lmcourse.data import corpus_tokenizer, load_corpus
from lmcourse.files import atomic_write_text
from lmcourse.gpt import GPT, GPTConfig
from lmcourse.sequences import Windows
from lmcourse.train import cosine_schedule


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--global-batch", type=int, default=16, help="sequences per optimizer step, all processes together")
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW's peak learning rate")
    parser.add_argument("--warmup-steps", type=int, default=20,
                        help="steps of linear warm-up to --lr (at most --steps), then cosine decay to lr/10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-chars", type=int, default=None, help="train on the first N characters only (quick runs)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--allreduce-check", action="store_true",
                        help="compare DDP's gradients on one batch with gradients all-reduced by hand, then stop")
    args = parser.parse_args(argv)

    rank, world, device = distributed.setup()
    seed_everything(args.seed)  # identical initial weights on every rank
    tokenizer = corpus_tokenizer("wiki")
    dataset = Windows(tokenizer.encode(load_corpus("wiki", "train")[: args.max_chars]), args.block_size)
    batches = distributed.sharded_batches(dataset, args.global_batch, seed=args.seed)
    config = GPTConfig(tokenizer.vocab_size, args.block_size, args.n_layer, args.n_head, args.n_embd)
    model = GPT(config).to(device)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.allreduce_check:
        gap = allreduce_gap(model, next(batches), device)
        atomic_write_text(args.out / f"allreduce{rank}.json", json.dumps({"rank": rank, "max_abs_difference": gap}))
        distributed.teardown()
        return
    initial_sha256 = distributed.parameters_sha256(model)   # before any step: lets a reader rebuild the start point
    start = time.perf_counter()
    # AdamW at the full rate from step 0 can blow the loss up above the untrained one: warm up first
    schedule = cosine_schedule(args.lr, args.steps, warmup_steps=min(args.warmup_steps, args.steps), min_lr=args.lr / 10)
    history = distributed.train_ddp(model, batches, optimizer=model.configure_optimizer(args.lr, device=device),
                                    steps=args.steps, lr_schedule=schedule, checkpoint_path=None,
                                    desc=f"GPT on {world} process{'es' if world > 1 else ''}")
    seconds = time.perf_counter() - start
    losses = torch.tensor(history.loss, device=device)
    dist.all_reduce(losses)  # each rank's loss is over its shard: average them for the global batch's loss
    atomic_write_text(args.out / f"rank{rank}.json",
                      json.dumps({"rank": rank, "weights_sha256": distributed.parameters_sha256(model)}))
    if distributed.is_main_process():
        from lmcourse.checkpoint import save_checkpoint

        save_checkpoint(args.out / "checkpoint.pt", model, step=args.steps, world_size=world)
        tokens = args.steps * args.global_batch * args.block_size
        atomic_write_text(args.out / "result.json", json.dumps({
            "world_size": world, "device": device.type, "seconds": seconds, "tokens_per_second": tokens / seconds,
            "loss": (losses / world).tolist(), "initial_weights_sha256": initial_sha256}))
    distributed.teardown()


def allreduce_gap(model: GPT, batch: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> float:
    """Largest |DDP gradient - hand all-reduced gradient| over all parameters, for one batch shard per rank."""
    ddp = DistributedDataParallel(copy.deepcopy(model), device_ids=[device.index] if device.type == "cuda" else None)
    x, y = (t.to(device) for t in batch)
    ddp(x, y)[1].backward()                         # DDP all-reduces during backward
    model(x, y)[1].backward()
    distributed.average_gradients(model)            # the same, by hand, after backward
    return max((a.grad - b.grad).abs().max().item() for a, b in zip(ddp.module.parameters(), model.parameters()))


if __name__ == "__main__":
    main()
