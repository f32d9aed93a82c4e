"""The attention explorer: pick a layer and a head, slide over the query tokens, see what each attends to.

The logic is in plain functions (`attention_row`, `top_keys`, `highlight_html`, `hf_attend`);
`explore_attention` only wires them to core ipywidgets (Text, Dropdown, IntSlider, HTML, Output).

An `attend` function maps a text to (tokens, attention weights in any shape `attention_array` takes),
or, for cross-attention, to (query tokens, key tokens, weights).
`hf_attend(model, tokenizer)` makes one for a Hugging Face model; for a course model, write the
three lines that encode the text, run the model with need_weights and return the tokens and weights.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from lmcourse.viz.attention import attention_array, clean_token, plot_attention

__all__ = ["attention_row", "explore_attention", "hf_attend", "highlight_html", "top_keys"]

Attend = Callable[[str], tuple[Sequence[str], object]]


def attention_row(weights, layer: int, head: int, query: int) -> np.ndarray:
    """What query token `query` attends to in (layer, head): the (Tk,) weights, masked keys as 0."""
    arr = weights if isinstance(weights, np.ndarray) and weights.ndim == 4 else attention_array(weights)
    L, H, Tq, _ = arr.shape
    for name, value, n in (("layer", layer, L), ("head", head, H), ("query", query, Tq)):
        if not 0 <= value < n:
            raise ValueError(f"{name}={value} out of range: choose 0..{n - 1}")
    return np.nan_to_num(arr[layer, head, query], nan=0.0)


def top_keys(tokens: Sequence[str], row: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The k keys with the largest weight in `row`, as (cleaned token, weight), largest first."""
    if len(tokens) != len(row):
        raise ValueError(f"tokens has {len(tokens)} entries but the row has {len(row)} keys")
    order = np.argsort(-row, kind="stable")[:k]
    return [(clean_token(tokens[i]), round(float(row[i]), 4)) for i in order]


def highlight_html(tokens: Sequence[str], row: np.ndarray, query: int | None = None,
                   color: tuple[int, int, int] = (214, 39, 40)) -> str:
    """The tokens as HTML, each with a background whose opacity is its weight (relative to the row's largest);
    the query token is outlined. Tokens are HTML-escaped."""
    if len(tokens) != len(row):
        raise ValueError(f"tokens has {len(tokens)} entries but the row has {len(row)} keys")
    top = float(np.max(row)) if len(row) and np.max(row) > 0 else 1.0
    spans = []
    for i, (tok, w) in enumerate(zip(tokens, row)):
        alpha = max(0.0, float(w)) / top
        border = "border:2px solid #000;" if i == query else "border:2px solid transparent;"
        spans.append(f'<span title="{float(w):.3f}" style="background:rgba({color[0]},{color[1]},{color[2]},'
                     f'{alpha:.2f});{border}padding:1px 2px;margin:1px;font-family:monospace">'
                     f"{html.escape(clean_token(tok))}</span>")
    return "<div style=\"line-height:2em\">" + "".join(spans) + "</div>"


def hf_attend(model: torch.nn.Module, tokenizer) -> Attend:
    """An attend function for a Hugging Face model loaded with attn_implementation="eager".

    tokenizer: a Hugging Face tokenizer, or any callable text -> list of ids (then tokens are the ids as text,
    unless it has `convert_ids_to_tokens`).
    """
    def attend(text: str) -> tuple[list[str], tuple]:
        if hasattr(tokenizer, "convert_ids_to_tokens") and hasattr(tokenizer, "encode"):
            ids = tokenizer.encode(text)
            tokens = tokenizer.convert_ids_to_tokens(ids)
        else:
            ids = list(tokenizer(text))
            tokens = [str(i) for i in ids]
        if not ids:
            raise ValueError("the text encodes to no tokens; type some text")
        device = next(model.parameters()).device
        with torch.no_grad():
            out = model(torch.tensor([ids], device=device), output_attentions=True)
        return tokens, out.attentions

    return attend


