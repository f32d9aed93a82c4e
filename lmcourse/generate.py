"""Text generation from any model that returns next-token logits: greedy, sampling, beam search.

`generate` follows transformers' `generate` option by option, so the same model with the same
options gives the same tokens (greedy and beam search are tested against it):

- the logits of the last position are *processed* in transformers' order: repetition penalty,
  no-repeat n-gram ban, then (when sampling) temperature, top-k and top-p;
- greedy search takes the arg-max, sampling draws from the softmax;
- beam search keeps the `num_beams` best partial sequences by summed log-probability, and
  finished ones (ending in `eos_token_id`, or at the length limit) by score / length**length_penalty.

A model works here if `model(idx)` returns logits (B, T, vocab), a tuple whose first item is
the logits (as `lmcourse.gpt.GPT`), or an object with `.logits` (as transformers' models).
A model with `new_kv_cache(max_len)` (as `GPT`) is run with a key/value cache (`use_cache=True`): each step
feeds only the new token and reuses the keys and values of the earlier ones, kept in buffers allocated
once for prompt + max_new_tokens positions and written in place.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lmcourse.checks import check_int, check_number, check_token_ids, describe

NEG_INF = -math.inf


# ----------------------------------------------------------------------------------------------
# Logits processors: each takes the tokens so far (N, T) and scores (N, vocab), returns new scores.

def apply_repetition_penalty(ids: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    """Make every token already in `ids` (N, T) less likely: its score s becomes s/penalty if s > 0, else s*penalty."""
    check_number("penalty", penalty, 0, low_open=True, fix="1.0 = off")
    seen = torch.gather(scores, 1, ids)  # (N, T)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, ids, seen)


def banned_ngram_tokens(ids: list[int], ngram_size: int) -> list[int]:
    """Tokens that would repeat an n-gram of `ids`: those that followed the last n-1 tokens before."""
    if len(ids) + 1 < ngram_size:
        return []
    prefix = tuple(ids[len(ids) + 1 - ngram_size:])
    return [ids[i + ngram_size - 1] for i in range(len(ids) - ngram_size + 1)
            if tuple(ids[i:i + ngram_size - 1]) == prefix]


def apply_no_repeat_ngram(ids: torch.Tensor, scores: torch.Tensor, ngram_size: int) -> torch.Tensor:
    """Set to -inf the score of every token that would complete an n-gram already in its row of `ids` (N, T)."""
    check_int("ngram_size", ngram_size)
    scores = scores.clone()
    for row, tokens in enumerate(ids.tolist()):
        banned = banned_ngram_tokens(tokens, ngram_size)
        if banned:
            scores[row, banned] = NEG_INF
    return scores


def top_k_filter(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the `top_k` highest scores of each row (N, vocab) (ties at the cut-off stay), set the rest to -inf."""
    top_k = min(check_int("top_k", top_k), scores.size(-1))
    kth = torch.topk(scores, top_k, dim=-1).values[..., -1:]  # (N, 1)
    return scores.masked_fill(scores < kth, NEG_INF)


