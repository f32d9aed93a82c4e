"""Train the course's GPT on several processes at once (data parallel). Launch it with torchrun:

    torchrun --nproc-per-node 2 -m lmcourse.scale_out --steps 100 --out runs/ddp     # 2 CPU processes or GPUs
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
             -m lmcourse.scale_out --global-batch 512 --out runs/ddp                  # 2 machines x 8 GPUs

Every process trains the same GPT on its shard of each global batch (see `lmcourse.distributed`), with AdamW,
--warmup-steps of linear warm-up to --lr and cosine decay to lr/10 by the last step.
Rank 0 writes `checkpoint.pt` and `result.json` (losses averaged over all processes, tokens/s, each step's seconds,
a sha256 of the initial weights);
every rank writes `rank<r>.json` with a sha256 of its weights, which must all agree.

    torchrun --nproc-per-node 1 -m lmcourse.scale_out --accumulate 2 --out runs/control

is the control of a 2-process run: one process reads, at every step, the shards that 2 processes would read, and
accumulates their gradients (each loss scaled by 1/2) before its one optimizer step, with no all-reduce. With
the threads (OMP_NUM_THREADS) of one of those processes it takes their steps bit for bit; other thread counts round
differently. Three checks take one batch or none, and stop:

    torchrun --nproc-per-node 2 -m lmcourse.scale_out --allreduce-check --out runs/check    # allreduce<r>.json
    torchrun --nproc-per-node 2 -m lmcourse.scale_out --no-sync-check --out runs/check      # no_sync<r>.json
    torchrun --nproc-per-node 2 -m lmcourse.scale_out --time-allreduce 100 --out runs/check # allreduce_seconds<r>.json

--allreduce-check: how far DDP's gradients are from gradients all-reduced by hand; --no-sync-check: gradient
accumulation under DDP with and without `no_sync()`, its all-reduces counted; --time-allreduce: the seconds of
single all-reduces of a tensor the size of the GPT's gradient.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

from lmcourse import distributed
from lmcourse.core import seed_everything
from lmcourse.data import corpus_tokenizer, load_corpus
from lmcourse.files import atomic_write_text
from lmcourse.gpt import GPT, GPTConfig
from lmcourse.sequences import Windows
from lmcourse.train import Batch, History, cosine_schedule

GRAD_CLIP = 1.0            # every step clips the gradient norm to this, after DDP's all-reduce
NO_SYNC_MICRO_BATCHES = 4  # --no-sync-check: micro-batches per rank
ALLREDUCE_WARMUP = 10      # --time-allreduce: untimed all-reduces first (connections, buffers, caches)


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
    parser.add_argument("--accumulate", type=int, default=1, metavar="K",
                        help="on 1 process: read the shards of K processes at every step and accumulate their "
                             "gradients (the control of a K-process run)")
    parser.add_argument("--allreduce-check", action="store_true",
                        help="compare DDP's gradients on one batch with gradients all-reduced by hand, then stop")
    parser.add_argument("--no-sync-check", action="store_true",
                        help=f"accumulate {NO_SYNC_MICRO_BATCHES} micro-batches per rank under DDP with and without "
                             "no_sync(), count the all-reduces, compare with one big batch, then stop")
    parser.add_argument("--time-allreduce", type=int, default=0, metavar="REPEATS",
                        help="time REPEATS all-reduces of a tensor the size of the GPT's gradient, then stop")
    args = parser.parse_args(argv)

    rank, world, device = distributed.setup()
    if args.accumulate != 1 and (world != 1 or args.accumulate < 1 or args.global_batch % args.accumulate):
        raise ValueError(f"--accumulate {args.accumulate} needs 1 process (got {world}) and a --global-batch "
                         f"({args.global_batch}) it divides: it is the 1-process control of a K-process run "
                         "(under DDP, see --no-sync-check)")
    seed_everything(args.seed)  # identical initial weights on every rank
    tokenizer = corpus_tokenizer("wiki")
    dataset = Windows(tokenizer.encode(load_corpus("wiki", "train")[: args.max_chars]), args.block_size)
    config = GPTConfig(tokenizer.vocab_size, args.block_size, args.n_layer, args.n_head, args.n_embd)
    model = GPT(config).to(device)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.allreduce_check or args.no_sync_check or args.time_allreduce:
        run_checks(args, model, dataset, rank, device)
    else:
        train_and_report(args, model, dataset, rank, world, device)
    distributed.teardown()


def run_checks(args: argparse.Namespace, model: GPT, dataset: Windows, rank: int, device: torch.device) -> None:
    """The checks that --allreduce-check, --no-sync-check and --time-allreduce ask for, each writing its json."""
    if args.allreduce_check:
        shard = next(distributed.sharded_batches(dataset, args.global_batch, seed=args.seed))
        gap = allreduce_gap(model, shard, device)
        atomic_write_text(args.out / f"allreduce{rank}.json", json.dumps({"rank": rank, "max_abs_difference": gap}))
    if args.no_sync_check:
        shard = next(distributed.sharded_batches(dataset, args.global_batch, seed=args.seed))
        whole = next(distributed.sharded_batches(dataset, args.global_batch, seed=args.seed, rank=0, world_size=1))
        found = no_sync_check(model, shard, whole, device)
        atomic_write_text(args.out / f"no_sync{rank}.json", json.dumps({"rank": rank, **found}))
    if args.time_allreduce:
        n_gradients = sum(p.numel() for p in model.parameters())
        seconds = distributed.time_allreduce(n_gradients, args.time_allreduce, device, warmup=ALLREDUCE_WARMUP)
        atomic_write_text(args.out / f"allreduce_seconds{rank}.json", json.dumps(
            {"rank": rank, "n_elements": n_gradients, "warmup": ALLREDUCE_WARMUP, "seconds": seconds}))


def train_and_report(args: argparse.Namespace, model: GPT, dataset: Windows, rank: int, world: int,
                     device: torch.device) -> None:
    """Train for --steps (under DDP, or accumulating on 1 process) and write rank<r>.json, and on rank 0
    checkpoint.pt and result.json."""
    initial_sha256 = distributed.parameters_sha256(model)   # before any step: lets a reader rebuild the start point
    start = time.perf_counter()
    # AdamW at the full rate from step 0 can blow the loss up above the untrained one: warm up first
    schedule = cosine_schedule(args.lr, args.steps, warmup_steps=min(args.warmup_steps, args.steps), min_lr=args.lr / 10)
    optimizer = model.configure_optimizer(args.lr, device=device)
    if args.accumulate > 1:   # the shards that `accumulate` ranks would read, one micro-batch each
        shards = [distributed.sharded_batches(dataset, args.global_batch, seed=args.seed, rank=r,
                                              world_size=args.accumulate) for r in range(args.accumulate)]
        history = train_accumulating(model, zip(*shards), optimizer=optimizer, steps=args.steps, lr_schedule=schedule)
    else:
        batches = distributed.sharded_batches(dataset, args.global_batch, seed=args.seed)
        history = distributed.train_ddp(model, batches, optimizer=optimizer, steps=args.steps, lr_schedule=schedule,
                                        grad_clip=GRAD_CLIP, checkpoint_path=None,
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
        step_seconds = [b - a for a, b in zip([0.0] + history.seconds, history.seconds)]
        atomic_write_text(args.out / "result.json", json.dumps({
            "world_size": world, "accumulate": args.accumulate, "device": device.type, "seconds": seconds,
            "tokens_per_second": tokens / seconds, "step_seconds": step_seconds,
            "loss": (losses / world).tolist(), "initial_weights_sha256": initial_sha256}))


def train_accumulating(model: GPT, micro_batch_groups: Iterator[tuple[Batch, ...]], *, optimizer: torch.optim.Optimizer,
                       steps: int, lr_schedule: Callable[[int], float]) -> History:
    """`lmcourse.train.train`'s steps on one process, each from the gradients of a group of micro-batches accumulated
    (`distributed.backward_micro_batches`): what the ranks of a DDP run compute together, without the all-reduce.

    micro_batch_groups: per step, k micro-batches (inputs (B, T), targets (B, T)), e.g. the shards of k ranks.
    Returns the History of the losses (the mean over each step's micro-batches) and seconds.
    """
    device = next(model.parameters()).device
    history, start = History(), time.perf_counter()
    model.train()
    for step, group in zip(range(steps), micro_batch_groups):
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr_schedule(step)
        optimizer.zero_grad(set_to_none=True)
        loss = distributed.backward_micro_batches(model, [tuple(t.to(device) for t in batch) for batch in group])
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        history.step.append(step)
        history.loss.append(loss)
        history.lr.append(optimizer.param_groups[0]["lr"])
        history.seconds.append(time.perf_counter() - start)
    return history


def ddp_copy(model: GPT, device: torch.device) -> DistributedDataParallel:
    """A fresh DDP wrapper around a copy of `model`, which stays untouched."""
    return DistributedDataParallel(copy.deepcopy(model), device_ids=[device.index] if device.type == "cuda" else None)


def allreduce_gap(model: GPT, batch: Batch, device: torch.device) -> float:
    """Largest |DDP gradient - hand all-reduced gradient| over all parameters, for one batch shard per rank."""
    ddp = ddp_copy(model, device)
    x, y = (t.to(device) for t in batch)
    ddp(x, y)[1].backward()                         # DDP all-reduces during backward
    model(x, y)[1].backward()
    distributed.average_gradients(model)            # the same, by hand, after backward
    return max((a.grad - b.grad).abs().max().item() for a, b in zip(ddp.module.parameters(), model.parameters()))


def counting_allreduce_hook(calls, bucket):   # no annotations: DDP refuses them as the strings this module makes
    """A DDP comm hook: DDP's own all-reduce of one bucket of gradients (the mean over the ranks), noted in `calls`.

    calls: a list[int], the state given to `register_comm_hook`; bucket: a `dist.GradBucket`. Returns a
    `torch.futures.Future[torch.Tensor]` of the bucket's averaged gradients."""
    calls.append(bucket.index())
    return default_hooks.allreduce_hook(None, bucket)


def accumulate_synced(ddp: DistributedDataParallel, micro_batches: list[Batch]) -> None:
    """Accumulation as on one process: every micro-batch's backward all-reduces."""
    for batch in micro_batches:
        (ddp(*batch)[1] / len(micro_batches)).backward()


def accumulate_no_sync_backward_only(ddp: DistributedDataParallel, micro_batches: list[Batch]) -> None:
    """The usual slip: `no_sync()` around the backward only, the forward outside it."""
    for i, batch in enumerate(micro_batches):
        loss = ddp(*batch)[1] / len(micro_batches)
        with ddp.no_sync() if i < len(micro_batches) - 1 else contextlib.nullcontext():
            loss.backward()


ACCUMULATION_RECIPES = {"without no_sync": accumulate_synced,
                        "no_sync around the forward and backward": distributed.backward_micro_batches,
                        "no_sync around the backward only": accumulate_no_sync_backward_only}


def no_sync_check(model: GPT, shard: Batch, whole: Batch, device: torch.device) -> dict[str, dict[str, float]]:
    """Gradient accumulation under DDP, each recipe of ACCUMULATION_RECIPES on this rank's shard (inputs (B, T),
    targets (B, T)) cut into NO_SYNC_MICRO_BATCHES micro-batches: how many bucket all-reduces it starts, and how far
    its gradient is from one backward pass over `whole`, the global batch (||difference|| / ||gradient||)."""
    if len(shard[0]) % NO_SYNC_MICRO_BATCHES:
        raise ValueError(f"--no-sync-check cuts each rank's shard of {len(shard[0])} sequences into "
                         f"{NO_SYNC_MICRO_BATCHES} equal micro-batches: use a --global-batch of the number of processes "
                         f"x a multiple of {NO_SYNC_MICRO_BATCHES}")
    reference = copy.deepcopy(model)
    reference(*(t.to(device) for t in whole))[1].backward()
    want = torch.cat([p.grad.flatten() for p in reference.parameters()]).double()
    micro_batches = list(zip(*(t.to(device).chunk(NO_SYNC_MICRO_BATCHES) for t in shard)))
    allreduces, relative_gap = {}, {}
    for name, recipe in ACCUMULATION_RECIPES.items():
        ddp, calls = ddp_copy(model, device), []
        ddp.register_comm_hook(calls, counting_allreduce_hook)
        recipe(ddp, micro_batches)
        got = torch.cat([p.grad.flatten() for p in ddp.module.parameters()]).double()
        allreduces[name] = len(calls)
        relative_gap[name] = ((got - want).norm() / want.norm()).item()
    return {"micro_batches": NO_SYNC_MICRO_BATCHES, "allreduces": allreduces, "relative_gap": relative_gap}


if __name__ == "__main__":
    main()
