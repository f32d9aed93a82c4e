"""Every mistake named: a table of bad inputs to the public API and the error each must raise.

Each row is (id, call, expected exception, words its message must contain). A row passes when the call
raises the expected exception (or one of a tuple of them) and its message names the argument and the value
(and, where a row says so, the fix). Rows whose `expected` is None are inputs the package accepts on purpose
(int32 token ids are converted; NaN in gives NaN out): they must run without an error. NaN and inf inputs
must never come out as finite numbers: rows wrapped in `_nan_visible` pass when the call refuses them or
returns NaN.

Re-measure the audit's count (clear / obscure / silently accepted) with

    python -m tests.test_bad_inputs
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import math
import re
import sys
import threading
import unicodedata
import urllib.error
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from unittest import mock

import numpy as np
import pytest
import torch

from lmcourse import (
    attention,
    charlm,
    checks,
    core,
    data,
    diffusion,
    distributed,
    embeddings,
    generate,
    gpt,
    mlm,
    ngram,
    rnn,
    seq2seq,
    sequences,
    skipgram,
    tasks,
    text_diffusion,
    tokenizers,
    toy2d,
    train,
    transformer,
)
from lmcourse.denoisers import MLPDenoiser, UNet8

NAN, INF = math.nan, math.inf


@dataclass
class Row:
    id: str
    call: Callable[[], object]
    expected: type[BaseException] | tuple[type[BaseException], ...] | None  # None: accepted on purpose, must run
    words: tuple[str, ...] = ()


ROWS: list[Row] = []


def row(id: str, call: Callable[[], object],
        expected: type[BaseException] | tuple[type[BaseException], ...] | None = ValueError, *words: str) -> None:
    ROWS.append(Row(id, call, expected, tuple(str(w) for w in words)))


def bad_values(id: str, build: Callable[..., object], arg: str, values, *extra: str) -> None:
    """One row per bad value of `arg`: the message must name the argument and the value."""
    for value in values:
        row(f"{id}-{arg}={value!r}", functools.partial(build, **{arg: value}), ValueError, arg, _shown(value), *extra)


def _shown(value) -> str:
    """How a message shows the value: a str as itself (inside its quotes), anything else as its repr."""
    return value if isinstance(value, str) else repr(value)


SIZES = (0, -1, True, 2.5)          # not an int >= 1
COUNTS = (-1, True, 2.5)            # not an int >= 0
PROBS = (NAN, -0.1, 1.5)            # not in (0, 1]
POSITIVE = (0.0, -1.0, NAN, INF)    # not a finite number > 0


# ----------------------------------------------------------------------------- small fixtures

V = 11  # vocabulary of the tiny models


@functools.cache
def tiny_gpt() -> gpt.GPT:
    torch.manual_seed(0)
    return gpt.GPT(gpt.GPTConfig(vocab_size=V, block_size=16, n_layer=1, n_head=2, n_embd=8)).eval()


def prompt(dtype=torch.long) -> torch.Tensor:
    return torch.tensor([[1, 2, 3]], dtype=dtype)


@functools.cache
def tiny_lm() -> ngram.NGramLM:
    return ngram.NGramLM(2).fit("the cat sat on the mat".split())


@functools.cache
def tiny_kv():
    words = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy"]
    return embeddings.to_keyed_vectors(words, np.random.default_rng(0).normal(size=(len(words), 4)))


@functools.cache
def tiny_char_lstm() -> charlm.CharLSTM:
    torch.manual_seed(0)
    return charlm.CharLSTM(V, embed_dim=4, hidden_size=8).eval()


@functools.cache
def tiny_denoiser() -> text_diffusion.TextDenoiser:
    torch.manual_seed(0)
    return text_diffusion.TextDenoiser(V, block_size=8, n_layer=1, n_head=2, n_embd=8).eval()


@functools.cache
def tiny_encoder() -> transformer.Encoder:
    torch.manual_seed(0)
    return transformer.Encoder(transformer.TransformerConfig(V, max_len=8, n_layer=1, n_head=2, n_embd=8)).eval()


SCHEDULE = diffusion.NoiseSchedule(T=10)
TEXT = "one line of text\nanother line of text\na third line\n"


def zero_eps(x, t):
    return torch.zeros_like(x)


def flat_eps(x, t):  # a denoiser whose output shape differs from its input
    return torch.zeros(x.shape[0], 1)


def linear_model():
    model = torch.nn.Linear(2, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def run_train(batches=None, **overrides):
    """lmcourse.train.train on a linear model for two steps, with `overrides` replacing the defaults."""
    model, opt = linear_model()
    batches = [(torch.randn(4, 2), torch.randn(4, 1))] if batches is None else batches
    options = dict(optimizer=opt, steps=2, progress=False,
                   loss_fn=lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]))
    options.update(overrides)
    return train.train(model, batches, **options)


# ----------------------------------------------------------------------------- core

bad_values("seed_everything", lambda seed: core.seed_everything(seed), "seed", (-1, True, 2.5, "0"))
row("get_device-unknown", lambda: core.get_device("tpu"), ValueError, "tpu", "cpu")
row("get_device-absent", lambda: core.get_device("cuda:7"), ValueError, "cuda:7", "available")
row("get_device-not-a-string", lambda: core.get_device(3), ValueError, "prefer", "3")
for _arg in ("vocab_size",):
    bad_values("check_positive_ints", lambda vocab_size: core.check_positive_ints(vocab_size=vocab_size), _arg, SIZES)


def _fast_env(value):
    with mock.patch.dict("os.environ", {core.FAST_ENV: value}):
        return core.fast_mode()


row("fast_mode-env=maybe", lambda: _fast_env("maybe"), ValueError, "LMCOURSE_FAST", "maybe")

# ----------------------------------------------------------------------------- data and tokenizers

bad_values("load_corpus", lambda name: data.load_corpus(name), "name", ("nope", "LEE"), "lee")
bad_values("load_corpus", lambda split: data.load_corpus("lee", split), "split", ("test", "validation"), "valid")
row("load_corpus-name=3", lambda: data.load_corpus(3), ValueError, "name", "3")
bad_values("load_labelled_sentences", lambda split: data.load_labelled_sentences(split), "split", ("dev",))
bad_values("load_digits", lambda split: data.load_digits(split), "split", ("dev",))
bad_values("shipped_path", lambda name: data.shipped_path(name), "name", ("mnist",))
bad_values("corpus_tokenizer", lambda level: data.corpus_tokenizer("lee", level), "level", ("byte",))
bad_values("split_text", lambda valid_fraction: data.split_text(TEXT, valid_fraction), "valid_fraction",
           (0, 1, NAN, 1.5))
row("split_text-empty", lambda: data.split_text("   "), ValueError, "text", "empty")
row("split_text-one-line", lambda: data.split_text("no line break at all"), ValueError, "line")
row("split_text-not-str", lambda: data.split_text(123), ValueError, "text", "str")
bad_values("download_corpus", lambda name: data.download_corpus(name), "name", ("wiki", "shakespeare"))
bad_values("download_corpus", lambda timeout: data.download_corpus(timeout=timeout), "timeout", (0, -1.0, NAN))


class _Response(io.BytesIO):
    def __init__(self, payload: bytes, length: int):
        super().__init__(payload)
        self.headers = {"Content-Length": str(length)}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _download_with(urlopen_effect):
    """download_corpus into an empty temporary cache, with urllib's urlopen replaced by `urlopen_effect`."""
    import tempfile

    with tempfile.TemporaryDirectory() as cache, mock.patch.dict("os.environ", {"LMCOURSE_CACHE": cache}), \
            mock.patch("urllib.request.urlopen", side_effect=urlopen_effect):
        return data.download_corpus("tinyshakespeare")


def _http_error(code):
    def effect(url, timeout=None):
        raise urllib.error.HTTPError(url, code, "Not Found" if code == 404 else "Server Error", {}, None)
    return effect


row("download_corpus-404", lambda: _download_with(_http_error(404)), ConnectionError, "404", "tinyshakespeare")
row("download_corpus-404-not-offline", lambda: _download_with(_http_error(404)), ConnectionError, "answered")
row("download_corpus-500", lambda: _download_with(_http_error(500)), ConnectionError, "500")
row("download_corpus-truncated", lambda: _download_with(lambda url, timeout=None: _Response(b"abc", 1000)),
    ConnectionError, "3", "1000", "again")
row("download_corpus-offline", lambda: _download_with(urllib.error.URLError("no route")), ConnectionError,
    "offline", "lee")
row("download_corpus-wrong-sha256", lambda: _download_with(lambda url, timeout=None: _Response(b"abc", 3)),
    ValueError, "sha256", "tinyshakespeare")


def _corrupt_shipped(name):
    data._verified.cache_clear()
    with mock.patch.dict(data.SHIPPED, {name: data.ShippedFile(data.SHIPPED[name].package, data.SHIPPED[name].relpath,
                                                               "0" * 64, "tampered")}):
        try:
            return data.shipped_path(name)
        finally:
            data._verified.cache_clear()


row("shipped_path-digits-checksum-names-scikit-learn", lambda: _corrupt_shipped("digits"), ValueError,
    "scikit-learn", "sha256")
row("shipped_path-lee-checksum-names-gensim", lambda: _corrupt_shipped("lee"), ValueError, "gensim", "sha256")

bad_values("MarkovSource", lambda vocab_size: data.MarkovSource(vocab_size), "vocab_size", (1, True, 2.5))
bad_values("MarkovSource", lambda order: data.MarkovSource(3, order), "order", (-1, True, 1.5))
bad_values("MarkovSource", lambda concentration: data.MarkovSource(3, 1, concentration=concentration),
           "concentration", POSITIVE)
bad_values("MarkovSource.sample", lambda n: data.MarkovSource(3).sample(n), "n", SIZES)
bad_values("MarkovSource.sample", lambda seed: data.MarkovSource(3).sample(5, seed=seed), "seed", (-1, 2.5))
row("MarkovSource.cross_entropy-out-of-vocab", lambda: data.MarkovSource(3).cross_entropy([0, 1, 5]), ValueError,
    "tokens", "5")
row("MarkovSource.cross_entropy-too-short", lambda: data.MarkovSource(3, 2).cross_entropy([0, 1]), ValueError,
    "tokens", "order")

bad_values("Vocabulary.from_counts", lambda min_count: tokenizers.Vocabulary.from_counts(Counter("ab"), min_count),
           "min_count", SIZES)
bad_values("Vocabulary.from_counts", lambda max_size: tokenizers.Vocabulary.from_counts(Counter("ab"), 1, max_size),
           "max_size", SIZES)
row("CharTokenizer.from_text-empty", lambda: tokenizers.CharTokenizer.from_text(""), ValueError, "empty")
row("CharTokenizer.from_text-not-str", lambda: tokenizers.CharTokenizer.from_text(123), ValueError, "text", "str")
row("WordTokenizer.from_text-not-str", lambda: tokenizers.WordTokenizer.from_text(["a", "b"]), ValueError, "text",
    "str")
bad_values("WordTokenizer.from_text", lambda max_size: tokenizers.WordTokenizer.from_text("a b c", 1, max_size),
           "max_size", (0, -1, True))
_CHARS = tokenizers.CharTokenizer.from_text("abc")
_WORDS = tokenizers.WordTokenizer.from_text("a b c")
row("CharTokenizer.encode-not-str", lambda: _CHARS.encode(123), ValueError, "text", "str")
row("WordTokenizer.encode-not-str", lambda: _WORDS.encode(None), ValueError, "text", "str")
for _name, _tok in (("CharTokenizer", _CHARS), ("WordTokenizer", _WORDS)):
    row(f"{_name}.decode-id-too-large", functools.partial(_tok.decode, [1, 99]), ValueError, "99", "vocab_size")
    row(f"{_name}.decode-negative-id", functools.partial(_tok.decode, [1, -1]), ValueError, "-1", "vocab_size")
    row(f"{_name}.decode-float-id", functools.partial(_tok.decode, [1.5]), ValueError, "1.5", "int")
    row(f"{_name}.decode-int32-tensor", functools.partial(_tok.decode, torch.tensor([1, 2], dtype=torch.int32)), None)

# ----------------------------------------------------------------------------- n-grams

bad_values("NGramLM", lambda order: ngram.NGramLM(order), "order", (0, True, 2.5, "3"))
bad_values("NGramLM", lambda smoothing: ngram.NGramLM(2, smoothing), "smoothing", ("laplace", "kn"))
bad_values("NGramLM", lambda k: ngram.NGramLM(2, "add_k", k=k), "k", POSITIVE)
bad_values("NGramLM", lambda discount: ngram.NGramLM(2, discount=discount), "discount", (0, 1, NAN, -0.5))
bad_values("NGramLM", lambda min_count: ngram.NGramLM(2, min_count=min_count), "min_count", SIZES)
row("NGramLM.fit-empty", lambda: ngram.NGramLM(2).fit([]), ValueError, "tokens", "empty")
row("NGramLM.fit-not-iterable", lambda: ngram.NGramLM(2).fit(123), ValueError, "tokens", "123")
row("NGramLM.prob-before-fit", lambda: ngram.NGramLM(2).prob("a"), ValueError, "fit")
row("NGramLM.prob-context-not-sequence", lambda: tiny_lm().prob("cat", 5), ValueError, "context", "5")
row("NGramLM.cross_entropy-empty", lambda: tiny_lm().cross_entropy([]), ValueError, "tokens", "empty")
row("NGramLM.cross_entropy-before-fit", lambda: ngram.NGramLM(2).cross_entropy(["a"]), ValueError, "fit")
bad_values("NGramLM.generate", lambda n: tiny_lm().generate(n), "n", COUNTS)
bad_values("NGramLM.generate", lambda temperature: tiny_lm().generate(3, temperature=temperature), "temperature",
           (0, -1.0, NAN, INF))
bad_values("NGramLM.generate", lambda seed: tiny_lm().generate(3, seed=seed), "seed", (-1, 2.5))
row("NGramLM.generate-context-not-sequence", lambda: tiny_lm().generate(3, context=5), ValueError, "context", "5")

# ----------------------------------------------------------------------------- embeddings and skip-gram

_SENTS = [["a", "b", "c"], ["b", "c", "d"]]
bad_values("corpus_sentences", lambda max_words: embeddings.corpus_sentences("lee", max_words=max_words),
           "max_words", (0, -5, True))
bad_values("train_word2vec", lambda sg: embeddings.train_word2vec(_SENTS, sg=sg), "sg", (2, -1, "skip"))
for _arg in ("vector_size", "window", "min_count", "epochs", "workers", "negative"):
    bad_values("train_word2vec", lambda _a=_arg, **kw: embeddings.train_word2vec(_SENTS, **kw), _arg, SIZES)
bad_values("train_word2vec", lambda sample: embeddings.train_word2vec(_SENTS, sample=sample), "sample", (-1e-3, NAN))
row("train_word2vec-sentences-str", lambda: embeddings.train_word2vec("a b c"), ValueError, "sentences", "str")
row("train_word2vec-sentences-empty", lambda: embeddings.train_word2vec([]), ValueError, "sentences", "empty")
row("train_word2vec-sentences-of-str", lambda: embeddings.train_word2vec(["a b c", "d e"]), ValueError, "sentences",
    "word lists")
row("to_keyed_vectors-shape", lambda: embeddings.to_keyed_vectors(["a", "b"], np.zeros((3, 4))), ValueError,
    "vectors", "(3, 4)")
row("to_keyed_vectors-all-nan", lambda: embeddings.to_keyed_vectors(["a", "b"], np.full((2, 4), NAN)), ValueError,
    "vectors", "nan")
row("to_keyed_vectors-one-inf-row", lambda: embeddings.to_keyed_vectors(["a", "b"], np.array([[1.0, 2], [INF, 0]])),
    ValueError, "vectors", "'b'")
row("to_keyed_vectors-duplicate-words", lambda: embeddings.to_keyed_vectors(["a", "a"], np.eye(2)), ValueError,
    "words", "'a'")
bad_values("word_pairs", lambda name: embeddings.word_pairs(name), "name", ("ws353",))
row("evaluate_embeddings-not-kv", lambda: embeddings.evaluate_embeddings(np.zeros((3, 4))), ValueError, "kv",
    "to_keyed_vectors")
bad_values("evaluate_embeddings", lambda restrict_vocab: embeddings.evaluate_embeddings(tiny_kv(), restrict_vocab),
           "restrict_vocab", SIZES)
row("cosine_similarity-shape", lambda: embeddings.cosine_similarity(np.ones(3), np.ones(4)), ValueError, "(3,)",
    "(4,)")
row("cosine_similarity-nan-in-nan-out", lambda: embeddings.cosine_similarity(np.full(3, NAN), np.ones(3)), None)
row("nearest_neighbours-missing-word", lambda: embeddings.nearest_neighbours(tiny_kv(), "zebra"), ValueError, "zebra")
bad_values("nearest_neighbours", lambda topn: embeddings.nearest_neighbours(tiny_kv(), "king", topn), "topn", SIZES)
row("analogy-missing-word", lambda: embeddings.analogy(tiny_kv(), "king", "man", "zebra"), ValueError, "zebra")
bad_values("analogy", lambda topn: embeddings.analogy(tiny_kv(), "king", "man", "woman", topn), "topn", SIZES)
row("weat-too-few-targets", lambda: embeddings.weat(tiny_kv(), ["king"], ["queen", "man"], ["paris"], ["rome"]),
    ValueError, "targets_x", "king")
bad_values("weat", lambda n_permutations: embeddings.weat(tiny_kv(), ["king", "man"], ["queen", "woman"], ["paris"],
                                                          ["rome"], n_permutations), "n_permutations", SIZES)
bad_values("one_hot_memory", lambda vocab_size: embeddings.one_hot_memory(vocab_size), "vocab_size", SIZES)
bad_values("one_hot_memory", lambda dim: embeddings.one_hot_memory(10, dim), "dim", SIZES)


def _raw_kv(words, vectors):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors(words, vectors.astype(np.float32))
    return kv


row("nearest_neighbours-nan-vectors", lambda: embeddings.nearest_neighbours(_raw_kv(["a", "b", "c"],
                                                                                    np.full((3, 3), NAN)), "a"),
    ValueError, "nan", "'a'")
row("analogy-nan-vectors", lambda: embeddings.analogy(_raw_kv(["a", "b", "c", "d"], np.full((4, 3), NAN)), "a", "b",
                                                      "c"), ValueError, "nan")
row("evaluate_embeddings-nan-vectors", lambda: embeddings.evaluate_embeddings(_raw_kv(["king", "queen"],
                                                                                      np.full((2, 3), NAN))),
    ValueError, "nan")

bad_values("build_vocab", lambda min_count: skipgram.build_vocab(_SENTS, min_count), "min_count", SIZES)
row("build_vocab-empty", lambda: skipgram.build_vocab([]), ValueError, "sentences", "empty")
bad_values("keep_probabilities", lambda sample: skipgram.keep_probabilities(np.array([5, 3]), sample), "sample",
           (-1e-3, NAN, INF))
bad_values("negative_table", lambda power: skipgram.negative_table(np.array([5, 3]), power), "power", (NAN, INF))
bad_values("negative_table", lambda size: skipgram.negative_table(np.array([5, 3]), size=size), "size", SIZES)
bad_values("skipgram_pairs", lambda window: skipgram.skipgram_pairs(np.arange(4), np.zeros(4, dtype=int), window,
                                                                    np.random.default_rng(0)), "window", SIZES)
bad_values("SkipGramNS", lambda vocab_size: skipgram.SkipGramNS(vocab_size, 4), "vocab_size", SIZES)
bad_values("SkipGramNS", lambda dim: skipgram.SkipGramNS(5, dim), "dim", SIZES)
for _arg in ("vector_size", "window", "negative", "epochs", "batch_size", "min_count"):
    bad_values("train_skipgram", lambda _a=_arg, **kw: skipgram.train_skipgram(_SENTS, **kw), _arg, SIZES)
bad_values("train_skipgram", lambda alpha: skipgram.train_skipgram(_SENTS, alpha=alpha), "alpha", (0.0, -1.0, NAN, INF))
bad_values("train_skipgram", lambda min_alpha: skipgram.train_skipgram(_SENTS, min_alpha=min_alpha), "min_alpha",
           (0.0, NAN, 1.0))
bad_values("train_skipgram", lambda sample: skipgram.train_skipgram(_SENTS, sample=sample), "sample", (-1.0, NAN))
row("train_skipgram-sentences-str", lambda: skipgram.train_skipgram("a b c"), ValueError, "sentences", "str")

# ----------------------------------------------------------------------------- recurrent networks

for _cls in (rnn.RNNCell, rnn.LSTMCell, rnn.GRUCell):
    bad_values(_cls.__name__, lambda input_size, _c=_cls: _c(input_size, 4), "input_size", SIZES)
    bad_values(_cls.__name__, lambda hidden_size, _c=_cls: _c(3, hidden_size), "hidden_size", SIZES)
    row(f"{_cls.__name__}-input-features", lambda _c=_cls: _c(3, 4)(torch.zeros(2, 5)), ValueError, "input_size", "5")
    row(f"{_cls.__name__}-input-3d", lambda _c=_cls: _c(3, 4)(torch.zeros(2, 1, 3)), ValueError, "input", "(2, 1, 3)")
    row(f"{_cls.__name__}-input-not-tensor", lambda _c=_cls: _c(3, 4)([[0.0, 0, 0]]), ValueError, "input", "list")
    row(f"{_cls.__name__}-input-long", lambda _c=_cls: _c(3, 4)(torch.zeros(2, 3, dtype=torch.long)), ValueError,
        "input", "int64")
