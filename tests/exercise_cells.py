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


def define(source: str, cells: Cells):
    """Run a cell's source in a fresh namespace (as a notebook would): the learner's object and check's kwargs."""
    namespace = {}
    exec(compile(source, f"<{cells.id}>", "exec"), namespace)
    context = eval(f"dict({cells.context.lstrip(', ')})", namespace) if cells.context else {}
    return namespace[cells.name], context


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
    id="05.apply_rotary", name="apply_rotary",
    task="""
### Exercise 1 · Rotary positions (RoPE)

The sinusoidal encodings are *added* to the input, and the cell above found that the dot product of two of them
depends only on their distance. Rotary position embeddings (RoFormer, Su et al. 2021; LLaMA and most recent
decoders) put that property where attention needs it: they leave the input alone and **turn** each query and each
key vector by its position just before the scores are taken, so that the score of a query at position m and a key
at position n depends on n - m, not on m and n.

Write `apply_rotary(x, positions)`: x (..., T, d) holds query or key vectors (d even; the leading dimensions may be
batch and heads), positions (T,) the position of each of the T rows, not always 0 .. T-1 (after 100 cached tokens
they are 100, 101, ...). Turn each pair of dimensions (x[..., 2i], x[..., 2i+1]), the even one on the first axis,
counter-clockwise by the angle that section 1's sinusoidal encoding gives pair i at that position, with
d = x.shape[-1] (the width of a head's vectors, not the model's). Return x's
shape and dtype. The checker tries batches with heads, positions that do not start at 0 or are out of order, a
single pair (d = 2), and float64.
""",
    stub='''
import torch


def apply_rotary(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x (..., T, d) with d even, positions (T,) long -> x with each pair (2i, 2i+1) turned by its position's angle."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def apply_rotary(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x (..., T, d) with d even, positions (T,) long -> x with each pair (2i, 2i+1) turned by its position's angle."""
    d = x.shape[-1]
    inv_freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)   # pair i's clock, as in section 1
    angle = positions.double()[:, None] * inv_freq                             # (T, d/2)
    cos, sin = angle.cos(), angle.sin()
    a, b = x.double()[..., 0::2], x.double()[..., 1::2]                        # each pair's two coordinates
    turned = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)      # (..., T, d/2, 2)
    return turned.flatten(-2).to(x.dtype)                                      # (..., T, d), pairs interleaved again
''',
    wrong={
        "GPT-NeoX's half split (dimension i paired with i + d/2), not the interleaved pairs": '''
import torch

def apply_rotary(x, positions):
    d = x.shape[-1]
    angle = positions[:, None] * 10000.0 ** (-torch.arange(0, d, 2) / d)
    a, b = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([a * angle.cos() - b * angle.sin(), a * angle.sin() + b * angle.cos()], dim=-1)
''',
        "turned clockwise (the sign of sin swapped)": '''
import torch

def apply_rotary(x, positions):
    d = x.shape[-1]
    angle = positions[:, None] * 10000.0 ** (-torch.arange(0, d, 2) / d)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * angle.cos() + b * angle.sin(), -a * angle.sin() + b * angle.cos()], dim=-1).flatten(-2)
''',
        "positions ignored: rows taken to sit at 0 .. T-1": '''
import torch

def apply_rotary(x, positions):
    d, T = x.shape[-1], x.shape[-2]
    angle = torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(0, d, 2) / d)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * angle.cos() - b * angle.sin(), a * angle.sin() + b * angle.cos()], dim=-1).flatten(-2)
''',
        "adds the sinusoidal encoding instead of turning x": '''
from lmcourse.transformer import sinusoidal_positions

def apply_rotary(x, positions):
    pe = sinusoidal_positions(int(positions.max()) + 1, x.shape[-1])
    return x + pe[positions].to(x.dtype)
''',
        "frequency 10000^(-i/d) for pair i (the 2 of 2i left out)": '''
import torch

def apply_rotary(x, positions):
    d = x.shape[-1]
    angle = positions[:, None] * 10000.0 ** (-torch.arange(d // 2) / d)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * angle.cos() - b * angle.sin(), a * angle.sin() + b * angle.cos()], dim=-1).flatten(-2)
''',
        "float32 for a float64 x": '''
import torch

def apply_rotary(x, positions):
    x = x.float()
    d = x.shape[-1]
    angle = positions[:, None] * 10000.0 ** (-torch.arange(0, d, 2) / d)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * angle.cos() - b * angle.sin(), a * angle.sin() + b * angle.cos()], dim=-1).flatten(-2)
''',
        "cheat: reads the expected value from the checker's stack frames": '''
import inspect

import torch


def apply_rotary(x, positions):
    for frame_info in inspect.stack()[1:]:
        for value in list(frame_info.frame.f_locals.values()):
            if isinstance(value, torch.Tensor) and value.shape == x.shape and not torch.equal(value, x):
                return value.clone()
    return x
''',
    }))

