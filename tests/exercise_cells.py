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
weight exactly 0 where the boolean `mask` (broadcastable to the scores) is False. The course follows the convention of
torch's `F.scaled_dot_product_attention`: **True = may attend** (`nn.MultiheadAttention`'s masks use the opposite,
True = blocked). Two traps seen in tutorial code (section 5 has an example): a row whose keys are *all* masked (a
padded query under a mask that also blocks padded queries, or the first positions of a left-padded batch under a
causal mask combined with the key-padding mask) must come out as all zeros, not NaN and not uniform; and the result must stay finite in
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
keeps everything, also on a row where one token holds nearly all the mass. The checker tries random rows,
`top_p = 1`, a tiny `top_p`, ties, rows whose most likely tokens hold exactly `top_p`, and a peaked and a flat row.
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
    probs, order = logits.softmax(dim=-1).sort(dim=-1)  # (N, vocab), least likely first
    tail_mass = probs.cumsum(dim=-1)                    # each token and every less likely one: small numbers first
    cut_sorted = tail_mass <= 1 - top_p                 # the more likely tokens already hold at least top_p
    cut_sorted[:, -1] = False                           # the most likely token always stays
    cut = torch.zeros_like(cut_sorted).scatter(-1, order, cut_sorted)
    return logits.masked_fill(cut, float("-inf"))
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
        "sums from the most likely down (float32 rounding cuts the tail of a peaked row at top_p = 1)": '''
import torch

def top_p_filter(logits, top_p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    keep_sorted = probs.cumsum(-1) - probs < top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))
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
        "treats every n as 2 (bans what followed the last token, whatever no_repeat_ngram_size is)": '''
import torch

def beam_step(sequences, beam_scores, log_probs, num_beams, no_repeat_ngram_size=0):
    log_probs = log_probs.clone()
    for b, row in enumerate(sequences.tolist()):
        if no_repeat_ngram_size > 0:
            log_probs[b, [row[i + 1] for i in range(len(row) - 1) if row[i] == row[-1]]] = float("-inf")
    total = (beam_scores[:, None] + log_probs).flatten()
    scores, index = torch.topk(total, num_beams)
    beam, token = index // log_probs.shape[1], index % log_probs.shape[1]
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
    id="06.kv_cache_step", name="kv_cache_step",
    task="""
### Exercise 3 · One decoding step with a KV cache

Section 6 showed that the cache gives the same tokens, faster; here you write what one attention layer does with
it at one step of generation. The layer keeps the keys and values of the positions already read, `k_cache` and
`v_cache` (B, n_head, T, head_dim); the new token arrives with its query, key and value for every head, `q`, `k`
and `v` (B, n_head, 1, head_dim). Write `kv_cache_step(q, k, v, k_cache, v_cache)` returning
`(out, k_cache, v_cache)`: `out` (B, n_head, 1, head_dim) is what causal self-attention over the whole sequence
(the T cached positions and the new one) gives at its last position, and the two caches now hold T + 1 positions.
Keep the dtype you were given. The checker recomputes causal attention over the whole sequence after your call;
it tries an empty cache (the first step), float32 and float64, several examples and heads. `lmcourse.attention`,
`lmcourse.gpt` and torch's `scaled_dot_product_attention` are refused while your code runs.
""",
    stub='''
import torch


def kv_cache_step(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor,
                  v_cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v (B, n_head, 1, head_dim): the new token's; k_cache, v_cache (B, n_head, T, head_dim), T may be 0.

    Returns (out (B, n_head, 1, head_dim), k_cache and v_cache (B, n_head, T + 1, head_dim)).
    """
    raise NotImplementedError  # your code
''',
    solution='''
import math

import torch


def kv_cache_step(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor,
                  v_cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v (B, n_head, 1, head_dim): the new token's; k_cache, v_cache (B, n_head, T, head_dim), T may be 0.

    Returns (out (B, n_head, 1, head_dim), k_cache and v_cache (B, n_head, T + 1, head_dim)).
    """
    k_cache = torch.cat([k_cache, k], dim=2)  # the new token sees itself: append before attending
    v_cache = torch.cat([v_cache, v], dim=2)
    scores = q @ k_cache.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, n_head, 1, T + 1), one head's width
    out = scores.softmax(dim=-1) @ v_cache  # over the keys; no mask: nothing in the cache comes after the query
    return out, k_cache, v_cache
''',
    wrong={
        "appends to the cache after attending (the new token does not see itself)": '''
import math
import torch

def kv_cache_step(q, k, v, k_cache, v_cache):
    out = (q @ k_cache.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1) @ v_cache
    return out, torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2)
''',
        "scales by the square root of the model width (n_head * head_dim), not of one head": '''
import math
import torch

def kv_cache_step(q, k, v, k_cache, v_cache):
    k_cache, v_cache = torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2)
    scores = q @ k_cache.transpose(-2, -1) / math.sqrt(q.shape[1] * q.shape[-1])
    return scores.softmax(-1) @ v_cache, k_cache, v_cache
''',
        "concatenates on the heads axis": '''
import math
import torch

def kv_cache_step(q, k, v, k_cache, v_cache):
    k_cache, v_cache = torch.cat([k_cache, k], 1), torch.cat([v_cache, v], 1)
    scores = q @ k_cache.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.softmax(-1) @ v_cache, k_cache, v_cache
''',
        "softmax over the heads, not over the keys": '''
import math
import torch

def kv_cache_step(q, k, v, k_cache, v_cache):
    k_cache, v_cache = torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2)
    scores = q @ k_cache.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.softmax(1) @ v_cache, k_cache, v_cache
''',
        "attends with the keys as values": '''
import math
import torch

def kv_cache_step(q, k, v, k_cache, v_cache):
    k_cache, v_cache = torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2)
    scores = q @ k_cache.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.softmax(-1) @ k_cache, k_cache, v_cache
''',
        "computes in float32 whatever it was given": '''
import math
import torch

def kv_cache_step(q, k, v, k_cache, v_cache):
    k_cache, v_cache = torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2)
    scores = q.float() @ k_cache.float().transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.softmax(-1) @ v_cache.float(), k_cache, v_cache
''',
    }))


