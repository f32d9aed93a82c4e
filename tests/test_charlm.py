"""lmcourse.charlm: the char LSTM LM and the LSTM classifier."""
import pytest
import torch

from lmcourse import charlm


def test_ours_and_torch_impl_give_equal_logits_with_shared_weights():
    torch.manual_seed(0)
    a = charlm.CharLSTM(11, 8, 16, num_layers=2, impl="torch")
    b = charlm.CharLSTM(11, 8, 16, num_layers=2, impl="ours")
    b.load_state_dict(a.state_dict())
    ids = torch.randint(0, 11, (3, 10))
    torch.testing.assert_close(a(ids), b(ids), rtol=1e-5, atol=1e-5)
    assert a(ids).shape == (3, 10, 11)


def test_carrying_state_equals_running_the_whole_sequence():
    torch.manual_seed(0)
    m = charlm.CharLSTM(7, 4, 8)
    ids = torch.randint(0, 7, (2, 12))
    first, state = m(ids[:, :5], return_state=True)
    second = m(ids[:, 5:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), m(ids), rtol=1e-5, atol=1e-6)


def test_classifier_reads_the_last_real_token():
    torch.manual_seed(0)
    m = charlm.LSTMClassifier(10, 3, 4, 6)
    ids = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])
    logits = m(ids, torch.tensor([3, 5]))
    torch.testing.assert_close(logits[0], m(ids[:1, :3], torch.tensor([3]))[0])
    assert logits.shape == (2, 3)


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="impl"):
        charlm.CharLSTM(5, impl="keras")
    m = charlm.CharLSTM(5, 4, 8)
    with pytest.raises(ValueError, match=r"outside the vocabulary \[0, vocab_size=5\)"):
        m(torch.tensor([[1, 5]]))
    with pytest.raises(ValueError, match="batch, time"):
        m(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="lengths"):
        charlm.LSTMClassifier(5)(torch.tensor([[1, 2]]), torch.tensor([3]))


def test_lm_loss_is_mean_next_char_cross_entropy():
    torch.manual_seed(0)
    m = charlm.CharLSTM(6, 4, 8)
    x, y = torch.randint(0, 6, (2, 5)), torch.randint(0, 6, (2, 5))
    expected = -torch.log_softmax(m(x), -1).gather(-1, y[..., None]).mean()
    torch.testing.assert_close(charlm.lm_loss(m, (x, y)), expected)


def test_tbptt_loss_carries_the_state_detached_and_resets_on_first():
    torch.manual_seed(0)
    m = charlm.CharLSTM(7, 4, 8)
    x = torch.randint(0, 7, (2, 12))
    y = torch.randint(0, 7, (2, 12))
    loss_fn = charlm.TBPTTLoss()
    first = loss_fn(m, (x[:, :6], y[:, :6], torch.tensor(True)))
    second = loss_fn(m, (x[:, 6:], y[:, 6:], torch.tensor(False)))
    logits = m(x)  # one pass over all 12 steps: the second window must see the first's state
    full = torch.nn.functional.cross_entropy(logits[:, 6:].flatten(0, 1), y[:, 6:].flatten())
    torch.testing.assert_close(second, full)
    assert not loss_fn.state[0].requires_grad
    again = loss_fn(m, (x[:, :6], y[:, :6], torch.tensor(True)))  # a restart forgets the carried state
    torch.testing.assert_close(again, first)


def test_classifier_reads_what_a_packed_lstm_ends_on():
    """Reading each sequence's last real output is torch's packed final state: padding never reaches it."""
    torch.manual_seed(0)
    m = charlm.LSTMClassifier(10, 3, 4, 6)
    ids, lengths = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8], [9, 1, 0, 0, 0]]), torch.tensor([3, 5, 2])
    packed = torch.nn.utils.rnn.pack_padded_sequence(m.embed(ids), lengths, batch_first=True, enforce_sorted=False)
    _, (h_n, _) = m.lstm(packed)
    torch.testing.assert_close(m(ids, lengths), m.head(h_n[-1]))


@pytest.mark.parametrize("bad,shown", [(99, r"\[1, 99\]"), (-1, r"\[-1, 2\]")])
def test_ids_outside_the_vocabulary_are_named(bad, shown):
    ids = torch.tensor([[1, bad, 2]])
    message = rf"ids holds token ids in {shown}, outside the vocabulary \[0, vocab_size=9\)"
    with pytest.raises(ValueError, match=message):
        charlm.CharLSTM(9, 4, 8)(ids)
    with pytest.raises(ValueError, match=message):
        charlm.LSTMClassifier(9)(ids, torch.tensor([3]))


def test_ids_are_range_checked_only_when_the_lookup_fails(monkeypatch):
    monkeypatch.setattr("lmcourse.charlm.check_token_ids", lambda *a, **k: pytest.fail("a pass over the ids"))
    x = torch.randint(0, 7, (2, 5))
    charlm.lm_loss(charlm.CharLSTM(7, 4, 8), (x, x))  # a training step reads no id twice
    charlm.LSTMClassifier(7)(x, torch.tensor([5, 3]))


def test_targets_outside_the_vocabulary_are_named():
    m = charlm.CharLSTM(7, 4, 8)
    x, y = torch.tensor([[1, 2, 3]]), torch.tensor([[1, 99, 3]])
    with pytest.raises(ValueError, match=r"y holds ids outside the vocabulary \[0, vocab_size=7\)"):
        charlm.lm_loss(m, (x, y))
    with pytest.raises(ValueError, match=r"y holds ids outside the vocabulary \[0, vocab_size=7\)"):
        charlm.TBPTTLoss()(m, (x, y, torch.tensor(True)))
    with pytest.raises(ValueError, match=r"y must be an integer tensor of shape \(1, 3\)"):
        charlm.TBPTTLoss()(m, (x, y[:, :2], torch.tensor(True)))


