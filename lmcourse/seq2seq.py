"""Encoder-decoder (seq2seq) with recurrent layers, without attention and with Bahdanau or Luong attention.

Read top to bottom: the encoder (`Seq2SeqEncoder`, a bidirectional GRU over the padded source), the two attention
scorers, the decoder step for each variant, `Seq2Seq` (teacher-forced training forward and greedy
decoding), then the evaluation helpers (loss, exact match by input length).

Shapes: src (B, S) padded with 0, src_lengths (B,), tgt_in / tgt_out (B, T); encoder states (B, S, 2H);
cross-attention weights (B, T, S): for every output step, a distribution over input positions.

- none: the decoder starts from the encoder's final state and never sees the input again
  (Sutskever et al. 2014): everything must squeeze through one H-sized vector.
- "bahdanau" (additive, Bahdanau et al. 2015): score(s_{t-1}, h_j) = v . tanh(W s_{t-1} + U h_j), the
  context c_t feeds the GRU step together with the previous output token.
- "luong" (multiplicative "general", Luong et al. 2015): score(s_t, h_j) = s_t . W h_j after the GRU
  step; the attentional state tanh(W_c [c_t; s_t]) predicts the token and feeds the next step.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lmcourse.checks import check_int, check_positive_ints, check_targets, check_token_ids, describe
from lmcourse.tasks import BOS, EOS, PAD

ATTENTIONS = (None, "bahdanau", "luong")


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax over the last axis where mask is True (finite fill: safe in half precision)."""
    return torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), dim=-1)


def _check_attention_inputs(query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, query_dim: int,
                            key_dim: int) -> None:
    """query (B, query_dim), keys (B, S, key_dim), mask (B, S); shapes only, so a decoder step pays no sync."""
    if keys.ndim != 3 or keys.shape[-1] != key_dim or query.shape != (keys.shape[0], query_dim):
        raise ValueError(f"query must be (B, query_dim={query_dim}) and keys (B, S, key_dim={key_dim}), got query "
                         f"{tuple(query.shape)} and keys {tuple(keys.shape)}")
    if mask.shape != keys.shape[:2]:
        raise ValueError(f"mask must be (B, S) = {tuple(keys.shape[:2])} like keys, True at real positions, got "
                         f"{tuple(mask.shape)}")