add(Cells(
    id="05.decoder_block", name="decoder_block",
    task="""
### Exercise 2 · The decoder block, in both orders

The cell above checked our `DecoderLayer` against PyTorch's without showing its inside; section 2 gave the encoder
block in both orders. Write the decoder's forward pass from its parts: `decoder_block(layer, y, memory,
tgt_padding=None, memory_padding=None)` for a `DecoderLayer` `layer`, the decoder's input y (B, T, d_model) and the
encoder's output memory (B, S, d_model); the paddings are (B, T) and (B, S) booleans, True for real tokens, or
None. The parts: `layer.self_attn` and `layer.cross_attn`, each a `MultiHeadAttention`
(`attn(query, key, value, is_causal=..., key_padding=...)`, the last two by keyword, returns `(out, weights)`), `layer.ff`, and
`layer.norm1`, `layer.norm2`, `layer.norm3`, one per sub-layer in that order. Put the norms where
`layer.norm_first` says, as the encoder block does. The checker compares with `DecoderLayer` in eval mode,
post-norm and pre-norm, with T different from S, padded memory, padded targets (left padding leaves the first
queries of a row nothing to attend to), and norms that are not the identity; calling `layer(...)` itself does
not count.
""",
    stub='''
import torch


def decoder_block(layer, y: torch.Tensor, memory: torch.Tensor, tgt_padding: torch.Tensor | None = None,
                  memory_padding: torch.Tensor | None = None) -> torch.Tensor:
    """y (B, T, d_model), memory (B, S, d_model) -> (B, T, d_model): layer's three sub-layers, in its norm order."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def decoder_block(layer, y: torch.Tensor, memory: torch.Tensor, tgt_padding: torch.Tensor | None = None,
                  memory_padding: torch.Tensor | None = None) -> torch.Tensor:
    """y (B, T, d_model), memory (B, S, d_model) -> (B, T, d_model): layer's three sub-layers, in its norm order."""
    sublayers = [
        lambda h: layer.self_attn(h, h, h, is_causal=True, key_padding=tgt_padding)[0],   # no look-ahead
        lambda h: layer.cross_attn(h, memory, memory, key_padding=memory_padding)[0],    # asks the encoder
        layer.ff,
    ]
    x = y
    for sublayer, norm in zip(sublayers, (layer.norm1, layer.norm2, layer.norm3)):
        if layer.norm_first:
            x = x + sublayer(norm(x))      # pre-norm: the stream itself is never normalised
        else:
            x = norm(x + sublayer(x))      # post-norm: normalise the sum
    return x
''',
    wrong={
        "self-attention may look ahead (not causal)": '''
def decoder_block(layer, y, memory, tgt_padding=None, memory_padding=None):
    sublayers = [lambda h: layer.self_attn(h, h, h, key_padding=tgt_padding)[0],
                 lambda h: layer.cross_attn(h, memory, memory, key_padding=memory_padding)[0], layer.ff]
    x = y
    for sublayer, norm in zip(sublayers, (layer.norm1, layer.norm2, layer.norm3)):
        x = x + sublayer(norm(x)) if layer.norm_first else norm(x + sublayer(x))
    return x
''',
        "always post-norm (layer.norm_first ignored)": '''
def decoder_block(layer, y, memory, tgt_padding=None, memory_padding=None):
    x = layer.norm1(y + layer.self_attn(y, y, y, is_causal=True, key_padding=tgt_padding)[0])
    x = layer.norm2(x + layer.cross_attn(x, memory, memory, key_padding=memory_padding)[0])
    return layer.norm3(x + layer.ff(x))
''',
        "cross-attention reads the decoder's own stream as keys and values": '''
def decoder_block(layer, y, memory, tgt_padding=None, memory_padding=None):
    sublayers = [lambda h: layer.self_attn(h, h, h, is_causal=True, key_padding=tgt_padding)[0],
                 lambda h: layer.cross_attn(h, h, h, key_padding=tgt_padding)[0], layer.ff]
    x = y
    for sublayer, norm in zip(sublayers, (layer.norm1, layer.norm2, layer.norm3)):
        x = x + sublayer(norm(x)) if layer.norm_first else norm(x + sublayer(x))
    return x
''',
        "memory padding not passed to cross-attention": '''
def decoder_block(layer, y, memory, tgt_padding=None, memory_padding=None):
    sublayers = [lambda h: layer.self_attn(h, h, h, is_causal=True, key_padding=tgt_padding)[0],
                 lambda h: layer.cross_attn(h, memory, memory)[0], layer.ff]
    x = y
    for sublayer, norm in zip(sublayers, (layer.norm1, layer.norm2, layer.norm3)):
        x = x + sublayer(norm(x)) if layer.norm_first else norm(x + sublayer(x))
    return x
''',
        "target padding ignored": '''
def decoder_block(layer, y, memory, tgt_padding=None, memory_padding=None):
    sublayers = [lambda h: layer.self_attn(h, h, h, is_causal=True)[0],
                 lambda h: layer.cross_attn(h, memory, memory, key_padding=memory_padding)[0], layer.ff]
    x = y
    for sublayer, norm in zip(sublayers, (layer.norm1, layer.norm2, layer.norm3)):
        x = x + sublayer(norm(x)) if layer.norm_first else norm(x + sublayer(x))
    return x
''',
        "cheat: calls the layer itself (the package's DecoderLayer.forward)": '''
def decoder_block(layer, y, memory, tgt_padding=None, memory_padding=None):
    return layer(y, memory, memory_padding, tgt_padding=tgt_padding)[0]
''',
    }))