# ================================================================================================ 01
add(Cells(
    id="01.kneser_ney_trigram", name="kneser_ney_trigram",
    task="""
### Exercise 1 · The Kneser-Ney trigram

The cells above wrote the interpolated Kneser-Ney **bigram** out in code: a discounted bigram level, and below it a
continuation level (in how many distinct contexts a word appears) interpolated with the uniform 1/V. A trigram
model has one level more. Write `kneser_ney_trigram(trigram_counts, vocab, context, word, discount)`:
P(word | context) for a two-word context `(u, v)`, as `NGramLM(3, "kneser_ney", discount=discount)` computes it.
`trigram_counts` maps `(u, v, w)` to a count, as `NGramLM(3)` counted them on a toy corpus (each sentence padded
with `<s> <s>` in front and `</s>` at the end); the lower levels' counts are yours to derive from it, and
V = `len(vocab)`. The checker compares you with the package on seen and unseen trigrams, the start and the end
of a sentence, "francisco" after "visited the" and after "visited san", contexts seen only in part, an
out-of-vocabulary word and random triples, at two discounts. The package's n-gram model (and nltk's) is not
accepted.
""",
    stub='''
def kneser_ney_trigram(trigram_counts: dict, vocab: list, context: tuple, word: str, discount: float = 0.75) -> float:
    """P_KN(word | context) for an interpolated Kneser-Ney trigram model; context = (u, v), the two previous tokens.

    trigram_counts: {(u, v, w): count}; vocab: every token (V = len(vocab)); discount: d in (0, 1).
    """
    raise NotImplementedError  # your code
''',
    solution='''
from collections import Counter


def kneser_ney_trigram(trigram_counts: dict, vocab: list, context: tuple, word: str, discount: float = 0.75) -> float:
    """P_KN(word | context) for an interpolated Kneser-Ney trigram model; context = (u, v), the two previous tokens.

    trigram_counts: {(u, v, w): count}; vocab: every token (V = len(vocab)); discount: d in (0, 1).
    """
    (u, v), d, V = context, discount, len(vocab)
    bigram_types = Counter((b, w) for (_, b, w) in trigram_counts)   # N1+(. v w): distinct left words of "v w"
    word_types = Counter(w for (_, w) in bigram_types)                # N1+(. w): distinct left words of w
    # bottom level: continuation counts of words, interpolated with the uniform 1/V
    p = (max(word_types[word] - d, 0) + d * len(word_types) / V) / len(bigram_types)
    # middle level: continuation counts of bigrams after v (skipped if v never precedes a word)
    after_v = {w: n for (b, w), n in bigram_types.items() if b == v}
    if after_v:
        p = (max(after_v.get(word, 0) - d, 0) + d * len(after_v) * p) / sum(after_v.values())
    # top level: the trigram counts after u v (skipped if that context was never seen)
    after_uv = {w: c for (a, b, w), c in trigram_counts.items() if (a, b) == (u, v)}
    if after_uv:
        p = (max(after_uv.get(word, 0) - d, 0) + d * len(after_uv) * p) / sum(after_uv.values())
    return p
''',
    wrong={
        "no middle level: the trigram backs off straight to the continuation unigram": '''
from collections import Counter

def kneser_ney_trigram(trigram_counts, vocab, context, word, discount=0.75):
    d, V = discount, len(vocab)
    bigram_types = Counter((b, w) for (_, b, w) in trigram_counts)
    word_types = Counter(w for (_, w) in bigram_types)
    p = (max(word_types[word] - d, 0) + d * len(word_types) / V) / len(bigram_types)
    after = {w: c for (a, b, w), c in trigram_counts.items() if (a, b) == tuple(context)}
    if after:
        p = (max(after.get(word, 0) - d, 0) + d * len(after) * p) / sum(after.values())
    return p
''',
        "raw bigram counts at the middle level, not continuation counts": '''
from collections import Counter

def kneser_ney_trigram(trigram_counts, vocab, context, word, discount=0.75):
    (u, v), d, V = context, discount, len(vocab)
    bigram_counts = Counter()
    for (_, b, w), c in trigram_counts.items():
        bigram_counts[b, w] += c
    word_types = Counter(w for (_, w) in bigram_counts)
    p = (max(word_types[word] - d, 0) + d * len(word_types) / V) / len(bigram_counts)
    after_v = {w: n for (b, w), n in bigram_counts.items() if b == v}
    if after_v:
        p = (max(after_v.get(word, 0) - d, 0) + d * len(after_v) * p) / sum(after_v.values())
    after_uv = {w: c for (a, b, w), c in trigram_counts.items() if (a, b) == (u, v)}
    if after_uv:
        p = (max(after_uv.get(word, 0) - d, 0) + d * len(after_uv) * p) / sum(after_uv.values())
    return p
''',
        "an unseen two-word context falls to the bottom level, not the middle one": '''
from collections import Counter

def kneser_ney_trigram(trigram_counts, vocab, context, word, discount=0.75):
    (u, v), d, V = context, discount, len(vocab)
    bigram_types = Counter((b, w) for (_, b, w) in trigram_counts)
    word_types = Counter(w for (_, w) in bigram_types)
    p_low = (max(word_types[word] - d, 0) + d * len(word_types) / V) / len(bigram_types)
    after_uv = {w: c for (a, b, w), c in trigram_counts.items() if (a, b) == (u, v)}
    if not after_uv:
        return p_low
    after_v = {w: n for (b, w), n in bigram_types.items() if b == v}
    p = (max(after_v.get(word, 0) - d, 0) + d * len(after_v) * p_low) / sum(after_v.values())
    return (max(after_uv.get(word, 0) - d, 0) + d * len(after_uv) * p) / sum(after_uv.values())
''',
        "backs off only for unseen trigrams (no interpolation at the top)": '''
from collections import Counter

def kneser_ney_trigram(trigram_counts, vocab, context, word, discount=0.75):
    (u, v), d, V = context, discount, len(vocab)
    bigram_types = Counter((b, w) for (_, b, w) in trigram_counts)
    word_types = Counter(w for (_, w) in bigram_types)
    p = (max(word_types[word] - d, 0) + d * len(word_types) / V) / len(bigram_types)
    after_v = {w: n for (b, w), n in bigram_types.items() if b == v}
    if after_v:
        p = (max(after_v.get(word, 0) - d, 0) + d * len(after_v) * p) / sum(after_v.values())
    after_uv = {w: c for (a, b, w), c in trigram_counts.items() if (a, b) == (u, v)}
    if after_uv.get(word, 0) > 0:
        return (after_uv[word] - d) / sum(after_uv.values())
    return d * len(after_uv) * p / sum(after_uv.values()) if after_uv else p
''',
    }))

add(Cells(
    id="01.held_out_discounts", name="held_out_discounts",
    task="""
### Exercise 2 · Discounts without a held-out half

The experiment above measured the discount on held-out text: it is not one 0.75 for every count, and it cost half
the training text to measure. **Modified Kneser-Ney** (Chen & Goodman 1998) uses three discounts, D1, D2 and D3+,
for n-grams seen once, twice and three or more times, and estimates them from the training counts alone with
Good-Turing's idea: pretend that one occurrence of each n-gram was held out, and ask what an n-gram seen c times
is then worth on new text. Their estimate tempers Good-Turing's with Ney's single discount
Y = n1 / (n1 + 2 n2) (n_c: how many distinct n-grams were seen exactly c times): the worth of a count c is
Good-Turing's estimate scaled by Y, and D_c is what c loses to it, for c = 1, 2 and 3 (D3+ is D3). Write
`held_out_discounts(counts)`, returning `(D1, D2, D3+)` for the n-grams in `counts` (`{n-gram: count}`, as
`NGramLM` counted them), equal to what `NGramLM(n, "modified_kneser_ney")` estimates for its top order: what is
yours to find is Good-Turing's estimate, from the count-of-counts. The checker tries the words, bigrams, trigrams
and 4-grams of the news corpus. The package's
n-gram model is not accepted. (Stuck? `check(..., hints=True)`: the hints go from what to count to the idea.)
""",
    stub='''
def held_out_discounts(counts: dict) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) for the n-grams of counts {n-gram: count}."""
    raise NotImplementedError  # your code
''',
    solution='''
from collections import Counter


def held_out_discounts(counts: dict) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) for the n-grams of counts {n-gram: count}."""
    n = Counter(counts.values())               # n[c]: how many distinct n-grams were seen exactly c times
    y = n[1] / (n[1] + 2 * n[2])               # Ney's single discount, the leave-one-out estimate
    # what an n-gram seen c times is worth on new text (Good-Turing's return count, scaled by y), subtracted from c
    return tuple(c - (c + 1) * y * n[c + 1] / n[c] for c in (1, 2, 3))
''',
    wrong={
        "Ney's one discount for every count": '''
from collections import Counter

def held_out_discounts(counts):
    n = Counter(counts.values())
    y = n[1] / (n[1] + 2 * n[2])
    return (y, y, y)
''',
        "Y = n1 / (n1 + n2): the 2 forgotten": '''
from collections import Counter

def held_out_discounts(counts):
    n = Counter(counts.values())
    y = n[1] / (n[1] + n[2])
    return tuple(c - (c + 1) * y * n[c + 1] / n[c] for c in (1, 2, 3))
''',
        "Good-Turing's return count with c instead of c + 1": '''
from collections import Counter

def held_out_discounts(counts):
    n = Counter(counts.values())
    y = n[1] / (n[1] + 2 * n[2])
    return tuple(c - c * y * n[c + 1] / n[c] for c in (1, 2, 3))
''',
        "n3 and n4 count every n-gram seen 3 (4) or more times": '''
def held_out_discounts(counts):
    values = list(counts.values())
    n = {c: sum(v == c for v in values) for c in (1, 2)}
    n[3], n[4] = sum(v >= 3 for v in values), sum(v >= 4 for v in values)
    y = n[1] / (n[1] + 2 * n[2])
    return tuple(c - (c + 1) * y * n[c + 1] / n[c] for c in (1, 2, 3))
''',
        "count-of-counts weighted by the counts (tokens, not n-grams)": '''
from collections import Counter

def held_out_discounts(counts):
    n = Counter()
    for c in counts.values():
        n[c] += c
    y = n[1] / (n[1] + 2 * n[2])
    return tuple(c - (c + 1) * y * n[c + 1] / n[c] for c in (1, 2, 3))
''',
    }))

