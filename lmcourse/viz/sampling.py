"""The sampling explorer: what temperature, top-k and top-p do to the next-token distribution.

The logic is in plain functions (`filtered_distribution`, `distribution_table`, `plot_next_token_distribution`);
`explore_sampling` only wires them to core ipywidgets sliders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import torch

from lmcourse.checks import check_int, check_number
from lmcourse.generate import generate, top_k_filter, top_p_filter
from lmcourse.viz.style import model_color


def filtered_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                          top_p: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The next-token distribution before and after the filters of sampling.

    logits: (vocab,). Returns (probs after temperature (vocab,), probs after top-k and top-p, renormalised
    (vocab,), kept (vocab,) bool): the same filters, in the same order, as `lmcourse.generate`.
    """
    if logits.ndim != 1:
        raise ValueError(f"logits must be one distribution of shape (vocab,), got {tuple(logits.shape)}")
    check_number("temperature", temperature, 0, low_open=True)
    if top_k is not None:
        check_int("top_k", top_k, fix="or None for no top-k filter")
    if top_p is not None:
        check_number("top_p", top_p, 0, 1, low_open=True)
    scores = logits.detach().float()[None] / temperature  # (1, vocab)
    before = scores.softmax(dim=-1)[0]
    if top_k is not None:
        scores = top_k_filter(scores, top_k)
    if top_p is not None and top_p < 1:
        scores = top_p_filter(scores, top_p)
    after = scores.softmax(dim=-1)[0]
    return before, after, torch.isfinite(scores[0])


def distribution_table(logits: torch.Tensor, labels: Sequence[str], temperature: float = 1.0,
                       top_k: int | None = None, top_p: float | None = None, n_show: int = 15) -> list[dict]:
    """The `n_show` most likely tokens as rows: token, p (after temperature), p after filtering, kept."""
    if len(labels) != logits.shape[-1]:
        raise ValueError(f"labels has {len(labels)} entries but logits has {logits.shape[-1]} tokens; give one label "
                         "per vocabulary entry")
    before, after, kept = filtered_distribution(logits, temperature, top_k, top_p)
    order = torch.argsort(before, descending=True)[:n_show]
    return [{"token": labels[i], "p": round(float(before[i]), 4), "p_filtered": round(float(after[i]), 4),
             "kept": bool(kept[i])} for i in order.tolist()]


def plot_next_token_distribution(logits: torch.Tensor, labels: Sequence[str], temperature: float = 1.0,
                                 top_k: int | None = None, top_p: float | None = None, n_show: int = 20,
                                 title: str | None = None) -> plt.Figure:
    """Bars of the `n_show` most likely next tokens: kept tokens in the GPT colour, cut-off ones grey."""
    rows = distribution_table(logits, labels, temperature, top_k, top_p, n_show)
    _, _, kept = filtered_distribution(logits, temperature, top_k, top_p)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    x = range(len(rows))
    colors = [model_color("gpt") if r["kept"] else "#bbbbbb" for r in rows]
    ax.bar(x, [r["p"] for r in rows], color=colors, label="p after temperature (grey: cut off)")
    ax.plot(x, [r["p_filtered"] for r in rows], "k_", markersize=14, label="p sampled from (renormalised)")
    ax.set_xticks(list(x), [repr(r["token"])[1:-1] or "␣" for r in rows], rotation=60, fontsize=8)
    ax.set_ylabel("probability")
    ax.set_xlabel("next token (most likely first)")
    ax.set_title(title or f"T={temperature:g}, top_k={top_k}, top_p={top_p}: {int(kept.sum())} tokens can be drawn")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def explore_sampling(model: torch.nn.Module, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str],
                     prompt: str = "The history of ", labels: Sequence[str] | None = None,
                     max_new_tokens: int = 60, seed: int = 0):
    """An ipywidgets UI: a prompt box, temperature / top-k / top-p sliders, the next-token bars and a continuation.

    labels: the text of every token id (default: decode([i]) for each id).
    """
    import ipywidgets as widgets  # core widgets only: no CDN JavaScript
    from IPython.display import display

    device = next(model.parameters()).device
    vocab = model.config.vocab_size
    labels = list(labels) if labels is not None else [decode([i]) for i in range(vocab)]
    prompt_box = widgets.Text(value=prompt, description="prompt")
    temperature = widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=0.7, step=0.05, description="temperature")
    top_k = widgets.IntSlider(value=0, min=0, max=min(vocab, 100), description="top_k (0=off)")
    top_p = widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top_p")
    out = widgets.Output()
    shown = []  # the continuations drawn so far; the first one becomes the static caption

    def redraw(_=None) -> None:
        ids = torch.tensor([encode(prompt_box.value) or [0]], device=device)
        with torch.no_grad():
            logits = model(ids[:, -model.config.block_size:])[0][0, -1]
        k, p = (top_k.value or None), (top_p.value if top_p.value < 1 else None)
        continuation = generate(model, ids, max_new_tokens, do_sample=True, temperature=temperature.value, top_k=k,
                                top_p=p, seed=seed, crop_context=True)[0, ids.size(1):]
        out.clear_output(wait=True)
        with out:
            fig = plot_next_token_distribution(logits.cpu(), labels, temperature.value, k, p)
            display(fig)
            plt.close(fig)  # shown once, in the widget, not again below the cell
            shown.append(f"{prompt_box.value}|{decode(continuation.tolist())}")
            print(f"continuation (seed {seed}): {shown[-1]}")

    for w in (prompt_box, temperature, top_k, top_p):
        w.observe(redraw, names="value")
    redraw()
    ui = widgets.VBox([prompt_box, widgets.HBox([temperature, top_k, top_p]), out])
    live_bundle = ui._repr_mimebundle_
    # Static views (GitHub, nbconvert) show text/plain: say what the widget is, not `VBox(children=(...`.
    ui._repr_mimebundle_ = lambda **kwargs: {**live_bundle(**kwargs), "text/plain":
                                             f"sampling explorer (live in Jupyter); first continuation: {shown[0]!r}"}
    return ui
