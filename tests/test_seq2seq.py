"""Seq2seq with and without attention, and the generated reversal task."""

import pytest
import torch
from torch.nn import functional as F

from lmcourse import rnn
from lmcourse.seq2seq import (
    BahdanauAttention,
    LuongAttention,
    Seq2Seq,
    Seq2SeqEncoder,
    accuracy_by_length,
    exact_match,
    seq2seq_loss,
)
from lmcourse.tasks import BOS, EOS, PAD, ReversalTask
from lmcourse.train import train


def test_reversal_task_pairs_and_batches():
    task = ReversalTask(10, 2, 6)
    pairs = task.sample(50, seed=0)
    assert all(t == s[::-1] and 2 <= len(s) <= 6 for s, t in pairs)
    assert pairs == task.sample(50, seed=0) and pairs != task.sample(50, seed=1)
    src, lengths, tgt_in, tgt_out = task.batch([("123", "321"), ("45", "54")])
    assert src.tolist() == [[4, 5, 6], [7, 8, PAD]] and lengths.tolist() == [3, 2]
    assert tgt_in.tolist() == [[BOS, 6, 5, 4], [BOS, 8, 7, PAD]]
    assert tgt_out.tolist() == [[6, 5, 4, EOS], [8, 7, EOS, PAD]]
    assert task.decode(tgt_out[1]) == "54"
    assert all(len(s) == 9 for s, _ in task.sample(5, seed=0, length=9))


def test_reversal_task_rejects_bad_input():
    with pytest.raises(ValueError, match="min_len"):
        ReversalTask(10, 5, 3)
    with pytest.raises(ValueError, match="n_symbols"):
        ReversalTask(1)
    with pytest.raises(ValueError, match="outside this task's alphabet"):
        ReversalTask(4).encode("19")
    with pytest.raises(ValueError, match="pairs is empty"):
        ReversalTask(4).batch([])


def test_bahdanau_scores_match_formula():
    torch.manual_seed(0)
    attn = BahdanauAttention(5, 6, 7)
    q, keys = torch.randn(2, 5), torch.randn(2, 4, 6)
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    ctx, w = attn(q, keys, mask)
    scores = torch.stack([torch.stack([attn.v.weight[0] @ torch.tanh(attn.w_q.weight @ q[b] + attn.w_k.weight @ keys[b, j]
                                                                      + attn.w_k.bias) for j in range(4)]) for b in range(2)])
    want = F.softmax(scores.masked_fill(~mask, float("-inf")), -1)
    torch.testing.assert_close(w, want)
    torch.testing.assert_close(ctx, (want[:, :, None] * keys).sum(1))


def test_luong_scores_match_formula():
    torch.manual_seed(0)
    attn = LuongAttention(5, 6)
    q, keys = torch.randn(2, 5), torch.randn(2, 4, 6)
    mask = torch.tensor([[True] * 4, [False, True, True, False]])
    _, w = attn(q, keys, mask)
    want = F.softmax(torch.einsum("bd,de,bje->bj", q, attn.w.weight, keys).masked_fill(~mask, float("-inf")), -1)
    torch.testing.assert_close(w, want)
    assert (w[1, [0, 3]] == 0).all()


@pytest.mark.parametrize("kind", [None, "bahdanau", "luong"])
def test_padding_does_not_change_outputs(kind):
    task = ReversalTask(10, 2, 8)
    torch.manual_seed(0)
    model = Seq2Seq(task.vocab_size, 8, 16, kind).eval()
    alone = task.batch([("1234", "4321")])
    padded = task.batch([("1234", "4321"), ("12345678", "87654321")])
    lo1, w1 = model(alone[0], alone[1], alone[2])
    lo2, w2 = model(padded[0], padded[1], padded[2][:, :5])
    torch.testing.assert_close(lo1[0], lo2[0], atol=1e-5, rtol=1e-5)
    if kind:
        torch.testing.assert_close(w1[0], w2[0, :, :4], atol=1e-6, rtol=1e-5)
        assert (w2[0, :, 4:] == 0).all() and w2.shape == (2, 5, 8)