def top_p_filter(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability sums to at least `top_p`.

    scores: (N, vocab) logits. Tokens outside the nucleus get -inf; the most likely token always stays.
    """
    check_number("top_p", top_p, 0, 1, low_open=True)
    sorted_scores, order = torch.sort(scores, descending=False)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)  # the unlikely tail whose mass is at most 1 - top_p
    remove[..., -1] = False
    return scores.masked_fill(remove.scatter(1, order, remove), NEG_INF)


def process_scores(ids: torch.Tensor, scores: torch.Tensor, *, do_sample: bool = False, temperature: float = 1.0,
                   top_k: int | None = None, top_p: float | None = None, repetition_penalty: float = 1.0,
                   no_repeat_ngram_size: int = 0) -> torch.Tensor:
    """All the logits processors of `generate`, in transformers' order. ids (N, T), scores (N, vocab) -> (N, vocab)."""
    if repetition_penalty != 1.0:
        scores = apply_repetition_penalty(ids, scores, repetition_penalty)
    if no_repeat_ngram_size > 0:
        scores = apply_no_repeat_ngram(ids, scores, no_repeat_ngram_size)
    if do_sample:
        if temperature != 1.0:
            scores = scores / check_number("temperature", temperature, 0, low_open=True)
        if top_k is not None:
            scores = top_k_filter(scores, top_k)
        if top_p is not None and top_p < 1.0:
            scores = top_p_filter(scores, top_p)
    return scores


# ----------------------------------------------------------------------------------------------
# Running the model

def _logits_of(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple):
        return output[0]
    return output.logits


def block_size_of(model: nn.Module) -> int | None:
    """The longest context `model` accepts (`config.block_size` or `config.n_positions`), or None if unknown."""
    config = getattr(model, "config", None)
    for name in ("block_size", "n_positions", "max_position_embeddings"):
        if config is not None and isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    return None


class _Stepper:
    """Feeds sequences to the model and returns the last position's logits, with a KV cache when it can."""

    def __init__(self, model: nn.Module, use_cache: bool, block_size: int | None, crop_context: bool, max_len: int):
        self.model = model
        self.block_size = block_size
        self.max_len = max_len if block_size is None else min(max_len, block_size)  # the cache's room, allocated once
        self.crop_context = crop_context
        self.can_cache = use_cache and hasattr(model, "new_kv_cache")
        self.cache = None

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:  # ids (N, T) -> logits (N, vocab)
        too_long = self.block_size is not None and ids.size(1) > self.block_size
        if too_long:  # crop_context: slide the window; positions shift, so the cache cannot be reused
            ids, self.cache = ids[:, -self.block_size:], None
        if self.can_cache and not too_long:
            if self.cache is None:
                self.cache = self.model.new_kv_cache(self.max_len)
            new = ids[:, self.cache.length:]  # only the tokens the cache has not seen: (N, T_new)
            logits = _logits_of(self.model(new, kv_cache=self.cache))
        else:
            logits = _logits_of(self.model(ids))
        if logits.ndim != 3:
            raise ValueError(f"model must return next-token logits of shape (batch, time, vocab), got "
                             f"{describe(logits)}; see the module docstring for what a model must return")
        return logits[:, -1, :].float()

    def reorder(self, index: torch.Tensor) -> None:
        """Beam search moved rows around: row i of the cache now holds what was row index[i]."""
        if self.cache is not None:
            self.cache.reorder(index)


def _check_options(model, idx, max_new_tokens, do_sample, temperature, top_k, top_p, num_beams, no_repeat_ngram_size,
                   repetition_penalty, length_penalty, block_size, crop_context, early_stopping, use_cache, seed,
                   eos_token_id) -> torch.Tensor:
    """Check every option once, before the first step; return idx as a LongTensor (int32 prompts are converted)."""
    if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.size(1) < 1:
        raise ValueError(f"idx must be a LongTensor of token ids, shape (batch, prompt_length >= 1), got "
                         f"{describe(idx)}; wrap one prompt as torch.tensor([ids])")
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    vocab_size = vocab_size if isinstance(vocab_size, int) else None
    idx = check_token_ids("idx", idx, vocab_size)
    check_int("max_new_tokens", max_new_tokens, minimum=0)
    for name, flag in (("do_sample", do_sample), ("use_cache", use_cache), ("crop_context", crop_context)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be True or False, got {flag!r}")
    if not isinstance(early_stopping, bool) and early_stopping != "never":
        raise ValueError(f"early_stopping must be True, False or 'never' (as in transformers), got {early_stopping!r}")
    if do_sample:
        check_number("temperature", temperature, 0, low_open=True, fix="use do_sample=False for greedy")
    if top_k is not None:
        check_int("top_k", top_k, fix="or None for no top-k filter")
    if top_p is not None:
        check_number("top_p", top_p, 0, 1, low_open=True)
    check_int("num_beams", num_beams)
    check_int("no_repeat_ngram_size", no_repeat_ngram_size, minimum=0, fix="0 = off")
    check_number("repetition_penalty", repetition_penalty, 0, low_open=True, fix="1.0 = off")
    check_number("length_penalty", length_penalty)
    if seed is not None:
        check_int("seed", seed, minimum=0)
    if eos_token_id is not None:
        check_int("eos_token_id", eos_token_id, 0, None if vocab_size is None else vocab_size - 1,
                  fix="a token id of the model's vocabulary, or None")
    if block_size is not None and not crop_context and idx.size(1) + max_new_tokens > block_size:
        raise ValueError(f"prompt length {idx.size(1)} + max_new_tokens {max_new_tokens} exceeds the model's "
                         f"block_size={block_size}; shorten the prompt, ask for fewer tokens, or pass "
                         "crop_context=True to let the model see only the last block_size tokens")
    return idx


@torch.no_grad()
def generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, do_sample: bool = False,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, num_beams: int = 1,
             no_repeat_ngram_size: int = 0, repetition_penalty: float = 1.0, early_stopping: bool | str = False,
             use_cache: bool = True, seed: int | None = None, eos_token_id: int | None = None,
             length_penalty: float = 1.0, crop_context: bool = False) -> torch.Tensor:
    """Continue the prompts `idx` (B, T) by up to `max_new_tokens` tokens; returns prompt + new tokens (B, T + n).

    do_sample=False: greedy (num_beams=1) or beam search; True: sampling (temperature, top_k, top_p).
    eos_token_id: a token that ends a sequence; rows that finished early are padded with it.
    early_stopping (beam search, as transformers): True stops once num_beams hypotheses have ended; False
        stops when the best running beam, scored at the current length, cannot beat the worst ended one;
        "never" judges that at the longest length still possible, so it stops only when no better
        hypothesis can exist (the canonical beam search; the same as False when length_penalty <= 0).
    crop_context: when prompt + new tokens exceed the model's block size, condition on the last
        block_size tokens only (otherwise a ValueError says so).
    seed: seeds a private random generator for sampling, so a call repeats exactly.
    """
    block_size = block_size_of(model)
    idx = _check_options(model, idx, max_new_tokens, do_sample, temperature, top_k, top_p, num_beams,
                         no_repeat_ngram_size, repetition_penalty, length_penalty, block_size, crop_context,
                         early_stopping, use_cache, seed, eos_token_id)
    if max_new_tokens == 0:
        return idx.clone()
    was_training = model.training
    model.eval()
    try:
        generator = None
        if do_sample:
            generator = torch.Generator(device=idx.device)
            generator.manual_seed(seed if seed is not None else int(torch.randint(2**62, (1,))))
        step = _Stepper(model, use_cache, block_size, crop_context, idx.size(1) + max_new_tokens)
        options = dict(do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p,
                       repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size)
        if num_beams == 1:
            return _greedy_or_sample(step, idx, max_new_tokens, options, eos_token_id, generator)
        return _beam_search(step, idx, max_new_tokens, options, num_beams, eos_token_id, early_stopping,
                            length_penalty, generator)
    finally:
        model.train(was_training)


def _check_not_all_banned(scores: torch.Tensor, ngram_size: int, length: int) -> None:
    """Refuse to go on when the n-gram ban leaves a row (N, vocab) no token at all (it would emit a banned one).

    Called only with no_repeat_ngram_size > 0, whose ban already reads the ids on the CPU every step.
    """
    if bool(torch.isneginf(scores).all(dim=-1).any()):
        raise ValueError(f"no_repeat_ngram_size={ngram_size} bans every token of the vocabulary after {length} "
                         "tokens (each one would repeat an n-gram already generated); use a larger "
                         "no_repeat_ngram_size, fewer max_new_tokens, or no_repeat_ngram_size=0")


def _greedy_or_sample(step: _Stepper, ids: torch.Tensor, max_new_tokens: int, options: dict,
                      eos_token_id: int | None, generator: torch.Generator | None) -> torch.Tensor:
    finished = torch.zeros(ids.size(0), dtype=torch.bool, device=ids.device)
    for _ in range(max_new_tokens):
        scores = process_scores(ids, step(ids), **options)  # (B, vocab)
        if options["no_repeat_ngram_size"]:
            _check_not_all_banned(scores, options["no_repeat_ngram_size"], ids.size(1))
        if options["do_sample"]:
            next_token = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
        else:
            next_token = scores.argmax(dim=-1)
        if eos_token_id is not None:
            next_token = torch.where(finished, eos_token_id, next_token)  # finished rows are padded
            finished |= next_token == eos_token_id
        ids = torch.cat([ids, next_token[:, None]], dim=1)
        if finished.all():
            break
    return ids


def _beam_search(step: _Stepper, ids: torch.Tensor, max_new_tokens: int, options: dict, num_beams: int,
                 eos_token_id: int | None, early_stopping: bool | str, length_penalty: float,
                 generator: torch.Generator | None) -> torch.Tensor:
    """Beam search as transformers does it (vectorised over the batch): B prompts, each with num_beams beams.

    Every step scores all num_beams * vocab continuations by summed log-probability, keeps the best
    2 * num_beams (enough to go on even if num_beams of them end), continues the num_beams best that did
    not end, and offers those that ended to a pool of finished hypotheses, scored by sum / length**length_penalty.
    """
    batch, prompt_len = ids.shape
    max_len = prompt_len + max_new_tokens
    device = ids.device
    keep = 2 * num_beams
    top_mask = torch.arange(keep, device=device) < num_beams  # only the best num_beams may enter the pool
    pad = eos_token_id if eos_token_id is not None else -1

    running = torch.full((batch, num_beams, max_len), pad, dtype=torch.long, device=device)
    running[:, :, :prompt_len] = ids[:, None, :]
    running_scores = torch.full((batch, num_beams), -1e9, device=device)
    running_scores[:, 0] = 0.0  # all beams start equal: let only the first one expand at step one
    finished = running.clone()
    finished_scores = torch.full((batch, num_beams), -1e9, device=device)
    finished_lengths = torch.full((batch, num_beams), prompt_len, dtype=torch.long, device=device)
    is_finished = torch.zeros((batch, num_beams), dtype=torch.bool, device=device)
    can_improve = torch.ones((batch, 1), dtype=torch.bool, device=device)

    cur_len = prompt_len
    while True:
        flat = running[:, :, :cur_len].reshape(batch * num_beams, cur_len)
        log_probs = process_scores(flat, step(flat).log_softmax(dim=-1), **options)  # (B*beams, vocab)
        vocab = log_probs.size(-1)
        total = (log_probs.view(batch, num_beams, vocab) + running_scores[:, :, None]).view(batch, -1)
        if options["no_repeat_ngram_size"]:
            _check_not_all_banned(total, options["no_repeat_ngram_size"], cur_len)

        if options["do_sample"]:
            top_index = torch.multinomial(total.softmax(dim=-1), keep, generator=generator)
            top_scores = total.gather(1, top_index)
        else:
            top_scores, top_index = torch.topk(total, keep)  # (B, 2*beams)
        from_beam, token = top_index // vocab, top_index % vocab
        candidates = running.gather(1, from_beam[:, :, None].expand(-1, -1, max_len)).clone()
        candidates[:, :, cur_len] = token

        ends = torch.zeros_like(top_scores, dtype=torch.bool) if cur_len + 1 < max_len else torch.ones_like(
            top_scores, dtype=torch.bool)
        if eos_token_id is not None:
            ends |= token == eos_token_id

        # continue with the best num_beams candidates that did not end
        alive_scores = top_scores - 1e9 * ends.float()
        best = torch.topk(alive_scores, num_beams).indices  # (B, beams)
        running = candidates.gather(1, best[:, :, None].expand(-1, -1, max_len))
        running_scores = alive_scores.gather(1, best)
        beam_origin = from_beam.gather(1, best) + torch.arange(batch, device=device)[:, None] * num_beams
        step.reorder(beam_origin.view(-1))

        # offer the candidates that ended to the pool of finished hypotheses
        new_len = cur_len + 1 - prompt_len
        offered = top_scores / new_len ** length_penalty
        pool_full = is_finished.all(dim=-1, keepdim=True) & (early_stopping is True)
        just_ended = ends & top_mask
        offered = offered - 1e9 * (pool_full | ~can_improve | ~just_ended).float()
        merged = torch.cat([finished, candidates], dim=1)
        merged_scores = torch.cat([finished_scores, offered], dim=1)
        merged_lengths = torch.cat([finished_lengths, torch.full_like(top_scores, cur_len + 1, dtype=torch.long)], 1)
        merged_is_finished = torch.cat([is_finished, just_ended], dim=1)
        pick = torch.topk(merged_scores, num_beams).indices
        finished = merged.gather(1, pick[:, :, None].expand(-1, -1, max_len))
        finished_scores = merged_scores.gather(1, pick)
        finished_lengths = merged_lengths.gather(1, pick)
        is_finished = merged_is_finished.gather(1, pick)

        cur_len += 1
        # can a running beam still beat the worst finished one? transformers' heuristic judges it at this length;
        # early_stopping="never" at the longest length still possible (exact when length_penalty > 0)
        judged_len = max_len if early_stopping == "never" and length_penalty > 0 else cur_len
        best_possible = running_scores[:, :1] / (judged_len - prompt_len) ** length_penalty
        worst_finished = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True).values, -1e9)
        can_improve &= (best_possible > worst_finished).any(dim=-1, keepdim=True)
        all_done = bool(is_finished.all()) and early_stopping is True
        if not can_improve.any() or all_done or bool(ends.all()):
            break

    best = finished[:, 0, :]  # the pool is sorted best first
    return best[:, :int(finished_lengths[:, 0].max())]
