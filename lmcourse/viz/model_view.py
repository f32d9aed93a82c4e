"""The model view: every layer x head of a model as a small attention map in one grid; click a map (or
choose it in the menus) to open it in the head view below the grid.

By default each map is scaled to its own largest weight (so a sharp head and a spread-out one both show
their pattern; the colour bar says so); scale="shared" puts every map on one scale, 0 to the largest
weight of all, so an evenly spreading head looks dim. Masked entries are grey, and long sequences are
max-pooled so a one-token-wide diagonal (a previous-token head) stays visible. The grid is one image,
drawn once per scale; a new choice only moves the frame around the chosen map and redraws the head view.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lmcourse.viz.attention import attention_with_labels, is_causal
from lmcourse.viz.click import ClickRegions, picture_with_regions
from lmcourse.viz.encoder_decoder import (
    EncoderDecoderView,
    check_no_part_tokens,
    encoder_decoder_parts,
    is_encoder_decoder,
)
from lmcourse.viz.head_view import HeadView, wrap_to_width
from lmcourse.viz.model_view_html import model_view_html
from lmcourse.viz.pairs import PAIRS, check_pair, pair_slices
from lmcourse.viz.views import View, png_data_url

__all__ = ["SCALES", "ModelView", "model_view", "model_view_grid", "plot_model_view"]

GAP = 4             # px between maps
MARGIN_LEFT = 58    # px for the layer labels
MIN_WIDTH = 440     # px: room for the caption and the colour bar above a narrow grid
LINE = 15           # px per caption line
MASKED_GREY = np.array([217, 217, 217, 255], dtype=np.uint8)
CMAP = "viridis"
SCALES = ("map", "shared")


def _resize_axis(n: int, size: int) -> np.ndarray:
    """Start index of each of `size` bins over n positions (for np.maximum.reduceat), or repeats when size > n."""
    return np.floor(np.arange(size) * n / size).astype(int)


def scaled_maps(arr: np.ndarray, scale: str = "map") -> tuple[np.ndarray, float]:
    """arr (layers, heads, Tq, Tk) divided by each map's largest weight (scale="map") or by the largest weight
    of all maps (scale="shared"), with a causal model's future as NaN. Returns (values in [0, 1] or NaN, the
    divisor for "shared", else 1.0)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    Tq, Tk = arr.shape[-2:]
    if is_causal(arr):  # the future a causal model may not see: grey, as in plot_attention
        arr = np.where(np.triu(np.ones((Tq, Tk), dtype=bool), 1), np.nan, arr)
    masked = np.isnan(arr)
    vals = np.where(masked, 0.0, arr)
    peak = vals.max(axis=(-2, -1), keepdims=True) if scale == "map" else vals.max(initial=0.0)
    top = 1.0 if scale == "map" else float(peak)
    vals = vals / np.where(peak > 0, peak, 1.0)
    return np.where(masked, np.nan, vals), top