add(Cells(
    id="05.whole_word_mask", name="whole_word_mask",
    task="""
### Exercise 3 · Whole-word masking

BERT's rule picks each byte-pair token on its own: in the example above, the second `An|arch|ism` loses `arch`
alone, and the model may fill that gap from the two pieces beside it, inside one word, a guess that says little
about the context. **Whole-word masking** (BERT's later release; Cui et al. 2019) picks *words*: all the tokens of a picked
word are picked together. Write `whole_word_mask(ids, word_start, u_pick, u_split, random_ids, mask_id, n_regular,
p)`, all tensors (B, T). `word_start` is True at the first token of each word (with byte-level BPE, roughly a token
that begins with a space or follows a line break), at every special token and at the token after one; position 0 of a row always begins a
word, whatever `word_start` says there (a window may begin inside a word). A word is picked where the `u_pick` of
its first token is below `p`; special tokens (`ids >= n_regular`) are never picked. Each picked token then follows
section 4's rule on its own, with its own `u_split`: below `0.8` it shows `mask_id`, from `0.8` up to `0.9` its
`random_ids` entry, from `0.9` on its own id (compare
the tensors themselves, `u_split < 0.9`, as section 4 does: in float32 the stored 0.9 is not below 0.9). Return `(inputs, labels)`, labels -100 where not picked and the
original id where picked. The checker tries special tokens, rows that begin inside a word, a row of padding only,
long words, and values exactly at the thresholds.
""",
    stub='''
import torch


def whole_word_mask(ids, word_start, u_pick, u_split, random_ids, mask_id: int, n_regular: int, p: float = 0.15):
    """Whole-word masking: every argument but the ints and p is (B, T). Returns (inputs (B, T), labels (B, T))."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def whole_word_mask(ids, word_start, u_pick, u_split, random_ids, mask_id: int, n_regular: int, p: float = 0.15):
    """Whole-word masking: every argument but the ints and p is (B, T). Returns (inputs (B, T), labels (B, T))."""
    start = word_start.clone()
    start[:, 0] = True                                                  # a window may begin inside a word
    position = torch.arange(ids.shape[1]).expand_as(ids)
    first = torch.where(start, position, 0).cummax(dim=1).values       # (B, T): where each token's word begins
    picked = (u_pick.gather(1, first) < p) & (ids < n_regular)          # the word's decision; never a special token
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (u_split < 0.8), torch.full_like(ids, mask_id), ids)       # per token, as BERT's
    inputs = torch.where(picked & (u_split >= 0.8) & (u_split < 0.9), random_ids, inputs)
    return inputs, labels
''',
    wrong={
        "BERT's per-token picking (word_start ignored)": '''
import torch

def whole_word_mask(ids, word_start, u_pick, u_split, random_ids, mask_id, n_regular, p=0.15):
    picked = (u_pick < p) & (ids < n_regular)
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (u_split < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(picked & (u_split >= 0.8) & (u_split < 0.9), random_ids, inputs)
    return inputs, labels
''',
        "only the first token of a picked word is picked": '''
import torch

def whole_word_mask(ids, word_start, u_pick, u_split, random_ids, mask_id, n_regular, p=0.15):
    start = word_start.clone()
    start[:, 0] = True
    picked = start & (u_pick < p) & (ids < n_regular)
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (u_split < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(picked & (u_split >= 0.8) & (u_split < 0.9), random_ids, inputs)
    return inputs, labels
''',
        "a row that begins inside a word: its first tokens are never picked": '''
import torch

def whole_word_mask(ids, word_start, u_pick, u_split, random_ids, mask_id, n_regular, p=0.15):
    picked = torch.zeros_like(word_start)
    current = torch.zeros(ids.shape[0], dtype=torch.bool)
    for t in range(ids.shape[1]):
        current = torch.where(word_start[:, t], u_pick[:, t] < p, current)
        picked[:, t] = current
    picked &= ids < n_regular
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (u_split < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(picked & (u_split >= 0.8) & (u_split < 0.9), random_ids, inputs)
    return inputs, labels
''',
        "the [MASK] / random / keep split decided once per word": '''
import torch

def whole_word_mask(ids, word_start, u_pick, u_split, random_ids, mask_id, n_regular, p=0.15):
    start = word_start.clone()
    start[:, 0] = True
    first = torch.where(start, torch.arange(ids.shape[1]).expand_as(ids), 0).cummax(dim=1).values
    picked = (u_pick.gather(1, first) < p) & (ids < n_regular)
    split = u_split.gather(1, first)
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (split < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(picked & (split >= 0.8) & (split < 0.9), random_ids, inputs)
    return inputs, labels
''',
        "special tokens can be picked": '''
import torch

def whole_word_mask(ids, word_start, u_pick, u_split, random_ids, mask_id, n_regular, p=0.15):
    start = word_start.clone()
    start[:, 0] = True
    first = torch.where(start, torch.arange(ids.shape[1]).expand_as(ids), 0).cummax(dim=1).values
    picked = u_pick.gather(1, first) < p
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (u_split < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(picked & (u_split >= 0.8) & (u_split < 0.9), random_ids, inputs)
    return inputs, labels
''',
        "a word whose u_pick equals p is picked (<= p)": '''
import torch

def whole_word_mask(ids, word_start, u_pick, u_split, random_ids, mask_id, n_regular, p=0.15):
    start = word_start.clone()
    start[:, 0] = True
    first = torch.where(start, torch.arange(ids.shape[1]).expand_as(ids), 0).cummax(dim=1).values
    picked = (u_pick.gather(1, first) <= p) & (ids < n_regular)
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (u_split < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(picked & (u_split >= 0.8) & (u_split < 0.9), random_ids, inputs)
    return inputs, labels
''',
        "u_split exactly 0.9 sent to a random token (<= 0.9)": '''
import torch

def whole_word_mask(ids, word_start, u_pick, u_split, random_ids, mask_id, n_regular, p=0.15):
    start = word_start.clone()
    start[:, 0] = True
    first = torch.where(start, torch.arange(ids.shape[1]).expand_as(ids), 0).cummax(dim=1).values
    picked = (u_pick.gather(1, first) < p) & (ids < n_regular)
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    inputs = torch.where(picked & (u_split < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(picked & (u_split >= 0.8) & (u_split <= 0.9), random_ids, inputs)
    return inputs, labels
''',
        "cheat: calls the package's per-token rule (lmcourse.mlm.mask_tokens)": '''
from lmcourse.mlm import mask_tokens

def whole_word_mask(ids, word_start, u_pick, u_split, random_ids, mask_id, n_regular, p=0.15):
    return mask_tokens(ids, mask_id, n_regular, p)
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
whose row i is the vector of `words[i]`. Word2vec vectors have very different lengths, which is why the normalisation matters; the checker uses random vectors of varied lengths and a
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
    id="07.ddim_step", name="ddim_step",
    task=r"""
### Exercise 1 · One DDIM step

Section 4 prints DDPM's step and gives DDIM's in one sentence: predict $\hat x_0$, then jump to the earlier step
along the same noise direction, adding no noise (eta = 0). Write it: `ddim_step(eps_model, schedule, x_t, t,
t_prev)` takes x_t (B, ...) at step indices t (B,) to step indices t_prev (B,), t_prev < t with any gap between
them, and t_prev = -1 meaning the data itself ($\bar\alpha = 1$). Get the predicted noise from
`eps_model(x_t, t)`; `schedule.alphas_cumprod` (float64, shape (T,), index i for step i + 1) holds $\bar\alpha$.
Return x_t's shape and dtype; do not clip $\hat x_0$ (the checker's data is not bounded). `ddim_sample` runs
this step in a loop (calling it does not count here); the checker
feeds a stand-in network, with a linear and a cosine schedule, a different step for every example, big jumps,
consecutive steps, the step onto the data, and float64.
""",
    stub='''
import torch


def ddim_step(eps_model, schedule, x_t: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor) -> torch.Tensor:
    """Deterministic DDIM from step indices t (B,) to t_prev (B,) (-1: the data). x_t (B, ...) -> (B, ...)."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def ddim_step(eps_model, schedule, x_t: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor) -> torch.Tensor:
    """Deterministic DDIM from step indices t (B,) to t_prev (B,) (-1: the data). x_t (B, ...) -> (B, ...)."""
    abar = schedule.alphas_cumprod
    abar_prev = torch.where(t_prev >= 0, abar[t_prev.clamp(min=0)], torch.ones((), dtype=abar.dtype))  # -1: abar = 1

    def per_example(v):  # (B,) -> (B, 1, ..., 1), to broadcast over x_t
        return v.view(-1, *([1] * (x_t.dim() - 1)))

    a, a_prev = per_example(abar[t]), per_example(abar_prev)
    eps = eps_model(x_t, t).double()
    x0 = (x_t.double() - (1 - a).sqrt() * eps) / a.sqrt()                  # the forward process, inverted at t ...
    return (a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps).to(x_t.dtype)  # ... and run again to t_prev, same noise
''',
    wrong={
        "DDPM's posterior mean from x0_hat, without its noise (the step shown above)": '''
def ddim_step(eps_model, schedule, x_t, t, t_prev):
    eps = eps_model(x_t, t)
    x0 = schedule.predict_x0(x_t, t, eps)
    coef_x0 = schedule.gather(schedule.posterior_mean_coef1, t, x_t)
    coef_xt = schedule.gather(schedule.posterior_mean_coef2, t, x_t)
    return coef_x0 * x0 + coef_xt * x_t
''',
        "t_prev = -1 read as alphas_cumprod[-1] (the noisiest step, not the data)": '''
def ddim_step(eps_model, schedule, x_t, t, t_prev):
    shape = (-1, *([1] * (x_t.dim() - 1)))
    a, a_prev = schedule.alphas_cumprod[t].view(shape), schedule.alphas_cumprod[t_prev].view(shape)
    eps = eps_model(x_t, t)
    x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
    return (a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps).to(x_t.dtype)
''',
        "the network asked at t_prev instead of t": '''
import torch

def ddim_step(eps_model, schedule, x_t, t, t_prev):
    shape = (-1, *([1] * (x_t.dim() - 1)))
    abar = schedule.alphas_cumprod
    a = abar[t].view(shape)
    a_prev = torch.where(t_prev >= 0, abar[t_prev.clamp(min=0)], torch.ones((), dtype=abar.dtype)).view(shape)
    eps = eps_model(x_t, t_prev.clamp(min=0))
    x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
    return (a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps).to(x_t.dtype)
''',
        "float64 out (the schedule's dtype), not x_t's": '''
import torch

def ddim_step(eps_model, schedule, x_t, t, t_prev):
    shape = (-1, *([1] * (x_t.dim() - 1)))
    abar = schedule.alphas_cumprod
    a = abar[t].view(shape)
    a_prev = torch.where(t_prev >= 0, abar[t_prev.clamp(min=0)], torch.ones((), dtype=abar.dtype)).view(shape)
    eps = eps_model(x_t, t)
    x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
    return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
''',
        "alphas (one step) where alphas_cumprod belongs": '''
import torch

def ddim_step(eps_model, schedule, x_t, t, t_prev):
    shape = (-1, *([1] * (x_t.dim() - 1)))
    alpha = schedule.alphas
    a = alpha[t].view(shape)
    a_prev = torch.where(t_prev >= 0, alpha[t_prev.clamp(min=0)], torch.ones((), dtype=alpha.dtype)).view(shape)
    eps = eps_model(x_t, t)
    x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
    return (a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps).to(x_t.dtype)
''',
        "cheat: lets the package's sampler (lmcourse.diffusion.ddim_sample) take the step": '''
from lmcourse.diffusion import ddim_sample

def ddim_step(eps_model, schedule, x_t, t, t_prev):
    return ddim_sample(eps_model, schedule, tuple(x_t.shape), steps=1,
                       min_alpha_cumprod=float(schedule.alphas_cumprod[t.max()])).to(x_t.dtype)
''',
    }))

add(Cells(
    id="07.guided_eps", name="guided_eps",
    task=r"""
### Exercise 2 · Classifier-free guidance in one network call

Section 5's sampler asks the network twice per step, once with the labels and once with the null label, and
combines the two noise predictions into a guided one. Derive that combination from the score view above and write
it: `guided_eps(eps_model, x_t, t, y, guidance, null_class)` returns the guided noise prediction for x_t (B, ...)
at steps t (B,) with labels y (B,) and weight w = `guidance` >= 0 (w = 0 is plain conditional sampling). Call
`eps_model(x, t, y)` **once**, on a batch of 2B that holds the conditional and the unconditional inputs together
(what implementations do, so that one pass of the network serves both). Return x_t's shape and dtype. The checker
feeds a stand-in network that counts its calls, with w = 0, labels that are already `null_class`, images and
float64; `lmcourse.diffusion.guided`, which calls the network twice, does not count.
""",
    stub='''
import torch


def guided_eps(eps_model, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor, guidance: float,
               null_class: int) -> torch.Tensor:
    """Classifier-free guided noise prediction (B, ...) from one call eps_model(x (2B, ...), t (2B,), y (2B,))."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def guided_eps(eps_model, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor, guidance: float,
               null_class: int) -> torch.Tensor:
    """Classifier-free guided noise prediction (B, ...) from one call eps_model(x (2B, ...), t (2B,), y (2B,))."""
    labels = torch.cat([y, torch.full_like(y, null_class)])             # the conditional half, then the unconditional
    eps = eps_model(torch.cat([x_t, x_t]), torch.cat([t, t]), labels)   # one call on 2B inputs
    cond, uncond = eps.chunk(2)
    # the score of p(x | y) p(y | x)^w is (1 + w) times the conditional score minus w times the unconditional one
    return (1 + guidance) * cond - guidance * uncond
''',
    wrong={
        "diffusers' guidance scale read as w: uncond + w (cond - uncond), so w = 0 is unconditional": '''
import torch

def guided_eps(eps_model, x_t, t, y, guidance, null_class):
    eps = eps_model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, null_class)]))
    cond, uncond = eps.chunk(2)
    return uncond + guidance * (cond - uncond)
