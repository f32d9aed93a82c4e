"""Text generation from any model that returns next-token logits: greedy, sampling, beam search.

`generate` follows transformers' `generate` option by option, so the same model with the same
options gives the same tokens (each option is tested against it; sampling with the same seed):

- the logits of the last position are *processed* in transformers' order: repetition penalty,
  no-repeat n-gram ban, bad words, min_new_tokens, then (when sampling) temperature, top-k, top-p,
  min-p and typical-p;
- greedy search takes the arg-max, sampling draws from the softmax;
- beam search keeps the `num_beams` best partial sequences by summed log-probability, and
  finished ones (ending in `eos_token_id`, or at the length limit) by score / length**length_penalty.

The options live in one `GenerationConfig` (transformers' names), checked once when it is built:
`generate(model, idx, 40, do_sample=True, top_p=0.9)` and `generate(model, idx, generation_config=config)`
are the same call.

A model works here if `model(idx)` returns logits (B, T, vocab), a tuple whose first item is
the logits (as `lmcourse.gpt.GPT`), or an object with `.logits` (as transformers' models).
An `lmcourse.gpt.GPT` is asked for the last position's logits only (`logits_to_keep=1`), with or without the
cache, so its output head runs once per step; other models return every position's and the last is kept.
A model with `new_kv_cache(max_len)` (as `GPT`) is run with a key/value cache (`use_cache=True`): each step
feeds only the new token and reuses the keys and values of the earlier ones, kept in buffers allocated
once for prompt + max_new_tokens positions and written in place. A `lmcourse.charlm.CharLSTM`'s cache is
its carried state (h, c): the same loop samples from it at O(1) work per new character.
Prompts of different lengths go in one batch left-padded, with an `attention_mask` (1 = real token, as a
tokenizer with padding_side="left" returns it); the model must then accept `attention_mask` (and gets
`position_ids` too if its forward takes them, as transformers' models do).
There is one `generate` function rather than a `GPT.generate` method, because the same loop serves every
model of the course (GPT, LSTMs, transformers' models), so each decoding idea is written once.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lmcourse.checks import check_int, check_number, check_token_ids, describe
from lmcourse.gpt import GPT

NEG_INF = -math.inf


# ----------------------------------------------------------------------------------------------
# Logits processors: each takes the tokens so far (N, T) and scores (N, vocab), returns new scores.

def _check_rows(ids: torch.Tensor, scores: torch.Tensor) -> None:
    """ids (N, T) and scores (N, vocab) must describe the same N sequences (gather would silently use fewer)."""
    if ids.ndim != 2 or scores.ndim != 2 or ids.size(0) != scores.size(0):
        raise ValueError(f"ids (N, T) and scores (N, vocab) must have one row per sequence, got ids of shape "
                         f"{tuple(ids.shape)} and scores of shape {tuple(scores.shape)}; pass the scores of the "
                         "last position only, one row for each row of ids")


def apply_repetition_penalty(ids: torch.Tensor, scores: torch.Tensor, penalty: float,
                             n_pads: torch.Tensor | None = None) -> torch.Tensor:
    """Make every token already in `ids` (N, T) less likely: its score s becomes s/penalty if s > 0, else s*penalty.

    n_pads: (N,) how many leading positions of each row are left padding, not text (they are not penalised).
    """
    check_number("penalty", penalty, 0, low_open=True, fix="1.0 = off")
    _check_rows(ids, scores)
    vocab = scores.size(-1)
    if n_pads is not None:  # as transformers: padding points at one extra column, dropped at the end
        is_pad = torch.arange(ids.size(1), device=ids.device) < n_pads[:, None]
        ids, scores = ids.masked_fill(is_pad, vocab), F.pad(scores, (0, 1))
    try:
        seen = torch.gather(scores, 1, ids)  # (N, T)
    except RuntimeError:  # float ids or ids outside the vocabulary: name the mistake (free when right)
        check_token_ids("ids", ids, vocab)
        raise
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, ids, seen)[:, :vocab]


def banned_ngram_tokens(ids: list[int], ngram_size: int) -> list[int]:
    """Tokens that would repeat an n-gram of `ids` (one sequence): those that followed the last n-1 tokens before."""
    check_int("ngram_size", ngram_size)
    if isinstance(ids, torch.Tensor):
        if ids.ndim != 1:
            raise ValueError(f"ids must be one sequence of token ids, got a tensor of shape {tuple(ids.shape)}; "
                             "call it on each row, or use apply_no_repeat_ngram for a batch")
        ids = ids.tolist()
    if len(ids) + 1 < ngram_size:
        return []
    prefix = tuple(ids[len(ids) + 1 - ngram_size:])
    return [ids[i + ngram_size - 1] for i in range(len(ids) - ngram_size + 1)
            if tuple(ids[i:i + ngram_size - 1]) == prefix]


def apply_no_repeat_ngram(ids: torch.Tensor, scores: torch.Tensor, ngram_size: int) -> torch.Tensor:
    """Set to -inf the score of every token that would complete an n-gram already in its row of `ids` (N, T)."""
    check_int("ngram_size", ngram_size)
    _check_rows(ids, scores)
    scores = scores.clone()
    for row, tokens in enumerate(ids.tolist()):
        banned = banned_ngram_tokens(tokens, ngram_size)
        if banned:
            scores[row, banned] = NEG_INF
    return scores


def apply_bad_words(ids: torch.Tensor, scores: torch.Tensor, bad_words_ids: list[list[int]]) -> torch.Tensor:
    """Set to -inf the score of each token that would complete a banned sequence at the end of its row of ids (N, T).

    bad_words_ids: token sequences never to generate; a single token is banned everywhere, a longer one
    only where the row already ends with all but its last token.
    """
    _check_rows(ids, scores)
    scores = scores.clone()
    for *prefix, last in bad_words_ids:
        if not prefix:
            scores[:, last] = NEG_INF
        elif len(prefix) <= ids.size(1):
            ends_with_prefix = (ids[:, -len(prefix):] == torch.tensor(prefix, device=ids.device)).all(dim=1)  # (N,)
            scores[ends_with_prefix, last] = NEG_INF
    return scores


def apply_min_new_tokens(ids: torch.Tensor, scores: torch.Tensor, prompt_length: int, min_new_tokens: int,
                         eos_token_id: int) -> torch.Tensor:
    """Forbid `eos_token_id` (score -inf) while fewer than `min_new_tokens` tokens follow the prompt in ids (N, T)."""
    if ids.size(1) - prompt_length >= min_new_tokens:
        return scores
    scores = scores.clone()
    scores[:, eos_token_id] = NEG_INF
    return scores


def _check_scores(scores: torch.Tensor) -> None:
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point():
        raise ValueError(f"scores must be a float tensor of logits (N, vocab), got {describe(scores)}; "
                         "convert with scores.float()")


def top_k_filter(scores: torch.Tensor, top_k: int, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the `top_k` highest scores of each row (N, vocab) (ties at the cut-off stay), set the rest to -inf.

    min_tokens_to_keep: keep at least this many whatever top_k says (beam sampling keeps 2).
    """
    _check_scores(scores)
    top_k = max(check_int("top_k", top_k), check_int("min_tokens_to_keep", min_tokens_to_keep))
    kth = torch.topk(scores, min(top_k, scores.size(-1)), dim=-1).values[..., -1:]  # (N, 1)
    return scores.masked_fill(scores < kth, NEG_INF)


