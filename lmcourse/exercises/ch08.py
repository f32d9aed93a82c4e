"""Chapter 08 · scaling out: each rank's shard of an epoch, accumulation over uneven padded micro-batches, a ring
all-reduce.

Each exercise is the step next to one the chapter shows: the indices a `DistributedSampler` hands each rank after
`sharded_batches` is shown using one; accumulation over micro-batches of different sizes and padding after the
equal-sized accumulation; the ring's chunk-by-chunk schedule after DDP's all-reduce and its cost. Every expected
value is computed after the learner's function has returned, from copies of the inputs it was given.
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn

from lmcourse.exercises.grading import (
    Wrong,
    call,
    exercise,
    forbidding,
    generator,
    same_number,
    same_tensor,
    same_value,
)

ID_SHARD, ID_ACCUMULATE, ID_RING = "08.shard_indices", "08.accumulate_gradients", "08.ring_all_reduce"
# What these exercises ask the learner to write by hand, ready-made: refused while the learner's code runs.
DISTRIBUTED_REFERENCES = ("lmcourse.distributed", "torch.distributed.distributed_c10d", "torch.nn.parallel.distributed")


# ------------------------------------------------------------------------------------------------ shard indices

@exercise(ID_SHARD, "each rank's shard of an epoch, as DistributedSampler draws it", hints=[
    "Section 'The code' uses a DistributedSampler: every rank builds the *same* order of the whole dataset, then "
    "takes its own share of it. What must the ranks agree on so that their orders are the same, and what changes "
    "from one epoch to the next?",
    "The order: a permutation from a torch.Generator of your own seeded with seed + epoch (the global generator "
    "stays untouched, and no rank's index enters the seed). Every rank must get the same number of indices: "
    "without drop_last, lengthen the order by repeating it from its start until it divides evenly; with "
    "drop_last, cut the tail instead.",
    "The share: not a contiguous block, but every world_size-th index of the lengthened (or cut) order, starting "
    "at the rank's own position, so that consecutive examples go to different ranks. Check it on paper with 10 "
    "examples and 4 ranks: how many indices does each rank get with and without drop_last, and which ones repeat?",
])
def check_shard_indices(shard_indices) -> None:
    cases = [("10 examples, 4 ranks (padding needed), shuffled, epoch 0", 10, 4, 0, 0, True, False),
             ("the same, epoch 3: a new order", 10, 4, 3, 0, True, False),
             ("10 examples, 4 ranks, drop_last", 10, 4, 1, 0, True, True),
             ("12 examples, 3 ranks, no shuffle", 12, 3, 0, 0, False, False),
             ("13 examples, 2 ranks, seed 7, epoch 2", 13, 2, 2, 7, True, False),
             ("3 examples, 8 ranks: more ranks than examples", 3, 8, 0, 5, True, False),
             ("101 examples, 1 rank", 101, 1, 4, 1, True, False)]
    for name, n, world, epoch, seed, shuffle, drop_last in cases:
        for rank in range(world):
            _shard_case(f"{name}, rank {rank}", shard_indices, n, world, rank, epoch, seed, shuffle, drop_last)


def _shard_case(name, shard_indices, n, world, rank, epoch, seed, shuffle, drop_last) -> None:
    state = torch.get_rng_state()
    with forbidding("torch.utils.data.distributed", *DISTRIBUTED_REFERENCES):
        got = call(name, shard_indices, n, world, rank, epoch=epoch, seed=seed, shuffle=shuffle, drop_last=drop_last)
    if not torch.equal(torch.get_rng_state(), state):
        raise Wrong(name, "your code changed torch's global random state (torch.manual_seed, or a draw without "
                          "generator=): shuffle with a torch.Generator of your own")
    if isinstance(got, torch.Tensor) and got.dim() == 1 and not got.dtype.is_floating_point:
        got = got.tolist()
    # the expected value, only now
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed,
                                 drop_last=drop_last)
    sampler.set_epoch(epoch)
    want = list(sampler)
    if not isinstance(got, (list, tuple)) or len(got) != len(want):
        length = f" of length {len(got)}" if hasattr(got, "__len__") else ""
        raise Wrong(name, f"return a list of {len(want)} indices for this rank, got {type(got).__name__}{length}")
    same_value(name, got, want, what="this rank's list of indices")


# ------------------------------------------------------------------------------------------------ accumulation

class MaskedTokenLoss:
    """The loss the checker hands over: loss_fn(model, (x, y, mask)) is the mean cross-entropy over the real
    tokens (mask True) of one micro-batch; x, y, mask are (B, T), model(x) gives logits (B, T, V).

    It notes each call and each backward pass through the loss it returned, to check that every micro-batch's
    backward runs before the next micro-batch's forward."""

    def __init__(self):
        self.events: list[tuple[str, int]] = []

    def __call__(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y, mask = batch
        logits = model(x)  # (B, T, V)
        loss = nn.functional.cross_entropy(logits[mask], y[mask])  # the mean over the real tokens only
        calls = sum(kind == "forward" for kind, _ in self.events)
        self.events.append(("forward", calls))
        loss.register_hook(functools.partial(self._backward_through, calls))
        return loss

    def _backward_through(self, call_index: int, grad: torch.Tensor) -> None:
        self.events.append(("backward", call_index))


def _token_model(g: torch.Generator, vocab: int) -> nn.Module:
    model = nn.Sequential(nn.Embedding(vocab, 6), nn.Tanh(), nn.Linear(6, vocab))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)
    return model


