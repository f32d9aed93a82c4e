"""The course's data: corpora located in installed packages, checked by sha256, split once.

Nothing here touches the network unless you call `download_corpus` yourself.

| name        | what                                                        | from          |
|-------------|-------------------------------------------------------------|---------------|
| "lee"       | Lee news corpus: 300 Australian news articles, ~60k words   | gensim        |
| "wiki"      | 107 English Wikipedia articles, markup removed, ~450k words | gensim        |
| "polarity"  | 200 movie-review sentences labelled negative / positive     | gensim        |
| "tinyshakespeare" | 1.1M characters of Shakespeare (optional download)    | GitHub        |

Beside the text: word-similarity and analogy sets (`shipped_path`), and scikit-learn's 8x8
handwritten digits (`load_digits`).

Every corpus has one fixed split: the last ~10% of its lines are the validation text, so
every chapter reports numbers on the same held-out text.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import http.client
import importlib.util
import json
import re
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmcourse.checks import check_number, describe
from lmcourse.files import atomic_path, atomic_write_bytes, atomic_write_text, cache_dir, sha256_file
from lmcourse.markov import MarkovSource
from lmcourse.tokenizers import CharTokenizer, WordTokenizer

__all__ = ["load_corpus", "load_labelled_sentences", "load_digits", "shipped_path", "split_text", "download_corpus",
           "MarkovSource", "corpus_tokenizer", "CORPORA", "SHIPPED", "VALID_FRACTION"]

VALID_FRACTION = 0.1
SPLITS = ("all", "train", "valid")


@dataclass(frozen=True)
class ShippedFile:
    """A data file that an installed package carries, with the sha256 we checked it against."""

    package: str
    relpath: str
    sha256: str
    about: str


_GENSIM_DATA = "test/test_data/"
SHIPPED: dict[str, ShippedFile] = {
    "lee": ShippedFile("gensim", _GENSIM_DATA + "lee_background.cor",
                       "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb",
                       "Lee news corpus, one article per line"),
    "wiki": ShippedFile("gensim", _GENSIM_DATA + "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
                        "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d",
                        "English Wikipedia dump extract (XML, bz2)"),
    "polarity": ShippedFile("gensim", _GENSIM_DATA + "pang_lee_polarity.cor",
                            "662c1b7c3bd0612eaaaf3f0c694cbd3897e30c0d87d2940b46c9fd0d15ed70c1",
                            "Pang & Lee movie-review sentences, __label__neg / __label__pos"),
    "wordsim353": ShippedFile("gensim", _GENSIM_DATA + "wordsim353.tsv",
                              "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d",
                              "WordSim-353 word pairs with human similarity scores"),
    "simlex999": ShippedFile("gensim", _GENSIM_DATA + "simlex999.txt",
                             "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d",
                             "SimLex-999 word pairs with human similarity scores"),
    "google_analogies": ShippedFile("gensim", _GENSIM_DATA + "questions-words.txt",
                                    "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36",
                                    "Google analogy questions (a : b :: c : d)"),
    "digits": ShippedFile("sklearn", "datasets/data/digits.csv.gz",
                          "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
                          "1,797 handwritten digits, 8x8 pixels of 0..16, and their labels"),
}


@dataclass(frozen=True)
class Download:
    """An optional corpus fetched on request, pinned to one exact file."""

    url: str
    sha256: str
    about: str


DOWNLOADS: dict[str, Download] = {
    "tinyshakespeare": Download(
        "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/"
        "data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        "Tiny Shakespeare (char-rnn), 1,115,394 characters"),
}

CORPORA = ("lee", "wiki", "polarity", *DOWNLOADS)


PIP_NAMES = {"sklearn": "scikit-learn"}  # import name -> the name to pip install


def _reinstall(package: str) -> str:
    return f"pip install --force-reinstall --no-deps {PIP_NAMES.get(package, package)}"


def _package_root(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {package!r} that ships this data is not installed; "
                                f"run `pip install {PIP_NAMES.get(package, package)}` (or `make lab`)")
    return Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=None)
def _verified(path: Path, expected: str, mtime_ns: int, fix: str) -> Path:
    actual = sha256_file(path)
    if actual != expected:
        raise ValueError(f"{path} is corrupt or a different version: sha256 {actual[:12]}... "
                         f"expected {expected[:12]}...; {fix}")
    return path


def shipped_path(name: str) -> Path:
    """The verified path of a data file shipped by an installed package (see `SHIPPED`)."""
    if name not in SHIPPED:
        raise ValueError(f"name={name!r} is not a shipped data file; choose one of {sorted(SHIPPED)}")
    item = SHIPPED[name]
    path = _package_root(item.package) / item.relpath
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {item.package}; "
                                f"reinstall it: {_reinstall(item.package)}")
    return _verified(path, item.sha256, path.stat().st_mtime_ns, f"reinstall the package that ships it: "
                     f"{_reinstall(item.package)}")


def split_text(text: str, valid_fraction: float = VALID_FRACTION) -> tuple[str, str]:
    """Split `text` into (train, valid) at the line break nearest the (1 - valid_fraction) point.

    Cutting on a line keeps articles and sentences whole; the validation text is always the end.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {describe(text)}")
    check_number("valid_fraction", valid_fraction, 0, 1, low_open=True, high_open=True)
    if not text.strip():
        raise ValueError("text is empty; there is nothing to split")
    target = int(len(text) * (1 - valid_fraction))
    before, after = text.rfind("\n", 0, target), text.find("\n", target)
    candidates = [c for c in (before, after) if 0 < c < len(text) - 1]
    if not candidates:
        raise ValueError("text has no line break to split on; give at least two lines")
    cut = min(candidates, key=lambda c: abs(c - target))
    return text[:cut + 1], text[cut + 1:]


