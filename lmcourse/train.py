"""One small training loop for every model of the course.

It does the chores that every chapter would otherwise repeat: moving batches to the device,
mixed precision on CUDA, gradient clipping, a learning-rate schedule, periodic evaluation,
checkpoints, a progress bar, and a loss history to plot. `train_gpt` is the GPT's recipe on top of it
(chapters 06 and 09): AdamW on matrices, warm-up and cosine decay over steps or over seconds, random windows.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from lmcourse.checkpoint import save_checkpoint
from lmcourse.checks import check_int, check_number, check_token_ids, describe
from lmcourse.progress import progress_bar, stop_early
from lmcourse.sequences import random_windows

Batch = tuple[torch.Tensor, ...]


@dataclass
class History:
    """What happened during training, ready to plot: losses against steps and wall-clock seconds."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    eval_time: list[float] = field(default_factory=list)  # seconds spent evaluating so far, at each evaluation

    @property
    def best_eval_loss(self) -> float:
        """The lowest evaluation loss seen (nan if never evaluated)."""
        return min(self.eval_loss, default=math.nan)

    @property
    def eval_train_seconds(self) -> list[float]:
        """Seconds of training at each evaluation, the evaluations' own time left out (for curves against compute)."""
        return [total - spent for total, spent in zip(self.eval_seconds, self.eval_time)]


