import itertools

import numpy as np
import pytest

from lmcourse.data import MarkovSource


def direct_entropy_rate(source: MarkovSource) -> float:
    """Entropy rate from the eigenvector of the full context-to-context matrix (a different method)."""
    V, k = source.vocab_size, source.order
    contexts = list(itertools.product(range(V), repeat=k))
    index = {c: i for i, c in enumerate(contexts)}
    P = np.zeros((len(contexts), len(contexts)))
    for c in contexts:
        for x in range(V):
            P[index[c], index[(c + (x,))[1:]]] += source.transition[index[c], x]
    values, vectors = np.linalg.eig(P.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    pi /= pi.sum()
    H = -(source.transition * np.log(source.transition)).sum(axis=1)
    return float(pi @ H)


@pytest.mark.parametrize("vocab_size, order", [(3, 1), (4, 2), (2, 3)])
def test_entropy_rate_matches_direct_computation(vocab_size, order):
    source = MarkovSource(vocab_size, order, seed=1)
    assert source.entropy_rate() == pytest.approx(direct_entropy_rate(source), abs=1e-9)


def test_order_zero_source_is_iid_with_its_plain_entropy():
    source = MarkovSource(5, 0, seed=2)
    p = source.transition[0]
    assert source.entropy_rate() == pytest.approx(-(p * np.log(p)).sum())


def test_long_sample_cross_entropy_approaches_the_entropy_rate():
    source = MarkovSource(6, 2, seed=3)
    tokens = source.sample(200_000, seed=0)
    assert source.cross_entropy(tokens) == pytest.approx(source.entropy_rate(), abs=0.02)


def test_sample_has_length_n_and_valid_tokens():
    tokens = MarkovSource(7, 2, seed=0).sample(1000, seed=5)
    assert len(tokens) == 1000 and min(tokens) >= 0 and max(tokens) < 7


def test_sample_is_reproducible_with_a_seed():
    source = MarkovSource(5, 1, seed=0)
    assert source.sample(500, seed=9) == source.sample(500, seed=9)
    assert source.sample(500, seed=9) != source.sample(500, seed=10)


def test_lower_concentration_gives_lower_entropy():
    peaky, flat = MarkovSource(10, 1, seed=0, concentration=0.1), MarkovSource(10, 1, seed=0, concentration=10)
    assert peaky.entropy_rate() < flat.entropy_rate() < np.log(10)


@pytest.mark.parametrize("kwargs, match", [({"vocab_size": 1}, "vocab_size"), ({"vocab_size": 4, "order": -1}, "order"),
                                           ({"vocab_size": 100, "order": 5}, "too many"),
                                           ({"vocab_size": 4, "concentration": 0}, "concentration")])
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MarkovSource(**kwargs)


def test_cross_entropy_rejects_out_of_range_tokens():
    with pytest.raises(ValueError, match="tokens must lie"):
        MarkovSource(3, 1).cross_entropy([0, 1, 5])


@pytest.mark.parametrize("tokens, match", [
    ([0, 1.7, 2], r"integer token ids in \[0, 3\), got dtype float64"),   # would be truncated to [0, 1, 2]
    ([True, False, True], "dtype bool"), ("012", "flat sequence of token ids, got a str"),
    ([[0, 1], [2]], "flat sequence of token ids, got a list"), ([], "longer than order=1, got 0 tokens")])
def test_cross_entropy_refuses_tokens_that_are_not_a_flat_list_of_ids(tokens, match):
    with pytest.raises(ValueError, match=match):
        MarkovSource(3, 1).cross_entropy(tokens)


def test_log_probs_are_the_chain_transitions_of_each_token_after_the_first_order():
    source = MarkovSource(3, 2, seed=4)
    tokens = [2, 0, 1, 1, 2, 0]
    # context index of (a, b) is a * V + b (oldest first): the closed form, one token at a time
    expected = [np.log(source.transition[a * 3 + b, c]) for a, b, c in zip(tokens, tokens[1:], tokens[2:])]
    np.testing.assert_allclose(source.log_probs(tokens), expected, rtol=1e-12)
    assert source.cross_entropy(tokens) == pytest.approx(-np.mean(expected))


def test_log_probs_of_an_order_zero_source_are_its_token_probabilities():
    source = MarkovSource(4, 0, seed=1)
    np.testing.assert_allclose(source.log_probs([3, 0, 0]), np.log(source.transition[0, [3, 0, 0]]), rtol=1e-12)


def test_log_probs_refuses_what_cross_entropy_refuses():
    with pytest.raises(ValueError, match="tokens must lie"):
        MarkovSource(3, 1).log_probs([0, 1, 5])


@pytest.mark.parametrize("n", [0, 2.0, True])
def test_block_entropy_refuses_a_window_that_is_not_a_positive_int(n):
    with pytest.raises(ValueError, match=f"n must be an int >= 1, got {n!r}"):
        MarkovSource(3, 1).block_entropy(n)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_block_entropy_is_the_mean_true_log_loss_of_sampled_windows(order):
    source = MarkovSource(4, order, seed=1)
    n, windows = 6, 20_000
    rng = np.random.default_rng(0)
    cdf = np.cumsum(source.transition, axis=1)
    first = rng.choice(source.n_contexts, size=windows, p=source.stationary())   # stationary start
    logp = np.log(source.stationary()[first]) if order else np.zeros(windows)
    context = first
    for _ in range(n - order):
        token = np.minimum((rng.random(windows)[:, None] > cdf[context]).sum(1), 3)
        logp += np.log(source.transition[context, token])
        context = source.next_context(context, token)
    assert source.block_entropy(n) == pytest.approx(-logp.mean(), abs=4 * logp.std() / windows**0.5)  # 4 standard errors
    assert source.block_entropy(n + 1) - source.block_entropy(n) == pytest.approx(source.entropy_rate())
