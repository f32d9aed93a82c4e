"""Attention maps: one head as a heatmap, a whole model as a layer x head grid, and per-head diagnostics.

Everything here takes attention weights in any of the shapes the course meets and turns them into
one array of shape (layers, heads, queries, keys) with `attention_array`:

- our `MultiHeadAttention(..., need_weights=True)` weights (B, H, Tq, Tk), or one head (Tq, Tk), or (H, Tq, Tk);
- a list of those, one per layer;
- the `attentions` tuple of a Hugging Face model (`output_attentions=True`): one (B, H, Tq, Tk) per layer.
  It is None (or holds None) when the model runs a fused kernel: load the model with
  `attn_implementation="eager"`; we say so in the error.
- a Hugging Face model's output itself (anything with an `attentions` attribute);
- a dict from `lmcourse.attention.attention_stages` (raw scores, masked, softmax), with `stage=`.

Course models return None without `need_weights=True`; `lmcourse.viz.capture_attention(model, ids)` gets
the weights of any model built on `MultiHeadAttention` (a GPT too). The error says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["attention_array", "attention_with_labels", "clean_token", "head_summary", "head_summary_table",
           "is_causal", "plot_attention", "plot_head_summary"]

EAGER_HINT = ("attention weights are None: the model computed attention with a fused kernel that does not "
              "return them. Load it with attn_implementation=\"eager\" (e.g. AutoModel.from_pretrained(name, "
              "attn_implementation=\"eager\")) and call it with output_attentions=True. A course model returns "
              "weights with need_weights=True, or use lmcourse.viz.capture_attention(model, ids)")
STAGES = ("scores", "masked", "weights")


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def attention_array(weights, batch_index: int = 0, stage: str = "weights") -> np.ndarray:
    """Attention weights in any course shape -> float array (layers, heads, Tq, Tk) for one batch element.

    (Tq, Tk) -> 1 layer, 1 head; (H, Tq, Tk) -> 1 layer; (B, H, Tq, Tk) -> 1 layer, batch element
    `batch_index`; a list/tuple of (B, H, Tq, Tk) (one per layer, as Hugging Face's `attentions`) ->
    L layers; a Hugging Face output -> its `attentions`; a dict of stages -> its `stage` entry. Masked
    entries (-inf or the dtype's most negative number, in the "masked" stage) become NaN, drawn grey.
    """
    if hasattr(weights, "cross_attentions") and not hasattr(weights, "attentions"):
        raise ValueError("this is an encoder-decoder output with three kinds of attention: pass one of its "
                         "encoder_attentions, decoder_attentions, cross_attentions, or the whole output to head_view "
                         "or model_view (with encoder_tokens= and decoder_tokens=), which show all three")
    if hasattr(weights, "attentions") and not isinstance(weights, (torch.Tensor, np.ndarray)):
        weights = weights.attentions  # a transformers ModelOutput: None unless output_attentions=True
    if weights is None or (isinstance(weights, (list, tuple)) and (len(weights) == 0 or any(w is None for w in weights))):
        raise ValueError(EAGER_HINT)  # transformers gives None or () when its fused (sdpa/flash) kernel ran
    if isinstance(weights, Mapping):
        if stage not in weights:
            raise ValueError(f"stage={stage!r} is not in the stages given; choose one of {sorted(weights)}")
        weights = weights[stage]
    elif stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    if isinstance(weights, (list, tuple)):
        if len(weights) == 0:
            raise ValueError("weights is an empty sequence; give one (B, H, Tq, Tk) tensor per layer")
        layers = [attention_array(w, batch_index)[0] for w in weights]  # each (H, Tq, Tk)
        if len({a.shape for a in layers}) != 1:
            raise ValueError(f"layers have different shapes {[a.shape for a in layers]}; give one (B, H, Tq, Tk) per layer")
        arr = np.stack(layers)
    else:
        arr = _to_numpy(weights)
        if arr.ndim == 2:
            arr = arr[None, None]
        elif arr.ndim == 3:
            arr = arr[None]
        elif arr.ndim == 4:
            if not -arr.shape[0] <= batch_index < arr.shape[0]:
                raise ValueError(f"batch_index={batch_index} is out of range for a batch of {arr.shape[0]}")
            arr = arr[batch_index][None]
        elif arr.ndim == 5:  # (L, B, H, Tq, Tk), e.g. torch.stack(attentions)
            arr = arr[:, batch_index]
        else:
            raise ValueError(f"weights must have 2 to 5 dimensions ((Tq, Tk) ... (L, B, H, Tq, Tk)), got shape {arr.shape}")
    arr = arr.astype(np.float64)
    arr[arr <= np.finfo(np.float16).min] = np.nan  # masked positions (fp16/fp32 min or -inf): shown grey
    return arr


def clean_token(token: str) -> str:
    """A token as a readable axis label: GPT-2's "Ġ" and SentencePiece's "▁" (word start) dropped,
    WordPiece's "##ing" -> "-ing", "Ċ"/newline -> "\\n", a lone space -> "␣", empty -> "∅"."""
    token = str(token)
    if token == " ":
        return "␣"
    token = token.replace("Ċ", "\\n").replace("\n", "\\n").replace("\t", "\\t")
    if token.startswith(("Ġ", "▁")) and len(token) > 1:
        token = token[1:]
    elif token in ("Ġ", "▁"):
        token = "␣"
    if token.startswith("##") and len(token) > 2:
        token = "-" + token[2:]
    if token.endswith("</w>") and len(token) > 4:
        token = token[:-4]
    return token or "∅"


def is_causal(arr: np.ndarray) -> bool:
    """arr (..., Tq, Tk): True when the maps are square with (numerically) zero or NaN weight above the diagonal."""
    if arr.shape[-1] != arr.shape[-2] or arr.shape[-1] < 2:
        return False
    upper = np.triu(np.ones(arr.shape[-2:], dtype=bool), 1)
    vals = arr[..., upper]
    return bool(np.all(np.isnan(vals) | (np.abs(vals) < 1e-9)))


def _labels(tokens, n: int, name: str) -> list[str]:
    if tokens is None:
        return [str(i) for i in range(n)]
    tokens = [clean_token(t) for t in tokens]
    if len(tokens) != n:
        raise ValueError(f"{name} has {len(tokens)} tokens but the attention map has {n} along that axis")
    return tokens


def attention_with_labels(attention, tokens: Sequence[str] | None = None, key_tokens: Sequence[str] | None = None,
                          batch_index: int = 0) -> tuple[np.ndarray, list[str], list[str]]:
    """Weights in any `attention_array` shape and their tokens -> (array (L, H, Tq, Tk), query labels, key labels).

    Labels are the cleaned tokens (positions when tokens is None); keys take the query tokens unless `key_tokens`
    is given (cross-attention).
    """
    arr = attention_array(attention, batch_index)  # (L, H, Tq, Tk)
    Tq, Tk = arr.shape[-2:]
    if Tq == 0 or Tk == 0:
        raise ValueError(f"attention has {Tq} queries and {Tk} keys (shape {arr.shape}): a view needs at least one "
                         "token; check that the text or the ids given to the model are not empty")
    if tokens is not None and key_tokens is None and Tq != Tk:
        raise ValueError(f"queries ({Tq}) and keys ({Tk}) differ in number: give key_tokens for cross-attention")
    q_labels = _labels(tokens, Tq, "tokens")
    k_labels = _labels(key_tokens if key_tokens is not None else tokens, Tk, "key_tokens")
    return arr, q_labels, k_labels


def plot_attention(weights, tokens: Sequence[str] | None = None, *, key_tokens: Sequence[str] | None = None,
                   layers: Sequence[int] | int | None = None, heads: Sequence[int] | int | None = None,
                   batch_index: int = 0, stage: str = "weights", causal: bool | None = None,
                   annotate: bool | None = None, title: str | None = None, cmap: str = "viridis",
                   cell_size: float | None = None, path: str | Path | None = None) -> plt.Figure:
    """Attention maps as heatmaps: rows are queries, columns keys. Returns the matplotlib Figure.

    weights: any shape `attention_array` takes. tokens: the query tokens (and the keys, unless
    `key_tokens` is given: cross-attention, e.g. a decoder reading an encoder). layers/heads: which to
    draw (default all): one map -> one heatmap; several -> a layer x head grid with one shared colour
    scale. causal: grey out the upper triangle (default: detected from the zeros). stage: "scores",
    "masked" or "weights" for a dict from `attention_stages`. annotate: write the values in the cells
    (default for maps up to 12 x 12). path: also save the figure there (png, pdf, svg).
    """
    arr = attention_array(weights, batch_index, stage)  # (L, H, Tq, Tk)
    L, H, Tq, Tk = arr.shape

    def pick(sel, n, name):
        idx = list(range(n)) if sel is None else ([sel] if isinstance(sel, (int, np.integer)) else list(sel))
        bad = [i for i in idx if not -n <= i < n]
        if bad or not idx:
            raise ValueError(f"{name}={sel!r} out of range: there are {n} {name} (0..{n - 1})")
        return [i % n for i in idx]

    layer_idx, head_idx = pick(layers, L, "layers"), pick(heads, H, "heads")
    q_labels = _labels(tokens, Tq, "tokens")
    k_labels = _labels(key_tokens if key_tokens is not None else (tokens if Tq == Tk else None), Tk, "key_tokens")
    if tokens is not None and key_tokens is None and Tq != Tk:
        raise ValueError(f"queries ({Tq}) and keys ({Tk}) differ in number: give key_tokens for cross-attention")
    sub = arr[np.ix_(layer_idx, head_idx)]  # (l, h, Tq, Tk)
    causal = is_causal(sub) if causal is None else causal
    if causal:
        if Tq != Tk:
            raise ValueError(f"causal=True needs a square map, got {Tq} queries and {Tk} keys")
        sub = sub.copy()
        sub[..., np.triu(np.ones((Tq, Tk), dtype=bool), 1)] = np.nan
    finite = sub[np.isfinite(sub)]
    if stage == "weights":
        vmin, vmax = 0.0, float(finite.max()) if finite.size else 1.0
    else:
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    annotate = (Tq <= 12 and Tk <= 12 and len(layer_idx) * len(head_idx) <= 4) if annotate is None else annotate

    nr, nc = len(layer_idx), len(head_idx)
    size = cell_size or max(0.18, min(0.45, 6.0 / max(Tq, Tk, 1)))
    panel_w, panel_h = max(2.2, Tk * size + 0.9), max(2.0, Tq * size + 0.7)
    fig, axes = plt.subplots(nr, nc, figsize=(min(18, panel_w * nc + 1.2), min(18, panel_h * nr + 0.8)),
                             squeeze=False, constrained_layout=True)
    colormap = plt.get_cmap(cmap).with_extremes(bad="#d9d9d9")  # grey: masked / causal triangle
    image = None
    show_ticks = max(Tq, Tk) <= 40
    for r, layer in enumerate(layer_idx):
        for c, head in enumerate(head_idx):
            ax = axes[r, c]
            m = np.ma.masked_invalid(sub[r, c])
            image = ax.imshow(m, cmap=colormap, vmin=vmin, vmax=vmax, aspect="equal" if Tq == Tk else "auto", interpolation="nearest")
            if L > 1 or H > 1:
                ax.set_title(f"layer {layer}, head {head}", fontsize=9)
            if show_ticks and (nc == 1 or c == 0):
                ax.set_yticks(range(Tq), q_labels, fontsize=8)
            else:
                ax.set_yticks([] if not show_ticks else range(Tq), [] if not show_ticks else [""] * Tq)
            if show_ticks and (nr == 1 or r == nr - 1):
                ax.set_xticks(range(Tk), k_labels, rotation=90, fontsize=8)
            else:
                ax.set_xticks([] if not show_ticks else range(Tk), [] if not show_ticks else [""] * Tk)
            if c == 0:
                ax.set_ylabel("query")
            if r == nr - 1:
                ax.set_xlabel("key")
            if annotate:
                for i in range(Tq):
                    for j in range(Tk):
                        val = sub[r, c, i, j]
                        if np.isfinite(val):
                            light = (val - vmin) / (vmax - vmin + 1e-12) < 0.6
                            ax.text(j, i, f"{val:.2f}", ha="center", va="center", fontsize=7,
                                    color="white" if light else "black")
    label = {"scores": "score q·k/√d", "masked": "masked score", "weights": "attention weight"}.get(stage, stage)
    fig.colorbar(image, ax=axes, shrink=0.8, label=label)
    if title is None:
        title = "Attention" + (" (causal: grey = future, not allowed)" if causal else "")
    fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def head_summary(weights, batch_index: int = 0) -> list[dict]:
    """Per-head diagnostics, one row per (layer, head), averaged over queries:

    entropy (nats) of the weights and entropy_ratio to the uniform spread over the allowed keys
    (0 = one key, 1 = uniform); prev_token = mean weight on key i-1; self = weight on key i;
    first_token = weight on key 0 (an "attention sink"); max_weight = mean of each query's largest weight.
    Position-based scores (prev_token, self) assume queries and keys share positions; for
    cross-attention they are NaN.
    """
    arr = np.nan_to_num(attention_array(weights, batch_index), nan=0.0)  # (L, H, Tq, Tk)
    L, H, Tq, Tk = arr.shape
    p = np.clip(arr, 0, None)
    ent = -(p * np.log(np.where(p > 0, p, 1.0))).sum(-1)  # (L, H, Tq)
    allowed = np.maximum((p > 0).sum(-1), 1) if is_causal(arr) else np.full((L, H, Tq), Tk)
    max_ent = np.log(np.maximum(allowed, 1))
    ratio = np.where(max_ent > 0, ent / np.where(max_ent > 0, max_ent, 1), np.nan)
    square = Tq == Tk
    rows = []
    for layer in range(L):
        for head in range(H):
            a = p[layer, head]
            rows.append({
                "layer": layer, "head": head,
                "entropy": float(ent[layer, head].mean()),
                "entropy_ratio": float(np.nanmean(ratio[layer, head])) if np.isfinite(ratio[layer, head]).any() else float("nan"),
                "prev_token": float(np.mean([a[i, i - 1] for i in range(1, Tq)])) if square and Tq > 1 else float("nan"),
                "self": float(np.mean(np.diag(a))) if square else float("nan"),
                "first_token": float(a[:, 0].mean()),
                "max_weight": float(a.max(-1).mean()),
            })
    return rows


def head_summary_table(rows: list[dict], digits: int = 3) -> str:
    """The rows of `head_summary` as a Markdown table (display with IPython.display.Markdown)."""
    if not rows:
        raise ValueError("rows is empty; pass the output of head_summary(weights)")
    cols = list(rows[0])
    fmt = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def plot_head_summary(rows: list[dict], metrics: Sequence[str] = ("entropy_ratio", "prev_token", "self", "first_token"),
                      title: str | None = None) -> plt.Figure:
    """One layer x head heatmap per diagnostic of `head_summary`: which heads look back one token, which sink on token 0."""
    if not rows:
        raise ValueError("rows is empty; pass the output of head_summary(weights)")
    unknown = [m for m in metrics if m not in rows[0]]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {[k for k in rows[0] if k not in ('layer', 'head')]}")
    L = max(r["layer"] for r in rows) + 1
    H = max(r["head"] for r in rows) + 1
    fig, axes = plt.subplots(1, len(metrics), figsize=(min(18, 0.5 * H * len(metrics) + 2.5 * len(metrics)),
                                                       max(2.2, 0.45 * L + 1.2)), squeeze=False,
                             constrained_layout=True)
    for ax, metric in zip(axes[0], metrics):
        grid = np.full((L, H), np.nan)
        for r in rows:
            grid[r["layer"], r["head"]] = r[metric]
        im = ax.imshow(np.ma.masked_invalid(grid), cmap="magma", vmin=0, vmax=1 if metric != "entropy" else None,
                       aspect="auto")
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(H))
        ax.set_yticks(range(L))
        if L * H <= 48:
            for (i, j), v in np.ndenumerate(grid):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if v < 0.6 * np.nanmax(grid) else "black")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(title or "Per-head diagnostics (mean over queries)")
    return fig
