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