add(Cells(
    id="01.held_out_perplexity", name="held_out_perplexity",
    task=r"""
### Exercise 3 · Choose on dev, report on test

Section 4 swept add-k's k on the held-out sentences and reported the best k's cross-entropy on those same
sentences, which flatters add-k: the sweep picks whatever suits the sentences it is then scored on. The honest
protocol keeps two held-out splits: choose on a **development** split, then score the chosen model once on a
**test** split that played no part in the choice. Do it for the simplest interpolated model (Jelinek-Mercer):
a bigram mixed with a unigram by a fixed weight λ,

$$P_\lambda(w \mid v) = \lambda\, P_{\text{bigram}}(w \mid v) + (1 - \lambda)\, P_{\text{unigram}}(w).$$

Write `held_out_perplexity(bigram, unigram, dev, test, lambdas)`. `bigram` (maximum likelihood, so 0 for every
bigram it never counted) and `unigram` (add-one) were fitted on the same training sentences; each has `.order`,
`.vocab` and `.prob(word, context)` like an `NGramLM`, but refuses a token outside its vocabulary. `dev` and
`test` are lists of sentences (each a list of words), `lambdas` a list of weights in (0, 1). Return
`(best_lambda, test_perplexity)`: the weight of `lambdas` whose mixture has the lowest perplexity on `dev`, and
that mixture's perplexity on `test`, each split scored the way `NGramLM.perplexity` scores a list of sentences
(section 5 has the padding and the unknown words). The checker's dev and test splits are of different kinds
(sentences like the training text, subjects and objects swapped, unknown words), and it tries unsorted grids and a
grid of one weight. The package's n-gram model is not accepted.
""",
    stub='''
def held_out_perplexity(bigram, unigram, dev: list, test: list, lambdas: list) -> tuple[float, float]:
    """(the λ of lambdas with the lowest dev perplexity, that mixture's test perplexity) for the mixture
    λ P_bigram(w | v) + (1 - λ) P_unigram(w); bigram, unigram have .order, .vocab, .prob(word, context)."""
    raise NotImplementedError  # your code
''',
    solution='''
import math


def held_out_perplexity(bigram, unigram, dev: list, test: list, lambdas: list) -> tuple[float, float]:
    """(the λ of lambdas with the lowest dev perplexity, that mixture's test perplexity) for the mixture
    λ P_bigram(w | v) + (1 - λ) P_unigram(w); bigram, unigram have .order, .vocab, .prob(word, context)."""
    known = set(bigram.vocab)

    def perplexity(sentences: list, weight: float) -> float:
        nats, predicted = 0.0, 0
        for sentence in sentences:
            history = "<s>"                                                     # history only, never predicted
            for word in [w if w in known else "<unk>" for w in sentence] + ["</s>"]:
                p = weight * bigram.prob(word, [history]) + (1 - weight) * unigram.prob(word)
                nats -= math.log(p)                                             # mix the probabilities, then log
                history, predicted = word, predicted + 1
        return math.exp(nats / predicted)   # pooled over every predicted token of the split

    best = min(lambdas, key=lambda weight: perplexity(dev, weight))   # chosen on dev alone
    return best, perplexity(test, best)                               # test scores the choice, once
''',
    wrong={
        "chooses λ on the test split": '''
import math


def _perplexity(bigram, unigram, sentences, weight):
    known, nats, predicted = set(bigram.vocab), 0.0, 0
    for sentence in sentences:
        history = "<s>"
        for word in [w if w in known else "<unk>" for w in sentence] + ["</s>"]:
            nats -= math.log(weight * bigram.prob(word, [history]) + (1 - weight) * unigram.prob(word))
            history, predicted = word, predicted + 1
    return math.exp(nats / predicted)


def held_out_perplexity(bigram, unigram, dev, test, lambdas):
    best = min(lambdas, key=lambda weight: _perplexity(bigram, unigram, test, weight))
    return best, _perplexity(bigram, unigram, test, best)
''',
        "picks the λ with the highest dev perplexity": '''
import math


def _perplexity(bigram, unigram, sentences, weight):
    known, nats, predicted = set(bigram.vocab), 0.0, 0
    for sentence in sentences:
        history = "<s>"
        for word in [w if w in known else "<unk>" for w in sentence] + ["</s>"]:
            nats -= math.log(weight * bigram.prob(word, [history]) + (1 - weight) * unigram.prob(word))
            history, predicted = word, predicted + 1
    return math.exp(nats / predicted)


def held_out_perplexity(bigram, unigram, dev, test, lambdas):
    best = max(lambdas, key=lambda weight: _perplexity(bigram, unigram, dev, weight))
    return best, _perplexity(bigram, unigram, test, best)
''',
        "reports the chosen λ's dev perplexity": '''
import math


def _perplexity(bigram, unigram, sentences, weight):
    known, nats, predicted = set(bigram.vocab), 0.0, 0
    for sentence in sentences:
        history = "<s>"
        for word in [w if w in known else "<unk>" for w in sentence] + ["</s>"]:
            nats -= math.log(weight * bigram.prob(word, [history]) + (1 - weight) * unigram.prob(word))
            history, predicted = word, predicted + 1
    return math.exp(nats / predicted)


def held_out_perplexity(bigram, unigram, dev, test, lambdas):
    best = min(lambdas, key=lambda weight: _perplexity(bigram, unigram, dev, weight))
    return best, _perplexity(bigram, unigram, dev, best)
''',
        "reports the lowest test perplexity of the grid, not the chosen λ's": '''
import math


def _perplexity(bigram, unigram, sentences, weight):
    known, nats, predicted = set(bigram.vocab), 0.0, 0
    for sentence in sentences:
        history = "<s>"
        for word in [w if w in known else "<unk>" for w in sentence] + ["</s>"]:
            nats -= math.log(weight * bigram.prob(word, [history]) + (1 - weight) * unigram.prob(word))
            history, predicted = word, predicted + 1
    return math.exp(nats / predicted)


def held_out_perplexity(bigram, unigram, dev, test, lambdas):
    best = min(lambdas, key=lambda weight: _perplexity(bigram, unigram, dev, weight))
    return best, min(_perplexity(bigram, unigram, test, weight) for weight in lambdas)
''',
        "the mean of per-sentence perplexities": '''
import math


def _perplexity(bigram, unigram, sentences, weight):
    known, nats, predicted = set(bigram.vocab), 0.0, 0
    for sentence in sentences:
        history = "<s>"
        for word in [w if w in known else "<unk>" for w in sentence] + ["</s>"]:
            nats -= math.log(weight * bigram.prob(word, [history]) + (1 - weight) * unigram.prob(word))
            history, predicted = word, predicted + 1
    return math.exp(nats / predicted)


def _mean_perplexity(bigram, unigram, sentences, weight):
    return sum(_perplexity(bigram, unigram, [s], weight) for s in sentences) / len(sentences)


def held_out_perplexity(bigram, unigram, dev, test, lambdas):
    best = min(lambdas, key=lambda weight: _mean_perplexity(bigram, unigram, dev, weight))
    return best, _mean_perplexity(bigram, unigram, test, best)
''',
        "forgets </s>": '''
import math


def _perplexity(bigram, unigram, sentences, weight):
    known, nats, predicted = set(bigram.vocab), 0.0, 0
    for sentence in sentences:
        history = "<s>"
        for word in [w if w in known else "<unk>" for w in sentence]:
            nats -= math.log(weight * bigram.prob(word, [history]) + (1 - weight) * unigram.prob(word))
            history, predicted = word, predicted + 1
    return math.exp(nats / predicted)


def held_out_perplexity(bigram, unigram, dev, test, lambdas):
    best = min(lambdas, key=lambda weight: _perplexity(bigram, unigram, dev, weight))
    return best, _perplexity(bigram, unigram, test, best)
''',
        "unknown words not mapped to <unk>": '''
import math


def _perplexity(bigram, unigram, sentences, weight):
    nats, predicted = 0.0, 0
    for sentence in sentences:
        history = "<s>"
        for word in sentence + ["</s>"]:
            nats -= math.log(weight * bigram.prob(word, [history]) + (1 - weight) * unigram.prob(word))
            history, predicted = word, predicted + 1
    return math.exp(nats / predicted)


def held_out_perplexity(bigram, unigram, dev, test, lambdas):
    best = min(lambdas, key=lambda weight: _perplexity(bigram, unigram, dev, weight))
    return best, _perplexity(bigram, unigram, test, best)
''',
        "unknown words dropped instead of scored as <unk>": '''
import math


def _perplexity(bigram, unigram, sentences, weight):
    known, nats, predicted = set(bigram.vocab), 0.0, 0
    for sentence in sentences:
        history = "<s>"
        for word in [w for w in sentence if w in known] + ["</s>"]:
            nats -= math.log(weight * bigram.prob(word, [history]) + (1 - weight) * unigram.prob(word))
            history, predicted = word, predicted + 1
    return math.exp(nats / predicted)


def held_out_perplexity(bigram, unigram, dev, test, lambdas):
    best = min(lambdas, key=lambda weight: _perplexity(bigram, unigram, dev, weight))
    return best, _perplexity(bigram, unigram, test, best)
''',
        "no <s> history: the first word gets the bigram's unigram estimate": '''
import math


def _perplexity(bigram, unigram, sentences, weight):
    known, nats, predicted = set(bigram.vocab), 0.0, 0
    for sentence in sentences:
        history = []
        for word in [w if w in known else "<unk>" for w in sentence] + ["</s>"]:
            nats -= math.log(weight * bigram.prob(word, history[-1:]) + (1 - weight) * unigram.prob(word))
            history.append(word)
            predicted += 1
    return math.exp(nats / predicted)


def held_out_perplexity(bigram, unigram, dev, test, lambdas):
    best = min(lambdas, key=lambda weight: _perplexity(bigram, unigram, dev, weight))
    return best, _perplexity(bigram, unigram, test, best)
''',
        "mixes log probabilities instead of probabilities": '''
import math


def _perplexity(bigram, unigram, sentences, weight):
    known, nats, predicted = set(bigram.vocab), 0.0, 0
    for sentence in sentences:
        history = "<s>"
        for word in [w if w in known else "<unk>" for w in sentence] + ["</s>"]:
            nats -= weight * math.log(bigram.prob(word, [history])) + (1 - weight) * math.log(unigram.prob(word))
            history, predicted = word, predicted + 1
    return math.exp(nats / predicted)


def held_out_perplexity(bigram, unigram, dev, test, lambdas):
    best = min(lambdas, key=lambda weight: _perplexity(bigram, unigram, dev, weight))
    return best, _perplexity(bigram, unigram, test, best)
''',
    }))


