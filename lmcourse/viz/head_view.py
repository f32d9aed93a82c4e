"""The head view: query tokens in one column, key tokens in another, a line from each query to each key.

A line's opacity is its attention weight and its colour says which head drew it. Choose a layer and any
set of heads; select a token to keep only its lines, in both directions (what it attends to, what attends
to it). Self-attention (the same tokens on both sides) and cross-attention (a decoder's queries reading an
encoder's keys) alike.

The drawing is data first: `head_view_lines` says which lines there are (query, key, head, weight), then
two renderers draw the same layout: SVG for the live widget and the exports, matplotlib for PNG.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import NamedTuple

import matplotlib
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from lmcourse.viz.attention import attention_with_labels
from lmcourse.viz.views import View

__all__ = ["HeadView", "Lines", "head_colors", "head_view", "head_view_lines", "plot_head_view"]

ROW = 18          # px per token row
GAP = 180         # px between the two token columns, where the lines run
TOP = 28          # px above the first row, for the caption
CHAR = 7.2        # px per character of a 12 px sans-serif label (a generous estimate)
MAX_CHARS = 18    # longer tokens are cut with "…"
SELECTED_FILL = "#ffe08a"
SMOOTH_LINES = 20_000  # above this many lines the SVG is drawn without anti-aliasing (see _lines_group)


class Lines(NamedTuple):
    """The lines of a head view, one entry each: query row, key row, head, weight (the line's opacity)."""

    query: np.ndarray   # (N,) int
    key: np.ndarray     # (N,) int
    head: np.ndarray    # (N,) int
    weight: np.ndarray  # (N,) float in (0, 1]


def head_colors(n_heads: int) -> list[str]:
    """One colour per head (hex): tab10 for up to 10 heads; beyond, tab20's strong shades first, then its light ones."""
    if n_heads <= 10:
        cmap, order = matplotlib.colormaps["tab10"], range(10)
    else:
        cmap, order = matplotlib.colormaps["tab20"], [*range(0, 20, 2), *range(1, 20, 2)]
    order = list(order)
    return [matplotlib.colors.to_hex(cmap(order[h % len(order)])) for h in range(n_heads)]


def head_view_lines(arr: np.ndarray, layer: int, heads: Sequence[int], query: int | None = None,
                    key: int | None = None) -> Lines:
    """The lines to draw for one layer of arr (layers, heads, Tq, Tk): one per (head, query, key) with a
    weight above 0, or, when `query` and/or `key` is given, only the lines from that query and into that key.
    Masked (NaN) and zero weights draw no line."""
    heads = np.asarray(list(heads), dtype=int)
    sub = np.nan_to_num(arr[layer][heads], nan=0.0)  # (h, Tq, Tk)
    keep = sub > 0
    if query is not None or key is not None:
        chosen = np.zeros(sub.shape[1:], dtype=bool)  # (Tq, Tk)
        if query is not None:
            chosen[query, :] = True
        if key is not None:
            chosen[:, key] = True
        keep &= chosen
    h, q, k = np.nonzero(keep)
    return Lines(q, k, heads[h], sub[h, q, k])


def _cut(label: str) -> str:
    return label if len(label) <= MAX_CHARS else label[: MAX_CHARS - 1] + "…"


class _Layout:
    """Where everything goes, in pixels (y down), shared by the SVG and the matplotlib renderers."""

    def __init__(self, q_labels: Sequence[str], k_labels: Sequence[str]):
        self.q_labels, self.k_labels = [_cut(t) for t in q_labels], [_cut(t) for t in k_labels]
        self.q_width = 12 + CHAR * max(map(len, self.q_labels), default=1)
        self.x0 = self.q_width + 6          # lines start here (right of the query labels)
        self.x1 = self.x0 + GAP             # and end here (left of the key labels)
        self.width = self.x1 + 6 + CHAR * max(map(len, self.k_labels), default=1) + 12
        self.height = TOP + ROW * max(len(q_labels), len(k_labels)) + 6

    def y(self, i):
        return TOP + ROW * np.asarray(i) + ROW / 2

    def svg_open(self) -> str:
        """The <svg> element's opening and a white background."""
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:.0f}" height="{self.height:.0f}" '
                f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" font-family="sans-serif" font-size="12">\n'
                '<rect width="100%" height="100%" fill="white"/>')


