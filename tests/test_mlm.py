import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lmcourse.data import corpus_tokenizer, load_corpus
from lmcourse.finetune import (
    SequenceClassifier,
    SpanQA,
    accuracy,
    bag_of_words_accuracy,
    best_span,
    encode_masked,
    encode_qa,
    person_or_place,
    reading_comprehension,
    source_sentences,
    span_accuracy,
    type_baseline_accuracy,
    words_beside_mask,
    words_beside_mask_accuracy,
)
from lmcourse.mlm import IGNORE_INDEX, MaskedLM, SpecialTokens, evaluate_mlm, mask_tokens, mlm_batches
from lmcourse.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer
from lmcourse.train import train
from lmcourse.transformer import Encoder, TransformerConfig


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny models: on a shared 2-core machine extra threads cost more than they save
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def chars():
    return SpecialTokens(CharTokenizer.from_text("abcdefgh "))


def test_special_tokens_come_after_the_tokenizer_ids(chars):
    assert (chars.pad_id, chars.mask_id, chars.cls_id, chars.sep_id) == tuple(range(chars.n_regular, chars.n_regular + 4))
    assert chars.vocab_size == chars.n_regular + 4
    ids, real = chars.batch([chars.encode("abc"), chars.encode("a")], max_len=8)
    assert chars.tokens(ids[1]) == ["[CLS]", "a", "[PAD]", "[PAD]"]
    assert real.tolist() == [[True] * 4, [True, True, False, False]]


def test_mask_tokens_follows_the_80_10_10_rule():
    n_regular, mask_id = 1000, 1001
    ids = torch.randint(0, n_regular, (400, 500))
    inputs, labels = mask_tokens(ids, mask_id, n_regular, 0.15, generator=torch.Generator().manual_seed(0))
    picked = labels != IGNORE_INDEX
    n = picked.sum().item()
    assert n / ids.numel() == pytest.approx(0.15, abs=0.003)
    assert torch.equal(labels[picked], ids[picked])  # labels are the original tokens
    assert torch.equal(inputs[~picked], ids[~picked])  # unpicked positions are untouched
    masked = (inputs == mask_id) & picked
    changed = (inputs != ids) & ~masked & picked
    unchanged = (inputs == ids) & picked
    # a random replacement equals the original with probability 1/n_regular
    assert masked.sum().item() / n == pytest.approx(0.8, abs=0.01)
    assert changed.sum().item() / n == pytest.approx(0.1 * (1 - 1 / n_regular), abs=0.01)
    assert unchanged.sum().item() / n == pytest.approx(0.1 + 0.1 / n_regular, abs=0.01)
    assert inputs[changed].max().item() < n_regular  # random tokens are regular tokens, never specials


def test_mask_tokens_never_picks_special_tokens(chars):
    ids = torch.full((50, 20), chars.cls_id)
    ids[:, 1:] = 3
    ids[:, -5:] = chars.pad_id
    _, labels = mask_tokens(ids, chars.mask_id, chars.n_regular, 0.5, generator=torch.Generator().manual_seed(1))
    assert torch.all(labels[:, 0] == IGNORE_INDEX) and torch.all(labels[:, -5:] == IGNORE_INDEX)
    assert (labels[:, 1:-5] != IGNORE_INDEX).any()


def test_mask_tokens_rejects_bad_input():
    with pytest.raises(ValueError, match="mask_prob"):
        mask_tokens(torch.zeros(2, 3, dtype=torch.long), 5, 4, mask_prob=1.5)
    with pytest.raises(ValueError, match="long"):
        mask_tokens(torch.zeros(2, 3), 5, 4)


def test_masked_lm_loss_is_cross_entropy_on_picked_positions_only(chars):
    torch.manual_seed(0)
    model = MaskedLM(TransformerConfig(chars.vocab_size, max_len=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0))
    inputs, labels = next(mlm_batches(torch.randint(0, chars.n_regular, (200,)), chars, 12, 4, mask_prob=0.3))
    logits, loss = model(inputs, labels)
    full, _ = model(inputs)
    picked = labels != IGNORE_INDEX
    assert torch.allclose(logits, full[picked], atol=1e-5)
    assert loss.item() == pytest.approx(F.cross_entropy(full[picked], labels[picked]).item(), rel=1e-5)
    assert model.head.embedding.weight is model.encoder.tok_emb.weight  # tied input and output embeddings


