"""lmcourse.rnn against torch.nn's cells and stacks with copied weights."""
import pytest
import torch
from torch import nn

from lmcourse import rnn

PAIRS = [(rnn.RNNCell, nn.RNNCell), (rnn.LSTMCell, nn.LSTMCell), (rnn.GRUCell, nn.GRUCell)]


def _copy_from_torch(ours_cls, torch_cls, I=5, H=7, bias=True):
    torch.manual_seed(0)
    ref = torch_cls(I, H, bias=bias).double()
    ours = ours_cls(I, H, bias=bias).double()
    ours.load_state_dict(ref.state_dict())
    return ours, ref


@pytest.mark.parametrize("ours_cls,torch_cls", PAIRS)
def test_cell_has_torch_parameter_names_and_shapes(ours_cls, torch_cls):
    ours, ref = ours_cls(5, 7), torch_cls(5, 7)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("ours_cls,torch_cls", PAIRS)
def test_cell_outputs_and_gradients_equal_torch(ours_cls, torch_cls, bias):
    ours, ref = _copy_from_torch(ours_cls, torch_cls, bias=bias)
    x = torch.randn(3, 5, dtype=torch.double, requires_grad=True)
    h = torch.randn(3, 7, dtype=torch.double, requires_grad=True)
    c = torch.randn(3, 7, dtype=torch.double, requires_grad=True)
    state = (h, c) if ours_cls is rnn.LSTMCell else h
    a, b = ours(x, state), ref(x, state)
    a = torch.cat(a, 1) if isinstance(a, tuple) else a
    b = torch.cat(b, 1) if isinstance(b, tuple) else b
    torch.testing.assert_close(a, b)
    w = torch.randn_like(a)
    inputs = [x, h, c] if ours_cls is rnn.LSTMCell else [x, h]
    ga = torch.autograd.grad((a * w).sum(), inputs + list(ours.parameters()))
    gb = torch.autograd.grad((b * w).sum(), inputs + list(ref.parameters()))
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v)


@pytest.mark.parametrize("ours_cls,torch_cls", PAIRS)
def test_cell_default_zero_state_and_unbatched_input_match_torch(ours_cls, torch_cls):
    ours, ref = _copy_from_torch(ours_cls, torch_cls)
    for x in (torch.randn(4, 5, dtype=torch.double), torch.randn(5, dtype=torch.double)):
        a, b = ours(x), ref(x)
        a = torch.cat(a, -1) if isinstance(a, tuple) else a
        b = torch.cat(b, -1) if isinstance(b, tuple) else b
        torch.testing.assert_close(a, b)


def test_rnn_cell_relu_matches_torch():
    torch.manual_seed(0)
    ref = nn.RNNCell(4, 6, nonlinearity="relu")
    ours = rnn.RNNCell(4, 6, nonlinearity="relu")
    ours.load_state_dict(ref.state_dict())
    x, h = torch.randn(2, 4), torch.randn(2, 6)
    torch.testing.assert_close(ours(x, h), ref(x, h))


def test_lstm_gates_recompose_to_cell_output():
    cell = rnn.LSTMCell(3, 4)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    g = rnn.lstm_gates(cell, x, (h, c))
    torch.testing.assert_close(g["c"], g["f"] * c + g["i"] * g["g"])
    torch.testing.assert_close(g["h"], g["o"] * torch.tanh(g["c"]))
    assert all(((g[k] > 0) & (g[k] < 1)).all() for k in "ifo")


STACKS = [(rnn.RNN, nn.RNN), (rnn.LSTM, nn.LSTM), (rnn.GRU, nn.GRU)]


@pytest.mark.parametrize("ours_cls,torch_cls", STACKS)
def test_stack_outputs_and_gradients_equal_torch(ours_cls, torch_cls):
    torch.manual_seed(0)
    ref = torch_cls(5, 6, num_layers=3, batch_first=True).double()
    ours = ours_cls(5, 6, num_layers=3).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 9, 5, dtype=torch.double, requires_grad=True)
    if ours_cls is rnn.LSTM:
        hx = (torch.randn(3, 2, 6, dtype=torch.double), torch.randn(3, 2, 6, dtype=torch.double))
    else:
        hx = torch.randn(3, 2, 6, dtype=torch.double)
    (ya, sa), (yb, sb) = ours(x, hx), ref(x, hx)
    torch.testing.assert_close(ya, yb)
    torch.testing.assert_close(sa, sb)
    ga = torch.autograd.grad(ya.square().sum(), [x] + list(ours.parameters()))
    gb = torch.autograd.grad(yb.square().sum(), [x] + list(ref.parameters()))
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v)