def _padded_micro_batch(g: torch.Generator, vocab: int, lengths: list[int]) -> tuple[torch.Tensor, ...]:
    """(x, y, mask), each (len(lengths), max(lengths)): sequences of these real lengths, padded with token 0
    (a real token of the vocabulary, so counting the padding changes the loss)."""
    width = max(lengths)
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    x = torch.randint(vocab, (len(lengths), width), generator=g).masked_fill(~mask, 0)
    y = torch.randint(vocab, (len(lengths), width), generator=g).masked_fill(~mask, 0)
    return x, y, mask


@exercise(ID_ACCUMULATE, "gradient accumulation over uneven, padded micro-batches", hints=[
    "The section on accumulation scaled each micro-batch's loss by 1/4 because its four micro-batches were the "
    "same size. loss_fn gives a *mean* over one micro-batch's real tokens: how much of the whole batch's mean "
    "does one micro-batch stand for when the micro-batches hold different numbers of real tokens?",
    "Count the real tokens (the mask) of every micro-batch, and of all of them together, before the loop. Each "
    "micro-batch then weighs its share of the real tokens: not 1 / (number of micro-batches), not its share of "
    "the sequences, and padding counts for nothing.",
    "Why one backward per micro-batch: the point of accumulation is that one micro-batch's activations are freed "
    "before the next is computed. Gradients add up in .grad across backward calls, so nothing in the loop may "
    "clear them; the returned loss is the sum of the weighted micro-batch losses, as a float.",
])
def check_accumulate_gradients(accumulate_gradients) -> None:
    g, vocab = generator(ID_ACCUMULATE), 11
    cases = [("3 micro-batches of 4, 2 and 5 sequences, padded to different lengths",
              [[7, 3, 9, 2], [12, 1], [5, 5, 8, 6, 4]]),
             ("2 micro-batches of 3 sequences each, one of them mostly padding", [[10, 10, 9], [2, 1, 10]]),
             ("4 micro-batches of 1 sequence", [[4], [9], [1], [6]]),
             ("one micro-batch: the whole batch", [[6, 3, 8]])]
    for name, lengths in cases:
        _accumulate_case(name, accumulate_gradients, _token_model(g, vocab),
                         [_padded_micro_batch(g, vocab, one) for one in lengths])


def _accumulate_case(name, accumulate_gradients, model, micro_batches) -> None:
    learner, loss_fn = copy.deepcopy(model), MaskedTokenLoss()
    given = [tuple(t.clone() for t in batch) for batch in micro_batches]
    with forbidding(*DISTRIBUTED_REFERENCES):
        got = call(name, accumulate_gradients, learner, given, loss_fn)
    forwards = [i for kind, i in loss_fn.events if kind == "forward"]
    if len(forwards) != len(micro_batches):
        raise Wrong(name, f"your code called loss_fn {len(forwards)} times for {len(micro_batches)} micro-batches; "
                          "call it once per micro-batch")
    if loss_fn.events != [(kind, i) for i in range(len(micro_batches)) for kind in ("forward", "backward")]:
        raise Wrong(name, "run each micro-batch's backward() before the next micro-batch's forward (one backward per "
                          "micro-batch, so that its activations are freed), and only once")
    # the expected value, only now: one backward on the sum of the per-token losses over the whole batch's real tokens
    n_real = sum(int(mask.sum()) for _, _, mask in micro_batches)
    total = sum(nn.functional.cross_entropy(model(x)[mask], y[mask], reduction="sum") for x, y, mask in micro_batches)
    (total / n_real).backward()
    same_number(name, got, (total / n_real).item(), rtol=1e-5, what="the returned loss")
    for (p_name, want), p in zip(model.named_parameters(), learner.parameters()):
        if p.grad is None:
            raise Wrong(name, f"{p_name}.grad is None: call backward() on each micro-batch's loss")
        same_tensor(name, p.grad, want.grad, atol=1e-6, what=f"the gradient of {p_name}")