row("RNNCell-nonlinearity", lambda: rnn.RNNCell(3, 4, nonlinearity="sigmoid"), ValueError, "nonlinearity", "sigmoid")
row("RNNCell-hx-shape", lambda: rnn.RNNCell(3, 4)(torch.zeros(2, 3), torch.zeros(2, 5)), ValueError, "hx", "(2, 5)")
row("LSTMCell-hx-not-tuple", lambda: rnn.LSTMCell(3, 4)(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, "hx",
    "tuple")
row("LSTMCell-c-shape", lambda: rnn.LSTMCell(3, 4)(torch.zeros(2, 3), (torch.zeros(2, 4), torch.zeros(1, 4))),
    ValueError, "c", "(1, 4)")
for _cls in (rnn.RNN, rnn.LSTM, rnn.GRU):
    bad_values(_cls.__name__, lambda num_layers, _c=_cls: _c(3, 4, num_layers), "num_layers", SIZES)
    bad_values(_cls.__name__, lambda dropout, _c=_cls: _c(3, 4, 2, dropout=dropout), "dropout", (1.0, -0.1, NAN))
    row(f"{_cls.__name__}-batch_first=False", lambda _c=_cls: _c(3, 4, batch_first=False), ValueError, "batch_first")
    row(f"{_cls.__name__}-bidirectional", lambda _c=_cls: _c(3, 4, bidirectional="yes"), ValueError, "bidirectional",
        "yes")
    row(f"{_cls.__name__}-input-2d", lambda _c=_cls: _c(3, 4)(torch.zeros(2, 3)), ValueError, "input", "(2, 3)")
    row(f"{_cls.__name__}-input-features", lambda _c=_cls: _c(3, 4)(torch.zeros(2, 5, 6)), ValueError, "6",
        "input_size")
row("LSTM-h0-shape", lambda: rnn.LSTM(3, 4)(torch.zeros(2, 5, 3), (torch.zeros(2, 2, 4), torch.zeros(1, 2, 4))),
    ValueError, "h0", "(2, 2, 4)")

bad_values("CharLSTM", lambda vocab_size: charlm.CharLSTM(vocab_size), "vocab_size", SIZES)
bad_values("CharLSTM", lambda hidden_size: charlm.CharLSTM(5, hidden_size=hidden_size), "hidden_size", SIZES)
bad_values("CharLSTM", lambda dropout: charlm.CharLSTM(5, num_layers=2, dropout=dropout), "dropout", (1.0, NAN))
bad_values("CharLSTM", lambda impl: charlm.CharLSTM(5, impl=impl), "impl", ("cudnn",))
row("CharLSTM-ids-out-of-vocab", lambda: tiny_char_lstm()(torch.tensor([[1, V]])), ValueError, "ids", str(V))
row("CharLSTM-ids-negative", lambda: tiny_char_lstm()(torch.tensor([[-1, 2]])), ValueError, "ids", "-1")
row("CharLSTM-ids-float", lambda: tiny_char_lstm()(torch.tensor([[1.0, 2.0]])), ValueError, "ids", "float32")
row("CharLSTM-ids-1d", lambda: tiny_char_lstm()(torch.tensor([1, 2])), ValueError, "ids", "(2,)")
row("CharLSTM-ids-int32", lambda: tiny_char_lstm()(torch.tensor([[1, 2]], dtype=torch.int32)), None)
# generate on a CharLSTM (no config.vocab_size to check the prompt against): the embedding names the id
row("generate-CharLSTM-prompt-out-of-vocab",
    lambda: generate.generate(tiny_char_lstm(), torch.tensor([[1, 99]]), 3), ValueError, "ids", "99", "vocab_size")
row("charlm.lm_loss-targets-shape", lambda: charlm.lm_loss(tiny_char_lstm(), (torch.tensor([[1, 2, 3]]),
                                                                              torch.tensor([[1, 2]]))),
    ValueError, "y", "(1, 2)")
row("charlm.lm_loss-targets-float", lambda: charlm.lm_loss(tiny_char_lstm(), (torch.tensor([[1, 2]]),
                                                                              torch.tensor([[1.0, 2.0]]))),
    ValueError, "y", "float32")
bad_values("LSTMClassifier", lambda num_classes: charlm.LSTMClassifier(5, num_classes), "num_classes", (1, 0, True))
row("LSTMClassifier-lengths-zero", lambda: charlm.LSTMClassifier(5)(torch.tensor([[1, 2]]), torch.tensor([0])),
    ValueError, "lengths", "0")

# ----------------------------------------------------------------------------- attention and the Transformer

bad_values("causal_mask", lambda t_q: attention.causal_mask(t_q), "t_q", SIZES)
bad_values("causal_mask", lambda t_k: attention.causal_mask(3, t_k), "t_k", SIZES)
row("padding_mask-empty", lambda: attention.padding_mask([]), ValueError, "lengths")
row("padding_mask-float", lambda: attention.padding_mask([1.5, 2.0]), ValueError, "lengths", "float")
row("padding_mask-too-long", lambda: attention.padding_mask([5], t_k=3), ValueError, "lengths", "5")
row("padding_mask-negative", lambda: attention.padding_mask([-1, 2]), ValueError, "lengths", "-1")
_q = torch.zeros(2, 3, 4)
row("sdpa-q-k-dim", lambda: attention.scaled_dot_product_attention(_q, torch.zeros(2, 3, 5), torch.zeros(2, 3, 4)),
    ValueError, "q", "k")
row("sdpa-k-v-len", lambda: attention.scaled_dot_product_attention(_q, _q, torch.zeros(2, 4, 4)), ValueError, "k",
    "v")
row("sdpa-q-1d", lambda: attention.scaled_dot_product_attention(torch.zeros(4), _q, _q), ValueError, "q", "(4,)")
bad_values("sdpa", lambda dropout_p: attention.scaled_dot_product_attention(_q, _q, _q, dropout_p=dropout_p),
           "dropout_p", (1.0, -0.1, NAN))
bad_values("sdpa", lambda scale: attention.scaled_dot_product_attention(_q, _q, _q, scale=scale), "scale", (NAN, INF))
row("sdpa-mask-int", lambda: attention.scaled_dot_product_attention(_q, _q, _q, mask=torch.ones(3, 3, dtype=torch.long)),
    ValueError, "mask", "int64", ".bool()")
row("sdpa-mask-shape", lambda: attention.scaled_dot_product_attention(_q, _q, _q, mask=torch.ones(4, 4, dtype=bool)),
    ValueError, "mask", "(4, 4)")
row("sdpa-mask-list", lambda: attention.scaled_dot_product_attention(_q, _q, _q, mask=[[True] * 3] * 3), ValueError,
    "mask", "list")
bad_values("MultiHeadAttention", lambda n_embd: attention.MultiHeadAttention(n_embd, 2), "n_embd", SIZES)
bad_values("MultiHeadAttention", lambda n_head: attention.MultiHeadAttention(8, n_head), "n_head", SIZES)
row("MultiHeadAttention-indivisible", lambda: attention.MultiHeadAttention(8, 3), ValueError, "n_embd=8", "n_head=3")
bad_values("MultiHeadAttention", lambda dropout: attention.MultiHeadAttention(8, 2, dropout), "dropout", (1.0, NAN))
_mha = attention.MultiHeadAttention(8, 2)
_x = torch.zeros(2, 3, 8)
row("MultiHeadAttention-n_embd", lambda: _mha(torch.zeros(2, 3, 6), _x, _x), ValueError, "query", "n_embd=8")
row("MultiHeadAttention-2d", lambda: _mha(torch.zeros(3, 8), _x, _x), ValueError, "query", "(3, 8)")
row("MultiHeadAttention-batch", lambda: _mha(_x, torch.zeros(3, 3, 8), torch.zeros(3, 3, 8)), ValueError, "batch")
row("MultiHeadAttention-mask-int", lambda: _mha(_x, _x, _x, mask=torch.ones(3, 3, dtype=torch.int32)), ValueError,
    "mask", "int32")
row("MultiHeadAttention-mask-shape", lambda: _mha(_x, _x, _x, mask=torch.ones(5, 3, dtype=bool)), ValueError, "mask",
    "(5, 3)")
row("MultiHeadAttention-long-input", lambda: _mha(_x.long(), _x.long(), _x.long()), ValueError, "query", "int64")

bad_values("sinusoidal_positions", lambda n_positions: transformer.sinusoidal_positions(n_positions, 4), "n_positions",
           SIZES)
bad_values("sinusoidal_positions", lambda n_embd: transformer.sinusoidal_positions(4, n_embd), "n_embd",
           (3, 0, True))
bad_values("SinusoidalPositionalEncoding", lambda max_len: transformer.SinusoidalPositionalEncoding(8, max_len),
           "max_len", SIZES)
bad_values("LearnedPositionalEncoding", lambda max_len: transformer.LearnedPositionalEncoding(8, max_len), "max_len",
           SIZES)
row("SinusoidalPositionalEncoding-too-long", lambda: transformer.SinusoidalPositionalEncoding(8, 4)(torch.zeros(1, 5, 8)),
    ValueError, "max_len=4", "(1, 5, 8)")
row("LearnedPositionalEncoding-n_embd", lambda: transformer.LearnedPositionalEncoding(8, 4)(torch.zeros(1, 2, 6)),
    ValueError, "n_embd", "(1, 2, 6)")
bad_values("FeedForward", lambda activation: transformer.FeedForward(8, 16, activation=activation), "activation",
           ("tanh",))
bad_values("FeedForward", lambda n_inner: transformer.FeedForward(8, n_inner), "n_inner", SIZES)
for _cls in (transformer.EncoderLayer, transformer.DecoderLayer):
    bad_values(_cls.__name__, lambda n_inner, _c=_cls: _c(8, 2, n_inner), "n_inner", SIZES)
    bad_values(_cls.__name__, lambda dropout, _c=_cls: _c(8, 2, 16, dropout), "dropout", (1.0, NAN, -0.5))
    bad_values(_cls.__name__, lambda n_head, _c=_cls: _c(8, n_head, 16), "n_head", (3, 0, True))
    bad_values(_cls.__name__, lambda n_embd, _c=_cls: _c(n_embd, 1, 16), "n_embd", SIZES)
    bad_values(_cls.__name__, lambda layer_norm_eps, _c=_cls: _c(8, 2, 16, layer_norm_eps=layer_norm_eps),
               "layer_norm_eps", (-1e-5, NAN))
_enc_layer = transformer.EncoderLayer(8, 2, 16, 0.0)
row("EncoderLayer-key_padding-long", lambda: _enc_layer(_x, key_padding=torch.ones(2, 3, dtype=torch.long)),
    ValueError, "key_padding", "int64")
row("EncoderLayer-key_padding-shape", lambda: _enc_layer(_x, key_padding=torch.ones(2, 4, dtype=bool)), ValueError,
    "key_padding", "(2, 4)")
row("EncoderLayer-x-2d", lambda: _enc_layer(torch.zeros(3, 8)), ValueError, "(3, 8)")
row("DecoderLayer-memory-width", lambda: transformer.DecoderLayer(8, 2, 16, 0.0)(_x, torch.zeros(2, 4, 6)), ValueError,
    "(2, 4, 6)")
for _arg in ("vocab_size", "max_len", "n_layer", "n_head", "n_embd"):
    bad_values("TransformerConfig", lambda _a=_arg, **kw: transformer.TransformerConfig(**{"vocab_size": 10, **kw}),
               _arg, SIZES)
bad_values("TransformerConfig", lambda n_inner: transformer.TransformerConfig(10, n_inner=n_inner), "n_inner", SIZES)
bad_values("TransformerConfig", lambda dropout: transformer.TransformerConfig(10, dropout=dropout), "dropout",
           (1.0, NAN, -0.1))
bad_values("TransformerConfig", lambda positional: transformer.TransformerConfig(10, positional=positional),
           "positional", ("rotary",))
bad_values("TransformerConfig", lambda activation: transformer.TransformerConfig(10, activation=activation),
           "activation", ("swish",))
row("TransformerConfig-indivisible", lambda: transformer.TransformerConfig(10, n_head=3, n_embd=8), ValueError,
    "n_embd=8", "n_head=3")
row("Encoder-ids-float", lambda: tiny_encoder()(torch.tensor([[1.0, 2.0]])), ValueError, "ids", "float32")
row("Encoder-ids-out-of-vocab", lambda: tiny_encoder()(torch.tensor([[1, V]])), ValueError, "ids", str(V))
row("Encoder-ids-1d", lambda: tiny_encoder()(torch.tensor([1, 2])), ValueError, "ids", "(2,)")
row("Encoder-ids-too-long", lambda: tiny_encoder()(torch.ones(1, 9, dtype=torch.long)), ValueError, "max_len=8", "9")
row("Encoder-ids-int32", lambda: tiny_encoder()(torch.tensor([[1, 2]], dtype=torch.int32)), None)
row("Encoder-key_padding-shape", lambda: tiny_encoder()(torch.tensor([[1, 2]]), key_padding=torch.ones(1, 3, dtype=bool)),
    ValueError, "key_padding", "(1, 3)")

# ----------------------------------------------------------------------------- GPT

for _arg in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
    bad_values("GPTConfig", lambda _a=_arg, **kw: gpt.GPTConfig(**{**dict(vocab_size=11, block_size=8, n_layer=1,
                                                                          n_head=2, n_embd=8), **kw}), _arg, SIZES)
bad_values("GPTConfig", lambda dropout: gpt.GPTConfig(11, 8, 1, 2, 8, dropout=dropout), "dropout", (1.0, NAN, -0.1))
row("GPTConfig-indivisible", lambda: gpt.GPTConfig(11, 8, 1, 3, 8), ValueError, "n_embd=8", "n_head=3")
row("GPT-idx-out-of-vocab", lambda: tiny_gpt()(torch.tensor([[1, V]])), ValueError, "idx", str(V), "vocab_size")
row("GPT-idx-negative", lambda: tiny_gpt()(torch.tensor([[-1, 2]])), ValueError, "idx", "-1")
row("GPT-idx-float", lambda: tiny_gpt()(torch.tensor([[1.0, 2.0]])), ValueError, "idx", "float32", ".long()")
row("GPT-idx-bool", lambda: tiny_gpt()(torch.tensor([[True, False]])), ValueError, "idx", "bool")
row("GPT-idx-1d", lambda: tiny_gpt()(torch.tensor([1, 2])), ValueError, "idx", "(2,)")
row("GPT-idx-list", lambda: tiny_gpt()([[1, 2]]), ValueError, "idx", "list")
row("GPT-idx-too-long", lambda: tiny_gpt()(torch.ones(1, 17, dtype=torch.long)), ValueError, "block_size=16", "17")
row("GPT-idx-int32", lambda: tiny_gpt()(torch.tensor([[1, 2]], dtype=torch.int32)), None)
row("GPT-targets-shape", lambda: tiny_gpt()(torch.tensor([[1, 2, 3]]), torch.tensor([[1, 2]])), ValueError, "targets",
    "(1, 2)", "(1, 3)")
row("GPT-targets-flat", lambda: tiny_gpt()(torch.tensor([[1, 2, 3], [1, 2, 3]]), torch.tensor([1, 2, 3])),
    ValueError, "targets", "(3,)")
row("GPT-targets-float", lambda: tiny_gpt()(torch.tensor([[1, 2]]), torch.tensor([[1.0, 2.0]])), ValueError,
    "targets", "float32")
row("GPT-targets-out-of-vocab", lambda: tiny_gpt()(torch.tensor([[1, 2]]), torch.tensor([[1, 99]])), ValueError,
    "targets", "99")
row("GPT-targets-ignore-index", lambda: tiny_gpt()(torch.tensor([[1, 2]]), torch.tensor([[1, -100]])), None)
bad_values("GPT.forward", lambda logits_to_keep: tiny_gpt()(torch.tensor([[1, 2]]), logits_to_keep=logits_to_keep),
           "logits_to_keep", SIZES)
row("GPT-logits_to_keep-with-targets", lambda: tiny_gpt()(torch.tensor([[1, 2, 3]]), torch.tensor([[2, 3, 4]]),
                                                          logits_to_keep=1), ValueError, "logits_to_keep=1", "targets")
bad_values("GPT.configure_optimizer", lambda lr: tiny_gpt().configure_optimizer(lr), "lr", POSITIVE)
bad_values("GPT.configure_optimizer", lambda weight_decay: tiny_gpt().configure_optimizer(1e-3, weight_decay),
           "weight_decay", (-0.1, NAN))
bad_values("GPT.flops_per_token", lambda context: tiny_gpt().flops_per_token(context), "context", SIZES)
row("GPT.from_hf-not-hf", lambda: gpt.GPT.from_hf(torch.nn.Linear(2, 2)), ValueError, "model", "Linear")

# ----------------------------------------------------------------------------- generate


def gen(idx=None, max_new_tokens=3, **kw):
    return generate.generate(tiny_gpt(), prompt() if idx is None else idx, max_new_tokens, **kw)


row("generate-idx-list", lambda: gen([[1, 2]]), ValueError, "idx", "list", "torch.tensor")
row("generate-idx-1d", lambda: gen(torch.tensor([1, 2])), ValueError, "idx", "(2,)")
row("generate-idx-empty", lambda: gen(torch.zeros(1, 0, dtype=torch.long)), ValueError, "idx", "(1, 0)")
row("generate-idx-float", lambda: gen(prompt(torch.float32)), ValueError, "idx", "float32", ".long()")
row("generate-idx-bool", lambda: gen(prompt(torch.bool)), ValueError, "idx", "bool")
row("generate-idx-int32", lambda: gen(prompt(torch.int32)), None)
row("generate-idx-int16", lambda: gen(prompt(torch.int16)), None)
row("generate-idx-out-of-vocab", lambda: gen(torch.tensor([[1, V + 3]])), ValueError, "idx", str(V + 3), "vocab_size")
row("generate-idx-negative", lambda: gen(torch.tensor([[-1, 2]])), ValueError, "idx", "-1")
row("generate-too-long", lambda: gen(max_new_tokens=20), ValueError, "block_size=16", "crop_context")
bad_values("generate", lambda max_new_tokens: gen(max_new_tokens=max_new_tokens), "max_new_tokens",
           (-1, True, 2.5, NAN, "3"))
bad_values("generate", lambda temperature: gen(do_sample=True, temperature=temperature), "temperature",
           (0.0, -1.0, NAN, INF))
bad_values("generate", lambda top_k: gen(do_sample=True, top_k=top_k), "top_k", SIZES)
bad_values("generate", lambda top_p: gen(do_sample=True, top_p=top_p), "top_p", (0.0, NAN, 1.5, -0.5))
bad_values("generate", lambda num_beams: gen(num_beams=num_beams), "num_beams", SIZES)
bad_values("generate", lambda no_repeat_ngram_size: gen(no_repeat_ngram_size=no_repeat_ngram_size),
           "no_repeat_ngram_size", COUNTS)
bad_values("generate", lambda repetition_penalty: gen(repetition_penalty=repetition_penalty), "repetition_penalty",
           POSITIVE)
bad_values("generate", lambda length_penalty: gen(num_beams=2, length_penalty=length_penalty), "length_penalty",
           (NAN, INF))
bad_values("generate", lambda eos_token_id: gen(eos_token_id=eos_token_id), "eos_token_id", (-1, V, True, 2.5))
bad_values("generate", lambda seed: gen(do_sample=True, seed=seed), "seed", (-1, 2.5, True))
bad_values("generate", lambda do_sample: gen(do_sample=do_sample), "do_sample", ("yes", 2))
bad_values("generate", lambda early_stopping: gen(num_beams=2, early_stopping=early_stopping), "early_stopping",
           ("sometimes", 2))
for _mode, _kw in (("greedy", {}), ("sample", {"do_sample": True, "seed": 0}), ("beam", {"num_beams": 2})):
    row(f"generate-no-repeat-bans-whole-vocab-{_mode}",
        functools.partial(gen, max_new_tokens=13, no_repeat_ngram_size=1, **_kw), ValueError, "no_repeat_ngram_size",
        "every")
row("generate-model-without-logits", lambda: generate.generate(torch.nn.Identity(), prompt(), 2), ValueError, "model")
bad_values("top_k_filter", lambda top_k: generate.top_k_filter(torch.zeros(1, 5), top_k), "top_k", SIZES)
bad_values("top_p_filter", lambda top_p: generate.top_p_filter(torch.zeros(1, 5), top_p), "top_p", PROBS)
bad_values("apply_repetition_penalty", lambda penalty: generate.apply_repetition_penalty(prompt(), torch.zeros(1, V),
                                                                                         penalty), "penalty", POSITIVE)
bad_values("apply_no_repeat_ngram", lambda ngram_size: generate.apply_no_repeat_ngram(prompt(), torch.zeros(1, V),
                                                                                      ngram_size), "ngram_size", SIZES)
bad_values("process_scores", lambda temperature: generate.process_scores(prompt(), torch.zeros(1, V), do_sample=True,
                                                                         temperature=temperature), "temperature",
           (0.0, NAN))

# ----------------------------------------------------------------------------- Gaussian diffusion

bad_values("NoiseSchedule", lambda T: diffusion.NoiseSchedule(T), "T", SIZES)
bad_values("NoiseSchedule", lambda kind: diffusion.NoiseSchedule(10, kind), "kind", ("sigmoid",))
bad_values("NoiseSchedule", lambda beta_start: diffusion.NoiseSchedule(10, beta_start=beta_start), "beta_start",
           (0.0, NAN, 0.5))
bad_values("NoiseSchedule", lambda beta_end: diffusion.NoiseSchedule(10, beta_end=beta_end), "beta_end", (1.0, NAN))
bad_values("NoiseSchedule", lambda s: diffusion.NoiseSchedule(10, "cosine", s=s), "s", (NAN, INF, -1.0))
_x0 = torch.zeros(4, 2)
row("q_sample-t-float", lambda: SCHEDULE.q_sample(_x0, torch.zeros(4)), ValueError, "t", "float32")
row("q_sample-t-range", lambda: SCHEDULE.q_sample(_x0, torch.full((4,), 10)), ValueError, "t", "10")
row("q_sample-t-negative", lambda: SCHEDULE.q_sample(_x0, torch.full((4,), -1)), ValueError, "t", "-1")
row("q_sample-t-batch", lambda: SCHEDULE.q_sample(_x0, torch.zeros(3, dtype=torch.long)), ValueError, "t", "3")
row("q_sample-t-2d", lambda: SCHEDULE.q_sample(_x0, torch.zeros(4, 1, dtype=torch.long)), ValueError, "t", "(4, 1)")
row("q_sample-x0-1d", lambda: SCHEDULE.q_sample(torch.zeros(4), torch.zeros(4, dtype=torch.long)), ValueError, "x0",
    "(4,)")
row("q_sample-noise-shape", lambda: SCHEDULE.q_sample(_x0, torch.zeros(4, dtype=torch.long), torch.zeros(4, 3)),
    ValueError, "noise", "(4, 3)")
row("q_sample-t-int32", lambda: SCHEDULE.q_sample(_x0, torch.zeros(4, dtype=torch.int32)), None)
bad_values("timestep_embedding", lambda dim: diffusion.timestep_embedding(torch.zeros(2, dtype=torch.long), dim), "dim",
           (3, 0, True))
bad_values("guided", lambda guidance: diffusion.guided(lambda x, t, y: x, torch.zeros(2), guidance, 0), "guidance",
           (-1.0, NAN, INF))
row("guided-no-null-class", lambda: diffusion.guided(lambda x, t, y: x, torch.zeros(2), 1.0), ValueError, "null_class")
row("diffusion_loss-eps-shape", lambda: diffusion.diffusion_loss(flat_eps, SCHEDULE, _x0), ValueError, "eps_model",
    "(4, 1)", "(4, 2)")
for _name, _sampler in (("ddpm_sample", diffusion.ddpm_sample),
                        ("ddim_sample", functools.partial(diffusion.ddim_sample, steps=5))):
    bad_values(_name, lambda shape, _s=_sampler: _s(zero_eps, SCHEDULE, shape), "shape", ((0, 2), (4,), (4, -1)))
    bad_values(_name, lambda clip, _s=_sampler: _s(zero_eps, SCHEDULE, (4, 2), clip=clip), "clip", (0.0, -1.0, NAN))
    row(f"{_name}-eps-shape", lambda _s=_sampler: _s(flat_eps, SCHEDULE, (4, 2)), ValueError, "eps_model", "(4, 1)",
        "(4, 2)")
    row(f"{_name}-eps-not-tensor", lambda _s=_sampler: _s(lambda x, t: x.tolist(), SCHEDULE, (4, 2)), ValueError,
        "eps_model", "list")
    row(f"{_name}-schedule-not-schedule", lambda _s=_sampler: _s(zero_eps, 1000, (4, 2)), ValueError, "schedule",
        "NoiseSchedule")
bad_values("ddim_sample", lambda steps: diffusion.ddim_sample(zero_eps, SCHEDULE, (4, 2), steps=steps), "steps",
           (0, True, 2.5, 11))
bad_values("ddim_sample", lambda eta: diffusion.ddim_sample(zero_eps, SCHEDULE, (4, 2), 5, eta=eta), "eta",
           (-1.0, NAN, INF))
row("ddpm_step-t-range", lambda: diffusion.ddpm_step(zero_eps, SCHEDULE, _x0, torch.full((4,), 12)), ValueError, "t",
    "12")
row("ddpm_step-eps-shape", lambda: diffusion.ddpm_step(flat_eps, SCHEDULE, _x0, torch.zeros(4, dtype=torch.long)),
    ValueError, "eps_model", "(4, 1)")
row("energy_distance-features", lambda: diffusion.energy_distance(torch.zeros(3, 2), torch.zeros(3, 3)), ValueError,
    "(3, 2)", "(3, 3)")
row("energy_distance-one-sample", lambda: diffusion.energy_distance(torch.zeros(1, 2), torch.zeros(3, 2)), ValueError,
    "two")
bad_values("mmd_rbf", lambda bandwidth: diffusion.mmd_rbf(torch.randn(3, 2), torch.randn(3, 2), bandwidth),
           "bandwidth", (0.0, -1.0, NAN))
row("energy_distance-nan-in-nan-out", lambda: diffusion.energy_distance(torch.full((3, 2), NAN), torch.zeros(3, 2)),
    None)

row("MLPDenoiser-x-shape", lambda: MLPDenoiser()(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)), ValueError,
    "x", "(4, 3)")