def cosine_schedule(max_lr: float, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up to `max_lr`, then cosine decay to `min_lr` at `total_steps`: step -> lr."""
    check_number("max_lr", max_lr, 0, low_open=True)
    check_int("total_steps", total_steps)
    check_int("warmup_steps", warmup_steps, 0, total_steps)
    check_number("min_lr", min_lr, 0, max_lr, fix="the learning rate at the end, between 0 and max_lr")

    def lr_at(step: int) -> float:
        check_int("step", step, 0, fix="the optimizer step, counted from 0")
        if step < warmup_steps:
            return max_lr * (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))

    return lr_at


def clock_cosine_schedule(max_lr: float, seconds: float, warmup_steps: int = 0,
                          min_lr: float = 0.0) -> Callable[[int], float]:
    """`cosine_schedule` on a time budget: linear warm-up over `warmup_steps` steps, then cosine decay to `min_lr`
    at `seconds` of wall-clock time after the first call (train with `train(..., time_limit=seconds)`): step -> lr.

    The decay follows the clock, not the step count, so a run that gets fewer steps per second still ends at
    `min_lr` when its time is up.
    """
    check_number("max_lr", max_lr, 0, low_open=True)
    check_number("seconds", seconds, 0, low_open=True, fix="the training budget in seconds")
    check_int("warmup_steps", warmup_steps, 0)
    check_number("min_lr", min_lr, 0, max_lr, fix="the learning rate at the end, between 0 and max_lr")
    start = None

    def lr_at(step: int) -> float:
        nonlocal start
        check_int("step", step, 0, fix="the optimizer step, counted from 0")
        start = time.perf_counter() if start is None else start
        if step < warmup_steps:
            return max_lr * (step + 1) / warmup_steps
        progress = min(1.0, (time.perf_counter() - start) / seconds)
        return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))

    return lr_at


def default_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """`model(*batch)` returning a loss, or a tuple whose last item is the loss (as GPT's (logits, loss))."""
    if not isinstance(batch, (tuple, list)):
        raise ValueError(f"batch must be a tuple of tensors such as (inputs, targets), got {describe(batch)}; "
                         "e.g. default_loss(model, (x, y))")
    out = model(*batch)
    return out[-1] if isinstance(out, tuple) else out


def autocast_dtype(device: torch.device | str, mixed_precision: str) -> torch.dtype | None:
    """The autocast dtype for `mixed_precision` ("auto", "bf16", "fp16", "off") on `device`, or None.

    "auto" autocasts on CUDA only (bf16 where supported, else fp16); "bf16" also autocasts on a CPU, which pays
    where the CPU has bf16 instructions (AVX512-BF16, AMX: about twice as fast) and is slow elsewhere.
    """
    if mixed_precision not in {"auto", "bf16", "fp16", "off"}:
        raise ValueError(f"mixed_precision must be 'auto', 'bf16', 'fp16' or 'off', got {mixed_precision!r}")
    kind = torch.device(device).type
    if mixed_precision == "bf16" and kind == "cpu":
        return torch.bfloat16  # asked for: autocast on a CPU casts matmuls to bf16, keeps norms and losses in fp32
    if mixed_precision == "off" or kind != "cuda":
        return None  # on CPU and mps full precision is the safe, well-tested path
    if mixed_precision == "fp16" or (mixed_precision == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def _check_finite_loss(what: str, value: float, step: int, desc: str) -> None:
    """Raise FloatingPointError naming the step when a loss is nan or inf: training cannot recover from it."""
    if not math.isfinite(value):
        raise FloatingPointError(
            f"{desc}: the {what} became {value} at step {step}; training stopped before applying it or writing "
            "a checkpoint. Usual causes: a learning rate too high (lower it, or set grad_clip), or an fp16 "
            "overflow (use mixed_precision='bf16' or 'off')")


def _forever(batches: Iterable[Batch]) -> Iterator[Batch]:
    """Cycle through a re-iterable (a list, a DataLoader) epoch after epoch; pass an iterator through."""
    if iter(batches) is batches:
        yield from batches
        return
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ValueError("batches is empty; give at least one batch")


def train(model: nn.Module, batches: Iterable[Batch], *, optimizer: torch.optim.Optimizer, steps: int,
          loss_fn: Callable[[nn.Module, Batch], torch.Tensor] = default_loss,
          evaluate: Callable[[nn.Module], float] | None = None, eval_every: int | None = None,
          grad_clip: float | None = 1.0, lr_schedule: Callable[[int], float] | None = None,
          mixed_precision: str = "auto", checkpoint_path: str | os.PathLike | None = None,
          time_limit: float | None = None, progress: bool = True, desc: str = "training") -> History:
    """Train `model` for `steps` optimizer steps and return its `History`.

    batches: tuples of tensors (moved to the model's device), e.g. (inputs (B, T), targets (B, T)).
    evaluate: model -> validation loss, run every `eval_every` steps and after the last step,
        under `torch.no_grad()` with the model in eval mode.
    checkpoint_path: if given, the model and optimizer are saved (atomically) after each evaluation.
    time_limit: stop after this many wall-clock seconds even if fewer than `steps` were taken
        (to compare models at equal training time).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {describe(model)}")
    if not isinstance(batches, Iterable):
        raise ValueError(f"batches must be an iterable of batches (a list, a DataLoader, a generator), got {batches!r}")
    check_int("steps", steps)
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be True or False, got {progress!r}")
    if eval_every is not None:
        check_int("eval_every", eval_every, fix="or None to evaluate only after the last step")
    if time_limit is not None:
        check_number("time_limit", time_limit, 0, low_open=True, fix="seconds, or None for no limit")
    if grad_clip is not None:
        check_number("grad_clip", grad_clip, 0, low_open=True, fix="a gradient norm such as 1.0, or None for no clipping")
    if lr_schedule is not None and not callable(lr_schedule):
        raise ValueError(f"lr_schedule must be a function step -> learning rate, got {lr_schedule!r}; "
                         "e.g. cosine_schedule(max_lr, steps), or set the rate in the optimizer")
    parameters = list(model.parameters())
    if not parameters:
        raise ValueError(f"model ({type(model).__name__}) has no parameters to train")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {optimizer!r}; "
                         "e.g. torch.optim.AdamW(model.parameters(), lr=1e-3)")
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if not optimized & {id(p) for p in parameters}:
        raise ValueError("optimizer holds none of the model's parameters: build it from this model, "
                         "e.g. torch.optim.AdamW(model.parameters(), lr=1e-3)")
    device = parameters[0].device
    dtype = autocast_dtype(device, mixed_precision)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()

    def run_evaluation(step: int) -> None:
        began = time.perf_counter()
        model.eval()
        with torch.no_grad(), autocast():
            value = evaluate(model)
        model.train()
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, numbers.Real):
            raise ValueError(f"evaluate must return a number (the validation loss), got {value!r}")
        value = float(value)
        _check_finite_loss("evaluation loss", value, step, desc)
        history.eval_step.append(step)
        history.eval_loss.append(value)
        history.eval_seconds.append(time.perf_counter() - start)
        history.eval_time.append((history.eval_time[-1] if history.eval_time else 0.0) + time.perf_counter() - began)
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model, optimizer, step=step, eval_loss=value)

    history = History()
    stream = _forever(batches)
    model.train()
    start = time.perf_counter()
    bar = progress_bar(total=steps, desc=desc, disable=not progress)
    for step in range(steps):
        try:
            batch = next(stream)
        except StopIteration:
            bar.write(f"{desc}: the batch iterator ran out after {step} of {steps} steps")
            stop_early(bar, "the batch iterator ran out")
            break
        if not isinstance(batch, (tuple, list)):
            raise ValueError(f"each batch must be a tuple of tensors such as (inputs, targets), got {describe(batch)}; "
                             "zip inputs and targets, or yield (x, y)")
        batch = tuple(t.to(device, non_blocking=True) if isinstance(t, torch.Tensor) else t for t in batch)
        if lr_schedule is not None:
            lr = lr_schedule(step)
            if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr < 0:
                raise ValueError(f"lr_schedule returned {lr!r} at step {step}; it must return a finite learning rate >= 0")
            for group in optimizer.param_groups:
                group["lr"] = lr
        with autocast():
            loss = loss_fn(model, batch)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0 or not loss.is_floating_point():
            raise ValueError(f"loss_fn must return a scalar float loss tensor, got {describe(loss)}; reduce it, "
                             "e.g. .mean(), and compute it from the model's outputs")
        # One read of the loss per step (a sync on CUDA, as recording it always was), taken before
        # backward so that a non-finite loss never reaches the weights or a checkpoint.
        loss_value = loss.item()
        _check_finite_loss("training loss", loss_value, step, desc)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        else:
            loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        history.step.append(step)
        history.loss.append(loss_value)
        history.lr.append(optimizer.param_groups[0]["lr"])
        history.seconds.append(time.perf_counter() - start)
        if evaluate is not None and eval_every is not None and (step + 1) % eval_every == 0 and step + 1 < steps:
            run_evaluation(step)
            bar.set_postfix(loss=f"{loss_value:.3f}", val=f"{history.eval_loss[-1]:.3f}")
        elif step % 10 == 0:
            bar.set_postfix(loss=f"{loss_value:.3f}")
        bar.update(1)
        if time_limit is not None and history.seconds[-1] >= time_limit:
            stop_early(bar, f"time limit {time_limit:g} s")
            break
    if evaluate is not None and history.step and history.eval_step[-1:] != history.step[-1:]:
        run_evaluation(history.step[-1])  # unless the time limit struck just after an evaluation
    bar.close()
    return history


def adamw(model: nn.Module, lr: float, weight_decay: float = 0.1, betas: tuple[float, float] = (0.9, 0.95),
          device: torch.device | str | None = None) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (Linear and recurrent weights, embeddings) only; biases and norms are not decayed.

    device "cuda" selects the fused kernel. A tied weight (one tensor under two names) is counted once.
    """
    check_number("lr", lr, 0, low_open=True)
    check_number("weight_decay", weight_decay, 0, fix="0.1 is usual; 0 turns it off")
    if (not isinstance(betas, (tuple, list)) or len(betas) != 2
            or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}; (0.9, 0.95) is usual")
    params = {id(p): p for p in model.parameters() if p.requires_grad}.values()
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    fused = device is not None and torch.device(device).type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), fused=fused)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {describe(model)}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)