''',
        "the halves swapped when splitting the batch": '''
import torch

def guided_eps(eps_model, x_t, t, y, guidance, null_class):
    eps = eps_model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, null_class)]))
    uncond, cond = eps.chunk(2)
    return (1 + guidance) * cond - guidance * uncond
''',
        "two calls, conditional then unconditional": '''
import torch

def guided_eps(eps_model, x_t, t, y, guidance, null_class):
    cond = eps_model(x_t, t, y)
    uncond = eps_model(x_t, t, torch.full_like(y, null_class))
    return (1 + guidance) * cond - guidance * uncond
''',
        "t not repeated for the doubled batch": '''
import torch

def guided_eps(eps_model, x_t, t, y, guidance, null_class):
    eps = eps_model(torch.cat([x_t, x_t]), t, torch.cat([y, torch.full_like(y, null_class)]))
    cond, uncond = eps.chunk(2)
    return (1 + guidance) * cond - guidance * uncond
''',
        "cheat: calls the package's lmcourse.diffusion.guided": '''
from lmcourse.diffusion import guided

def guided_eps(eps_model, x_t, t, y, guidance, null_class):
    return guided(eps_model, y, guidance, null_class=null_class)(x_t, t)
''',
    }))

add(Cells(
    id="07.reveal_step", name="reveal_step",
    task=r"""
### Exercise 3 · One step of the sampler

The sampler above walks t from 1 down to 0 and at each step reveals some of the masked characters. Which share?
Derive it from section 6's forward process (each token masked at time t with probability t, independently; a
masked token stays masked as t grows), then write the step: `reveal_step(x, draws, u, t, s, mask_id)`. x (B, L)
holds the current tokens, `mask_id` where still masked; `draws` (B, L) a token drawn from the model's prediction at
every position; u (B, L) uniform numbers in [0, 1); t and s (B,) each row's current and next time,
1 >= t > s >= 0. A masked token is revealed, becoming its draw, where its u is below the probability that a token
masked at time t is no longer masked at time s; every other token stays as it is. Return the new x (B, L), a
LongTensor. The checker tries the first and the last step, rows at different times, a row with nothing masked,
and u exactly at the probability.
""",
    stub='''
