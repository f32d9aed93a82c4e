"""A synthetic language with a known entropy rate, to see how close a model can get."""

from __future__ import annotations

import numpy as np

from lmcourse.checks import check_int, check_number, describe


class MarkovSource:
    """A random order-`order` Markov chain over the tokens 0..vocab_size-1.

    Each context (the last `order` tokens) gets its own next-token distribution, drawn from a
    Dirichlet(concentration) prior: small concentrations give peaky, predictable text.
    Because the chain is known, its entropy rate (the best cross-entropy any model can reach)
    is computed exactly.
    """

    MAX_CONTEXTS = 2**20

    def __init__(self, vocab_size: int, order: int = 1, seed: int = 0, concentration: float = 0.5):
        check_int("vocab_size", vocab_size, minimum=2)
        check_int("order", order, minimum=0)
        if vocab_size**order > self.MAX_CONTEXTS:
            raise ValueError(f"vocab_size**order = {vocab_size}**{order} contexts is too many "
                             f"(limit {self.MAX_CONTEXTS}); lower vocab_size or order")
        check_number("concentration", concentration, 0, low_open=True, fix="e.g. 0.5 (small: peaky, predictable text)")
        check_int("seed", seed, minimum=0)
        self.vocab_size, self.order, self.seed = vocab_size, order, seed
        self.n_contexts = vocab_size**order
        rng = np.random.default_rng(seed)
        probs = rng.dirichlet(np.full(vocab_size, concentration), size=self.n_contexts)  # (contexts, vocab)
        probs = np.maximum(probs, 1e-12)  # keep every transition possible, so the chain is ergodic
        self.transition = probs / probs.sum(axis=1, keepdims=True)
        self._stationary: np.ndarray | None = None

    def next_context(self, context: np.ndarray, token: np.ndarray) -> np.ndarray:
        """Context index after emitting `token`: drop the oldest token, append the new one (base vocab_size)."""
        return (context * self.vocab_size + token) % self.n_contexts

    def stationary(self) -> np.ndarray:
        """The long-run probability of each context, shape (n_contexts,), by power iteration."""
        if self._stationary is None:
            contexts = np.arange(self.n_contexts)[:, None]
            successors = self.next_context(contexts, np.arange(self.vocab_size)[None, :]).ravel()
            pi = np.full(self.n_contexts, 1.0 / self.n_contexts)
            for _ in range(100_000):
                new = np.bincount(successors, weights=(pi[:, None] * self.transition).ravel(),
                                  minlength=self.n_contexts)
                done = np.abs(new - pi).sum() < 1e-14
                pi = new
                if done:
                    break
            self._stationary = pi / pi.sum()
        return self._stationary

    def entropy_rate(self) -> float:
        """Exact entropy rate in nats/token: sum over contexts c of pi(c) * H(next token | c)."""
        p = self.transition
        conditional_entropy = -(p * np.log(p)).sum(axis=1)
        return float(self.stationary() @ conditional_entropy)

    def block_entropy(self, n: int) -> float:
        """Exact entropy H(X_1..X_n) in nats of n consecutive tokens of the stationary chain.

        The floor for a model that scores windows of n tokens with no context before them: the first
        `order` tokens cost the entropy of their stationary distribution, each later one the entropy rate.
        """
        check_int("n", n, fix="the number of consecutive tokens")
        k = min(n, self.order)
        pi = self.stationary().reshape((self.vocab_size,) * self.order) if self.order else np.ones(1)
        first = pi.sum(axis=tuple(range(k, self.order))).ravel()   # the first k tokens' joint law (oldest first)
        first = first[first > 0]
        return float(-(first * np.log(first)).sum() + max(0, n - self.order) * self.entropy_rate())

    def sample(self, n: int, seed: int | None = None) -> list[int]:
        """`n` tokens from the chain, started from its stationary distribution (so no burn-in is needed)."""
        check_int("n", n)
        if seed is not None:
            check_int("seed", seed, minimum=0)
        rng = np.random.default_rng(seed)
        context = int(rng.choice(self.n_contexts, p=self.stationary()))
        tokens = [(context // self.vocab_size**i) % self.vocab_size for i in reversed(range(self.order))]
        cdf = np.cumsum(self.transition, axis=1)
        uniforms = rng.random(n)
        last = self.vocab_size - 1
        for u in uniforms[: max(0, n - self.order)]:
            token = min(int(np.searchsorted(cdf[context], u, side="right")), last)
            tokens.append(token)
            context = (context * self.vocab_size + token) % self.n_contexts
        return tokens[:n]

    def log_probs(self, tokens: list[int]) -> np.ndarray:
        """ln P(token | context) under the true chain for each token after the first `order`,
        shape (len(tokens) - order,): the per-token floor a model's log-probabilities compare with."""
        try:
            x = np.asarray(tokens)
        except ValueError:                          # ragged nested lists
            x = np.empty((0, 0))
        if x.ndim != 1:
            raise ValueError(f"tokens must be a flat sequence of token ids, got {describe(tokens)} "
                             f"(numpy shape {x.shape}); pass the list that sample() returns")
        if len(x) <= self.order:
            raise ValueError(f"tokens must be a flat sequence longer than order={self.order}, got {len(x)} tokens")
        if not np.issubdtype(x.dtype, np.integer):  # floats would be truncated to ids silently
            raise ValueError(f"tokens must be integer token ids in [0, {self.vocab_size}), got dtype {x.dtype} "
                             f"(e.g. {x[0]!r}); pass the ids that sample() returns")
        if x.min() < 0 or x.max() >= self.vocab_size:
            raise ValueError(f"tokens must lie in [0, {self.vocab_size}), got values {x.min()}..{x.max()}")
        contexts = np.zeros(len(x) - self.order, dtype=np.int64)
        for i in range(self.order):
            contexts = contexts * self.vocab_size + x[i: len(x) - self.order + i]
        return np.log(self.transition[contexts, x[self.order:]])

    def cross_entropy(self, tokens: list[int]) -> float:
        """Average -log P(token | context) in nats under the true chain, over tokens after the first `order`."""
        return float(-self.log_probs(tokens).mean())