row("MLPDenoiser-t-float", lambda: MLPDenoiser()(torch.zeros(4, 2), torch.zeros(4)), ValueError, "t", "float32")
row("MLPDenoiser-t-batch", lambda: MLPDenoiser()(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long)), ValueError, "t",
    "(3,)")
bad_values("MLPDenoiser", lambda time_dim: MLPDenoiser(time_dim=time_dim), "time_dim", (3, 0, True))
bad_values("MLPDenoiser", lambda hidden: MLPDenoiser(hidden=hidden), "hidden", SIZES)
bad_values("UNet8", lambda channels: UNet8(channels), "channels", (4, 0, True))
bad_values("UNet8", lambda num_classes: UNet8(16, num_classes), "num_classes", (0, -1, True))
row("UNet8-x-shape", lambda: UNet8(8)(torch.zeros(2, 8, 8), torch.zeros(2, dtype=torch.long)), ValueError, "x",
    "(2, 8, 8)")
row("UNet8-no-labels", lambda: UNet8(8, 3)(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long)), ValueError,
    "y", "null_class")
row("UNet8-label-out-of-range", lambda: UNet8(8, 3)(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long),
                                                   torch.tensor([1, 7])), ValueError, "y", "7")
bad_values("make_toy2d", lambda name: toy2d.make_toy2d(name), "name", ("circles",))
bad_values("make_toy2d", lambda n: toy2d.make_toy2d(n=n), "n", SIZES)
bad_values("make_toy2d", lambda seed: toy2d.make_toy2d(seed=seed), "seed", (-1, 2.5))

# ----------------------------------------------------------------------------- text diffusion

bad_values("TextDenoiser", lambda vocab_size: text_diffusion.TextDenoiser(vocab_size), "vocab_size", SIZES)
bad_values("TextDenoiser", lambda block_size: text_diffusion.TextDenoiser(5, block_size), "block_size", SIZES)
bad_values("TextDenoiser", lambda n_layer: text_diffusion.TextDenoiser(5, n_layer=n_layer), "n_layer", SIZES)
bad_values("TextDenoiser", lambda dropout: text_diffusion.TextDenoiser(5, dropout=dropout), "dropout", (1.0, NAN))
row("TextDenoiser-indivisible", lambda: text_diffusion.TextDenoiser(5, n_head=3, n_embd=8), ValueError, "n_embd=8",
    "n_head=3")
row("TextDenoiser-idx-float", lambda: tiny_denoiser()(torch.tensor([[1.0, 2.0]])), ValueError, "idx", "float32")
row("TextDenoiser-idx-out-of-vocab", lambda: tiny_denoiser()(torch.tensor([[1, V + 1]])), ValueError, "idx",
    str(V + 1))
row("TextDenoiser-idx-1d", lambda: tiny_denoiser()(torch.tensor([1, 2])), ValueError, "idx", "(2,)")
row("TextDenoiser-idx-too-long", lambda: tiny_denoiser()(torch.ones(1, 9, dtype=torch.long)), ValueError,
    "block_size=8", "9")
row("TextDenoiser-idx-int32", lambda: tiny_denoiser()(torch.tensor([[1, 2]], dtype=torch.int32)), None)
_ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
# the absorbing (masking) step: renamed from mask_tokens to absorb_tokens during the diffusion work; either name serves
absorb_tokens = getattr(text_diffusion, "absorb_tokens", None) or getattr(text_diffusion, "mask_tokens")
row("mask_tokens-t-shape", lambda: absorb_tokens(_ids, torch.zeros(3), V), ValueError, "t", "(3,)")
row("mask_tokens-t-range", lambda: absorb_tokens(_ids, torch.tensor([0.5, 1.5]), V), ValueError, "t",
    "1.5")
row("mask_tokens-t-nan", lambda: absorb_tokens(_ids, torch.tensor([0.5, NAN]), V), ValueError, "t",
    "nan")
row("mask_tokens-x0-1d", lambda: absorb_tokens(torch.tensor([1, 2]), torch.zeros(1), V), ValueError,
    "x0", "(2,)")
row("mask_tokens-x0-float", lambda: absorb_tokens(_ids.float(), torch.zeros(2), V), ValueError, "x0",
    "float32")
row("masked_diffusion_loss-x0-1d", lambda: text_diffusion.masked_diffusion_loss(tiny_denoiser(), torch.tensor([1, 2])),
    ValueError, "x0", "(2,)")
row("masked_diffusion_loss-x0-mask-id", lambda: text_diffusion.masked_diffusion_loss(tiny_denoiser(),
                                                                                     torch.tensor([[1, V]])),
    ValueError, "x0", str(V))
bad_values("masked_diffusion_loss", lambda t_min: text_diffusion.masked_diffusion_loss(tiny_denoiser(), _ids,
                                                                                       t_min=t_min), "t_min",
           (0.0, NAN, 1.5))
_stream = list(range(V)) * 4
bad_values("diffusion_bound", lambda block_size: text_diffusion.diffusion_bound(tiny_denoiser(), _stream, block_size),
           "block_size", (0, True, 2.5, 9))
bad_values("diffusion_bound", lambda n_times: text_diffusion.diffusion_bound(tiny_denoiser(), _stream,
                                                                             n_times=n_times), "n_times", SIZES)
bad_values("diffusion_bound", lambda batch_size: text_diffusion.diffusion_bound(tiny_denoiser(), _stream,
                                                                                batch_size=batch_size), "batch_size",
           SIZES)
bad_values("diffusion_bound", lambda max_tokens: text_diffusion.diffusion_bound(tiny_denoiser(), _stream,
                                                                                max_tokens=max_tokens), "max_tokens",
           SIZES)
row("diffusion_bound-ids-out-of-vocab", lambda: text_diffusion.diffusion_bound(tiny_denoiser(), [V + 5] * 20),
    ValueError, "ids", str(V + 5))
row("diffusion_bound-ids-float", lambda: text_diffusion.diffusion_bound(tiny_denoiser(), [1.5] * 20), ValueError,
    "ids", "float")
bad_values("sample_text", lambda n: text_diffusion.sample_text(tiny_denoiser(), n), "n", SIZES)
bad_values("sample_text", lambda length: text_diffusion.sample_text(tiny_denoiser(), 1, length), "length",
           (0, True, 2.5, 9))
bad_values("sample_text", lambda steps: text_diffusion.sample_text(tiny_denoiser(), 1, steps=steps), "steps", SIZES)
bad_values("sample_text", lambda temperature: text_diffusion.sample_text(tiny_denoiser(), 1, temperature=temperature),
           "temperature", POSITIVE)
row("ar_loss-targets-shape", lambda: text_diffusion.ar_loss(tiny_denoiser(), _ids, _ids[:, :2]), ValueError, "y",
    "(2, 2)")
row("ar_loss-targets-float", lambda: text_diffusion.ar_loss(tiny_denoiser(), _ids, _ids.float()), ValueError, "y",
    "float32")

# ----------------------------------------------------------------------------- token streams, seq2seq, MLM, fine-tuning

_long_stream = list(range(V)) * 10


def first_batch(it):
    return next(iter(it))


for _arg in ("block_size", "batch_size"):
    bad_values("random_windows", lambda _a=_arg, **kw: first_batch(sequences.random_windows(
        _long_stream, **{"block_size": 4, "batch_size": 2, **kw})), _arg, SIZES)
row("random_windows-too-short", lambda: first_batch(sequences.random_windows([1, 2, 3], 4, 2)), ValueError, "ids",
    "block_size=4")
row("random_windows-ids-float", lambda: first_batch(sequences.random_windows([1.5] * 20, 4, 2)), ValueError, "ids",
    "float")
row("random_windows-ids-2d", lambda: first_batch(sequences.random_windows([[1, 2]] * 20, 4, 2)), ValueError, "ids",
    "(20, 2)")
bad_values("random_windows", lambda seed: first_batch(sequences.random_windows(_long_stream, 4, 2, seed)), "seed",
           (-1, 2.5))
bad_values("Windows", lambda block_size: sequences.Windows(_long_stream, block_size), "block_size", (0, True, 2.5, 200))
_logits_fn = lambda x: torch.zeros(*x.shape, V)  # noqa: E731
bad_values("cross_entropy", lambda block_size: sequences.cross_entropy(_logits_fn, _long_stream, block_size),
           "block_size", SIZES)
bad_values("cross_entropy", lambda batch_size: sequences.cross_entropy(_logits_fn, _long_stream, 4, batch_size),
           "batch_size", SIZES)
bad_values("cross_entropy", lambda max_tokens: sequences.cross_entropy(_logits_fn, _long_stream, 4, max_tokens=max_tokens),
           "max_tokens", SIZES)
row("cross_entropy-logits-shape", lambda: sequences.cross_entropy(lambda x: torch.zeros(x.shape[0], V), _long_stream, 4),
    ValueError, "logits_fn", "(batch, T, vocab)")
row("cross_entropy-ids-out-of-vocab", lambda: sequences.cross_entropy(_logits_fn, [1, 2, 99], 4), ValueError, "99")

bad_values("ReversalTask", lambda n_symbols: tasks.ReversalTask(n_symbols), "n_symbols", (1, 40, True))
bad_values("ReversalTask", lambda min_len: tasks.ReversalTask(min_len=min_len), "min_len", (0, 20, True))
row("ReversalTask.encode-unknown", lambda: tasks.ReversalTask().encode("12x"), ValueError, "x", "alphabet")
bad_values("ReversalTask.sample", lambda n: tasks.ReversalTask().sample(n, seed=0), "n", SIZES)
bad_values("ReversalTask.sample", lambda length: tasks.ReversalTask().sample(2, seed=0, length=length), "length",
           SIZES)
bad_values("Seq2Seq", lambda attention: seq2seq.Seq2Seq(10, attention=attention), "attention", ("dot",))
bad_values("Seq2Seq", lambda vocab_size: seq2seq.Seq2Seq(vocab_size), "vocab_size", (3, True, 2.5))
bad_values("Seq2Seq", lambda hidden: seq2seq.Seq2Seq(10, hidden=hidden), "hidden", SIZES)
_s2s = seq2seq.Seq2Seq(10, 4, 8, "luong")
row("Seq2Seq-lengths-shape", lambda: _s2s(torch.ones(2, 3, dtype=torch.long), torch.tensor([3]),
                                          torch.ones(2, 2, dtype=torch.long)), ValueError, "src_lengths", "(1,)")
row("Seq2Seq-lengths-zero", lambda: _s2s(torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 0]),
                                         torch.ones(2, 2, dtype=torch.long)), ValueError, "src_lengths", "0")
row("Seq2Seq-src-out-of-vocab", lambda: _s2s(torch.tensor([[1, 12]]), torch.tensor([2]), torch.ones(1, 2,
                                                                                                   dtype=torch.long)),
    ValueError, "src", "12")
row("Seq2Seq-tgt-batch", lambda: _s2s(torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 3]),
                                      torch.ones(1, 2, dtype=torch.long)), ValueError, "tgt_in", "(1, 2)")
bad_values("Seq2Seq.greedy_decode", lambda max_len: _s2s.greedy_decode(torch.ones(1, 3, dtype=torch.long),
                                                                       torch.tensor([3]), max_len), "max_len", SIZES)

_specials = mlm.SpecialTokens(tokenizers.CharTokenizer.from_text("abcdef"))
row("mlm.mask_tokens-float", lambda: mlm.mask_tokens(_ids.float(), 9, 7), ValueError, "ids", "float32")
bad_values("mlm.mask_tokens", lambda mask_prob: mlm.mask_tokens(_ids, 9, 7, mask_prob), "mask_prob", (0.0, 1.0, NAN))
bad_values("mlm.mask_tokens", lambda n_regular: mlm.mask_tokens(_ids, 9, n_regular), "n_regular", SIZES)
row("mlm.mask_tokens-special-shape", lambda: mlm.mask_tokens(_ids, 9, 7, special=torch.zeros(2, 2, dtype=bool)),
    ValueError, "special", "(2, 2)")
bad_values("mlm_batches", lambda block_size: first_batch(mlm.mlm_batches(_long_stream, _specials, block_size, 2)),
           "block_size", (1, 0, True, 2.5))
bad_values("mlm_batches", lambda batch_size: first_batch(mlm.mlm_batches(_long_stream, _specials, 4, batch_size)),
           "batch_size", SIZES)
bad_values("mlm_batches", lambda mask_prob: first_batch(mlm.mlm_batches(_long_stream, _specials, 4, 2, mask_prob)),
           "mask_prob", (0.0, 1.0, NAN))
row("SpecialTokens.batch-empty", lambda: _specials.batch([], 8), ValueError, "sequences", "empty")
bad_values("SpecialTokens.batch", lambda max_len: _specials.batch([[1, 2]], max_len), "max_len", SIZES)


@functools.cache
def tiny_mlm() -> mlm.MaskedLM:
    torch.manual_seed(0)
    return mlm.MaskedLM(transformer.TransformerConfig(_specials.vocab_size, max_len=8, n_layer=1, n_head=2, n_embd=8))


bad_values("evaluate_mlm", lambda n_windows: mlm.evaluate_mlm(tiny_mlm(), _long_stream, _specials, 4, n_windows),
           "n_windows", SIZES)
bad_values("evaluate_mlm", lambda batch_size: mlm.evaluate_mlm(tiny_mlm(), _long_stream, _specials, 4, 4, batch_size),
           "batch_size", SIZES)
bad_values("evaluate_mlm", lambda block_size: mlm.evaluate_mlm(tiny_mlm(), _long_stream[:6], _specials, block_size),
           "block_size", (8, 0, True))
row("MaskedLM-labels-shape", lambda: tiny_mlm()(torch.tensor([[1, 2, 3]]), torch.tensor([[1, 2]])), ValueError,
    "labels", "(1, 2)")

from lmcourse import finetune  # noqa: E402  (after the cheap modules: it imports the data module's corpora)

bad_values("source_sentences", lambda split: finetune.source_sentences(split), "split", ("test",))
bad_values("SequenceClassifier", lambda n_classes: finetune.SequenceClassifier(tiny_encoder(), n_classes), "n_classes",
           (1, 0, True))
bad_values("SequenceClassifier", lambda dropout: finetune.SequenceClassifier(tiny_encoder(), 2, dropout), "dropout",
           (1.0, NAN))
row("SequenceClassifier-labels-shape", lambda: finetune.SequenceClassifier(tiny_encoder(), 2)(
    torch.tensor([[1, 2]]), labels=torch.tensor([0, 1])), ValueError, "labels", "(2,)")
bad_values("reading_comprehension", lambda n: finetune.reading_comprehension(n), "n", SIZES)
bad_values("reading_comprehension", lambda n_people: finetune.reading_comprehension(2, n_people=n_people), "n_people",
           (0, 99, True))
bad_values("best_span", lambda max_answer_len: finetune.best_span(torch.zeros(1, 4), torch.zeros(1, 4),
                                                                  max_answer_len=max_answer_len), "max_answer_len",
           SIZES)
row("best_span-shapes", lambda: finetune.best_span(torch.zeros(1, 4), torch.zeros(1, 5)), ValueError, "(1, 4)",
    "(1, 5)")
row("best_span-allowed-shape", lambda: finetune.best_span(torch.zeros(1, 4), torch.zeros(1, 4),
                                                          torch.ones(1, 3, dtype=bool)), ValueError, "allowed",
    "(1, 3)")
bad_values("load_local_hf", lambda task: finetune.load_local_hf(task=task), "task", ("summarization",))
row("type_baseline_accuracy-empty", lambda: finetune.type_baseline_accuracy([]), ValueError, "examples", "empty")

# ----------------------------------------------------------------------------- the training loop


def _nan_schedule(step):
    return NAN


bad_values("train", lambda steps: run_train(steps=steps), "steps", (0, -1, True, 2.5, NAN))
bad_values("train", lambda eval_every: run_train(evaluate=lambda m: 0.0, eval_every=eval_every), "eval_every",
           (0, True, 2.5))
bad_values("train", lambda grad_clip: run_train(grad_clip=grad_clip), "grad_clip", POSITIVE)
bad_values("train", lambda time_limit: run_train(time_limit=time_limit), "time_limit", (0.0, -1.0, NAN))
bad_values("train", lambda mixed_precision: run_train(mixed_precision=mixed_precision), "mixed_precision",
           ("fp8", True))
