import urllib.error

import pytest

from lmcourse import data
from lmcourse.files import sha256_file


@pytest.mark.parametrize("name", sorted(data.SHIPPED))
def test_every_shipped_file_matches_its_checksum(name):
    path = data.shipped_path(name)
    assert sha256_file(path) == data.SHIPPED[name].sha256


@pytest.mark.parametrize("name, min_words, max_words", [("lee", 55_000, 65_000), ("wiki", 400_000, 520_000),
                                                        ("polarity", 3_500, 5_000)])
def test_embedded_corpora_have_their_documented_sizes(name, min_words, max_words):
    assert min_words <= len(data.load_corpus(name).split()) <= max_words


@pytest.mark.parametrize("name", ["lee", "wiki", "polarity"])
def test_train_and_valid_splits_partition_the_corpus_at_a_line(name):
    text, train, valid = (data.load_corpus(name, s) for s in ("all", "train", "valid"))
    assert train + valid == text
    assert train.endswith("\n")
    assert 0.08 < len(valid) / len(text) < 0.12


def test_splits_are_the_same_on_every_call():
    first = data.load_corpus("lee", "valid")
    data._corpus_text.cache_clear()  # read and split the file again, not the remembered string
    again = data.load_corpus("lee", "valid")
    assert again == first and again is not first
    assert first.startswith("Opposition forces claimed")
    raw = data.shipped_path("lee").read_text(encoding="utf-8")
    assert raw.endswith(first) and raw[: len(raw) - len(first)].endswith("\n")  # the file's last lines


def test_wiki_text_has_no_markup_left():
    text = data.load_corpus("wiki")
    assert text.startswith("Anarchism\nAnarchism is a political philosophy")
    for markup in ("'''", "[[", "]]", "{{", "<ref", "==", "&nbsp;"):
        assert markup not in text, markup


def test_labelled_sentences_have_both_labels_in_each_split():
    train, valid = data.load_labelled_sentences("train"), data.load_labelled_sentences("valid")
    assert (len(train), len(valid)) == (160, 40)
    assert {label for _, label in train} == {label for _, label in valid} == {0, 1}
    assert not {s for s, _ in train} & {s for s, _ in valid}


def test_corpus_tokenizer_is_built_from_the_train_split_only():
    tok = data.corpus_tokenizer("wiki", "char")
    assert 100 < tok.vocab_size < 300
    assert tok.decode(tok.encode("The cat.")) == "The cat."


def test_unknown_corpus_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"name='shakespeare' is not a corpus; choose one of"):
        data.load_corpus("shakespeare")


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="split='test'"):
        data.load_corpus("lee", "test")


def test_unknown_shipped_name_is_rejected():
    with pytest.raises(ValueError, match="not a shipped data file"):
        data.shipped_path("imagenet")


def test_corrupted_file_is_detected(monkeypatch, tmp_path):
    fake_root = tmp_path / "gensim"
    target = fake_root / data.SHIPPED["lee"].relpath
    target.parent.mkdir(parents=True)
    target.write_text("not the Lee corpus\n")
    monkeypatch.setattr(data, "_package_root", lambda package: fake_root)
    with pytest.raises(ValueError, match="corrupt"):
        data.shipped_path("lee")


def test_missing_file_says_how_to_reinstall(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "_package_root", lambda package: tmp_path)
    with pytest.raises(FileNotFoundError, match="reinstall"):
        data.shipped_path("simlex999")


def test_missing_package_says_what_to_install():
    with pytest.raises(FileNotFoundError, match="pip install no_such_pkg_xyz"):
        data._package_root("no_such_pkg_xyz")


@pytest.mark.parametrize("text", ["", "   \n  "])
def test_split_text_rejects_empty_text(text):
    with pytest.raises(ValueError, match="empty"):
        data.split_text(text)


def test_split_text_needs_a_line_break():
    with pytest.raises(ValueError, match="line break"):
        data.split_text("one single line with no break at all")


def test_split_text_rejects_bad_fraction():
    with pytest.raises(ValueError, match="valid_fraction"):
        data.split_text("a\nb\n", valid_fraction=1.5)


def test_optional_download_is_never_needed_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("LMCOURSE_CACHE", str(tmp_path))
    data._corpus_text.cache_clear()
    with pytest.raises(FileNotFoundError, match="download_corpus"):
        data.load_corpus("tinyshakespeare")


def test_download_offline_gives_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("LMCOURSE_CACHE", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match="offline"):
        data.download_corpus("tinyshakespeare")
    assert not list(tmp_path.rglob("*.txt"))


