"""The lines of a head view: which there are, where they go, and two drawings of them.

`head_view_lines` says which lines there are (query row, key row, head, weight); `Layout` says where the
token rows sit, in pixels. `svg_lines` draws them as SVG paths (the live widget and the exports: sharp,
redrawn in milliseconds); `raster_lines` draws them into an image with numpy (the static PNG: one image
instead of one matplotlib artist per line, so 100,000 lines take a fraction of a second).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import NamedTuple

import matplotlib
import numpy as np

__all__ = ["Layout", "Lines", "head_colors", "head_view_lines", "lines_group", "raster_lines", "svg_lines",
           "svg_tokens"]

ROW = 18          # px per token row
GAP = 180         # px between the two token columns, where the lines run
TOP = 28          # px above the first row, for the caption
CHAR = 7.2        # px per character of a 12 px sans-serif label (a generous estimate)
MAX_CHARS = 18    # longer tokens are cut with "…"
LINE_WIDTH = 1.2  # px
SELECTED_FILL = "#ffe08a"
DIM = "#bbbbbb"   # tokens outside the chosen sentence pair
CHUNK = 1024      # (query, key) pairs rasterised at a time
SMOOTH_LINES = 20_000  # above this many lines the SVG is drawn without anti-aliasing (see lines_group)


class Lines(NamedTuple):
    """The lines of a head view, one entry each: query row, key row, head, weight (the line's opacity)."""

    query: np.ndarray   # (N,) int
    key: np.ndarray     # (N,) int
    head: np.ndarray    # (N,) int
    weight: np.ndarray  # (N,) float in (0, 1]


def head_colors(n_head: int) -> list[str]:
    """One colour per head (hex): tab10 for up to 10 heads; beyond, tab20's strong shades first, then its light ones."""
    if n_head <= 10:
        cmap, order = matplotlib.colormaps["tab10"], range(10)
    else:
        cmap, order = matplotlib.colormaps["tab20"], [*range(0, 20, 2), *range(1, 20, 2)]
    order = list(order)
    return [matplotlib.colors.to_hex(cmap(order[h % len(order)])) for h in range(n_head)]


def head_view_lines(arr: np.ndarray, layer: int, heads: Sequence[int], query: int | None = None,
                    key: int | None = None, allowed: np.ndarray | None = None) -> Lines:
    """The lines to draw for one layer of arr (layers, heads, Tq, Tk): one per (head, query, key) with a
    weight above 0, or, when `query` and/or `key` is given, only the lines from that query and into that key.
    allowed: an optional (Tq, Tk) bool mask of the pairs that may be drawn (a sentence-pair filter).
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
    if allowed is not None:
        keep &= allowed
    h, q, k = np.nonzero(keep)
    return Lines(q, k, heads[h], sub[h, q, k])


def _cut(label: str) -> str:
    return label if len(label) <= MAX_CHARS else label[: MAX_CHARS - 1] + "…"


class Layout:
    """Where everything goes, in pixels (y down), shared by the SVG and the raster drawings."""

    def __init__(self, q_labels: Sequence[str], k_labels: Sequence[str]):
        self.q_labels, self.k_labels = [_cut(t) for t in q_labels], [_cut(t) for t in k_labels]
        self.q_width = 12 + CHAR * max(map(len, self.q_labels), default=1)
        self.x0 = self.q_width + 6          # lines start here (right of the query labels)
        self.x1 = self.x0 + GAP             # and end here (left of the key labels)
        self.width = self.x1 + 6 + CHAR * max(map(len, self.k_labels), default=1) + 12
        self.height = TOP + ROW * max(len(q_labels), len(k_labels)) + 6

    def y(self, i):
        """The centre of row i (an int or an array of them), in px from the top."""
        return TOP + ROW * np.asarray(i) + ROW / 2

    def svg_open(self) -> str:
        """The <svg> element's opening and a white background."""
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:.0f}" height="{self.height:.0f}" '
                f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" font-family="sans-serif" font-size="12">\n'
                '<rect width="100%" height="100%" fill="white"/>')


def svg_lines(layout: Layout, lines: Lines, colors: Sequence[str], css_class: str = "") -> list[str]:
    """The lines as SVG paths, one <path> per (head, opacity to 0.01): a few hundred elements instead of one per
    line. Each path has the class h{head} (and css_class), so a stylesheet can hide a head."""
    level = np.rint(lines.weight * 100).astype(int)
    out = []
    starts = [f"M{layout.x0:.0f} {y:.0f}" for y in layout.y(np.arange(len(layout.q_labels)))]
    ends = [f"L{layout.x1:.0f} {y:.0f}" for y in layout.y(np.arange(len(layout.k_labels)))]
    order = np.lexsort((level, lines.head))
    head, level, q, k = lines.head[order], level[order], lines.query[order], lines.key[order]
    cuts = np.flatnonzero((np.diff(head) != 0) | (np.diff(level) != 0)) + 1
    extra = f" {css_class}" if css_class else ""
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(order)]):
        if b <= a or level[a] == 0:
            continue
        d = "".join(starts[i] + ends[j] for i, j in zip(q[a:b].tolist(), k[a:b].tolist()))
        out.append(f'<path class="h{head[a]}{extra}" d="{d}" stroke="{colors[head[a]]}" '
                   f'stroke-opacity="{level[a] / 100:.2f}"/>')
    return out