row("train-lr_schedule-nan", lambda: run_train(lr_schedule=_nan_schedule), ValueError, "lr_schedule", "nan", "step 0")
row("train-lr_schedule-negative", lambda: run_train(lr_schedule=lambda s: -0.1), ValueError, "lr_schedule", "-0.1")
row("train-lr_schedule-not-callable", lambda: run_train(lr_schedule=0.1), ValueError, "lr_schedule", "0.1")
row("train-batches-empty", lambda: run_train(batches=[]), ValueError, "batches", "empty")
row("train-batches-not-tuples", lambda: run_train(batches=[torch.zeros(4, 2)]), ValueError, "batch", "tuple")
row("train-optimizer-missing", lambda: run_train(optimizer=None), ValueError, "optimizer", "None")
row("train-optimizer-of-other-model", lambda: run_train(optimizer=torch.optim.SGD(torch.nn.Linear(2, 1).parameters(),
                                                                                  lr=0.1)),
    ValueError, "optimizer", "model")
row("train-loss-not-scalar", lambda: run_train(loss_fn=lambda m, b: m(b[0]) - b[1]), ValueError, "loss_fn", "(4, 1)")
row("train-evaluate-not-number", lambda: run_train(evaluate=lambda m: "good"), ValueError, "evaluate", "good")
row("train-model-without-parameters", lambda: train.train(torch.nn.Identity(), [(torch.zeros(1),)],
                                                          optimizer=None, steps=1, progress=False),
    ValueError, "model", "parameters")
bad_values("cosine_schedule", lambda max_lr: train.cosine_schedule(max_lr, 10), "max_lr", POSITIVE)
bad_values("cosine_schedule", lambda total_steps: train.cosine_schedule(0.1, total_steps), "total_steps", SIZES)
bad_values("cosine_schedule", lambda warmup_steps: train.cosine_schedule(0.1, 10, warmup_steps), "warmup_steps",
           (-1, 11, True, 2.5))
bad_values("cosine_schedule", lambda min_lr: train.cosine_schedule(0.1, 10, 0, min_lr), "min_lr", (-0.1, NAN, 0.2))
bad_values("clock_cosine_schedule", lambda max_lr: train.clock_cosine_schedule(max_lr, 10.0), "max_lr", POSITIVE)
bad_values("clock_cosine_schedule", lambda seconds: train.clock_cosine_schedule(0.1, seconds), "seconds", POSITIVE)
bad_values("clock_cosine_schedule", lambda warmup_steps: train.clock_cosine_schedule(0.1, 10.0, warmup_steps),
           "warmup_steps", (-1, True, 2.5))
bad_values("clock_cosine_schedule", lambda min_lr: train.clock_cosine_schedule(0.1, 10.0, 0, min_lr), "min_lr",
           (-0.1, NAN, 0.2))
bad_values("autocast_dtype", lambda mixed_precision: train.autocast_dtype(torch.device("cpu"), mixed_precision),
           "mixed_precision", ("half",))

# lmcourse.train.train_gpt, the GPT recipe of chapters 06 and 09


def run_train_gpt(**overrides):
    """lmcourse.train.train_gpt on a fresh tiny GPT (block_size 8) for one step, with `overrides` replacing the defaults."""
    options = dict(model=gpt.GPT(gpt.GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8)),
                   train_ids=torch.tensor(_long_stream), block_size=8, batch_size=2, lr=1e-3, steps=1, progress=False)
    options.update(overrides)
    return train.train_gpt(options.pop("model"), options.pop("train_ids"), **options)


row("train_gpt-model-not-gpt", lambda: run_train_gpt(model=torch.nn.Linear(2, 2)), ValueError, "model", "Linear",
    "GPT")
bad_values("train_gpt", lambda block_size: run_train_gpt(block_size=block_size), "block_size", SIZES + (9,))
bad_values("train_gpt", lambda batch_size: run_train_gpt(batch_size=batch_size), "batch_size", SIZES)
bad_values("train_gpt", lambda lr: run_train_gpt(lr=lr), "lr", POSITIVE)
bad_values("train_gpt", lambda steps: run_train_gpt(steps=steps), "steps", SIZES)
bad_values("train_gpt", lambda seconds: run_train_gpt(steps=None, seconds=seconds), "seconds", POSITIVE)
row("train_gpt-steps-and-seconds", lambda: run_train_gpt(seconds=1.0), ValueError, "steps", "seconds", "exactly one")
row("train_gpt-neither-steps-nor-seconds", lambda: run_train_gpt(steps=None), ValueError, "steps", "seconds", "None")
bad_values("train_gpt", lambda schedule_steps: run_train_gpt(steps=5, schedule_steps=schedule_steps), "schedule_steps",
           (4, 0, 2.5))
row("train_gpt-schedule_steps-with-seconds", lambda: run_train_gpt(steps=None, seconds=1.0, schedule_steps=10),
    ValueError, "schedule_steps", "seconds")
bad_values("train_gpt", lambda warmup_steps: run_train_gpt(warmup_steps=warmup_steps), "warmup_steps", (-1, 2, 2.5))
bad_values("train_gpt", lambda min_lr: run_train_gpt(min_lr=min_lr), "min_lr", (-0.1, NAN, 0.2))
bad_values("train_gpt", lambda weight_decay: run_train_gpt(weight_decay=weight_decay), "weight_decay", (-0.1, NAN))
bad_values("train_gpt", lambda seed: run_train_gpt(seed=seed), "seed", COUNTS)
bad_values("train_gpt", lambda evaluate: run_train_gpt(evaluate=evaluate), "evaluate", ("loss",))
bad_values("train_gpt", lambda eval_every: run_train_gpt(evaluate=lambda m: 1.0, eval_every=eval_every), "eval_every",
           SIZES)
bad_values("train_gpt", lambda torch_compile: run_train_gpt(torch_compile=torch_compile), "torch_compile", ("yes", 1))
row("train_gpt-train_ids-str", lambda: run_train_gpt(train_ids="abc"), ValueError, "train_ids", "str", "encode")
row("train_gpt-train_ids-float", lambda: run_train_gpt(train_ids=torch.zeros(50)), ValueError, "train_ids", "float32")
row("train_gpt-train_ids-2d", lambda: run_train_gpt(train_ids=torch.zeros(2, 50, dtype=torch.long)), ValueError,
    "train_ids", "(2, 50)")
row("train_gpt-train_ids-out-of-vocab", lambda: run_train_gpt(train_ids=torch.arange(V + 5).repeat(5)), ValueError,
    "train_ids", str(V + 4), "vocab_size=11")
row("train_gpt-train_ids-too-short", lambda: run_train_gpt(train_ids=torch.arange(8)), ValueError, "train_ids", "8",
    "block_size=8")
row("train_gpt-train_ids-list", lambda: run_train_gpt(train_ids=_long_stream), None)

# The notebook-level calls, as chapter 06 writes them: train a GPT on random windows, then generate.


def notebook_train(**overrides):
    model = gpt.GPT(gpt.GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8))
    kwargs = dict(block_size=8, batch_size=4)
    kwargs.update({k: overrides.pop(k) for k in ("block_size", "batch_size", "ids") if k in overrides})
    ids = kwargs.pop("ids", _long_stream)
    batches = sequences.random_windows(ids, kwargs["block_size"], kwargs["batch_size"])
    options = dict(optimizer=model.configure_optimizer(1e-3), steps=2, progress=False)
    options.update(overrides)
    return train.train(model, batches, **options)


row("notebook-train-block_size-too-big-for-model", lambda: notebook_train(block_size=12), ValueError, "block_size=8",
    "12")
row("notebook-train-ids-out-of-vocab", lambda: notebook_train(ids=list(range(V + 5)) * 5), ValueError, "idx",
    str(V + 4))
bad_values("notebook-train", lambda steps: notebook_train(steps=steps), "steps", (True, 0))
bad_values("notebook-train", lambda grad_clip: notebook_train(grad_clip=grad_clip), "grad_clip", (NAN, INF))
row("notebook-train-lr-schedule-nan", lambda: notebook_train(lr_schedule=train.cosine_schedule(NAN, 10)), ValueError,
    "max_lr", "nan")
row("notebook-generate-prompt-int32", lambda: generate.generate(tiny_gpt(), torch.tensor([[1, 2]], dtype=torch.int32),
                                                                5, do_sample=True, top_k=3, seed=0), None)
row("notebook-generate-prompt-from-encode", lambda: generate.generate(tiny_gpt(), torch.tensor([_CHARS.encode("ab")]),
                                                                      5, num_beams=2, no_repeat_ngram_size=2), None)
row("notebook-generate-prompt-list", lambda: generate.generate(tiny_gpt(), _CHARS.encode("ab"), 5), ValueError, "idx",
    "torch.tensor")
row("notebook-generate-max_new_tokens=True", lambda: generate.generate(tiny_gpt(), prompt(), True), ValueError,
    "max_new_tokens", "True")


# ----------------------------------------------------------------------------- more of the API: helpers, checkpoints, runner, viz

row("KVCache-max_len=0", lambda: gpt.KVCache(1, 0), ValueError, "max_len", "0")
row("GPT-kv-cache-past-block", lambda: _gpt_with_cache(17), ValueError, "block_size=16", "17")


def _gpt_with_cache(n):
    cache = tiny_gpt().new_kv_cache()
    return tiny_gpt()(torch.ones(1, n, dtype=torch.long), kv_cache=cache)


row("attention_stages-q-k-dim", lambda: attention.attention_stages(_q, torch.zeros(2, 3, 5)), ValueError, "q", "k")
row("attention_stages-mask-shape", lambda: attention.attention_stages(_q, _q, torch.ones(4, 4, dtype=bool)),
    ValueError, "mask", "(4, 4)")
row("MultiHeadAttention.from_torch-kdim", lambda: attention.MultiHeadAttention.from_torch(
    torch.nn.MultiheadAttention(8, 2, kdim=4, vdim=4, batch_first=True)), None)  # kdim/vdim are supported (issue 25)
bad_values("MultiHeadAttention", lambda kdim: attention.MultiHeadAttention(8, 2, kdim=kdim), "kdim", SIZES)
bad_values("MultiHeadAttention", lambda vdim: attention.MultiHeadAttention(8, 2, vdim=vdim), "vdim", SIZES)
row("MultiHeadAttention-key-width-not-kdim", lambda: attention.MultiHeadAttention(8, 2, kdim=4)(
    _x, torch.zeros(2, 3, 6), torch.zeros(2, 3, 8)), ValueError, "key", "(2, 3, 6)")
row("EncoderLayer.from_torch-not-batch-first", lambda: transformer.EncoderLayer.from_torch(
    torch.nn.TransformerEncoderLayer(8, 2, 16)), ValueError, "batch_first")
row("DecoderLayer-memory_padding-shape", lambda: transformer.DecoderLayer(8, 2, 16, 0.0)(
    _x, torch.zeros(2, 4, 8), memory_padding=torch.ones(2, 3, dtype=bool)), ValueError, "key_padding", "(2, 3)")
row("q_sample-t-bool", lambda: SCHEDULE.q_sample(_x0, torch.zeros(4, dtype=torch.bool)), ValueError, "t", "bool")
row("predict_noise-shape", lambda: diffusion.predict_noise(flat_eps, _x0, torch.zeros(4, dtype=torch.long)),
    ValueError, "eps_model", "(4, 1)")
row("ddim_timesteps-steps=0", lambda: diffusion.ddim_sample(zero_eps, SCHEDULE, (4, 2), steps=0), ValueError, "steps",
    "0")
row("guided-y-out-of-range", lambda: diffusion.ddpm_sample(diffusion.guided(UNet8(8, 3), torch.tensor([1, 9]), 1.0, 3),
                                                           diffusion.NoiseSchedule(2), (2, 1, 8, 8)),
    ValueError, "y", "9")
row("text_diffusion.infill-span", lambda: text_diffusion.infill(tiny_denoiser(), _ids, 0, 2), ValueError, "start")
row("text_diffusion.infill-too-long", lambda: text_diffusion.infill(tiny_denoiser(), _ids, 1, 5), ValueError, "length")
bad_values("masking_times", lambda batch_size: text_diffusion.masking_times(batch_size), "batch_size", SIZES)
bad_values("masking_times", lambda t_min: text_diffusion.masking_times(4, t_min), "t_min", (0.0, NAN, 1.5))
bad_values("consecutive_windows", lambda block_size: first_batch(sequences.consecutive_windows(_long_stream,
                                                                                               block_size, 2)),
           "block_size", SIZES)
bad_values("consecutive_windows", lambda batch_size: first_batch(sequences.consecutive_windows(_long_stream, 4,
                                                                                              batch_size)),
           "batch_size", SIZES)
row("consecutive_windows-ids-float", lambda: first_batch(sequences.consecutive_windows([0.5] * 40, 4, 2)),
    ValueError, "ids", "float")
bad_values("sgd_step", lambda lr: skipgram.sgd_step(skipgram.SkipGramNS(5, 4), torch.tensor([1]), torch.tensor([2]),
                                                    torch.tensor([[3]]), lr), "lr", (NAN, INF, -0.1))
row("SkipGramNS.loss-out-of-vocab", lambda: skipgram.SkipGramNS(5, 4).loss(torch.tensor([9]), torch.tensor([2]),
                                                                          torch.tensor([[3]])), ValueError, "9")
bad_values("corpus_sentences", lambda name: embeddings.corpus_sentences(name), "name", ("enwiki",))
bad_values("corpus_tokenizer", lambda name: data.corpus_tokenizer(name), "name", ("enwiki",))
bad_values("BPETokenizer.from_text", lambda vocab_size: tokenizers.BPETokenizer.from_text("abc abd", vocab_size),
           "vocab_size", (100, True, 300.5))
row("BPETokenizer.from_text-not-str", lambda: tokenizers.BPETokenizer.from_text(["abc"]), ValueError, "text", "str")
bad_values("SpecialTokens.token", lambda i: _specials.token(i), "i", (99, -1, 1.5))
row("encode_qa-too-long", lambda: finetune.encode_qa(finetune.reading_comprehension(1), _word_specials(), 4),
    ValueError, "max_len=4")
bad_values("bag_of_words_accuracy", lambda C: finetune.bag_of_words_accuracy([("a b", 0), ("c d", 1)],
                                                                            [("a b", 0)], C), "C", (0.0, -1.0, NAN))
bad_values("accuracy", lambda batch_size: finetune.accuracy(finetune.SequenceClassifier(tiny_encoder(), 2),
                                                            torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=bool),
                                                            torch.tensor([0]), batch_size), "batch_size", SIZES)
bad_values("span_accuracy", lambda batch_size: finetune.span_accuracy(finetune.SpanQA(tiny_encoder()), {
    "ids": torch.tensor([[1, 2]]), "key_padding": torch.ones(1, 2, dtype=bool), "start": torch.tensor([0]),
    "end": torch.tensor([0]), "context_mask": torch.ones(1, 2, dtype=bool)}, batch_size), "batch_size", SIZES)
bad_values("exact_match", lambda batch_size: seq2seq.exact_match(_s2s, tasks.ReversalTask(7), [("12", "21")],
                                                                 batch_size), "batch_size", SIZES)
row("exact_match-no-pairs", lambda: seq2seq.exact_match(_s2s, tasks.ReversalTask(7), []), ValueError, "pairs", "empty")
bad_values("accuracy_by_length", lambda n_per_length: seq2seq.accuracy_by_length(_s2s, tasks.ReversalTask(7), [2],
                                                                                 n_per_length), "n_per_length", SIZES)


@functools.cache
def _word_specials():
    return mlm.SpecialTokens(tokenizers.WordTokenizer.from_text(" ".join(finetune.reading_comprehension(3)[0].context
                                                                         .split())))


def _save(**metadata):
    import tempfile

    from lmcourse.checkpoint import save_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        return save_checkpoint(f"{folder}/model.pt", torch.nn.Linear(2, 2), **metadata)


def _load(path="/nonexistent/model.pt", **kwargs):
    from lmcourse.checkpoint import load_checkpoint

    return load_checkpoint(path, torch.nn.Linear(2, 2), **kwargs)


row("save_checkpoint-metadata-object", lambda: _save(note=object()), TypeError, "note", "object")
row("save_checkpoint-metadata-numpy", lambda: _save(step=np.int64(3)), None)
row("load_checkpoint-missing", lambda: _load(), FileNotFoundError, "/nonexistent/model.pt")
row("load_checkpoint-directory", lambda: _load("/tmp"), FileNotFoundError, "/tmp")


def _course_key_result(*args):
    from lmcourse.course import key_result

    with contextlib.redirect_stdout(io.StringIO()):
        return key_result(*args)


row("key_result-name-not-snake", lambda: _course_key_result("Nats Per Char", 1.0, "nats/char"), ValueError, "name",
    "Nats Per Char")
row("key_result-value-nan", lambda: _course_key_result("gpt_nats", NAN, "nats/char"), ValueError, "value", "nan")
row("key_result-value-tensor", lambda: _course_key_result("gpt_nats", torch.tensor(1.0), "nats/char"), ValueError,
    "value", ".item()")
row("key_result-value-bool", lambda: _course_key_result("gpt_nats", True, "nats/char"), ValueError, "value", "True")


def _exercise_check(exercise_id, answer):
    from lmcourse import exercises

    with contextlib.redirect_stdout(io.StringIO()):
        return exercises.check(exercise_id, answer)


row("exercises.check-unknown-id", lambda: _exercise_check("99.nothing", lambda: None), ValueError, "99.nothing")

from lmcourse import viz  # noqa: E402  (matplotlib: imported last, only for these rows)
from lmcourse.viz import sampling as viz_sampling  # noqa: E402
from lmcourse.viz.training import plot_history  # noqa: E402

_weights = torch.softmax(torch.randn(1, 2, 3, 3), -1)
row("plot_attention-1d", lambda: viz.plot_attention(torch.ones(3)), ValueError, "weights", "(3,)")
row("plot_attention-tokens-length", lambda: viz.plot_attention(_weights, ["a", "b"]), ValueError, "tokens", "2")
row("plot_attention-head-out-of-range", lambda: viz.plot_attention(_weights, heads=5), ValueError, "heads", "5")
row("plot_attention-stage", lambda: viz.plot_attention(_weights, stage="probs"), ValueError, "stage", "probs")
row("attention_array-batch_index", lambda: viz.attention_array(_weights, batch_index=3), ValueError, "batch_index",
    "3")
row("attention_array-none", lambda: viz.attention_array(None), ValueError, "output_attentions")
row("head_summary_table-empty", lambda: viz.head_summary_table([]), ValueError, "rows", "empty")
row("plot_head_summary-metric", lambda: viz.plot_head_summary(viz.head_summary(_weights), ["nope"]), ValueError,
    "nope")
bad_values("filtered_distribution", lambda temperature: viz_sampling.filtered_distribution(torch.zeros(5), temperature),
           "temperature", (0.0, NAN, INF))
bad_values("filtered_distribution", lambda top_k: viz_sampling.filtered_distribution(torch.zeros(5), top_k=top_k),
           "top_k", SIZES)
bad_values("filtered_distribution", lambda top_p: viz_sampling.filtered_distribution(torch.zeros(5), top_p=top_p),
           "top_p", PROBS)
row("filtered_distribution-2d", lambda: viz_sampling.filtered_distribution(torch.zeros(2, 5)), ValueError, "logits",
    "(2, 5)")
row("plot_next_token_distribution-labels", lambda: viz.plot_next_token_distribution(torch.zeros(5), ["a", "b"]),
    ValueError, "labels", "2")
bad_values("model_color", lambda family: viz.model_color(family), "family", ("transformerxl",))
bad_values("plot_history", lambda x: plot_history(train.History(), x=x), "x", ("epoch",))
row("plot_history-not-history", lambda: plot_history([0.1, 0.2]), ValueError, "history", "list")
row("pca_2d-one-vector", lambda: viz.pca_2d(np.ones((1, 3))), ValueError, "vectors", "(1, 3)")
row("pca_2d-nan", lambda: viz.pca_2d(np.full((3, 3), NAN)), ValueError, "vectors", "nan")
row("plot_word_groups-missing", lambda: viz.plot_word_groups(tiny_kv(), {"x": ["zebra", "lion"]}), ValueError,
    "zebra")
row("answer_query-empty", lambda: viz.answer_query(tiny_kv(), ""), ValueError, "query", "empty")
row("answer_query-unknown-word", lambda: viz.answer_query(tiny_kv(), "zebra"), ValueError, "zebra")
row("answer_query-bad-syntax", lambda: viz.answer_query(tiny_kv(), "king + + man"), ValueError, "query")
bad_values("answer_query", lambda topn: viz.answer_query(tiny_kv(), "king", topn), "topn", SIZES)
row("head_view-layer-out-of-range", lambda: viz.head_view([_weights], ["a", "b", "c"], layer=4), ValueError, "layer",
    "4")
row("head_view-tokens-length", lambda: viz.head_view([_weights], ["a", "b"]), ValueError, "tokens", "2")
row("model_view-head-out-of-range", lambda: viz.model_view([_weights], ["a", "b", "c"], head=9), ValueError, "head",
    "9")
row("capture_attention-no-attention", lambda: viz.capture_attention(torch.nn.Linear(2, 2), torch.zeros(1, 2)),
    ValueError, "MultiHeadAttention")
row("save_html-not-a-view", lambda: viz.save_html(object(), "/tmp/nowhere.html"), ValueError, "view", "object")


# ----------------------------------------------------------------------------- the audit's named cases (issue 26)

# NaN never turned into finite numbers: torch's fused attention kernel does exactly that on the CPU.


def _has_nan(out) -> bool:
    if isinstance(out, torch.Tensor):
        return bool(torch.isnan(out).any())
    if isinstance(out, (tuple, list)):
        return any(_has_nan(o) for o in out)
    return isinstance(out, float) and math.isnan(out)