@pytest.mark.parametrize("kind", [None, "bahdanau", "luong"])
def test_greedy_decode_equals_teacher_forcing_on_its_own_output(kind):
    task = ReversalTask(10, 2, 8)
    torch.manual_seed(1)
    model = Seq2Seq(task.vocab_size, 8, 16, kind).eval()
    src, lengths, _, _ = task.batch([("1234", "4321")])
    ids, w = model.greedy_decode(src, lengths, max_len=6)
    tgt_in = torch.cat([torch.tensor([[BOS]]), ids[:, :-1]], 1)
    logits, w_tf = model(src, lengths, tgt_in)
    n = int((ids[0] != PAD).sum())
    assert torch.equal(logits.argmax(-1)[0, :n], ids[0, :n])
    if kind:
        torch.testing.assert_close(w[0, :n], w_tf[0, :n])


def test_attention_learns_short_reversal():
    torch.manual_seed(0)
    task = ReversalTask(3, 2, 3)
    model = Seq2Seq(task.vocab_size, 8, 16, "luong")
    hist = train(model, task.batches(16, 0), optimizer=torch.optim.Adam(model.parameters(), 2e-2), steps=40,
                 loss_fn=seq2seq_loss, progress=False, grad_clip=1.0)
    assert sum(hist.loss[-5:]) / 5 < 0.5 * hist.loss[0]
    acc = accuracy_by_length(model, task, [2, 3], n_per_length=30)
    assert acc[2] > 0.5, acc
    src, lengths, _, _ = task.batch([("012", "210")])
    ids, _ = model.greedy_decode(src, lengths, max_len=8)
    assert EOS in ids[0].tolist()  # a complete answer: exact_match's shorter decoding gives the same one
    answer = task.decode(ids[0])
    right, wrong = ("012", answer), ("012", answer + "0")
    assert exact_match(model, task, [right, wrong]) == 0.5
    assert exact_match(model, task, [right, wrong, right, right], batch_size=3) == 0.75  # across batches


def test_seq2seq_rejects_bad_input():
    with pytest.raises(ValueError, match="attention must be one of"):
        Seq2Seq(10, attention="dot")
    model = Seq2Seq(10, 4, 8)
    with pytest.raises(ValueError, match="src_lengths"):
        model(torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 4]), torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="max_len"):
        model.greedy_decode(torch.ones(1, 3, dtype=torch.long), torch.tensor([3]), 0)


def test_encoder_gru_equals_lmcourse_rnn_gru_on_the_packed_source():
    task = ReversalTask(10, 2, 8)
    torch.manual_seed(0)
    encoder = Seq2SeqEncoder(task.vocab_size, 8, 16)
    src, lengths, _, _ = task.batch(task.sample(6, seed=0))
    packed = torch.nn.utils.rnn.pack_padded_sequence(encoder.embed(src), lengths, batch_first=True,
                                                     enforce_sorted=False)
    ours = rnn.GRU(8, 16, bidirectional=True)
    ours.load_state_dict(encoder.rnn.state_dict())
    (out_ref, h_ref), (out, h) = encoder.rnn(packed), ours(packed)
    torch.testing.assert_close(out.data, out_ref.data)
    torch.testing.assert_close(h, h_ref)


def test_ids_and_targets_outside_the_vocabulary_are_named():
    model = Seq2Seq(10, 4, 8, "bahdanau")
    src, lengths, tgt = torch.tensor([[4, 5, 6]]), torch.tensor([3]), torch.tensor([[BOS, 6, 5]])
    with pytest.raises(ValueError, match=r"src holds token ids in \[4, 12\]"):
        model(torch.tensor([[4, 12, 6]]), lengths, tgt)
    with pytest.raises(ValueError, match=r"tgt_in holds token ids in \[-1, 6\]"):
        model(src, lengths, torch.tensor([[BOS, -1, 6]]))
    with pytest.raises(ValueError, match="tgt_in must hold integer token ids, got dtype torch.float32"):
        model(src, lengths, tgt.float())
    with pytest.raises(ValueError, match=r"tgt_out holds ids outside the vocabulary \[0, vocab_size=10\)"):
        seq2seq_loss(model, (src, lengths, tgt, torch.tensor([[6, 99, EOS]])))
    with pytest.raises(ValueError, match=r"tgt_out must be an integer tensor of shape \(1, 3\)"):
        seq2seq_loss(model, (src, lengths, tgt, torch.tensor([[6, EOS]])))