def test_stack_weights_copy_back_into_torch():
    ours = rnn.LSTM(4, 5, num_layers=2)
    ref = nn.LSTM(4, 5, num_layers=2, batch_first=True)
    ref.load_state_dict(ours.torch_state_dict())
    x = torch.randn(3, 6, 4)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])


def test_wrong_input_size_names_the_sizes():
    with pytest.raises(ValueError, match="input_size=5"):
        rnn.LSTMCell(5, 7)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="input_size=5"):
        rnn.GRU(5, 7)(torch.randn(2, 3, 4))


def test_mismatched_hidden_state_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="hidden_size=7"):
        rnn.LSTMCell(5, 7)(torch.randn(2, 5), (torch.randn(2, 6), torch.randn(2, 7)))
    with pytest.raises(ValueError, match="batch=2"):
        rnn.GRUCell(5, 7)(torch.randn(2, 5), torch.randn(3, 7))
    with pytest.raises(ValueError, match="num_layers=2"):
        rnn.LSTM(5, 7, num_layers=2)(torch.randn(2, 3, 5), (torch.zeros(1, 2, 7), torch.zeros(1, 2, 7)))
    with pytest.raises(ValueError, match="tuple"):
        rnn.LSTMCell(5, 7)(torch.randn(2, 5), torch.randn(2, 7))


def test_bad_constructor_arguments_raise_value_error():
    with pytest.raises(ValueError, match="hidden_size"):
        rnn.LSTMCell(5, 0)
    with pytest.raises(ValueError, match="nonlinearity"):
        rnn.RNNCell(5, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="batch_first"):
        rnn.LSTM(5, 3, batch_first=False)
    with pytest.raises(ValueError, match="dropout"):
        rnn.LSTM(5, 3, dropout=1.5)
    with pytest.raises(ValueError, match="time"):
        rnn.LSTM(5, 3)(torch.randn(2, 5))


# ----------------------------------------------------------------------------- bidirectional and packed stacks

def _torch_and_ours(ours_cls, torch_cls, num_layers=2, bias=True, dropout=0.0, dtype=torch.double, I=4, H=3):
    torch.manual_seed(0)
    ref = torch_cls(I, H, num_layers=num_layers, bias=bias, dropout=dropout, batch_first=True,
                    bidirectional=True).to(dtype).eval()
    ours = ours_cls(I, H, num_layers=num_layers, bias=bias, dropout=dropout, bidirectional=True).to(dtype).eval()
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _random_state(ours_cls, shape, dtype=torch.double):
    if ours_cls is rnn.LSTM:
        return torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)
    return torch.randn(shape, dtype=dtype)


@pytest.mark.parametrize("ours_cls,torch_cls", STACKS)
def test_bidirectional_stack_has_torch_parameter_names_in_torch_order(ours_cls, torch_cls):
    ours, ref = _torch_and_ours(ours_cls, torch_cls)
    assert list(ours.torch_state_dict()) == list(ref.state_dict())  # weight_ih_l0, ..., weight_ih_l0_reverse, ...
    assert [p.shape for p in ours.parameters()] == [p.shape for p in ref.parameters()]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("num_layers,dropout", [(1, 0.0), (2, 0.0), (2, 0.5)])
@pytest.mark.parametrize("ours_cls,torch_cls", STACKS)
def test_bidirectional_stack_outputs_and_final_states_equal_torch(ours_cls, torch_cls, num_layers, dropout, bias,
                                                                  dtype):
    ours, ref = _torch_and_ours(ours_cls, torch_cls, num_layers, bias, dropout, dtype)  # eval: dropout is off
    x = torch.randn(3, 5, 4, dtype=dtype)
    hx = _random_state(ours_cls, (2 * num_layers, 3, 3), dtype)
    for state in (None, hx):
        (ya, sa), (yb, sb) = ours(x, state), ref(x, state)
        assert ya.shape == (3, 5, 6)
        torch.testing.assert_close(ya, yb)
        torch.testing.assert_close(sa, sb)  # (num_layers * 2, B, H), or a pair of them


@pytest.mark.parametrize("ours_cls,torch_cls", STACKS)
def test_bidirectional_stack_gradients_equal_torch(ours_cls, torch_cls):
    ours, ref = _torch_and_ours(ours_cls, torch_cls)
    x = torch.randn(2, 6, 4, dtype=torch.double, requires_grad=True)
    ya, yb = ours(x)[0], ref(x)[0]
    ga = torch.autograd.grad(ya.square().sum(), [x] + list(ours.parameters()))
    gb = torch.autograd.grad(yb.square().sum(), [x] + list(ref.parameters()))
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v)


def test_bidirectional_weights_copy_back_into_torch():
    ours = rnn.GRU(4, 5, num_layers=2, bidirectional=True)
    ref = nn.GRU(4, 5, num_layers=2, batch_first=True, bidirectional=True)
    ref.load_state_dict(ours.torch_state_dict())
    x = torch.randn(3, 6, 4)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("ours_cls,torch_cls", STACKS)