# ------------------------------------------------------------------------------------------------ ring all-reduce

class Ring:
    """The links of a ring of N ranks, handed to the learner: send(src, chunk) delivers a copy of `chunk` from rank
    src to its right-hand neighbour, rank (src + 1) % N, and returns it (what that neighbour receives). It counts
    the elements each rank sends."""

    def __init__(self, world_size: int):
        self.world_size, self.sent, self.sends = world_size, [0] * world_size, [0] * world_size

    def send(self, src: int, chunk: torch.Tensor) -> torch.Tensor:
        if not isinstance(src, int) or not 0 <= src < self.world_size:
            raise ValueError(f"src must be a rank in 0..{self.world_size - 1}, got {src!r}")
        if not isinstance(chunk, torch.Tensor):
            raise ValueError(f"chunk must be a tensor, got {type(chunk).__name__}")
        self.sent[src] += chunk.numel()
        self.sends[src] += 1
        return chunk.detach().clone()


@exercise(ID_RING, "a ring all-reduce: reduce-scatter, then all-gather", hints=[
    "Section 'What an all-reduce costs' tells the two phases in words. Follow one chunk, chunk c, through the "
    "reduce-scatter with the schedule the task gives: which rank sends it first, which ranks add their piece to "
    "it, in which order, and which rank holds it complete after N - 1 steps?",
    "Keep a list of N chunks per rank. Reduce-scatter: at each step, first collect every rank's send, then let "
    "each receiver add what it got to its own copy of that chunk (as real ranks would: all send, then all "
    "receive). All-gather: the completed chunks travel round once more, N - 1 steps, each receiver replacing "
    "its copy (no adding). Then concatenate each rank's chunks.",
    "Why float16 catches a plain sum(): rounding makes (a + b) + c differ from a + (b + c). In the ring, chunk c "
    "is added up in the order the ring visits the ranks, starting from the rank that sends it first; summing all "
    "the ranks in one go, or starting a chunk elsewhere, rounds differently. Every rank ends bit-identical.",
])
def check_ring_all_reduce(ring_all_reduce) -> None:
    g = generator(ID_RING)
    cases = [("2 ranks, 8 float32 values each", 2, 8, torch.float32),
             ("4 ranks, 10 values (chunks of 3, 3, 2, 2)", 4, 10, torch.float32),
             ("3 ranks, 999 float16 values: the order of the additions shows", 3, 999, torch.float16),
             ("8 ranks, 1000 float16 values", 8, 1000, torch.float16),
             ("1 rank: nothing to send", 1, 5, torch.float32)]
    for name, world, length, dtype in cases:
        scale = torch.logspace(-2, 2, length, dtype=torch.float64)  # magnitudes that make float16 round
        _ring_case(name, ring_all_reduce, [(torch.randn(length, generator=g, dtype=torch.float64) * scale).to(dtype)
                                           for _ in range(world)])


def _ring_case(name, ring_all_reduce, tensors: list[torch.Tensor]) -> None:
    world, length = len(tensors), len(tensors[0])
    ring = Ring(world)
    with forbidding(*DISTRIBUTED_REFERENCES):
        got = call(name, ring_all_reduce, [t.clone() for t in tensors], ring)
    if not isinstance(got, (list, tuple)) or len(got) != world:
        length_note = f" of length {len(got)}" if hasattr(got, "__len__") else ""
        raise Wrong(name, f"return a list with one tensor per rank ({world}), got {type(got).__name__}{length_note}")
    # each rank sends one chunk per step, N - 1 steps in each phase; every chunk goes N - 1 links round, twice
    if ring.sends != [2 * (world - 1)] * world or sum(ring.sent) != 2 * (world - 1) * length:
        raise Wrong(name, f"the ranks sent {ring.sends} chunks ({sum(ring.sent)} values in all) through ring.send; in "
                          "a ring all-reduce each rank sends one chunk per step, N - 1 steps in each of the two phases")
    # the expected value, only now: chunk c summed in ring order, starting at rank c
    chunks = [t.tensor_split(world) for t in tensors]
    reduced = []
    for c in range(world):
        acc = chunks[c][c].clone()
        for k in range(1, world):
            acc = acc + chunks[(c + k) % world][c]
        reduced.append(acc)
    want = torch.cat(reduced)
    exact = tensors[0].dtype == torch.float16
    for rank, tensor in enumerate(got):
        same_tensor(name, tensor, want, atol=0 if exact else 1e-5, rtol=0 if exact else 1e-5,
                    what=f"rank {rank}'s result" + (" (bit for bit, in ring order)" if exact else ""))