def explore_attention(attend: Attend, text: str, query: int | None = None, layer: int = 0, head: int = 0,
                      show_map: bool = True):
    """An ipywidgets UI over an `attend` function: a text box (re-runs the model), layer and head menus,
    a query-token slider; shows the tokens highlighted by what the query attends to, its top keys,
    and the head's whole map. Returns the widget (display it, or make it the cell's last line)."""
    import ipywidgets as widgets  # core widgets only: no CDN JavaScript
    from IPython.display import display

    state: dict = {}
    text_box = widgets.Text(value=text, description="text", continuous_update=False)
    layer_menu = widgets.Dropdown(description="layer")
    head_menu = widgets.Dropdown(description="head")
    query_slider = widgets.IntSlider(description="query", min=0, max=0)
    highlighted = widgets.HTML()
    out = widgets.Output()

    def run(_=None) -> None:
        try:
            result = attend(text_box.value)
            if len(result) == 3:  # cross-attention: (query tokens, key tokens, weights)
                tokens, keys, weights = result
            else:
                (tokens, weights), keys = result, None
            arr = attention_array(weights)
            if keys is None:
                keys = tokens if len(tokens) == arr.shape[-1] else [str(i) for i in range(arr.shape[-1])]
            if len(tokens) != arr.shape[-2] or len(keys) != arr.shape[-1]:
                raise ValueError(f"attend returned {len(tokens)} query and {len(keys)} key tokens for weights "
                                 f"of shape {arr.shape}")
        except ValueError as exc:  # e.g. empty text, or weights missing (an sdpa model): say so in the UI
            highlighted.value = f"<b>{html.escape(str(exc))}</b>"
            return
        state.update(tokens=list(tokens), keys=list(keys), arr=arr)
        L, H, Tq, _ = arr.shape
        want_layer = layer if layer_menu.value is None else layer_menu.value
        want_head = head if head_menu.value is None else head_menu.value
        state["ready"] = False  # no redraw while the menus change
        layer_menu.options, head_menu.options = list(range(L)), list(range(H))
        layer_menu.value, head_menu.value = min(want_layer, L - 1), min(want_head, H - 1)
        query_slider.max = Tq - 1
        query_slider.value = Tq - 1 if query is None else min(query, Tq - 1)
        state["ready"] = True
        redraw()

    def redraw(_=None) -> None:
        if not state.get("ready") or layer_menu.value is None or head_menu.value is None:
            return
        tokens, keys, arr = state["tokens"], state["keys"], state["arr"]
        q = query_slider.value
        row = attention_row(arr, layer_menu.value, head_menu.value, q)
        best = ", ".join(f"{t!r}: {w:.2f}" for t, w in top_keys(keys, row, 3))
        self_attention = keys == tokens
        highlighted.value = (highlight_html(keys, row, q if self_attention else None)
                             + f"<div>query {q} ({html.escape(clean_token(tokens[q]))!r}) attends most to: "
                             f"{html.escape(best)}</div>")
        if show_map:
            out.clear_output(wait=True)
            with out:
                # one layer's (1, H, Tq, Tk): a 4-D array reads as (batch, heads, ...), not (layers, heads, ...)
                fig = plot_attention(arr[layer_menu.value][None], tokens, key_tokens=keys, heads=head_menu.value,
                                     title=f"layer {layer_menu.value}, head {head_menu.value}")
                display(fig)
                plt.close(fig)

    text_box.observe(run, names="value")
    for w in (layer_menu, head_menu, query_slider):
        w.observe(redraw, names="value")
    run()
    ui = widgets.VBox([text_box, widgets.HBox([layer_menu, head_menu]), query_slider, highlighted, out])
    ui.state = state  # the tokens and (L, H, Tq, Tk) weights shown, for tests and for curious learners
    return ui