def _svg_lines(layout: _Layout, lines: Lines, colors: Sequence[str]) -> list[str]:
    # One <path> per (head, opacity to 0.01): a few hundred elements instead of one per line.
    level = np.rint(lines.weight * 100).astype(int)
    out = []
    starts = [f"M{layout.x0:.0f} {y:.0f}" for y in layout.y(np.arange(len(layout.q_labels)))]
    ends = [f"L{layout.x1:.0f} {y:.0f}" for y in layout.y(np.arange(len(layout.k_labels)))]
    order = np.lexsort((level, lines.head))
    head, level, q, k = lines.head[order], level[order], lines.query[order], lines.key[order]
    cuts = np.flatnonzero((np.diff(head) != 0) | (np.diff(level) != 0)) + 1
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(order)]):
        if b <= a or level[a] == 0:
            continue
        d = "".join(starts[i] + ends[j] for i, j in zip(q[a:b].tolist(), k[a:b].tolist()))
        out.append(f'<path class="h{head[a]}" d="{d}" stroke="{colors[head[a]]}" '
                   f'stroke-opacity="{level[a] / 100:.2f}"/>')
    return out


def _lines_group(n_lines: int) -> str:
    """The <g> that holds the lines. Beyond SMOOTH_LINES lines, no anti-aliasing: the browser draws
    tens of thousands of lines several times faster, and at that density the jagged edges do not show."""
    speed = ' shape-rendering="optimizeSpeed"' if n_lines > SMOOTH_LINES else ""
    return f'<g fill="none" stroke-width="1.2"{speed}>'


def _svg_tokens(layout: _Layout, query: int | None, key: int | None, links: Sequence[Sequence[str]] = ()) -> list[str]:
    """The token labels, the selected ones highlighted; links: per side, a URL fragment per token to wrap it in."""
    out = []
    for s, (side, labels, x, anchor, chosen) in enumerate((("query", layout.q_labels, layout.q_width, "end", query),
                                                           ("key", layout.k_labels, layout.x1 + 6, "start", key))):
        for i, label in enumerate(labels):
            y = layout.y(i)
            if i == chosen:
                w = CHAR * len(label) + 6
                rx = x - w + 3 if anchor == "end" else x - 3
                out.append(f'<rect x="{rx:.0f}" y="{y - ROW / 2 + 1:.0f}" width="{w:.0f}" height="{ROW - 2}" '
                           f'fill="{SELECTED_FILL}"/>')
            weight = ' font-weight="bold"' if i == chosen else ""
            text = (f'<text class="{side}" x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}" '
                    f'dominant-baseline="central"{weight}>{html.escape(label)}</text>')
            out.append(f'<a href="#{links[s][i]}">{text}</a>' if links else text)
    return out


