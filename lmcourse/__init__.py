"""lmcourse: the tested code behind the course's notebooks, from n-grams to GPT and diffusion.

    import lmcourse
    device = lmcourse.get_device()         # cuda > mps > cpu, or $LMCOURSE_DEVICE
    lmcourse.seed_everything(0)
    FAST = lmcourse.fast_mode()            # $LMCOURSE_FAST=1 shrinks data and steps
    BUDGET = lmcourse.budget("06", device) # a chapter's steps and sizes: fast, full on a CPU, full on a GPU
    text = lmcourse.data.load_corpus("wiki", split="train")

Submodules (`lmcourse.data`, `lmcourse.ngram`, ...) are imported on first use, so
`import lmcourse` stays quick. The package follows the course, one module per idea:

    00 setup         core, budgets, data, train, checkpoint, files
    01 probability   ngram, markov, tokenizers, sequences
    02 embeddings    embeddings, skipgram
    03 RNN / LSTM    rnn, charlm, tasks
    04 attention     seq2seq, attention
    05 Transformer   transformer (the block the GPT reuses), mlm, finetune
    06 GPT           gpt, generate, hub
    07 diffusion     diffusion, denoisers, toy2d, text_diffusion
    08 scaling out   distributed, scale_out
    course tools     viz (figures and views), exercises (checkers), course (key results, runner), classroom
"""

import importlib

from lmcourse.budgets import budget
from lmcourse.core import available_devices, fast_mode, get_device, seed_everything

__version__ = "0.1.0"
__all__ = ["available_devices", "budget", "fast_mode", "get_device", "seed_everything", "__version__"]


def __getattr__(name: str):
    try:
        return importlib.import_module(f"lmcourse.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"lmcourse.{name}":
            raise  # the submodule exists but something it imports is missing
        raise AttributeError(f"module 'lmcourse' has no attribute or submodule {name!r}") from None