def test_ids_are_range_checked_only_when_the_lookup_fails(monkeypatch):
    task = ReversalTask(10, 2, 8)
    model = Seq2Seq(task.vocab_size, 4, 8, "luong")
    monkeypatch.setattr("lmcourse.seq2seq.check_token_ids", lambda *a, **k: pytest.fail("a pass over the ids"))
    seq2seq_loss(model, task.batch(task.sample(4, seed=0)))  # a training step reads no id twice


def test_empty_inputs_are_clear_errors():
    task = ReversalTask(10, 2, 8)
    model = Seq2Seq(task.vocab_size, 4, 8)
    with pytest.raises(ValueError, match="src is empty"):
        empty = torch.zeros(0, 3, dtype=torch.long)
        model(empty, torch.zeros(0, dtype=torch.long), empty)
    with pytest.raises(ValueError, match=r"tgt_in must be \(B=1, T >= 1\)"):
        model(torch.tensor([[4, 5]]), torch.tensor([2]), torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="lengths is empty"):
        accuracy_by_length(model, task, [])
    with pytest.raises(ValueError, match="pairs is empty"):
        exact_match(model, task, [])


def test_order_task_labels_say_which_marker_comes_first_and_classes_share_their_words():
    from collections import Counter

    from lmcourse.tasks import OrderTask
    task = OrderTask(min_len=4, max_len=9)
    examples = task.sample(400, seed=0)
    for sentence, label in examples:
        words = sentence.split()
        assert 4 <= len(words) <= 9 and words.count("cat") == words.count("dog") == 1
        assert label == int(words.index("cat") < words.index("dog"))
    assert 150 < sum(y for _, y in examples) < 250
    bags = {y: Counter(w for s, lab in examples if lab == y for w in s.split()) for y in (0, 1)}
    assert bags[0]["cat"] == sum(1 for _, y in examples if y == 0)  # every sentence holds each marker once
    ids, lengths, labels = task.batch(examples[:3])
    assert ids.shape == (3, int(lengths.max())) and labels.tolist() == [y for _, y in examples[:3]]
    with pytest.raises(ValueError, match="min_len"):
        OrderTask(min_len=1)
    with pytest.raises(ValueError, match="markers"):
        OrderTask(markers=("cat", "cat"))
    with pytest.raises(ValueError, match="examples is empty"):
        task.batch([])


def test_luong_with_the_previous_state_scores_before_the_step_and_changes_nothing_else():
    task = ReversalTask(10, 2, 8)
    torch.manual_seed(0)
    current = Seq2Seq(task.vocab_size, 8, 16, "luong").eval()
    previous = Seq2Seq(task.vocab_size, 8, 16, "luong", query_state="previous").eval()
    previous.load_state_dict(current.state_dict())          # the same parameters: only the query's timing differs
    src, lengths, tgt_in, _ = task.batch([("1234", "4321")])
    state = previous.start(src, lengths)
    s_before = state["s"].clone()
    _, w = previous.step(state, tgt_in[:, 0])
    want = F.softmax(previous.attn.w(state["states"]) @ s_before[0], -1)   # scored with s_{t-1}
    torch.testing.assert_close(w, want, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(current(src, lengths, tgt_in)[1], previous(src, lengths, tgt_in)[1])
    assert (current.query_state, previous.query_state, Seq2Seq(13, attention="bahdanau").query_state) == \
        ("current", "previous", "previous")


@pytest.mark.parametrize("attention, query_state", [("bahdanau", "current"), (None, "previous"), ("luong", "now")])
def test_an_impossible_query_state_is_named(attention, query_state):
    with pytest.raises(ValueError, match="query_state"):
        Seq2Seq(13, attention=attention, query_state=query_state)