# ================================================================================================ 00
add(Cells(
    id="00.uniform_cross_entropy", name="uniform_cross_entropy",
    task="""
## Exercise: the cross-entropy of a uniform guess

A model that knows nothing gives every one of the V characters the same probability. What is its
cross-entropy in nats per character? Complete the function; the checker tries several vocabulary sizes,
from one symbol (V = 1: nothing to guess) and a coin (V = 2) to GPT-2's 50,257 tokens. A model that predicts the next character has to beat this number for the course's characters (the recap prints it).
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
        "detaches between chunks but calls backward once, at the end (same gradients, whole graph held)": '''
def truncated_bptt(cell, xs, h0, k):
    h, loss = h0, 0.0
    for start in range(0, len(xs), k):
        for x in xs[start:start + k]:
            h = cell(x, h)
            loss = loss + h.square().mean()
        h = h.detach()
    loss.backward()
    return h
''',
        "one backward per chunk, but all of them deferred to the end": '''
def truncated_bptt(cell, xs, h0, k):
    h, losses = h0, []
    for start in range(0, len(xs), k):
        loss = 0.0
        for x in xs[start:start + k]:
            h = cell(x, h)
            loss = loss + h.square().mean()
        losses.append(loss)
        h = h.detach()
    for loss in losses:
        loss.backward()
    return h
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

`cosine_similarity` compares vectors pair by pair. Nearest neighbours and analogies need every word against every
other at once: write `cosine_matrix(A, B)`, which for numpy arrays A (n, d) and B (m, d) returns the (n, m) array
whose entry (i, j) is the cosine similarity of row i of A and row j of B.
Follow the package's convention: a row of zeros has no direction, and its similarity with anything is 0, not NaN.
Return the dtype you were given (float16, float32 or float64). The checker tries rows of very different lengths,
zero rows, float16 tables (zero rows and long rows), non-contiguous arrays, and a single row;
`lmcourse.embeddings`, scikit-learn's and scipy's similarities are not accepted.
""",
    stub='''
import numpy as np


def cosine_matrix(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Cosine similarities between the rows of A (n, d) and of B (m, d): (n, m), in the inputs' dtype; 0 for a zero row."""
    raise NotImplementedError  # your code
''',
    solution='''
import numpy as np


def cosine_matrix(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Cosine similarities between the rows of A (n, d) and of B (m, d): (n, m), in the inputs' dtype; 0 for a zero row."""
    def unit(X):
        X = np.asarray(X, dtype=np.float64)                    # float16 would overflow and round the guard to 0
        return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-300)   # a zero row stays zero
    return (unit(A) @ unit(B).T).astype(np.result_type(A, B))
''',
    wrong={
        "dot products, not normalised": '''
import numpy as np

def cosine_matrix(A, B):
    return (A @ B.T).astype(np.result_type(A, B))
''',
        "normalised along the wrong axis": '''
import numpy as np

def cosine_matrix(A, B):
    unit = lambda X: X / np.maximum(np.linalg.norm(X, axis=0, keepdims=True), 1e-12)
    return unit(A) @ unit(B).T
''',
        "NaN for an all-zero row": '''
import numpy as np

def cosine_matrix(A, B):
    return (A / np.linalg.norm(A, axis=1, keepdims=True)) @ (B / np.linalg.norm(B, axis=1, keepdims=True)).T
''',
        "always float64 (the input's dtype not kept)": '''
import numpy as np

def cosine_matrix(A, B):
    unit = lambda X: X / np.maximum(np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True), 1e-12)
    return unit(A.astype(np.float64)) @ unit(B.astype(np.float64)).T
''',
        "computed in float16 itself: the 1e-12 guard is 0 and long rows overflow": '''
import numpy as np

def cosine_matrix(A, B):
    unit = lambda X: X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return unit(A) @ unit(B).T
''',
    }))

add(Cells(
    id="02.sgns_sgd_step", name="sgns_sgd_step",
    task="""
### Exercise 2 · One SGD step of skip-gram with negative sampling

The section "Skip-gram with negative sampling, by hand" shows the loss, `sgns_loss`, and checks the package's step
against SGD through autograd without showing the step. Write that step yourself:
`sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator)`. The package's step,
`lmcourse.skipgram.sgd_step`, is the course's reference: reading its source gives the answer away, so try first.

- Draw K negative words for each of the B pairs from the unigram distribution raised to the power 0.75 (the word
  counts `counts` (V,), raised to 0.75 and normalised), with replacement, using `generator` for every random draw
  (the checker verifies that torch's global random state is left untouched).
- Take one plain SGD step, with learning rate `lr`, on the **summed** `sgns_loss` of the batch: update the input
  vectors `W_in` (V, d) and the output vectors `W_out` (V, d) **in place**, with gradients you derive and write
  yourself (no autograd: `backward` and `torch.autograd` are refused while your function runs, and so is
  `lmcourse.skipgram`).
- Return the negatives you drew, an int64 tensor (B, K); `centre` and `context` are (B,) word ids.

The checker compares your updated tables with SGD through autograd on its own copies, using your negatives. Its
batches are small vocabularies where words repeat, float64 tables, and one large batch whose negatives are tested
against the 0.75 distribution.
""",
    stub='''
import torch


def sgns_sgd_step(W_in: torch.Tensor, W_out: torch.Tensor, centre: torch.Tensor, context: torch.Tensor,
                  counts: torch.Tensor, K: int, lr: float, generator: torch.Generator) -> torch.Tensor:
    """Draw K negatives per pair from counts^0.75, then one SGD step on the summed SGNS loss, in place.

    W_in, W_out (V, d); centre, context (B,) word ids; counts (V,). Returns the negatives (B, K), int64.
    """
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def sgns_sgd_step(W_in: torch.Tensor, W_out: torch.Tensor, centre: torch.Tensor, context: torch.Tensor,
                  counts: torch.Tensor, K: int, lr: float, generator: torch.Generator) -> torch.Tensor:
    """Draw K negatives per pair from counts^0.75, then one SGD step on the summed SGNS loss, in place.

    W_in, W_out (V, d); centre, context (B,) word ids; counts (V,). Returns the negatives (B, K), int64.
    """
    B = len(centre)
    weights = counts.double() ** 0.75
    negatives = torch.multinomial(weights, B * K, replacement=True, generator=generator).view(B, K)
    v, u_pos, u_neg = W_in[centre], W_out[context], W_out[negatives]   # copies at the old weights
    s_pos = (u_pos * v).sum(-1)                                         # (B,)
    s_neg = torch.einsum("bkd,bd->bk", u_neg, v)                       # (B, K)
    g_pos = -torch.sigmoid(-s_pos)                                      # dL/ds_pos: d/ds log σ(s) = σ(-s)
    g_neg = torch.sigmoid(s_neg)                                        # dL/ds_neg, from -log σ(-s)
    grad_v = g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)   # (B, d)
    # a word repeated in the batch gets the sum of its updates: index_add_, not assignment
    W_in.index_add_(0, centre, -lr * grad_v)
    W_out.index_add_(0, context, -lr * g_pos[:, None] * v)
    W_out.index_add_(0, negatives.flatten(), -lr * (g_neg[:, :, None] * v[:, None, :]).flatten(0, 1))
    return negatives
''',
    wrong={
        "assignment instead of accumulation (W[ids] -= ... keeps one update per repeated word)": '''
import torch

def sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator):
    B = len(centre)
    negatives = torch.multinomial(counts.double() ** 0.75, B * K, replacement=True, generator=generator).view(B, K)
    v, u_pos, u_neg = W_in[centre], W_out[context], W_out[negatives]
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    g_pos, g_neg = -torch.sigmoid(-s_pos), torch.sigmoid(s_neg)
    W_in[centre] -= lr * (g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg))
    W_out[context] -= lr * g_pos[:, None] * v
    W_out[negatives] -= lr * g_neg[:, :, None] * v[:, None, :]
    return negatives
''',
        "sign error on the negatives (pulled towards the centre)": '''
import torch

def sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator):
    B = len(centre)
    negatives = torch.multinomial(counts.double() ** 0.75, B * K, replacement=True, generator=generator).view(B, K)
    v, u_pos, u_neg = W_in[centre], W_out[context], W_out[negatives]
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    g_pos, g_neg = -torch.sigmoid(-s_pos), -torch.sigmoid(s_neg)
    W_in.index_add_(0, centre, -lr * (g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)))
    W_out.index_add_(0, context, -lr * g_pos[:, None] * v)
    W_out.index_add_(0, negatives.flatten(), -lr * (g_neg[:, :, None] * v[:, None, :]).flatten(0, 1))
    return negatives
''',
        "the output (context) vectors are not updated": '''
import torch

def sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator):
    B = len(centre)
    negatives = torch.multinomial(counts.double() ** 0.75, B * K, replacement=True, generator=generator).view(B, K)
    v, u_pos, u_neg = W_in[centre], W_out[context], W_out[negatives]
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    g_pos, g_neg = -torch.sigmoid(-s_pos), torch.sigmoid(s_neg)
    W_in.index_add_(0, centre, -lr * (g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)))
    return negatives
''',
        "sigmoid(s) where sigmoid(-s) belongs (the positive pair)": '''
import torch

def sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator):
    B = len(centre)
    negatives = torch.multinomial(counts.double() ** 0.75, B * K, replacement=True, generator=generator).view(B, K)
    v, u_pos, u_neg = W_in[centre], W_out[context], W_out[negatives]
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    g_pos, g_neg = -torch.sigmoid(s_pos), torch.sigmoid(s_neg)
    W_in.index_add_(0, centre, -lr * (g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)))
    W_out.index_add_(0, context, -lr * g_pos[:, None] * v)
    W_out.index_add_(0, negatives.flatten(), -lr * (g_neg[:, :, None] * v[:, None, :]).flatten(0, 1))
    return negatives
''',
        "lr applied twice (once in the derivatives, once in the update)": '''
import torch

def sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator):
    B = len(centre)
    negatives = torch.multinomial(counts.double() ** 0.75, B * K, replacement=True, generator=generator).view(B, K)
    v, u_pos, u_neg = W_in[centre], W_out[context], W_out[negatives]
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    g_pos, g_neg = -torch.sigmoid(-s_pos) * lr, torch.sigmoid(s_neg) * lr
    W_in.index_add_(0, centre, -lr * (g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)))
    W_out.index_add_(0, context, -lr * g_pos[:, None] * v)
    W_out.index_add_(0, negatives.flatten(), -lr * (g_neg[:, :, None] * v[:, None, :]).flatten(0, 1))
    return negatives
''',
        "W_in updated first, and its new vectors used for W_out's update": '''
import torch

def sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator):
    B = len(centre)
    negatives = torch.multinomial(counts.double() ** 0.75, B * K, replacement=True, generator=generator).view(B, K)
    v, u_pos, u_neg = W_in[centre], W_out[context], W_out[negatives]
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    g_pos, g_neg = -torch.sigmoid(-s_pos), torch.sigmoid(s_neg)
    W_in.index_add_(0, centre, -lr * (g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)))
    v = W_in[centre]
    W_out.index_add_(0, context, -lr * g_pos[:, None] * v)
    W_out.index_add_(0, negatives.flatten(), -lr * (g_neg[:, :, None] * v[:, None, :]).flatten(0, 1))
    return negatives
''',
        "negatives drawn from torch's global random generator, not from `generator`": '''
import torch

def sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator):
    B = len(centre)
    negatives = torch.multinomial(counts.double() ** 0.75, B * K, replacement=True).view(B, K)
    v, u_pos, u_neg = W_in[centre], W_out[context], W_out[negatives]
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    g_pos, g_neg = -torch.sigmoid(-s_pos), torch.sigmoid(s_neg)
    W_in.index_add_(0, centre, -lr * (g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)))
    W_out.index_add_(0, context, -lr * g_pos[:, None] * v)
    W_out.index_add_(0, negatives.flatten(), -lr * (g_neg[:, :, None] * v[:, None, :]).flatten(0, 1))
    return negatives
''',
        "negatives drawn from the raw counts (no power 0.75)": '''
import torch

def sgns_sgd_step(W_in, W_out, centre, context, counts, K, lr, generator):
    B = len(centre)
    negatives = torch.multinomial(counts.double(), B * K, replacement=True, generator=generator).view(B, K)
    v, u_pos, u_neg = W_in[centre], W_out[context], W_out[negatives]
    s_pos, s_neg = (u_pos * v).sum(-1), torch.einsum("bkd,bd->bk", u_neg, v)
    g_pos, g_neg = -torch.sigmoid(-s_pos), torch.sigmoid(s_neg)
    W_in.index_add_(0, centre, -lr * (g_pos[:, None] * u_pos + torch.einsum("bk,bkd->bd", g_neg, u_neg)))
    W_out.index_add_(0, context, -lr * g_pos[:, None] * v)
    W_out.index_add_(0, negatives.flatten(), -lr * (g_neg[:, :, None] * v[:, None, :]).flatten(0, 1))
    return negatives
''',
    }))

