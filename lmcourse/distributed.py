"""Data parallelism: the course's training loop on several processes with DistributedDataParallel.

Launch with torchrun, which starts one process per GPU (or CPU worker) and sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT for each:

    torchrun --nproc-per-node 2 my_training_script.py            # one machine
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
             --rdzv-endpoint HOST:29500 my_training_script.py    # two machines, run on each

Every process holds a full copy of the model and sees a different shard of each global batch;
after `backward()` DDP averages the gradients across processes (all-reduce), so every copy
takes the same optimizer step and stays identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lmcourse.checks import check_int
from lmcourse.core import check_positive_ints, get_device
from lmcourse.train import Batch, History, default_loss, train


def setup() -> tuple[int, int, torch.device]:
    """Join the process group that torchrun set up; return (rank, world_size, device).

    The device is `lmcourse.get_device()`'s choice ($LMCOURSE_DEVICE, else cuda > mps > cpu): on CUDA each
    process takes the GPU of its LOCAL_RANK among those CUDA_VISIBLE_DEVICES shows, and the processes talk
    through NCCL; elsewhere through gloo, on the CPU (gloo cannot all-reduce mps tensors, so mps means cpu here).
    """
    for variable in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        if variable not in os.environ:
            raise RuntimeError(f"${variable} is not set: start this script with torchrun "
                               f"(e.g. `torchrun --nproc-per-node 2 script.py`)")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = get_device()
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={local_rank} needs GPU {local_rank}, but only {torch.cuda.device_count()} "
                             "are visible: start at most one process per GPU, or set LMCOURSE_DEVICE=cpu")
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), device


def is_main_process() -> bool:
    """True on rank 0 (or when not distributed): the one process that logs and writes files."""
    return not dist.is_initialized() or dist.get_rank() == 0


def teardown() -> None:
    """Leave the process group: every rank waits for the others first (a rank that tears down while another is still
    communicating can abort gloo's threads: "terminate called without an active exception")."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def sharded_loader(dataset: Dataset, global_batch_size: int, seed: int = 0, shuffle: bool = True, *,
                   rank: int | None = None, world_size: int | None = None) -> DataLoader:
    """One epoch of batches of `global_batch_size // world_size` examples, a different shard on each process.

    Together the processes see `global_batch_size` examples per step, as one process would. The sampler
    shuffles with `seed + epoch`: call `loader.sampler.set_epoch(epoch)` before each epoch (or use
    `sharded_batches`), or every epoch repeats the first one's order. rank and world_size default to
    the process group's.
    """
    world = world_size if world_size is not None else dist.get_world_size() if dist.is_initialized() else 1
    rank = rank if rank is not None else dist.get_rank() if dist.is_initialized() else 0
    check_int("world_size", world, fix="the number of processes")
    check_int("rank", rank, 0, world - 1, fix=f"this process's index among the world_size={world} processes")
    check_int("global_batch_size", global_batch_size, fix="the examples per step across all processes")
    if global_batch_size % world:
        raise ValueError(f"global_batch_size={global_batch_size} must be divisible by the {world} processes")
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=True)
    return DataLoader(dataset, batch_size=global_batch_size // world, sampler=sampler, drop_last=True)


def sharded_batches(dataset: Dataset, global_batch_size: int, seed: int = 0, shuffle: bool = True, *,
                    rank: int | None = None, world_size: int | None = None) -> Iterator[Batch]:
    """This process's batches, epoch after epoch without end: each epoch a new shuffle (`set_epoch`),
    and across the processes every example is seen once per epoch."""
    loader = sharded_loader(dataset, global_batch_size, seed, shuffle, rank=rank, world_size=world_size)
    if len(loader) == 0:  # an epoch without a batch would make the loop below spin forever
        raise ValueError(f"global_batch_size={global_batch_size} is more than the dataset's {len(dataset)} examples "
                         "(an incomplete last batch is dropped, so an epoch has no batch); "
                         "use a smaller global_batch_size or more data")
    for epoch in itertools.count():
        loader.sampler.set_epoch(epoch)
        yield from loader


def average_gradients(model: nn.Module) -> None:
    """DDP's gradient averaging after backward, by hand: all-reduce (sum) every gradient, then divide by the world size
    (DDP itself divides first, then sums: the same up to round-off)."""
    world = dist.get_world_size()
    for parameter in model.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad /= world


def backward_micro_batches(model: nn.Module, micro_batches: list[Batch],
                           loss_fn: Callable[[nn.Module, Batch], torch.Tensor] = default_loss) -> float:
    """Gradient accumulation: forward and backward each of k equal-sized micro-batches with its loss scaled by 1/k,
    so that `.grad` gains the gradient of the mean loss over all of them, as one batch would give.

    micro_batches: k tuples of tensors on the model's device, e.g. (inputs (B, T), targets (B, T)), all with the
    same B. Under DDP every micro-batch but the last runs inside `no_sync()`, its forward too (DDP decides during the
    forward whether the backward all-reduces), so the summed gradients are all-reduced once, after the last.
    Returns the mean of the micro-batches' losses.
    """
    if not micro_batches:
        raise ValueError("micro_batches is empty; give at least one micro-batch, e.g. [(inputs, targets)]")
    k = len(micro_batches)
    total = 0.0
    for i, batch in enumerate(micro_batches):
        skip_allreduce = isinstance(model, DistributedDataParallel) and i < k - 1   # all but the last
        with model.no_sync() if skip_allreduce else contextlib.nullcontext():
            loss = loss_fn(model, batch) / k
            loss.backward()                     # adds this micro-batch's share to every .grad
        total += loss.item()
    return total


def time_allreduce(n_elements: int, repeats: int, device: torch.device, warmup: int = 10) -> list[float]:
    """Seconds of each of `repeats` all-reduces (sum) of a float32 tensor of `n_elements` on `device` (this process's,
    from `setup()`), after `warmup` untimed ones; the ranks meet at a barrier before each, so that they start it
    together."""
    check_positive_ints(n_elements=n_elements, repeats=repeats)
    check_int("warmup", warmup, 0, fix="untimed all-reduces before the timed ones, e.g. 10")
    tensor = torch.zeros(n_elements, device=device)   # zeros stay zeros: repeated sums neither overflow nor slow down
    seconds = []
    for i in range(warmup + repeats):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(tensor)
        if device.type == "cuda":
            torch.cuda.synchronize(device)      # NCCL returns before the GPU has finished
        if i >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def ring_allreduce_bytes(n_params: int, world_size: int, bytes_per_param: int = 4) -> float:
    """Bytes each process sends (and receives) in one ring all-reduce of `n_params` gradients.

    A ring all-reduce is a reduce-scatter then an all-gather, each N-1 steps of 1/N of the gradients:
    2 (N - 1) / N times the gradient bytes, nearly independent of N.
    """
    check_positive_ints(n_params=n_params, world_size=world_size, bytes_per_param=bytes_per_param)
    return 2 * (world_size - 1) / world_size * n_params * bytes_per_param


def parameters_sha256(model: nn.Module) -> str:
    """A hash of every parameter's bytes: equal hashes mean bit-identical weights (a sum would hide differences)."""
    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_ddp(model: nn.Module, batches: Iterable[Batch], *, optimizer: torch.optim.Optimizer, steps: int,
              loss_fn: Callable[[nn.Module, Batch], torch.Tensor] = default_loss,
              evaluate: Callable[[nn.Module], float] | None = None, checkpoint_path: str | None = None,
              **train_kwargs) -> History:
    """`lmcourse.train.train` under DDP: gradients averaged across processes; rank 0 evaluates,
    shows progress and writes the checkpoint. `model` must already be on this process's device."""
    device = next(model.parameters()).device
    # Rank 0 evaluates alone, so a forward pass must not wait to sync buffers with the others
    # (torch >= 2.13 names this forward_sync_buffers; older versions broadcast_buffers).
    no_sync = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters \
        else "broadcast_buffers"
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                  **{no_sync: False})
    main = is_main_process()
    history = train(ddp, batches, optimizer=optimizer, steps=steps, loss_fn=loss_fn,
                    evaluate=(lambda m: evaluate(m.module)) if evaluate is not None and main else None,
                    checkpoint_path=checkpoint_path if main else None, progress=main, **train_kwargs)
    return history