def test_packed_input_gives_torch_packed_output_and_last_real_states(ours_cls, torch_cls, bidirectional):
    torch.manual_seed(0)
    ref = torch_cls(4, 3, num_layers=2, batch_first=True, bidirectional=bidirectional).double()
    ours = ours_cls(4, 3, num_layers=2, bidirectional=bidirectional).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(4, 7, 4, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([3, 7, 1, 5])  # unsorted, as a padded batch comes
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    hx = _random_state(ours_cls, (2 * (1 + bidirectional), 4, 3))
    (pa, sa), (pb, sb) = ours(packed, hx), ref(packed, hx)
    assert isinstance(pa, nn.utils.rnn.PackedSequence)
    torch.testing.assert_close(pa.data, pb.data)
    assert torch.equal(pa.batch_sizes, pb.batch_sizes) and torch.equal(pa.sorted_indices, pb.sorted_indices)
    assert torch.equal(pa.unsorted_indices, pb.unsorted_indices)
    torch.testing.assert_close(sa, sb)  # each row's state at its last real step, in the caller's batch order
    ga = torch.autograd.grad(pa.data.square().sum(), [x] + list(ours.parameters()), retain_graph=True)  # shared packing
    gb = torch.autograd.grad(pb.data.square().sum(), [x] + list(ref.parameters()))
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v)


@pytest.mark.parametrize("ours_cls,torch_cls", STACKS)
def test_lengths_give_zero_outputs_at_padding_and_torch_packed_results(ours_cls, torch_cls):
    ours, ref = _torch_and_ours(ours_cls, torch_cls)
    x = torch.randn(3, 6, 4, dtype=torch.double)
    lengths = torch.tensor([2, 6, 4])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    y_ref, s_ref = ref(packed)
    y, s = ours(x, lengths=lengths)
    torch.testing.assert_close(y, nn.utils.rnn.pad_packed_sequence(y_ref, batch_first=True)[0])
    torch.testing.assert_close(s, s_ref)
    assert (y[0, 2:] == 0).all() and (y[2, 4:] == 0).all()


def test_packed_input_sorted_by_the_caller_keeps_its_layout():
    ours, ref = _torch_and_ours(rnn.LSTM, nn.LSTM)
    x = torch.randn(3, 5, 4, dtype=torch.double)
    packed = nn.utils.rnn.pack_padded_sequence(x, [5, 3, 3], batch_first=True)  # enforce_sorted: no permutation
    (pa, sa), (pb, sb) = ours(packed), ref(packed)
    assert pa.sorted_indices is None
    torch.testing.assert_close(pa.data, pb.data)
    torch.testing.assert_close(sa, sb)


@pytest.mark.parametrize("ours_cls", [rnn.RNN, rnn.LSTM, rnn.GRU])
def test_stack_runs_under_autocast_where_half_precision_activations_are_intended(ours_cls):
    stack = ours_cls(3, 4, num_layers=2, bidirectional=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = stack(torch.randn(2, 5, 3))
    assert y.shape == (2, 5, 8)


def test_dtype_and_length_mistakes_are_clear_errors():
    with pytest.raises(ValueError, match=r"float64.*float32.*input.to\(torch.float32\)"):
        rnn.LSTM(3, 4)(torch.zeros(2, 5, 3, dtype=torch.double))
    with pytest.raises(ValueError, match=r"input has dtype torch.float64"):
        rnn.GRUCell(3, 4)(torch.zeros(2, 3, dtype=torch.double))
    with pytest.raises(ValueError, match="h0 has dtype torch.float64"):
        rnn.GRU(3, 4)(torch.zeros(2, 5, 3), torch.zeros(1, 2, 4, dtype=torch.double))
    with pytest.raises(ValueError, match=r"num_layers\*2=4, batch=2"):
        rnn.GRU(3, 4, num_layers=2, bidirectional=True)(torch.zeros(2, 5, 3), torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match=r"lengths must be in \[1, time=5\], got lengths in \[0, 5\]"):
        rnn.LSTM(3, 4)(torch.zeros(2, 5, 3), lengths=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"lengths must hold one integer length per sequence, shape \(batch=2,\)"):
        rnn.LSTM(3, 4)(torch.zeros(2, 5, 3), lengths=torch.tensor([5]))
    with pytest.raises(ValueError, match="input is empty"):
        rnn.LSTM(3, 4)(torch.zeros(2, 0, 3))
    with pytest.raises(ValueError, match="bidirectional must be True or False, got 'yes'"):
        rnn.LSTM(3, 4, bidirectional="yes")