def _nan_visible(call: Callable[[], object]) -> object:
    """call(), its NaN output turned into the ValueError a refusal gives: either way NaN in is seen, never hidden."""
    out = call()
    if _has_nan(out):
        raise ValueError("nan in, nan out: propagated visibly")
    return out


_nan_x = torch.full((2, 3, 8), NAN)
row("MultiHeadAttention-fused-nan-query", lambda: _nan_visible(lambda: _mha(_nan_x, _x, _x)), ValueError, "nan")
row("MultiHeadAttention-fused-nan-value", lambda: _nan_visible(lambda: _mha(_x, _x, _nan_x)), ValueError, "nan")
row("MultiHeadAttention-fused-inf-key", lambda: _nan_visible(lambda: _mha(_x, torch.full((2, 3, 8), INF), _x)),
    ValueError)
row("EncoderLayer-nan-x", lambda: _nan_visible(lambda: _enc_layer(_nan_x)), ValueError, "nan")
row("DecoderLayer-nan-memory", lambda: _nan_visible(lambda: transformer.DecoderLayer(8, 2, 16, 0.0)(
    _x, torch.full((2, 4, 8), NAN))), ValueError, "nan")


def _gpt_with_nan_attention():
    """The tiny GPT with NaN query weights: its logits must not come out finite."""
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(V, 16, 1, 2, 8)).eval()
    attn = next(m for m in model.modules() if isinstance(m, attention.MultiHeadAttention))
    with torch.no_grad():
        attn.q_proj.weight.fill_(NAN)
    return model


row("GPT-nan-weights", lambda: _nan_visible(lambda: _gpt_with_nan_attention()(prompt())), ValueError, "nan")


class _NaNLogits(torch.nn.Module):
    """A model whose logits are NaN, as NaN weights or a float16 overflow give."""

    def forward(self, idx):
        return torch.full((*idx.shape, V), NAN)


for _mode, _kw in (("greedy", {}), ("sample", {"do_sample": True, "seed": 0}), ("beam", {"num_beams": 2})):
    row(f"generate-nan-logits-{_mode}", functools.partial(generate.generate, _NaNLogits(), prompt(), 3, **_kw),
        ValueError, "nan")
row("process_scores-nan-scores-sample", lambda: generate.process_scores(prompt(), torch.full((1, V), NAN),
                                                                         do_sample=True), ValueError, "scores", "nan")
for _t in (0.0, 1.5, NAN):
    row(f"masked_diffusion_loss-t={_t!r}", lambda _t=_t: text_diffusion.masked_diffusion_loss(
        tiny_denoiser(), _ids, t=torch.tensor([0.5, _t])), ValueError, "t", str(_t).replace(".0", ""))
row("train-evaluate-nan", lambda: run_train(evaluate=lambda m: NAN), FloatingPointError, "evaluation", "nan", "step")
row("train-evaluate-inf", lambda: run_train(evaluate=lambda m: INF), FloatingPointError, "evaluation", "inf", "step")
row("train-loss-nan", lambda: run_train(loss_fn=lambda m, b: m(b[0]).sum() * NAN), FloatingPointError, "loss", "nan", "step")

# Misread inputs: a mask of one kind read as another, a str read as a sequence of characters, a wrapped index.
_pad_b_tk = torch.tensor([[True, True, False], [True, True, True]])  # key padding (B=2, Tk=3), B == Tq below
row("sdpa-key-padding-as-mask-B=Tq", lambda: attention.scaled_dot_product_attention(
    torch.zeros(2, 2, 4), torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), mask=_pad_b_tk), ValueError, "mask", "(2, 3)")
row("MultiHeadAttention-key-padding-as-mask-B=Tq", lambda: _mha(torch.zeros(2, 2, 8), torch.zeros(2, 3, 8),
                                                                torch.zeros(2, 3, 8), mask=_pad_b_tk),
    ValueError, "mask", "(2, 3)")
row("EncoderLayer-key-padding-as-mask-B=T", lambda: _enc_layer(torch.zeros(3, 3, 8), mask=torch.tensor(
    [[True, True, False], [True, True, True], [True, False, False]])), ValueError, "mask", "(3, 3)")
_torch_polarity = torch.tensor([[False, False, True], [False, True, True]])  # torch's key_padding_mask: True = padding
row("EncoderLayer-key_padding-torch-polarity", lambda: _enc_layer(_x, key_padding=_torch_polarity),
    (ValueError, TypeError), "key_padding")
row("Encoder-key_padding-torch-polarity", lambda: tiny_encoder()(torch.ones(2, 3, dtype=torch.long),
                                                                  key_padding=_torch_polarity),
    (ValueError, TypeError), "key_padding")
# a 3-D mask is (B, Tq, Tk), one per example shared by the heads (MultiHeadAttention's docstring), also when B == n_head
row("MultiHeadAttention-per-head-mask-B=H", lambda: _mha(_x, _x, _x, mask=torch.tril(torch.ones(2, 3, 3, dtype=bool))
                                                         .flip(0)), None)
row("MultiHeadAttention-per-head-mask-B!=H", lambda: attention.MultiHeadAttention(8, 4)(_x, _x, _x, mask=torch.ones(
    4, 3, 3, dtype=bool)), ValueError, "mask", "(4, 3, 3)", "n_head")
row("NGramLM.prob-context-str-word-model", lambda: tiny_lm().prob("cat", "the"), ValueError, "context", "the")
row("NGramLM.cross_entropy-str-word-model", lambda: tiny_lm().cross_entropy("the cat sat"), ValueError, "tokens",
    "str")
row("NGramLM.log_probs-str-word-model", lambda: tiny_lm().log_probs("the cat sat"), ValueError, "tokens", "str")
row("NGramLM.perplexity-str-word-model", lambda: tiny_lm().perplexity("the cat sat"), ValueError, "tokens", "str")
row("NGramLM.cross_entropy-str-char-model", lambda: ngram.NGramLM(2).fit("the cat sat").cross_entropy("the cat"),
    None)
row("predict_x0-t-negative", lambda: SCHEDULE.predict_x0(_x0, torch.full((4,), -1), _x0), ValueError, "t", "-1")
row("predict_x0-t-range", lambda: SCHEDULE.predict_x0(_x0, torch.full((4,), 10), _x0), ValueError, "t", "10")
row("predict_x0-t-float", lambda: SCHEDULE.predict_x0(_x0, torch.zeros(4), _x0), ValueError, "t", "float32")
for _name, _sampler in (("ddpm_sample", diffusion.ddpm_sample),
                        ("ddim_sample", functools.partial(diffusion.ddim_sample, steps=5))):
    bad_values(_name, lambda shape, _s=_sampler: _s(zero_eps, SCHEDULE, shape), "shape", ("22", (2.5, 2), (4, True)))
row("process_scores-rows-2-ids-3-scores", lambda: generate.process_scores(
    torch.tensor([[1, 2], [3, 4]]), torch.zeros(3, V), repetition_penalty=1.2), ValueError, "ids", "scores", "(3, 11)")
row("process_scores-rows-3-ids-2-scores", lambda: generate.process_scores(
    torch.ones(3, 2, dtype=torch.long), torch.zeros(2, V), no_repeat_ngram_size=1), ValueError, "ids", "scores",
    "(2, 11)")
row("apply_repetition_penalty-rows", lambda: generate.apply_repetition_penalty(
    torch.ones(2, 2, dtype=torch.long), torch.zeros(3, V), 1.2), ValueError, "ids", "scores")
row("apply_no_repeat_ngram-rows", lambda: generate.apply_no_repeat_ngram(
    torch.ones(2, 2, dtype=torch.long), torch.zeros(3, V), 1), ValueError, "ids", "scores")
row("split_words-decomposed-accent", lambda: tokenizers.split_words("e\u0301cole"), None)
row("CharTokenizer.from_text-min_count-keeps-nothing", lambda: tokenizers.CharTokenizer.from_text("abc", min_count=10),
    ValueError, "min_count", "10")
row("WordTokenizer.from_text-min_count-keeps-nothing", lambda: tokenizers.WordTokenizer.from_text("a b", min_count=10),
    ValueError, "min_count", "10")


def _first_items(make_iterator, n: int = 3, seconds: float = 5.0) -> list:
    """The first n items of make_iterator(), or TimeoutError if they take longer than `seconds` (an endless loop)."""
    result: dict = {}

    def work():
        try:
            result["items"] = list(itertools.islice(make_iterator(), n))
        except Exception as exc:  # noqa: BLE001 - handed back to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no {n} items within {seconds} s: an endless loop")
    if "error" in result:
        raise result["error"]
    return result["items"]


def _sharded(n_examples, global_batch_size, world_size=1, rank=0):
    dataset = torch.utils.data.TensorDataset(torch.arange(n_examples))
    return _first_items(lambda: distributed.sharded_batches(dataset, global_batch_size, rank=rank,
                                                            world_size=world_size))


row("sharded_batches-epoch-without-batch", lambda: _sharded(3, 4), ValueError, "global_batch_size", "4")
row("sharded_batches-epoch-without-batch-2-ranks", lambda: _sharded(3, 4, world_size=2), ValueError,
    "global_batch_size", "4")
bad_values("sharded_batches", lambda global_batch_size: _sharded(8, global_batch_size, world_size=2),
           "global_batch_size", (0, -2, 3, True, 2.5))
bad_values("sharded_batches", lambda rank: _sharded(8, 4, world_size=2, rank=rank), "rank", (2, -1, 0.5))
bad_values("sharded_batches", lambda world_size: _sharded(8, 4, world_size=world_size), "world_size", (0, -1, 1.5))
bad_values("ring_allreduce_bytes", lambda n_params: distributed.ring_allreduce_bytes(n_params, 2), "n_params", SIZES)
bad_values("ring_allreduce_bytes", lambda world_size: distributed.ring_allreduce_bytes(10, world_size), "world_size",
           SIZES)
bad_values("ring_allreduce_bytes", lambda bytes_per_param: distributed.ring_allreduce_bytes(10, 2, bytes_per_param),
           "bytes_per_param", SIZES)

# Obscure errors made clear: widths and dtypes at module entry.
_x64 = _x.double()
row("MultiHeadAttention-float64-input", lambda: _mha(_x64, _x64, _x64), ValueError, "float64", "float32")
row("MultiHeadAttention-dtype-mix", lambda: _mha(_x, _x64, _x64), ValueError, "float64")
row("EncoderLayer-width", lambda: _enc_layer(torch.zeros(2, 3, 6)), ValueError, "(2, 3, 6)", "n_embd")
row("EncoderLayer-float64", lambda: _enc_layer(_x64), ValueError, "float64")
row("DecoderLayer-width", lambda: transformer.DecoderLayer(8, 2, 16, 0.0)(torch.zeros(2, 3, 6), torch.zeros(2, 4, 8)),
    ValueError, "(2, 3, 6)", "n_embd")
row("DecoderLayer-memory-float64", lambda: transformer.DecoderLayer(8, 2, 16, 0.0)(_x, torch.zeros(2, 4, 8).double()),
    ValueError, "float64")
row("DecoderLayer-memory-batch", lambda: transformer.DecoderLayer(8, 2, 16, 0.0)(_x, torch.zeros(3, 4, 8)),
    ValueError, "(3, 4, 8)")
for _cls in (rnn.RNNCell, rnn.LSTMCell, rnn.GRUCell):
    row(f"{_cls.__name__}-input-float64", lambda _c=_cls: _c(3, 4)(torch.zeros(2, 3, dtype=torch.float64)),
        ValueError, "input", "float64")
    row(f"{_cls.__name__}-input-empty-features", lambda _c=_cls: _c(3, 4)(torch.zeros(2, 0)), ValueError, "input",
        "0 features")
row("GRUCell-hx-batch", lambda: rnn.GRUCell(3, 4)(torch.zeros(2, 3), torch.zeros(3, 4)), ValueError, "hx", "(3, 4)")
row("LSTMCell-h-width", lambda: rnn.LSTMCell(3, 4)(torch.zeros(2, 3), (torch.zeros(2, 5), torch.zeros(2, 4))),
    ValueError, "(2, 5)")
for _cls in (rnn.RNN, rnn.LSTM, rnn.GRU):
    row(f"{_cls.__name__}-input-float64", lambda _c=_cls: _c(3, 4)(torch.zeros(2, 5, 3, dtype=torch.float64)),
        ValueError, "input", "float64")
    row(f"{_cls.__name__}-input-long", lambda _c=_cls: _c(3, 4)(torch.zeros(2, 5, 3, dtype=torch.long)),
        ValueError, "input", "int64")
    row(f"{_cls.__name__}-input-list", lambda _c=_cls: _c(3, 4)([[[0.0] * 3] * 5] * 2), ValueError, "input", "list")
    for _arg in ("input_size", "hidden_size"):
        bad_values(_cls.__name__, lambda _c=_cls, _a=_arg, **kw: _c(**{"input_size": 3, "hidden_size": 4, **kw}), _arg,
                   SIZES)
row("GRU-h0-batch", lambda: rnn.GRU(3, 4)(torch.zeros(2, 5, 3), torch.zeros(1, 3, 4)), ValueError, "h0", "(1, 3, 4)")
row("RNN-h0-width", lambda: rnn.RNN(3, 4)(torch.zeros(2, 5, 3), torch.zeros(1, 2, 6)), ValueError, "h0", "(1, 2, 6)")
row("LSTM-h0-not-tuple", lambda: rnn.LSTM(3, 4)(torch.zeros(2, 5, 3), torch.zeros(1, 2, 4)), ValueError, "tuple")
row("lstm_gates-input-features", lambda: rnn.lstm_gates(rnn.LSTMCell(3, 4), torch.zeros(2, 5)), ValueError,
    "input_size", "5")
row("CharLSTM-state-batch", lambda: tiny_char_lstm()(torch.tensor([[1, 2]]), state=(torch.zeros(1, 3, 8),
                                                                                      torch.zeros(1, 3, 8))),
    ValueError, "state", "(1, 3, 8)")
row("MLPDenoiser-x-float64", lambda: MLPDenoiser()(torch.zeros(4, 2, dtype=torch.float64),
                                                   torch.zeros(4, dtype=torch.long)), ValueError, "x", "float64")
row("UNet8-x-channels", lambda: UNet8(8)(torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.long)), ValueError, "x",
    "(2, 3, 8, 8)")
row("UNet8-x-size", lambda: UNet8(8)(torch.zeros(2, 1, 16, 16), torch.zeros(2, dtype=torch.long)), ValueError, "x",
    "(2, 1, 16, 16)")
row("UNet8-x-float64", lambda: UNet8(8)(torch.zeros(2, 1, 8, 8, dtype=torch.float64), torch.zeros(2, dtype=torch.long)),
    ValueError, "x", "float64")
row("UNet8-t-batch", lambda: UNet8(8)(torch.zeros(2, 1, 8, 8), torch.zeros(3, dtype=torch.long)), ValueError, "t",
    "(3,)")
row("diffusion_loss-width", lambda: diffusion.diffusion_loss(MLPDenoiser(), SCHEDULE, torch.zeros(4, 3)), ValueError,
    "(4, 3)")
row("diffusion_loss-empty", lambda: diffusion.diffusion_loss(zero_eps, SCHEDULE, torch.zeros(0, 2)), ValueError, "x0",
    "(0, 2)")
row("diffusion_loss-nan-x0", lambda: _nan_visible(lambda: diffusion.diffusion_loss(zero_eps, SCHEDULE,
                                                                                torch.full((4, 2), NAN))),
    ValueError, "nan")

# Obscure errors made clear: ids, labels and targets outside their range ("index out of range in self").
row("charlm.lm_loss-targets-out-of-vocab", lambda: charlm.lm_loss(tiny_char_lstm(), (torch.tensor([[1, 2]]),
                                                                                    torch.tensor([[1, 99]]))),
    ValueError, "99")
row("LSTMClassifier-ids-out-of-vocab", lambda: charlm.LSTMClassifier(5)(torch.tensor([[1, 7]]), torch.tensor([2])),
    ValueError, "ids", "7")
row("LSTMClassifier-ids-float", lambda: charlm.LSTMClassifier(5)(torch.tensor([[1.0, 2.0]]), torch.tensor([2])),
    ValueError, "ids", "float32")
row("LSTMClassifier-lengths-too-long", lambda: charlm.LSTMClassifier(5)(torch.tensor([[1, 2]]), torch.tensor([3])),
    ValueError, "lengths", "3")
row("LSTMClassifier-lengths-batch", lambda: charlm.LSTMClassifier(5)(torch.tensor([[1, 2]]), torch.tensor([2, 2])),
    ValueError, "lengths", "(2,)")
row("Seq2Seq-tgt-out-of-vocab", lambda: _s2s(torch.tensor([[1, 2]]), torch.tensor([2]), torch.tensor([[1, 12]])),
    ValueError, "tgt_in", "12")
row("Seq2Seq-src-float", lambda: _s2s(torch.tensor([[1.0, 2.0]]), torch.tensor([2]), torch.tensor([[1, 2]])),
    ValueError, "src", "float32")
row("Seq2Seq-lengths-too-long", lambda: _s2s(torch.tensor([[1, 2]]), torch.tensor([5]), torch.tensor([[1, 2]])),
    ValueError, "src_lengths", "5")
row("seq2seq_loss-targets-out-of-vocab", lambda: seq2seq.seq2seq_loss(_s2s, (
    torch.tensor([[1, 2]]), torch.tensor([2]), torch.tensor([[1, 2, 3]]), torch.tensor([[2, 3, 99]]))), ValueError,
    "99")
row("greedy_decode-src-out-of-vocab", lambda: _s2s.greedy_decode(torch.tensor([[1, 12]]), torch.tensor([2]), 3),
    ValueError, "src", "12")
row("MaskedLM-inputs-out-of-vocab", lambda: tiny_mlm()(torch.tensor([[1, 99]])), ValueError, "99")
row("MaskedLM-labels-out-of-vocab", lambda: tiny_mlm()(torch.tensor([[1, 2]]), torch.tensor([[1, 99]])), ValueError,
    "labels", "99")
row("MaskedLM-labels-ignore-index", lambda: tiny_mlm()(torch.tensor([[1, 2]]), torch.tensor([[1, mlm.IGNORE_INDEX]])),
    None)
row("ar_loss-targets-out-of-vocab", lambda: text_diffusion.ar_loss(tiny_denoiser(), _ids, torch.tensor([[1, 2, 3],
                                                                                                      [4, 5, 99]])),
    ValueError, "y", "99")
row("masked_diffusion_loss-x0-negative", lambda: text_diffusion.masked_diffusion_loss(tiny_denoiser(),
                                                                                      torch.tensor([[1, -1]])),
    ValueError, "x0", "-1")
row("SequenceClassifier-labels-out-of-range", lambda: finetune.SequenceClassifier(tiny_encoder(), 2)(
    torch.tensor([[1, 2]]), labels=torch.tensor([5])), ValueError, "labels", "5")
row("SequenceClassifier-ids-out-of-vocab", lambda: finetune.SequenceClassifier(tiny_encoder(), 2)(
    torch.tensor([[1, 99]])), ValueError, "ids", "99")
row("SpanQA-start-out-of-range", lambda: finetune.SpanQA(tiny_encoder())(
    torch.tensor([[1, 2]]), start=torch.tensor([5]), end=torch.tensor([1])), ValueError, "start", "5")
row("SpanQA-ids-float", lambda: finetune.SpanQA(tiny_encoder())(torch.tensor([[1.0, 2.0]])), ValueError, "ids",
    "float32")


def _kv_cache_reused_with_another_batch():
    cache = tiny_gpt().new_kv_cache()
    tiny_gpt()(torch.ones(1, 2, dtype=torch.long), kv_cache=cache)
    return tiny_gpt()(torch.ones(2, 1, dtype=torch.long), kv_cache=cache)


row("GPT-kv-cache-other-batch", _kv_cache_reused_with_another_batch, ValueError, "cache", "batch")
row("evaluate_mlm-nothing-masked", lambda: mlm.evaluate_mlm(tiny_mlm(), _long_stream, _specials, 4, 2,
                                                            mask_prob=1e-9), ValueError, "mask_prob", "1e-09")
bad_values("evaluate_mlm", lambda mask_prob: mlm.evaluate_mlm(tiny_mlm(), _long_stream, _specials, 4,
                                                              mask_prob=mask_prob), "mask_prob", (0.0, 1.5, NAN))
_empty_ids = torch.zeros(0, 2, dtype=torch.long)
row("finetune.accuracy-empty", lambda: finetune.accuracy(finetune.SequenceClassifier(tiny_encoder(), 2), _empty_ids,
                                                         torch.ones(0, 2, dtype=bool), torch.zeros(0, dtype=torch.long)),
    ValueError, "empty")
row("finetune.accuracy-labels-batch", lambda: finetune.accuracy(finetune.SequenceClassifier(tiny_encoder(), 2),
                                                                torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=bool),
                                                                torch.tensor([0, 1])), ValueError, "labels", "(2,)")
row("span_accuracy-empty", lambda: finetune.span_accuracy(finetune.SpanQA(tiny_encoder()), {
    "ids": _empty_ids, "key_padding": torch.ones(0, 2, dtype=bool), "start": torch.zeros(0, dtype=torch.long),
    "end": torch.zeros(0, dtype=torch.long), "context_mask": torch.ones(0, 2, dtype=bool)}), ValueError, "empty")