@pytest.mark.parametrize("impl", ["torch", "ours"])
def test_a_state_of_the_wrong_width_batch_or_dtype_is_named(impl):
    m = charlm.CharLSTM(7, 4, 8, num_layers=2, impl=impl)
    ids = torch.tensor([[1, 2], [3, 4]])
    expected = r"state must be a pair \(h, c\) of torch.float32 tensors of shape \(num_layers=2, batch=2, hidden_size=8"
    for state in ((torch.zeros(2, 2, 7), torch.zeros(2, 2, 7)), (torch.zeros(2, 3, 8), torch.zeros(2, 3, 8)),
                  (torch.zeros(2, 2, 8, dtype=torch.double), torch.zeros(2, 2, 8, dtype=torch.double)),
                  torch.zeros(2, 2, 8)):
        with pytest.raises(ValueError, match=expected):
            m(ids, state)


def test_empty_ids_are_a_clear_error():
    with pytest.raises(ValueError, match=r"ids is empty, shape \(2, 0\)"):
        charlm.CharLSTM(7, 4, 8)(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"ids is empty, shape \(0, 3\)"):
        charlm.LSTMClassifier(7)(torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, dtype=torch.long))


def test_generate_feeds_one_character_per_step_greedy_is_the_argmax_and_sampling_the_carried_loop():
    """generate on a CharLSTM: O(1) work per new character (the state carried), greedy = the argmax of a full
    recompute, and a draw = the plain loop (carry (h, c), divide by the temperature, draw with the seeded generator)."""
    from lmcourse.generate import generate
    torch.manual_seed(0)
    m = charlm.CharLSTM(9, 4, 8, num_layers=2)
    fed = []
    hook = m.register_forward_pre_hook(lambda module, args: fed.append(args[0].shape[1]))
    prompt = [1, 2, 3]
    greedy = generate(m, torch.tensor([prompt]), 12)[0, 3:].tolist()
    drawn = generate(m, torch.tensor([prompt]), 12, do_sample=True, temperature=0.7, seed=5)[0, 3:].tolist()
    assert fed == ([3] + [1] * 11) * 2  # the prompt once, then one new character per step
    hook.remove()
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(12):
            seq.append(int(m(torch.tensor([seq]))[0, -1].argmax()))
        assert greedy == seq[3:]
        generator, loop = torch.Generator().manual_seed(5), []
        logits, state = m(torch.tensor([prompt]), return_state=True)
        for _ in range(12):
            loop.append(int(torch.multinomial(torch.softmax(logits[0, -1] / 0.7, -1), 1, generator=generator)))
            logits, state = m(torch.tensor([loop[-1:]]), state, return_state=True)
    assert drawn == loop


@pytest.mark.parametrize("options", [dict(num_beams=3), dict(do_sample=True, top_k=4, seed=1)])
def test_generate_with_the_carried_state_equals_rereading_the_whole_sequence(options):
    from lmcourse.generate import generate
    torch.manual_seed(0)
    m = charlm.CharLSTM(9, 4, 8)
    prompts = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert torch.equal(generate(m, prompts, 10, use_cache=True, **options),
                       generate(m, prompts, 10, use_cache=False, **options))


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_match_torch_carry_their_state_and_generate(cell):
    from lmcourse.generate import generate
    torch.manual_seed(0)
    a = charlm.CharLSTM(11, 8, 16, num_layers=2, cell=cell)
    b = charlm.CharLSTM(11, 8, 16, num_layers=2, impl="ours", cell=cell)
    b.load_state_dict(a.state_dict())
    assert type(a.lstm) is {"gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    ids = torch.randint(0, 11, (3, 10))
    torch.testing.assert_close(a(ids), b(ids), rtol=1e-5, atol=1e-5)
    first, state = a(ids[:, :4], return_state=True)
    assert len(state) == 1 and state[0].shape == (2, 3, 16)       # (h,): no cell state
    torch.testing.assert_close(torch.cat([first, a(ids[:, 4:], state)], 1), a(ids), rtol=1e-5, atol=1e-6)
    loss_fn = charlm.TBPTTLoss()
    loss_fn(a, (ids[:, :5], ids[:, 1:6], torch.tensor(True)))
    second = loss_fn(a, (ids[:, 5:9], ids[:, 6:10], torch.tensor(False)))
    full = torch.nn.functional.cross_entropy(a(ids[:, :9])[:, 5:].flatten(0, 1), ids[:, 6:10].flatten())
    torch.testing.assert_close(second, full)
    prompts = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert torch.equal(generate(a, prompts, 6, num_beams=2, use_cache=True),
                       generate(a, prompts, 6, num_beams=2, use_cache=False))


def test_a_bad_cell_or_state_of_another_cell_is_named():
    with pytest.raises(ValueError, match="cell must be one of"):
        charlm.CharLSTM(5, 4, 8, cell="transformer")
    gru = charlm.CharLSTM(5, 4, 8, cell="gru")
    with pytest.raises(ValueError, match=r"a 1-tuple \(h,\)"):
        gru(torch.zeros(2, 3, dtype=torch.long), (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)))
