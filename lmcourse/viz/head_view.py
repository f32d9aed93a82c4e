"""The head view: query tokens in one column, key tokens in another, a line from each query to each key.

A line's opacity is its attention weight and its colour says which head drew it. Choose a layer and any
set of heads; click a token (or pick it from the menu) to keep only its lines, in both directions (what it
attends to, what attends to it). Self-attention (the same tokens on both sides) and cross-attention (a
decoder's queries reading an encoder's keys) alike; a sentence pair (`sentence_b_start`) can be filtered
to A->A, B->B, A->B or B->A. The lines and their drawings are in `lmcourse.viz.lines`; the page that
`save_html` writes is `lmcourse.viz.head_view_html`.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from lmcourse.viz.attention import attention_with_labels
from lmcourse.viz.click import ClickRegions, picture_with_regions
from lmcourse.viz.encoder_decoder import (
    EncoderDecoderView,
    check_no_part_tokens,
    encoder_decoder_parts,
    is_encoder_decoder,
)
from lmcourse.viz.head_view_html import head_view_html
from lmcourse.viz.lines import (
    CHAR,
    GAP,
    ROW,
    SELECTED_FILL,
    TOP,
    Layout,
    Lines,
    head_colors,
    head_view_lines,
    lines_group,
    raster_lines,
    svg_lines,
    svg_tokens,
)
from lmcourse.viz.pairs import PAIRS, check_pair, pair_mask, pair_slices
from lmcourse.viz.views import View

__all__ = ["HeadView", "head_view", "plot_head_view"]

ALL = "all"  # the token menu's value for "all tokens" (a Dropdown shows None as a blank menu)
TITLE_LINE = 14   # px per line of the title and of the head legend above the static picture
TITLE_CHAR = 6.8  # px per character of the 9 pt title and caption (a generous estimate)


def wrap_to_width(text: str, width: float) -> list[str]:
    """`text` in lines of the 9 pt title that fit a picture `width` px wide (wrapped, never cut)."""
    return textwrap.wrap(text, max(20, int((width - 8) / TITLE_CHAR)))


class HeadView(View):
    """A head view of weights (layers, heads, Tq, Tk). Change it with `select`; draw it with `svg()`/`figure()`;
    show it by making it a cell's last line (the widget, with a PNG copy for static readers)."""

    def __init__(self, arr: np.ndarray, q_labels: Sequence[str], k_labels: Sequence[str], *, layer: int = 0,
                 heads: Sequence[int] | None = None, query: int | None = None, key: int | None = None,
                 sentence_b_start: int | None = None, pair: str = "all", title: str | None = None):
        self.arr, self.q_labels, self.k_labels = arr, list(q_labels), list(k_labels)
        self.self_attention = self.q_labels == self.k_labels
        check_pair(pair, sentence_b_start, arr.shape[-1], self.self_attention)
        self.sentence_b_start = sentence_b_start
        self.colors = head_colors(arr.shape[1])
        self.title = title
        self.layout = Layout(self.q_labels, self.k_labels)
        self.layer, self.heads, self.query, self.key, self.pair = 0, list(range(arr.shape[1])), None, None, "all"
        self.select(layer=layer, heads=list(range(arr.shape[1])) if heads is None else heads, query=query, key=key,
                    pair=pair)

    # -- state ------------------------------------------------------------------------------------------
    def select(self, *, layer: int | None = None, heads: Sequence[int] | int | None = None,
               token: int | None = ..., query: int | None = ..., key: int | None = ...,
               pair: str | None = None) -> HeadView:
        """Change what is shown: the layer, the set of heads, the selected token (self-attention: its lines
        both ways), or the selected query row / key row (cross-attention); token=None clears the selection;
        pair: a sentence-pair filter ("all", "A->A", "B->B", "A->B", "B->A"; needs sentence_b_start).
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
        if pair is not None:
            check_pair(pair, self.sentence_b_start, Tk, self.self_attention)
            self.pair = pair
        if self._widget is not None:
            self._sync_widget()
        return self

    @property
    def token(self) -> int | None:
        """The selected token of a self-attention view (its lines both ways), or None."""
        return self.query if self.self_attention and self.query == self.key else None

    def allowed(self) -> np.ndarray | None:
        """(Tq, Tk) bool: the pairs the sentence filter keeps, or None when it keeps all."""
        return None if self.pair == "all" else pair_mask(self.pair, self.sentence_b_start, self.arr.shape[-1])

    def lines(self, layer: int | None = None, heads: Sequence[int] | None = None, query: int | None = ...,
              key: int | None = ...) -> Lines:
        """The lines drawn now (see `head_view_lines`), or those of another layer / heads / selection."""
        return head_view_lines(self.arr, self.layer if layer is None else layer,
                               self.heads if heads is None else heads, self.query if query is ... else query,
                               self.key if key is ... else key, self.allowed())

    def dimmed(self) -> list[list[bool]]:
        """Per side (queries, keys), a flag per token outside the sentence-pair filter (drawn grey)."""
        Tq, Tk = self.arr.shape[-2:]
        if self.pair == "all":
            return [[False] * Tq, [False] * Tk]
        rows, cols = pair_slices(self.pair, self.sentence_b_start, Tk)
        return [[not rows.start <= i < rows.stop for i in range(Tq)], [not cols.start <= j < cols.stop for j in range(Tk)]]

    def caption(self) -> str:
        L, H, Tq, Tk = self.arr.shape
        what = "self-attention" if self.self_attention else f"cross-attention, {Tq} queries x {Tk} keys"
        head = f"{self.title}: " if self.title else ""
        pair = f", sentences {self.pair}" if self.pair != "all" else ""
        return f"{head}head view, layer {self.layer} of {L}, {self._heads_text()} ({what}{pair}){self._chosen()}"

    def _chosen(self) -> str:
        if self.token is not None:
            return f"; token {self.token} {self.q_labels[self.token]!r}"
        chosen = ""
        if self.query is not None:
            chosen += f"; query {self.query} {self.q_labels[self.query]!r}"
        if self.key is not None:
            chosen += f"; key {self.key} {self.k_labels[self.key]!r}"
        return chosen

    def _heads_text(self) -> str:
        if len(self.heads) == self.arr.shape[1]:
            return "all heads"
        return f"head{'s' * (len(self.heads) != 1)} {', '.join(map(str, self.heads)) or 'none'}"

    def header(self) -> str:
        """The short caption drawn above the columns (the full one is `caption()`)."""
        pair = f" · {self.pair}" if self.pair != "all" else ""
        return f"layer {self.layer} · {self._heads_text()}{pair}"

    # -- renderers ----------------------------------------------------------------------------------------
    def svg(self) -> str:
        """The view as an SVG document (lines grouped by head and opacity to 0.01)."""
        lay, lines = self.layout, self.lines()
        parts = [lay.svg_open(),
                 f'<text x="4" y="16" fill="#444">{html.escape(self.header())}</text>',
                 lines_group(len(lines.weight)), *svg_lines(lay, lines, self.colors), "</g>",
                 *svg_tokens(lay, self.query, self.key, dim=self.dimmed()), "</svg>"]
        return "\n".join(parts)

    def html_body(self, prefix: str = "hv") -> str:
        """The view for `save_html`, interactive without a kernel or a script (see `head_view_html`)."""
        return head_view_html(self, prefix)

    def title_lines(self) -> list[str]:
        """The title wrapped to the picture's width (never cut), as the static picture shows it; [] without one."""
        if not self.title:
            return []
        return wrap_to_width(self.title, self.layout.width)

    def legend_rows(self) -> list[list[tuple[int, float]]]:
        """Which colour is which head, as the static picture shows it (the widget's head buttons say it live):
        rows of (head, x in px) for the heads shown, wrapped to the picture's width; [] when the attention
        has one head or none is shown."""
        if self.arr.shape[1] < 2 or not self.heads:
            return []
        rows, x = [[]], 4.0
        for h in self.heads:
            width = CHAR * len(f"head {h}") + 10
            if rows[-1] and x + width > self.layout.width:
                rows.append([])
                x = 4.0
            rows[-1].append((h, x))
            x += width
        return rows

    def figure(self, dpi: int = 100) -> Figure:
        """The view as a matplotlib Figure: above the picture the title (wrapped) and which colour is which
        head; the lines as one image (`raster_lines`), the tokens as text. Not kept by pyplot."""
        lay, scale = self.layout, dpi / 100
        title, legend = self.title_lines(), self.legend_rows()
        band = TITLE_LINE * (len(title) + len(legend)) + (6 if title or legend else 0)  # px above the picture
        height = lay.height + band
        fig = Figure(figsize=(lay.width / 100, height / 100), dpi=dpi)
        # Title and legend in px from the top-left corner: fig.dpi_scale_trans is in inches, 100 px each here.
        for i, line in enumerate(title):
            fig.text(4 / 100, (height - TITLE_LINE * (i + 1) - 1) / 100, line, fontsize=9, color="#222",
                     transform=fig.dpi_scale_trans)
        for r, row in enumerate(legend):
            for h, x in row:
                fig.text(x / 100, (height - TITLE_LINE * (len(title) + r + 1) - 1) / 100, f"head {h}",
                         fontsize=12 * 72 / 100, fontweight="bold", color=self.colors[h], transform=fig.dpi_scale_trans)
        ax = fig.add_axes((0, 0, 1, lay.height / height))
        ax.set_xlim(0, lay.width)
        ax.set_ylim(lay.height, 0)
        ax.axis("off")
        image = raster_lines(lay, self.lines(), self.colors, scale)
        ax.imshow(image, extent=(lay.x0, lay.x0 + GAP, image.shape[0] / scale, 0), interpolation="nearest")
        fontsize = 12 * 72 / 100
        ax.text(4, 16, self.header(), fontsize=fontsize, color="#444", va="baseline")
        dim = self.dimmed()
        for s, (labels, x, ha, chosen) in enumerate(((lay.q_labels, lay.q_width, "right", self.query),
                                                     (lay.k_labels, lay.x1 + 6, "left", self.key))):
            for i, label in enumerate(labels):
                bbox = dict(facecolor=SELECTED_FILL, edgecolor="none", pad=1.5) if i == chosen else None
                ax.text(x, float(lay.y(i)), label, ha=ha, va="center", fontsize=fontsize, bbox=bbox,
                        fontweight="bold" if i == chosen else "normal", color="#bbbbbb" if dim[s][i] else "black")
        return fig

    # -- the widget ---------------------------------------------------------------------------------------
    def _token_options(self) -> list[tuple[str, object]]:
        if self.self_attention:
            return [("all tokens", ALL)] + [(f"{i}: {t}", ("token", i)) for i, t in enumerate(self.q_labels)]
        return ([("all tokens", ALL)] + [(f"query {i}: {t}", ("query", i)) for i, t in enumerate(self.q_labels)]
                + [(f"key {j}: {t}", ("key", j)) for j, t in enumerate(self.k_labels)])

    def _token_value(self):
        if self.token is not None:
            return ("token", self.token)
        if not self.self_attention and self.query is not None:
            return ("query", self.query)
        if not self.self_attention and self.key is not None:
            return ("key", self.key)
        return ALL

    def click_token(self, side: str, i: int) -> None:
        """What a click on token i of one side ("query" or "key") does: select it (in self-attention, both
        ways), or clear the selection when it is already selected."""
        if self.self_attention:
            self.select(token=None if self.token == i else i)
        elif side == "query":
            self.select(query=None if self.query == i else i)
        else:
            self.select(key=None if self.key == i else i)

    def _build_widget(self):
        import ipywidgets as widgets  # core widgets only: no JavaScript from a CDN

        L, H = self.arr.shape[:2]
        lay = self.layout
        self._layer_menu = widgets.Dropdown(options=list(range(L)), value=self.layer, description="layer",
                                            layout=widgets.Layout(width="150px"))
        self._token_menu = widgets.Dropdown(options=self._token_options(), value=self._token_value(),
                                            description="token", layout=widgets.Layout(width="260px"))
        self._pair_menu = widgets.Dropdown(options=list(PAIRS), value=self.pair, description="sentences",
                                           layout=widgets.Layout(width="190px",
                                                                 display=None if self.sentence_b_start else "none"))
        self._head_buttons = [widgets.ToggleButton(value=h in self.heads, description=f"head {h}",
                                                   tooltip=f"show or hide head {h}",
                                                   style=dict(text_color=self.colors[h], font_weight="bold"),
                                                   layout=widgets.Layout(width="72px"))
                              for h in range(H)]
        # at its own size: a flex box would otherwise stretch the picture and move it from under the regions
        self._image = widgets.Image(format="svg+xml", layout=widgets.Layout(width=f"{lay.width:.0f}px",
                                                                            max_width="none"))
        self.token_regions = [
            ClickRegions(len(lay.q_labels), 1, x=0, y=TOP, cell_width=lay.x0 - 2, cell_height=ROW,
                         tooltips=self.q_labels, on_click=lambda i: self.click_token("query", i)),
            ClickRegions(len(lay.k_labels), 1, x=lay.x1 + 2, y=TOP, cell_width=lay.width - lay.x1 - 2,
                         cell_height=ROW, tooltips=self.k_labels, on_click=lambda j: self.click_token("key", j))]
        self._syncing = False

        def from_widgets(_=None):
            if self._syncing:
                return
            chosen = self._token_menu.value
            query = key = None
            if chosen != ALL:
                side, i = chosen
                query = i if side in ("token", "query") else None
                key = i if side in ("token", "key") else None
            self.select(layer=self._layer_menu.value, heads=[h for h, b in enumerate(self._head_buttons) if b.value],
                        query=query, key=key, pair=self._pair_menu.value)

        for w in (self._layer_menu, self._token_menu, self._pair_menu, *self._head_buttons):
            w.observe(from_widgets, names="value")
        self._draw_image()
        heads_row = widgets.HBox(self._head_buttons, layout=widgets.Layout(flex_flow="row wrap"))
        return widgets.VBox([widgets.HBox([self._layer_menu, self._token_menu, self._pair_menu]), heads_row,
                             picture_with_regions(self._image, self.token_regions)])

    def _sync_widget(self) -> None:
        self._syncing = True  # one redraw for a select() that changes several menus
        try:
            self._layer_menu.value = self.layer
            for h, b in enumerate(self._head_buttons):
                b.value = h in self.heads
            self._token_menu.value = self._token_value()
            self._pair_menu.value = self.pair
        finally:
            self._syncing = False
        self._draw_image()

    def _draw_image(self) -> None:
        self._image.value = self.svg().encode()