_WIKI_CLEANING_VERSION = 1


def _clean_wiki_article(title: str, markup: str) -> str:
    from gensim.corpora.wikicorpus import filter_wiki  # gensim's own markup stripper

    lines = [title]
    for line in filter_wiki(markup).splitlines():
        line = line.replace("'''", "").replace("''", "")
        heading = re.fullmatch(r"\s*=+\s*(.*?)\s*=+\s*", line)
        if heading:
            line = heading.group(1)
        line = re.sub(r"^[*#:;|!]+", "", line)  # list and table markers
        line = re.sub(r"\s+", " ", line).strip()
        if len(line) > 1:
            lines.append(line)
    return "\n".join(lines)


def _wiki_text() -> str:
    """The Wikipedia extract as plain text, one article after another; cached after the first parse (~3 s)."""
    source = shipped_path("wiki")

    def parse() -> str:
        from gensim.corpora.wikicorpus import extract_pages

        with bz2.open(source) as f:
            articles = [_clean_wiki_article(title, text) for title, text, _ in extract_pages(f, filter_namespaces=("0",))
                        if not text.lstrip().lower().startswith("#redirect")]
        return "\n\n".join(articles) + "\n"

    return cached_text(f"wiki-{SHIPPED['wiki'].sha256[:12]}-v{_WIKI_CLEANING_VERSION}.txt", parse)


_cache_warnings: set[str] = set()


def _warn_once(kind: str, message: str) -> None:
    if kind not in _cache_warnings:
        _cache_warnings.add(kind)
        warnings.warn(message, stacklevel=3)


