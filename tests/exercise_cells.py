"""The exercise cells of every chapter: task, stub, solution and plausible wrong answers.

One source of truth for the notebooks' exercise cells and for tests/test_exercises.py:
`python -m tests.exercise_cells OUT_DIR` writes OUT_DIR/NN.json, the cells each chapter's
notebook carries (task markdown, stub, check, hidden solution).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Cells:
    id: str            # "04.masked_softmax"
    name: str          # the function or class the learner writes
    task: str          # markdown
    stub: str          # code: signature, docstring, raise NotImplementedError
    solution: str      # code: the same name, right
    wrong: dict[str, str] = field(default_factory=dict)  # what is wrong -> code defining the same name
    context: str = ""  # extra keyword arguments of check(), as source text (", baseline=x")

    @property
    def check(self) -> str:
        return f'from lmcourse.exercises import check\n\ncheck("{self.id}", {self.name}{self.context});'

    @property
    def solution_cell(self) -> str:
        return f'{self.solution.rstrip()}\n\n\nassert check("{self.id}", {self.name}{self.context})'

    def notebook_cells(self) -> list[dict]:
        cells = [
            {"cell_type": "markdown", "source": self.task.strip(), "metadata": {"tags": ["exercise"]}},
            {"cell_type": "code", "source": self.stub.strip(), "metadata": {"tags": ["exercise"]}},
            {"cell_type": "code", "source": self.check, "metadata": {"tags": ["exercise"]}},
            {"cell_type": "code", "source": "from lmcourse.exercises import check\n\n" + self.solution_cell.strip(),
             "metadata": {"tags": ["solution"], "jupyter": {"source_hidden": True}}},
        ]
        for cell, part in zip(cells, ("task", "stub", "check", "solution")):
            cell["id"] = f"{self.id.replace('.', '-')}-{part}"  # nbformat 4.5 cell ids: stable across rebuilds
        return cells


CHAPTERS: dict[str, list[Cells]] = {}


def add(cells: Cells) -> None:
    CHAPTERS.setdefault(cells.id[:2], []).append(cells)


# ================================================================================================ 04
add(Cells(
    id="04.masked_softmax", name="masked_softmax",
    task="""
### Exercise 1 · Masked softmax

Write `masked_softmax(scores, mask)`: a softmax over the last axis of `scores` (..., Tq, Tk) that gives
weight exactly 0 where the boolean `mask` (broadcastable to the scores) is False. The course follows torch's
convention: **True = may attend**. Two traps from widely copied code: a row whose keys are *all* masked
(a padded query) must come out as all zeros, not NaN and not uniform; and the result must stay finite in
float16, where -1e20 is already -inf. The checker tries random masks, fully masked rows, a causal mask
broadcast over heads, and float16. The package's attention (`lmcourse.attention`) and torch's are not accepted.
""",
    stub='''
import torch


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax of scores (..., Tq, Tk) over the keys, 0 where mask (bool, True = may attend) is False.

    Returns weights of the shape and dtype of scores; a fully masked row is all zeros.
    """
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax of scores (..., Tq, Tk) over the keys, 0 where mask (bool, True = may attend) is False."""
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)  # finite: no NaN, no fp16 overflow
    weights = filled.float().softmax(dim=-1).to(scores.dtype)          # softmax in float32, exact in fp16
    return weights * mask                                              # a fully masked row: zeros
''',
    wrong={
        "mask with the wrong polarity": '''
import torch

def masked_softmax(scores, mask):
    return scores.masked_fill(mask, torch.finfo(scores.dtype).min).softmax(-1) * ~mask
''',
        "-1e20 fill (overflows to -inf in float16; fully masked rows uniform)": '''
def masked_softmax(scores, mask):
    return scores.masked_fill(~mask, -1e20).softmax(-1)
''',
        "-inf fill (a fully masked row is NaN)": '''
def masked_softmax(scores, mask):
    return scores.masked_fill(~mask, float("-inf")).softmax(-1)
''',
        "finfo.min fill but a fully masked row stays uniform": '''
import torch

def masked_softmax(scores, mask):
    return scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(-1)
''',
        "cheat: the package's attention_stages, fed the scores as queries against identity keys": '''
import math

import torch
from lmcourse.attention import attention_stages

def masked_softmax(scores, mask):
    eye = torch.eye(scores.shape[-1], dtype=scores.dtype)
    return attention_stages(scores * math.sqrt(scores.shape[-1]), eye, mask)["weights"]
''',
    }))

add(Cells(
    id="04.additive_attention", name="additive_attention",
    task="""
### Exercise 2 · Bahdanau's additive attention

Section 1's table gives Luong's score: one bilinear product of the decoder state with each encoder state. Bahdanau
scores each input position with a small feed-forward network instead: the decoder state (through `W_q`) and the
encoder state at that position (through `W_k` and its bias `b`) are mapped into one attention space of size A,
added, passed through tanh, and read out to one number by the vector `v`. Write
`additive_attention(query, keys, values, mask, W_q, W_k, b, v)` returning `(context, weights)` for one decoder
step: query (B, Dq), keys (B, S, Dk), values (B, S, Dv), mask (B, S) bool (True at real positions, False at
padding), W_q (A, Dq), W_k (A, Dk), b (A,), v (A,) → context (B, Dv), weights (B, S). The weights are a softmax
of the scores over the real positions, exactly 0 at padding; an example with no real position gets zero weights
and a zero context. In the seq2seq model keys and values are both the encoder states; the checker makes them
different, saturates the tanh, and tries float64 (keep the dtype). `lmcourse.seq2seq`'s attention modules are not
accepted.
""",
    stub='''
import torch


def additive_attention(query, keys, values, mask, W_q, W_k, b, v):
    """Bahdanau attention for one decoder step.

    query (B, Dq): the decoder state; keys (B, S, Dk) and values (B, S, Dv): one per input position;
    mask (B, S) bool, True at real positions; W_q (A, Dq), W_k (A, Dk), b (A,), v (A,): the scorer's weights.
    Returns (context (B, Dv), weights (B, S)).
    """
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def additive_attention(query, keys, values, mask, W_q, W_k, b, v):
    """Bahdanau attention for one decoder step.

    query (B, Dq): the decoder state; keys (B, S, Dk) and values (B, S, Dv): one per input position;
    mask (B, S) bool, True at real positions; W_q (A, Dq), W_k (A, Dk), b (A,), v (A,): the scorer's weights.
    Returns (context (B, Dv), weights (B, S)).
    """
    hidden = torch.tanh(keys @ W_k.T + b + (query @ W_q.T)[:, None])     # (B, S, A): both states in one space
    scores = hidden @ v                                                   # (B, S): one number per position
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)     # finite: no NaN on an empty example
    weights = filled.softmax(dim=-1) * mask                               # padding, and an empty example, get 0
    return (weights[:, :, None] * values).sum(dim=1), weights            # (B, Dv), (B, S)
''',
    wrong={
        "the context from the keys (values ignored)": '''
import torch

def additive_attention(query, keys, values, mask, W_q, W_k, b, v):
    scores = torch.tanh(keys @ W_k.T + b + (query @ W_q.T)[:, None]) @ v
    weights = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(-1) * mask
    return (weights[:, :, None] * keys).sum(1), weights
''',
        "no tanh (a linear score)": '''
import torch

def additive_attention(query, keys, values, mask, W_q, W_k, b, v):
    scores = (keys @ W_k.T + b + (query @ W_q.T)[:, None]) @ v
    weights = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(-1) * mask
    return (weights[:, :, None] * values).sum(1), weights
''',
        "-inf fill (an example with no real position gets NaN)": '''
import torch

def additive_attention(query, keys, values, mask, W_q, W_k, b, v):
    scores = torch.tanh(keys @ W_k.T + b + (query @ W_q.T)[:, None]) @ v
    weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    return (weights[:, :, None] * values).sum(1), weights
''',
        "finfo.min fill, weights not masked (an empty example gets uniform weights)": '''
import torch

def additive_attention(query, keys, values, mask, W_q, W_k, b, v):
    scores = torch.tanh(keys @ W_k.T + b + (query @ W_q.T)[:, None]) @ v
    weights = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(-1)
    return (weights[:, :, None] * values).sum(1), weights
''',
        "softmax over the batch, not over the positions": '''
import torch

def additive_attention(query, keys, values, mask, W_q, W_k, b, v):
    scores = torch.tanh(keys @ W_k.T + b + (query @ W_q.T)[:, None]) @ v
    weights = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(0) * mask
    return (weights[:, :, None] * values).sum(1), weights
''',
        "cheat: the package's BahdanauAttention with the weights copied in": '''
import torch
from lmcourse.seq2seq import BahdanauAttention

def additive_attention(query, keys, values, mask, W_q, W_k, b, v):
    scorer = BahdanauAttention(W_q.shape[1], W_k.shape[1], W_q.shape[0]).to(query.dtype)
    with torch.no_grad():
        scorer.w_q.weight.copy_(W_q)
        scorer.w_k.weight.copy_(W_k)
        scorer.w_k.bias.copy_(b)
        scorer.v.weight.copy_(v[None])
        _, weights = scorer(query, keys, mask)
    weights = weights * mask
    return (weights[:, :, None] * values).sum(1), weights
''',
    }))

add(Cells(
    id="04.grouped_query_attention", name="grouped_query_attention",
    task="""
### Exercise 3 · Grouped-query attention