def _gpt_checkpoint_with_config(**changes):
    """GPT.from_checkpoint on the tiny GPT's weights saved with a config changed by `changes`."""
    import dataclasses
    import tempfile

    from lmcourse.checkpoint import save_checkpoint

    config = {**dataclasses.asdict(tiny_gpt().config), **changes}
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(f"{folder}/gpt.pt", tiny_gpt(), config=config)
        return gpt.GPT.from_checkpoint(f"{folder}/gpt.pt")


row("GPT.from_checkpoint-config-n_layer-mismatch", lambda: _gpt_checkpoint_with_config(n_layer=2), ValueError,
    "config", "n_layer")
row("GPT.from_checkpoint-config-n_embd-mismatch", lambda: _gpt_checkpoint_with_config(n_embd=16), ValueError,
    "config", "n_embd")
row("GPT.from_checkpoint-config-unknown-key", lambda: _gpt_checkpoint_with_config(n_heads=2), ValueError, "config",
    "n_heads")
row("GPT.from_checkpoint-matching-config", lambda: _gpt_checkpoint_with_config(), None)
row("GPT.from_checkpoint-missing", lambda: gpt.GPT.from_checkpoint("/nonexistent/gpt.pt"), FileNotFoundError,
    "/nonexistent/gpt.pt")
row("source_sentences-min_words-above-max_words", lambda: finetune.source_sentences("train", min_words=50,
                                                                                    max_words=40),
    ValueError, "min_words", "50")
bad_values("source_sentences", lambda n_per_class: finetune.source_sentences("valid", n_per_class), "n_per_class",
           (0, -1, True, 2.5))

# ----------------------------------------------------------------------------- a sweep of the rest of the public API

STRINGS = ("4",)  # a number typed as text: every int or float argument must refuse it, not compare or multiply it

# core and checks
for _value in (0, -1, True, 2.5, "4", None, NAN):
    row(f"check_int-n={_value!r}", functools.partial(checks.check_int, "n", _value), ValueError, "n", _shown(_value))
for _value in (NAN, INF, "0.5", None, -0.5, 1.5):
    row(f"check_number-p={_value!r}", functools.partial(checks.check_number, "p", _value, 0, 1), ValueError, "p",
        _shown(_value))
row("check_token_ids-float", lambda: checks.check_token_ids("ids", torch.tensor([[1.5]])), ValueError, "ids", "float")
row("check_token_ids-out-of-vocab", lambda: checks.check_token_ids("ids", torch.tensor([[1, 7]]), 5), ValueError, "ids",
    "7")
row("check_token_ids-ndim", lambda: checks.check_token_ids("ids", torch.tensor([1, 2]), ndim=2), ValueError, "ids",
    "(2,)")
row("check_targets-shape", lambda: checks.check_targets("y", torch.tensor([[1, 2]]), (1, 3)), ValueError, "y", "(1, 2)")
row("check_targets-float", lambda: checks.check_targets("y", torch.tensor([[1.0]]), (1, 1)), ValueError, "y", "float")
bad_values("seed_everything", lambda seed: core.seed_everything(seed), "seed", (NAN, None))
row("get_device-empty", lambda: core.get_device(""), ValueError, "prefer", "''")
row("peak_flops-unknown-device", lambda: core.peak_flops("tpu"), ValueError, "tpu")

# data and tokenizers
bad_values("split_text", lambda valid_fraction: data.split_text(TEXT, valid_fraction), "valid_fraction",
           (-0.1, INF, "0.1"))
bad_values("MarkovSource", lambda vocab_size: data.MarkovSource(vocab_size), "vocab_size", (0, -1, "3"))
bad_values("MarkovSource", lambda seed: data.MarkovSource(3, seed=seed), "seed", (-1, 2.5))
bad_values("MarkovSource.sample", lambda n: data.MarkovSource(3).sample(n), "n", STRINGS)
row("MarkovSource.cross_entropy-negative", lambda: data.MarkovSource(3).cross_entropy([0, -1, 2]), ValueError,
    "tokens", "-1")
row("MarkovSource.cross_entropy-float", lambda: data.MarkovSource(3).cross_entropy([0, 1.5, 2]), ValueError,
    "tokens", "float64")
bad_values("load_digits", lambda split: data.load_digits(split), "split", ("TRAIN", "test"))
bad_values("load_labelled_sentences", lambda split: data.load_labelled_sentences(split), "split", ("test",))
bad_values("corpus_tokenizer", lambda level: data.corpus_tokenizer("lee", level), "level", ("words", "bpe"))
row("split_words-not-str", lambda: tokenizers.split_words(123), ValueError, "text", "int")
row("split_words-list", lambda: tokenizers.split_words(["a", "b"]), ValueError, "text", "list")
row("split_sentences-not-str", lambda: tokenizers.split_sentences(None), ValueError, "text", "None")
row("split_words-empty", lambda: tokenizers.split_words(""), None)
bad_values("CharTokenizer.from_text", lambda min_count: tokenizers.CharTokenizer.from_text("abc", min_count),
           "min_count", SIZES)
bad_values("WordTokenizer.from_text", lambda min_count: tokenizers.WordTokenizer.from_text("a b", min_count),
           "min_count", (0, -1, True, 2.5))
row("WordTokenizer.from_text-empty", lambda: tokenizers.WordTokenizer.from_text("   "), ValueError, "text", "empty")
row("Vocabulary-duplicates", lambda: tokenizers.Vocabulary(["a", "b", "a"]), ValueError, "tokens", "'a'")
row("Vocabulary-not-str", lambda: tokenizers.Vocabulary(["a", 3]), ValueError, "tokens", "3")
row("Vocabulary.from_counts-not-counter", lambda: tokenizers.Vocabulary.from_counts("abc"), ValueError, "counts",
    "str")
for _name, _tok in (("CharTokenizer", _CHARS), ("WordTokenizer", _WORDS)):
    row(f"{_name}.decode-2d", functools.partial(_tok.decode, [[1, 2]]), ValueError, "ids", "[[1, 2]]")
    row(f"{_name}.decode-str", functools.partial(_tok.decode, "12"), ValueError, "ids", "'1'")
    row(f"{_name}.decode-float-tensor", functools.partial(_tok.decode, torch.tensor([1.0, 2.0])), ValueError, "ids",
        "1.0")
    row(f"{_name}.decode-bool", functools.partial(_tok.decode, [True, False]), ValueError, "ids", "True")
    row(f"{_name}.decode-numpy-int", functools.partial(_tok.decode, np.array([1, 2])), None)
    row(f"{_name}.encode-bytes", functools.partial(_tok.encode, b"abc"), ValueError, "text", "bytes")
row("BPETokenizer.from_text-empty", lambda: tokenizers.BPETokenizer.from_text(""), ValueError, "text", "empty")
bad_values("BPETokenizer.from_text", lambda vocab_size: tokenizers.BPETokenizer.from_text("abc abd", vocab_size),
           "vocab_size", (0, -1, "300"))

# n-grams
bad_values("NGramLM", lambda order: ngram.NGramLM(order), "order", (-1, None))
bad_values("NGramLM", lambda smoothing: ngram.NGramLM(2, smoothing), "smoothing", ("", "Kneser_Ney", None))
bad_values("NGramLM", lambda k: ngram.NGramLM(2, "add_k", k=k), "k", STRINGS)
bad_values("NGramLM", lambda discount: ngram.NGramLM(2, discount=discount), "discount", (INF, 1.5, "0.75"))
bad_values("NGramLM.generate", lambda n: tiny_lm().generate(n), "n", STRINGS + (NAN,))
bad_values("NGramLM.generate", lambda temperature: tiny_lm().generate(3, temperature=temperature), "temperature",
           STRINGS)
row("NGramLM.fit-str-sentences-mixed", lambda: ngram.NGramLM(2).fit([["a", "b"], "c d"]), ValueError, "tokens")
row("NGramLM.fit-nested-too-deep", lambda: ngram.NGramLM(2).fit([[["a"]]]), ValueError, "tokens")
row("NGramLM.distribution-before-fit", lambda: ngram.NGramLM(2).distribution(()), ValueError, "fit")
row("NGramLM.distribution-context-not-sequence", lambda: tiny_lm().distribution(5), ValueError, "context", "5")
row("NGramLM.perplexity-empty", lambda: tiny_lm().perplexity([]), ValueError, "tokens", "empty")
row("NGramLM.log_probs-empty", lambda: tiny_lm().log_probs([]), ValueError, "tokens", "empty")
row("NGramLM.perplexity-unseen-words", lambda: tiny_lm().perplexity(["a", "dog"]), None)
row("NGramLM.to_arpa-before-fit", lambda: ngram.NGramLM(2).to_arpa("/tmp/never.arpa"), ValueError, "fit")

# embeddings and skip-gram
bad_values("train_word2vec", lambda sg: embeddings.train_word2vec(_SENTS, sg=sg), "sg", (True, 1.0))
bad_values("train_word2vec", lambda vector_size: embeddings.train_word2vec(_SENTS, vector_size=vector_size),
           "vector_size", STRINGS)
bad_values("cosine_similarity-type", lambda u: embeddings.cosine_similarity(u, np.ones(3)), "u", ("abc",))
row("nearest_neighbours-word-not-str", lambda: embeddings.nearest_neighbours(tiny_kv(), 3), ValueError, "word", "3")
row("nearest_neighbours-not-kv", lambda: embeddings.nearest_neighbours({"king": [1, 2]}, "king"), ValueError, "kv",
    "dict")
row("analogy-same-words", lambda: embeddings.analogy(tiny_kv(), "king", "king", "king"), None)
bad_values("weat", lambda n_permutations: embeddings.weat(tiny_kv(), ["king", "man"], ["queen", "woman"], ["paris"],
                                                          ["rome"], n_permutations), "n_permutations", STRINGS)
row("weat-missing-attribute", lambda: embeddings.weat(tiny_kv(), ["king", "man"], ["queen", "woman"], ["zebra"],
                                                      ["rome"]), ValueError, "zebra")
bad_values("one_hot_memory", lambda bytes_per_number: embeddings.one_hot_memory(10, 4, bytes_per_number),
           "bytes_per_number", SIZES)
bad_values("pair_similarities", lambda name: embeddings.pair_similarities(tiny_kv(), name), "name", ("ws353",))
bad_values("analogy_results", lambda restrict_vocab: embeddings.analogy_results(tiny_kv(), restrict_vocab),
           "restrict_vocab", SIZES)
row("analogy_results-not-kv", lambda: embeddings.analogy_results(np.zeros((3, 4))), ValueError, "kv")
bad_values("keep_probabilities", lambda sample: skipgram.keep_probabilities(np.array([5, 3]), sample), "sample",
           STRINGS)
row("keep_probabilities-negative-counts", lambda: skipgram.keep_probabilities(np.array([5, -3])), ValueError, "counts",
    "-3")
row("negative_table-empty-counts", lambda: skipgram.negative_table(np.array([])), ValueError, "counts", "empty")
row("negative_table-zero-counts", lambda: skipgram.negative_table(np.array([0, 0])), ValueError, "counts", "0")
row("skipgram_pairs-lengths", lambda: skipgram.skipgram_pairs(np.arange(4), np.zeros(3, dtype=int), 2,
                                                              np.random.default_rng(0)), ValueError, "sentence_ids",
    "(3,)")
bad_values("SkipGramNS", lambda seed: skipgram.SkipGramNS(5, 4, seed), "seed", (-1, 2.5))
row("SkipGramNS.loss-float-ids", lambda: skipgram.SkipGramNS(5, 4).loss(torch.tensor([1.0]), torch.tensor([2]),
                                                                       torch.tensor([[3]])), ValueError, "float32")
row("sgd_step-negatives-batch", lambda: skipgram.sgd_step(skipgram.SkipGramNS(5, 4), torch.tensor([1]),
                                                          torch.tensor([2]), torch.tensor([[3], [4]]), 0.1),
    ValueError, "negatives", "(2, 1)")
row("build_vocab-str", lambda: skipgram.build_vocab("a b c"), ValueError, "sentences", "str")

# recurrent networks, character models, seq2seq, tasks
for _cls in (rnn.RNNCell, rnn.LSTMCell, rnn.GRUCell):
    bad_values(_cls.__name__, lambda input_size, _c=_cls: _c(input_size, 4), "input_size", STRINGS)
    bad_values(_cls.__name__, lambda bias, _c=_cls: _c(3, 4, bias=bias), "bias", ("yes", 2))
for _cls in (rnn.RNN, rnn.LSTM, rnn.GRU):
    bad_values(_cls.__name__, lambda bias, _c=_cls: _c(3, 4, bias=bias), "bias", ("no",))
    bad_values(_cls.__name__, lambda dropout, _c=_cls: _c(3, 4, 2, dropout=dropout), "dropout", (INF, "0.1"))
bad_values("CharLSTM", lambda embed_dim: charlm.CharLSTM(5, embed_dim), "embed_dim", SIZES)
bad_values("CharLSTM", lambda num_layers: charlm.CharLSTM(5, num_layers=num_layers), "num_layers", SIZES)
bad_values("CharLSTM", lambda impl: charlm.CharLSTM(5, impl=impl), "impl", ("Torch", ""))
bad_values("LSTMClassifier", lambda vocab_size: charlm.LSTMClassifier(vocab_size), "vocab_size", SIZES)
bad_values("LSTMClassifier", lambda embed_dim: charlm.LSTMClassifier(5, embed_dim=embed_dim), "embed_dim", SIZES)
bad_values("LSTMClassifier", lambda hidden_size: charlm.LSTMClassifier(5, hidden_size=hidden_size), "hidden_size",
           SIZES)
bad_values("LSTMClassifier", lambda impl: charlm.LSTMClassifier(5, impl=impl), "impl", ("cudnn",))
bad_values("LSTMClassifier", lambda pad_id: charlm.LSTMClassifier(5, pad_id=pad_id), "pad_id", (5, -6, 1.5))
row("CharLSTM-ids-empty", lambda: tiny_char_lstm()(torch.zeros(1, 0, dtype=torch.long)), ValueError, "ids", "(1, 0)")
row("CharLSTM-ids-list", lambda: tiny_char_lstm()([[1, 2]]), ValueError, "ids", "list")
row("charlm.lm_loss-batch-not-pair", lambda: charlm.lm_loss(tiny_char_lstm(), torch.tensor([[1, 2]])), ValueError,
    "batch", "tuple")
row("TBPTTLoss-batch-not-triple", lambda: charlm.TBPTTLoss()(tiny_char_lstm(), (torch.tensor([[1, 2]]),
                                                                               torch.tensor([[2, 3]]))),
    ValueError, "batch")
bad_values("Seq2Seq", lambda emb_dim: seq2seq.Seq2Seq(10, emb_dim), "emb_dim", SIZES)
bad_values("Seq2Seq", lambda attention: seq2seq.Seq2Seq(10, attention=attention), "attention", ("Luong", "none"))
bad_values("Seq2SeqEncoder", lambda vocab_size: seq2seq.Seq2SeqEncoder(vocab_size, 4, 8), "vocab_size", SIZES)
bad_values("Seq2SeqEncoder", lambda hidden: seq2seq.Seq2SeqEncoder(10, 4, hidden), "hidden", SIZES)
bad_values("BahdanauAttention", lambda attn_dim: seq2seq.BahdanauAttention(8, 8, attn_dim), "attn_dim", SIZES)
bad_values("LuongAttention", lambda query_dim: seq2seq.LuongAttention(query_dim, 8), "query_dim", SIZES)
row("LuongAttention-keys-width", lambda: seq2seq.LuongAttention(8, 8)(torch.zeros(2, 8), torch.zeros(2, 3, 6),
                                                                      torch.ones(2, 3, dtype=bool)),
    ValueError, "keys", "(2, 3, 6)")
row("BahdanauAttention-mask-shape", lambda: seq2seq.BahdanauAttention(8, 8, 4)(torch.zeros(2, 8), torch.zeros(2, 3, 8),
                                                                             torch.ones(2, 4, dtype=bool)),
    ValueError, "mask", "(2, 4)")
row("Seq2Seq-src-1d", lambda: _s2s(torch.tensor([1, 2]), torch.tensor([2]), torch.tensor([[1, 2]])), ValueError,
    "src", "(2,)")
row("Seq2Seq-lengths-float", lambda: _s2s(torch.tensor([[1, 2]]), torch.tensor([2.0]), torch.tensor([[1, 2]])),
    ValueError, "src_lengths", "float32")
row("greedy_decode-lengths-batch", lambda: _s2s.greedy_decode(torch.ones(2, 3, dtype=torch.long), torch.tensor([3]),
                                                              4), ValueError, "src_lengths", "(1,)")
row("exact_match-not-pairs", lambda: seq2seq.exact_match(_s2s, tasks.ReversalTask(7), ["12"]), ValueError, "pairs")
row("accuracy_by_length-empty-lengths", lambda: seq2seq.accuracy_by_length(_s2s, tasks.ReversalTask(7), []),
    ValueError, "lengths", "empty")
bad_values("ReversalTask", lambda max_len: tasks.ReversalTask(max_len=max_len), "max_len", (1, 0, True, 2.5))
bad_values("ReversalTask.sample", lambda seed: tasks.ReversalTask().sample(2, seed=seed), "seed", (-1, 2.5))
row("ReversalTask.batch-empty", lambda: tasks.ReversalTask().batch([]), ValueError, "pairs", "empty")
row("ReversalTask.encode-not-str", lambda: tasks.ReversalTask().encode(123), ValueError, "123")
row("ReversalTask.decode-out-of-range", lambda: tasks.ReversalTask().decode([1, 99]), ValueError, "ids", "99")
bad_values("OrderTask", lambda min_len: tasks.OrderTask(min_len=min_len), "min_len", (0, -1, True, 2.5))
bad_values("OrderTask", lambda max_len: tasks.OrderTask(max_len=max_len), "max_len", (3, True, 2.5))
row("OrderTask-same-markers", lambda: tasks.OrderTask(markers=("cat", "cat")), ValueError, "markers", "cat")
row("OrderTask-markers-not-pair", lambda: tasks.OrderTask(markers=("cat",)), ValueError, "markers")
bad_values("OrderTask.sample", lambda n: tasks.OrderTask().sample(n, seed=0), "n", SIZES)
bad_values("OrderTask.sample", lambda seed: tasks.OrderTask().sample(2, seed=seed), "seed", (-1, 2.5))

# attention and the Transformer
bad_values("causal_mask", lambda t_q: attention.causal_mask(t_q), "t_q", STRINGS)
row("padding_mask-2d", lambda: attention.padding_mask([[1, 2]]), ValueError, "lengths")
row("padding_mask-t_k-zero", lambda: attention.padding_mask([1, 2], t_k=0), ValueError, "t_k", "0")
row("padding_mask-tensor-int32", lambda: attention.padding_mask(torch.tensor([1, 2], dtype=torch.int32)), None)
row("sdpa-q-list", lambda: attention.scaled_dot_product_attention([[0.0]], _q, _q), ValueError, "q", "list")
row("sdpa-q-long", lambda: attention.scaled_dot_product_attention(_q.long(), _q.long(), _q.long()), ValueError, "q",
    "int64")
row("sdpa-dtype-mix", lambda: attention.scaled_dot_product_attention(_q, _q.double(), _q), ValueError, "float64")
row("sdpa-batch-mismatch", lambda: attention.scaled_dot_product_attention(_q, torch.zeros(3, 3, 4),
                                                                          torch.zeros(3, 3, 4)), ValueError, "(3, 3, 4)")
row("sdpa-is_causal-with-mask", lambda: attention.scaled_dot_product_attention(
    _q, _q, _q, mask=torch.ones(3, 3, dtype=bool), is_causal=True), None)
bad_values("sdpa", lambda scale: attention.scaled_dot_product_attention(_q, _q, _q, scale=scale), "scale", ("2",))
row("attention_stages-nan", lambda: attention.attention_stages(torch.full_like(_q, NAN), _q), None)
row("check_mask-float-nan", lambda: attention.check_mask(torch.full((3, 3), NAN), (2, 2, 3, 3)), ValueError, "mask",
    "nan")
bad_values("MultiHeadAttention", lambda n_embd: attention.MultiHeadAttention(n_embd, 2), "n_embd", STRINGS)
bad_values("MultiHeadAttention", lambda dropout: attention.MultiHeadAttention(8, 2, dropout), "dropout", (-0.1, INF))
row("MultiHeadAttention-query-list", lambda: _mha([[0.0] * 8], _x, _x), ValueError, "query", "list")
row("MultiHeadAttention-key-value-length", lambda: _mha(_x, torch.zeros(2, 3, 8), torch.zeros(2, 4, 8)), ValueError,
    "(2, 4, 8)")
row("MultiHeadAttention-empty-keys", lambda: _mha(_x, torch.zeros(2, 0, 8), torch.zeros(2, 0, 8)), ValueError, "key",
    "(2, 0, 8)")
row("MultiHeadAttention-mask-5d", lambda: _mha(_x, _x, _x, mask=torch.ones(1, 1, 1, 3, 3, dtype=bool)), ValueError,
    "mask", "(1, 1, 1, 3, 3)")
bad_values("sinusoidal_positions", lambda n_positions: transformer.sinusoidal_positions(n_positions, 4), "n_positions",
           STRINGS)