import torch


def reveal_step(x: torch.Tensor, draws: torch.Tensor, u: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
                mask_id: int) -> torch.Tensor:
    """One unmasking step from times t (B,) to s (B,) < t: x (B, L) with some masked tokens replaced by draws."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def reveal_step(x: torch.Tensor, draws: torch.Tensor, u: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
                mask_id: int) -> torch.Tensor:
    """One unmasking step from times t (B,) to s (B,) < t: x (B, L) with some masked tokens replaced by draws."""
    # masked at t: it was masked at a time uniform on [0, t]; it is still visible at s if that time lies above s
    p_reveal = ((t - s) / t)[:, None]                      # (B, 1)
    reveal = (x == mask_id) & (u < p_reveal)               # a revealed token is never touched again
    return torch.where(reveal, draws, x)
''',
    wrong={
        "reveal probability t - s (the time that passed)": '''
import torch

def reveal_step(x, draws, u, t, s, mask_id):
    reveal = (x == mask_id) & (u < (t - s)[:, None])
    return torch.where(reveal, draws, x)
''',
        "probability s / t (the chance to stay masked)": '''
import torch

def reveal_step(x, draws, u, t, s, mask_id):
    reveal = (x == mask_id) & (u < (s / t)[:, None])
    return torch.where(reveal, draws, x)
''',
        "tokens revealed earlier are drawn again": '''
import torch

def reveal_step(x, draws, u, t, s, mask_id):
    return torch.where(u < ((t - s) / t)[:, None], draws, x)
''',
        "u <= p: a token exactly at the probability is revealed": '''
import torch

def reveal_step(x, draws, u, t, s, mask_id):
    reveal = (x == mask_id) & (u <= ((t - s) / t)[:, None])
    return torch.where(reveal, draws, x)
''',
        "cheat: reads the expected value from the checker's stack frames": '''
import inspect

import torch


def reveal_step(x, draws, u, t, s, mask_id):
    for frame_info in inspect.stack()[1:]:
        for name, value in list(frame_info.frame.f_locals.items()):
            if name in ("want", "expected", "reference", "target") and isinstance(value, torch.Tensor):
                return value.clone()
    return torch.where(x == mask_id, draws, x)
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
