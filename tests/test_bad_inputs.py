"""Every mistake named: a table of bad inputs to the public API and the error each must raise.

Each row is (id, call, expected exception, words its message must contain). A row passes when the call
raises the expected exception and its message names the argument and the value (and, where a row says so,
the fix). Rows whose `expected` is None are inputs the package accepts on purpose (int32 token ids are
converted; NaN in gives NaN out): they must run without an error.

Re-measure the audit's count (clear / obscure / silently accepted) with

    python -m tests.test_bad_inputs
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import urllib.error
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from unittest import mock

import numpy as np
import pytest
import torch

from lmcourse import attention, charlm, core, data, diffusion, embeddings, generate, gpt, mlm, ngram, rnn, seq2seq
from lmcourse import sequences, skipgram, tasks, text_diffusion, tokenizers, toy2d, train, transformer
from lmcourse.denoisers import MLPDenoiser, UNet8

NAN, INF = math.nan, math.inf


@dataclass
class Row:
    id: str
    call: Callable[[], object]
    expected: type[BaseException] | None  # None: the input is accepted on purpose and must run
    words: tuple[str, ...] = ()


ROWS: list[Row] = []


def row(id: str, call: Callable[[], object], expected: type[BaseException] | None = ValueError, *words: str) -> None:
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
    return transformer.Encoder(transformer.TransformerConfig(V, max_len=8, n_layers=1, n_heads=2, d_model=8)).eval()


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
bad_values("charlm.sample", lambda temperature: charlm.sample(tiny_char_lstm(), [1, 2], 3, temperature), "temperature",
           (-1.0, NAN, INF))
bad_values("charlm.sample", lambda n: charlm.sample(tiny_char_lstm(), [1, 2], n), "n", COUNTS)
row("charlm.sample-empty-prompt", lambda: charlm.sample(tiny_char_lstm(), [], 3), ValueError, "prompt_ids")
row("charlm.sample-prompt-out-of-vocab", lambda: charlm.sample(tiny_char_lstm(), [1, 99], 3), ValueError, "99")
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
bad_values("MultiHeadAttention", lambda d_model: attention.MultiHeadAttention(d_model, 2), "d_model", SIZES)
bad_values("MultiHeadAttention", lambda n_heads: attention.MultiHeadAttention(8, n_heads), "n_heads", SIZES)
row("MultiHeadAttention-indivisible", lambda: attention.MultiHeadAttention(8, 3), ValueError, "d_model=8", "n_heads=3")
bad_values("MultiHeadAttention", lambda dropout: attention.MultiHeadAttention(8, 2, dropout), "dropout", (1.0, NAN))
_mha = attention.MultiHeadAttention(8, 2)
_x = torch.zeros(2, 3, 8)
row("MultiHeadAttention-d_model", lambda: _mha(torch.zeros(2, 3, 6), _x, _x), ValueError, "query", "d_model=8")
row("MultiHeadAttention-2d", lambda: _mha(torch.zeros(3, 8), _x, _x), ValueError, "query", "(3, 8)")
row("MultiHeadAttention-batch", lambda: _mha(_x, torch.zeros(3, 3, 8), torch.zeros(3, 3, 8)), ValueError, "batch")
row("MultiHeadAttention-mask-int", lambda: _mha(_x, _x, _x, mask=torch.ones(3, 3, dtype=torch.int32)), ValueError,
    "mask", "int32")
row("MultiHeadAttention-mask-shape", lambda: _mha(_x, _x, _x, mask=torch.ones(5, 3, dtype=bool)), ValueError, "mask",
    "(5, 3)")
row("MultiHeadAttention-long-input", lambda: _mha(_x.long(), _x.long(), _x.long()), ValueError, "query", "int64")

bad_values("sinusoidal_positions", lambda n_positions: transformer.sinusoidal_positions(n_positions, 4), "n_positions",
           SIZES)
bad_values("sinusoidal_positions", lambda d_model: transformer.sinusoidal_positions(4, d_model), "d_model",
           (3, 0, True))
bad_values("SinusoidalPositionalEncoding", lambda max_len: transformer.SinusoidalPositionalEncoding(8, max_len),
           "max_len", SIZES)
bad_values("LearnedPositionalEncoding", lambda max_len: transformer.LearnedPositionalEncoding(8, max_len), "max_len",
           SIZES)
row("SinusoidalPositionalEncoding-too-long", lambda: transformer.SinusoidalPositionalEncoding(8, 4)(torch.zeros(1, 5, 8)),
    ValueError, "max_len=4", "(1, 5, 8)")
row("LearnedPositionalEncoding-d_model", lambda: transformer.LearnedPositionalEncoding(8, 4)(torch.zeros(1, 2, 6)),
    ValueError, "d_model", "(1, 2, 6)")
bad_values("FeedForward", lambda activation: transformer.FeedForward(8, 16, activation=activation), "activation",
           ("tanh",))
bad_values("FeedForward", lambda d_ff: transformer.FeedForward(8, d_ff), "d_ff", SIZES)
for _cls in (transformer.EncoderLayer, transformer.DecoderLayer):
    bad_values(_cls.__name__, lambda d_ff, _c=_cls: _c(8, 2, d_ff), "d_ff", SIZES)
    bad_values(_cls.__name__, lambda dropout, _c=_cls: _c(8, 2, 16, dropout), "dropout", (1.0, NAN, -0.5))
    bad_values(_cls.__name__, lambda n_heads, _c=_cls: _c(8, n_heads, 16), "n_heads", (3, 0, True))
    bad_values(_cls.__name__, lambda d_model, _c=_cls: _c(d_model, 1, 16), "d_model", SIZES)
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
for _arg in ("vocab_size", "max_len", "n_layers", "n_heads", "d_model"):
    bad_values("TransformerConfig", lambda _a=_arg, **kw: transformer.TransformerConfig(**{"vocab_size": 10, **kw}),
               _arg, SIZES)
bad_values("TransformerConfig", lambda d_ff: transformer.TransformerConfig(10, d_ff=d_ff), "d_ff", SIZES)
bad_values("TransformerConfig", lambda dropout: transformer.TransformerConfig(10, dropout=dropout), "dropout",
           (1.0, NAN, -0.1))
bad_values("TransformerConfig", lambda positional: transformer.TransformerConfig(10, positional=positional),
           "positional", ("rotary",))
bad_values("TransformerConfig", lambda activation: transformer.TransformerConfig(10, activation=activation),
           "activation", ("swish",))
row("TransformerConfig-indivisible", lambda: transformer.TransformerConfig(10, n_heads=3, d_model=8), ValueError,
    "d_model=8", "n_heads=3")
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
row("mask_tokens-t-shape", lambda: text_diffusion.mask_tokens(_ids, torch.zeros(3), V), ValueError, "t", "(3,)")
row("mask_tokens-t-range", lambda: text_diffusion.mask_tokens(_ids, torch.tensor([0.5, 1.5]), V), ValueError, "t",
    "1.5")
row("mask_tokens-t-nan", lambda: text_diffusion.mask_tokens(_ids, torch.tensor([0.5, NAN]), V), ValueError, "t",
    "nan")
row("mask_tokens-x0-1d", lambda: text_diffusion.mask_tokens(torch.tensor([1, 2]), torch.zeros(1), V), ValueError,
    "x0", "(2,)")
row("mask_tokens-x0-float", lambda: text_diffusion.mask_tokens(_ids.float(), torch.zeros(2), V), ValueError, "x0",
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
    return mlm.MaskedLM(transformer.TransformerConfig(_specials.vocab_size, max_len=8, n_layers=1, n_heads=2, d_model=8))


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
           (1, 99, True))
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
bad_values("autocast_dtype", lambda mixed_precision: train.autocast_dtype(torch.device("cpu"), mixed_precision),
           "mixed_precision", ("half",))

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
    torch.nn.MultiheadAttention(8, 2, kdim=4, vdim=4, batch_first=True)), ValueError, "kdim")
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


# ----------------------------------------------------------------------------- the table as a test and as a count


def outcome(r: Row) -> tuple[str, str]:
    """('clear' | 'obscure' | 'silent' | 'accepted', what happened) for one row."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            r.call()
    except Exception as exc:  # noqa: BLE001 - classifying every outcome is the point
        text = f"{type(exc).__name__}: {exc}"
        if r.expected is None:
            return "obscure", text
        missing = [w for w in r.words if w.lower() not in str(exc).lower()]
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


def test_row_ids_are_unique():
    ids = Counter(r.id for r in ROWS)
    assert not [i for i, n in ids.items() if n > 1]


def main() -> None:
    counts, details = Counter(), {}
    for r in ROWS:
        kind, text = outcome(r)
        counts[kind] += 1
        details.setdefault(kind, []).append((r.id, text))
    for kind in ("obscure", "silent", "accepted"):
        for id, text in details.get(kind, []):
            print(f"{kind:8s} {id}: {text[:200]}")
    bad = len(ROWS) - counts["accepted"]
    print(f"\nbad inputs tried: {bad}; clear errors: {counts['clear']}; obscure errors: {counts['obscure']}; "
          f"silently accepted: {counts['silent']}; accepted on purpose (int32 ids converted, NaN in NaN out): "
          f"{counts['accepted']}")


if __name__ == "__main__":
    main()