class HeadView(View):
    """A head view of weights (layers, heads, Tq, Tk). Change it with `select`; draw it with `svg()`/`figure()`;
    show it by making it a cell's last line (the widget, with a PNG copy for static readers)."""

    def __init__(self, arr: np.ndarray, q_labels: Sequence[str], k_labels: Sequence[str], *, layer: int = 0,
                 heads: Sequence[int] | None = None, query: int | None = None, key: int | None = None,
                 title: str | None = None):
        self.arr, self.q_labels, self.k_labels = arr, list(q_labels), list(k_labels)
        self.self_attention = self.q_labels == self.k_labels
        self.colors = head_colors(arr.shape[1])
        self.title = title
        self.layout = _Layout(self.q_labels, self.k_labels)
        self.layer, self.heads, self.query, self.key = 0, list(range(arr.shape[1])), None, None
        self.select(layer=layer, heads=list(range(arr.shape[1])) if heads is None else heads, query=query, key=key)

    # -- state ------------------------------------------------------------------------------------------
    def select(self, *, layer: int | None = None, heads: Sequence[int] | int | None = None,
               token: int | None = ..., query: int | None = ..., key: int | None = ...) -> HeadView:
        """Change what is shown: the layer, the set of heads, the selected token (self-attention: its lines
        both ways), or the selected query row / key row (cross-attention); token=None clears the selection.
        Arguments left out keep their value. Redraws the widget if it is shown. Returns self."""
        L, H, Tq, Tk = self.arr.shape
        if layer is not None:
            if not isinstance(layer, (int, np.integer)) or not -L <= layer < L:
                raise ValueError(f"layer={layer!r} out of range: there are {L} layers (0..{L - 1})")
            self.layer = int(layer) % L
        if heads is not None:
            heads = [heads] if isinstance(heads, (int, np.integer)) else list(heads)
            bad = [h for h in heads if not isinstance(h, (int, np.integer)) or not -H <= h < H]
            if bad:
                raise ValueError(f"heads={heads!r} out of range: there are {H} heads (0..{H - 1})")
            self.heads = sorted({int(h) % H for h in heads})
        if token is not ...:
            if token is not None and not self.self_attention:
                raise ValueError("token= selects a row on both sides, which needs self-attention (the same "
                                 "query and key tokens); for cross-attention give query= or key=")
            query = key = token
        for name, value, n in (("query", query, Tq), ("key", key, Tk)):
            if value is ...:
                continue
            if value is not None and (not isinstance(value, (int, np.integer)) or not 0 <= value < n):
                raise ValueError(f"{name}={value!r} out of range: there are {n} {name} tokens (0..{n - 1})")
            setattr(self, name, None if value is None else int(value))
        if self._widget is not None:
            self._sync_widget()
        return self

    def lines(self) -> Lines:
        """The lines drawn now (see `head_view_lines`)."""
        return head_view_lines(self.arr, self.layer, self.heads, self.query, self.key)

    def caption(self) -> str:
        L, H, Tq, Tk = self.arr.shape
        heads = self._heads_text()
        what = "self-attention" if self.self_attention else f"cross-attention, {Tq} queries x {Tk} keys"
        head = f"{self.title}: " if self.title else ""
        return f"{head}head view, layer {self.layer} of {L}, {heads} ({what}){self._chosen()}"

    def _chosen(self) -> str:
        chosen = ""
        if self.query is not None and self.query == self.key:
            chosen = f"; token {self.query} {self.q_labels[self.query]!r}"
        else:
            if self.query is not None:
                chosen += f"; query {self.query} {self.q_labels[self.query]!r}"
            if self.key is not None:
                chosen += f"; key {self.key} {self.k_labels[self.key]!r}"
        return chosen

    def _heads_text(self) -> str:
        if len(self.heads) == self.arr.shape[1]:
            return "all heads"
        return f"head{'s' * (len(self.heads) != 1)} {', '.join(map(str, self.heads)) or 'none'}"

    def _header(self) -> str:
        """The short caption drawn above the columns (the full one is `caption()`; a selection is highlighted)."""
        return f"layer {self.layer} · {self._heads_text()}"

    # -- renderers ----------------------------------------------------------------------------------------
    def svg(self) -> str:
        """The view as an SVG document (lines grouped by head and opacity to 0.01)."""
        lay, lines = self.layout, self.lines()
        parts = [lay.svg_open(),
                 f'<text x="4" y="16" fill="#444">{html.escape(self._header())}</text>',
                 _lines_group(len(lines.weight)), *_svg_lines(lay, lines, self.colors), "</g>",
                 *_svg_tokens(lay, self.query, self.key), "</svg>"]
        return "\n".join(parts)

    def html_body(self) -> str:
        """The view for `save_html`, still interactive without a kernel or a script: click a token to keep
        only its lines (CSS :target), click a head's name to hide or show it (a checkbox). The layer is fixed."""
        lay, H = self.layout, self.arr.shape[1]
        every = range(H)
        if self.self_attention:
            picks = [(f"hv-t{i}", i, i) for i in range(len(self.q_labels))]
            links = [[p[0] for p in picks]] * 2
        else:
            picks = ([(f"hv-q{i}", i, None) for i in range(len(self.q_labels))]
                     + [(f"hv-k{j}", None, j) for j in range(len(self.k_labels))])
            links = [[p[0] for p in picks if p[2] is None], [p[0] for p in picks if p[1] is None]]
        all_lines = head_view_lines(self.arr, self.layer, every)
        groups = ['<g class="all">', *_svg_lines(lay, all_lines, self.colors), "</g>"]
        for name, q, k in picks:
            groups += [f'<g class="sel" id="{name}">',
                       *_svg_lines(lay, head_view_lines(self.arr, self.layer, every, q, k), self.colors), "</g>"]
        css = [".lm-hv .sel{display:none} .lm-hv .sel:target{display:inline}",
               ".lm-hv svg:has(.sel:target) .all{display:none} .lm-hv a{cursor:pointer}",
               ".lm-hv label{font:bold 12px sans-serif;margin-right:.8em;cursor:pointer;user-select:none}"]
        css += [f"#hv-h{h}:not(:checked)~svg .h{h}{{display:none}} "
                f"#hv-h{h}:not(:checked)~.heads label[for=hv-h{h}]{{opacity:.35;text-decoration:line-through}}"
                for h in every]
        css += [f'.lm-hv svg:has(#{name}:target) a[href="#{name}"] text{{font-weight:bold;fill:#b35900}}'
                for name, _, _ in picks]
        boxes = [f'<input type="checkbox" id="hv-h{h}" hidden{" checked" * (h in self.heads)}>' for h in every]
        names = [f'<label for="hv-h{h}" style="color:{self.colors[h]}">head {h}</label>' for h in every]
        svg = [lay.svg_open(),
               f'<a href="#hv-all"><text x="4" y="16" fill="#444">layer {self.layer} · all tokens</text></a>',
               _lines_group(len(all_lines.weight)), *groups, "</g>", *_svg_tokens(lay, None, None, links), "</svg>"]
        hint = ("<p style=\"font-size:small;color:#666\">Click a token to keep only its lines (what it attends to, "
                "what attends to it); click a head to hide or show it.</p>")
        return "\n".join([f"<style>{' '.join(css)}</style>", hint, '<div class="lm-hv">', *boxes,
                          f'<div class="heads">{"".join(names)}</div>', *svg, "</div>"])

    def figure(self, dpi: int = 100) -> Figure:
        """The view as a matplotlib Figure (each line's alpha is exactly its weight). Not kept by pyplot."""
        lay = self.layout
        fig = Figure(figsize=(lay.width / dpi, lay.height / dpi), dpi=dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, lay.width)
        ax.set_ylim(lay.height, 0)
        ax.axis("off")
        lines = self.lines()
        rgba = np.array([matplotlib.colors.to_rgba(c) for c in self.colors])[lines.head] if len(lines.head) else np.zeros((0, 4))
        rgba[:, 3] = lines.weight
        segments = np.stack([np.stack([np.full(len(lines.query), lay.x0), lay.y(lines.query)], -1),
                             np.stack([np.full(len(lines.key), lay.x1), lay.y(lines.key)], -1)], 1)  # (N, 2, 2)
        ax.add_collection(LineCollection(segments, colors=rgba, linewidths=1.2))
        fontsize = 12 * 72 / dpi
        ax.text(4, 16, self._header(), fontsize=fontsize, color="#444", va="baseline")
        for labels, x, ha, chosen in ((lay.q_labels, lay.q_width, "right", self.query),
                                      (lay.k_labels, lay.x1 + 6, "left", self.key)):
            for i, label in enumerate(labels):
                bbox = dict(facecolor=SELECTED_FILL, edgecolor="none", pad=1.5) if i == chosen else None
                ax.text(x, float(lay.y(i)), label, ha=ha, va="center", fontsize=fontsize,
                        fontweight="bold" if i == chosen else "normal", bbox=bbox)
        return fig

    # -- the widget ---------------------------------------------------------------------------------------
    def _token_options(self) -> list[tuple[str, object]]:
        if self.self_attention:
            return [("all tokens", None)] + [(f"{i}: {t}", ("token", i)) for i, t in enumerate(self.q_labels)]
        return ([("all tokens", None)] + [(f"query {i}: {t}", ("query", i)) for i, t in enumerate(self.q_labels)]
                + [(f"key {j}: {t}", ("key", j)) for j, t in enumerate(self.k_labels)])

    def _token_value(self):
        if self.query is not None and self.query == self.key and self.self_attention:
            return ("token", self.query)
        if self.query is not None:
            return ("query", self.query) if not self.self_attention else None
        if self.key is not None:
            return ("key", self.key) if not self.self_attention else None
        return None

    def _build_widget(self):
        import ipywidgets as widgets  # core widgets only: no JavaScript from a CDN

        L, H = self.arr.shape[:2]
        self._layer_menu = widgets.Dropdown(options=list(range(L)), value=self.layer, description="layer",
                                            layout=widgets.Layout(width="150px"))
        self._token_menu = widgets.Dropdown(options=self._token_options(), value=self._token_value(),
                                            description="token", layout=widgets.Layout(width="260px"))
        self._head_buttons = [widgets.ToggleButton(value=h in self.heads, description=f"head {h}",
                                                   tooltip=f"show or hide head {h}",
                                                   style=dict(text_color=self.colors[h], font_weight="bold"),
                                                   layout=widgets.Layout(width="72px"))
                              for h in range(H)]
        # at its own size: a flex box would otherwise stretch the picture to the output's width
        self._image = widgets.Image(format="svg+xml", layout=widgets.Layout(width=f"{self.layout.width:.0f}px",
                                                                            max_width="none"))
        self._syncing = False

        def from_widgets(_=None):
            if self._syncing:
                return
            chosen = self._token_menu.value
            query = key = None
            if chosen is not None:
                side, i = chosen
                query = i if side in ("token", "query") else None
                key = i if side in ("token", "key") else None
            self.select(layer=self._layer_menu.value, heads=[h for h, b in enumerate(self._head_buttons) if b.value],
                        query=query, key=key)

        for w in (self._layer_menu, self._token_menu, *self._head_buttons):
            w.observe(from_widgets, names="value")
        self._draw_image()
        heads_row = widgets.HBox(self._head_buttons, layout=widgets.Layout(flex_flow="row wrap"))
        return widgets.VBox([widgets.HBox([self._layer_menu, self._token_menu]), heads_row, self._image])

    def _sync_widget(self) -> None:
        self._syncing = True  # one redraw for a select() that changes several menus
        try:
            self._layer_menu.value = self.layer
            for h, b in enumerate(self._head_buttons):
                b.value = h in self.heads
            self._token_menu.value = self._token_value()
        finally:
            self._syncing = False
        self._draw_image()

    def _draw_image(self) -> None:
        self._image.value = self.svg().encode()