bad_values("FeedForward", lambda n_embd: transformer.FeedForward(n_embd, 16), "n_embd", SIZES)
bad_values("FeedForward", lambda dropout: transformer.FeedForward(8, 16, dropout), "dropout", (1.0, NAN, -0.1))
row("FeedForward-width", lambda: transformer.FeedForward(8, 16)(torch.zeros(2, 3, 6)), ValueError, "(2, 3, 6)")
for _cls in (transformer.EncoderLayer, transformer.DecoderLayer):
    bad_values(_cls.__name__, lambda activation, _c=_cls: _c(8, 2, 16, activation=activation), "activation",
               ("swish", "ReLU"))
    bad_values(_cls.__name__, lambda norm_first, _c=_cls: _c(8, 2, 16, norm_first=norm_first), "norm_first",
               ("pre", 2))
bad_values("TransformerConfig", lambda vocab_size: transformer.TransformerConfig(vocab_size), "vocab_size", STRINGS)
bad_values("TransformerConfig", lambda norm_first: transformer.TransformerConfig(10, norm_first=norm_first),
           "norm_first", ("pre",))
row("Encoder-ids-negative", lambda: tiny_encoder()(torch.tensor([[1, -1]])), ValueError, "ids", "-1")
row("Encoder-ids-list", lambda: tiny_encoder()([[1, 2]]), ValueError, "ids", "list")
row("Encoder-ids-empty", lambda: tiny_encoder()(torch.zeros(1, 0, dtype=torch.long)), ValueError, "ids", "(1, 0)")
row("Encoder-key_padding-long", lambda: tiny_encoder()(torch.tensor([[1, 2]]), key_padding=torch.ones(1, 2,
                                                                                                      dtype=torch.long)),
    ValueError, "key_padding", "int64")
row("Encoder-key_padding-all-padding", lambda: tiny_encoder()(torch.tensor([[1, 2]]),
                                                              key_padding=torch.zeros(1, 2, dtype=bool)),
    ValueError, "key_padding")

# GPT
bad_values("GPTConfig", lambda vocab_size: gpt.GPTConfig(vocab_size, 8, 1, 2, 8), "vocab_size", STRINGS)
bad_values("GPTConfig", lambda bias: gpt.GPTConfig(11, 8, 1, 2, 8, bias=bias), "bias", ("yes", 2))
bad_values("GPT", lambda config: gpt.GPT(config), "config", ({"vocab_size": 11}, None))
row("GPT-idx-empty", lambda: tiny_gpt()(torch.zeros(1, 0, dtype=torch.long)), ValueError, "idx", "(1, 0)")
row("GPT-idx-numpy", lambda: tiny_gpt()(np.array([[1, 2]])), ValueError, "idx", "ndarray")
row("GPT-targets-negative", lambda: tiny_gpt()(torch.tensor([[1, 2]]), torch.tensor([[1, -2]])), ValueError,
    "targets", "-2")
row("GPT-targets-list", lambda: tiny_gpt()(torch.tensor([[1, 2]]), [[1, 2]]), ValueError, "targets", "list")
bad_values("KVCache", lambda n_layer: gpt.KVCache(n_layer), "n_layer", SIZES)
bad_values("KVCache", lambda max_len: gpt.KVCache(1, max_len), "max_len", (-1, True, 2.5, "16"))
bad_values("GPT.new_kv_cache", lambda max_len: tiny_gpt().new_kv_cache(max_len), "max_len", (0, -1, 2.5))
row("GPT-kv-cache-of-other-model", lambda: tiny_gpt()(torch.ones(1, 2, dtype=torch.long),
                                                      kv_cache=gpt.KVCache(3)), ValueError, "n_layer", "3")
row("GPT-kv-cache-not-cache", lambda: tiny_gpt()(torch.ones(1, 2, dtype=torch.long), kv_cache={}), ValueError,
    "kv_cache", "dict")
bad_values("GPT.configure_optimizer", lambda lr: tiny_gpt().configure_optimizer(lr), "lr", STRINGS)
bad_values("GPT.configure_optimizer", lambda betas: tiny_gpt().configure_optimizer(1e-3, betas=betas), "betas",
           ((0.9, 1.0), (0.9,), (-0.1, 0.99)))
bad_values("GPT.flops_per_token", lambda context: tiny_gpt().flops_per_token(context), "context", STRINGS)

# generation
bad_values("generate", lambda temperature: gen(do_sample=True, temperature=temperature), "temperature", STRINGS)
bad_values("generate", lambda top_k: gen(do_sample=True, top_k=top_k), "top_k", STRINGS)
bad_values("generate", lambda top_p: gen(do_sample=True, top_p=top_p), "top_p", STRINGS)
bad_values("generate", lambda num_beams: gen(num_beams=num_beams), "num_beams", STRINGS)
bad_values("generate", lambda use_cache: gen(use_cache=use_cache), "use_cache", ("no", 2))
bad_values("generate", lambda crop_context: gen(crop_context=crop_context), "crop_context", ("yes",))
row("generate-model-not-module", lambda: generate.generate("gpt2", prompt(), 3), ValueError, "model", "str")
row("generate-idx-numpy", lambda: gen(np.array([[1, 2]])), ValueError, "idx", "ndarray")
row("generate-beams-with-sampling", lambda: gen(num_beams=2, do_sample=True, seed=0), None)
row("generate-zero-tokens", lambda: gen(max_new_tokens=0), None)
row("top_k_filter-scores-1d", lambda: generate.top_k_filter(torch.zeros(5), 2), None)
row("top_k_filter-k-above-vocab", lambda: generate.top_k_filter(torch.zeros(1, 5), 9), None)
row("top_k_filter-scores-long", lambda: generate.top_k_filter(torch.zeros(1, 5, dtype=torch.long), 2), ValueError,
    "scores", "int64")
row("top_p_filter-scores-long", lambda: generate.top_p_filter(torch.zeros(1, 5, dtype=torch.long), 0.5), ValueError,
    "scores", "int64")
bad_values("top_p_filter", lambda top_p: generate.top_p_filter(torch.zeros(1, 5), top_p), "top_p", STRINGS + (INF,))
bad_values("banned_ngram_tokens", lambda ngram_size: generate.banned_ngram_tokens([1, 2, 1], ngram_size),
           "ngram_size", SIZES)
row("banned_ngram_tokens-ids-tensor-2d", lambda: generate.banned_ngram_tokens(torch.ones(2, 3, dtype=torch.long), 2),
    ValueError, "ids", "(2, 3)")
row("apply_repetition_penalty-ids-float", lambda: generate.apply_repetition_penalty(prompt(torch.float32),
                                                                                    torch.zeros(1, V), 1.2),
    ValueError, "ids", "float32")
row("apply_repetition_penalty-ids-out-of-vocab", lambda: generate.apply_repetition_penalty(
    torch.tensor([[1, 99]]), torch.zeros(1, V), 1.2), ValueError, "ids", "99")
bad_values("process_scores", lambda top_k: generate.process_scores(prompt(), torch.zeros(1, V), do_sample=True,
                                                                   top_k=top_k), "top_k", SIZES)
bad_values("process_scores", lambda top_p: generate.process_scores(prompt(), torch.zeros(1, V), do_sample=True,
                                                                   top_p=top_p), "top_p", PROBS)
bad_values("process_scores", lambda repetition_penalty: generate.process_scores(
    prompt(), torch.zeros(1, V), repetition_penalty=repetition_penalty), "repetition_penalty", POSITIVE)
bad_values("process_scores", lambda no_repeat_ngram_size: generate.process_scores(
    prompt(), torch.zeros(1, V), no_repeat_ngram_size=no_repeat_ngram_size), "no_repeat_ngram_size", COUNTS)

# Gaussian diffusion and denoisers
bad_values("NoiseSchedule", lambda T: diffusion.NoiseSchedule(T), "T", STRINGS + (None,))
bad_values("NoiseSchedule", lambda kind: diffusion.NoiseSchedule(10, kind), "kind", ("Linear", ""))
row("NoiseSchedule-beta_start-above-beta_end", lambda: diffusion.NoiseSchedule(10, beta_start=0.05, beta_end=0.02),
    ValueError, "beta_start", "0.05")
bad_values("NoiseSchedule", lambda beta_end: diffusion.NoiseSchedule(10, beta_end=beta_end), "beta_end", (-0.1, INF))
row("q_sample-x0-nan", lambda: SCHEDULE.q_sample(torch.full((4, 2), NAN), torch.zeros(4, dtype=torch.long)), None)
row("q_sample-t-list", lambda: SCHEDULE.q_sample(_x0, [0, 1, 2, 3]), ValueError, "t", "list")
row("q_sample-x0-long", lambda: SCHEDULE.q_sample(torch.zeros(4, 2, dtype=torch.long),
                                                  torch.zeros(4, dtype=torch.long)), ValueError, "x0", "int64")
row("predict_x0-eps-shape", lambda: SCHEDULE.predict_x0(_x0, torch.zeros(4, dtype=torch.long), torch.zeros(4, 3)),
    ValueError, "eps", "(4, 3)")
bad_values("ddim_timesteps", lambda steps: diffusion.ddim_timesteps(10, steps), "steps", (-1, 11, True, 2.5))
bad_values("ddim_timesteps", lambda T: diffusion.ddim_timesteps(T, 1), "T", SIZES)
row("timestep_embedding-t-float", lambda: diffusion.timestep_embedding(torch.zeros(2), 4), None)
row("timestep_embedding-t-2d", lambda: diffusion.timestep_embedding(torch.zeros(2, 1, dtype=torch.long), 4),
    ValueError, "t", "(2, 1)")
bad_values("timestep_embedding", lambda max_period: diffusion.timestep_embedding(torch.zeros(2, dtype=torch.long), 4,
                                                                                 max_period), "max_period",
           (0.0, -1.0, NAN))
bad_values("guided", lambda null_class: diffusion.guided(lambda x, t, y: x, torch.zeros(2), 1.0, null_class),
           "null_class", (-1, 2.5))
row("guided-y-float", lambda: diffusion.guided(lambda x, t, y: x, torch.zeros(2), 1.0, 3)(
    _x0[:2], torch.zeros(2, dtype=torch.long)), ValueError, "y", "float32")
row("ddpm_sample-eps-nan", lambda: _nan_visible(lambda: diffusion.ddpm_sample(lambda x, t: torch.full_like(x, NAN),
                                                                             SCHEDULE, (4, 2))), ValueError, "nan")
row("ddim_sample-eps-nan", lambda: _nan_visible(lambda: diffusion.ddim_sample(lambda x, t: torch.full_like(x, NAN),
                                                                             SCHEDULE, (4, 2), 5)), ValueError, "nan")
bad_values("ddpm_sample", lambda shape: diffusion.ddpm_sample(zero_eps, SCHEDULE, shape), "shape", (4, None))
row("ddpm_step-x_t-nan", lambda: diffusion.ddpm_step(zero_eps, SCHEDULE, torch.full((4, 2), NAN),
                                                     torch.zeros(4, dtype=torch.long)), None)
row("ddpm_step-t-float", lambda: diffusion.ddpm_step(zero_eps, SCHEDULE, _x0, torch.zeros(4)), ValueError, "t",
    "float32")
row("energy_distance-1d", lambda: diffusion.energy_distance(torch.zeros(3), torch.zeros(3)), ValueError, "(3,)")
row("mmd_rbf-features", lambda: diffusion.mmd_rbf(torch.zeros(3, 2), torch.zeros(3, 3)), ValueError, "(3, 2)",
    "(3, 3)")
row("mmd_rbf-one-sample", lambda: diffusion.mmd_rbf(torch.zeros(1, 2), torch.zeros(3, 2)), ValueError, "two")
bad_values("MLPDenoiser", lambda dim: MLPDenoiser(dim=dim), "dim", SIZES)
bad_values("MLPDenoiser", lambda n_blocks: MLPDenoiser(n_blocks=n_blocks), "n_blocks", (-1, True, 2.5))
bad_values("UNet8", lambda emb_dim: UNet8(8, emb_dim=emb_dim), "emb_dim", SIZES)
bad_values("UNet8", lambda num_classes: UNet8(8, num_classes), "num_classes", (2.5, "3"))

from lmcourse.denoisers import NaiveDenoiser, ResBlock  # noqa: E402

bad_values("NaiveDenoiser", lambda dim: NaiveDenoiser(dim), "dim", SIZES)
bad_values("NaiveDenoiser", lambda hidden: NaiveDenoiser(2, hidden), "hidden", SIZES)
row("NaiveDenoiser-x-width", lambda: NaiveDenoiser()(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)),
    ValueError, "x", "(4, 3)")
for _arg in ("c_in", "c_out", "emb_dim"):
    bad_values("ResBlock", lambda _a=_arg, **kw: ResBlock(**{"c_in": 8, "c_out": 8, "emb_dim": 8, **kw}), _arg, SIZES)
bad_values("make_toy2d", lambda n: toy2d.make_toy2d(n=n), "n", STRINGS)
bad_values("make_toy2d", lambda name: toy2d.make_toy2d(name), "name", ("Moons", ""))
bad_values("near_data_share", lambda radius: toy2d.near_data_share(_x0, _x0, radius), "radius", POSITIVE)
row("near_data_share-width", lambda: toy2d.near_data_share(torch.zeros(4, 2), torch.zeros(4, 3)), ValueError,
    "(4, 3)")
row("near_data_share-empty", lambda: toy2d.near_data_share(torch.zeros(0, 2), torch.zeros(4, 2)), ValueError,
    "points", "(0, 2)")

# text diffusion
bad_values("TextDenoiser", lambda n_head: text_diffusion.TextDenoiser(5, n_head=n_head), "n_head", SIZES)
bad_values("TextDenoiser", lambda n_embd: text_diffusion.TextDenoiser(5, n_head=1, n_embd=n_embd), "n_embd", SIZES)
bad_values("TextDenoiser", lambda causal: text_diffusion.TextDenoiser(5, causal=causal), "causal", ("yes", 2))
row("TextDenoiser-idx-negative", lambda: tiny_denoiser()(torch.tensor([[1, -1]])), ValueError, "idx", "-1")
row("TextDenoiser-idx-empty", lambda: tiny_denoiser()(torch.zeros(1, 0, dtype=torch.long)), ValueError, "idx", "(1, 0)")
row("TextDenoiser-idx-list", lambda: tiny_denoiser()([[1, 2]]), ValueError, "idx", "list")
bad_values("alibi_bias", lambda T: text_diffusion.alibi_bias(T, 2, False), "T", SIZES)
bad_values("alibi_bias", lambda n_head: text_diffusion.alibi_bias(4, n_head, False), "n_head", SIZES)
bad_values("mask_tokens", lambda mask_id: absorb_tokens(_ids, torch.zeros(2), mask_id), "mask_id",
           (-1, 2.5))
row("mask_tokens-t-long", lambda: absorb_tokens(_ids, torch.zeros(2, dtype=torch.long), V), ValueError,
    "t", "int64")
row("mask_tokens-x0-contains-mask-id", lambda: absorb_tokens(torch.tensor([[1, V]]), torch.zeros(1), V),
    ValueError, "x0", str(V))
row("masked_diffusion_loss-t-shape", lambda: text_diffusion.masked_diffusion_loss(tiny_denoiser(), _ids,
                                                                                  t=torch.full((3,), 0.5)),
    ValueError, "t", "(3,)")
row("masked_diffusion_loss-x0-float", lambda: text_diffusion.masked_diffusion_loss(tiny_denoiser(), _ids.float()),
    ValueError, "x0", "float32")
row("masked_diffusion_loss-x0-empty", lambda: text_diffusion.masked_diffusion_loss(tiny_denoiser(),
                                                                                   torch.zeros(0, 3, dtype=torch.long)),
    ValueError, "x0", "(0, 3)")
bad_values("masked_lm_loss", lambda t_max: text_diffusion.masked_lm_loss(tiny_denoiser(), _ids, t_max), "t_max",
           (0.0, NAN, 1.5, -0.5))
row("masked_lm_loss-x0-out-of-vocab", lambda: text_diffusion.masked_lm_loss(tiny_denoiser(), torch.tensor([[1, 99]])),
    ValueError, "x0", "99")
bad_values("infill", lambda start: text_diffusion.infill(tiny_denoiser(), _ids, start, 1), "start", (-1, 3, 1.5))
bad_values("infill", lambda length: text_diffusion.infill(tiny_denoiser(), _ids, 1, length), "length", SIZES)
row("infill-windows-float", lambda: text_diffusion.infill(tiny_denoiser(), _ids.float(), 1, 1), ValueError,
    "windows", "float32")
bad_values("infill_by_span", lambda hidden: text_diffusion.infill_by_span(tiny_denoiser(), _stream, [1], hidden),
           "hidden", SIZES)
row("infill_by_span-spans-empty", lambda: text_diffusion.infill_by_span(tiny_denoiser(), _stream, [], 2), ValueError,
    "spans", "empty")
bad_values("infill_by_span", lambda spans: text_diffusion.infill_by_span(tiny_denoiser(), _stream, spans, 2),
           "spans", ([0], [9]))
bad_values("sample_text", lambda n: text_diffusion.sample_text(tiny_denoiser(), n), "n", STRINGS)
bad_values("sample_text", lambda steps: text_diffusion.sample_text(tiny_denoiser(), 1, steps=steps), "steps", STRINGS)
bad_values("masking_times", lambda batch_size: text_diffusion.masking_times(batch_size), "batch_size", STRINGS)
row("diffusion_bound-ids-empty", lambda: text_diffusion.diffusion_bound(tiny_denoiser(), []), ValueError, "ids",
    "empty")
row("diffusion_bound-ids-too-short", lambda: text_diffusion.diffusion_bound(tiny_denoiser(), [1, 2, 3]), ValueError,
    "ids", "block_size")
row("nats_to_bits-nan-in-nan-out", lambda: text_diffusion.nats_to_bits(NAN), None)
row("nats_to_bits-str", lambda: text_diffusion.nats_to_bits("1.2"), ValueError, "nats", "1.2")

# token streams
bad_values("random_windows", lambda block_size: first_batch(sequences.random_windows(_long_stream, block_size, 2)),
           "block_size", STRINGS)
row("random_windows-ids-negative", lambda: first_batch(sequences.random_windows([-1] * 20, 4, 2)), ValueError, "ids",
    "-1")
row("random_windows-ids-str", lambda: first_batch(sequences.random_windows("abcdefghijklmnop", 4, 2)), ValueError,
    "ids", "str")
row("random_windows-ids-tensor-int32", lambda: first_batch(sequences.random_windows(
    torch.arange(40, dtype=torch.int32), 4, 2)), None)
row("random_windows-ids-numpy", lambda: first_batch(sequences.random_windows(np.arange(40), 4, 2)), None)
row("Windows-ids-float", lambda: sequences.Windows([0.5] * 40, 4), ValueError, "ids", "float")
row("Windows-index-out-of-range", lambda: sequences.Windows(_long_stream, 4)[10 ** 6], IndexError, "1000000")
row("consecutive_windows-too-short", lambda: first_batch(sequences.consecutive_windows([1, 2, 3], 4, 2)), ValueError,
    "ids", "block_size=4")
bad_values("token_log_probs", lambda block_size: sequences.token_log_probs(_logits_fn, _long_stream, block_size),
           "block_size", SIZES)
bad_values("token_log_probs", lambda batch_size: sequences.token_log_probs(_logits_fn, _long_stream, 4, batch_size),
           "batch_size", SIZES)
bad_values("token_log_probs", lambda max_tokens: sequences.token_log_probs(_logits_fn, _long_stream, 4,
                                                                           max_tokens=max_tokens), "max_tokens", SIZES)
bad_values("token_log_probs", lambda stride: sequences.token_log_probs(_logits_fn, _long_stream, 4, stride=stride),
           "stride", SIZES + (5,))
row("token_log_probs-logits-vocab-too-small", lambda: sequences.token_log_probs(
    lambda x: torch.zeros(*x.shape, 3), _long_stream, 4), ValueError, "10", "3 tokens")
row("cross_entropy-ids-empty", lambda: sequences.cross_entropy(_logits_fn, [], 4), ValueError, "ids", "empty")
row("cross_entropy-ids-one-token", lambda: sequences.cross_entropy(_logits_fn, [1], 4), ValueError, "ids")
row("cross_entropy-logits-nan", lambda: _nan_visible(lambda: sequences.cross_entropy(
    lambda x: torch.full((*x.shape, V), NAN), _long_stream, 4)), ValueError, "nan")

# masked LM and fine-tuning
row("SpecialTokens-not-tokenizer", lambda: mlm.SpecialTokens("abc"), ValueError, "tokenizer", "str")
row("SpecialTokens.batch-out-of-vocab", lambda: _specials.batch([[1, 99]], 8), ValueError, "99")
bad_values("mlm.mask_tokens", lambda mask_id: mlm.mask_tokens(_ids, mask_id, 7), "mask_id", (-1, 2.5))
bad_values("mlm.mask_tokens", lambda mask_prob: mlm.mask_tokens(_ids, 9, 7, mask_prob), "mask_prob", (-0.5, 1.5, "0.15"))
row("mlm.mask_tokens-special-long", lambda: mlm.mask_tokens(_ids, 9, 7, special=torch.zeros(2, 3, dtype=torch.long)),
    ValueError, "special", "int64")
bad_values("mlm_batches", lambda seed: first_batch(mlm.mlm_batches(_long_stream, _specials, 4, 2, seed=seed)), "seed",
           (-1, 2.5))
row("mlm_batches-ids-out-of-vocab", lambda: first_batch(mlm.mlm_batches([99] * 20, _specials, 4, 2)), ValueError,
    "ids", "99")
