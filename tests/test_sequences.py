import math

import pytest
import torch

from lmcourse.sequences import Windows, cross_entropy, random_windows, token_log_probs


def test_random_windows_give_targets_shifted_by_one():
    ids = torch.arange(100)
    x, y = next(random_windows(ids, block_size=8, batch_size=4, seed=0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y, x + 1)


def test_random_windows_repeat_with_the_same_seed():
    a, b = random_windows(range(50), 5, 3, seed=1), random_windows(range(50), 5, 3, seed=1)
    assert torch.equal(next(a)[0], next(b)[0])


def test_random_windows_need_more_tokens_than_the_block():
    with pytest.raises(ValueError, match="block_size"):
        next(random_windows(range(5), block_size=5, batch_size=1))


def test_uniform_model_scores_log_vocab_size():
    ids = torch.randint(10, (257,))
    assert cross_entropy(lambda x: torch.zeros(*x.shape, 10), ids, block_size=16) == pytest.approx(math.log(10))


def test_cross_entropy_scores_every_next_token_once():
    """A model that knows the bigram table exactly: the score equals the direct average over all pairs."""
    torch.manual_seed(0)
    table = torch.randn(5, 5)
    ids = torch.randint(5, (101,))
    direct = torch.nn.functional.cross_entropy(table[ids[:-1]], ids[1:]).item()
    for block_size in (1, 7, 100, 500):
        assert cross_entropy(lambda x: table[x], ids, block_size, batch_size=3) == pytest.approx(direct, rel=1e-6)


def test_token_log_probs_restart_the_context_at_every_window():
    """A model that reads only how far into its window a token is: the scores show the window boundaries."""
    ids = torch.randint(4, (11,))

    def position_model(x):
        return torch.arange(x.shape[1]).float()[None, :, None].expand(*x.shape, 4) * torch.tensor([1., 0, 0, 0])

    log_p = token_log_probs(position_model, ids, block_size=4)
    assert log_p.shape == (10,)
    expected = torch.log_softmax(torch.arange(4).float()[:, None] * torch.tensor([1., 0, 0, 0]), -1)   # (position, token)
    positions = torch.arange(10) % 4
    assert torch.allclose(log_p, expected[positions, ids[1:]])
    assert cross_entropy(position_model, ids, 4) == pytest.approx(-log_p.double().mean().item())


def test_a_sliding_window_scores_each_token_once_with_at_least_block_size_minus_stride_before_it():
    ids = torch.randint(4, (11,))

    def position_model(x):
        return torch.arange(x.shape[1]).float()[None, :, None].expand(*x.shape, 4) * torch.tensor([1., 0, 0, 0])

    log_p = token_log_probs(position_model, ids, block_size=4, stride=2, batch_size=2)
    expected = torch.log_softmax(torch.arange(4).float()[:, None] * torch.tensor([1., 0, 0, 0]), -1)
    positions = torch.tensor([0, 1, 2, 3, 2, 3, 2, 3, 2, 3])   # the first window whole, then its last 2 positions
    assert torch.allclose(log_p, expected[positions, ids[1:]])
    assert torch.equal(token_log_probs(position_model, ids, 4, stride=4), token_log_probs(position_model, ids, 4))
    table = torch.randn(4, 4)
    for stride in (1, 3):  # a model without context: the same as scoring every token once, in any windows
        assert torch.allclose(token_log_probs(lambda x: table[x], ids, 4, stride=stride),
                              torch.log_softmax(table[ids[:-1]], -1).gather(1, ids[1:, None])[:, 0])


def test_cross_entropy_rejects_2d_ids():
    with pytest.raises(ValueError, match="1-D"):
        cross_entropy(lambda x: x, torch.zeros(2, 3, dtype=torch.long), 4)


@pytest.mark.parametrize("call", [lambda: next(random_windows([], 4, 2)), lambda: Windows([], 4),
                                  lambda: cross_entropy(lambda x: x, [], 4)])
def test_empty_ids_are_a_clear_error(call):
    with pytest.raises(ValueError, match="ids is empty"):
        call()


def test_windows_cover_the_stream_without_overlap():
    windows = Windows(torch.arange(21), block_size=5)
    assert len(windows) == 4
    x, y = windows[1]
    assert x.tolist() == [5, 6, 7, 8, 9] and y.tolist() == [6, 7, 8, 9, 10]


def test_windows_iterate_to_the_last_window_and_stop():
    windows = Windows(torch.arange(21), block_size=5)
    assert [x.tolist() for x, _ in windows] == [windows[i][0].tolist() for i in range(len(windows))]
    with pytest.raises(IndexError, match="4 windows"):
        windows[4]


def test_windows_reject_a_block_longer_than_the_stream():
    with pytest.raises(ValueError, match="block_size"):
        Windows(torch.arange(5), block_size=5)


def test_consecutive_windows_continue_each_row_and_flag_restarts():
    from lmcourse.sequences import consecutive_windows
    ids = torch.arange(1001)
    stream = consecutive_windows(ids, block_size=10, batch_size=4)  # 4 parts of 250 tokens, 25 windows each
    batches = [next(stream) for _ in range(26)]
    (x0, y0, f0), (x1, _, f1) = batches[0], batches[1]
    assert torch.equal(y0, x0 + 1) and torch.equal(x1[:, 0], x0[:, -1] + 1)  # row b of window 1 continues window 0
    assert torch.equal(x0[:, 0], torch.arange(4) * 250)
    assert bool(f0) and not bool(f1) and bool(batches[25][2]) and torch.equal(batches[25][0], x0)


def test_consecutive_windows_need_enough_tokens():
    from lmcourse.sequences import consecutive_windows
    with pytest.raises(ValueError, match="too few"):
        next(consecutive_windows(range(30), block_size=10, batch_size=4))