def head_view(attention, tokens: Sequence[str] | None = None, key_tokens: Sequence[str] | None = None, *,
              layer: int = 0, heads: Sequence[int] | int | None = None, token: int | None = None,
              query: int | None = None, key: int | None = None, sentence_b_start: int | None = None,
              pair: str = "all", encoder_tokens: Sequence[str] | None = None,
              decoder_tokens: Sequence[str] | None = None, part: str = "cross", batch_index: int = 0,
              title: str | None = None) -> HeadView | EncoderDecoderView:
    """The head view of attention weights: tokens left (queries) and right (keys), one line per weight.

    attention: any shape `attention_array` takes: a course model's weights (B, H, Tq, Tk) or a list of them
    per layer (`Encoder(..., need_weights=True)`, `capture_attention(model, ids)`), a Hugging Face model's
    `attentions` (output_attentions=True, attn_implementation="eager") or its output, a raw tensor.
    tokens: the query tokens (and the keys, unless key_tokens is given: cross-attention).
    layer, heads (default all): what to show; token: a row whose lines alone are shown, both ways
    (self-attention); query / key: the same for one side (cross-attention).
    sentence_b_start: where sentence B begins in a sentence pair; pair: "all", "A->A", "B->B", "A->B", "B->A".
    A Hugging Face encoder-decoder output (encoder_attentions, decoder_attentions, cross_attentions) gives
    all three in one view with a selector: name its tokens with encoder_tokens and decoder_tokens (not
    tokens), and the part shown first with part ("encoder", "decoder" or "cross").
    Returns a HeadView (an EncoderDecoderView for an encoder-decoder output): the cell's last line shows it
    as a widget; `.select(...)` changes it; `save_html`, `save_png`, `save_svg` export it.
    """
    if is_encoder_decoder(attention):
        parts = encoder_decoder_parts(attention, tokens, key_tokens, encoder_tokens, decoder_tokens, batch_index)
        views = {name: HeadView(arr, q, k, layer=layer, heads=heads, title=title) for name, (arr, q, k) in parts.items()}
        return EncoderDecoderView(views, part=part, kind="head view", title=title)
    check_no_part_tokens(encoder_tokens, decoder_tokens)
    arr, q_labels, k_labels = attention_with_labels(attention, tokens, key_tokens, batch_index)
    view = HeadView(arr, q_labels, k_labels, layer=layer, heads=heads, sentence_b_start=sentence_b_start,
                    pair=pair, title=title)
    return view.select(token=token) if token is not None else view.select(query=query, key=key)


def plot_head_view(attention, tokens: Sequence[str] | None = None, key_tokens: Sequence[str] | None = None,
                   **kwargs) -> Figure:
    """The head view as a static matplotlib Figure (same arguments as `head_view`): for slides and papers."""
    return head_view(attention, tokens, key_tokens, **kwargs).figure()