row("mlm_batches-ids-too-short", lambda: first_batch(mlm.mlm_batches([1, 2], _specials, 4, 2)), ValueError, "ids")
bad_values("MLMHead", lambda n_embd: mlm.MLMHead(n_embd, torch.nn.Embedding(5, 8)), "n_embd", SIZES)
row("MLMHead-width", lambda: mlm.MLMHead(6, torch.nn.Embedding(5, 8)), ValueError, "n_embd", "6")
row("MaskedLM-config-not-config", lambda: mlm.MaskedLM({"vocab_size": 10}), ValueError, "config", "dict")
row("MaskedLM-inputs-float", lambda: tiny_mlm()(torch.tensor([[1.0, 2.0]])), ValueError, "inputs", "float32")
row("MaskedLM-labels-float", lambda: tiny_mlm()(torch.tensor([[1, 2]]), torch.tensor([[1.0, 2.0]])), ValueError,
    "labels", "float32")
row("never_picked-shape-free", lambda: mlm.never_picked(torch.tensor([[1, 2]]), _specials), None)
row("never_picked-float", lambda: mlm.never_picked(torch.tensor([[1.0, 2.0]]), _specials), ValueError, "x",
    "float32")
bad_values("evaluate_mlm", lambda baseline_token: mlm.evaluate_mlm(tiny_mlm(), _long_stream, _specials, 4,
                                                                   baseline_token=baseline_token), "baseline_token",
           (-1, 99, 2.5))
row("evaluate_mlm-ids-empty", lambda: mlm.evaluate_mlm(tiny_mlm(), [], _specials, 4, 2), ValueError, "ids", "empty")
bad_values("person_or_place", lambda split: finetune.person_or_place(split), "split", ("test", "TRAIN"))
bad_values("person_or_place", lambda n_per_class: finetune.person_or_place("valid", n_per_class), "n_per_class",
           (0, -1, True, 2.5))
bad_values("person_or_place", lambda max_words: finetune.person_or_place("valid", max_words=max_words), "max_words",
           SIZES)
bad_values("person_or_place", lambda max_chars: finetune.person_or_place("valid", max_chars=max_chars), "max_chars",
           SIZES)
bad_values("source_sentences", lambda min_words: finetune.source_sentences("valid", min_words=min_words), "min_words",
           (0, -1, 2.5))
bad_values("source_sentences", lambda seed: finetune.source_sentences("valid", seed=seed), "seed", (-1, 2.5))
bad_values("reading_comprehension", lambda seed: finetune.reading_comprehension(2, seed), "seed", (-1, 2.5))
bad_values("SequenceClassifier", lambda read_id: finetune.SequenceClassifier(tiny_encoder(), 2, read_id=read_id),
           "read_id", (-1, V, 2.5))
row("SequenceClassifier-encoder-not-encoder", lambda: finetune.SequenceClassifier(torch.nn.Linear(2, 2), 2),
    ValueError, "encoder", "Linear")
row("SpanQA-encoder-not-encoder", lambda: finetune.SpanQA(None), ValueError, "encoder", "None")
row("SequenceClassifier-labels-float", lambda: finetune.SequenceClassifier(tiny_encoder(), 2)(
    torch.tensor([[1, 2]]), labels=torch.tensor([0.0])), ValueError, "labels", "float32")
row("encode_masked-not-str", lambda: finetune.encode_masked(_specials, 123), ValueError, "text", "int")
row("encode_qa-empty", lambda: finetune.encode_qa([], _word_specials(), 64), ValueError, "examples", "empty")
bad_values("encode_qa", lambda max_len: finetune.encode_qa(finetune.reading_comprehension(1), _word_specials(),
                                                           max_len), "max_len", (0, -1, 2.5))
row("vectors_at-token-absent", lambda: finetune.vectors_at(torch.zeros(1, 3, 4), torch.tensor([[1, 2, 3]]), 7),
    ValueError, "token_id", "7")
row("vectors_at-shapes", lambda: finetune.vectors_at(torch.zeros(1, 3, 4), torch.tensor([[1, 2]]), 1), ValueError,
    "(1, 2)")
row("best_span-1d", lambda: finetune.best_span(torch.zeros(4), torch.zeros(4)), ValueError, "(4,)")
row("best_span-nothing-allowed", lambda: finetune.best_span(torch.zeros(1, 4), torch.zeros(1, 4),
                                                            torch.zeros(1, 4, dtype=bool)), ValueError, "allowed")
row("bag_of_words_accuracy-empty-train", lambda: finetune.bag_of_words_accuracy([], [("a b", 0)]), ValueError,
    "train", "empty")
row("bag_of_words_accuracy-empty-test", lambda: finetune.bag_of_words_accuracy([("a b", 0), ("c d", 1)], []),
    ValueError, "test", "empty")
row("words_beside_mask-no-mask", lambda: finetune.words_beside_mask("no gap here"), ValueError, "text", "[MASK]",
    "got 0")
row("words_beside_mask-not-str", lambda: finetune.words_beside_mask(["[MASK]"]), ValueError, "text", "list")
bad_values("words_beside_mask_accuracy", lambda window: finetune.words_beside_mask_accuracy(
    [("in [MASK] a", 0), ("[MASK] said", 1)], [("in [MASK]", 0)], window), "window", SIZES)
row("words_beside_mask_accuracy-one-class", lambda: finetune.words_beside_mask_accuracy(
    [("in [MASK] a", 0), ("[MASK] said", 0)], [("in [MASK]", 0)]), ValueError, "train")
row("bag_of_words_accuracy-one-class", lambda: finetune.bag_of_words_accuracy([("a b", 0), ("c d", 0)], [("a", 0)]),
    ValueError, "train")
row("type_baseline_accuracy-not-examples", lambda: finetune.type_baseline_accuracy([("a", "b")]), ValueError,
    "examples", "tuple")

# training loop, schedules, checkpoints, files
bad_values("train", lambda steps: run_train(steps=steps), "steps", STRINGS + (INF,))
bad_values("train", lambda progress: run_train(progress=progress), "progress", ("yes", 2))
row("train-model-not-module", lambda: train.train("gpt", [(torch.zeros(1),)], optimizer=None, steps=1, progress=False),
    ValueError, "model", "str")
row("train-batches-not-iterable", lambda: run_train(batches=5), ValueError, "batches", "5")
row("train-loss-long", lambda: run_train(loss_fn=lambda m, b: torch.tensor(1)), ValueError, "loss_fn", "int64")
row("train-loss-not-tensor", lambda: run_train(loss_fn=lambda m, b: 1.0), ValueError, "loss_fn", "float")
bad_values("cosine_schedule", lambda max_lr: train.cosine_schedule(max_lr, 10), "max_lr", STRINGS)
bad_values("cosine_schedule-step", lambda step: train.cosine_schedule(0.1, 10)(step), "step", (-1, NAN))
bad_values("autocast_dtype", lambda mixed_precision: train.autocast_dtype(torch.device("cpu"), mixed_precision),
           "mixed_precision", ("fp8", "FP16", ""))
row("autocast_dtype-device-str", lambda: train.autocast_dtype("cpu", "bf16"), None)
row("count_parameters-not-module", lambda: train.count_parameters([torch.zeros(3)]), ValueError, "model", "list")
row("default_loss-batch-not-pair", lambda: train.default_loss(tiny_gpt(), torch.ones(1, 3, dtype=torch.long)),
    ValueError, "batch", "tuple")

from lmcourse import checkpoint, files, stats  # noqa: E402

row("plain_metadata-set", lambda: checkpoint.plain_metadata({"a": {1, 2}}), TypeError, "a", "set")
row("plain_metadata-tensor", lambda: checkpoint.plain_metadata(torch.zeros(2)), None)
row("plain_metadata-nan", lambda: checkpoint.plain_metadata(NAN), None)
row("read_checkpoint-missing", lambda: checkpoint.read_checkpoint("/nonexistent/model.pt"), FileNotFoundError,
    "/nonexistent/model.pt")


def _text_file(text="not a checkpoint"):
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".pt", delete=False)
    handle.write(text)
    handle.close()
    return handle.name


row("read_checkpoint-not-a-checkpoint", lambda: checkpoint.read_checkpoint(_text_file()), ValueError, "checkpoint",
    ".pt")


def _load_into_other_model():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        checkpoint.save_checkpoint(f"{folder}/m.pt", torch.nn.Linear(2, 2))
        return checkpoint.load_checkpoint(f"{folder}/m.pt", torch.nn.Linear(3, 2))


row("load_checkpoint-other-model", _load_into_other_model, ValueError, "model", "fit")
row("load_checkpoint-model-not-module", lambda: checkpoint.load_checkpoint("/nonexistent/m.pt", "gpt"), ValueError,
    "model", "str")
row("save_checkpoint-model-not-module", lambda: _save_model_of("gpt"), ValueError, "model", "str")
row("save_checkpoint-makes-its-folder", lambda: _save_model_of(torch.nn.Linear(2, 2), "new/folder/m.pt"), None)


def _save_model_of(model, name="m.pt"):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return checkpoint.save_checkpoint(f"{folder}/{name}", model)


row("sha256_file-missing", lambda: files.sha256_file("/nonexistent/file"), FileNotFoundError, "/nonexistent/file")
row("sha256_file-directory", lambda: files.sha256_file("/tmp"), (FileNotFoundError, IsADirectoryError, ValueError),
    "/tmp")
row("atomic_write_text-not-str", lambda: files.atomic_write_text("/tmp/lmcourse-bad-input.txt", 123), TypeError,
    "text", "int")
row("atomic_write_bytes-str", lambda: files.atomic_write_bytes("/tmp/lmcourse-bad-input.bin", "abc"), TypeError,
    "payload", "str")
row("finish_interrupted_writes-no-journal", lambda: files.finish_interrupted_writes("/nonexistent/journal"), None)

# statistics
for _fn in (stats.wilson, stats.exact_binomial):
    _n = _fn.__name__
    for _s, _m in ((-1, 10), (11, 10), (2.5, 10), (True, 10), (NAN, 10)):
        row(f"{_n}-successes={_s!r}-n={_m}", functools.partial(_fn, _s, _m), ValueError, "successes", _shown(_s))
    for _m in (0, -1, 2.5):
        row(f"{_n}-n={_m!r}", functools.partial(_fn, 0, _m), ValueError, "n", _shown(_m))
    bad_values(_n, lambda confidence, _f=_fn: _f(3, 10, confidence), "confidence", (0.0, 1.0, 95, NAN, "0.95"))
for _fn in (stats.t_interval, stats.bootstrap):
    _n = _fn.__name__
    row(f"{_n}-one-value", functools.partial(_fn, [1.0]), ValueError, "values", "(1,)")
    row(f"{_n}-empty", functools.partial(_fn, []), ValueError, "values", "(0,)")
    row(f"{_n}-nan", functools.partial(_fn, [1.0, NAN, 2.0]), ValueError, "values", "nan")
    row(f"{_n}-2d", functools.partial(_fn, [[1.0, 2.0], [3.0, 4.0]]), ValueError, "values", "(2, 2)")
    row(f"{_n}-strings", functools.partial(_fn, ["a", "b"]), ValueError, "values")
    bad_values(_n, lambda confidence, _f=_fn: _f([1.0, 2.0, 3.0], confidence), "confidence", (0.0, 1.0, 95, NAN))
for _fn in (stats.paired_t_interval, stats.paired_bootstrap):
    _n = _fn.__name__
    row(f"{_n}-lengths", functools.partial(_fn, [1.0, 2.0, 3.0], [1.0, 2.0]), ValueError, "3", "2")
    row(f"{_n}-nan", functools.partial(_fn, [1.0, 2.0, NAN], [1.0, 2.0, 3.0]), ValueError, "nan")
    bad_values(_n, lambda confidence, _f=_fn: _f([1.0, 2.0, 3.0], [1.0, 2.5, 3.5], confidence), "confidence",
               (0.0, 1.5))
for _fn in (stats.bootstrap, stats.paired_bootstrap):
    _n = _fn.__name__
    _args = ([1.0, 2.0, 3.0],) if _fn is stats.bootstrap else ([1.0, 2.0, 3.0], [1.0, 2.5, 3.5])
    bad_values(_n, lambda n_boot, _f=_fn, _a=_args: _f(*_a, n_boot=n_boot), "n_boot", (0, 10, 2.5, True))
    bad_values(_n, lambda seed, _f=_fn, _a=_args: _f(*_a, seed=seed), "seed", (-1, 2.5))
bad_values("block_bootstrap", lambda block: stats.block_bootstrap([1.0, 2.0, 3.0, 4.0], block), "block",
           (0, 3, 2.5, True))
bad_values("block_bootstrap", lambda confidence: stats.block_bootstrap([1.0, 2.0, 3.0, 4.0], 1, confidence),
           "confidence", (0.0, 1.0))
row("t_interval-constant-values", lambda: stats.t_interval([2.0, 2.0, 2.0]), None)

# NaN and inf inputs to every float-taking module: refused, or NaN out (never finite numbers from NaN in)
_nan_seq = torch.full((2, 5, 3), NAN)
for _cls in (rnn.RNNCell, rnn.LSTMCell, rnn.GRUCell):
    row(f"{_cls.__name__}-nan-input", lambda _c=_cls: _nan_visible(lambda: _c(3, 4)(torch.full((2, 3), NAN))),
        ValueError, "nan")
for _cls in (rnn.RNN, rnn.LSTM, rnn.GRU):
    row(f"{_cls.__name__}-nan-input", lambda _c=_cls: _nan_visible(lambda: _c(3, 4)(_nan_seq)), ValueError, "nan")
    row(f"{_cls.__name__}-inf-input", lambda _c=_cls: _nan_visible(lambda: _c(3, 4)(torch.full((2, 5, 3), INF))),
        ValueError)
row("FeedForward-nan-input", lambda: _nan_visible(lambda: transformer.FeedForward(8, 16)(_nan_x)), ValueError, "nan")
row("sdpa-nan-query", lambda: _nan_visible(lambda: attention.scaled_dot_product_attention(torch.full_like(_q, NAN), _q,
                                                                                          _q)), ValueError, "nan")
row("sdpa-nan-float-mask", lambda: _nan_visible(lambda: attention.scaled_dot_product_attention(
    _q, _q, _q, mask=torch.full((3, 3), NAN))), ValueError, "nan")
row("LearnedPositionalEncoding-nan-input", lambda: _nan_visible(lambda: transformer.LearnedPositionalEncoding(8, 4)(
    torch.full((1, 2, 8), NAN))), ValueError, "nan")
row("MLPDenoiser-nan-x", lambda: _nan_visible(lambda: MLPDenoiser()(torch.full((4, 2), NAN),
                                                                    torch.zeros(4, dtype=torch.long))),
    ValueError, "nan")
row("UNet8-nan-x", lambda: _nan_visible(lambda: UNet8(8)(torch.full((2, 1, 8, 8), NAN),
                                                         torch.zeros(2, dtype=torch.long))), ValueError, "nan")
row("LuongAttention-nan-query", lambda: _nan_visible(lambda: seq2seq.LuongAttention(8, 8)(
    torch.full((2, 8), NAN), torch.zeros(2, 3, 8), torch.ones(2, 3, dtype=bool))), ValueError, "nan")
row("BahdanauAttention-nan-keys", lambda: _nan_visible(lambda: seq2seq.BahdanauAttention(8, 8, 4)(
    torch.zeros(2, 8), torch.full((2, 3, 8), NAN), torch.ones(2, 3, dtype=bool))), ValueError, "nan")
row("q_sample-nan-noise", lambda: _nan_visible(lambda: SCHEDULE.q_sample(_x0, torch.zeros(4, dtype=torch.long),
                                                                         torch.full((4, 2), NAN))), ValueError, "nan")
row("mmd_rbf-nan", lambda: _nan_visible(lambda: diffusion.mmd_rbf(torch.full((3, 2), NAN), torch.zeros(3, 2), 1.0)),
    ValueError, "nan")
row("near_data_share-nan-points", lambda: _nan_visible(lambda: toy2d.near_data_share(torch.full((4, 2), NAN), _x0)),
    ValueError, "nan")
row("top_k_filter-nan-scores", lambda: _nan_visible(lambda: generate.top_k_filter(torch.full((1, 5), NAN), 2)),
    ValueError, "nan")
row("top_p_filter-nan-scores", lambda: _nan_visible(lambda: generate.top_p_filter(torch.full((1, 5), NAN), 0.5)),
    ValueError, "nan")
row("cosine_similarity-nan-visible", lambda: _nan_visible(lambda: embeddings.cosine_similarity(np.full(3, NAN),
                                                                                               np.ones(3))),
    ValueError, "nan")


def _state_cache_reused_with_another_batch():
    cache = charlm.StateCache()
    tiny_char_lstm()(torch.tensor([[1, 2]]), kv_cache=cache)
    return tiny_char_lstm()(torch.tensor([[1], [2]]), kv_cache=cache)


row("CharLSTM-state-cache-other-batch", _state_cache_reused_with_another_batch, ValueError, "cache", "batch")


class _Returns(torch.nn.Module):
    """A model whose forward returns `make(idx)`: logits of the wrong shape, or no logits at all."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def forward(self, idx):
        return self.make(idx)


row("generate-logits-without-vocab", lambda: generate.generate(_Returns(lambda idx: torch.zeros(*idx.shape)), prompt(),
                                                               2), ValueError, "logits", "(1, 3)")
row("generate-model-returns-none", lambda: generate.generate(_Returns(lambda idx: None), prompt(), 2), ValueError,
    "model", "None")
row("filtered_distribution-nan-logits", lambda: _nan_visible(lambda: viz_sampling.filtered_distribution(
    torch.full((5,), NAN))), ValueError, "nan")
row("head_summary-1d", lambda: viz.head_summary(torch.ones(3)), ValueError, "weights", "(3,)")

# the runner's parsers (not the CLI)
from lmcourse import course  # noqa: E402

row("parse_key_result-garbage", lambda: course.parse_key_result("not a key result"), ValueError, "not a key result")
row("key_result-unit-empty", lambda: _course_key_result("gpt_nats", 1.0, ""), ValueError, "unit")
row("key_result-value-inf", lambda: _course_key_result("gpt_nats", INF, "nats/char"), ValueError, "value", "inf")
row("key_result-value-str", lambda: _course_key_result("gpt_nats", "1.2", "nats/char"), ValueError, "value", "1.2")
row("notebook_paths-unknown", lambda: course.notebook_paths(["99_nothing"]), (ValueError, FileNotFoundError),
    "99_nothing")


# ----------------------------------------------------------------------------- the table as a test and as a count


def _names(message: str, word: str) -> bool:
    """Whether `message` holds `word`, ignoring case; a name of one or two letters (t, x, y, lr) as a whole word,
    or it would be found inside any message."""
    if re.fullmatch(r"[A-Za-z_]{1,2}", word):
        return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", message, re.IGNORECASE) is not None
    return word.lower() in message.lower()


def outcome(r: Row) -> tuple[str, str]:
    """('clear' | 'obscure' | 'silent' | 'accepted', what happened) for one row."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            r.call()
    except Exception as exc:  # noqa: BLE001 - classifying every outcome is the point
        text = f"{type(exc).__name__}: {exc}"
        if r.expected is None:
            return "obscure", text
        missing = [w for w in r.words if not _names(str(exc), w)]
        if isinstance(exc, r.expected) and not missing:
            return "clear", text
        return "obscure", text + (f"  [missing words: {missing}]" if missing else "")
    if r.expected is None:
        return "accepted", "ran, as it should"
    return "silent", "no error"


@pytest.mark.parametrize("r", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_is_named(r: Row):
    kind, text = outcome(r)
    assert kind in ("clear", "accepted"), f"{r.id}: {kind}: {text}"


def test_split_words_keeps_a_decomposed_accent_in_its_word():
    words = tokenizers.split_words("e\u0301cole")
    assert [unicodedata.normalize("NFC", w) for w in words] == ["\u00e9cole"]


def test_row_ids_are_unique():
    ids = Counter(r.id for r in ROWS)
    assert not [i for i, n in ids.items() if n > 1]


def module_of(row_id: str) -> str:
    """The lmcourse module defining what a row id starts with: 'NGramLM.prob-...' -> 'ngram',
    'q_sample-...' (a NoiseSchedule method) -> 'diffusion', 'sdpa-...' -> 'attention'."""
    head = re.split(r"[-=]", row_id)[0]
    names = {head.split(".")[0], head.split(".")[-1]}
    defined = [(name.removeprefix("lmcourse."), obj) for name, module in sorted(sys.modules.items())
               if name.startswith("lmcourse.") and module is not None
               for obj in vars(module).values() if getattr(obj, "__module__", None) == name]
    for module, obj in defined:  # a function or class of that name first
        if getattr(obj, "__name__", None) in names:
            return module
    for module, obj in defined:  # then a method
        if isinstance(obj, type) and names & set(vars(obj)):
            return module
    return {"sdpa": "attention", "notebook": "train"}.get(head, head)


def main() -> None:
    counts, failing = Counter(), {}
    for r in ROWS:
        kind, text = outcome(r)
        counts[kind] += 1
        if kind in ("obscure", "silent"):
            failing.setdefault(module_of(r.id), []).append(f"{kind:8s} {r.id}: {text[:200]}")
    for module in sorted(failing):
        print(f"\n{module} ({len(failing[module])} failing)")
        print("\n".join(failing[module]))
    bad = len(ROWS) - counts["accepted"]
    print(f"\nbad inputs tried: {bad}; clear errors: {counts['clear']} ({counts['clear'] / bad:.1%}); "
          f"obscure errors: {counts['obscure']}; silently accepted: {counts['silent']}; accepted on purpose "
          f"(int32 ids converted, NaN in NaN out): {counts['accepted']}")


if __name__ == "__main__":
    main()