Section 3 gives every query head its own keys and values. When a model generates text, those keys and values are
what it keeps for every past token (chapter 06's key/value cache), so Mistral 7B and the largest Llama 2 let
several query heads **share** them: `n_kv_heads` key/value heads, each read by a group of
`n_heads // n_kv_heads` consecutive query heads (with groups of two, query heads 0 and 1 read key/value head 0,
heads 2 and 3 read head 1). One key/value head is multi-query attention; as many as there are query heads is
multi-head attention again. Write `grouped_query_attention(q, k, v, mask=None)` returning `(out, weights)`:
q (B, n_heads, Tq, d), k (B, n_kv_heads, Tk, d), v (B, n_kv_heads, Tk, d_v) → out (B, n_heads, Tq, d_v),
weights (B, n_heads, Tq, Tk). Within each head it is section 2's scaled dot-product attention; the mask is a
boolean as in Exercise 1 (True = may attend), broadcastable to the weights (it may differ from one query head to
the next), and a fully masked query row gets zero weights and a zero output. Keep q's dtype (the checker tries
float16). Write the attention yourself (your `masked_softmax` is welcome): `lmcourse.attention` and torch's
`scaled_dot_product_attention` are not accepted.
""",
    stub='''
import torch


def grouped_query_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None):
    """Attention in which n_heads query heads share n_kv_heads key/value heads, in groups of consecutive heads.

    q (B, n_heads, Tq, d), k (B, n_kv_heads, Tk, d), v (B, n_kv_heads, Tk, d_v); mask bool (True = may attend),
    broadcastable to (B, n_heads, Tq, Tk). Returns (out (B, n_heads, Tq, d_v), weights (B, n_heads, Tq, Tk)).
    """
    raise NotImplementedError  # your code
''',
    solution='''
import math

import torch


def grouped_query_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None):
    """Attention in which n_heads query heads share n_kv_heads key/value heads, in groups of consecutive heads.

    q (B, n_heads, Tq, d), k (B, n_kv_heads, Tk, d), v (B, n_kv_heads, Tk, d_v); mask bool (True = may attend),
    broadcastable to (B, n_heads, Tq, Tk). Returns (out (B, n_heads, Tq, d_v), weights (B, n_heads, Tq, Tk)).
    """
    group = q.shape[1] // k.shape[1]                          # query heads per key/value head
    k = k.repeat_interleave(group, dim=1)                     # (B, n_heads, Tk, d): head h reads kv head h // group
    v = v.repeat_interleave(group, dim=1)                     # (B, n_heads, Tk, d_v)
    scores = (q / math.sqrt(q.shape[-1])) @ k.transpose(-2, -1)   # (B, n_heads, Tq, Tk); scaled first: fp16 stays finite
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.float().softmax(dim=-1).to(q.dtype)      # the softmax in float32, also for float16
    if mask is not None:
        weights = weights * mask                              # a fully masked row: zeros
    return weights @ v, weights
''',
    wrong={
        "key/value heads tiled (query head h reads key/value head h % n_kv_heads)": '''
import math

import torch

def grouped_query_attention(q, k, v, mask=None):
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.float().softmax(-1).to(q.dtype)
    if mask is not None:
        weights = weights * mask
    return weights @ v, weights
''',
        "scaled by sqrt(n_heads * d), the model width, not sqrt(d)": '''
import math

import torch

def grouped_query_attention(q, k, v, mask=None):
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[1] * q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.float().softmax(-1).to(q.dtype)
    if mask is not None:
        weights = weights * mask
    return weights @ v, weights
''',
        "-inf fill (a fully masked row is NaN)": '''
import math

def grouped_query_attention(q, k, v, mask=None):
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.float().softmax(-1).to(q.dtype)
    return weights @ v, weights
''',
        "finfo.min fill, weights not masked (a fully masked row gets uniform weights)": '''
import math

import torch

def grouped_query_attention(q, k, v, mask=None):
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.float().softmax(-1).to(q.dtype)
    return weights @ v, weights
''',
        "the keys as values (v ignored)": '''
import math

import torch

def grouped_query_attention(q, k, v, mask=None):
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.float().softmax(-1).to(q.dtype)
    if mask is not None:
        weights = weights * mask
    return weights @ k, weights
''',
        "computed in float32 and returned so (float16 inputs give float32 results)": '''
import math

import torch

def grouped_query_attention(q, k, v, mask=None):
    q, k, v = q.float(), k.float(), v.float()
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(-1)
    if mask is not None:
        weights = weights * mask
    return weights @ v, weights
''',
        "cheat: the package's scaled_dot_product_attention after repeating the heads": '''
from lmcourse.attention import scaled_dot_product_attention

def grouped_query_attention(q, k, v, mask=None):
    group = q.shape[1] // k.shape[1]
    return scaled_dot_product_attention(q, k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1), mask)
''',
        "cheat: torch's scaled_dot_product_attention with enable_gqa": '''
import torch
from torch.nn import functional as F

def grouped_query_attention(q, k, v, mask=None):
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    group = q.shape[1] // k.shape[1]
    scores = q @ k.repeat_interleave(group, dim=1).transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.float().softmax(-1).to(q.dtype)
    return out, weights if mask is None else weights * mask
''',
    }))

# ================================================================================================ 06
add(Cells(
    id="06.top_p_filter", name="top_p_filter",
    task="""
### Exercise 1 · Top-p (nucleus) filtering

Write `top_p_filter(logits, top_p)` for logits of shape (N, vocab): in each row keep the **smallest** set of
most likely tokens whose probabilities sum to at least `top_p`, and set the other logits to `-inf`. The token
that carries the sum across `top_p` belongs to the nucleus; the most likely token always stays; `top_p = 1`
keeps everything. The checker tries random rows, `top_p = 1`, a tiny `top_p`, ties, and a peaked and a flat row.
""",
    stub='''
import torch


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: logits (N, vocab) -> the same logits, -inf outside each row's top-p nucleus."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: logits (N, vocab) -> the same logits, -inf outside each row's top-p nucleus."""
    probs, order = logits.softmax(dim=-1).sort(dim=-1, descending=True)  # (N, vocab), most likely first
    mass_before = probs.cumsum(dim=-1) - probs          # the mass of the more likely tokens
    keep_sorted = mass_before < top_p                  # the crossing token still has mass_before < top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))
''',
    wrong={
        "keeps one token too few (stops before the crossing token)": '''
import torch

def top_p_filter(logits, top_p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    keep_sorted = probs.cumsum(-1) <= top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))
''',
        "keeps one token too many": '''
import torch

def top_p_filter(logits, top_p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    before = probs.cumsum(-1) - probs
    keep_sorted = torch.cat([torch.ones_like(before[:, :1], dtype=torch.bool), before[:, :-1] < top_p], -1)
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))
''',
        "mask applied in sorted order (not scattered back)": '''
def top_p_filter(logits, top_p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    keep = (probs.cumsum(-1) - probs) < top_p
    return logits.masked_fill(~keep, float("-inf"))
''',
        "drops a token once the mass before it exceeds top_p (one too many at an exact boundary)": '''
def top_p_filter(logits, top_p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    remove = probs.cumsum(-1) > top_p
    remove[:, 1:] = remove[:, :-1].clone()  # shift right: keep the token that crosses top_p
    remove[:, 0] = False
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))
''',
        "keeps a token while the mass before it is at most top_p (<= for <)": '''
import torch

def top_p_filter(logits, top_p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    keep_sorted = probs.cumsum(-1) - probs <= top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))
''',
    }))

add(Cells(
    id="06.beam_search_step", name="beam_step",
    task="""
### Exercise 2 · One beam-search step with the no-repeat ban

`generate(num_beams=5, no_repeat_ngram_size=2)` in one step: given the current beams of one prompt
(`sequences` (beams, T), their summed log-probabilities `beam_scores` (beams,)) and the next-token
log-probabilities `log_probs` (beams, vocab), first **ban** in each beam every token that would complete an
n-gram (n = `no_repeat_ngram_size`, 0 = no ban) that the beam already contains: the tokens that followed an
earlier occurrence of its last n-1 tokens. Then score every continuation (beam score + log-prob), and keep
the `num_beams` best over **all** beams and tokens, best first. Return `(new_sequences (num_beams, T + 1),
new_scores (num_beams,))`.
""",
    stub='''
import torch


