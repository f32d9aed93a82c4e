"""Chapter 06 · generation: top-p filtering, one beam-search step with the no-repeat ban, repetition penalty."""

from __future__ import annotations

import torch

from lmcourse.exercises.grading import call, exercise, expect_pair, forbidding, generator, same_tensor

ID_TOP_P, ID_BEAM, ID_PENALTY = "06.top_p_filter", "06.beam_search_step", "06.repetition_penalty"
# The package's generation code and transformers' logits processors do what these exercises ask: refused while the
# learner's code runs (the checker compares with them afterwards).
GENERATION_REFERENCES = ("lmcourse.generate", "transformers.generation.logits_process",
                         "transformers.generation.beam_search")


@exercise(ID_TOP_P, "top-p (nucleus) filtering", hints=[
    "Sort the probabilities from the most likely down: the nucleus is the shortest prefix whose mass reaches "
    "top_p. Does your prefix include the token that crosses top_p? The most likely token always stays.",
    "probs, order = logits.softmax(-1).sort(descending=True, dim=-1); mass_before = probs.cumsum(-1) - probs "
    "(the mass of the more likely tokens); keep a token while mass_before < top_p.",
    "keep_sorted = mass_before < top_p; keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted); "
    "return logits.masked_fill(~keep, float('-inf')).",
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
    "A beam's score is the sum of its tokens' log-probabilities. Rank every (beam, next token) pair together, "
    "not each beam on its own; a token that would complete an n-gram the beam already contains is banned first.",
    "Banned for a beam: every token that followed an earlier occurrence of its last n-1 tokens (none while the "
    "beam has fewer than n-1 tokens). Set their log-probs to -inf; total = beam_scores[:, None] + log_probs.",
    "scores, index = torch.topk(total.flatten(), num_beams); beam, token = index // V, index % V; "
    "return torch.cat([sequences[beam], token[:, None]], 1), scores.",
])
def check_beam_search_step(beam_step) -> None:
    g = generator(ID_BEAM)
    V = 8

    def case(name: str, sequences: torch.Tensor, num_beams: int, n: int, favour_banned: bool = False,
             tied: bool = False) -> None:
        beams = sequences.shape[0]
        log_probs = torch.randn(beams, V, generator=g).log_softmax(-1)
        if favour_banned:  # make the token that repeats a bigram the most likely one, so ignoring the ban shows
            for b, row in enumerate(sequences.tolist()):
                repeats = [row[i + 1] for i in range(len(row) - 1) if row[i] == row[-1]]
                if repeats:
                    log_probs[b, repeats[0]] = -0.01
        beam_scores = -torch.rand(beams, generator=g) * 3
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


@exercise(ID_PENALTY, "repetition penalty", hints=[
    "A penalty > 1 must make every token already in the row less likely, whatever the sign of its score, and "
    "only once per token however often it appeared.",
    "Divide a positive score by the penalty, multiply a negative one by it (dividing a negative score would "
    "raise it). Tokens not in ids keep their scores.",
    "seen = scores.gather(1, ids); seen = torch.where(seen < 0, seen * penalty, seen / penalty); "
    "return scores.scatter(1, ids, seen).",
])
def check_repetition_penalty(repetition_penalty) -> None:
    from lmcourse.generate import apply_repetition_penalty

    g = generator(ID_PENALTY)
    cases = [
        ("positive and negative scores, penalty 1.3", torch.randint(10, (2, 4), generator=g), 1.3),
        ("a token repeated three times, penalty 2", torch.tensor([[3, 3, 3, 1], [0, 9, 9, 2]]), 2.0),
        ("penalty 1: nothing changes", torch.randint(10, (2, 5), generator=g), 1.0),
        ("empty context (T = 0)", torch.zeros(2, 0, dtype=torch.long), 1.5),
    ]
    for name, ids, penalty in cases:
        scores = torch.randn(ids.shape[0], 10, generator=g) * 2
        with forbidding(*GENERATION_REFERENCES):
            got = call(name, repetition_penalty, ids.clone(), scores.clone(), penalty)
        same_tensor(name, got, apply_repetition_penalty(ids, scores, penalty))