class BahdanauAttention(nn.Module):
    """Additive attention: score_j = v . tanh(W_q q + W_k h_j). q (B, Dq), keys (B, S, Dk) -> (context (B, Dk), weights (B, S))."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        check_positive_ints(query_dim=query_dim, key_dim=key_dim, attn_dim=attn_dim)
        self.w_q = nn.Linear(query_dim, attn_dim, bias=False)
        self.w_k = nn.Linear(key_dim, attn_dim, bias=True)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                projected_keys: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        _check_attention_inputs(query, keys, mask, self.w_q.in_features, self.w_k.in_features)
        pk = self.w_k(keys) if projected_keys is None else projected_keys  # (B, S, A): once per sequence
        scores = self.v(torch.tanh(pk + self.w_q(query)[:, None])).squeeze(-1)  # (B, S)
        weights = _masked_softmax(scores, mask)
        return (weights[:, :, None] * keys).sum(1), weights  # (B, Dk), (B, S)


class LuongAttention(nn.Module):
    """Multiplicative ("general") attention: score_j = q . W h_j. q (B, Dq), keys (B, S, Dk) -> (context, weights)."""

    def __init__(self, query_dim: int, key_dim: int):
        super().__init__()
        check_positive_ints(query_dim=query_dim, key_dim=key_dim)
        self.w = nn.Linear(key_dim, query_dim, bias=False)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                projected_keys: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        _check_attention_inputs(query, keys, mask, self.w.out_features, self.w.in_features)
        pk = self.w(keys) if projected_keys is None else projected_keys  # (B, S, Dq)
        scores = (pk @ query[:, :, None]).squeeze(-1)  # (B, S)
        weights = _masked_softmax(scores, mask)
        return (weights[:, :, None] * keys).sum(1), weights


class Seq2SeqEncoder(nn.Module):
    """Embedding + bidirectional GRU. Returns states (B, S, 2H) (zero at padding) and the decoder's initial state (B, H).

    (Not `lmcourse.transformer.Encoder`, the Transformer's encoder.) The GRU is torch's fused one; its
    hand-written twin `lmcourse.rnn.GRU(..., bidirectional=True)` takes the same packed batch and weights.
    """

    def __init__(self, vocab_size: int, emb_dim: int, hidden: int):
        super().__init__()
        check_positive_ints(vocab_size=vocab_size, emb_dim=emb_dim, hidden=hidden)
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD)
        self.rnn = nn.GRU(emb_dim, hidden, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden, hidden)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        packed = pack_padded_sequence(self.embed(src), src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)  # h_n (2, B, H): last forward state, first backward state
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, 2H)
        return states, torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=-1)))  # (B, 2H) -> (B, H)


class Seq2Seq(nn.Module):
    """A GRU encoder-decoder; attention=None, "bahdanau" or "luong".

    query_state: which decoder state scores the inputs, "previous" (s_{t-1}, before the step reads the last
    token: Bahdanau's) or "current" (s_t, after it: Luong's). By default each variant's own; only Luong's
    decoder takes either (Bahdanau's feeds the context into the step that makes s_t), so that the timing can
    be changed alone, with the score function, output layer and input feeding kept.

    forward(src, src_lengths, tgt_in) -> (logits (B, T, V), weights (B, T, S) or None): teacher forcing,
    the decoder reads the true previous token. greedy_decode(src, src_lengths, max_len) -> (ids (B, max_len),
    weights): the decoder reads its own previous prediction.
    """

    def __init__(self, vocab_size: int, emb_dim: int = 32, hidden: int = 64, attention: str | None = None,
                 query_state: str | None = None):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        own = {None: None, "bahdanau": "previous", "luong": "current"}[attention]
        allowed = ("previous", "current") if attention == "luong" else (own,)
        if query_state is not None and query_state not in allowed:
            raise ValueError(f"query_state={query_state!r} is not possible with attention={attention!r}; "
                             f"choose from {allowed} (only Luong's decoder can score with either state)")
        self.query_state = query_state or own
        check_int("vocab_size", vocab_size, minimum=4, fix="the 3 special tokens and at least one symbol")
        self.attention_kind, self.hidden = attention, hidden
        self.encoder = Seq2SeqEncoder(vocab_size, emb_dim, hidden)
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD)
        enc_dim = 2 * hidden
        if attention is None:
            self.cell = nn.GRUCell(emb_dim, hidden)
            self.out = nn.Linear(hidden, vocab_size)
        elif attention == "bahdanau":
            self.attn = BahdanauAttention(hidden, enc_dim, hidden)
            self.cell = nn.GRUCell(emb_dim + enc_dim, hidden)
            self.out = nn.Linear(hidden + enc_dim, vocab_size)
        else:
            self.attn = LuongAttention(hidden, enc_dim)
            self.cell = nn.GRUCell(emb_dim + hidden, hidden)  # input feeding: the previous attentional state
            self.combine = nn.Linear(enc_dim + hidden, hidden)
            self.out = nn.Linear(hidden, vocab_size)

    def _check(self, src: torch.Tensor, src_lengths: torch.Tensor) -> None:
        """Shapes and lengths (cheap: the lengths are read on the CPU, where packing needs them anyway)."""
        if not isinstance(src, torch.Tensor) or not isinstance(src_lengths, torch.Tensor):
            raise ValueError(f"src and src_lengths must be tensors, got {describe(src)} and {describe(src_lengths)}; "
                             "build them with task.batch(pairs)")
        if src.ndim != 2 or src_lengths.shape != src.shape[:1]:
            raise ValueError(f"src must be (B, S) and src_lengths (B,), got {tuple(src.shape)} and {tuple(src_lengths.shape)}")
        if src_lengths.is_floating_point() or src_lengths.dtype == torch.bool:
            raise ValueError(f"src_lengths must hold integer lengths, got dtype {src_lengths.dtype}; build the batch "
                             "with task.batch(pairs)")
        if src.numel() == 0:
            raise ValueError(f"src is empty, shape {tuple(src.shape)}; pass at least one source of one token")
        lengths = src_lengths.cpu()
        if int(lengths.min()) < 1 or int(lengths.max()) > src.shape[1]:
            raise ValueError(f"src_lengths must be in [1, S={src.shape[1]}], got {lengths.tolist()}")

    def start(self, src: torch.Tensor, src_lengths: torch.Tensor) -> dict:
        """Encode; the decoder's state before its first step."""
        self._check(src, src_lengths)
        try:
            states, s = self.encoder(src, src_lengths)
        except (IndexError, RuntimeError):  # ids outside the vocabulary or not integers: name the mistake
            check_token_ids("src", src, self.embed.num_embeddings)
            raise
        mask = torch.arange(src.shape[1], device=src.device)[None] < src_lengths.to(src.device)[:, None]  # (B, S)
        state = {"s": s, "states": states, "mask": mask}
        if self.attention_kind is not None:
            state["keys"] = (self.attn.w_k(states) if self.attention_kind == "bahdanau" else self.attn.w(states))
        if self.attention_kind == "luong":
            state["h_tilde"] = torch.zeros_like(s)
        return state

    def step(self, state: dict, y_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One decoder step: previous tokens (B,) -> (logits (B, V), attention weights (B, S) or None). Updates state."""
        e = self.embed(y_prev)  # (B, E)
        if self.attention_kind is None:
            state["s"] = self.cell(e, state["s"])
            return self.out(state["s"]), None
        if self.attention_kind == "bahdanau":
            context, w = self.attn(state["s"], state["states"], state["mask"], state["keys"])  # reads s_{t-1}
            state["s"] = self.cell(torch.cat([e, context], -1), state["s"])
            return self.out(torch.cat([state["s"], context], -1)), w
        if self.query_state == "previous":  # the ablation: score before the step, with s_{t-1}
            context, w = self.attn(state["s"], state["states"], state["mask"], state["keys"])
        state["s"] = self.cell(torch.cat([e, state["h_tilde"]], -1), state["s"])
        if self.query_state == "current":
            context, w = self.attn(state["s"], state["states"], state["mask"], state["keys"])  # reads s_t
        state["h_tilde"] = torch.tanh(self.combine(torch.cat([context, state["s"]], -1)))
        return self.out(state["h_tilde"]), w

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor,
                tgt_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        state = self.start(src, src_lengths)
        B = src.shape[0]
        if not isinstance(tgt_in, torch.Tensor) or tgt_in.ndim != 2 or tgt_in.shape[0] != B or tgt_in.shape[1] < 1:
            got = tuple(tgt_in.shape) if isinstance(tgt_in, torch.Tensor) else describe(tgt_in)
            raise ValueError(f"tgt_in must be (B={B}, T >= 1), one target prefix per source, got {got}")
        logits, weights = [], []
        try:
            for t in range(tgt_in.shape[1]):  # teacher forcing: feed the true previous token
                lo, w = self.step(state, tgt_in[:, t])
                logits.append(lo)
                weights.append(w)
        except (IndexError, RuntimeError):  # ids outside the vocabulary or not integers: name the mistake
            check_token_ids("tgt_in", tgt_in, self.embed.num_embeddings)
            raise
        return torch.stack(logits, 1), (torch.stack(weights, 1) if self.attention_kind else None)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, src_lengths: torch.Tensor,
                      max_len: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Feed back the argmax for max_len steps: ids (B, max_len) (after <eos>: <pad>), weights (B, max_len, S)."""
        check_int("max_len", max_len)
        state = self.start(src, src_lengths)
        y = torch.full((src.shape[0],), BOS, device=src.device)
        done = torch.zeros_like(y, dtype=torch.bool)
        ids, weights = [], []
        for _ in range(max_len):
            lo, w = self.step(state, y)
            y = lo.argmax(-1)
            ids.append(y.masked_fill(done, PAD))
            weights.append(w)
            done |= y == EOS
            if bool(done.all()):
                break
        out = torch.stack(ids, 1)
        out = F.pad(out, (0, max_len - out.shape[1]), value=PAD)
        ws = None
        if self.attention_kind:  # steps after everyone's <eos> were skipped: zero weights there
            ws = torch.stack(weights, 1)
            ws = F.pad(ws, (0, 0, 0, max_len - ws.shape[1]))
        return out, ws


def seq2seq_loss(model: Seq2Seq, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Mean cross-entropy (nats/token) of the teacher-forced targets, ignoring padding. For `train(loss_fn=...)`."""
    src, src_lengths, tgt_in, tgt_out = batch
    logits, _ = model(src, src_lengths, tgt_in)  # (B, T, V)
    check_targets("tgt_out", tgt_out, tgt_in.shape)
    try:
        return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD)
    except IndexError as exc:  # named only when it happens: a range check would cost a pass over the targets
        raise ValueError(f"tgt_out holds ids outside the vocabulary [0, vocab_size={logits.size(-1)}); build the "
                         f"batch with the task the model was made for ({exc})") from exc


@torch.no_grad()
def exact_match(model: Seq2Seq, task, pairs: list[tuple[str, str]], batch_size: int = 256) -> float:
    """Fraction of pairs whose greedy output equals the target exactly."""
    check_int("batch_size", batch_size)
    if not pairs:
        raise ValueError("pairs is empty; give at least one (source, target) pair, e.g. task.sample(200, seed=0)")
    bad = [p for p in pairs if not (isinstance(p, (tuple, list)) and len(p) == 2)]
    if bad:
        raise ValueError(f"pairs must hold (source, target) pairs, got {bad[0]!r}; e.g. task.sample(200, seed=0)")
    model.eval()
    device = next(model.parameters()).device
    hits = 0
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        src, lengths, _, tgt_out = task.batch(chunk)
        ids, _ = model.greedy_decode(src.to(device), lengths.to(device), tgt_out.shape[1] + 2)
        hits += sum(task.decode(row) == tgt for row, (_, tgt) in zip(ids.cpu(), chunk))
    return hits / len(pairs)


def accuracy_by_length(model: Seq2Seq, task, lengths, n_per_length: int = 200, seed: int = 1234) -> dict[int, float]:
    """Exact-match accuracy for inputs of each length (fresh samples, seeded)."""
    check_int("n_per_length", n_per_length)
    if not len(lengths):
        raise ValueError(f"lengths is empty ({lengths!r}); give the input lengths to score, e.g. range(2, 13)")
    return {int(t): exact_match(model, task, task.sample(n_per_length, seed=seed + int(t), length=int(t)))
            for t in lengths}