def test_masked_lm_learns_a_copy_task_through_train(chars):
    torch.manual_seed(0)
    ids = torch.tensor(chars.encode("abcdefgh" * 60))  # the masked token is determined by its neighbours
    model = MaskedLM(TransformerConfig(chars.vocab_size, max_len=16, n_layer=1, n_head=2, n_embd=32, dropout=0.0))
    before = evaluate_mlm(model, ids, chars, 16, n_windows=32)
    train(model, mlm_batches(ids, chars, 16, 16), optimizer=torch.optim.AdamW(model.parameters(), 3e-3),
          steps=150, progress=False)
    after = evaluate_mlm(model, ids, chars, 16, n_windows=32)
    assert after["loss"] < before["loss"] / 3 and after["accuracy"] > 0.9


def test_mlm_batches_never_target_unknown_or_special_tokens(chars):
    ids = torch.tensor(chars.encode("ab?cd?" * 50))  # "?" is not in the vocabulary: <unk>, id 0
    inputs, labels = next(mlm_batches(ids, chars, 12, 64, mask_prob=0.5))
    assert (labels != IGNORE_INDEX).any()
    assert not ((labels == 0) | (labels >= chars.n_regular)).any()
    assert (inputs[:, 0] == chars.cls_id).all()


def test_evaluate_mlm_is_deterministic(chars):
    model = MaskedLM(TransformerConfig(chars.vocab_size, max_len=16, n_layer=1, n_head=2, n_embd=16))
    ids = torch.randint(0, chars.n_regular, (500,))
    assert evaluate_mlm(model, ids, chars, 16) == evaluate_mlm(model, ids, chars, 16)
    assert model.training  # restored


@pytest.mark.parametrize("token, mask_prob", [(0, 0.15), ("cls", 0.5), (3, 1e-9)])
def test_evaluate_mlm_with_nothing_masked_says_so(chars, token, mask_prob):
    model = MaskedLM(TransformerConfig(chars.vocab_size, max_len=16, n_layer=1, n_head=2, n_embd=16))
    ids = torch.full((100,), chars.cls_id if token == "cls" else token)  # <unk>, a special token, or too rare a mask
    with pytest.raises(ValueError, match=rf"no position of ids was masked .*mask_prob={mask_prob}"):
        evaluate_mlm(model, ids, chars, 16, n_windows=4, mask_prob=mask_prob)
    assert model.training  # restored


def test_accuracy_metrics_of_no_examples_say_so(chars):
    enc = Encoder(TransformerConfig(chars.vocab_size, max_len=16, n_layer=1, n_head=2, n_embd=16))
    empty = torch.zeros(0, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="ids is empty"):
        accuracy(SequenceClassifier(enc, 2), empty, empty.bool(), torch.zeros(0, dtype=torch.long))
    batch = {name: torch.zeros(0, 8, dtype=torch.long) for name in ("ids", "key_padding", "context_mask")}
    with pytest.raises(ValueError, match=r"batch\['ids'\] is empty"):
        span_accuracy(SpanQA(enc), batch | {"start": torch.zeros(0), "end": torch.zeros(0)})


def test_evaluate_mlm_baseline_is_the_share_of_that_token_among_the_targets(chars):
    model = MaskedLM(TransformerConfig(chars.vocab_size, max_len=16, n_layer=1, n_head=2, n_embd=16))
    ids = torch.full((500,), 3)
    ids[::2] = 4  # targets alternate between two tokens
    result = evaluate_mlm(model, ids, chars, 16, baseline_token=3)
    assert result["baseline_accuracy"] == pytest.approx(0.5, abs=0.15)
    assert evaluate_mlm(model, ids, chars, 16, baseline_token=5)["baseline_accuracy"] == 0.0
    assert "baseline_accuracy" not in evaluate_mlm(model, ids, chars, 16)