add(Cells(
    id="02.three_cos_mul", name="three_cos_mul",
    task="""
### Exercise 3 · The 3CosMul analogy

The analogies above are answered by 3CosAdd (`analogy`). Levy & Goldberg ("Linguistic Regularities in Sparse and
Explicit Word Representations", 2014) noticed that with unit vectors 3CosAdd ranks words by a *sum* of three
cosine similarities, so one large similarity can make up for a poor one. Their 3CosMul combines the same three
similarities multiplicatively instead of additively, so that a good answer has to do well on all of them at once.
Write `three_cos_mul(vectors, words, a, b, c)` for "a is to b as c is to ?". The checker uses their constants:
every cosine is first shifted into [0, 1] by (cos + 1) / 2, and ε = 1e-3 keeps the division finite; the question
words a, b and c are never an answer. `vectors` is a (V, d) numpy array whose row i is the vector of `words[i]`;
return the winning word. The checker uses random vectors of varied lengths, a question on which 3CosAdd and 3CosMul
disagree, a planted answer, and a word pointing exactly away from a; `lmcourse.embeddings` and gensim's
`most_similar_cosmul` are not accepted.
""",
    stub='''
import numpy as np


def three_cos_mul(vectors: np.ndarray, words: list[str], a: str, b: str, c: str) -> str:
    """a : b :: c : ? by Levy & Goldberg's 3CosMul (cosines shifted to [0, 1], ε = 1e-3), a, b, c excluded.

    vectors (V, d), row i the vector of words[i]. Returns the best word.
    """
    raise NotImplementedError  # your code
''',
    solution='''
import numpy as np


def three_cos_mul(vectors: np.ndarray, words: list[str], a: str, b: str, c: str) -> str:
    """a : b :: c : ? by Levy & Goldberg's 3CosMul (cosines shifted to [0, 1], ε = 1e-3), a, b, c excluded.

    vectors (V, d), row i the vector of words[i]. Returns the best word.
    """
    index = {w: i for i, w in enumerate(words)}
    query = [index[a], index[b], index[c]]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)           # (V, d)
    sim = (unit @ unit[query].T + 1) / 2                                       # (V, 3): shifted cosines in [0, 1]
    scores = sim[:, 1] * sim[:, 2] / (sim[:, 0] + 1e-3)                        # near b and c, far from a
    scores[query] = -np.inf                                                    # the question words are not answers
    return words[int(scores.argmax())]
''',
    wrong={
        "the question words are not excluded": '''
import numpy as np

def three_cos_mul(vectors, words, a, b, c):
    index = {w: i for i, w in enumerate(words)}
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = (unit @ unit[[index[a], index[b], index[c]]].T + 1) / 2
    return words[int((sim[:, 1] * sim[:, 2] / (sim[:, 0] + 1e-3)).argmax())]
''',
        "raw cosines, not shifted to [0, 1]": '''
import numpy as np

def three_cos_mul(vectors, words, a, b, c):
    index = {w: i for i, w in enumerate(words)}
    query = [index[a], index[b], index[c]]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = unit @ unit[query].T
    scores = sim[:, 1] * sim[:, 2] / (sim[:, 0] + 1e-3)
    scores[query] = -np.inf
    return words[int(scores.argmax())]
''',
        "ε added after the division, not inside it": '''
import numpy as np

def three_cos_mul(vectors, words, a, b, c):
    index = {w: i for i, w in enumerate(words)}
    query = [index[a], index[b], index[c]]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = (unit @ unit[query].T + 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = sim[:, 1] * sim[:, 2] / sim[:, 0] + 1e-3
    scores[query] = -np.inf
    return words[int(np.nan_to_num(scores, nan=-np.inf).argmax())]
''',
        "ε in the numerator": '''
import numpy as np

def three_cos_mul(vectors, words, a, b, c):
    index = {w: i for i, w in enumerate(words)}
    query = [index[a], index[b], index[c]]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = (unit @ unit[query].T + 1) / 2
    with np.errstate(divide="ignore"):
        scores = (sim[:, 1] * sim[:, 2] + 1e-3) / sim[:, 0]
    scores[query] = -np.inf
    return words[int(scores.argmax())]
''',
        "unnormalised dot products instead of cosines": '''
import numpy as np

def three_cos_mul(vectors, words, a, b, c):
    index = {w: i for i, w in enumerate(words)}
    query = [index[a], index[b], index[c]]
    sim = (vectors @ vectors[query].T + 1) / 2
    scores = sim[:, 1] * sim[:, 2] / (sim[:, 0] + 1e-3)
    scores[query] = -np.inf
    return words[int(scores.argmax())]
''',
        "3CosAdd instead": '''
import numpy as np

def three_cos_mul(vectors, words, a, b, c):
    index = {w: i for i, w in enumerate(words)}
    query = [index[a], index[b], index[c]]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit @ (unit[index[b]] - unit[index[a]] + unit[index[c]])
    scores[query] = -np.inf
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
    id="08.shard_indices", name="shard_indices",
    task="""
### Exercise 1 · Each rank's shard of an epoch

`sharded_batches` above leaves the choice of examples to torch's `DistributedSampler`. Write what it does:
`shard_indices(n, world_size, rank, epoch=0, seed=0, shuffle=True, drop_last=False)` returns the indices (a list
of ints) of a dataset of `n` examples that rank `rank` of `world_size` reads in epoch `epoch`. What it must
guarantee: every rank gets the same number of indices; in one epoch the ranks together read every example (with
`drop_last=False` a few twice, with `drop_last=True` a few not at all); the ranks need not talk to each other to
agree; a new epoch brings a new order; and torch's global random state stays as it was (the order comes from
`torch.randperm(n, generator=...)`, with a generator seeded with `seed + epoch`; with `shuffle=False` it is
0, 1, ..., n - 1). The answer must be exactly `DistributedSampler`'s: read its documentation or source if you
like, but calling it is not accepted. The checker tries every rank, padding, `drop_last`, several epochs and
seeds, and more ranks than examples.
""",
    stub='''
def shard_indices(n: int, world_size: int, rank: int, *, epoch: int = 0, seed: int = 0, shuffle: bool = True,
                  drop_last: bool = False) -> list[int]:
    """The indices of a dataset of n examples that rank `rank` of `world_size` reads in epoch `epoch`."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def shard_indices(n: int, world_size: int, rank: int, *, epoch: int = 0, seed: int = 0, shuffle: bool = True,
                  drop_last: bool = False) -> list[int]:
    """The indices of a dataset of n examples that rank `rank` of `world_size` reads in epoch `epoch`."""
    if shuffle:
        g = torch.Generator().manual_seed(seed + epoch)     # the same order on every rank, a new one each epoch
        order = torch.randperm(n, generator=g).tolist()
    else:
        order = list(range(n))
    if drop_last:
        order = order[: n // world_size * world_size]       # cut the tail: n // world_size per rank
    else:
        total = -(-n // world_size) * world_size             # ceil(n / world_size) per rank
        while len(order) < total:
            order += order[: total - len(order)]             # pad by wrapping round to the start
    return order[rank::world_size]                           # strided: consecutive examples on different ranks
''',
    wrong={
        "a different shuffle on each rank (rank in the seed)": '''
import torch

def shard_indices(n, world_size, rank, *, epoch=0, seed=0, shuffle=True, drop_last=False):
    g = torch.Generator().manual_seed(seed + epoch + rank)
    order = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))
    if drop_last:
        order = order[: n // world_size * world_size]
    else:
        total = -(-n // world_size) * world_size
        while len(order) < total:
            order += order[: total - len(order)]
    return order[rank::world_size]
''',
        "contiguous blocks instead of every world_size-th index": '''
import torch

def shard_indices(n, world_size, rank, *, epoch=0, seed=0, shuffle=True, drop_last=False):
    g = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))
    if drop_last:
        order = order[: n // world_size * world_size]
    else:
        total = -(-n // world_size) * world_size
        while len(order) < total:
            order += order[: total - len(order)]
    per_rank = len(order) // world_size
    return order[rank * per_rank:(rank + 1) * per_rank]
''',
        "no padding (ranks get different numbers of indices)": '''
import torch

def shard_indices(n, world_size, rank, *, epoch=0, seed=0, shuffle=True, drop_last=False):
    g = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))
    if drop_last:
        order = order[: n // world_size * world_size]
    return order[rank::world_size]
''',
        "seeds torch's global generator (consumes the global random state)": '''
import torch

def shard_indices(n, world_size, rank, *, epoch=0, seed=0, shuffle=True, drop_last=False):
    torch.manual_seed(seed + epoch)
    order = torch.randperm(n).tolist() if shuffle else list(range(n))
    if drop_last:
        order = order[: n // world_size * world_size]
    else:
        total = -(-n // world_size) * world_size
        while len(order) < total:
            order += order[: total - len(order)]
    return order[rank::world_size]
''',
        "forgets the epoch (every epoch the same order)": '''
import torch

def shard_indices(n, world_size, rank, *, epoch=0, seed=0, shuffle=True, drop_last=False):
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))
    if drop_last:
        order = order[: n // world_size * world_size]
    else:
        total = -(-n // world_size) * world_size
        while len(order) < total:
            order += order[: total - len(order)]
    return order[rank::world_size]
''',
    }))

add(Cells(
    id="08.accumulate_gradients", name="accumulate_gradients",
    task="""
### Exercise 2 · Gradient accumulation over uneven, padded micro-batches

Above, four micro-batches of equal size were each scaled by 1/4. Real micro-batches are rarely that tidy: they
hold different numbers of sequences, and the sequences are padded to a common length. Write
`accumulate_gradients(model, micro_batches, loss_fn)`. Each micro-batch is `(x, y, mask)`, three (B, T) tensors
(B and T differ between micro-batches), with `mask` True on the real tokens and False on padding;
`loss_fn(model, (x, y, mask))` returns the **mean** loss over that micro-batch's real tokens. Leave in the
parameters' `.grad` exactly the gradient of the mean loss over **all the real tokens of the whole batch** (the
`.grad` are empty at the start), and return that loss as a float. Call `loss_fn` once per micro-batch and call
`backward()` once per micro-batch, before the next one's forward: that is what lets accumulation free each
micro-batch's activations. The checker compares with one backward pass over the whole batch.
""",
    stub='''
import torch


def accumulate_gradients(model: torch.nn.Module, micro_batches: list, loss_fn) -> float:
    """Accumulate in model's .grad the gradient of the mean loss over all real tokens of all micro-batches.

    micro_batches: a list of (x, y, mask), each (B, T), mask True on real tokens; loss_fn(model, (x, y, mask)) ->
    the mean loss over that micro-batch's real tokens. Returns the whole batch's mean loss as a float.
    """
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def accumulate_gradients(model: torch.nn.Module, micro_batches: list, loss_fn) -> float:
    """Accumulate in model's .grad the gradient of the mean loss over all real tokens of all micro-batches.

    micro_batches: a list of (x, y, mask), each (B, T), mask True on real tokens; loss_fn(model, (x, y, mask)) ->
    the mean loss over that micro-batch's real tokens. Returns the whole batch's mean loss as a float.
    """
    n_real = sum(int(mask.sum()) for _, _, mask in micro_batches)
    total = 0.0
    for x, y, mask in micro_batches:
        loss = loss_fn(model, (x, y, mask)) * (int(mask.sum()) / n_real)   # its share of the real tokens
        loss.backward()                    # frees this micro-batch's activations; gradients add up in .grad
        total += loss.item()
    return total
''',
    wrong={
        "divides by the number of micro-batches (equal weights)": '''
def accumulate_gradients(model, micro_batches, loss_fn):
    total = 0.0
    for batch in micro_batches:
        loss = loss_fn(model, batch) / len(micro_batches)
        loss.backward()
        total += loss.item()
    return total
''',
        "weighs each micro-batch by its share of the sequences": '''
def accumulate_gradients(model, micro_batches, loss_fn):
    n_sequences = sum(len(x) for x, _, _ in micro_batches)
    total = 0.0
    for x, y, mask in micro_batches:
        loss = loss_fn(model, (x, y, mask)) * len(x) / n_sequences
        loss.backward()
        total += loss.item()
    return total
''',
        "counts the padding as tokens": '''
def accumulate_gradients(model, micro_batches, loss_fn):
    n_tokens = sum(x.numel() for x, _, _ in micro_batches)
    total = 0.0
    for x, y, mask in micro_batches:
        loss = loss_fn(model, (x, y, mask)) * x.numel() / n_tokens
        loss.backward()
        total += loss.item()
    return total
''',
        "zeroes the gradients inside the loop": '''
def accumulate_gradients(model, micro_batches, loss_fn):
    n_real = sum(int(mask.sum()) for _, _, mask in micro_batches)
    total = 0.0
    for x, y, mask in micro_batches:
        model.zero_grad()
        loss = loss_fn(model, (x, y, mask)) * (int(mask.sum()) / n_real)
        loss.backward()
        total += loss.item()
    return total
''',
        "one backward on the summed loss (every micro-batch's activations kept)": '''
def accumulate_gradients(model, micro_batches, loss_fn):
    n_real = sum(int(mask.sum()) for _, _, mask in micro_batches)
    total = sum(loss_fn(model, (x, y, mask)) * (int(mask.sum()) / n_real) for x, y, mask in micro_batches)
    total.backward()
    return total.item()
''',
    }))

add(Cells(
    id="08.ring_all_reduce", name="ring_all_reduce",
    task="""
### Exercise 3 · A ring all-reduce

`dist.all_reduce` hides how the ranks share their gradients; the classic way, one of those NCCL and gloo
pick from, passes chunks round a ring. Simulate
it: `rank_tensors` holds one 1-D tensor per rank (all of the same length and dtype), and `ring.send(r, chunk)`
sends `chunk` from rank r to its right-hand neighbour, rank (r + 1) mod N, returning what that neighbour
receives. Write `ring_all_reduce(rank_tensors, ring)`: cut every rank's tensor into N chunks with
`tensor.tensor_split(N)`, run a **reduce-scatter** (N - 1 steps; at step s = 0, 1, ..., N - 2, rank r sends its
running copy of chunk (r - s) mod N, and the receiver adds it to its own copy of that chunk), then an
**all-gather** (N - 1 more steps that pass the completed chunks round), and return every rank's result, one
tensor per rank, each the sum of all the ranks' tensors. Every message goes through `ring.send`. The checker
counts the messages and, in float16, compares bit for bit with the sums added up in the ring's order.
""",
    stub='''
import torch


def ring_all_reduce(rank_tensors: list[torch.Tensor], ring) -> list[torch.Tensor]:
    """Every rank's sum of rank_tensors (N tensors (L,)), by reduce-scatter then all-gather round a ring.

    ring.send(r, chunk) -> the chunk as rank (r + 1) % N receives it.
    """
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def ring_all_reduce(rank_tensors: list[torch.Tensor], ring) -> list[torch.Tensor]:
    """Every rank's sum of rank_tensors (N tensors (L,)), by reduce-scatter then all-gather round a ring.

    ring.send(r, chunk) -> the chunk as rank (r + 1) % N receives it.
    """
    n = len(rank_tensors)
    chunks = [list(t.tensor_split(n)) for t in rank_tensors]       # chunks[r][c]: rank r's copy of chunk c
    for s in range(n - 1):                                          # reduce-scatter: add as the chunks go round
        messages = [(r, (r - s) % n, ring.send(r, chunks[r][(r - s) % n])) for r in range(n)]  # all send, then
        for r, c, received in messages:                                                       # all receive
            chunks[(r + 1) % n][c] = chunks[(r + 1) % n][c] + received
    # now rank r holds the complete sum of chunk (r + 1) % n
    for s in range(n - 1):                                          # all-gather: pass the sums round, no adding
        messages = [(r, (r + 1 - s) % n, ring.send(r, chunks[r][(r + 1 - s) % n])) for r in range(n)]
        for r, c, received in messages:
            chunks[(r + 1) % n][c] = received
    return [torch.cat(own) for own in chunks]
''',
    wrong={
        "sends the messages, but returns one sum over the ranks (float16 rounds differently)": '''
import torch

def ring_all_reduce(rank_tensors, ring):
    n = len(rank_tensors)
    for s in range(2 * (n - 1)):
        for r in range(n):
            ring.send(r, rank_tensors[r].tensor_split(n)[(r - s) % n])
    total = torch.stack(rank_tensors).sum(0)
    return [total.clone() for _ in range(n)]
''',
        "no ring at all: sum() on every rank": '''
def ring_all_reduce(rank_tensors, ring):
    total = sum(rank_tensors)
    return [total.clone() for _ in rank_tensors]
''',
        "the all-gather adds again instead of replacing": '''
import torch

def ring_all_reduce(rank_tensors, ring):
    n = len(rank_tensors)
    chunks = [list(t.tensor_split(n)) for t in rank_tensors]
    for s in range(n - 1):
        messages = [(r, (r - s) % n, ring.send(r, chunks[r][(r - s) % n])) for r in range(n)]
        for r, c, received in messages:
            chunks[(r + 1) % n][c] = chunks[(r + 1) % n][c] + received
    for s in range(n - 1):
        messages = [(r, (r + 1 - s) % n, ring.send(r, chunks[r][(r + 1 - s) % n])) for r in range(n)]
        for r, c, received in messages:
            chunks[(r + 1) % n][c] = chunks[(r + 1) % n][c] + received
    return [torch.cat(own) for own in chunks]
''',
        "each chunk starts one rank late (rank r sends chunk (r - s - 1) mod N)": '''
import torch

def ring_all_reduce(rank_tensors, ring):
    n = len(rank_tensors)
    chunks = [list(t.tensor_split(n)) for t in rank_tensors]
    for s in range(n - 1):
        messages = [(r, (r - s - 1) % n, ring.send(r, chunks[r][(r - s - 1) % n])) for r in range(n)]
        for r, c, received in messages:
            chunks[(r + 1) % n][c] = chunks[(r + 1) % n][c] + received
    for s in range(n - 1):
        messages = [(r, (r - s) % n, ring.send(r, chunks[r][(r - s) % n])) for r in range(n)]
        for r, c, received in messages:
            chunks[(r + 1) % n][c] = received
    return [torch.cat(own) for own in chunks]
''',
        "adds up in float32 and casts back (not the ring's float16 additions)": '''
import torch

def ring_all_reduce(rank_tensors, ring):
    n = len(rank_tensors)
    chunks = [[c.float() for c in t.tensor_split(n)] for t in rank_tensors]
    for s in range(n - 1):
        messages = [(r, (r - s) % n, ring.send(r, chunks[r][(r - s) % n])) for r in range(n)]
        for r, c, received in messages:
            chunks[(r + 1) % n][c] = chunks[(r + 1) % n][c] + received
    for s in range(n - 1):
        messages = [(r, (r + 1 - s) % n, ring.send(r, chunks[r][(r + 1 - s) % n])) for r in range(n)]
        for r, c, received in messages:
            chunks[(r + 1) % n][c] = received
    return [torch.cat(own).to(rank_tensors[0].dtype) for own in chunks]
''',
    }))


# ================================================================================================ 09
add(Cells(
    id="09.mixture_weights", name="mixture_weights",
    task="""
### Exercise 1 · Mixing K models: the weights by EM

Section 6 mixed two models with one weight λ, chosen on a grid over the tuning characters. With K models (an
n-gram, an LSTM, a GPT, ...) a grid over K - 1 weights is out of reach. Write `mixture_weights(tune_log_probs,
scored_log_probs)`: given ln p of every tuning character under each of the K models, (K, N_tune), find by
expectation-maximisation the weights w (K,), non-negative and summing to 1, that maximise the tuning characters'
mean log-likelihood under the mixture Σ_k w_k p_k; start from equal weights and iterate until the log-likelihood
stops improving. Then return `(weights, scored_nats)`: the weights, and the mixture's nats/char on the scored
characters, `scored_log_probs` (K, N_scored), which must not influence the weights. The checker compares the
log-likelihood your weights reach with the best any weights reach (to a ten-thousandth of a nat per character), not
the weights themselves (two nearly identical models may share their weight any way), on cases with one to three
models, one of them where the best weight of a model is 0.
""",
    stub='''
import numpy as np


def mixture_weights(tune_log_probs: np.ndarray, scored_log_probs: np.ndarray) -> tuple[np.ndarray, float]:
    """EM weights (K,) of a mixture of K models fitted on ln p (K, N_tune); with them, the nats/char of ln p (K, N_scored)."""
    raise NotImplementedError  # your code
''',
    solution='''
import numpy as np


def mixture_weights(tune_log_probs: np.ndarray, scored_log_probs: np.ndarray) -> tuple[np.ndarray, float]:
    """EM weights (K,) of a mixture of K models fitted on ln p (K, N_tune); with them, the nats/char of ln p (K, N_scored)."""
    p = np.exp(tune_log_probs)                             # (K, N): per-character probabilities are not tiny
    weights, previous = np.full(len(p), 1 / len(p)), -np.inf
    while True:
        mixed = weights @ p                                # (N,) the mixture's probability of each character
        mean_log_likelihood = np.log(mixed).mean()
        if mean_log_likelihood - previous < 1e-9:          # EM never goes down: stop when it no longer goes up
            break
        previous = mean_log_likelihood
        shares = weights[:, None] * p / mixed              # E-step: each model's share of each character, (K, N)
        weights = shares.mean(axis=1)                      # M-step: a model's weight is its average share
    scored = weights @ np.exp(scored_log_probs)
    return weights, float(-np.log(scored).mean())
''',
    wrong={
        "one round of EM from equal weights": '''
import numpy as np

def mixture_weights(tune_log_probs, scored_log_probs):
    p = np.exp(tune_log_probs)
    weights = np.full(len(p), 1 / len(p))
    weights = (weights[:, None] * p / (weights @ p)).mean(axis=1)
    return weights, float(-np.log(weights @ np.exp(scored_log_probs)).mean())
''',
        "shares not normalised per character (the weights renormalised instead)": '''
import numpy as np

def mixture_weights(tune_log_probs, scored_log_probs):
    p = np.exp(tune_log_probs)
    weights = np.full(len(p), 1 / len(p))
    for _ in range(500):
        weights = (weights[:, None] * p).mean(axis=1)
        weights = weights / weights.sum()
    return weights, float(-np.log(weights @ np.exp(scored_log_probs)).mean())
''',
        "the weights fitted on the scored characters": '''
import numpy as np

def mixture_weights(tune_log_probs, scored_log_probs):
    p = np.exp(scored_log_probs)
    weights = np.full(len(p), 1 / len(p))
    for _ in range(2000):
        weights = (weights[:, None] * p / (weights @ p)).mean(axis=1)
    return weights, float(-np.log(weights @ p).mean())
''',
        "the losses mixed instead of the probabilities": '''
import numpy as np

def mixture_weights(tune_log_probs, scored_log_probs):
    p = np.exp(tune_log_probs)
    weights = np.full(len(p), 1 / len(p))
    for _ in range(2000):
        weights = (weights[:, None] * p / (weights @ p)).mean(axis=1)
    return weights, float(-(weights @ scored_log_probs).mean())
''',
        "weights that do not sum to 1": '''
import numpy as np

def mixture_weights(tune_log_probs, scored_log_probs):
    p = np.exp(tune_log_probs)
    weights = np.full(len(p), 1 / len(p))
    for _ in range(2000):
        weights = (weights[:, None] * p / (weights @ p)).sum(axis=1) / len(p)
    return weights, float(-np.log(weights @ np.exp(scored_log_probs)).mean())
''',
    }))

add(Cells(
    id="09.moving_block_bootstrap", name="moving_block_bootstrap",
    task="""
### Exercise 2 · Is the difference real? A moving-block bootstrap

Two models scored on the same characters give per-character losses `nll_a` and `nll_b` (N,). Neighbouring
characters are not independent (a hard word is hard for several characters), so resampling single characters gives
an interval that is too narrow. Section 7 resamples fixed blocks of 1,000 characters (`lmcourse.stats.block_bootstrap`);
here blocks may start anywhere. Write `moving_block_bootstrap(nll_a, nll_b, block, n_boot, seed)`: a paired 95 %
percentile interval `(low, high)` for the mean of nll_a - nll_b by the **circular** block bootstrap: each of the
n_boot resamples is made of blocks of `block` consecutive characters, each starting at a position drawn uniformly
from all N, read around the end of the text back to its start where it runs over, joined until the resample has
exactly N characters. Use `np.random.default_rng(seed)` however you like: the checker compares your interval with its
own, computed from many more resamples, within a tenth of the interval's width, on series whose dependence it knows
(an AR(1) series, a periodic one, block = 1, block = N). `lmcourse.stats` is not accepted here.
""",
    stub='''
import numpy as np


def moving_block_bootstrap(nll_a: np.ndarray, nll_b: np.ndarray, block: int, n_boot: int = 2000,
                           seed: int = 0) -> tuple[float, float]:
    """95 % circular block bootstrap interval of mean(nll_a - nll_b), blocks of `block` characters. nll_a, nll_b: (N,)."""
    raise NotImplementedError  # your code
''',
    solution='''
import numpy as np


def moving_block_bootstrap(nll_a: np.ndarray, nll_b: np.ndarray, block: int, n_boot: int = 2000,
                           seed: int = 0) -> tuple[float, float]:
    """95 % circular block bootstrap interval of mean(nll_a - nll_b), blocks of `block` characters. nll_a, nll_b: (N,)."""
    diff = nll_a - nll_b                                   # paired: one series, the same characters for both models
    N = len(diff)
    n_blocks = -(-N // block)                              # enough blocks to cover N characters
    starts = np.random.default_rng(seed).integers(0, N, size=(n_boot, n_blocks, 1))
    index = (starts + np.arange(block)) % N                # (n_boot, n_blocks, block): past the end, from the start
    means = diff[index.reshape(n_boot, -1)[:, :N]].mean(axis=1)   # each resample cut to exactly N characters
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
''',
    wrong={
        "single characters resampled, whatever the block": '''
import numpy as np

def moving_block_bootstrap(nll_a, nll_b, block, n_boot=2000, seed=0):
    diff = nll_a - nll_b
    index = np.random.default_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))
    low, high = np.percentile(diff[index].mean(axis=1), [2.5, 97.5])
    return float(low), float(high)
''',
        "unpaired: each model's losses resampled with blocks of their own": '''
import numpy as np

def moving_block_bootstrap(nll_a, nll_b, block, n_boot=2000, seed=0):
    g, N = np.random.default_rng(seed), len(nll_a)
    def means(x):
        starts = g.integers(0, N, size=(n_boot, -(-N // block), 1))
        return x[((starts + np.arange(block)) % N).reshape(n_boot, -1)[:, :N]].mean(axis=1)
    low, high = np.percentile(means(nll_a) - means(nll_b), [2.5, 97.5])
    return float(low), float(high)
''',
        "blocks that do not wrap around (starts only where a whole block fits)": '''
import numpy as np

def moving_block_bootstrap(nll_a, nll_b, block, n_boot=2000, seed=0):
    diff, N = nll_a - nll_b, len(nll_a)
    starts = np.random.default_rng(seed).integers(0, N - block + 1, size=(n_boot, -(-N // block), 1))
    means = diff[(starts + np.arange(block)).reshape(n_boot, -1)[:, :N]].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
''',
        "the tail dropped: N // block whole blocks, shorter than N": '''
import numpy as np

def moving_block_bootstrap(nll_a, nll_b, block, n_boot=2000, seed=0):
    diff, N = nll_a - nll_b, len(nll_a)
    starts = np.random.default_rng(seed).integers(0, N, size=(n_boot, N // block, 1))
    means = diff[((starts + np.arange(block)) % N).reshape(n_boot, -1)].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
''',
        "int(N / block) blocks joined, then cut to N: a floor where a ceiling belongs": '''
import numpy as np

def moving_block_bootstrap(nll_a, nll_b, block, n_boot=2000, seed=0):
    diff, N = nll_a - nll_b, len(nll_a)
    starts = np.random.default_rng(seed).integers(0, N, size=(n_boot, max(1, int(N / block)), 1))
    means = diff[((starts + np.arange(block)) % N).reshape(n_boot, -1)[:, :N]].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
''',
    }))

add(Cells(
    id="09.project", name="my_model_log_probs",
    task="""
### Exercise 3 · The project: beat section 7's char LSTM (zoo)

Section 7 sets several models beside the tuned n-gram: mixing it with the 50-s LSTM or with a second n-gram, all
three together, and the two reference models alone. The bar here is section 7's **char LSTM (zoo)** (which reference
model scores lowest, section 7 prints; the exercise keeps this one as its bar either way), read as section 7 reads it
(the held-out text in 8 consecutive parts, the state carried through each). Section 7 prints it against the best
mixture shown there (the line that starts "exercise 3's bar", with its verdict), and on a CPU the full run asserts that
no mixture shown is ahead of the bar. Its 50-s runs take as many steps as the device manages in 50 s, so the mixtures'
scores, and whether one of them would pass the checker, depend on the machine: that line says where they stand on the
machine that ran it. The char LSTM (zoo) handed in alone is level with itself, the bar.
Build a model that is ahead of that bar: a bigger or longer-trained network, an LSTM with truncated BPTT, a mixture of models (mixing
probabilities, with weights from Exercise 1) that goes beyond the mixtures of section 7, or anything else. Train it on
the training split only, and choose its settings on validation characters the checker does not score (those after
the first 100,000). Then hand it to the checker as a function: `my_model_log_probs(ids)` takes held-out character
ids (the course tokenizer's, a NumPy array of N ids) and returns the natural-log probability of each character after
the first, given the characters before it (an array of N - 1 numbers). The checker scores it itself, on the first
100,000 validation characters (10,000 in fast mode), against the bar scored by the checker on the same characters,
with a paired 95 % block bootstrap interval (blocks of 1,000 characters). It also feeds your function texts of its own
choosing, to see that each probability does not change when the characters after it change and that a
next-character distribution sums to 1 (natural log: in bits it would not).

**What the check says.** ✓ means that your model is valid (causal, normalised, in natural log) and **ahead of the
bar**: your nats/char minus the bar's, per character, has an interval that lies below 0. A valid model that is
behind the bar, or level with it (the interval holds 0), gets ✗ with its difference and interval: a section-7
mixture that its line does not find ahead of the bar, handed in, gets that ✗. The line under ✓ also gives the difference with the tuned n-gram.
""",
    stub='''
def my_model_log_probs(ids):
    """ids (N,) held-out character ids -> ln p(ids[t + 1] | ids[:t + 1]) for t = 0..N-2, shape (N - 1,)."""
    raise NotImplementedError  # your code: train your model once (outside this function), then score ids with it
''',
    solution='''
import math

import numpy as np
import torch

from lmcourse import data, zoo
from lmcourse.ngram import NGramLM
from lmcourse.sequences import token_log_probs

# One project: the bar itself, section 7's char LSTM (zoo) read as section 7 reads it (8 consecutive parts, the
# state carried through each), mixed with two n-grams (modified Kneser-Ney, orders 8 and 5). The three weights: the
# EM update of Exercise 1, started from equal weights and run for a fixed 200 iterations (no convergence test), on
# 20,000 validation characters the checker does not score; the printed weights show how far they are from (1, 0, 0),
# the weighting that scores exactly the bar. The parts' length depends on N, the number of ids handed in (as in
# section 7's own scoring), so each ln p depends on how many characters follow, though not on what they are. Whether
# the mixture carries over to the scored characters is what the checker's interval says; why a mixture helps where it
# does is not tested here.
PARTS = 8
tokenizer = data.corpus_tokenizer("wiki")
train_ids = tokenizer.encode(data.load_corpus("wiki", "train"))
lstm, _, _ = zoo.load("char-lstm-wiki")
ngrams = [NGramLM(order, smoothing="modified_kneser_ney").fit(train_ids) for order in (8, 5)]


def component_log_probs(ids):
    """ln p of ids[1:] under the LSTM and each n-gram: an array (3, N - 1)."""
    ids = np.asarray(ids, dtype=np.int64)
    part = math.ceil((len(ids) - 1) / PARTS)
    by_lstm = token_log_probs(lstm, torch.as_tensor(ids), part, batch_size=PARTS).double().numpy()
    return np.array([by_lstm] + [lm.log_probs(ids)[1:] for lm in ngrams])   # log_probs scores the first character too


p_tune = np.exp(component_log_probs(tokenizer.encode(data.load_corpus("wiki", "valid")[100_000:120_000])))
weights = np.full(len(p_tune), 1 / len(p_tune))
for _ in range(200):
    weights = (weights[:, None] * p_tune / (weights @ p_tune)).mean(axis=1)
print(f"weights (LSTM, 8-gram, 5-gram), fitted on the tuning characters: {np.round(weights, 3)}")


def my_model_log_probs(ids):
    """ids (N,) held-out character ids -> ln p(ids[t + 1] | ids[:t + 1]) for t = 0..N-2, shape (N - 1,)."""
    return np.logaddexp.reduce(np.log(weights)[:, None] + component_log_probs(ids), axis=0)
''',
    wrong={
        "section 7's mixture handed in: the tuned 8-gram with a 5-gram (λ = 0.2 on the 5-gram)": '''
import numpy as np
from lmcourse import data
from lmcourse.ngram import NGramLM

train = data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "train"))
tuned, second = (NGramLM(order, smoothing="modified_kneser_ney").fit(train) for order in (8, 5))

def my_model_log_probs(ids):
    return np.logaddexp(np.log(0.8) + tuned.log_probs(ids)[1:], np.log(0.2) + second.log_probs(ids)[1:])
''',
        "a score handed in instead of a model (1.0 nats/char)": '''
def my_model_log_probs(ids):
    return 1.0
''',
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
        "the model scored on its own training text, not on the ids it is given": '''
from lmcourse import data
from lmcourse.ngram import NGramLM

train = data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "train"))
lm = NGramLM(5).fit(train)

def my_model_log_probs(ids):
    return lm.log_probs(train[:len(ids)])[1:]
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
        "normalised only at the last character, ln p = 0 everywhere before it": '''
import numpy as np
from lmcourse import data
from lmcourse.ngram import NGramLM

lm = NGramLM(5).fit(data.corpus_tokenizer("wiki").encode(data.load_corpus("wiki", "train")))

def my_model_log_probs(ids):
    out = np.zeros(len(ids) - 1)
    out[-1] = lm.log_probs(ids)[-1]   # a proper ln p for the last character only
    return out
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
