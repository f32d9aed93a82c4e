"""Hugging Face models from the local cache only, with no network activity at all.

`local_files_only=True` is not enough: the Hub client still looks the Hub up (its agent detection fetches a
registry from huggingface.co, about 3 s offline). Only its offline flag stops that, and the flag is read from
HF_HUB_OFFLINE once, when `huggingface_hub` is first imported, so setting the variable later changes nothing.
`offline()` sets both the variables and the already-imported flag for the duration of a load, and restores
them after, so a learner can still download on purpose later in the same kernel.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["load_local_hf", "offline"]

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
AUTO_CLASSES = {"question-answering": "AutoModelForQuestionAnswering", "base": "AutoModel",
                "causal-lm": "AutoModelForCausalLM"}  # task -> the transformers class that loads it


def _flag_from_environment() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in ("1", "ON", "YES", "TRUE")  # huggingface_hub's own reading


@contextmanager
def offline() -> Iterator[None]:
    """Within this block, transformers and huggingface_hub make no network request (imported before or not)."""
    saved = {name: os.environ.get(name) for name in OFFLINE_VARIABLES}
    os.environ.update(dict.fromkeys(OFFLINE_VARIABLES, "1"))  # for a first import inside the block
    constants = sys.modules.get("huggingface_hub.constants")
    saved_flag = None if constants is None else constants.HF_HUB_OFFLINE  # perhaps set by the user, not the env
    if constants is not None:  # imported earlier: its flag was fixed then
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        constants = sys.modules.get("huggingface_hub.constants")
        if constants is not None:  # its own previous value, or, if first imported inside, what the env says
            constants.HF_HUB_OFFLINE = _flag_from_environment() if saved_flag is None else saved_flag


def load_local_hf(name: str = "distilbert-base-cased-distilled-squad", task: str = "question-answering"):
    """A Hugging Face model and tokenizer from the local cache only (no network activity), or (None, None, why).

    task "question-answering" (AutoModelForQuestionAnswering), "base" (AutoModel) or "causal-lm"
    (AutoModelForCausalLM, e.g. "gpt2"). Loaded with eager attention so `output_attentions=True` returns
    the weights the visualizers draw. Returns (model in eval mode, tokenizer, message).
    """
    if task not in AUTO_CLASSES:
        raise ValueError(f"task must be one of {tuple(AUTO_CLASSES)}, got {task!r}")
    with offline():
        try:
            import transformers

            cls = getattr(transformers, AUTO_CLASSES[task])
            model = cls.from_pretrained(name, local_files_only=True, attn_implementation="eager").eval()
            tokenizer = transformers.AutoTokenizer.from_pretrained(name, local_files_only=True)
        except Exception as exc:  # whatever the files hold (a pickle, a torn safetensors), the answer is "why not"
            return None, None, _why_not_loaded(name, task, exc)
    return model, tokenizer, f"loaded {name!r} from the local cache"


def _local_folder(name: str) -> Path | None:
    """Where `name` lies on this machine: the folder itself, or its snapshot in the Hub cache; None if absent."""
    if os.path.isdir(name):
        return Path(name)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except (ImportError, OSError, ValueError):  # not installed, not cached, or not a repository id
        return None


def _why_not_loaded(name: str, task: str, exc: Exception) -> str:
    """The message `load_local_hf` returns: absent from the cache (how to fetch it), or present but unreadable."""
    download = (f"transformers.{AUTO_CLASSES[task]}.from_pretrained({name!r}) and "
                f"transformers.AutoTokenizer.from_pretrained({name!r})")
    folder = _local_folder(name)
    if folder is None:
        return (f"{name!r} is not in the local Hugging Face cache, so this section is skipped (nothing is "
                f"downloaded). To run it, once while online: {download} [{type(exc).__name__}]")
    if folder.parent.name == "snapshots":  # the Hub cache: delete the model's whole entry, not one snapshot
        folder = folder.parents[1]
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"{name!r} is in the local cache at {folder} but could not be read ({type(exc).__name__}: {reason[:200]}), "
            f"so this section is skipped. To fix it, delete {folder} and download the model again, once while "
            f"online: {download}")