def test_download_with_wrong_checksum_saves_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("LMCOURSE_CACHE", str(tmp_path))

    class Response:
        headers = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b"tampered"

    monkeypatch.setattr(data.urllib.request, "urlopen", lambda *a, **k: Response())
    with pytest.raises(ValueError, match="sha256"):
        data.download_corpus("tinyshakespeare")
    assert not list(tmp_path.rglob("*"))[1:]  # only the downloads folder, no file


def test_digits_match_scikit_learn_and_split_fixed():
    from sklearn.datasets import load_digits as sklearn_digits

    images, labels = data.load_digits()
    reference = sklearn_digits()
    assert images.shape == (1797, 8, 8) and 0 <= images.min() and images.max() == 1
    assert sorted(labels.tolist()) == sorted(reference.target.tolist())
    assert abs(images.sum() * 16 - reference.data.sum()) < 1e-2
    (_, train_y), (valid_x, valid_y) = data.load_digits("train"), data.load_digits("valid")
    assert (len(train_y), len(valid_y)) == (1437, 360) and set(valid_y.tolist()) == set(range(10))
    assert (valid_x == data.load_digits("valid")[0]).all()


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    """An empty course cache, no remembered corpora, and the once-only cache warnings re-armed."""
    monkeypatch.setenv("LMCOURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "_cache_warnings", set(), raising=False)
    data._corpus_text.cache_clear()
    yield tmp_path / "cache"
    data._corpus_text.cache_clear()


def counting_build(calls):
    def build():
        calls.append(1)
        return "the derived text\n" * 100
    return build


@pytest.mark.parametrize("tamper", [
    lambda p: p.write_text("X" + p.read_text()[1:]),  # same size, other bytes
    lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 3]),  # truncated
    lambda p: p.write_text(""),
    lambda p: p.with_name(p.name + ".json").unlink(),  # the record lost
    lambda p: p.with_name(p.name + ".json").write_text("{not json"),
])
def test_a_changed_cache_file_is_rebuilt_not_returned(fresh_cache, tamper):
    calls = []
    assert data.cached_text("derived.txt", counting_build(calls)) == "the derived text\n" * 100
    assert data.cached_text("derived.txt", counting_build(calls)) == "the derived text\n" * 100
    assert len(calls) == 1  # the second call read the verified cache
    tamper(fresh_cache / "derived.txt")
    with pytest.warns(UserWarning, match="rebuilding"):
        text = data.cached_text("derived.txt", counting_build(calls))
    assert text == "the derived text\n" * 100 and len(calls) == 2
    assert (fresh_cache / "derived.txt").read_text() == text  # and the cache is good again
    assert data.cached_text("derived.txt", counting_build(calls)) == text and len(calls) == 2


def test_an_unwritable_cache_works_without_it_with_one_warning(monkeypatch, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")  # a cache under a file cannot be created, even by root
    monkeypatch.setenv("LMCOURSE_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(data, "_cache_warnings", set(), raising=False)
    calls = []
    with pytest.warns(UserWarning, match="cannot be written.*working without it") as caught:
        for _ in range(3):
            assert data.cached_text("derived.txt", counting_build(calls)) == "the derived text\n" * 100
    assert len(calls) == 3 and len(caught) == 1


@pytest.mark.parametrize("tamper", ["overwrite", "truncate"])
def test_a_tampered_wiki_cache_is_rebuilt(fresh_cache, tamper):
    text = data.load_corpus("wiki")
    (cached,) = fresh_cache.glob("wiki-*.txt")
    if tamper == "overwrite":
        cached.write_text("tampered text\n" * 1000, encoding="utf-8")
    else:
        cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 3])
    data._corpus_text.cache_clear()
    with pytest.warns(UserWarning, match="rebuilding"):
        assert data.load_corpus("wiki") == text
    assert cached.read_text(encoding="utf-8") == text


def test_source_sentences_blames_the_word_window_not_n_per_class_when_no_sentence_fits():
    from lmcourse.finetune import source_sentences

    with pytest.raises(ValueError, match="max_words must be an int >= 41, got 40; at least min_words=41"):
        source_sentences("valid", min_words=41, max_words=40)
    with pytest.raises(ValueError, match=r"min_words=500 to max_words=600 leaves no 'valid' sentence") as error:
        source_sentences("valid", min_words=500, max_words=600)
    assert "n_per_class" not in str(error.value)
    with pytest.raises(ValueError, match=r"n_per_class must be an int in \[1, \d+\], got 0"):
        source_sentences("valid", n_per_class=0)
