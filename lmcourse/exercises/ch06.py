"""Chapter 06 · generation: top-p filtering, one beam-search step with the no-repeat ban, one decoding step of
causal attention with a KV cache.

The chapter shows what each piece does (the sampling explorer, the table of generation options, the cache's
identical tokens and speed) but not its code. Every expected value is computed after the learner's function has
returned, from the checker's own copies of the inputs.
"""

from __future__ import annotations

import math

import torch

from lmcourse.exercises.grading import Wrong, call, exercise, expect_pair, forbidding, generator, same_tensor

ID_TOP_P, ID_BEAM, ID_KV_CACHE = "06.top_p_filter", "06.beam_search_step", "06.kv_cache_step"
# The package's generation code and transformers' logits processors do what these exercises ask: refused while the
# learner's code runs (the checker compares with them afterwards).
GENERATION_REFERENCES = ("lmcourse.generate", "transformers.generation.logits_process",
                         "transformers.generation.beam_search")
# The package's attention and GPT (which own the cache) and torch's fused attention compute what the KV-cache step
# asks for.
ATTENTION_REFERENCES = ("lmcourse.attention", "lmcourse.gpt", "torch.nn.functional.scaled_dot_product_attention",
                        "torch.nn.MultiheadAttention", "torch.nn.functional.multi_head_attention_forward")


@exercise(ID_TOP_P, "top-p (nucleus) filtering", hints=[
    "Section 5's picture greys out what top-p cuts. Sort the probabilities from the most likely down: the nucleus "
    "is the shortest prefix whose mass reaches top_p. Does yours keep the token that crosses top_p, stop exactly "
    "when the mass equals top_p, and keep the most likely token always?",
    "A token is in the nucleus when the tokens more likely than it hold less than top_p. Said from the other end: "
    "a token is cut when it and every less likely token together hold at most 1 - top_p. Decide in sorted order, "
    "then put each decision back at its token's place in the row.",
    "Floats: on a peaked row the most likely token's probability rounds to 1.0 in float32, so a running sum from "
    "the top says nothing is left for the tail and cuts it even at top_p = 1. A sum that starts from the least "
    "likely tokens adds small numbers first and does not lose them.",
])
def check_top_p_filter(top_p_filter) -> None:
    from lmcourse.generate import top_p_filter as reference

    g = generator(ID_TOP_P)
    ties = torch.log(torch.tensor([[0.3, 0.3, 0.3, 0.05, 0.05], [0.05, 0.3, 0.05, 0.3, 0.3]]))
    # Powers of two: their float32 softmax and sums are exact, so the mass of the most likely tokens lands exactly
    # on top_p. The nucleus stops there (transformers' rule); "drop a token once the mass *before* it exceeds
    # top_p" keeps one token too many.
    dyadic = torch.log(torch.tensor([[0.125, 0.5, 0.03125, 0.25, 0.0625, 0.03125],
                                     [0.0625, 0.03125, 0.25, 0.03125, 0.125, 0.5]]))
    cases = [
        ("random logits (4, 50), top_p=0.9", torch.randn(4, 50, generator=g) * 2, 0.9),
        ("top_p=1: every token stays", torch.randn(3, 20, generator=g), 1.0),
        ("top_p=0.01: only the most likely token", torch.randn(3, 20, generator=g) * 3, 0.01),
        ("ties at the top and in the tail, top_p=0.85", ties, 0.85),
        ("the two most likely tokens hold exactly top_p=0.75", dyadic, 0.75),
        ("the most likely token alone holds exactly top_p=0.5", dyadic, 0.5),
        ("top_p=1 on a peaked row (the most likely token's probability rounds to 1 in float32): every token stays",
         torch.cat([torch.tensor([[22.0]]), torch.randn(1, 29, generator=g)], dim=1), 1.0),
        ("a peaked row and a flat row (float64), top_p=0.5",
         torch.stack([torch.randn(30, generator=g) * 8, torch.randn(30, generator=g) * 0.01]).double(), 0.5),
    ]
    for name, logits, top_p in cases:
        with forbidding(*GENERATION_REFERENCES):
            got = call(name, top_p_filter, logits.clone(), top_p)
        same_tensor(name, got, reference(logits, top_p))