def head_view(attention, tokens: Sequence[str] | None = None, key_tokens: Sequence[str] | None = None, *,
              layer: int = 0, heads: Sequence[int] | int | None = None, token: int | None = None,
              query: int | None = None, key: int | None = None, batch_index: int = 0,
              title: str | None = None) -> HeadView:
    """The head view of attention weights: tokens left (queries) and right (keys), one line per weight.

    attention: any shape `attention_array` takes: a course model's weights (B, H, Tq, Tk) or a list of them
    per layer (`Encoder(..., need_weights=True)`, `capture_attention(model, ids)`), a Hugging Face model's
    `attentions` (output_attentions=True, attn_implementation="eager") or its output, a raw tensor.
    tokens: the query tokens (and the keys, unless key_tokens is given: cross-attention).
    layer, heads (default all): what to show; token: a row whose lines alone are shown, both ways
    (self-attention); query / key: the same for one side (cross-attention).
    Returns a HeadView: the cell's last line shows it as a widget; `.select(...)` changes it; `save_html`,
    `save_png`, `save_svg` export it.
    """
    arr, q_labels, k_labels = attention_with_labels(attention, tokens, key_tokens, batch_index)
    view = HeadView(arr, q_labels, k_labels, layer=layer, heads=heads, title=title)
    return view.select(token=token) if token is not None else view.select(query=query, key=key)


def plot_head_view(attention, tokens: Sequence[str] | None = None, key_tokens: Sequence[str] | None = None,
                   **kwargs) -> Figure:
    """The head view as a static matplotlib Figure (same arguments as `head_view`): for slides and papers."""
    return head_view(attention, tokens, key_tokens, **kwargs).figure()