def cached_text(filename: str, build: Callable[[], str]) -> str:
    """`build()`'s text, kept in the course cache as `filename` with its size and sha256 beside it (`.json`).

    A cached copy is used only if it still has the recorded size and sha256; otherwise it is rebuilt
    (an edited or truncated file is never returned). If the cache cannot be written (read-only, full),
    the text is built each time instead, with one warning.
    """
    folder = cache_dir()
    path, record_path = folder / filename, folder / (filename + ".json")
    if path.is_file():
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            payload = path.read_bytes() if path.stat().st_size == record["size"] else b""
            if payload and hashlib.sha256(payload).hexdigest() == record["sha256"]:
                return payload.decode("utf-8")
            problem = "does not match the size and sha256 recorded when it was written (edited or truncated?)"
        except (OSError, ValueError, KeyError, TypeError) as exc:  # no record, or a damaged one
            problem = f"cannot be checked: its record {record_path.name} is missing or damaged ({exc})"
        _warn_once("changed", f"{path} {problem}; rebuilding it")
    text = build()
    payload = text.encode("utf-8")
    try:
        atomic_write_bytes(path, payload)
        atomic_write_text(record_path, json.dumps({"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}))
    except OSError as exc:
        _warn_once("unwritable", f"the course cache {folder} cannot be written ({exc}); working without it "
                                 f"(set LMCOURSE_CACHE to a writable folder to keep derived files)")
    return text


def _polarity_lines() -> list[tuple[str, int]]:
    pairs = []
    # The file is Windows-1252 (its dashes and accents), not UTF-8.
    for line in shipped_path("polarity").read_bytes().decode("cp1252").splitlines():
        label, _, sentence = line.partition(" ")
        if label not in ("__label__neg", "__label__pos") or not sentence.strip():
            raise ValueError(f"unexpected line in the polarity corpus: {line[:60]!r}; reinstall gensim")
        pairs.append((sentence.strip(), int(label == "__label__pos")))
    return pairs


def _fixed_order(items: list) -> list:
    """A fixed shuffle (independent of any global seed) so both labels appear in every split."""
    import random

    order = list(range(len(items)))
    random.Random(1234).shuffle(order)
    return [items[i] for i in order]


def load_labelled_sentences(split: str = "all") -> list[tuple[str, int]]:
    """The polarity sentences as (sentence, label) pairs, label 1 = positive, 0 = negative.

    A fixed shuffle, then the last 20% are the validation split (40 sentences).
    """
    _check_split(split)
    pairs = _fixed_order(_polarity_lines())
    cut = int(len(pairs) * 0.8)
    return {"all": pairs, "train": pairs[:cut], "valid": pairs[cut:]}[split]


def load_digits(split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (images (N, 8, 8) float32 in [0, 1], labels (N,) int64).

    A fixed shuffle; the last 20% (360 digits) are the validation split.
    """
    _check_split(split)
    with gzip.open(shipped_path("digits"), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)  # (1797, 65): 64 pixels, then the label
    order = np.random.default_rng(1234).permutation(len(table))
    table = table[order]
    cut = len(table) - 360
    table = {"all": table, "train": table[:cut], "valid": table[cut:]}[split]
    return (table[:, :64] / 16.0).reshape(-1, 8, 8), table[:, 64].astype(np.int64)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not known; use one of {SPLITS}")


@functools.lru_cache(maxsize=None)
def _corpus_text(name: str) -> str:
    if name == "lee":
        return shipped_path("lee").read_text(encoding="utf-8")
    if name == "wiki":
        return _wiki_text()
    if name == "polarity":
        return "\n".join(sentence for sentence, _ in _fixed_order(_polarity_lines())) + "\n"
    path = _download_target(name)
    if not path.is_file():
        raise FileNotFoundError(f"corpus {name!r} is an optional download and is not in {path.parent}; "
                                f"run lmcourse.data.download_corpus({name!r}) once while online")
    fix = f"delete {path} and run lmcourse.data.download_corpus({name!r}) again"
    return _verified(path, DOWNLOADS[name].sha256, path.stat().st_mtime_ns, fix).read_text(encoding="utf-8")


def load_corpus(name: str = "wiki", split: str = "all") -> str:
    """The text of a corpus (see the table above): split "all", "train" or "valid".

    The embedded corpora need no network; "tinyshakespeare" needs `download_corpus` first.
    """
    if name not in CORPORA:
        raise ValueError(f"name={name!r} is not a corpus; choose one of {list(CORPORA)}")
    _check_split(split)
    text = _corpus_text(name)
    if split == "all":
        return text
    train, valid = split_text(text)
    return train if split == "train" else valid


def _download_target(name: str) -> Path:
    return cache_dir() / "downloads" / f"{name}.txt"


def download_corpus(name: str = "tinyshakespeare", timeout: float = 30.0) -> Path:
    """Fetch an optional corpus into the cache, check its sha256, and return its path.

    Does nothing if a verified copy is already there. Offline, it raises ConnectionError
    with what to do instead.
    """
    if name not in DOWNLOADS:
        raise ValueError(f"name={name!r} is not downloadable; choose one of {sorted(DOWNLOADS)}")
    item, target = DOWNLOADS[name], _download_target(name)
    if target.is_file() and sha256_file(target) == item.sha256:
        return target
    check_number("timeout", timeout, 0, low_open=True, fix="seconds to wait for the server")
    try:
        with urllib.request.urlopen(item.url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            payload = response.read()
    except urllib.error.HTTPError as exc:  # the server answered, so this machine is online
        raise ConnectionError(f"the server answered {exc.code} {exc.reason} for {name!r} ({item.url}); the file may "
                              "have moved or the server is down: try again later, or fetch it by hand into "
                              f"{target}") from exc
    except http.client.IncompleteRead as exc:
        raise ConnectionError(f"the download of {name!r} ended early after {len(exc.partial)} bytes; "
                              "the connection broke: try again") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ConnectionError(f"could not download {name!r} from {item.url} ({exc}); this machine seems to be "
                              f"offline. The embedded corpora 'lee', 'wiki' and 'polarity' need no network.") from exc
    if expected is not None and len(payload) != int(expected):
        raise ConnectionError(f"the download of {name!r} ended early: {len(payload)} of {expected} bytes arrived; "
                              "the connection broke: try again")
    with atomic_path(target) as tmp:
        tmp.write_bytes(payload)
        if sha256_file(tmp) != item.sha256:
            raise ValueError(f"the download of {name!r} has the wrong sha256 (the file upstream changed or the "
                             f"transfer broke); nothing was saved. Try again later.")
    return target


CHAR_MIN_COUNT, WORD_MIN_COUNT = 5, 2


def corpus_tokenizer(name: str = "wiki", level: str = "char") -> CharTokenizer | WordTokenizer:
    """The course's tokenizer for a corpus, built from its train split only.

    level "char": characters seen at least 5 times; "word": words seen at least 2 times.
    Everything rarer is `<unk>`. Every chapter uses this one, so nats/char compare.
    """
    if level not in ("char", "word"):
        raise ValueError(f"level must be 'char' or 'word', got {level!r}")
    train = load_corpus(name, "train")
    if level == "char":
        return CharTokenizer.from_text(train, min_count=CHAR_MIN_COUNT)
    return WordTokenizer.from_text(train, min_count=WORD_MIN_COUNT)