def beam_step(sequences: torch.Tensor, beam_scores: torch.Tensor, log_probs: torch.Tensor, num_beams: int,
              no_repeat_ngram_size: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """sequences (beams, T) long, beam_scores (beams,), log_probs (beams, vocab) of the next token.

    Returns the num_beams best continuations, best first: (sequences (num_beams, T + 1), scores (num_beams,)).
    """
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def beam_step(sequences: torch.Tensor, beam_scores: torch.Tensor, log_probs: torch.Tensor, num_beams: int,
              no_repeat_ngram_size: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """sequences (beams, T) long, beam_scores (beams,), log_probs (beams, vocab) of the next token.

    Returns the num_beams best continuations, best first: (sequences (num_beams, T + 1), scores (num_beams,)).
    """
    n = no_repeat_ngram_size
    log_probs = log_probs.clone()
    for b, row in enumerate(sequences.tolist()):
        if n > 0 and len(row) >= n - 1:
            prefix = row[len(row) - (n - 1):]  # the last n-1 tokens
            banned = [row[i + n - 1] for i in range(len(row) - n + 1) if row[i:i + n - 1] == prefix]
            log_probs[b, banned] = float("-inf")
    total = (beam_scores[:, None] + log_probs).flatten()  # (beams * vocab,)
    scores, index = torch.topk(total, num_beams)           # best first, over all beams and tokens
    beam, token = index // log_probs.shape[1], index % log_probs.shape[1]
    return torch.cat([sequences[beam], token[:, None]], dim=1), scores
''',
    wrong={
        "no ban": '''
import torch

def beam_step(sequences, beam_scores, log_probs, num_beams, no_repeat_ngram_size=0):
    total = (beam_scores[:, None] + log_probs).flatten()
    scores, index = torch.topk(total, num_beams)
    beam, token = index // log_probs.shape[1], index % log_probs.shape[1]
    return torch.cat([sequences[beam], token[:, None]], 1), scores
''',
        "each beam keeps its own best token (not a global ranking)": '''
import torch

def beam_step(sequences, beam_scores, log_probs, num_beams, no_repeat_ngram_size=0):
    best, token = log_probs.max(-1)
    scores, beam = torch.topk(beam_scores + best, num_beams)
    return torch.cat([sequences[beam], token[beam][:, None]], 1), scores
''',
        "ranks by the new token's log-prob, forgetting the beam score": '''
import torch

def beam_step(sequences, beam_scores, log_probs, num_beams, no_repeat_ngram_size=0):
    _, index = torch.topk(log_probs.flatten(), num_beams)
    beam, token = index // log_probs.shape[1], index % log_probs.shape[1]
    scores = beam_scores[beam] + log_probs.flatten()[index]
    return torch.cat([sequences[beam], token[:, None]], 1), scores
''',
        "finds each best score's position by its value (tied continuations all map to the first)": '''
import torch

def beam_step(sequences, beam_scores, log_probs, num_beams, no_repeat_ngram_size=0):
    n, log_probs = no_repeat_ngram_size, log_probs.clone()
    for b, row in enumerate(sequences.tolist()):
        if n > 0 and len(row) >= n - 1:
            prefix = row[len(row) - (n - 1):]
            log_probs[b, [row[i + n - 1] for i in range(len(row) - n + 1) if row[i:i + n - 1] == prefix]] = float("-inf")
    total = (beam_scores[:, None] + log_probs).flatten()
    scores = total.sort(descending=True).values[:num_beams]
    index = torch.stack([(total == s).nonzero()[0, 0] for s in scores])
    beam, token = index // log_probs.shape[1], index % log_probs.shape[1]
    return torch.cat([sequences[beam], token[:, None]], 1), scores
''',
    }))

add(Cells(
    id="06.repetition_penalty", name="repetition_penalty",
    task="""
### Exercise 3 · Repetition penalty

Write `repetition_penalty(ids, scores, penalty)` as transformers (and `generate`) apply it: every token that
already occurs in a row of `ids` (N, T) gets its score in `scores` (N, vocab) pushed down by `penalty` > 1
(scores can be negative: think about what dividing a negative number does). A token seen three times is
penalised once. The checker tries negative scores, repeated tokens, penalty 1 and an empty context (T = 0).
""",
    stub='''
import torch


def repetition_penalty(ids: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    """ids (N, T) long, scores (N, vocab) -> new scores (N, vocab): tokens already in ids made less likely."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def repetition_penalty(ids: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    """ids (N, T) long, scores (N, vocab) -> new scores (N, vocab): tokens already in ids made less likely."""
    seen = scores.gather(1, ids)                                         # (N, T)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)        # always towards less likely
    return scores.scatter(1, ids, seen)                                  # a repeated id is written once
''',
    wrong={
        "always divides (raises negative scores)": '''
def repetition_penalty(ids, scores, penalty):
    return scores.scatter(1, ids, scores.gather(1, ids) / penalty)
''',
        "penalises once per occurrence": '''
def repetition_penalty(ids, scores, penalty):
    scores = scores.clone()
    for n, row in enumerate(ids.tolist()):
        for t in row:
            s = scores[n, t]
            scores[n, t] = s * penalty if s < 0 else s / penalty
    return scores
''',
    }))


# ================================================================================================ 01
add(Cells(
    id="01.kneser_ney_bigram", name="kneser_ney_bigram",
    task="""
### Exercise 1 · Interpolated Kneser-Ney, by hand

"Francisco" is a frequent word, but it follows almost only "San"; a bigram model that backs off to how often a
word occurs gives it far too much probability after "the". Kneser-Ney backs off to **continuation counts**
instead: in how many different contexts has w appeared? Write `kneser_ney_bigram(bigram_counts, vocab, prev,
word, discount)` for interpolated Kneser-Ney of order 2 as `NGramLM(2, "kneser_ney")` computes it
(V = `len(vocab)`, d = `discount`):

$$p_\\text{cont}(w) = \\frac{\\max(N_{1+}(\\cdot\\,w) - d,\\,0) + d\\,\\frac{|\\{w' : N_{1+}(\\cdot\\,w') > 0\\}|}{V}}{N_{1+}(\\cdot\\,\\cdot)}
\\qquad
P(w \\mid h) = \\frac{\\max(c(h\\,w) - d,\\,0) + d\\,N_{1+}(h\\,\\cdot)\\,p_\\text{cont}(w)}{c(h\\,\\cdot)}$$

where N₁₊(· w) is the number of distinct words h with c(h w) > 0, N₁₊(· ·) the number of distinct bigrams,
N₁₊(h ·) the number of distinct words after h and c(h ·) the total count of bigrams starting with h; when
c(h ·) = 0 (an unseen context), P(w | h) = p_cont(w). `bigram_counts` maps `(prev, word)` to a count, as
`NGramLM(2)` counted them on a toy corpus (sentences padded with `<s>` and `</s>`). The checker compares you
with the package on "the francisco", "san francisco", unseen contexts and words, and random pairs.
""",
    stub='''
def kneser_ney_bigram(bigram_counts: dict, vocab: list, prev: str, word: str, discount: float = 0.75) -> float:
    """P_KN(word | prev) for an interpolated Kneser-Ney bigram model.

    bigram_counts: {(prev, word): count}; vocab: every token (V = len(vocab)); discount: d in (0, 1).
    """
    raise NotImplementedError  # your code
''',
    solution='''
from collections import Counter


def kneser_ney_bigram(bigram_counts: dict, vocab: list, prev: str, word: str, discount: float = 0.75) -> float:
    """P_KN(word | prev) for an interpolated Kneser-Ney bigram model.

    bigram_counts: {(prev, word): count}; vocab: every token (V = len(vocab)); discount: d in (0, 1).
    """
    d, V = discount, len(vocab)
    continuation = Counter(w for (_, w) in bigram_counts)   # N1+(. w): distinct left contexts of w
    bigram_types = len(bigram_counts)                       # N1+(. .)
    p_cont = (max(continuation[word] - d, 0) + d * len(continuation) / V) / bigram_types
    after_prev = {w: c for (h, w), c in bigram_counts.items() if h == prev}
    total = sum(after_prev.values())                        # c(prev .)
    if total == 0:
        return p_cont
    return (max(after_prev.get(word, 0) - d, 0) + d * len(after_prev) * p_cont) / total
''',
    wrong={
        "backs off to how often a word occurs, not to continuation counts": '''
from collections import Counter

def kneser_ney_bigram(bigram_counts, vocab, prev, word, discount=0.75):
    d, V = discount, len(vocab)
    occurrences = Counter()
    for (_, w), c in bigram_counts.items():
        occurrences[w] += c
    n = sum(occurrences.values())
    p_low = (max(occurrences[word] - d, 0) + d * len(occurrences) / V) / n
    after = {w: c for (h, w), c in bigram_counts.items() if h == prev}
    total = sum(after.values())
    if total == 0:
        return p_low
    return (max(after.get(word, 0) - d, 0) + d * len(after) * p_low) / total
''',
        "no uniform floor at the lowest level (unseen words get 0)": '''
from collections import Counter

def kneser_ney_bigram(bigram_counts, vocab, prev, word, discount=0.75):
    d = discount
    continuation = Counter(w for (_, w) in bigram_counts)
    p_cont = continuation[word] / len(bigram_counts)
    after = {w: c for (h, w), c in bigram_counts.items() if h == prev}
    total = sum(after.values())
    if total == 0:
        return p_cont
    return (max(after.get(word, 0) - d, 0) + d * len(after) * p_cont) / total
''',
        "backs off only for unseen bigrams (no interpolation)": '''
from collections import Counter

def kneser_ney_bigram(bigram_counts, vocab, prev, word, discount=0.75):
    d, V = discount, len(vocab)
    continuation = Counter(w for (_, w) in bigram_counts)
    p_cont = (max(continuation[word] - d, 0) + d * len(continuation) / V) / len(bigram_counts)
    after = {w: c for (h, w), c in bigram_counts.items() if h == prev}
    total = sum(after.values())
    if after.get(word, 0) > 0:
        return (after[word] - d) / total
    return d * len(after) * p_cont / total if total else p_cont
''',
    }))

add(Cells(
    id="01.add_k_prob", name="add_k_prob",
    task="""
### Exercise 2 · Add-k smoothing

Write `add_k_prob(bigram_counts, vocab, prev, word, k)`: the add-k estimate of P(word | prev), which pretends
every possible bigram after `prev` was seen k more times than it was (k = 1 is Laplace). It must agree with
`NGramLM(2, "add_k", k=k)` on seen and unseen bigrams, an unseen context and the end of a sentence.
""",
    stub='''
def add_k_prob(bigram_counts: dict, vocab: list, prev: str, word: str, k: float = 1.0) -> float:
    """Add-k estimate of P(word | prev). bigram_counts: {(prev, word): count}; vocab: every token."""
    raise NotImplementedError  # your code
''',
    solution='''
def add_k_prob(bigram_counts: dict, vocab: list, prev: str, word: str, k: float = 1.0) -> float:
    """Add-k estimate of P(word | prev). bigram_counts: {(prev, word): count}; vocab: every token."""
    total = sum(c for (h, _), c in bigram_counts.items() if h == prev)   # c(prev .)
    return (bigram_counts.get((prev, word), 0) + k) / (total + k * len(vocab))
''',
    wrong={
        "adds k once to the denominator, not k * V": '''
def add_k_prob(bigram_counts, vocab, prev, word, k=1.0):
    total = sum(c for (h, _), c in bigram_counts.items() if h == prev)
    return (bigram_counts.get((prev, word), 0) + k) / (total + k)
''',
        "counts all bigrams, not those starting with prev": '''
def add_k_prob(bigram_counts, vocab, prev, word, k=1.0):
    return (bigram_counts.get((prev, word), 0) + k) / (sum(bigram_counts.values()) + k * len(vocab))
''',
    }))

add(Cells(
    id="01.perplexity", name="perplexity",
    task="""
### Exercise 3 · Perplexity from probabilities

Write `perplexity(probs)`: the perplexity of a model that gave the true tokens of a held-out text these
probabilities (a 1-D numpy array). It must work for a fair die, for a single token, for certain predictions,
and for a text of 100,000 tokens.
""",
    stub='''
import numpy as np


def perplexity(probs: np.ndarray) -> float:
    """exp of the cross-entropy (nats/token) of a model that gave the true tokens probabilities probs (N,)."""
    raise NotImplementedError  # your code
''',
    solution='''
import numpy as np


def perplexity(probs: np.ndarray) -> float:
    """exp of the cross-entropy (nats/token) of a model that gave the true tokens probabilities probs (N,)."""
    return float(np.exp(-np.mean(np.log(probs))))  # average in log space: the product would underflow
''',
    wrong={
        "the product's N-th root (underflows on long texts)": '''
import numpy as np

def perplexity(probs):
    return float(np.prod(probs) ** (-1 / len(probs)))
''',
        "forgot the minus sign (1 / perplexity)": '''
import numpy as np

def perplexity(probs):
    return float(np.exp(np.mean(np.log(probs))))
''',
        "2 to the cross-entropy in nats": '''
import numpy as np

def perplexity(probs):
    return float(2 ** (-np.mean(np.log(probs))))
''',
    }))


# ================================================================================================ 00
add(Cells(
    id="00.uniform_cross_entropy", name="uniform_cross_entropy",
    task="""
## Exercise: the cross-entropy of a uniform guess

A model that knows nothing gives every one of the V characters the same probability. What is its
cross-entropy in nats per character? Complete the function; the checker tries several vocabulary sizes,
from a coin (V = 2) to GPT-2's 50,257 tokens. Every later chapter's model has to beat this number.
""",
    stub='''
def uniform_cross_entropy(vocab_size: int) -> float:
    """Cross-entropy, in nats per token, of a model that gives each of vocab_size tokens the same probability."""
    raise NotImplementedError  # your code
''',
    solution='''
import math


def uniform_cross_entropy(vocab_size: int) -> float:
    """Cross-entropy, in nats per token, of a model that gives each of vocab_size tokens the same probability."""
    return -math.log(1 / vocab_size)  # every token gets 1/V, so every term of the average is the same
''',
    wrong={
        "in bits (log base 2)": '''
import math

def uniform_cross_entropy(vocab_size):
    return math.log2(vocab_size)
''',
        "the probability itself, not its negative log": '''
def uniform_cross_entropy(vocab_size):
    return 1 / vocab_size
''',
    }))


# ================================================================================================ 03
add(Cells(
    id="03.gru_step", name="gru_step",
    task="""
### Exercise 1 · A GRU step

Write `gru_step(x, h, W_ih, W_hh, b_ih, b_hh)`: one step of torch's GRU cell. `x` (B, I), `h` (B, H), weights in
torch's layout: `W_ih` (3H, I), `W_hh` (3H, H), biases (3H,), the gate blocks stacked in the order r (reset),
z (update), n (candidate). torch's GRU applies the reset gate to the *projected* hidden state (bias included),
not to h before the projection as the original paper writes it; the checker compares with
`lmcourse.rnn.GRUCell`, which equals torch's, including with saturated gates and in float64. Write the step:
torch's GRU cells (and the kernel behind them, `torch.gru_cell`) and the package's are not accepted.
""",
    stub='''
import torch


def gru_step(x, h, W_ih, W_hh, b_ih, b_hh) -> torch.Tensor:
    """One GRU step: x (B, I), h (B, H), W_ih (3H, I), W_hh (3H, H), b_ih, b_hh (3H,) -> h_new (B, H)."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def gru_step(x, h, W_ih, W_hh, b_ih, b_hh) -> torch.Tensor:
    """One GRU step: x (B, I), h (B, H), W_ih (3H, I), W_hh (3H, H), b_ih, b_hh (3H,) -> h_new (B, H)."""
    xr, xz, xn = (x @ W_ih.T + b_ih).chunk(3, dim=1)   # (B, H) each
    hr, hz, hn = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)                         # the reset gate scales the projected state
    return (1 - z) * n + z * h                          # z keeps the old state
''',
    wrong={
        "reset gate applied to h before the projection (the paper's form)": '''
import torch

def gru_step(x, h, W_ih, W_hh, b_ih, b_hh):
    H = h.shape[1]
    xr, xz, xn = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    hr, hz, _ = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + (r * h) @ W_hh[2 * H:].T + b_hh[2 * H:])
    return (1 - z) * n + z * h
