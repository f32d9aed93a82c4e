"""Chapter 08 · scaling out: an all-reduce by hand, gradient accumulation, the bytes of a ring all-reduce."""

from __future__ import annotations

import copy

import torch
from torch import nn

from lmcourse.exercises.grading import Wrong, call, exercise, forbidding, generator, same_number, same_tensor

ID_ALL_REDUCE, ID_ACCUMULATE, ID_RING = "08.all_reduce_mean", "08.accumulate_gradients", "08.ring_allreduce_bytes"
# What these exercises ask the learner to write by hand, ready-made: refused while the learner's code runs.
DISTRIBUTED_REFERENCES = ("lmcourse.distributed", "torch.distributed.distributed_c10d", "torch.nn.parallel.distributed")


@exercise(ID_ALL_REDUCE, "an all-reduce of gradients, by hand", hints=[
    "After DDP's all-reduce every rank holds the same thing, for every parameter: which combination of the "
    "ranks' gradients makes each step equal to one step on the whole global batch?",
    "For each parameter name: the sum over ranks divided by the number of ranks (the world size), not by the "
    "number of parameters; return one dict per rank, all equal, in the gradients' dtype.",
    "mean = {name: sum(g[name] for g in rank_grads) / len(rank_grads) for name in rank_grads[0]}; "
    "return [{name: t.clone() for name, t in mean.items()} for _ in rank_grads].",
])
def check_all_reduce_mean(all_reduce_mean) -> None:
    g = generator(ID_ALL_REDUCE)
    shapes = {"embedding.weight": (6, 4), "linear.weight": (3, 4), "linear.bias": (3,)}
    for name, world, dtype in [("2 ranks, 3 parameters", 2, torch.float32), ("4 ranks", 4, torch.float32),
                               ("1 rank: nothing to average", 1, torch.float32), ("8 ranks, float16", 8, torch.float16)]:
        rank_grads = [{p: torch.randn(s, generator=g).to(dtype) for p, s in shapes.items()} for _ in range(world)]
        with forbidding(*DISTRIBUTED_REFERENCES):
            got = call(name, all_reduce_mean, [{p: t.clone() for p, t in r.items()} for r in rank_grads])
        if not isinstance(got, (list, tuple)) or len(got) != world:
            raise Wrong(name, f"return a list with one dict of gradients per rank ({world}), got "
                              f"{type(got).__name__}{'' if not hasattr(got, '__len__') else f' of length {len(got)}'}")
        # what lmcourse.distributed.average_gradients leaves on every rank: all_reduce(SUM), then / world_size
        want = {p: (torch.stack([r[p].double() for r in rank_grads]).sum(0) / world).to(dtype) for p in shapes}
        for rank, grads in enumerate(got):
            if not isinstance(grads, dict) or set(grads) != set(shapes):
                raise Wrong(name, f"rank {rank}: return a dict with the same parameter names as its input")
            for p in shapes:
                same_tensor(name, grads[p], want[p], atol=2e-3 if dtype == torch.float16 else 1e-6,
                            what=f"rank {rank}'s gradient of {p}")


def _model(g: torch.Generator) -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model


def _loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)  # a mean over the batch's examples


@exercise(ID_ACCUMULATE, "gradient accumulation", hints=[
    "loss_fn returns a *mean* over its micro-batch. Summing the micro-batch gradients as they are gives a "
    "gradient several times too large; each micro-batch must weigh as much as its share of the examples.",
    "For each micro-batch of n_i examples out of N in all: (loss_fn(model, batch) * n_i / N).backward(); "
    "gradients add up in .grad between calls (do not zero them in the loop). With equal sizes n_i / N = 1/k.",
    "N = sum(len(x) for x, _ in micro_batches); total = 0.0; for batch: loss = loss_fn(model, batch) * len(batch[0]) / N; "
    "loss.backward(); total += loss.item(); return total.",
])
def check_accumulate_gradients(accumulate_gradients) -> None:
    g = generator(ID_ACCUMULATE)
    for name, sizes in [("4 equal micro-batches of 8", [8, 8, 8, 8]), ("unequal micro-batches 5, 3, 8", [5, 3, 8]),
                        ("one micro-batch", [12])]:
        model = _model(g)
        learner = copy.deepcopy(model)
        x, y = torch.randn(sum(sizes), 4, generator=g), torch.randint(3, (sum(sizes),), generator=g)
        micro_batches = [(xs.clone(), ys.clone()) for xs, ys in zip(x.split(sizes), y.split(sizes))]
        with forbidding(*DISTRIBUTED_REFERENCES):
            got = call(name, accumulate_gradients, learner, micro_batches, _loss)
        full = _loss(model, (x, y))  # the reference, after the learner's answer: one backward on the whole batch
        full.backward()
        same_number(name, got, full.item(), rtol=1e-5, what="the returned loss")
        for (p_name, want), p in zip(model.named_parameters(), learner.parameters()):
            if p.grad is None:
                raise Wrong(name, f"{p_name}.grad is None: call backward() on each micro-batch's loss")
            same_tensor(name, p.grad, want.grad, atol=1e-6, what=f"the gradient of {p_name}")


@exercise(ID_RING, "the bytes of a ring all-reduce", hints=[
    "A ring all-reduce is a reduce-scatter followed by an all-gather. In each, how many steps are there, and what "
    "fraction of the gradients does a process send per step?",
    "Each phase takes N - 1 steps of 1/N of the gradient bytes (N = world_size): 2 (N - 1) / N times "
    "n_params * bytes_per_param in all, nearly independent of N.",
    "return 2 * (world_size - 1) / world_size * n_params * bytes_per_param.",
])
def check_ring_allreduce_bytes(ring_allreduce_bytes) -> None:
    from lmcourse.distributed import ring_allreduce_bytes as reference

    for n, world, width in [(1_000_000, 2, 4), (124_000_000, 8, 2), (10, 1, 4), (7, 3, 4), (355_000_000, 1024, 2)]:
        case = f"{n:,} parameters, {world} processes, {width} bytes each"
        with forbidding(*DISTRIBUTED_REFERENCES):
            got = call(case, ring_allreduce_bytes, n, world, width)
        same_number(case, got, reference(n, world, width), rtol=1e-9)