class CopyInput(nn.Module):
    """A 'masked LM' that predicts the token it is shown: right at every unchanged position, never at a [MASK]."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size, self.unused = vocab_size, nn.Parameter(torch.zeros(1))

    def forward(self, inputs, labels):
        return 10.0 * F.one_hot(inputs[labels != IGNORE_INDEX], self.vocab_size).float(), None


def test_mask_accuracy_counts_only_the_positions_shown_as_mask(chars):
    ids = torch.randint(1, chars.n_regular, (4000,))
    result = evaluate_mlm(CopyInput(chars.vocab_size), ids, chars, 16, n_windows=250, baseline_token=3)
    # the 10 % left unchanged (and a random replacement that drew the original) are "predicted" by copying
    assert result["accuracy"] == pytest.approx(0.1 + 0.1 / chars.n_regular, abs=0.03)
    assert result["mask_accuracy"] == 0.0 and result["mask_n"] == pytest.approx(0.8 * result["n"], rel=0.1)
    assert result["mask_baseline_accuracy"] == pytest.approx(1 / (chars.n_regular - 1), abs=0.05)


def test_evaluate_mlm_per_window_counts_add_up_to_the_mask_accuracy(chars):
    model = MaskedLM(TransformerConfig(chars.vocab_size, max_len=16, n_layer=1, n_head=2, n_embd=16))
    ids = torch.randint(1, chars.n_regular, (2000,))
    result = evaluate_mlm(model, ids, chars, 16, n_windows=100, batch_size=32, baseline_token=3, per_window=True)
    assert len(result["window_mask_n"]) == len(result["window_mask_hits"]) == 100  # one per window, across batches
    assert sum(result["window_mask_n"]) == result["mask_n"]
    assert sum(result["window_mask_hits"]) == round(result["mask_accuracy"] * result["mask_n"])
    assert sum(result["window_mask_baseline_hits"]) == round(result["mask_baseline_accuracy"] * result["mask_n"])
    assert all(h <= n for h, n in zip(result["window_mask_hits"], result["window_mask_n"]))
    assert "window_mask_n" not in evaluate_mlm(model, ids, chars, 16, n_windows=100)


def test_mask_loss_counts_only_the_positions_shown_as_mask(chars):
    ids = torch.randint(1, chars.n_regular, (4000,))
    uniform = torch.full((chars.vocab_size,), 1 / chars.vocab_size)
    result = evaluate_mlm(CopyInput(chars.vocab_size), ids, chars, 16, n_windows=250, unigram=uniform)
    # at a [MASK] the copier puts its one large score on [MASK] itself, never the target: the same loss everywhere
    assert result["mask_loss"] == pytest.approx(math.log(math.exp(10.0) + chars.vocab_size - 1), rel=1e-5)
    assert result["loss"] < result["mask_loss"]  # the copied unchanged positions pull the all-positions loss down
    assert result["mask_unigram_loss"] == pytest.approx(math.log(chars.vocab_size))


def test_source_sentences_are_balanced_and_disjoint_between_splits():
    train_set, valid_set = source_sentences("train", 100), source_sentences("valid")
    assert len(train_set) == 200 and sum(label for _, label in train_set) == 100
    assert sum(label for _, label in valid_set) * 2 == len(valid_set)
    assert not {s for s, _ in train_set} & {s for s, _ in valid_set}
    with pytest.raises(ValueError, match="n_per_class"):
        source_sentences("valid", 10 ** 6)
    with pytest.raises(ValueError, match="split"):
        source_sentences("test")


def test_bag_of_words_baseline_beats_chance_on_the_source_task():
    assert bag_of_words_accuracy(source_sentences("train", 200), source_sentences("valid")) > 0.65


def test_words_beside_mask_names_each_position_nearest_first_and_marks_the_ends():
    assert words_beside_mask("In [MASK] the rain fell.") == ["left-1=in", "left-2=<s>", "right-1=the", "right-2=rain"]
    assert words_beside_mask("He met [MASK]'s", window=1) == ["left-1=met", "right-1='"]
    assert words_beside_mask("a b c [MASK]", window=3) == ["left-1=c", "left-2=b", "left-3=a",
                                                          "right-1=</s>", "right-2=</s>", "right-3=</s>"]
    with pytest.raises(ValueError, match="exactly one"):
        words_beside_mask("[MASK] and [MASK]")


def test_words_beside_mask_baseline_reads_the_order_that_a_bag_of_words_cannot():
    # both classes hold the same words; only which side of the gap "in" stands on tells them apart
    def pairs(fillers):
        return [(f"{f} in [MASK] said {g}", 0) for f in fillers for g in fillers] + [
            (f"{f} said [MASK] in {g}", 1) for f in fillers for g in fillers]

    train_set, test_set = pairs(["a", "b", "c", "d"]), pairs(["e", "f"])   # the test's fillers are never seen
    assert words_beside_mask_accuracy(train_set, test_set) == 1.0
    assert words_beside_mask_accuracy(train_set, test_set, window=1) == 1.0
    assert bag_of_words_accuracy(train_set, test_set) == 0.5


def test_person_or_place_hides_one_listed_name_per_example_balanced_and_seeded():
    from lmcourse.finetune import PERSON_WORDS, PLACE_WORDS

    assert not set(PERSON_WORDS) & set(PLACE_WORDS)
    train_set, valid_set = person_or_place("train", 20, seed=3), person_or_place("valid")
    assert len(train_set) == 40 and sum(label for _, label in train_set) == 20
    assert sum(label for _, label in valid_set) * 2 == len(valid_set) > 100
    assert all(s.count("[MASK]") == 1 for s, _ in train_set + valid_set)
    assert person_or_place("train", 20, seed=3) == train_set and person_or_place("train", 20, seed=4) != train_set
    assert not {s for s, _ in train_set} & {s for s, _ in valid_set}
    with pytest.raises(ValueError, match="n_per_class"):
        person_or_place("valid", 10 ** 6)


def test_person_or_place_blames_the_length_limits_when_they_leave_no_sentence():
    with pytest.raises(ValueError, match="max_chars=10"):
        person_or_place("valid", max_chars=10)


def test_encode_masked_puts_the_mask_id_in_place_of_each_literal_mask():
    tok = BPETokenizer.from_text("In Paris the rain fell. John said so. " * 20, 300)
    specials = SpecialTokens(tok)
    ids = encode_masked(specials, "In [MASK] the rain fell.")
    assert ids.count(specials.mask_id) == 1
    assert ids[:ids.index(specials.mask_id)] == specials.encode("In ")
    assert ids[ids.index(specials.mask_id) + 1:] == specials.encode(" the rain fell.")
    assert encode_masked(specials, "[MASK] said so.")[0] == specials.mask_id


def test_classifier_with_read_id_reads_the_vector_at_that_token(chars):
    torch.manual_seed(0)
    cfg = TransformerConfig(chars.vocab_size, max_len=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0)
    clf = SequenceClassifier(Encoder(cfg), 2, dropout=0.0, read_id=chars.mask_id).eval()
    ids = torch.tensor([[chars.cls_id, 5, chars.mask_id, 6], [chars.cls_id, chars.mask_id, 7, 8]])
    with torch.no_grad():
        logits, _ = clf(ids)
        h, _ = clf.encoder(ids)
        expected = clf.classifier(torch.stack([h[0, 2], h[1, 1]]))
    assert torch.allclose(logits, expected)
    with pytest.raises(ValueError, match="read_id"):
        clf(torch.tensor([[chars.cls_id, 5, 6]]))


def test_classifier_reads_the_cls_position(chars):
    torch.manual_seed(0)
    enc = Encoder(TransformerConfig(chars.vocab_size, max_len=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0))
    clf = SequenceClassifier(enc, 3, dropout=0.0).eval()
    ids, real = chars.batch([chars.encode("abc"), chars.encode("hgfe")], 8)
    logits, loss = clf(ids, real, torch.tensor([0, 2]))
    h, _ = enc(ids, key_padding=real)
    assert torch.allclose(logits, clf.classifier(h[:, 0]), atol=1e-6)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, torch.tensor([0, 2])).item())
    predicted = logits.argmax(-1)  # labels made of the model's own answers: the accuracy is known exactly
    assert accuracy(clf, ids, real, predicted) == 1.0
    assert accuracy(clf, ids, real, torch.stack([predicted[0], (predicted[1] + 1) % 3]), batch_size=1) == 0.5
    with pytest.raises(ValueError, match="n_classes"):
        SequenceClassifier(enc, 1)


def test_reading_comprehension_answers_are_the_marked_context_words():
    for ex in reading_comprehension(50, seed=3):
        assert ex.context.split()[ex.start:ex.end + 1] == [ex.answer]
        assert ex.question.split()[-2] in ex.context
    assert reading_comprehension(5, seed=1) == reading_comprehension(5, seed=1)
    with pytest.raises(ValueError, match="n_people"):
        reading_comprehension(5, n_people=0)
    for ex in reading_comprehension(20, seed=3, n_people=1):  # a curriculum's first stage: one person, three facts
        assert len(ex.context.split(" . ")) == 3 and ex.context.split()[ex.start] == ex.answer


def test_reading_comprehension_words_are_in_a_4000_word_wiki_vocabulary():
    specials = SpecialTokens(WordTokenizer.from_text(load_corpus("wiki", "train"), min_count=2, max_size=4000))
    examples = reading_comprehension(40)
    batch = encode_qa(examples, specials, 80)
    assert (batch["ids"] != 0).all()  # no <unk>
    for row, s, ex in zip(batch["ids"], batch["start"], examples):
        assert specials.token(int(row[s])) == ex.answer.lower()  # the word tokenizer lowercases
        assert row[0] == specials.cls_id


def test_encode_qa_marks_multi_token_answers_under_byte_pairs():
    examples = reading_comprehension(20, seed=4)
    specials = SpecialTokens(BPETokenizer.from_text(" ".join(ex.context for ex in reading_comprehension(200)), 300))
    batch = encode_qa(examples, specials, 160)
    for row, context, s, e, ex in zip(batch["ids"], batch["context_mask"], batch["start"], batch["end"], examples):
        assert specials.tokenizer.decode(row[s:e + 1].tolist()) == " " + ex.answer
        assert context[s:e + 1].all()


def test_encode_qa_spaces_words_as_running_text_does():
    examples = reading_comprehension(20, seed=4)
    text = " ".join(ex.context + " " + ex.question for ex in reading_comprehension(200))
    specials = SpecialTokens(BPETokenizer.from_text(text.replace(" ?", "?").replace(" .", "."), 300))
    batch = encode_qa(examples, specials, 160)
    for row, words, context, ex in zip(batch["ids"], batch["question_word"], batch["context_mask"], examples):
        question = row[1:1 + int((words >= 0).sum())].tolist()
        assert question == specials.encode(" " + ex.question.replace(" ?", "?"))  # no space before punctuation
        assert row[1 + len(question)] == specials.sep_id
        assert row[context].tolist() == specials.encode(" " + ex.context.replace(" .", "."))
        for w, word in enumerate(ex.question.split()):  # question_word says which word each token spells
            assert specials.tokenizer.decode(row[words == w].tolist()) == (" " + word if word[0].isalnum() else word)
    assert (batch["question_word"][~batch["key_padding"]] == -1).all()


def test_type_baseline_is_one_over_the_context_words_of_the_answers_type():
    examples = reading_comprehension(40, seed=5, n_people=2)  # 2 jobs and 4 places in every context
    expected = sum(1 / 2 if ex.answer.islower() else 1 / 4 for ex in examples) / len(examples)
    assert type_baseline_accuracy(examples) == pytest.approx(expected)
    with pytest.raises(ValueError, match="empty"):
        type_baseline_accuracy([])


def test_best_span_matches_brute_force():
    torch.manual_seed(0)
    s, e = torch.randn(6, 12), torch.randn(6, 12)
    allowed = torch.zeros(6, 12, dtype=torch.bool)
    allowed[:, 3:11] = True
    ps, pe = best_span(s, e, allowed, max_answer_len=4)
    for b in range(6):
        best = max(((i, j) for i in range(3, 11) for j in range(i, min(i + 4, 11))), key=lambda p: s[b, p[0]] + e[b, p[1]])
        assert (ps[b].item(), pe[b].item()) == best
    with pytest.raises(ValueError, match="max_answer_len"):
        best_span(s, e, max_answer_len=0)


def test_span_qa_loss_and_accuracy(chars):
    specials = SpecialTokens(corpus_tokenizer("wiki", "word"))
    batch = encode_qa(reading_comprehension(8), specials, 80)
    torch.manual_seed(0)
    model = SpanQA(Encoder(TransformerConfig(specials.vocab_size, max_len=80, n_layer=1, n_head=2, n_embd=16)))
    s, e, loss = model(batch["ids"], batch["key_padding"], batch["start"], batch["end"])
    assert s.shape == batch["ids"].shape
    expected = (F.cross_entropy(s, batch["start"]) + F.cross_entropy(e, batch["end"])) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    model.eval()
    with torch.no_grad():
        s, e, _ = model(batch["ids"], batch["key_padding"])
    ps, pe = best_span(s, e, batch["context_mask"])  # the model's own answers: the exact match is known exactly
    assert span_accuracy(model, {**batch, "start": ps, "end": pe}) == 1.0
    even = torch.arange(len(ps)) % 2 == 0  # odd examples get an end before their start, a span never predicted
    assert span_accuracy(model, {**batch, "start": ps, "end": torch.where(even, pe, ps - 1)}, batch_size=3) == 0.5


def _tiny_bert_qa(tmp_path):
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

    words = sorted({w for seed in (0, 2) for ex in reading_comprehension(30, seed) for w in (ex.context + " " + ex.question).lower().split()})
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(vocab), do_lower_case=True)  # transformers 5: vocab=, not vocab_file=
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    return BertForQuestionAnswering(config).eval(), tokenizer


def test_hf_answer_is_the_best_context_span_of_a_transformers_model(tmp_path):
    # transformers 5 removed the question-answering pipeline; the reference is the brute-force best span
    from lmcourse.finetune import hf_answer

    model, tokenizer = _tiny_bert_qa(tmp_path)
    for ex in reading_comprehension(5, seed=2):
        enc = tokenizer(ex.question, ex.context, return_tensors="pt")
        with torch.no_grad():
            out = model(**enc)
        s, e = out.start_logits[0], out.end_logits[0]
        context = [i for i, sid in enumerate(enc.sequence_ids(0)) if sid == 1]
        i, j = max(((i, j) for i in context for j in context if i <= j < i + 15), key=lambda p: s[p[0]] + e[p[1]])
        expected = " ".join(tokenizer.convert_ids_to_tokens(enc["input_ids"][0, i:j + 1].tolist()))  # whole words
        assert hf_answer(model, tokenizer, ex.question, ex.context).lower() == expected  # the vocabulary is lowercased


def test_load_local_hf_skips_with_a_message_when_nothing_is_cached(monkeypatch, tmp_path):
    from lmcourse.finetune import load_local_hf

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    model, tokenizer, message = load_local_hf("no-such-user/no-such-model")
    assert model is None and tokenizer is None and "not in the local Hugging Face cache" in message
    with pytest.raises(ValueError, match="task"):
        load_local_hf(task="translation")


def test_evaluate_mlm_unigram_loss_is_the_mean_surprise_of_the_targets(chars):
    torch.manual_seed(0)
    model = MaskedLM(TransformerConfig(chars.vocab_size, max_len=16, n_layer=1, n_head=2, n_embd=16))
    ids = torch.randint(0, chars.n_regular, (400,))
    probs = torch.bincount(ids, minlength=chars.vocab_size).double() + 1
    probs /= probs.sum()
    result = evaluate_mlm(model, ids, chars, 16, unigram=probs)
    uniform = evaluate_mlm(model, ids, chars, 16, unigram=torch.full((chars.vocab_size,), 1 / chars.vocab_size))
    assert uniform["unigram_loss"] == pytest.approx(math.log(chars.vocab_size))
    assert 0 < result["unigram_loss"] < uniform["unigram_loss"]
    with pytest.raises(ValueError, match="unigram must be a distribution"):
        evaluate_mlm(model, ids, chars, 16, unigram=probs[:-1])