''',
        "update gate the other way round": '''
import torch

def gru_step(x, h, W_ih, W_hh, b_ih, b_hh):
    xr, xz, xn = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    hr, hz, hn = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return z * n + (1 - z) * h
''',
        "gates taken in the order z, r, n": '''
import torch

def gru_step(x, h, W_ih, W_hh, b_ih, b_hh):
    xz, xr, xn = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    hz, hr, hn = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - z) * n + z * h
''',
        "cheat: torch.nn.GRUCell with the weights loaded": '''
import torch

def gru_step(x, h, W_ih, W_hh, b_ih, b_hh):
    cell = torch.nn.GRUCell(W_ih.shape[1], h.shape[1]).to(x.dtype)
    cell.load_state_dict({"weight_ih": W_ih, "weight_hh": W_hh, "bias_ih": b_ih, "bias_hh": b_hh})
    with torch.no_grad():
        return cell(x, h)
''',
        "cheat: torch.gru_cell, the kernel behind torch's cell": '''
import torch

def gru_step(x, h, W_ih, W_hh, b_ih, b_hh):
    return torch.gru_cell(x, h, W_ih, W_hh, b_ih, b_hh)
''',
    }))

add(Cells(
    id="03.last_states", name="last_states",
    task="""
### Exercise 2 · An LSTM over a padded batch

Section 5's classifier reads sentences of different lengths in one batch: each is padded on the right to the
longest, and the label is read from the LSTM's state after the sentence's **last real word**. Section 1 wrote the
step; the loop over time around it, with padding, is left. Write `last_states(cell, xs, lengths)`: run the LSTM
cell `cell` (called as `h, c = cell(x_t, (h, c))`) over `xs` (B, T, I) from a zero state, and return `(h, c)`,
each (B, H), as they stand after step `lengths[b]` of row b: the padding after a row's end must not change its
state, and a row of length 0 keeps the zero state. Keep the dtype of `xs` (the checker tries float64). Write the
loop yourself: `lmcourse.rnn.LSTM(..., lengths=...)`, `torch.nn.LSTM` and packed sequences are not accepted.
""",
    stub='''
import torch


def last_states(cell, xs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run an LSTM cell over xs (B, T, I), right-padded, from a zero state; lengths (B,): the real steps of each row.

    cell: h, c = cell(x_t, (h, c)), x_t (B, I), h and c (B, H) with H = cell.hidden_size.
    Returns (h, c), each (B, H): the state after each row's last real step (zeros for a row of length 0).
    """
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def last_states(cell, xs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run an LSTM cell over xs (B, T, I), right-padded, from a zero state; lengths (B,): the real steps of each row.

    cell: h, c = cell(x_t, (h, c)), x_t (B, I), h and c (B, H) with H = cell.hidden_size.
    Returns (h, c), each (B, H): the state after each row's last real step (zeros for a row of length 0).
    """
    B, T, _ = xs.shape
    h = c = xs.new_zeros(B, cell.hidden_size)           # in the dtype of xs
    for t in range(T):
        h_new, c_new = cell(xs[:, t], (h, c))           # the whole batch steps...
        running = (t < lengths)[:, None]                # (B, 1): ...but only rows still inside their sequence
        h = torch.where(running, h_new, h)              # take the new state; a finished row keeps its own
        c = torch.where(running, c_new, c)
    return h, c
''',
    wrong={
        "the state after all T steps (the padding read as input)": '''
def last_states(cell, xs, lengths):
    h = c = xs.new_zeros(xs.shape[0], cell.hidden_size)
    for t in range(xs.shape[1]):
        h, c = cell(xs[:, t], (h, c))
    return h, c
''',
        "read off the column lengths - 1 (a row of length 0 gets the last step's state)": '''
import torch

def last_states(cell, xs, lengths):
    h = c = xs.new_zeros(xs.shape[0], cell.hidden_size)
    hs, cs = [], []
    for t in range(xs.shape[1]):
        h, c = cell(xs[:, t], (h, c))
        hs.append(h)
        cs.append(c)
    rows = torch.arange(xs.shape[0])
    return torch.stack(hs, 1)[rows, lengths - 1], torch.stack(cs, 1)[rows, lengths - 1]
''',
        "padding resets the state to zero": '''
def last_states(cell, xs, lengths):
    h = c = xs.new_zeros(xs.shape[0], cell.hidden_size)
    for t in range(xs.shape[1]):
        h, c = cell(xs[:, t], (h, c))
        running = (t < lengths)[:, None]
        h, c = h * running, c * running
    return h, c
''',
        "h frozen at padding, c carried on through it": '''
import torch

def last_states(cell, xs, lengths):
    h = c = xs.new_zeros(xs.shape[0], cell.hidden_size)
    for t in range(xs.shape[1]):
        h_new, c = cell(xs[:, t], (h, c))
        h = torch.where((t < lengths)[:, None], h_new, h)
    return h, c
''',
        "a float32 zero state whatever the dtype of xs": '''
import torch

def last_states(cell, xs, lengths):
    h = c = torch.zeros(xs.shape[0], cell.hidden_size)
    for t in range(xs.shape[1]):
        h_new, c_new = cell(xs[:, t], (h, c))
        running = (t < lengths)[:, None]
        h, c = torch.where(running, h_new, h), torch.where(running, c_new, c)
    return h, c
''',
        "cheat: the package's rnn.LSTM with lengths": '''
from lmcourse import rnn

def last_states(cell, xs, lengths):
    lstm = rnn.LSTM(cell.input_size, cell.hidden_size).to(xs.dtype)
    lstm.load_state_dict({f"{name}_l0": p for name, p in cell.state_dict().items()})
    _, (h, c) = lstm(xs, lengths=lengths.clamp(min=1))
    empty = (lengths == 0)[:, None]
    return h[0].masked_fill(empty, 0.0), c[0].masked_fill(empty, 0.0)
''',
    }))

add(Cells(
    id="03.clip_grad_norm", name="clip_grad_norm",
    task="""
### Exercise 3 · Clipping the gradient norm

Exploding gradients (measured above) are tamed by clipping. Write `clip_grad_norm(grads, max_norm)`: given the
gradients of all parameters (a list of tensors of any shapes), return them rescaled so that their **total**
norm, taken over all of them together, is at most `max_norm`, exactly as `torch.nn.utils.clip_grad_norm_` does
(it adds 1e-6 to the norm before dividing). Gradients whose total norm is already small come back unchanged;
all-zero gradients must not turn into NaN. `torch.nn.utils.clip_grad_norm_` itself is not accepted.
""",
    stub='''
import torch


def clip_grad_norm(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """grads rescaled so that their total 2-norm is at most max_norm (unchanged if it already is)."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def clip_grad_norm(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """grads rescaled so that their total 2-norm is at most max_norm (unchanged if it already is)."""
    total = torch.sqrt(sum(g.pow(2).sum() for g in grads))   # one norm for all parameters together
    scale = min(1.0, max_norm / (float(total) + 1e-6))        # only ever shrink; direction unchanged
    return [g * scale for g in grads]
''',
    wrong={
        "clips each tensor on its own": '''
def clip_grad_norm(grads, max_norm):
    return [g * min(1.0, max_norm / (float(g.norm()) + 1e-6)) for g in grads]
''',
        "always rescales to max_norm, also small gradients": '''
import torch

def clip_grad_norm(grads, max_norm):
    total = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    return [g * max_norm / (float(total) + 1e-6) for g in grads]
''',
        "clips values, not the norm": '''
def clip_grad_norm(grads, max_norm):
    return [g.clamp(-max_norm, max_norm) for g in grads]
''',
        "cheat: torch.nn.utils.clip_grad_norm_ on parameters holding the gradients": '''
import torch

def clip_grad_norm(grads, max_norm):
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params]
''',
    }))

add(Cells(
    id="03.truncated_bptt", name="truncated_bptt",
    task="""
### Exercise 4 · Truncated backpropagation through time

A long text cannot be backpropagated through in one piece. Truncated BPTT runs the recurrence over the whole
sequence but cuts the gradient every k steps. Write `truncated_bptt(cell, xs, h0, k)`: run `h = cell(x, h)` over
`xs` (T, B, I) from `h0`, in chunks of k steps (the last chunk may be shorter). For each chunk, the loss is the
sum over its steps of `h.square().mean()`; call `loss.backward()` at the end of the chunk (gradients add up in
the cell's `.grad`), then carry the state to the next chunk **detached**. Return the final `h`. The checker
compares the final state and the accumulated gradients with its own loop for several T and k (k may exceed T).
""",
    stub='''
import torch


def truncated_bptt(cell: torch.nn.Module, xs: torch.Tensor, h0: torch.Tensor, k: int) -> torch.Tensor:
    """Run cell over xs (T, B, I) from h0 (B, H), backward every k steps, state detached between chunks.

    Gradients accumulate in cell's parameters; returns the final h (B, H).
    """
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def truncated_bptt(cell: torch.nn.Module, xs: torch.Tensor, h0: torch.Tensor, k: int) -> torch.Tensor:
    """Run cell over xs (T, B, I) from h0 (B, H), backward every k steps, state detached between chunks.

    Gradients accumulate in cell's parameters; returns the final h (B, H).
    """
    h = h0
    for start in range(0, len(xs), k):
        loss = 0.0
        for x in xs[start:start + k]:
            h = cell(x, h)
            loss = loss + h.square().mean()
        loss.backward()      # the gradient flows back at most k steps
        h = h.detach()       # keep the value, cut the history
    return h
''',
    wrong={
        "full backpropagation through the whole sequence": '''
def truncated_bptt(cell, xs, h0, k):
    h, loss = h0, 0.0
    for x in xs:
        h = cell(x, h)
        loss = loss + h.square().mean()
    loss.backward()
    return h.detach()
''',
        "never detaches (backward through the previous chunk's graph again)": '''
def truncated_bptt(cell, xs, h0, k):
    h = h0
    for start in range(0, len(xs), k):
        loss = 0.0
        for x in xs[start:start + k]:
            h = cell(x, h)
            loss = loss + h.square().mean()
        loss.backward(retain_graph=True)
    return h.detach()
''',
        "resets the state to h0 at every chunk": '''
def truncated_bptt(cell, xs, h0, k):
    for start in range(0, len(xs), k):
        h, loss = h0, 0.0
        for x in xs[start:start + k]:
            h = cell(x, h)
            loss = loss + h.square().mean()
        loss.backward()
    return h.detach()
''',
        "cheat: the checker's own reference loop": '''
from lmcourse.exercises.ch03 import _reference_tbptt

def truncated_bptt(cell, xs, h0, k):
    return _reference_tbptt(cell, xs, h0, k).detach()
''',
    }))


# ================================================================================================ 05
add(Cells(
    id="05.sinusoidal_positions", name="sinusoidal_positions",
    task="""
### Exercise 1 · Sinusoidal positional encodings

Write `sinusoidal_positions(n_positions, d_model)`, the fixed encodings of *Attention Is All You Need*, shape
(n_positions, d_model): PE[pos, 2i] = sin(pos / 10000^(2i/d_model)) and PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model)).
Each pair of dimensions is a clock with its own wavelength. The checker compares with
`lmcourse.transformer.sinusoidal_positions` for several sizes (d_model even).
""",
    stub='''
import torch


def sinusoidal_positions(n_positions: int, d_model: int) -> torch.Tensor:
    """PE (n_positions, d_model): sin in the even columns, cos in the odd ones, pair i at frequency 10000^(-2i/d_model)."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def sinusoidal_positions(n_positions: int, d_model: int) -> torch.Tensor:
    """PE (n_positions, d_model): sin in the even columns, cos in the odd ones, pair i at frequency 10000^(-2i/d_model)."""
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]                     # (T, 1)
    inv_freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)  # (d_model/2,)
    angle = position * inv_freq                                                            # (T, d_model/2)
    pe = torch.zeros(n_positions, d_model)
    pe[:, 0::2], pe[:, 1::2] = angle.sin(), angle.cos()
    return pe