def model_view_grid(arr: np.ndarray, tile: int | None = None, cmap: str = CMAP,
                    scale: str = "map") -> tuple[np.ndarray, int, int]:
    """All maps of arr (layers, heads, Tq, Tk) side by side as one RGBA image (uint8), layers down, heads across.

    Each map is scaled as `scaled_maps` says, then coloured; NaN (masked) and a causal model's future are grey.
    tile: the longer side of a map in pixels (default: about 900 px for the whole grid, at most 96 per map).
    Longer maps are max-pooled, shorter ones repeated. Returns (image, map height, map width) in pixels.
    """
    L, H, Tq, Tk = arr.shape
    tile = tile or int(max(16, min(96, 900 // max(L, H))))
    size = tile / max(Tq, Tk)
    th, tw = max(1, round(Tq * size)), max(1, round(Tk * size))
    vals, _ = scaled_maps(arr, scale)
    masked = np.isnan(vals)
    if th <= Tq:  # pool rows and columns, keeping the largest value of each bin (NaN only where all are NaN)
        filled = np.where(masked, -1.0, vals)
        filled = np.maximum.reduceat(filled, _resize_axis(Tq, th), axis=2)
        filled = np.maximum.reduceat(filled, _resize_axis(Tk, tw), axis=3)
        small = np.where(filled < 0, np.nan, filled)
    else:
        small = vals[:, :, _resize_axis(Tq, th)][:, :, :, _resize_axis(Tk, tw)]
    rgba = matplotlib.colormaps[cmap](np.nan_to_num(small), bytes=True)  # (L, H, th, tw, 4)
    rgba[np.isnan(small)] = MASKED_GREY
    image = np.full((L * (th + GAP) - GAP, H * (tw + GAP) - GAP, 4), 255, dtype=np.uint8)
    for layer in range(L):
        for head in range(H):
            y, x = layer * (th + GAP), head * (tw + GAP)
            image[y:y + th, x:x + tw] = rgba[layer, head]
    return image, th, tw


def colour_bar_svg(x: float, y: float, scale: str, top: float, cmap: str = CMAP) -> str:
    """A 160 px colour bar at (x, y), 0 on the left, and what its right end means: each map's own largest
    weight, or the largest weight of all maps; then the grey of masked entries."""
    stops = "".join(f'<stop offset="{v:.1f}" stop-color="{matplotlib.colors.to_hex(matplotlib.colormaps[cmap](v))}"/>'
                    for v in np.linspace(0, 1, 11))
    right = "largest weight of each map" if scale == "map" else f"{top:.3g} (largest weight of all maps)"
    grey_x = x + 172 + 6.2 * len(right) + 10
    return (f'<defs><linearGradient id="lm-cbar">{stops}</linearGradient></defs>'
            f'<text x="{x}" y="{y + 10}" font-size="11" text-anchor="end" fill="#444">0</text>'
            f'<rect x="{x + 4}" y="{y}" width="160" height="12" fill="url(#lm-cbar)"/>'
            f'<text x="{x + 168}" y="{y + 10}" font-size="11" fill="#444">{html.escape(right)}</text>'
            f'<rect x="{grey_x:.0f}" y="{y}" width="12" height="12" fill="#d9d9d9"/>'
            f'<text x="{grey_x + 16:.0f}" y="{y + 10}" font-size="11" fill="#444">masked</text>')


class ModelView(View):
    """The model view of weights (layers, heads, Tq, Tk): the grid, and the chosen map open in `head_view`
    (a HeadView). Change the choice with `select(layer=, head=)`, the colours with `select(scale=)`."""

    def __init__(self, arr: np.ndarray, q_labels: Sequence[str], k_labels: Sequence[str], *, layer: int = 0,
                 head: int = 0, scale: str = "map", sentence_b_start: int | None = None, pair: str = "all",
                 title: str | None = None):
        self.arr, self.title = arr, title
        self.q_labels, self.k_labels = list(q_labels), list(k_labels)
        _check_head(head, arr.shape[1])
        self.head_view = HeadView(arr, q_labels, k_labels, layer=layer, heads=[head], title=title,
                                  sentence_b_start=sentence_b_start, pair=pair)
        self.sentence_b_start = sentence_b_start
        self.layer, self.head, self.scale, self.pair = self.head_view.layer, self.head_view.heads[0], None, None
        self.select(layer=layer, head=head, scale=scale, pair=pair)

    def select(self, *, layer: int | None = None, head: int | None = None, scale: str | None = None,
               pair: str | None = None) -> ModelView:
        """Choose the map to open (its frame moves in the grid and the head view shows that layer and head),
        the colour scale ("map" or "shared"), or the sentence-pair filter (the maps are cropped to it)."""
        H = self.arr.shape[1]
        if head is not None:
            _check_head(head, H)
        if scale is not None and scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        if pair is not None:
            check_pair(pair, self.sentence_b_start, self.arr.shape[-1], self.head_view.self_attention)
        self.head_view.select(layer=layer, heads=None if head is None else [head], pair=pair)
        self.layer = self.head_view.layer
        self.head = int(head) % H if head is not None else self.head
        if (scale or self.scale, pair or self.pair) != (self.scale, self.pair):
            self.scale, self.pair = scale or self.scale, pair or self.pair
            self.grid, self.tile_h, self.tile_w = model_view_grid(self.maps(), scale=self.scale)
            self.top = scaled_maps(self.maps(), self.scale)[1]
            self._grid_url = png_data_url(self.grid)
        if self._widget is not None:
            self._sync_widget()
        return self

    cmap, gap = CMAP, GAP

    def maps(self) -> np.ndarray:
        """The maps shown: the weights (layers, heads, Tq, Tk), cropped to the sentence-pair filter."""
        if self.pair == "all":
            return self.arr
        rows, cols = pair_slices(self.pair, self.sentence_b_start, self.arr.shape[-1])
        return self.arr[:, :, rows, cols]

    def scaled(self) -> np.ndarray:
        """The maps shown, scaled to [0, 1] as the colours are (NaN: masked); see `scaled_maps`."""
        return scaled_maps(self.maps(), self.scale)[0]

    def pair_labels(self) -> tuple[list[str], list[str]]:
        """The query and key labels of the maps shown (those of the sentence-pair filter's block)."""
        rows, cols = pair_slices(self.pair, self.sentence_b_start, self.arr.shape[-1])
        return self.q_labels[rows], self.k_labels[cols]

    def caption(self) -> str:
        L, H, Tq, Tk = self.arr.shape
        head = f"{self.title}: " if self.title else ""
        shown_q, shown_k = self.maps().shape[-2:]
        pair = f", sentences {self.pair} ({shown_q} x {shown_k} of them)" if self.pair != "all" else ""
        scale = "each map on its own scale" if self.scale == "map" else "one scale for all maps"
        return (f"{head}model view, {L} layers x {H} heads, {Tq} x {Tk} tokens{pair} ({scale}); open: layer "
                f"{self.layer}, head {self.head}")

    # -- geometry -----------------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return max(MIN_WIDTH, MARGIN_LEFT + self.grid.shape[1] + 8)

    def caption_lines(self) -> list[str]:
        """The caption wrapped to the picture's width (never cut)."""
        return wrap_to_width(self.caption(), self.width)

    @property
    def grid_top(self) -> int:
        """Where the grid begins, below the caption, the colour bar and the head numbers. Room is kept for
        the longest caption, so the grid stays where it is when the caption changes."""
        L, H = self.arr.shape[:2]
        longest = self.caption().replace("one scale for all maps", "each map on its own scale")
        longest = longest.replace(f"layer {self.layer}, head {self.head}", f"layer {L - 1}, head {H - 1}")
        rows = len(wrap_to_width(longest, self.width))
        return 6 + LINE * max(rows, len(self.caption_lines())) + 22 + 18

    def cell_origin(self, layer: int, head: int) -> tuple[int, int]:
        """The top-left corner of map (layer, head) in the picture, in px."""
        return MARGIN_LEFT + head * (self.tile_w + GAP), self.grid_top + layer * (self.tile_h + GAP)

    # -- renderers ----------------------------------------------------------------------------------------
    def svg(self, frame: bool = True) -> str:
        """The grid as SVG: the caption, a colour bar, the maps (one inline PNG), layer and head labels, and
        (frame=True) a frame round the open map."""
        L, H = self.arr.shape[:2]
        gh, gw = self.grid.shape[:2]
        width, height, top = self.width, self.grid_top + gh + 8, self.grid_top
        caption = "".join(f'<text x="4" y="{4 + LINE * (i + 1) - 3}" font-size="12" fill="#444">{html.escape(line)}'
                          "</text>" for i, line in enumerate(self.caption_lines()))
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                 f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
                 '<rect width="100%" height="100%" fill="white"/>', caption,
                 colour_bar_svg(MARGIN_LEFT - 6, top - 38, self.scale, self.top),
                 f'<image x="{MARGIN_LEFT}" y="{top}" width="{gw}" height="{gh}" '
                 f'style="image-rendering:pixelated" href="{self._grid_url}"/>']
        parts += [f'<text x="{self.cell_origin(0, h)[0] + self.tile_w / 2:.0f}" y="{top - 5}" '
                  f'text-anchor="middle">{h}</text>' for h in range(H)]
        parts += [f'<text x="{MARGIN_LEFT - 6}" y="{self.cell_origin(layer, 0)[1] + self.tile_h / 2:.0f}" '
                  f'text-anchor="end" dominant-baseline="central">layer {layer}</text>' for layer in range(L)]
        if frame:
            x, y = self.cell_origin(self.layer, self.head)
            parts.append(f'<rect class="open" x="{x - 2}" y="{y - 2}" width="{self.tile_w + 4}" '
                         f'height="{self.tile_h + 4}" fill="none" stroke="#d62728" stroke-width="3"/>')
        return "\n".join([*parts, "</svg>"])

    def html_body(self, prefix: str = "mv") -> str:
        """The grid, each map clickable (it opens enlarged below), and the head view (see `model_view_html`)."""
        return model_view_html(self, prefix)

    def figure(self, dpi: int = 100) -> Figure:
        """The grid as a matplotlib Figure (one image, a colour bar), the open map framed. Not kept by pyplot."""
        L, H = self.arr.shape[:2]
        gh, gw = self.grid.shape[:2]
        fig = Figure(figsize=((self.width + 90) / 100, (gh + 60 + LINE * len(self.caption_lines())) / 100), dpi=dpi,
                     layout="constrained")
        ax = fig.add_subplot()
        ax.imshow(self.grid, interpolation="nearest")
        ax.set_xticks([h * (self.tile_w + GAP) + self.tile_w / 2 - 0.5 for h in range(H)], [str(h) for h in range(H)])
        ax.set_yticks([i * (self.tile_h + GAP) + self.tile_h / 2 - 0.5 for i in range(L)], [str(i) for i in range(L)])
        ax.xaxis.set_ticks_position("top")
        ax.xaxis.set_label_position("top")
        ax.set(xlabel="head", ylabel="layer")
        ax.tick_params(length=0, labelsize=8)
        for side in ax.spines.values():
            side.set_visible(False)
        x, y = self.head * (self.tile_w + GAP), self.layer * (self.tile_h + GAP)
        ax.add_patch(Rectangle((x - 2.5, y - 2.5), self.tile_w + 4, self.tile_h + 4, fill=False, edgecolor="#d62728",
                               linewidth=2, clip_on=False))
        mappable = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0, self.top), CMAP)
        bar = fig.colorbar(mappable, ax=ax, shrink=0.6, pad=0.02)
        bar.set_label("weight / largest of its map" if self.scale == "map" else "weight", fontsize=8)
        bar.ax.tick_params(labelsize=7)
        fig.suptitle("\n".join(self.caption_lines()), fontsize=9)
        return fig

    # -- the widget ---------------------------------------------------------------------------------------
    def _build_widget(self):
        import ipywidgets as widgets  # core widgets only: no JavaScript from a CDN

        L, H = self.arr.shape[:2]
        self._layer_menu = widgets.Dropdown(options=list(range(L)), value=self.layer, description="open layer",
                                            layout=widgets.Layout(width="170px"))
        self._head_menu = widgets.Dropdown(options=list(range(H)), value=self.head, description="head",
                                           layout=widgets.Layout(width="150px"))
        self._scale_menu = widgets.Dropdown(options=[("each map on its own", "map"), ("one for all maps", "shared")],
                                            value=self.scale, description="scale", layout=widgets.Layout(width="260px"))
        self._pair_menu = widgets.Dropdown(options=list(PAIRS), value=self.pair, description="sentences",
                                           layout=widgets.Layout(width="190px",
                                                                 display=None if self.sentence_b_start else "none"))
        # at its own size, not stretched: the clickable cells lie over the maps
        self._image = widgets.Image(format="svg+xml", layout=widgets.Layout(width=f"{self.width}px", max_width="none"))
        self._syncing = False
        self._placed = None

        def from_widgets(_=None):
            if not self._syncing:
                self.select(layer=self._layer_menu.value, head=self._head_menu.value, scale=self._scale_menu.value,
                            pair=self._pair_menu.value)

        for menu in (self._layer_menu, self._head_menu, self._scale_menu, self._pair_menu):
            menu.observe(from_widgets, names="value")
        self._picture = widgets.Box()
        self._draw()
        return widgets.VBox([widgets.HBox([self._layer_menu, self._head_menu, self._scale_menu, self._pair_menu]),
                             self._picture, self.head_view.widget])

    def _draw(self) -> None:
        """Redraw the grid picture; lay the clickable maps anew where the grid moved (a sentence filter)."""
        L, H = self.arr.shape[:2]
        self._image.value = self.svg().encode()
        place = (self.grid_top, self.tile_w, self.tile_h)
        if place != self._placed:
            self._placed = place
            self.cell_regions = ClickRegions(L, H, x=MARGIN_LEFT, y=self.grid_top, cell_width=self.tile_w,
                                             cell_height=self.tile_h, gap=GAP,
                                             tooltips=[f"layer {i // H}, head {i % H}" for i in range(L * H)],
                                             on_click=lambda i: self.select(layer=i // H, head=i % H))
            self._image.layout.width = f"{self.width}px"
            self._picture.children = [picture_with_regions(self._image, [self.cell_regions])]

    def _sync_widget(self) -> None:
        self._syncing = True
        try:
            self._layer_menu.value, self._head_menu.value = self.layer, self.head
            self._scale_menu.value, self._pair_menu.value = self.scale, self.pair
        finally:
            self._syncing = False
        self._draw()


def _check_head(head, n_head: int) -> None:
    if not isinstance(head, (int, np.integer)) or not -n_head <= head < n_head:
        raise ValueError(f"head={head!r} out of range: there are {n_head} heads (0..{n_head - 1})")


def model_view(attention, tokens: Sequence[str] | None = None, key_tokens: Sequence[str] | None = None, *,
               layer: int = 0, head: int = 0, scale: str = "map", sentence_b_start: int | None = None,
               pair: str = "all", encoder_tokens: Sequence[str] | None = None,
               decoder_tokens: Sequence[str] | None = None, part: str = "cross", batch_index: int = 0,
               title: str | None = None) -> ModelView | EncoderDecoderView:
    """The model view: every layer x head as a small map in one grid, with (layer, head) open in a head view.

    attention, tokens, key_tokens: as `head_view` (a list of per-layer weights, a Hugging Face
    `attentions`, a tensor (L, B, H, Tq, Tk)...). scale: "map" (each map to its own largest weight) or
    "shared" (one scale for all). sentence_b_start, pair: a sentence-pair filter, as `head_view`.
    An encoder-decoder output gives its three parts with a selector (encoder_tokens, decoder_tokens, part).
    Returns a ModelView (an EncoderDecoderView for an encoder-decoder output): the cell's last line shows
    it; `.select(layer=, head=)` opens another map; `save_html`, `save_png`, `save_svg` export it.
    """
    if is_encoder_decoder(attention):
        parts = encoder_decoder_parts(attention, tokens, key_tokens, encoder_tokens, decoder_tokens, batch_index)
        views = {name: ModelView(arr, q, k, layer=layer, head=head, scale=scale, title=title)
                 for name, (arr, q, k) in parts.items()}
        return EncoderDecoderView(views, part=part, kind="model view", title=title)
    check_no_part_tokens(encoder_tokens, decoder_tokens)
    arr, q_labels, k_labels = attention_with_labels(attention, tokens, key_tokens, batch_index)
    return ModelView(arr, q_labels, k_labels, layer=layer, head=head, scale=scale,
                     sentence_b_start=sentence_b_start, pair=pair, title=title)


def plot_model_view(attention, tokens: Sequence[str] | None = None, key_tokens: Sequence[str] | None = None,
                    **kwargs) -> Figure:
    """The model view's grid as a static matplotlib Figure (same arguments as `model_view`)."""
    return model_view(attention, tokens, key_tokens, **kwargs).figure()
