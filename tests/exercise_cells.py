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
        return [
            {"cell_type": "markdown", "source": self.task.strip(), "metadata": {"tags": ["exercise"]}},
            {"cell_type": "code", "source": self.stub.strip(), "metadata": {"tags": ["exercise"]}},
            {"cell_type": "code", "source": self.check, "metadata": {"tags": ["exercise"]}},
            {"cell_type": "code", "source": "from lmcourse.exercises import check\n\n" + self.solution_cell.strip(),
             "metadata": {"tags": ["solution"], "jupyter": {"source_hidden": True}}},
        ]


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
broadcast over heads, and float16.
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
    }))

add(Cells(
    id="04.scaled_dot_product_attention", name="attention",
    task="""
### Exercise 2 · Scaled dot-product attention

Write `attention(q, k, v, mask=None)` returning `(out, weights)`: softmax(q kᵀ / √d) v, with `d` the size of
one query vector (the head dimension), the mask applied as in Exercise 1 (True = may attend, broadcast over
the leading dimensions). Shapes: q (..., Tq, d), k (..., Tk, d), v (..., Tk, d_v) → out (..., Tq, d_v),
weights (..., Tq, Tk). The checker tries self- and cross-attention, d_v ≠ d, 4-D (batch, heads, T, head_dim)
inputs, and causal and padding masks.
""",
    stub='''
import torch


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None):
    """softmax(q k^T / sqrt(d)) v. q (..., Tq, d), k (..., Tk, d), v (..., Tk, d_v), mask bool (True = may attend).

    Returns (out (..., Tq, d_v), weights (..., Tq, Tk)).
    """
    raise NotImplementedError  # your code
''',
    solution='''
import math

import torch


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None):
    """softmax(q k^T / sqrt(d)) v. q (..., Tq, d), k (..., Tk, d), v (..., Tk, d_v), mask bool (True = may attend)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    if mask is None:
        weights = scores.softmax(dim=-1)
    else:
        weights = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1) * mask
    return weights @ v, weights
''',
    wrong={
        "no scaling": '''
def attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    weights = scores.softmax(-1)
    return weights @ v, weights
''',
        "scaled by d instead of sqrt(d)": '''
def attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / q.shape[-1]
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    weights = scores.softmax(-1)
    return weights @ v, weights
''',
        "softmax over the queries": '''
import math

def attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    weights = scores.softmax(-2)
    return weights @ v, weights
''',
    }))