''',
    wrong={
        "sin block then cos block (not interleaved)": '''
import torch

def sinusoidal_positions(n_positions, d_model):
    angle = torch.arange(n_positions)[:, None] * 10000.0 ** (-torch.arange(0, d_model, 2) / d_model)
    return torch.cat([angle.sin(), angle.cos()], dim=1)
''',
        "frequency from the dimension index, not the pair index": '''
import torch

def sinusoidal_positions(n_positions, d_model):
    angle = torch.arange(n_positions)[:, None] * 10000.0 ** (-torch.arange(d_model) / d_model)
    pe = angle.sin()
    pe[:, 1::2] = angle[:, 1::2].cos()
    return pe
''',
        "sin and cos swapped": '''
import torch

def sinusoidal_positions(n_positions, d_model):
    angle = torch.arange(n_positions)[:, None] * 10000.0 ** (-torch.arange(0, d_model, 2) / d_model)
    pe = torch.zeros(n_positions, d_model)
    pe[:, 0::2], pe[:, 1::2] = angle.cos(), angle.sin()
    return pe
''',
    }))

add(Cells(
    id="05.pre_norm_block", name="pre_norm_block",
    task="""
### Exercise 2 · A pre-norm block

Write `pre_norm_block(layer, x, mask=None)`: the forward pass of a **pre-norm** encoder block from its parts,
`layer.norm1`, `layer.self_attn` (a `MultiHeadAttention`: call it as `layer.self_attn(q, k, v, mask=mask)`,
it returns `(out, weights)`), `layer.norm2` and `layer.ff`. Pre-norm normalises the input of each sub-layer
and leaves the residual stream itself un-normalised; Xiong et al. (2020) show that this lets deep pre-norm
stacks train without warm-up (at this notebook's size, the experiment above found no difference). The checker compares with `EncoderLayer(..., norm_first=True)` in eval mode, with and
without masks, with layer norms whose weights are not all ones.
""",
    stub='''
import torch


