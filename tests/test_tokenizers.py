import pytest

from lmcourse.tokenizers import UNK, BPETokenizer, CharTokenizer, Vocabulary, WordTokenizer, split_sentences, split_words


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