add(Cells(
    id="04.multi_head_attention", name="MyMultiHeadAttention",
    task="""
### Exercise 3 · Multi-head attention from its parts

Complete `MyMultiHeadAttention.forward`. The four projections are given (each `nn.Linear(d_model, d_model)`,
the parameter names of `lmcourse.attention.MultiHeadAttention`, whose weights the checker copies into yours).
Project query, key and value; split each into `n_heads` heads of `head_dim = d_model // n_heads`
((B, T, d_model) → (B, n_heads, T, head_dim)); attend within each head (your `attention` from Exercise 2 is
welcome); put the heads side by side again and apply `out_proj`. This is where the copied tutorial code went
wrong: it declared the projections and never applied them, and scaled by √d_model instead of √head_dim.
The checker compares your module with the package's on self-attention, cross-attention and masks.
""",
    stub='''
import torch
from torch import nn


class MyMultiHeadAttention(nn.Module):
    """Multi-head attention: forward(query (B, Tq, d_model), key (B, Tk, d_model), value (B, Tk, d_model),
    mask=None (bool, broadcastable to (B, n_heads, Tq, Tk), True = may attend)) -> (B, Tq, d_model)."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.q_proj, self.k_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.v_proj, self.out_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        raise NotImplementedError  # your code
''',
    solution='''
import math

import torch
from torch import nn


class MyMultiHeadAttention(nn.Module):
    """Multi-head attention: forward(query (B, Tq, d_model), key (B, Tk, d_model), value (B, Tk, d_model),
    mask=None (bool, broadcastable to (B, n_heads, Tq, Tk), True = may attend)) -> (B, Tq, d_model)."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.q_proj, self.k_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.v_proj, self.out_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)

    def split(self, x):  # (B, T, d_model) -> (B, n_heads, T, head_dim)
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, query, key, value, mask=None):
        q, k, v = self.split(self.q_proj(query)), self.split(self.k_proj(key)), self.split(self.v_proj(value))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, n_heads, Tq, Tk)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        y = scores.softmax(dim=-1) @ v                                 # (B, n_heads, Tq, head_dim)
        B, _, Tq, _ = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(B, Tq, -1))     # heads side by side, (B, Tq, d_model)
''',
    wrong={
        "scaled by sqrt(d_model) instead of sqrt(head_dim)": '''
import math
from torch import nn

class MyMultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.q_proj, self.k_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.v_proj, self.out_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)

    def split(self, x):
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, query, key, value, mask=None):
        q, k, v = self.split(self.q_proj(query)), self.split(self.k_proj(key)), self.split(self.v_proj(value))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.n_heads * self.head_dim)
        if mask is not None:
            scores = scores.masked_fill(~mask, -1e9)
        y = scores.softmax(-1) @ v
        B, _, Tq, _ = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(B, Tq, -1))
''',
        "heads split with a direct view (B, n_heads, T, head_dim), no transpose": '''
import math
from torch import nn

class MyMultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.q_proj, self.k_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.v_proj, self.out_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)

    def split(self, x):
        B, T, _ = x.shape
        return x.reshape(B, self.n_heads, T, self.head_dim)

    def forward(self, query, key, value, mask=None):
        q, k, v = self.split(self.q_proj(query)), self.split(self.k_proj(key)), self.split(self.v_proj(value))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores.masked_fill(~mask, -1e9)
        y = scores.softmax(-1) @ v
        B, _, Tq, _ = y.shape
        return self.out_proj(y.reshape(B, Tq, -1))
''',
        "projections declared but never applied": '''
import math
from torch import nn

class MyMultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.q_proj, self.k_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.v_proj, self.out_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)

    def split(self, x):
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, query, key, value, mask=None):
        q, k, v = self.split(query), self.split(key), self.split(value)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores.masked_fill(~mask, -1e9)
        y = scores.softmax(-1) @ v
        B, _, Tq, _ = y.shape
        return y.transpose(1, 2).reshape(B, Tq, -1)
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
`lmcourse.rnn.GRUCell`, which equals torch's, including with saturated gates and in float64.
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
    }))

add(Cells(
    id="03.lstm_step", name="lstm_step",
    task="""
### Exercise 2 · An LSTM step

Write `lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh)` returning `(h_new, c_new)`: one step of torch's LSTM cell,
`x` (B, I), `h` and `c` (B, H), weights `W_ih` (4H, I), `W_hh` (4H, H), biases (4H,), gate blocks in the
order i, f, g, o. The checker compares with `lmcourse.rnn.LSTMCell` (equal to torch's), including with
saturated gates.
""",
    stub='''
import torch


def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step: x (B, I), h, c (B, H), W_ih (4H, I), W_hh (4H, H), biases (4H,) -> (h_new, c_new) (B, H) each."""
    raise NotImplementedError  # your code
''',
    solution='''
import torch


def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step: x (B, I), h, c (B, H), W_ih (4H, I), W_hh (4H, H), biases (4H,) -> (h_new, c_new) (B, H) each."""
    i, f, g, o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)   # forget some memory, write some
    h_new = torch.sigmoid(o) * torch.tanh(c_new)                      # expose a gated view of it
    return h_new, c_new
''',
    wrong={
        "gates taken in the order i, f, o, g": '''
import torch

def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh):
    i, f, o, g = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new
''',
        "no tanh on the new cell state": '''
import torch

def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh):
    i, f, g, o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * c_new, c_new
''',
        "forgets b_hh": '''
import torch

def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh):
    i, f, g, o = (x @ W_ih.T + b_ih + h @ W_hh.T).chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new
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
all-zero gradients must not turn into NaN.
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
compares the final state and the accumulated gradients with the package's loop for several T and k.
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