def pre_norm_block(layer, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """x (B, T, d_model) -> (B, T, d_model): x + attn(norm1(x)), then + ff(norm2(.)). layer: an EncoderLayer."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def pre_norm_block(layer, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """x (B, T, d_model) -> (B, T, d_model): x + attn(norm1(x)), then + ff(norm2(.)). layer: an EncoderLayer."""
    a = layer.norm1(x)
    x = x + layer.self_attn(a, a, a, mask=mask)[0]   # the residual stream itself is never normalised
    return x + layer.ff(layer.norm2(x))
''',
    wrong={
        "post-norm order": '''
def pre_norm_block(layer, x, mask=None):
    x = layer.norm1(x + layer.self_attn(x, x, x, mask=mask)[0])
    return layer.norm2(x + layer.ff(x))
''',
        "normalises the sub-layer's output instead of its input": '''
def pre_norm_block(layer, x, mask=None):
    x = x + layer.norm1(layer.self_attn(x, x, x, mask=mask)[0])
    return x + layer.norm2(layer.ff(x))
''',
        "feeds the normalised input on (the residual carries norm1(x))": '''
def pre_norm_block(layer, x, mask=None):
    x = layer.norm1(x)
    x = x + layer.self_attn(x, x, x, mask=mask)[0]
    return x + layer.ff(layer.norm2(x))
''',
    }))

add(Cells(
    id="05.bert_mask", name="bert_mask",
    task="""
### Exercise 3 · BERT's masking rule

Implement the rule given the random numbers: `u_pick` and `u_split` are uniform in [0, 1), `random_ids` holds
candidate random tokens, all of the shape of `ids`. A position is **picked** where `u_pick < p`, but never a
special token (`ids >= n_regular`). Of the picked positions, `u_split < 0.8` → `mask_id`,
`0.8 <= u_split < 0.9` → the random id, the rest stay unchanged. Return `(inputs, labels)` with labels
`-100` (the loss's `ignore_index`) where not picked and the original id where picked. Fed the same random
numbers, your rule must reproduce `lmcourse.mlm.mask_tokens` exactly, with special tokens and several p.
""",
    stub='''
import torch


def bert_mask(ids, u_pick, u_split, random_ids, mask_id: int, n_regular: int, p: float = 0.15):
    """BERT's 80/10/10 rule. ids, u_pick, u_split, random_ids: (B, T). Returns (inputs (B, T), labels (B, T))."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def bert_mask(ids, u_pick, u_split, random_ids, mask_id: int, n_regular: int, p: float = 0.15):
    """BERT's 80/10/10 rule. ids, u_pick, u_split, random_ids: (B, T). Returns (inputs (B, T), labels (B, T))."""
    picked = (u_pick < p) & (ids < n_regular)                      # specials are never picked
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (u_split < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(picked & (u_split >= 0.8) & (u_split < 0.9), random_ids, inputs)
    return inputs, labels
''',
    wrong={
        "special tokens can be picked": '''
import torch

def bert_mask(ids, u_pick, u_split, random_ids, mask_id, n_regular, p=0.15):
    picked = u_pick < p
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (u_split < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(picked & (u_split >= 0.8) & (u_split < 0.9), random_ids, inputs)
    return inputs, labels
''',
        "labels at every position": '''
import torch

def bert_mask(ids, u_pick, u_split, random_ids, mask_id, n_regular, p=0.15):
    picked = (u_pick < p) & (ids < n_regular)
    inputs = torch.where(picked & (u_split < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(picked & (u_split >= 0.8) & (u_split < 0.9), random_ids, inputs)
    return inputs, ids.clone()
''',
        "10/10/80 (random and unchanged first, mask last)": '''
import torch

def bert_mask(ids, u_pick, u_split, random_ids, mask_id, n_regular, p=0.15):
    picked = (u_pick < p) & (ids < n_regular)
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (u_split < 0.1), random_ids, ids)
    inputs = torch.where(picked & (u_split >= 0.2), torch.full_like(ids, mask_id), inputs)
    return inputs, labels
''',
    }))


# ================================================================================================ 02
add(Cells(
    id="02.cosine_matrix", name="cosine_matrix",
    task="""
### Exercise 1 · The cosine similarity matrix

Write `cosine_matrix(A, B)`: for numpy arrays A (n, d) and B (m, d), the (n, m) matrix of cosine similarities
u·v / (|u| |v|) between every row u of A and every row v of B, in one matrix product, no Python loop. A row of
zeros has no direction: give it similarity 0 (not NaN). The checker tries rows of very different lengths, a zero
row and float32 input; nearest neighbours and analogies are built on this matrix.
""",
    stub='''
import numpy as np


def cosine_matrix(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Cosine similarities between the rows of A (n, d) and of B (m, d): (n, m); 0 for an all-zero row."""
    raise NotImplementedError  # your code
''',
    solution='''
import numpy as np


def cosine_matrix(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Cosine similarities between the rows of A (n, d) and of B (m, d): (n, m); 0 for an all-zero row."""
    def unit(X):
        X = np.asarray(X, dtype=np.float64)
        return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)  # a zero row stays zero
    return unit(A) @ unit(B).T
''',
    wrong={
        "dot products, not normalised": '''
def cosine_matrix(A, B):
    return A @ B.T
''',
        "normalised along the wrong axis": '''
import numpy as np

def cosine_matrix(A, B):
    return (A / np.linalg.norm(A, axis=0)) @ (B / np.linalg.norm(B, axis=0)).T
''',
        "NaN for an all-zero row": '''
import numpy as np

def cosine_matrix(A, B):
    return (A / np.linalg.norm(A, axis=1, keepdims=True)) @ (B / np.linalg.norm(B, axis=1, keepdims=True)).T
''',
    }))

add(Cells(
    id="02.sgns_loss_and_grads", name="sgns_loss_and_grads",
    task=r"""
### Exercise 2 · The skip-gram negative-sampling loss and its gradients

For a batch of (centre, context) pairs with K negative words each, word2vec minimises

$$L = -\sum_b \Big[\log\sigma(u_{pos,b}\cdot v_b) + \sum_k \log\sigma(-u_{neg,b,k}\cdot v_b)\Big]$$

with v the centre word's input vector and u the output vectors. Write `sgns_loss_and_grads(v, u_pos, u_neg)`
returning `(loss, grad_v, grad_u_pos, grad_u_neg)`: the loss and its gradients with respect to each input,
**by hand** (no autograd; d/ds log σ(s) = σ(-s)). This is the update `lmcourse.skipgram.sgd_step` applies. Shapes:
v (B, d), u_pos (B, d), u_neg (B, K, d); the gradients have the shapes of their inputs. The checker compares with
autograd on `SkipGramNS.loss`, including scores in the hundreds, where log(sigmoid(x)) is -inf in float32.
""",
    stub='''
import torch


def sgns_loss_and_grads(v: torch.Tensor, u_pos: torch.Tensor, u_neg: torch.Tensor):
    """Summed SGNS loss and its gradients. v (B, d), u_pos (B, d), u_neg (B, K, d).

    Returns (loss (scalar), grad_v (B, d), grad_u_pos (B, d), grad_u_neg (B, K, d)).
    """
    raise NotImplementedError  # your code
''',
    solution='''
import torch
from torch.nn import functional as F


def sgns_loss_and_grads(v: torch.Tensor, u_pos: torch.Tensor, u_neg: torch.Tensor):
    """Summed SGNS loss and its gradients. v (B, d), u_pos (B, d), u_neg (B, K, d).

    Returns (loss (scalar), grad_v (B, d), grad_u_pos (B, d), grad_u_neg (B, K, d)).
    """
    s_pos = (u_pos * v).sum(-1)                           # (B,)
    s_neg = torch.einsum("bkd,bd->bk", u_neg, v)         # (B, K)
    loss = -(F.logsigmoid(s_pos).sum() + F.logsigmoid(-s_neg).sum())   # stable for large |s|
    g_pos, g_neg = -torch.sigmoid(-s_pos), torch.sigmoid(s_neg)        # dL/ds_pos (B,), dL/ds_neg (B, K)
    grad_v = g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)
    return loss, grad_v, g_pos[:, None] * v, g_neg[:, :, None] * v[:, None, :]
''',
    wrong={
        "log(sigmoid(x)): -inf for large scores": '''
import torch

def sgns_loss_and_grads(v, u_pos, u_neg):
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    loss = -(torch.log(torch.sigmoid(s_pos)).sum() + torch.log(torch.sigmoid(-s_neg)).sum())
    g_pos, g_neg = -torch.sigmoid(-s_pos), torch.sigmoid(s_neg)
    grad_v = g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)
    return loss, grad_v, g_pos[:, None] * v, g_neg[:, :, None] * v[:, None, :]
''',
        "negatives pushed the wrong way (log σ(+s_neg))": '''
import torch
from torch.nn import functional as F

def sgns_loss_and_grads(v, u_pos, u_neg):
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    loss = -(F.logsigmoid(s_pos).sum() + F.logsigmoid(s_neg).sum())
    g_pos, g_neg = -torch.sigmoid(-s_pos), -torch.sigmoid(-s_neg)
    grad_v = g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)
    return loss, grad_v, g_pos[:, None] * v, g_neg[:, :, None] * v[:, None, :]
''',
        "gradient with sigmoid(s) where sigmoid(-s) belongs": '''
import torch
from torch.nn import functional as F

def sgns_loss_and_grads(v, u_pos, u_neg):
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    loss = -(F.logsigmoid(s_pos).sum() + F.logsigmoid(-s_neg).sum())
    g_pos, g_neg = -torch.sigmoid(s_pos), torch.sigmoid(s_neg)
    grad_v = g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)
    return loss, grad_v, g_pos[:, None] * v, g_neg[:, :, None] * v[:, None, :]
''',
        "mean over the batch instead of the sum": '''
import torch
from torch.nn import functional as F

def sgns_loss_and_grads(v, u_pos, u_neg):
    B = v.shape[0]
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    loss = -(F.logsigmoid(s_pos).sum() + F.logsigmoid(-s_neg).sum()) / B
    g_pos, g_neg = -torch.sigmoid(-s_pos) / B, torch.sigmoid(s_neg) / B
    grad_v = g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)
    return loss, grad_v, g_pos[:, None] * v, g_neg[:, :, None] * v[:, None, :]
''',
    }))

add(Cells(
    id="02.three_cos_add", name="three_cos_add",
    task="""
### Exercise 3 · The 3CosAdd analogy

"a is to b as c is to ?": normalise every vector to unit length, form unit(b) - unit(a) + unit(c), and return
the word, other than a, b and c, with the highest cosine similarity to it. `vectors` is a (V, d) numpy array
whose row i is the vector of `words[i]`. Word2vec vectors have very different lengths (frequent words are
longer), which is why the normalisation matters; the checker uses random vectors of varied lengths and a
planted answer, and compares with `lmcourse.embeddings.analogy`.
""",
    stub='''
import numpy as np


def three_cos_add(vectors: np.ndarray, words: list[str], a: str, b: str, c: str) -> str:
    """The word (not a, b or c) nearest in cosine to unit(b) - unit(a) + unit(c). vectors (V, d), words (V,)."""
    raise NotImplementedError  # your code
''',
    solution='''
import numpy as np


def three_cos_add(vectors: np.ndarray, words: list[str], a: str, b: str, c: str) -> str:
    """The word (not a, b or c) nearest in cosine to unit(b) - unit(a) + unit(c). vectors (V, d), words (V,)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)      # (V, d)
    index = {w: i for i, w in enumerate(words)}
    target = unit[index[b]] - unit[index[a]] + unit[index[c]]
    scores = unit @ (target / np.linalg.norm(target))                     # cosine with every word, (V,)
    scores[[index[a], index[b], index[c]]] = -np.inf                     # the question words are not answers
    return words[int(scores.argmax())]
''',
    wrong={
        "raw vectors, no normalisation": '''
import numpy as np

def three_cos_add(vectors, words, a, b, c):
    index = {w: i for i, w in enumerate(words)}
    scores = vectors @ (vectors[index[b]] - vectors[index[a]] + vectors[index[c]])
    scores[[index[a], index[b], index[c]]] = -np.inf
    return words[int(scores.argmax())]
''',
        "the question words are not excluded": '''
import numpy as np

def three_cos_add(vectors, words, a, b, c):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    index = {w: i for i, w in enumerate(words)}
    return words[int((unit @ (unit[index[b]] - unit[index[a]] + unit[index[c]])).argmax())]
''',
        "target built from the raw vectors": '''
import numpy as np

def three_cos_add(vectors, words, a, b, c):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    index = {w: i for i, w in enumerate(words)}
    scores = unit @ (vectors[index[b]] - vectors[index[a]] + vectors[index[c]])
    scores[[index[a], index[b], index[c]]] = -np.inf
    return words[int(scores.argmax())]
''',
    }))


# ================================================================================================ 07
add(Cells(
    id="07.q_sample", name="q_sample",
    task=r"""
### Exercise 1 · The forward process

Write `q_sample(schedule, x0, t, noise)`: a draw of $q(x_t \mid x_0)$ for a batch, $x_t = \sqrt{\bar\alpha_t}\,x_0 +
\sqrt{1-\bar\alpha_t}\,\varepsilon$, with `t` a LongTensor (B,) of step indices in [0, T) and
`schedule.alphas_cumprod` (float64, shape (T,)) holding $\bar\alpha$. It must work for points (B, 2) and for
images (B, C, H, W) alike, and return x0's dtype. The checker compares with `NoiseSchedule.q_sample` on a linear
and a cosine schedule, at the first and last steps.
""",
    stub='''
import torch


def q_sample(schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise for x0 (B, ...), t (B,) long, noise like x0."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def q_sample(schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise for x0 (B, ...), t (B,) long, noise like x0."""
    abar = schedule.alphas_cumprod[t].to(x0.dtype)              # (B,)
    abar = abar.view(-1, *([1] * (x0.dim() - 1)))              # (B, 1, ..., 1): broadcasts over any shape
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise
''',
    wrong={
        "alphas (one step) instead of alphas_cumprod": '''
