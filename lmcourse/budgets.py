"""Training budgets in one place: each chapter's steps and data sizes, per mode and device kind.

    BUDGET = lmcourse.budget("06", DEVICE)      # fast or full from $LMCOURSE_FAST, cpu or gpu from DEVICE
    STEPS = BUDGET.steps

Three columns per quantity, like nanoGPT's configs that scale a recipe to the hardware:

- fast: CI's regression run ($LMCOURSE_FAST=1), each notebook in under a minute;
- full on a CPU: the course's 2-core budget, each notebook in about six minutes;
- full on a GPU (cuda or mps): the same models trained longer (four times the optimizer steps of the main
  training runs) in about the wall time the CPU takes, since a GPU runs these small models several times faster.

The data a model is scored on stays the same on every device, so that numbers from a CPU and a GPU compare;
a wall-clock budget (chapter 09's seconds per model) stays the same too: the GPU gets more steps within it.
An entry with two values is the same in full mode on both devices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from lmcourse.core import fast_mode, get_device

LONGER_ON_GPU = 4   # the GPU column's factor on the main training runs' steps (the rest as on the CPU)

# chapter -> name -> (fast, full on cpu[, full on gpu])
BUDGETS: dict[str, dict[str, tuple]] = {
    "00": {"train_steps": (60, 600)},
    "01": {"markov_sizes": ([1_000, 3_000, 10_000, 30_000],
                            [1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000]),
           "markov_test": (20_000, 200_000),             # held-out tokens of the synthetic source
           "char_train": (400_000, None),                # characters of the wiki train split (None: all)
           "char_valid": (50_000, None),
           "nltk_trigrams": (60, 400),                   # trigrams scored with nltk's (slow) Kneser-Ney
           "nltk_sentences": (400, None)},               # training sentences for the nltk comparisons (None: all)
    "02": {"max_words": (30_000, None),                  # words of the Wikipedia extract (None: all)
           "epochs": (1, 20),
           "reference_seeds": (1, 3),                    # gensim skip-gram runs for the comparison
           "n_boot": (300, 20_000)},                     # bootstrap resamples: corrected bounds are far quantiles
    "03": {"hidden": (64, 256),                          # LSTM width of the char LM
           "block_batch": ((64, 16), (128, 32)),         # truncated-BPTT window and parallel streams
           "lm_steps": (60, 4000, 4000 * LONGER_ON_GPU),
           "family_steps": (30, 500, 500 * LONGER_ON_GPU),  # each of the Elman RNN, GRU and LSTM
           "valid_tokens": (20_000, None),               # None: the whole valid split
           "eval_tokens": (4_000, 20_000),               # scored during training
           "ngram_train_chars": (300_000, None),
           "cls_train_test": ((2_000, 500), (8_000, 4_000)),
           "cls_steps": (60, 300),
           "sample_chars": (60, 300)},
    "04": {"train_steps": (30, 600, 600 * LONGER_ON_GPU),  # per seq2seq model
           "eval_lengths": ([4, 8, 12], [2, 4, 6, 8, 10, 12, 14, 16]),
           "n_eval": (20, 400),                          # test strings per length
           "ablation_seeds": (2, 5),                     # seeds of Bahdanau's decoder in the query-timing ablation
           "timing_seeds": (2, 8),                       # seeds of Luong's two decoders there: their paired difference
                                                         # is the test, and with 5 no sign test reaches p < 0.05
           "gpt_steps": (60, 1500, 1500 * LONGER_ON_GPU)},
    "05": {"pretrain_steps": (20, 1200, 1200 * LONGER_ON_GPU),
           "norm_steps": (10, 100),
           "finetune_steps": (10, 80),
           "label_counts": ((10, 25), (10, 25, 100)),    # labelled examples per class
           "sweep_seeds": (1, 5),
           "qa_train": (2_000, 60_000),                  # generated questions
           "qa_test": (300, 1_000),
           "qa_steps": (20, 2000, 2000 * LONGER_ON_GPU)},
    "06": {"steps": (30, 2400, 2400 * LONGER_ON_GPU),
           "char_steps": (10, 250, 250 * LONGER_ON_GPU),  # the character GPT, compared with the BPE GPT
           "eval_chars": (5_000, 32_768),                # held-out characters scored during training: gpt-char-wiki's card's
           "train_chars": (300_000, None)},              # None: the whole training split
    "07": {"toy_steps": (100, 3000),                     # 2-D denoiser (too small to gain from a GPU)
           "digit_steps": (30, 250, 250 * LONGER_ON_GPU),
           "markov_steps": (30, 400, 400 * LONGER_ON_GPU),
           "text_steps": (20, 400, 400 * LONGER_ON_GPU),
           "text_eval_chars": (2_048, 40_960),
           "infill_hidden": (64, 768),
           "n_eval": (500, 1000),
           "per_class": (10, 20)},
    "08": {"steps": (8, 60),
           "speed_repeats": (1, 8),                      # timed pairs: 8 of 8 on one side, sign-test p < 0.01
           "max_chars": (200_000, 2_000_000),
           "allreduce_repeats": (20, 100)},             # timed all-reduces of the GPT's gradient
    "09": {"budget_s": (4, 50),                          # wall-clock seconds per neural model, on every device
           "lstm_data_steps": (20, 1000, 1000 * LONGER_ON_GPU),  # the data view's runs, in optimizer steps (not seconds):
           "gpt_data_steps": (10, 500, 500 * LONGER_ON_GPU),     # on a CPU about what a 50-s run gets
           "train_chars": (300_000, None),
           "eval_chars": (10_000, 100_000),
           "tune_chars": (10_000, 50_000),
           "curve_chars": (2_048, 4_096),
           "ngram_orders": ((1, 2, 3), (1, 2, 3, 4, 5, 6, 7))},
}


@dataclass(frozen=True)
class Budget:
    """One chapter's budget for one mode ("fast" or "full") and device kind ("cpu" or "gpu");
    each quantity is an attribute (`budget.steps`)."""

    chapter: str
    mode: str
    device_kind: str
    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"chapter {self.__dict__.get('chapter')}'s budget has no {name!r}; it has "
                             f"{', '.join(values)}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"budget of chapter {self.chapter}, {self.mode} mode on a {self.device_kind.upper()}: {shown}"


def _chapter(chapter: object) -> str:
    text = f"{chapter:02d}" if isinstance(chapter, int) and not isinstance(chapter, bool) else chapter
    match = re.match(r"(\d\d)(_|$)", text) if isinstance(text, str) else None
    if not match or match.group(1) not in BUDGETS:
        raise ValueError(f"chapter must name a course chapter with a budget ({', '.join(BUDGETS)}; an int, "
                         f"'06' or a notebook name such as '06_gpt_generation'), got {chapter!r}")
    return match.group(1)


def device_kind(device: torch.device | str) -> str:
    """'gpu' for cuda and mps, 'cpu' otherwise."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch.device or a device name such as 'cpu' or 'cuda', got {device!r}")
    return "gpu" if kind in ("cuda", "mps") else "cpu"


def budget(chapter: int | str, device: torch.device | str | None = None, fast: bool | None = None) -> Budget:
    """Chapter `chapter`'s budget: fast mode if `fast` (default: `lmcourse.fast_mode()`), else full mode on
    `device`'s kind (default: `lmcourse.get_device()`)."""
    name = _chapter(chapter)
    if fast is not None and not isinstance(fast, bool):
        raise ValueError(f"fast must be True, False or None (None: from $LMCOURSE_FAST), got {fast!r}")
    fast = fast_mode() if fast is None else fast
    kind = device_kind(get_device() if device is None else device)
    column = 0 if fast else 1 if kind == "cpu" else -1
    values = {key: entry[column] for key, entry in BUDGETS[name].items()}
    return Budget(name, "fast" if fast else "full", kind, values)