def _reference_beam_step(sequences: torch.Tensor, beam_scores: torch.Tensor, log_probs: torch.Tensor,
                        num_beams: int, no_repeat_ngram_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of beam search as `lmcourse.generate` takes it, for one prompt (its beams in the rows)."""
    from lmcourse.generate import apply_no_repeat_ngram

    if no_repeat_ngram_size > 0:
        log_probs = apply_no_repeat_ngram(sequences, log_probs, no_repeat_ngram_size)
    total = (beam_scores[:, None] + log_probs).flatten()           # (beams * V,)
    scores, index = torch.topk(total, num_beams)                    # best first
    vocab = log_probs.shape[1]
    beam, token = index // vocab, index % vocab
    return torch.cat([sequences[beam], token[:, None]], dim=1), scores


def _tie_order(sequences: torch.Tensor, scores: torch.Tensor) -> list[int]:
    """The rows of `sequences` (num_beams, T) best score first, equal scores ordered by their tokens: any order of
    tied continuations compares equal."""
    return sorted(range(len(scores)), key=lambda i: (-float(scores[i]), sequences[i].tolist()))


@exercise(ID_BEAM, "one beam-search step with the no-repeat ban", hints=[
    "Section 4's table runs num_beams=5 with no_repeat_ngram_size=2. A beam's score is the sum of its tokens' "
    "log-probabilities: rank every (beam, next token) pair together, not each beam on its own.",
    "Banned for a beam: every token that followed an earlier occurrence of its last n-1 tokens (none while the "
    "beam has fewer than n-1 tokens). A banned token gets log-probability -inf before anything is ranked.",
    "Rank the (beams, vocab) table of totals once, as one long row: a position in it tells both the beam (its row) "
    "and the token (its column). Keep positions, not values: two equal scores are still two different "
    "continuations.",
])
def check_beam_search_step(beam_step) -> None:
    g = generator(ID_BEAM)
    V = 8

    def case(name: str, sequences: torch.Tensor, num_beams: int, n: int, favour_banned: bool = False,
             tied: bool = False, favour: int | None = None, scores: list[float] | None = None) -> None:
        beams = sequences.shape[0]
        log_probs = torch.randn(beams, V, generator=g).log_softmax(-1)
        if favour_banned:  # make the token that repeats a bigram the most likely one, so ignoring the ban shows
            for b, row in enumerate(sequences.tolist()):
                repeats = [row[i + 1] for i in range(len(row) - 1) if row[i] == row[-1]]
                if repeats:
                    log_probs[b, repeats[0]] = -0.01
        if favour is not None:  # make this token the most likely one in every beam
            log_probs[:, favour] = -0.01
        beam_scores = -torch.rand(beams, generator=g) * 3 if scores is None else torch.tensor(scores)
        if tied:  # beams 0 and 1 score every token alike: each of their continuations ties with the other's
            log_probs[1], beam_scores[1] = log_probs[0], beam_scores[0]
            beam_scores[2:] -= 100  # the others far behind, so no tie straddles the cut-off
        with forbidding(*GENERATION_REFERENCES):
            got = call(name, beam_step, sequences.clone(), beam_scores.clone(), log_probs.clone(), num_beams, n)
        got_seq, got_scores = expect_pair(name, got, "(sequences, scores)")
        want_seq, want_scores = _reference_beam_step(sequences, beam_scores, log_probs, num_beams, n)
        same_tensor(name, got_scores, want_scores, atol=1e-6, what="the new scores")
        if isinstance(got_seq, torch.Tensor) and got_seq.shape == want_seq.shape:  # tied continuations in any order
            got_seq, want_seq = got_seq[_tie_order(got_seq, want_scores)], want_seq[_tie_order(want_seq, want_scores)]
        same_tensor(name, got_seq, want_seq, what="the new sequences")

    case("3 beams, no ban", torch.randint(V, (3, 5), generator=g), 3, 0)
    case("4 beams, no_repeat_ngram_size=2, the repeating token is likely",
         torch.tensor([[1, 2, 3, 1], [4, 5, 4, 6], [2, 2, 3, 2], [7, 1, 7, 3]]), 4, 2, favour_banned=True)
    case("2 beams, no_repeat_ngram_size=3", torch.tensor([[1, 2, 3, 4, 1, 2], [5, 5, 5, 5, 5, 5]]), 2, 3)
    case("beams shorter than n-1: nothing to ban", torch.tensor([[3], [5]]), 2, 3)
    case("keep 2 of 4 beams", torch.randint(V, (4, 3), generator=g), 2, 2)
    case("two beams with equal scores: ties between their continuations",
         torch.tensor([[1, 2, 3], [4, 5, 6], [7, 0, 1]]), 4, 0, tied=True)
    # row 0: the trigram ban is {3} (1 2 was followed by 3), a bigram ban would be {3, 5} (2 was followed by 3 and 5);
    # 5 is made the most likely token and beam 0 scores 0.5 above beam 1, so (beam 0, token 5) is the best
    # continuation by construction (fixed scores, not drawn), and a ban that treats every n as 2 always drops it
    case("no_repeat_ngram_size=3, where the bigram ban would forbid more",
         torch.tensor([[1, 2, 3, 4, 2, 5, 1, 2], [6, 0, 6, 7, 0, 4, 7, 6]]), 2, 3, favour=5, scores=[0.0, -0.5])


@exercise(ID_KV_CACHE, "one decoding step of causal attention with a KV cache", hints=[
    "Section 6: the cache holds the keys and values of the positions before the new token, which is the last "
    "position of the sequence. Causal attention lets a position see every earlier position and itself: which keys "
    "must the new query be scored against, and does your cache hold them when you score?",
    "Grow each cache by one position first, along the positions axis (not the batch or heads axis), then score the "
    "one query against all T + 1 keys, each head on its own, scaled by the width of one head (what each dot "
    "product sums over), and normalise the scores over the keys, never over the heads.",
    "No mask is needed: causality only hides positions after the query, and the cache holds none. Test yourself "
    "as the checker does: attention over the whole sequence, masked, at its last position, must equal your step "
    "from a cache of the earlier positions; build a sequence, run your step from an empty cache position by "
    "position, and compare every output.",
])
def check_kv_cache_step(kv_cache_step) -> None:
    cases = [("the first step: an empty cache (T = 0), batch 2, 4 heads of 8", 2, 4, 0, 8, torch.float32),
             ("T = 5 cached positions, batch 3, 2 heads of 16", 3, 2, 5, 16, torch.float32),
             ("float64, T = 7, batch 2, 3 heads of 4", 2, 3, 7, 4, torch.float64),
             ("T = 20, batch 4, 6 heads of 8, large scores", 4, 6, 20, 8, torch.float32)]
    for i, (name, B, n_head, T, head_dim, dtype) in enumerate(cases):
        g = generator(ID_KV_CACHE, i)
        scale = 3.0 if "large" in name else 1.0
        # queries, keys and values drawn apart (other means) so that mixing them up shows; the earlier positions and
        # the new one separately, so that no tensor here is the grown cache the learner returns
        earlier = [(torch.randn(B, n_head, T, head_dim, generator=g) * scale + shift).to(dtype)
                   for shift in (0.0, 0.5, -1.0)]                       # (B, n_head, T, head_dim) each
        new = [(torch.randn(B, n_head, 1, head_dim, generator=g) * scale + shift).to(dtype)
               for shift in (0.0, 0.5, -1.0)]                           # (B, n_head, 1, head_dim) each
        _kv_cache_case(name, kv_cache_step, earlier, new)


def _kv_cache_case(name: str, kv_cache_step, earlier: list[torch.Tensor], new: list[torch.Tensor]) -> None:
    """earlier: the queries, keys and values (B, n_head, T, head_dim) of the cached positions; new: the new token's
    (B, n_head, 1, head_dim). The learner gets the new q, k, v and the cached keys and values."""
    with forbidding(*ATTENTION_REFERENCES):
        got = call(name, kv_cache_step, *(x.clone() for x in new), earlier[1].clone(), earlier[2].clone())
    if not isinstance(got, tuple) or len(got) != 3:
        raise Wrong(name, f"return a tuple (out, k_cache, v_cache), got {type(got).__name__}")
    out, k_cache, v_cache = got
    # the expected value, only now: causal attention over the whole sequence, in float64, at its last position
    Q, K, V = (torch.cat([before, after], dim=2) for before, after in zip(earlier, new))   # (B, n_head, T + 1, d)
    scores = Q.double() @ K.double().transpose(-2, -1) / math.sqrt(Q.shape[-1])          # (B, n_head, T + 1, T + 1)
    T1 = scores.shape[-1]
    scores = scores.masked_fill(torch.ones(T1, T1, dtype=torch.bool).triu(1), float("-inf"))
    want = (scores.softmax(dim=-1) @ V.double())[:, :, -1:].to(Q.dtype)                  # (B, n_head, 1, head_dim)
    same_tensor(name, k_cache, K, what="the new key cache")
    same_tensor(name, v_cache, V, what="the new value cache")
    atol = 1e-5 if Q.dtype == torch.float32 else 1e-10
    same_tensor(name, out, want, atol=atol, rtol=atol * 10, what="the attention output")