def q_sample(schedule, x0, t, noise):
    a = schedule.alphas[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise
''',
        "no square roots": '''
def q_sample(schedule, x0, t, noise):
    abar = schedule.alphas_cumprod[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    return abar * x0 + (1 - abar) * noise
''',
        "works for (B, D) only (abar[:, None])": '''
def q_sample(schedule, x0, t, noise):
    abar = schedule.alphas_cumprod[t].float()[:, None]
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise
''',
        "returns float64 (the schedule's dtype, not x0's)": '''
def q_sample(schedule, x0, t, noise):
    abar = schedule.alphas_cumprod[t].view(-1, *([1] * (x0.dim() - 1)))
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise
''',
    }))

add(Cells(
    id="07.ddpm_posterior", name="ddpm_posterior",
    task=r"""
### Exercise 2 · The DDPM posterior

The reverse step of DDPM is built on the posterior of the forward process, which is Gaussian with

$$\tilde\mu_t(x_t, x_0) = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0 + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t,
\qquad \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t .$$

Write `ddpm_posterior(schedule, x0, x_t, t)` returning `(mean, variance)`: the mean of the shape of x0, the variance
of shape (B,). Use `schedule.betas`, `schedule.alphas` and `schedule.alphas_cumprod` (float64, shape (T,); index i
stands for step i + 1, and $\bar\alpha$ before the first step is 1). `ddpm_step` plugs the model's estimate of x0
into this mean. The checker tries a linear and a cosine schedule, images, and the first step.
""",
    stub='''
import torch


def ddpm_posterior(schedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
    """Mean (B, ...) and variance (B,) of q(x_{t-1} | x_t, x0). x0, x_t (B, ...), t (B,) long step indices."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def ddpm_posterior(schedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
    """Mean (B, ...) and variance (B,) of q(x_{t-1} | x_t, x0). x0, x_t (B, ...), t (B,) long step indices."""
    abar = schedule.alphas_cumprod
    abar_prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])   # abar before the first step is 1
    beta, alpha = schedule.betas, schedule.alphas
    coef_x0 = abar_prev.sqrt() * beta / (1 - abar)
    coef_xt = alpha.sqrt() * (1 - abar_prev) / (1 - abar)
    variance = beta * (1 - abar_prev) / (1 - abar)

    def at_t(v):  # (T,) -> (B, 1, ..., 1) in x0's dtype
        return v[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))

    return at_t(coef_x0) * x0 + at_t(coef_xt) * x_t, variance[t]
''',
    wrong={
        "variance beta_t (the other choice of sigma)": '''
import torch

def ddpm_posterior(schedule, x0, x_t, t):
    abar = schedule.alphas_cumprod
    prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
    at = lambda v: v[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    mean = at(prev.sqrt() * schedule.betas / (1 - abar)) * x0 + at(schedule.alphas.sqrt() * (1 - prev) / (1 - abar)) * x_t
    return mean, schedule.betas[t]
''',
        "abar_t where abar_{t-1} belongs": '''
def ddpm_posterior(schedule, x0, x_t, t):
    abar = schedule.alphas_cumprod
    at = lambda v: v[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    mean = at(abar.sqrt() * schedule.betas / (1 - abar)) * x0 + at(schedule.alphas.sqrt() * (1 - abar) / (1 - abar)) * x_t
    return mean, (schedule.betas * (1 - abar) / (1 - abar))[t]
''',
        "coefficients of x0 and x_t swapped": '''
import torch

def ddpm_posterior(schedule, x0, x_t, t):
    abar = schedule.alphas_cumprod
    prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
    at = lambda v: v[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    mean = at(prev.sqrt() * schedule.betas / (1 - abar)) * x_t + at(schedule.alphas.sqrt() * (1 - prev) / (1 - abar)) * x0
    return mean, (schedule.betas * (1 - prev) / (1 - abar))[t]
''',
    }))

add(Cells(
    id="07.masked_diffusion_loss", name="masked_diffusion_loss",
    task=r"""
### Exercise 3 · The masked-diffusion loss

A masked (absorbing) diffusion LM hides each token with probability t and learns to predict the hidden ones.
Its training loss is an upper bound on the negative log-likelihood, in nats per token:

$$\mathcal{L} = \mathbb{E}_b\Big[\frac{1}{t_b}\,\frac{1}{L}\sum_{i\,\text{masked}} -\log p_\theta(x_{0,i} \mid x_t)\Big]$$

Write `masked_diffusion_loss(logits, x0, masked, t)`: given the denoiser's logits (B, L, V) for the masked
sequences, the clean tokens x0 (B, L), the boolean mask (B, L) and the masking rates t (B,), return the loss (a
scalar). The checker compares with `lmcourse.text_diffusion.masked_diffusion_loss` fed the same mask, including
t = 1 and tiny t, where a sequence may have no masked token at all.
""",
    stub='''
import torch


def masked_diffusion_loss(logits: torch.Tensor, x0: torch.Tensor, masked: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """ELBO of masked diffusion, nats/token: mean over b of (1/t_b) * sum of masked CE / L. logits (B, L, V)."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch
from torch.nn import functional as F


def masked_diffusion_loss(logits: torch.Tensor, x0: torch.Tensor, masked: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """ELBO of masked diffusion, nats/token: mean over b of (1/t_b) * sum of masked CE / L. logits (B, L, V)."""
    nll = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")   # (B, L)
    per_sequence = (nll * masked).sum(dim=1) / t                           # (B,): rare masks weigh more
    return per_sequence.mean() / x0.shape[1]
''',
    wrong={
        "averaged over the masked tokens (no 1/t weight)": '''
from torch.nn import functional as F

def masked_diffusion_loss(logits, x0, masked, t):
    nll = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")
    return (nll * masked).sum() / masked.sum().clamp(min=1)
''',
        "forgets the 1/t weight": '''
from torch.nn import functional as F

def masked_diffusion_loss(logits, x0, masked, t):
    nll = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")
    return (nll * masked).sum(1).mean() / x0.shape[1]
''',
        "counts every position, masked or not": '''
from torch.nn import functional as F

def masked_diffusion_loss(logits, x0, masked, t):
    nll = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")
    return (nll.sum(1) / t).mean() / x0.shape[1]
''',
    }))


# ================================================================================================ 08
add(Cells(
    id="08.all_reduce_mean", name="all_reduce_mean",
    task="""
### Exercise 1 · An all-reduce by hand

After `backward()`, DDP all-reduces the gradients so that every process takes the same step, the one a single
process would take on the whole global batch. Simulate it without processes: `rank_grads` is a list with one
dict per rank, mapping each parameter's name to that rank's gradient. Write `all_reduce_mean(rank_grads)`:
return what every rank holds afterwards, one dict per rank, in the gradients' dtype. (With real processes this
is `lmcourse.distributed.average_gradients`: `dist.all_reduce` with SUM, then a division.) The checker tries
1, 2, 4 and 8 ranks and float16 gradients.
""",
    stub='''
import torch


def all_reduce_mean(rank_grads: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """rank_grads[r][name]: rank r's gradient of parameter name. Returns every rank's gradients after the all-reduce."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def all_reduce_mean(rank_grads: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """rank_grads[r][name]: rank r's gradient of parameter name. Returns every rank's gradients after the all-reduce."""
    world_size = len(rank_grads)
    mean = {name: sum(grads[name] for grads in rank_grads) / world_size for name in rank_grads[0]}
    return [{name: g.clone() for name, g in mean.items()} for _ in range(world_size)]  # every rank, the same
''',
    wrong={
        "sum without dividing by the world size": '''
def all_reduce_mean(rank_grads):
    total = {name: sum(g[name] for g in rank_grads) for name in rank_grads[0]}
    return [dict(total) for _ in rank_grads]
''',
        "each rank keeps its own gradient (no all-reduce)": '''
def all_reduce_mean(rank_grads):
    return [dict(g) for g in rank_grads]
''',
        "one dict for everyone instead of one per rank": '''
def all_reduce_mean(rank_grads):
    return {name: sum(g[name] for g in rank_grads) / len(rank_grads) for name in rank_grads[0]}
''',
    }))

add(Cells(
    id="08.accumulate_gradients", name="accumulate_gradients",
    task="""
### Exercise 2 · Gradient accumulation

When the global batch does not fit in memory, split it into micro-batches and accumulate their gradients
before one optimizer step. Write `accumulate_gradients(model, micro_batches, loss_fn)`: `loss_fn(model, batch)`
returns the **mean** loss over a micro-batch; leave in the parameters' `.grad` exactly the gradient of the mean
loss over all the examples together (the `.grad` are empty at the start), and return that whole-batch loss as a
float. The checker compares with one backward pass on the whole batch, with equal and **unequal** micro-batch
sizes.
""",
    stub='''
import torch


def accumulate_gradients(model: torch.nn.Module, micro_batches: list, loss_fn) -> float:
    """Accumulate in model's .grad the gradient of the mean loss over all micro-batches together; return that loss.

    micro_batches: a list of (x, y); loss_fn(model, (x, y)) -> the mean loss over that micro-batch.
    """
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def accumulate_gradients(model: torch.nn.Module, micro_batches: list, loss_fn) -> float:
    """Accumulate in model's .grad the gradient of the mean loss over all micro-batches together; return that loss.

    micro_batches: a list of (x, y); loss_fn(model, (x, y)) -> the mean loss over that micro-batch.
    """
    n_total = sum(len(x) for x, _ in micro_batches)
    total = 0.0
    for x, y in micro_batches:
        loss = loss_fn(model, (x, y)) * len(x) / n_total   # each micro-batch weighs its share of the examples
        loss.backward()                                      # gradients add up in .grad
        total += loss.item()
    return total
''',
    wrong={
        "no scaling (the sum of the micro-batch means)": '''
def accumulate_gradients(model, micro_batches, loss_fn):
    total = 0.0
    for batch in micro_batches:
        loss = loss_fn(model, batch)
        loss.backward()
        total += loss.item()
    return total / len(micro_batches)
''',
        "divides by the number of micro-batches (wrong when sizes differ)": '''
def accumulate_gradients(model, micro_batches, loss_fn):
    total = 0.0
    for batch in micro_batches:
        loss = loss_fn(model, batch) / len(micro_batches)
        loss.backward()
        total += loss.item()
    return total
''',
        "zeroes the gradients inside the loop": '''
def accumulate_gradients(model, micro_batches, loss_fn):
    n_total = sum(len(x) for x, _ in micro_batches)
    total = 0.0
    for x, y in micro_batches:
        model.zero_grad()
        loss = loss_fn(model, (x, y)) * len(x) / n_total
        loss.backward()
        total += loss.item()
    return total
''',
    }))

add(Cells(
    id="08.ring_allreduce_bytes", name="ring_allreduce_bytes",
    task="""
### Exercise 3 · What a ring all-reduce costs

NCCL and gloo all-reduce large gradients with a **ring**: a reduce-scatter (after N - 1 steps, each process holds
the sum of one 1/N chunk) followed by an all-gather (N - 1 more steps pass the summed chunks around). Write
`ring_allreduce_bytes(n_params, world_size, bytes_per_param=4)`: the bytes each process sends in one all-reduce of
the gradients. Then look at what happens to it as world_size grows. The checker compares with
`lmcourse.distributed.ring_allreduce_bytes`, from 1 process to 1024.
""",
    stub='''
def ring_allreduce_bytes(n_params: int, world_size: int, bytes_per_param: int = 4) -> float:
    """Bytes each process sends in one ring all-reduce of n_params gradients among world_size processes."""
    raise NotImplementedError  # your code
''',
    solution='''
def ring_allreduce_bytes(n_params: int, world_size: int, bytes_per_param: int = 4) -> float:
    """Bytes each process sends in one ring all-reduce of n_params gradients among world_size processes."""
    chunk = n_params * bytes_per_param / world_size        # one 1/N share of the gradient bytes
    return 2 * (world_size - 1) * chunk                     # N - 1 steps of reduce-scatter, N - 1 of all-gather
''',
    wrong={
        "twice the gradient bytes, ignoring (N - 1) / N": '''
def ring_allreduce_bytes(n_params, world_size, bytes_per_param=4):
    return 2 * n_params * bytes_per_param
''',
        "only the reduce-scatter": '''
def ring_allreduce_bytes(n_params, world_size, bytes_per_param=4):
    return (world_size - 1) / world_size * n_params * bytes_per_param
''',
        "every process sends everything to every other": '''
def ring_allreduce_bytes(n_params, world_size, bytes_per_param=4):
    return (world_size - 1) * n_params * bytes_per_param
''',
    }))


# ================================================================================================ 09
add(Cells(
    id="09.cross_entropy_nats", name="cross_entropy_nats",
    task="""
### Exercise 1 · The yardstick: cross-entropy from logits

Every number in the table is a cross-entropy on held-out text. Write `cross_entropy_nats(logits, targets)`: for
logits (N, V) of N positions and the true tokens `targets` (N,), the mean over positions of -ln p(true token), in
nats. Never form the probabilities themselves: with confident logits in the hundreds, or float16 logits,
`softmax(...).log()` gives -inf. The checker compares with `torch.nn.functional.cross_entropy`.
""",
    stub='''
import torch


def cross_entropy_nats(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean of -ln p(target) over N positions, in nats. logits (N, V) (any float dtype), targets (N,) long."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def cross_entropy_nats(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean of -ln p(target) over N positions, in nats. logits (N, V) (any float dtype), targets (N,) long."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)   # logits - logsumexp: no overflow, no log(0)
    return float(-log_probs.gather(1, targets[:, None]).mean())
''',
    wrong={
        "log of the softmax (-inf for confident logits)": '''
import torch

def cross_entropy_nats(logits, targets):
    return float(-torch.softmax(logits.float(), -1).log().gather(1, targets[:, None]).mean())
''',
        "in bits": '''
import math
import torch

def cross_entropy_nats(logits, targets):
    return float(-torch.log_softmax(logits.float(), -1).gather(1, targets[:, None]).mean()) / math.log(2)
''',
        "summed over positions": '''
import torch

def cross_entropy_nats(logits, targets):
    return float(-torch.log_softmax(logits.float(), -1).gather(1, targets[:, None]).sum())
''',
    }))

add(Cells(
    id="09.paired_bootstrap", name="paired_bootstrap",
    task="""
### Exercise 2 · Is the difference real? A paired bootstrap

Two models scored on the same characters give per-character losses `nll_a` and `nll_b` (N,). Is A's mean loss
really higher than B's, or is the gap within the noise of which characters happened to be held out? Write
`paired_bootstrap(nll_a, nll_b, n_boot, seed)`: resample the N **positions** with replacement, n_boot times, the
same positions for both models, using `np.random.default_rng(seed).integers(0, N, size=(n_boot, N))` (one row of
indices per resample); compute the mean of nll_a - nll_b on each; return the 95 % percentile interval
`(low, high)` (`np.percentile` at 2.5 and 97.5). Neighbouring characters are correlated, so on real text this
interval is too narrow: section 7 and the project's checker resample blocks of 1,000 characters instead.
""",
    stub='''
import numpy as np


def paired_bootstrap(nll_a: np.ndarray, nll_b: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of mean(nll_a - nll_b), resampling positions (paired). nll_a, nll_b: (N,)."""
    raise NotImplementedError  # your code
''',
    solution='''
import numpy as np


def paired_bootstrap(nll_a: np.ndarray, nll_b: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of mean(nll_a - nll_b), resampling positions (paired). nll_a, nll_b: (N,)."""
    diff = nll_a - nll_b                                   # paired: the shared difficulty of each character cancels
    index = np.random.default_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))
    means = diff[index].mean(axis=1)                       # (n_boot,)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
''',
    wrong={
        "unpaired: each model resampled on its own positions": '''
import numpy as np

def paired_bootstrap(nll_a, nll_b, n_boot=1000, seed=0):
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(nll_a), size=(n_boot, len(nll_a)))
    ib = rng.integers(0, len(nll_b), size=(n_boot, len(nll_b)))
    low, high = np.percentile(nll_a[ia].mean(1) - nll_b[ib].mean(1), [2.5, 97.5])
    return float(low), float(high)
''',
        "a 90 % interval (5th and 95th percentiles)": '''
import numpy as np

def paired_bootstrap(nll_a, nll_b, n_boot=1000, seed=0):
    diff = nll_a - nll_b
    index = np.random.default_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))
    low, high = np.percentile(diff[index].mean(1), [5, 95])
    return float(low), float(high)
''',
        "a normal interval (mean ± 1.96 standard errors)": '''
import numpy as np

def paired_bootstrap(nll_a, nll_b, n_boot=1000, seed=0):
    diff = nll_a - nll_b
    half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff))
    return float(diff.mean() - half), float(diff.mean() + half)
''',
    }))

add(Cells(
    id="09.project", name="my_model_log_probs",
    task="""
### Exercise 3 · The project: beat the n-gram

Build the best model you can: a bigger or longer-trained GPT, an LSTM with truncated BPTT, an n-gram of higher order
or with a tuned discount, or a mixture of models (mixing probabilities, not losses). Train it on the training split
only, and choose its settings on validation characters the checker does not score (those after the first 100,000).
Then hand it to the checker as a function: `my_model_log_probs(ids)` takes held-out character ids (the course
tokenizer's, a NumPy array of N ids) and returns the natural-log probability of each character after the first,
given the characters before it (an array of N - 1 numbers). The checker scores it itself: on the first 100,000
validation characters, against the best of the Kneser-Ney n-grams of orders 4 to 7 (discount 0.75) on the same
characters, with a paired 95 % block bootstrap interval. It also feeds your function texts of its own choosing, to
see that each probability uses only the characters before it and that a next-character distribution sums to 1.

**What the check says.** ✓ means that your model is valid and was scored: causal, normalised, in natural log, and
better than the unigram. The grade is the verdict line under it: *better than*, *level with* or *behind* the
n-gram, with the interval of the difference. A model that gets ✓ but is behind has not beaten the n-gram yet. The
worked solution is itself an n-gram (an 8-gram with a larger discount); section 7's tuned n-gram already clears the
bar, so aim below it; a network, or a mixture, is another way.
""",
    stub='''
def my_model_log_probs(ids):
    """ids (N,) held-out character ids -> ln p(ids[t + 1] | ids[:t + 1]) for t = 0..N-2, shape (N - 1,)."""
    raise NotImplementedError  # your code: train your model once (outside this function), then score ids with it
''',
    solution='''
from lmcourse import data
from lmcourse.ngram import NGramLM

# One simple project: the 8-gram, with a larger discount than the default 0.75 (long contexts are sparse).
project_ngram = NGramLM(8, discount=0.9).fit(data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "train")))


def my_model_log_probs(ids):
    """ids (N,) held-out character ids -> ln p(ids[t + 1] | ids[:t + 1]) for t = 0..N-2, shape (N - 1,)."""
    return project_ngram.log_probs(ids)[1:]   # log_probs scores the first character too (after <s> padding)
''',
    wrong={
        "a constant probability of 1 (the score of a model that is never wrong)": '''
import numpy as np

def my_model_log_probs(ids):
    return np.zeros(len(ids) - 1)
''',
        "a model that peeks at the character it predicts": '''
import numpy as np

def my_model_log_probs(ids):
    # 0.9 on the true next character, the rest spread evenly: reads ids[t + 1] to predict it
    return np.full(len(ids) - 1, np.log(0.9))
''',
        "log base 2 instead of natural log": '''
import numpy as np
from lmcourse import data
from lmcourse.ngram import NGramLM

lm = NGramLM(5).fit(data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "train")))

def my_model_log_probs(ids):
    return lm.log_probs(ids)[1:] / np.log(2)
''',
        "a right-to-left model: each character predicted from the ones after it": '''
from lmcourse import data
from lmcourse.ngram import NGramLM

lm = NGramLM(5).fit(data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "train"))[::-1])

def my_model_log_probs(ids):
    return lm.log_probs(ids[::-1])[:-1][::-1]   # ln p(ids[t + 1] | ids[t + 2:]): normalised, but not causal
''',
        "the unigram: frequencies alone": '''
from lmcourse import data
from lmcourse.ngram import NGramLM

lm = NGramLM(1).fit(data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "train")))

def my_model_log_probs(ids):
    return lm.log_probs(ids)[1:]
''',
        "ln p of every character, the first included (N values, not N - 1)": '''
from lmcourse import data
from lmcourse.ngram import NGramLM

lm = NGramLM(5).fit(data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "train")))

def my_model_log_probs(ids):
    return lm.log_probs(ids)
''',
    }))

def main(argv: list[str]) -> int:
    out = Path(argv[0])
    chapters = argv[1:] or sorted(CHAPTERS)
    for chapter in chapters:
        cells = [c for ex in CHAPTERS[chapter] for c in ex.notebook_cells()]
        (out / f"{chapter}.json").write_text(json.dumps(cells, indent=1, ensure_ascii=False) + "\n")
        print(out / f"{chapter}.json", len(CHAPTERS[chapter]), "exercises")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
