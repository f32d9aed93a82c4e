"""Offline means offline: the package's loading paths and a notebook run with the network forbidden.

A `sitecustomize` on PYTHONPATH installs an audit hook in every Python started for the test (a subprocess,
or a notebook's kernel): any DNS lookup or socket connection to a host other than this machine is logged
to a file and refused. Libraries that swallow the refusal (the Hub client's agent detection does) still
leave the log line, so the test fails on any attempt, caught or not.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

GUARD = '''
import os, sys

_LOG = os.environ["LMCOURSE_NETWORK_LOG"]
_LOCAL = {None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0"}


def _is_local(address):
    if isinstance(address, (str, bytes)):  # an AF_UNIX path
        return True
    return isinstance(address, tuple) and address[0] in _LOCAL


def _guard(event, args):
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        host = args[0].decode() if isinstance(args[0], bytes) else args[0]
        if host in _LOCAL:
            return
        what = f"{event} {host}"
    elif event == "socket.connect":
        if _is_local(args[1]):
            return
        what = f"{event} {args[1]}"
    else:
        return
    import traceback
    with open(_LOG, "a") as log:
        log.write(what + "\\n" + "".join(traceback.format_stack(limit=40)) + "\\n")
    raise OSError(f"network access is forbidden in this test: {what}")


sys.addaudithook(_guard)
'''


@pytest.fixture
def guarded_env(tmp_path):
    """Environment for a child Python whose every network attempt is logged and refused; and the log."""
    (tmp_path / "guard").mkdir()
    (tmp_path / "guard" / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "network.log"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path / "guard"), str(ROOT)]), LMCOURSE_NETWORK_LOG=str(log),
               HF_HOME=str(tmp_path / "hf"),  # an empty Hugging Face cache: nothing to load, nothing to fetch
               LMCOURSE_FAST="1", LMCOURSE_PROGRESS="text")
    return env, log


def attempts(log: Path) -> str:
    return log.read_text() if log.exists() else ""


def test_the_guard_catches_a_connection_even_when_it_is_swallowed(guarded_env):
    env, log = guarded_env
    code = "import socket\ntry:\n    socket.create_connection(('example.com', 80), timeout=1)\nexcept OSError:\n    pass\n"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert "example.com" in attempts(log)


LOADING_PATHS = '''
import torch, transformers
from lmcourse import data
from lmcourse.finetune import load_local_hf
from lmcourse.gpt import GPT

for name in ("lee", "wiki", "polarity"):
    data.load_corpus(name, "valid")
for name in data.SHIPPED:
    data.shipped_path(name)
data.load_digits("valid")
data.load_labelled_sentences("valid")
data.corpus_tokenizer("wiki", "char")
from lmcourse.embeddings import evaluate_embeddings  # imports gensim
# a model that is in the local cache (a tiny GPT-2 and a word-level tokenizer, in the Hub cache layout)
import os
from pathlib import Path
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

snapshot = Path(os.environ["HF_HOME"]) / "hub" / "models--local--tiny-gpt2" / "snapshots" / ("0" * 40)
transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=3, n_positions=8, n_embd=8, n_layer=1, n_head=2,
                                                     bos_token_id=None, eos_token_id=None)).save_pretrained(snapshot)
words = Tokenizer(WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
words.pre_tokenizer = Whitespace()
transformers.PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]").save_pretrained(snapshot)
(snapshot.parents[1] / "refs").mkdir()
(snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
model, tok, message = load_local_hf("local/tiny-gpt2", task="causal-lm")
assert type(model).__name__ == "GPT2LMHeadModel" and tok("a b")["input_ids"] == [0, 1], message
# a model in the cache whose weights were cut short: present, but unreadable
import shutil
torn = Path(os.environ["HF_HOME"]) / "hub" / "models--local--torn-gpt2"
shutil.copytree(snapshot.parents[1], torn)
(torn / "snapshots" / ("0" * 40) / "model.safetensors").write_bytes(b"cut short")
model, tok, message = load_local_hf("local/torn-gpt2", task="causal-lm")
assert model is None and f"is in the local cache at {torn} but could not be read" in message, message
assert f"delete {torn}" in message, message
# and models that are not
for task in ("question-answering", "base", "causal-lm"):
    model, tok, message = load_local_hf("distilbert-base-cased-distilled-squad", task=task)
    assert model is None and "not in the local Hugging Face cache" in message, message
hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1,
                                                          n_head=2)).eval()
ids = torch.randint(50, (1, 4))
hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False, pad_token_id=0)
GPT.from_hf(hf)
import huggingface_hub.constants as constants
assert not constants.HF_HUB_OFFLINE, "load_local_hf left the Hub client offline for the rest of the session"
print("ok")
'''


def test_package_loading_paths_open_no_network_connection(guarded_env):
    env, log = guarded_env
    done = subprocess.run([sys.executable, "-c", LOADING_PATHS], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert not attempts(log), f"network attempts:\n{attempts(log)}"
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", ["00_setup", "06_gpt_generation"])
def test_a_fast_notebook_run_opens_no_network_connection(guarded_env, notebook):
    from nbclient import NotebookClient

    env, log = guarded_env
    path = ROOT / "notebooks" / f"{notebook}.ipynb"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}) \
        .execute(env=env)
    assert not attempts(log), f"network attempts:\n{attempts(log)}"
    errors = [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, json.dumps(errors)[:2000]


@pytest.mark.parametrize("environment", [None, "1"])
@pytest.mark.parametrize("users_flag", [True, False])
def test_offline_gives_back_the_flag_the_user_set_not_the_environments(monkeypatch, environment, users_flag):
    import huggingface_hub.constants as constants

    from lmcourse.hub import offline

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    if environment is not None:
        monkeypatch.setenv("HF_HUB_OFFLINE", environment)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", users_flag)  # set in a session, after the import
    with offline():
        assert constants.HF_HUB_OFFLINE is True
    assert constants.HF_HUB_OFFLINE is users_flag
    assert os.environ.get("HF_HUB_OFFLINE") == environment and "TRANSFORMERS_OFFLINE" not in os.environ


class _Payload:
    """Unpickling this runs code: it creates the file it names."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _torn_folder(tmp_path, how):
    import torch
    import transformers

    folder = tmp_path / f"tiny-gpt2-{how}"
    transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=3, n_positions=8, n_embd=8, n_layer=1, n_head=2,
                                                         bos_token_id=None, eos_token_id=None)).save_pretrained(folder)
    weights = folder / "model.safetensors"
    if how == "pickle":  # an old-style .bin whose pickle would run code if loaded unsafely
        weights.unlink()
        torch.save({"weight": _Payload(tmp_path / "code-ran")}, folder / "pytorch_model.bin")
    elif how == "truncated":  # a download cut short
        weights.write_bytes(weights.read_bytes()[:50])
    else:
        (folder / "config.json").write_text("{not json")
    return folder


@pytest.mark.parametrize("how", ["pickle", "truncated", "bad-config"])
def test_a_present_but_unreadable_model_is_reported_as_such_with_the_fix(tmp_path, how):
    from lmcourse.hub import load_local_hf

    folder = _torn_folder(tmp_path, how)
    model, tokenizer, why = load_local_hf(str(folder), task="causal-lm")
    assert model is None and tokenizer is None
    assert f"is in the local cache at {folder} but could not be read" in why and f"delete {folder}" in why
    assert not (tmp_path / "code-ran").exists()
