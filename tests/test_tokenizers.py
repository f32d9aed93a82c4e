import unicodedata

import pytest

from lmcourse.tokenizers import (
    UNK,
    BPETokenizer,
    CharTokenizer,
    Vocabulary,
    WordTokenizer,
    split_sentences,
    split_words,
)


def test_split_words_keeps_punctuation_and_contractions():
    assert split_words("Don't stop, Bob!") == ["don't", "stop", ",", "bob", "!"]


def test_split_sentences_splits_after_end_marks():
    assert split_sentences("It rained. Then it stopped! Ok?\nNew line") == ["It rained.", "Then it stopped!", "Ok?", "New line"]


def test_char_tokenizer_round_trips_seen_text():
    tok = CharTokenizer.from_text("hello world")
    assert tok.decode(tok.encode("hello")) == "hello"


def test_unseen_characters_become_unk_id_zero():
    tok = CharTokenizer.from_text("abc")
    assert tok.encode("abz") == [tok.vocab.stoi["a"], tok.vocab.stoi["b"], 0]
    assert tok.decode([0]) == "\ufffd"


def test_rare_words_become_unk():
    tok = WordTokenizer.from_text("the cat the dog the", min_count=2)
    assert tok.vocab.itos == [UNK, "the"]
    assert tok.decode(tok.encode("the cat")) == f"the {UNK}"


def test_vocabulary_orders_by_frequency_then_alphabet():
    from collections import Counter

    assert Vocabulary.from_counts(Counter("bbaac")).itos == [UNK, "a", "b", "c"]


def test_empty_text_cannot_make_a_vocabulary():
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.from_text("")


def test_min_count_must_be_positive():
    with pytest.raises(ValueError, match="min_count"):
        WordTokenizer.from_text("a b", min_count=0)


def test_bpe_tokenizer_round_trips_any_text_and_reserves_id_zero_for_unk():
    tok = BPETokenizer.from_text("the cat sat on the mat\nthe cat ate the rat\n" * 20, vocab_size=280)
    assert 256 < tok.vocab_size <= 280  # the bytes, <unk>, and as many merges as the text offers up to 280
    assert tok.tokenizer.id_to_token(0) == UNK
    for text in ("the cat sat", "zebra, 1999 – ünïcode!"):
        ids = tok.encode(text)
        assert 0 not in ids and tok.decode(ids) == text
    assert len(tok.encode("the cat")) < len("the cat")  # merges: fewer tokens than characters
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.from_text("abc", vocab_size=100)


def bpe() -> BPETokenizer:
    return BPETokenizer.from_text("the cat sat on the mat\nthe cat ate the rat\n" * 20, vocab_size=280)


def test_text_containing_the_unk_string_round_trips_and_never_becomes_id_zero():
    text = "a <unk> b, <unk>!"
    chars = CharTokenizer.from_text(text)
    assert 0 not in chars.encode(text) and chars.decode(chars.encode(text)) == text
    tok = bpe()
    assert 0 not in tok.encode(text) and tok.decode(tok.encode(text)) == text
    words = WordTokenizer.from_text(text)
    assert words.encode("<unk>") == words.vocab.ids(["<", "unk", ">"]) and 0 not in words.encode("<unk>")


def test_bpe_decodes_the_reserved_unk_id_as_the_replacement_character_like_char_tokenizer():
    tok = bpe()
    left, right = tok.encode("the cat"), tok.encode(" sat")
    assert tok.decode(left + [0] + right) == tok.decode(left) + "\ufffd" + tok.decode(right)


def test_bpe_refuses_ids_outside_its_vocabulary_and_text_that_is_not_a_str():
    tok = bpe()
    for ids in ([5, tok.vocab_size], [-1], [1.5]):
        with pytest.raises(ValueError, match=r"ids \[.*vocab_size="):
            tok.decode(ids)
    with pytest.raises(ValueError, match="text must be a str"):
        tok.encode(["the cat"])
    with pytest.raises(ValueError, match="ids must be a sequence"):
        tok.decode(5)


@pytest.mark.parametrize("text", [
    "e\u0301cole \u00e9cole",                  # decomposed and precomposed e-acute
    "Akou\u0301o\u0331 na\u0308ive",           # o + macron below has no precomposed form
    "\u0130stanbul caf\u00e9",                 # "İ".lower() is i + combining dot above
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0627\u0644\u0637\u0651\u0648\u0628 \u0e40\u0e1a\u0e35\u0e22\u0e23\u0e4c"])
def test_split_words_keeps_combining_marks_inside_their_word(text):
    # without punctuation, the words are the whitespace-separated pieces of the lower-cased NFC text
    assert split_words(text) == unicodedata.normalize("NFC", text.lower()).split()


def test_composed_and_decomposed_accents_give_the_same_word():
    assert split_words("e\u0301cole") == split_words("\u00e9cole") == ["\u00e9cole"]


def test_min_count_that_keeps_nothing_is_refused_with_the_count_that_would_keep_something():
    with pytest.raises(ValueError, match=r"min_count=10 keeps no token.*'a', appears 2 times; use min_count <= 2"):
        CharTokenizer.from_text("abca", min_count=10)
    with pytest.raises(ValueError, match="use min_count <= 1"):
        WordTokenizer.from_text("a b c", min_count=3)


def test_wrong_types_are_named_instead_of_failing_inside():
    with pytest.raises(ValueError, match="text must be a str, got a list"):
        split_sentences(["It rained."])
    with pytest.raises(ValueError, match="text must be a str, got a bytes"):
        split_words(b"bytes")
    with pytest.raises(ValueError, match="counts must map each token to its count, got a list"):
        Vocabulary.from_counts(["a", "b"])