def train_gpt(model: nn.Module, train_ids: torch.Tensor, *, block_size: int, batch_size: int, lr: float,
              steps: int | None = None, seconds: float | None = None, schedule_steps: int | None = None,
              warmup_steps: int = 0, min_lr: float | None = None, weight_decay: float = 0.1, seed: int = 0,
              evaluate: Callable[[nn.Module], float] | None = None, eval_every: int | None = None,
              torch_compile: bool | None = None, progress: bool = True, desc: str = "GPT") -> History:
    """Train a `lmcourse.gpt.GPT` on random windows of `train_ids` with the course's GPT recipe; return its History.

    The recipe: AdamW with weight decay on matrices only (`model.configure_optimizer`), a linear warm-up over
    `warmup_steps` steps, then a cosine decay from `lr` to `min_lr` (default lr / 10), gradient clipping at norm 1,
    and `train`'s autocast on CUDA. Give exactly one of
      steps: this many optimizer steps of a cosine schedule `schedule_steps` long (default: steps); a shorter run on
          a longer schedule is exactly the start of the longer run;
      seconds: train for this many wall-clock seconds (evaluations included), the decay following the clock
          (`clock_cosine_schedule`): models compared at equal time.

    model: a GPT, on the device to train on, initialised under the caller's seed (dropout draws from torch's
        global generator too).
    train_ids: (N,) token ids; each step reads x (batch_size, block_size) and the next tokens y (batch_size,
        block_size), at random starts drawn from `seed` (`lmcourse.sequences.random_windows`).
    evaluate: model -> validation loss, every `eval_every` steps and after the last (`train`).
    torch_compile: train a `torch.compile`d model (default: on CUDA only; a clock run may pass False, as compiling
        spends its seconds). The weights are shared, so `model` itself is trained.
    """
    if not isinstance(model, nn.Module) or not callable(getattr(model, "configure_optimizer", None)):
        raise ValueError(f"model must be a lmcourse.gpt.GPT (a module with configure_optimizer), got "
                         f"{describe(model)}; build one with GPT(GPTConfig(...)), or call train() for other models")
    config = getattr(model, "config", None)
    check_int("block_size", block_size, 1, getattr(config, "block_size", None),
              fix="the window length in tokens, at most the model's block_size")
    check_int("batch_size", batch_size)
    check_number("lr", lr, 0, low_open=True)
    if (steps is None) == (seconds is None):
        raise ValueError(f"give steps (a schedule in steps) or seconds (a schedule on the clock), exactly one; got "
                         f"steps={steps!r}, seconds={seconds!r}")
    if schedule_steps is not None and steps is None:
        raise ValueError(f"schedule_steps={schedule_steps!r} needs steps: a clock run's schedule lasts `seconds`")
    if steps is not None:
        check_int("steps", steps)
        schedule_steps = check_int("schedule_steps", steps if schedule_steps is None else schedule_steps, steps,
                                   fix="the length of the cosine schedule, at least steps")
    min_lr = lr / 10 if min_lr is None else min_lr
    check_int("seed", seed, 0)
    if evaluate is not None and not callable(evaluate):
        raise ValueError(f"evaluate must be a function model -> validation loss, or None, got {describe(evaluate)}")
    if torch_compile is not None and not isinstance(torch_compile, bool):
        raise ValueError(f"torch_compile must be True, False or None (on CUDA only), got {torch_compile!r}")
    if isinstance(train_ids, str):
        raise ValueError("train_ids must be token ids, got a str; encode the text first, e.g. tokenizer.encode(text)")
    train_ids = check_token_ids("train_ids", torch.as_tensor(train_ids) if isinstance(train_ids, (list, tuple))
                                else train_ids, getattr(config, "vocab_size", None), ndim=1)
    if len(train_ids) <= block_size:
        raise ValueError(f"train_ids has {len(train_ids)} tokens; a window needs more than block_size={block_size}")
    if seconds is not None:
        check_number("seconds", seconds, 0, low_open=True, fix="the training budget in seconds")
        schedule = clock_cosine_schedule(lr, seconds, warmup_steps, min_lr)
    else:
        schedule = cosine_schedule(lr, schedule_steps, warmup_steps, min_lr)
    device = next(model.parameters()).device
    optimizer = model.configure_optimizer(lr=lr, weight_decay=weight_decay, device=device)
    compiled = device.type == "cuda" if torch_compile is None else torch_compile
    runnable = torch.compile(model) if compiled else model
    return train(runnable, random_windows(train_ids, block_size, batch_size, seed=seed), optimizer=optimizer,
                 steps=10**9 if steps is None else steps, lr_schedule=schedule, evaluate=evaluate,
                 eval_every=eval_every, time_limit=seconds, progress=progress, desc=desc)