def top_p_filter(scores: torch.Tensor, top_p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability sums to at least `top_p`.

    scores: (N, vocab) logits. Tokens outside the nucleus get -inf; the `min_tokens_to_keep` most likely stay.
    """
    _check_scores(scores)
    check_number("top_p", top_p, 0, 1, low_open=True)
    check_int("min_tokens_to_keep", min_tokens_to_keep)
    sorted_scores, order = torch.sort(scores, descending=False)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)  # the unlikely tail whose mass is at most 1 - top_p
    remove[..., -min_tokens_to_keep:] = False
    return scores.masked_fill(remove.scatter(1, order, remove), NEG_INF)


def min_p_filter(scores: torch.Tensor, min_p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the tokens at least `min_p` times as likely as the most likely one (N, vocab); the rest get -inf.

    The cut-off scales with the model's confidence: strict when one token dominates, loose when many compete.
    """
    _check_scores(scores)
    check_number("min_p", min_p, 0, 1, fix="0 keeps every token; None = off")
    check_int("min_tokens_to_keep", min_tokens_to_keep)
    probs = scores.softmax(dim=-1)
    remove = probs < min_p * probs.amax(dim=-1, keepdim=True)
    most_likely = torch.topk(probs, min(min_tokens_to_keep, probs.size(-1)), dim=-1).indices
    remove.scatter_(-1, most_likely, False)
    return scores.masked_fill(remove, NEG_INF)


def typical_filter(scores: torch.Tensor, typical_p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Locally typical sampling: keep the tokens whose surprise -log p is closest to the entropy, up to mass `typical_p`.

    scores: (N, vocab) logits; the tokens outside the typical set get -inf.
    """
    _check_scores(scores)
    check_number("typical_p", typical_p, 0, 1, low_open=True)
    check_int("min_tokens_to_keep", min_tokens_to_keep)
    log_probs = scores.log_softmax(dim=-1)
    entropy = -(log_probs * log_probs.exp()).nansum(dim=-1, keepdim=True)  # (N, 1); nansum: 0 * -inf terms
    distance, order = torch.sort((-log_probs - entropy).abs())  # most typical first
    cumulative = scores.gather(-1, order).softmax(dim=-1).cumsum(dim=-1)
    last = (cumulative < typical_p).sum(dim=1).clamp(max=scores.size(-1) - 1)  # (N,) the last token to keep
    remove = distance > distance.gather(1, last[:, None])
    remove[..., :min_tokens_to_keep] = False
    return scores.masked_fill(remove.scatter(1, order, remove), NEG_INF)


# ----------------------------------------------------------------------------------------------
# The options

@dataclass
class GenerationConfig:
    """Every option of `generate`, with transformers' names; checked once, when the config is built.

    Differences from transformers' defaults: top_k is None (off) rather than 50; max_new_tokens counts new
    tokens only (20, as transformers' max_length counts the prompt too); seed and crop_context are ours.
    """

    max_new_tokens: int = 20
    min_new_tokens: int = 0  # eos_token_id is forbidden before this many new tokens
    do_sample: bool = False  # False: greedy (num_beams=1) or beam search; True: sampling or beam sampling
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    typical_p: float | None = None
    num_beams: int = 1
    num_return_sequences: int = 1  # sampling: samples per prompt; beam search: the best hypotheses per prompt
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    bad_words_ids: list[list[int]] | None = None
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    eos_token_id: int | None = None
    use_cache: bool = True
    output_scores: bool = False  # True: return a GenerateOutput with the processed scores of every step
    seed: int | None = None  # seeds a private random generator for sampling, so a call repeats exactly
    crop_context: bool = False  # condition on the last block_size tokens when the sequence outgrows the model

    def __post_init__(self) -> None:
        check_int("max_new_tokens", self.max_new_tokens, minimum=0)
        check_int("min_new_tokens", self.min_new_tokens, minimum=0, fix="0 = off")
        for name in ("do_sample", "use_cache", "output_scores", "crop_context"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.early_stopping, bool) and self.early_stopping != "never":
            raise ValueError(f"early_stopping must be True, False or 'never' (as in transformers), got "
                             f"{self.early_stopping!r}")
        if self.do_sample:
            check_number("temperature", self.temperature, 0, low_open=True, fix="use do_sample=False for greedy")
        if self.top_k is not None:
            check_int("top_k", self.top_k, fix="or None for no top-k filter")
        if self.top_p is not None:
            check_number("top_p", self.top_p, 0, 1, low_open=True, fix="1.0 or None = off")
        if self.min_p is not None:
            check_number("min_p", self.min_p, 0, 1, fix="e.g. 0.05; None = off")
        if self.typical_p is not None:
            check_number("typical_p", self.typical_p, 0, 1, low_open=True, fix="1.0 or None = off")
        check_int("num_beams", self.num_beams)
        self._check_num_return_sequences()
        check_int("no_repeat_ngram_size", self.no_repeat_ngram_size, minimum=0, fix="0 = off")
        check_number("repetition_penalty", self.repetition_penalty, 0, low_open=True, fix="1.0 = off")
        check_number("length_penalty", self.length_penalty)
        if self.seed is not None:
            check_int("seed", self.seed, minimum=0)
        if self.eos_token_id is not None:
            check_int("eos_token_id", self.eos_token_id, 0, fix="a token id of the model's vocabulary, or None")
        if self.min_new_tokens and self.eos_token_id is None:
            raise ValueError(f"min_new_tokens={self.min_new_tokens} needs an eos_token_id (it forbids that token "
                             "early); without one every sequence gets max_new_tokens tokens anyway")
        if self.bad_words_ids is not None:
            self._check_bad_words_ids()

    def _check_num_return_sequences(self) -> None:
        n = check_int("num_return_sequences", self.num_return_sequences)
        if self.num_beams > 1 and n > self.num_beams:
            raise ValueError(f"num_return_sequences={n} exceeds num_beams={self.num_beams}: beam search keeps only "
                             "num_beams hypotheses; use num_beams >= num_return_sequences")
        if self.num_beams == 1 and not self.do_sample and n > 1:
            raise ValueError(f"num_return_sequences={n} with greedy search would return the same sequence {n} "
                             "times; use do_sample=True (n samples) or num_beams >= n (the n best beams)")

    def _check_bad_words_ids(self) -> None:
        words = self.bad_words_ids
        ok = isinstance(words, list) and len(words) > 0 and all(
            isinstance(word, list) and len(word) > 0
            and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in word) for word in words)
        if not ok:
            raise ValueError(f"bad_words_ids must be a non-empty list of non-empty lists of token ids >= 0, got "
                             f"{words!r}; e.g. [[7], [3, 9]] bans token 7 and token 9 right after 3")

    def check_vocab(self, vocab_size: int | None) -> None:
        """Refuse token ids (eos_token_id, bad_words_ids) outside a model's vocabulary [0, vocab_size)."""
        if vocab_size is None:
            return
        if self.eos_token_id is not None:
            check_int("eos_token_id", self.eos_token_id, 0, vocab_size - 1,
                      fix="a token id of the model's vocabulary, or None")
        outside = sorted({t for word in self.bad_words_ids or [] for t in word if t >= vocab_size})
        if outside:
            raise ValueError(f"bad_words_ids holds token ids {outside} outside the vocabulary [0, vocab_size="
                             f"{vocab_size}); encode the words with the model's own tokenizer")


def logits_processors(config: GenerationConfig, prompt_length: int,
                      n_pads: torch.Tensor | None = None) -> list[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The processors `config` turns on, in transformers' order, each a function (ids (N, T), scores (N, vocab)) -> scores.

    Built once per call of `generate`, so an option that is off costs nothing per step.
    n_pads: (N,) left-padding length of each row (the repetition penalty skips padding).
    """
    processors = []
    if config.repetition_penalty != 1.0:
        processors.append(functools.partial(apply_repetition_penalty, penalty=config.repetition_penalty,
                                            n_pads=n_pads))
    if config.no_repeat_ngram_size > 0:
        processors.append(functools.partial(apply_no_repeat_ngram, ngram_size=config.no_repeat_ngram_size))
    if config.bad_words_ids is not None:
        # as transformers: [eos_token_id] is never banned (min_new_tokens is the way to delay the end)
        words = [word for word in config.bad_words_ids if word != [config.eos_token_id]]
        if words:
            processors.append(functools.partial(apply_bad_words, bad_words_ids=words))
    if config.min_new_tokens > 0:
        processors.append(functools.partial(apply_min_new_tokens, prompt_length=prompt_length,
                                            min_new_tokens=config.min_new_tokens, eos_token_id=config.eos_token_id))
    if config.do_sample:
        # beam sampling keeps at least 2 tokens, so a beam can go on even if eos is one of them (as transformers)
        keep = 2 if config.num_beams > 1 else 1
        if config.temperature != 1.0:
            processors.append(lambda ids, scores: scores / config.temperature)
        if config.top_k is not None:
            processors.append(lambda ids, scores: top_k_filter(scores, config.top_k, keep))
        if config.top_p is not None and config.top_p < 1.0:
            processors.append(lambda ids, scores: top_p_filter(scores, config.top_p, keep))
        if config.min_p is not None:
            processors.append(lambda ids, scores: min_p_filter(scores, config.min_p, keep))
        if config.typical_p is not None and config.typical_p < 1.0:
            processors.append(lambda ids, scores: typical_filter(scores, config.typical_p, keep))
    return processors


def _apply(processors: list[Callable], ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    for processor in processors:
        scores = processor(ids, scores)
    return scores


def _resolve_config(generation_config: GenerationConfig | None, options: dict) -> GenerationConfig:
    """`generation_config` with `options` (GenerationConfig's fields) overriding it; checked by GenerationConfig."""
    fields = [field.name for field in dataclasses.fields(GenerationConfig)]
    for name in options:
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise TypeError(f"unknown generation option {name!r}; {hint}the options are GenerationConfig's fields: "
                            f"{', '.join(fields)}")
    if generation_config is None:
        return GenerationConfig(**options)
    if not isinstance(generation_config, GenerationConfig):
        raise TypeError(f"generation_config must be a lmcourse.generate.GenerationConfig, got "
                        f"{describe(generation_config)}; build one with GenerationConfig(max_new_tokens=..., ...)")
    return dataclasses.replace(generation_config, **options) if options else generation_config


def process_scores(ids: torch.Tensor, scores: torch.Tensor, generation_config: GenerationConfig | None = None, *,
                   prompt_length: int | None = None, **options) -> torch.Tensor:
    """All the logits processors of `generate`, in transformers' order. ids (N, T), scores (N, vocab) -> (N, vocab).

    The options are those of `GenerationConfig` (a config, or its fields as keywords);
    prompt_length: where the new tokens start in ids (for min_new_tokens; default: ids holds no new token yet).
    """
    config = _resolve_config(generation_config, options)
    _check_rows(ids, scores)
    if torch.isnan(scores).any():
        raise ValueError("scores hold NaN, so no token can be chosen from them; check the model that produced "
                         "them for NaN weights or half-precision overflow")
    return _apply(logits_processors(config, ids.size(1) if prompt_length is None else prompt_length), ids, scores)


# ----------------------------------------------------------------------------------------------
# Running the model

def _logits_of(output: object) -> torch.Tensor:
    """The logits (N, T, vocab) in what a model returned: a tensor, a tuple's first item, or `.logits`."""
    logits = output[0] if isinstance(output, tuple) and output else getattr(output, "logits", output)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 3:
        raise ValueError(f"model must return next-token logits of shape (batch, time, vocab), got "
                         f"{describe(logits)}; see the module docstring for what a model must return")
    return logits


def block_size_of(model: nn.Module) -> int | None:
    """The longest context `model` accepts (`config.block_size` or `config.n_positions`), or None if unknown."""
    config = getattr(model, "config", None)
    for name in ("block_size", "n_positions", "max_position_embeddings"):
        if config is not None and isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    return None


def _accepts(model: nn.Module, argument: str) -> bool:
    """Whether model.forward takes `argument` (by name, or through **kwargs)."""
    parameters = inspect.signature(model.forward).parameters.values()
    return any(p.name == argument or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class _Stepper:
    """Feeds sequences to the model and returns the last position's logits, with a KV cache when it can.

    attention_mask: (N, max_len) 1 = real token, 0 = left padding, or None when nothing is padded.
    """

    def __init__(self, model: nn.Module, use_cache: bool, block_size: int | None, max_len: int,
                 attention_mask: torch.Tensor | None = None):
        self.model = model
        self.block_size = block_size
        self.max_len = max_len if block_size is None else min(max_len, block_size)  # the cache's room, allocated once
        self.can_cache = use_cache and hasattr(model, "new_kv_cache")
        self.cache = None
        self.attention_mask = attention_mask
        self.pass_positions = attention_mask is not None and "position_ids" in inspect.signature(model.forward).parameters
        # only the last position's logits are used: our GPT then runs its final LayerNorm and head there alone
        self.last_only = {"logits_to_keep": 1} if isinstance(model, GPT) else {}
        self.steps = 0

    def _inputs(self, ids: torch.Tensor, start: int) -> dict:
        """Keyword arguments for the model: the mask over every position it attends to (as transformers)."""
        if self.attention_mask is None:
            return {}
        mask = self.attention_mask[:, start:start + ids.size(1)]  # (N, T) positions start .. start + T - 1
        if not self.pass_positions:
            return {"attention_mask": mask}
        positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)  # transformers' position ids for left padding
        return {"attention_mask": mask, "position_ids": positions}

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:  # ids (N, T) -> logits (N, vocab)
        self.steps += 1
        start = 0
        too_long = self.block_size is not None and ids.size(1) > self.block_size
        if too_long:  # crop_context: slide the window; positions shift, so the cache cannot be reused
            start, self.cache = ids.size(1) - self.block_size, None
            ids = ids[:, start:]
        if self.can_cache and not too_long:
            if self.cache is None:
                self.cache = self.model.new_kv_cache(self.max_len)
            new = ids[:, self.cache.length:]  # only the tokens the cache has not seen: (N, T_new)
            logits = _logits_of(self.model(new, kv_cache=self.cache, **self._inputs(ids, start), **self.last_only))
        else:
            logits = _logits_of(self.model(ids, **self._inputs(ids, start), **self.last_only))
        logits = logits[:, -1, :].float()
        if torch.isnan(logits).any():  # argmax would read NaN as token 0, and sampling would fail obscurely
            rows = torch.isnan(logits).any(dim=-1).nonzero().flatten().tolist()
            raise ValueError(f"the model returned NaN logits at generation step {self.steps} (rows {rows}); check "
                             "the model's weights for NaN (a diverged training run) and, in half precision, "
                             "for overflow (run it in float32)")
        return logits

    def reorder(self, index: torch.Tensor) -> None:
        """Beam search moved rows around: row i of the cache now holds what was row index[i]."""
        if self.cache is not None:
            self.cache.reorder(index)


@dataclass
class GenerateOutput:
    """What `generate(..., output_scores=True)` returns (transformers: return_dict_in_generate=True, output_scores=True).

    sequences: (N, T) prompt + new tokens, as `generate` returns without output_scores.
    scores: one (rows, vocab) tensor per step, the processed scores the token was chosen from (after the
        processors; log-probabilities for beam search), rows = N for greedy and sampling, batch * num_beams
        for beam search.
    """

    sequences: torch.Tensor
    scores: tuple[torch.Tensor, ...]


def _check_attention_mask(attention_mask: object, idx: torch.Tensor, model: nn.Module) -> torch.Tensor | None:
    """The mask as a LongTensor (B, T) if it pads anything, None if every position is a real token."""
    if (not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != idx.shape
            or attention_mask.is_floating_point() or not bool(((attention_mask == 0) | (attention_mask == 1)).all())):
        raise ValueError(f"attention_mask must be a tensor of 0s and 1s with the shape of idx {tuple(idx.shape)} "
                         f"(1 = real token, 0 = padding), got {describe(attention_mask)}; a tokenizer called with "
                         "padding=True returns it")
    mask = attention_mask.long().to(idx.device)
    if bool(mask.all()):
        return None
    empty = (mask.sum(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"attention_mask rows {empty} are all padding; every prompt needs at least one real token")
    if bool((mask[:, 1:] < mask[:, :-1]).any()):
        raise ValueError("attention_mask must pad on the left (0s, then the prompt's 1s), so that every prompt ends "
                         "where the new tokens start; pad with a tokenizer's padding_side='left'")
    if not _accepts(model, "attention_mask"):
        raise ValueError(f"{type(model).__name__}.forward takes no attention_mask, so it cannot read left-padded "
                         "prompts; generate each prompt on its own, or pad prompts to the same length with real text")
    return mask


def _check_inputs(model: nn.Module, idx: object, config: GenerationConfig, block_size: int | None) -> torch.Tensor:
    """Check the prompt against the model and the options, before the first step; return idx as a LongTensor."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module returning next-token logits, got {describe(model)}; load "
                         "it first (e.g. lmcourse.gpt.GPT.from_checkpoint or a transformers model)")
    if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.size(1) < 1:
        raise ValueError(f"idx must be a LongTensor of token ids, shape (batch, prompt_length >= 1), got "
                         f"{describe(idx)}; wrap one prompt as torch.tensor([ids])")
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    vocab_size = vocab_size if isinstance(vocab_size, int) else None
    idx = check_token_ids("idx", idx, vocab_size)
    config.check_vocab(vocab_size)
    if block_size is not None and not config.crop_context and idx.size(1) + config.max_new_tokens > block_size:
        raise ValueError(f"prompt length {idx.size(1)} + max_new_tokens {config.max_new_tokens} exceeds the model's "
                         f"block_size={block_size}; shorten the prompt, ask for fewer tokens, or pass "
                         "crop_context=True to let the model see only the last block_size tokens")
    return idx


@torch.no_grad()
def generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int | None = None, *,
             generation_config: GenerationConfig | None = None, attention_mask: torch.Tensor | None = None,
             **options) -> torch.Tensor | GenerateOutput:
    """Continue the prompts `idx` (B, T) by up to `max_new_tokens` tokens; returns prompt + new tokens (B * n, T + new).

    options: the fields of `GenerationConfig` as keywords, or a whole `generation_config` (keywords override it).
    do_sample=False: greedy (num_beams=1) or beam search; True: sampling (temperature, top_k, top_p, min_p,
        typical_p), or beam sampling with num_beams > 1.
    num_return_sequences (n): rows i * n .. i * n + n - 1 of the result continue prompt i.
    eos_token_id: a token that ends a sequence; rows that finished early are padded with it.
    early_stopping (beam search, as transformers): True stops once num_beams hypotheses have ended; False
        stops when the best running beam, scored at the current length, cannot beat the worst ended one;
        "never" judges that at the longest length still possible, so it stops only when no better
        hypothesis can exist (the canonical beam search; the same as False when length_penalty <= 0).
    attention_mask: (B, T) 1 = real token, 0 = left padding, for prompts of different lengths in one batch.
    crop_context: when prompt + new tokens exceed the model's block size, condition on the last
        block_size tokens only (otherwise a ValueError says so).
    output_scores: return a `GenerateOutput` (sequences and the processed scores of every step).
    """
    if max_new_tokens is not None:
        options["max_new_tokens"] = max_new_tokens
    config = _resolve_config(generation_config, options)
    block_size = block_size_of(model)
    idx = _check_inputs(model, idx, config, block_size)
    mask = None if attention_mask is None else _check_attention_mask(attention_mask, idx, model)
    n = config.num_return_sequences
    if config.num_beams == 1 and n > 1:  # n samples of each prompt: rows i * n .. i * n + n - 1 (as transformers)
        idx = idx.repeat_interleave(n, dim=0)
        mask = None if mask is None else mask.repeat_interleave(n, dim=0)
    if config.max_new_tokens == 0:
        return GenerateOutput(idx.clone(), ()) if config.output_scores else idx.clone()
    was_training = model.training
    model.eval()
    try:
        generator = None
        if config.do_sample:
            generator = torch.Generator(device=idx.device)
            generator.manual_seed(config.seed if config.seed is not None else int(torch.randint(2**62, (1,))))
        max_len = idx.size(1) + config.max_new_tokens
        if mask is not None:  # every new token is real; beams of one prompt share its padding
            mask = torch.cat([mask, mask.new_ones(mask.size(0), config.max_new_tokens)], dim=1)
            mask = mask.repeat_interleave(config.num_beams, dim=0)
        step = _Stepper(model, config.use_cache, block_size, max_len, mask)
        n_pads = None if mask is None else (mask == 0).sum(dim=1)  # (rows,) left padding of each row
        processors = logits_processors(config, idx.size(1), n_pads)
        search = _greedy_or_sample if config.num_beams == 1 else _beam_search
        sequences, scores = search(step, idx, config, processors, generator)
    finally:
        model.train(was_training)
    return GenerateOutput(sequences, tuple(scores)) if config.output_scores else sequences


def _check_not_all_banned(scores: torch.Tensor, ngram_size: int, length: int) -> None:
    """Refuse to go on when the n-gram ban leaves a row (N, vocab) no token at all (it would emit a banned one).

    Called only with no_repeat_ngram_size > 0, whose ban already reads the ids on the CPU every step.
    """
    if bool(torch.isneginf(scores).all(dim=-1).any()):
        raise ValueError(f"no_repeat_ngram_size={ngram_size} bans every token of the vocabulary after {length} "
                         "tokens (each one would repeat an n-gram already generated); use a larger "
                         "no_repeat_ngram_size, fewer max_new_tokens, or no_repeat_ngram_size=0")


def _greedy_or_sample(step: _Stepper, ids: torch.Tensor, config: GenerationConfig, processors: list[Callable],
                      generator: torch.Generator | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Greedy search or sampling, one token per row and step; returns (ids (N, T + new), per-step scores)."""
    eos_token_id, kept_scores = config.eos_token_id, []
    finished = torch.zeros(ids.size(0), dtype=torch.bool, device=ids.device)
    for _ in range(config.max_new_tokens):
        scores = _apply(processors, ids, step(ids))  # (N, vocab)
        if config.no_repeat_ngram_size:
            _check_not_all_banned(scores, config.no_repeat_ngram_size, ids.size(1))
        if config.output_scores:
            kept_scores.append(scores)
        if config.do_sample:
            next_token = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
        else:
            next_token = scores.argmax(dim=-1)
        if eos_token_id is not None:
            next_token = torch.where(finished, eos_token_id, next_token)  # finished rows are padded
            finished |= next_token == eos_token_id
        ids = torch.cat([ids, next_token[:, None]], dim=1)
        if finished.all():
            break
    return ids, kept_scores


def _beam_search(step: _Stepper, ids: torch.Tensor, config: GenerationConfig, processors: list[Callable],
                 generator: torch.Generator | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Beam search as transformers does it (vectorised over the batch): B prompts, each with num_beams beams.

    Every step scores all num_beams * vocab continuations by summed log-probability, keeps the best
    2 * num_beams (enough to go on even if num_beams of them end), continues the num_beams best that did
    not end, and offers those that ended to a pool of finished hypotheses, scored by sum / length**length_penalty.
    Returns (the num_return_sequences best of each pool (B * n, T + new), per-step scores (B * num_beams, vocab)).
    """
    num_beams, eos_token_id = config.num_beams, config.eos_token_id
    early_stopping, length_penalty = config.early_stopping, config.length_penalty
    batch, prompt_len = ids.shape
    max_len = prompt_len + config.max_new_tokens
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
    kept_scores = []

    cur_len = prompt_len
    while True:
        flat = running[:, :, :cur_len].reshape(batch * num_beams, cur_len)
        log_probs = _apply(processors, flat, step(flat).log_softmax(dim=-1))  # (B*beams, vocab)
        if config.output_scores:
            kept_scores.append(log_probs)
        vocab = log_probs.size(-1)
        total = (log_probs.view(batch, num_beams, vocab) + running_scores[:, :, None]).view(batch, -1)
        if config.no_repeat_ngram_size:
            _check_not_all_banned(total, config.no_repeat_ngram_size, cur_len)

        if config.do_sample:
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

    n = config.num_return_sequences
    best = finished[:, :n, :].reshape(batch * n, max_len)  # the pool is sorted best first
    return best[:, :int(finished_lengths[:, :n].max())], kept_scores