def lines_group(n_lines: int) -> str:
    """The <g> that holds the lines. Beyond SMOOTH_LINES lines, no anti-aliasing: the browser draws
    tens of thousands of lines several times faster, and at that density the jagged edges do not show."""
    speed = ' shape-rendering="optimizeSpeed"' if n_lines > SMOOTH_LINES else ""
    return f'<g fill="none" stroke-width="{LINE_WIDTH}"{speed}>'


def svg_tokens(layout: Layout, query: int | None, key: int | None, links: Sequence[Sequence[str]] = (),
               dim: Sequence[Sequence[bool]] = ()) -> list[str]:
    """The token labels, the selected ones highlighted. links: per side, a URL fragment per token to wrap it in;
    dim: per side, a flag per token drawn grey (outside the chosen sentence pair)."""
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
            style = (' font-weight="bold"' if i == chosen else "") + (f' fill="{DIM}"' if dim and dim[s][i] else "")
            text = (f'<text class="{side}" x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}" '
                    f'dominant-baseline="central"{style}>{html.escape(label)}</text>')
            out.append(f'<a href="#{links[s][i]}">{text}</a>' if links else text)
    return out


def _box_deposits(y0: np.ndarray, y1: np.ndarray, width: int, height: int,
                  scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For lines from (0, y0) to (width, y1) (P each): in every pixel column, the line's ink spread evenly
    over the rows it crosses, as four deposits into a running sum down the column (fractional ends split).
    Returns (flat pixel index, amount, which line) of the 4 * P * width deposits."""
    slope = (y1 - y0) / width
    ya = y0[:, None] + slope[:, None] * np.arange(width)[None, :]  # (P, W): where a line enters a column ...
    yb = ya + slope[:, None]                                       # ... and where it leaves it
    thick = LINE_WIDTH * scale * np.sqrt(1 + slope**2)[:, None]    # the line's vertical thickness
    lo, hi = np.minimum(ya, yb) - thick / 2, np.maximum(ya, yb) + thick / 2
    density = thick / (hi - lo)  # ink per row, so that each column holds the line's ink
    lo, hi = np.clip(lo, 0, height), np.clip(hi, 0, height)
    col = np.arange(width)[None, :]
    index, amount = [], []
    for edge, sign in ((lo, 1.0), (hi, -1.0)):
        whole = np.floor(edge)
        frac = edge - whole
        index += [(whole * width + col).astype(np.int64), ((whole + 1) * width + col).astype(np.int64)]
        amount += [sign * density * (1 - frac), sign * density * frac]
    which = np.tile(np.repeat(np.arange(len(y0)), width), 4)
    return np.concatenate([i.ravel() for i in index]), np.concatenate([a.ravel() for a in amount]), which


def raster_lines(layout: Layout, lines: Lines, colors: Sequence[str], scale: float = 1.0) -> np.ndarray:
    """The lines drawn into an RGB image (height, GAP, 3) (uint8, both times `scale`) of the band between the
    token columns, on white.

    Each line is LINE_WIDTH px wide and tints what it covers like a filter: a pixel's colour is the product,
    over the lines crossing it, of (1 - weight * (1 - colour)) raised to the share of the pixel the line
    covers: exactly an opacity-`weight` stroke over white where one line covers a pixel. Per pixel column, a
    line's ink is spread evenly over the rows it crosses (a running sum), so the cost grows with the number
    of (query, key) pairs times the band's width, not with how steep the lines are.
    """
    height, width = int(np.ceil(layout.height * scale)), int(round(GAP * scale))
    n_k = len(layout.k_labels)
    rgb = np.array([matplotlib.colors.to_rgb(c) for c in colors])  # (H, 3)
    # Absorbance of each line per channel; lines between the same two tokens (other heads) add up.
    absorb = -np.log1p(-np.clip(lines.weight[:, None] * (1 - rgb[lines.head]), 0, 1 - 1e-6))  # (N, 3)
    pair = lines.query * n_k + lines.key
    pairs, inverse = np.unique(pair, return_inverse=True)
    absorb = np.stack([np.bincount(inverse, absorb[:, c], len(pairs)) for c in range(3)], 1)  # (P, 3)
    deposits = np.zeros(((height + 2) * width, 3))
    for start in range(0, len(pairs), CHUNK):  # in chunks: a few MB of temporaries at a time
        chunk = slice(start, start + CHUNK)
        index, amount, which = _box_deposits(layout.y(pairs[chunk] // n_k) * scale,
                                             layout.y(pairs[chunk] % n_k) * scale, width, height, scale)
        for c in range(3):
            deposits[:, c] += np.bincount(index, amount * absorb[chunk][which, c], len(deposits))
    image = np.exp(-np.cumsum(deposits.reshape(height + 2, width, 3), axis=0)[:height])
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
