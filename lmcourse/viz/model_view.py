"""The model view: every layer x head of a model as a small attention map in one grid; choose one to open
it in the head view below the grid.

Each map is scaled to its own largest weight (so a sharp head and a spread-out one both show their
pattern), masked entries are grey, and long sequences are max-pooled so a one-token-wide diagonal
(a previous-token head) stays visible. The grid is one image, drawn once; a new choice only moves
the frame around the chosen map and redraws the head view.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lmcourse.viz.attention import attention_with_labels, is_causal
from lmcourse.viz.head_view import HeadView
from lmcourse.viz.views import View

__all__ = ["ModelView", "model_view", "model_view_grid", "plot_model_view"]

GAP = 4             # px between maps
MARGIN_LEFT = 58    # px for the layer labels
MARGIN_TOP = 40     # px for the caption and the head labels
MASKED_GREY = np.array([217, 217, 217, 255], dtype=np.uint8)


def _resize_axis(n: int, size: int) -> np.ndarray:
    """Start index of each of `size` bins over n positions (for np.maximum.reduceat), or repeats when size > n."""
    return np.floor(np.arange(size) * n / size).astype(int)


def model_view_grid(arr: np.ndarray, tile: int | None = None, cmap: str = "viridis") -> tuple[np.ndarray, int, int]:
    """All maps of arr (layers, heads, Tq, Tk) side by side as one RGBA image (uint8), layers down, heads across.

    Each map is divided by its own largest weight, then coloured; NaN (masked) and a causal model's future are grey. tile: the longer
    side of a map in pixels (default: about 900 px for the whole grid, at most 96 per map). Longer maps are
    max-pooled, shorter ones repeated. Returns (image, map height, map width) in pixels.
    """
    L, H, Tq, Tk = arr.shape
    if is_causal(arr):  # the future a causal model may not see: grey, as in plot_attention
        arr = np.where(np.triu(np.ones((Tq, Tk), dtype=bool), 1), np.nan, arr)
    tile = tile or int(max(16, min(96, 900 // max(L, H))))
    scale = tile / max(Tq, Tk)
    th, tw = max(1, round(Tq * scale)), max(1, round(Tk * scale))
    masked = np.isnan(arr)
    vals = np.where(masked, 0.0, arr)
    peak = vals.max(axis=(-2, -1), keepdims=True)
    vals = vals / np.where(peak > 0, peak, 1.0)
    vals = np.where(masked, np.nan, vals)
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


def _check_head(head, n_heads: int) -> None:
    if not isinstance(head, (int, np.integer)) or not -n_heads <= head < n_heads:
        raise ValueError(f"head={head!r} out of range: there are {n_heads} heads (0..{n_heads - 1})")


class ModelView(View):
    """The model view of weights (layers, heads, Tq, Tk): the grid, and the chosen map open in `head_view`
    (a HeadView). Change the choice with `select(layer=, head=)`."""

    def __init__(self, arr: np.ndarray, q_labels: Sequence[str], k_labels: Sequence[str], *, layer: int = 0,
                 head: int = 0, title: str | None = None):
        self.arr, self.title = arr, title
        _check_head(head, arr.shape[1])
        self.grid, self.tile_h, self.tile_w = model_view_grid(arr)
        buf = io.BytesIO()
        matplotlib.image.imsave(buf, self.grid, format="png")
        self._grid_b64 = base64.b64encode(buf.getvalue()).decode()
        self.head_view = HeadView(arr, q_labels, k_labels, layer=layer, heads=[head], title=title)
        self.layer, self.head = self.head_view.layer, self.head_view.heads[0]
        self.select(layer=layer, head=head)

    def select(self, *, layer: int | None = None, head: int | None = None) -> ModelView:
        """Choose the map to open: its frame moves in the grid and the head view shows that layer and head."""
        H = self.arr.shape[1]
        if head is not None:
            _check_head(head, H)
        self.head_view.select(layer=layer, heads=None if head is None else [head])
        self.layer = self.head_view.layer
        self.head = int(head) % H if head is not None else self.head
        if self._widget is not None:
            self._sync_widget()
        return self

    def caption(self) -> str:
        L, H, Tq, Tk = self.arr.shape
        head = f"{self.title}: " if self.title else ""
        return (f"{head}model view, {L} layers x {H} heads, {Tq} x {Tk} tokens; open: layer {self.layer}, "
                f"head {self.head}")

    def _cell_origin(self, layer: int, head: int) -> tuple[int, int]:
        return MARGIN_LEFT + head * (self.tile_w + GAP), MARGIN_TOP + layer * (self.tile_h + GAP)

    def svg(self) -> str:
        """The grid as SVG: the maps (one inline PNG), layer and head labels, a frame round the open map."""
        L, H = self.arr.shape[:2]
        gh, gw = self.grid.shape[:2]
        width, height = MARGIN_LEFT + gw + 8, MARGIN_TOP + gh + 8
        x, y = self._cell_origin(self.layer, self.head)
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                 f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
                 '<rect width="100%" height="100%" fill="white"/>',
                 f'<text x="4" y="14" font-size="12" fill="#444">{html.escape(self.caption())}</text>',
                 f'<image x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{gw}" height="{gh}" '
                 f'style="image-rendering:pixelated" href="data:image/png;base64,{self._grid_b64}"/>']
        parts += [f'<text x="{self._cell_origin(0, h)[0] + self.tile_w / 2:.0f}" y="{MARGIN_TOP - 6}" '
                  f'text-anchor="middle">{h}</text>' for h in range(H)]
        parts += [f'<text x="{MARGIN_LEFT - 6}" y="{self._cell_origin(layer, 0)[1] + self.tile_h / 2:.0f}" '
                  f'text-anchor="end" dominant-baseline="central">layer {layer}</text>' for layer in range(L)]
        parts += [f'<rect class="open" x="{x - 2}" y="{y - 2}" width="{self.tile_w + 4}" height="{self.tile_h + 4}" '
                  'fill="none" stroke="#d62728" stroke-width="3"/>', "</svg>"]
        return "\n".join(parts)

    def html_body(self) -> str:
        return f"<figure>{self.svg()}</figure>\n<figure>{self.head_view.html_body()}</figure>"

    def figure(self, dpi: int = 100) -> Figure:
        """The grid as a matplotlib Figure, the open map framed. Not kept by pyplot."""
        L, H = self.arr.shape[:2]
        gh, gw = self.grid.shape[:2]
        fig = Figure(figsize=((gw + MARGIN_LEFT + 20) / dpi, (gh + MARGIN_TOP + 30) / dpi), dpi=dpi,
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
        fig.suptitle(self.caption(), fontsize=9)
        return fig

    def _build_widget(self):
        import ipywidgets as widgets  # core widgets only: no JavaScript from a CDN

        L, H = self.arr.shape[:2]
        self._layer_menu = widgets.Dropdown(options=list(range(L)), value=self.layer, description="open layer",
                                            layout=widgets.Layout(width="170px"))
        self._head_menu = widgets.Dropdown(options=list(range(H)), value=self.head, description="head",
                                           layout=widgets.Layout(width="150px"))
        width = MARGIN_LEFT + self.grid.shape[1] + 8  # at its own size, not stretched to the output's width
        self._image = widgets.Image(format="svg+xml", layout=widgets.Layout(width=f"{width}px", max_width="none"))
        self._syncing = False

        def from_widgets(_=None):
            if not self._syncing:
                self.select(layer=self._layer_menu.value, head=self._head_menu.value)

        self._layer_menu.observe(from_widgets, names="value")
        self._head_menu.observe(from_widgets, names="value")
        self._image.value = self.svg().encode()
        return widgets.VBox([widgets.HBox([self._layer_menu, self._head_menu]), self._image, self.head_view.widget])

    def _sync_widget(self) -> None:
        self._syncing = True
        try:
            self._layer_menu.value, self._head_menu.value = self.layer, self.head
        finally:
            self._syncing = False
        self._image.value = self.svg().encode()


def model_view(attention, tokens: Sequence[str] | None = None, key_tokens: Sequence[str] | None = None, *,
               layer: int = 0, head: int = 0, batch_index: int = 0, title: str | None = None) -> ModelView:
    """The model view: every layer x head as a small map in one grid, with (layer, head) open in a head view.

    attention, tokens, key_tokens: as `head_view` (a list of per-layer weights, a Hugging Face
    `attentions`, a tensor (L, B, H, Tq, Tk)...). Returns a ModelView: the cell's last line shows it;
    `.select(layer=, head=)` opens another map; `save_html`, `save_png`, `save_svg` export it.
    """
    arr, q_labels, k_labels = attention_with_labels(attention, tokens, key_tokens, batch_index)
    return ModelView(arr, q_labels, k_labels, layer=layer, head=head, title=title)


def plot_model_view(attention, tokens: Sequence[str] | None = None, key_tokens: Sequence[str] | None = None,
                    **kwargs) -> Figure:
    """The model view's grid as a static matplotlib Figure (same arguments as `model_view`)."""
    return model_view(attention, tokens, key_tokens, **kwargs).figure()
