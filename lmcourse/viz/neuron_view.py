"""The neuron view: how one head's weights for one query token come about, vector by vector.

For the query token i of a head: its query vector q (one coloured cell per dimension, red positive, blue
negative), every key vector k_j, their element-wise product q * k_j (its sum is the dot product), the
score q . k_j * scale, and the softmax over the scores: the head's attention weights, read from the model
itself (masked keys, e.g. a causal model's future, are grey and get 0). A previous-token head shows here
as the products of q_i with k_{i-1} summing higher than any other.

`neuron_view(model, ids, tokens)` reads q and k with `capture_queries_keys` (our GPT, a Hugging Face BERT
or GPT-2); `NeuronView` draws them: SVG for the widget and `save_html`, matplotlib for `save_png`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lmcourse.viz.attention import clean_token, is_causal
from lmcourse.viz.click import ClickRegions, picture_with_regions
from lmcourse.viz.queries_keys import QueriesKeys, capture_queries_keys
from lmcourse.viz.views import View, palette_url

__all__ = ["NeuronView", "neuron_view"]

ROW = 18       # px per key row
TOP = 62       # px above the query row: the caption and the column names
CHAR = 7.2     # px per character of a 12 px label
BAR = 90       # px of a score or softmax bar at its largest
CMAP = "RdBu_r"
MASKED = "#d9d9d9"


class NeuronView(View):
    """The neuron view of captured queries and keys (a `QueriesKeys`) for one layer, head and query token.
    Change it with `select(layer=, head=, query=)`."""

    def __init__(self, qk: QueriesKeys, q_labels: Sequence[str], k_labels: Sequence[str], *, layer: int = 0,
                 head: int = 0, query: int | None = None, title: str | None = None):
        L, H, Tq, Tk = qk.weights.shape
        if len(q_labels) != Tq or len(k_labels) != Tk:
            raise ValueError(f"tokens: {len(q_labels)} query and {len(k_labels)} key labels for {Tq} queries and "
                             f"{Tk} keys")
        if Tq == 0 or Tk == 0:
            raise ValueError("the input has no tokens: a neuron view needs at least one")
        self.qk, self.q_labels, self.k_labels, self.title = qk, list(q_labels), list(k_labels), title
        self.layer, self.head, self.query = 0, 0, Tq - 1
        self.select(layer=layer, head=head, query=Tq - 1 if query is None else query)

    def select(self, *, layer: int | None = None, head: int | None = None, query: int | None = None) -> NeuronView:
        """Show another layer, head or query token (arguments left out keep their value). Returns self."""
        L, H, Tq, _ = self.qk.weights.shape
        for name, value, n in (("layer", layer, L), ("head", head, H), ("query", query, Tq)):
            if value is None:
                continue
            if not isinstance(value, (int, np.integer)) or not -n <= value < n:
                raise ValueError(f"{name}={value!r} out of range: there are {n} (0..{n - 1})")
            setattr(self, name, int(value) % n)
        if self._widget is not None:
            self._sync_widget()
        return self

    def numbers(self, query: int | None = None) -> dict[str, np.ndarray]:
        """What the view shows for one query token (default: the selected one): q (head_dim,), keys (Tk,
        head_dim), products q * k (Tk, head_dim), scores q . k * scale (Tk,; NaN where masked), weights (Tk,)."""
        i = self.query if query is None else query
        q = self.qk.queries[self.layer, self.head, i]
        keys = self.qk.keys[self.layer, self.head]
        weights = np.nan_to_num(self.qk.weights[self.layer, self.head, i], nan=0.0)
        products = q[None, :] * keys
        scores = products.sum(-1) * self.qk.scale
        # A causal model's future is masked whatever its score; elsewhere a weight of exactly 0 marks a masked key,
        # unless the key scores so far below the best that the softmax underflowed to 0.
        future = np.arange(scores.size) > i if is_causal(self.qk.weights) else np.zeros(scores.size, dtype=bool)
        top = scores[~future].max()
        masked = future | ((weights == 0) & ~np.isclose(np.exp(scores - top), 0))
        return {"q": q, "keys": keys, "products": np.where(masked[:, None], np.nan, products),
                "scores": np.where(masked, np.nan, scores), "weights": weights}

    def caption(self) -> str:
        head = f"{self.title}: " if self.title else ""
        L, H = self.qk.weights.shape[:2]
        return (f"{head}neuron view, layer {self.layer} of {L}, head {self.head} of {H}, query {self.query} "
                f"{self.q_labels[self.query]!r}")

    # -- geometry -----------------------------------------------------------------------------------------
    @property
    def cell(self) -> int:
        """px per vector dimension."""
        return int(np.clip(round(256 / self.qk.queries.shape[-1]), 2, 8))

    def columns(self) -> dict[str, float]:
        """The x of each column: labels (right edge), key vectors, products, scores (bar centre), softmax."""
        label = 12 + CHAR * max(map(len, [*self.k_labels, "query"]))
        vec = self.cell * self.qk.queries.shape[-1]
        keys = label + 8
        products = keys + vec + 20
        scores = products + vec + 20 + BAR / 2
        softmax = scores + BAR / 2 + 60
        return {"label": label, "keys": keys, "products": products, "scores": scores, "softmax": softmax,
                "width": softmax + BAR + 60, "vec": vec}

    def row_y(self, j) -> float:
        """The top of key row j (the query row is above the first)."""
        return TOP + ROW + 8 + ROW * np.asarray(j)

    # -- renderers ----------------------------------------------------------------------------------------
    def _vector_url(self, values: np.ndarray, top: float) -> str:
        return palette_url(np.atleast_2d(values) / (2 * top) + 0.5 if top > 0 else np.full(np.atleast_2d(values).shape, 0.5), CMAP)

    def _query_parts(self, i: int) -> list[str]:
        """The SVG that depends on the query token: q, the products, the score and softmax bars."""
        c, n = self.columns(), self.numbers(i)
        Tk = len(self.k_labels)
        top_qk = float(np.nanmax(np.abs(np.r_[n["q"], n["keys"].ravel()])))
        top_p = float(np.nanmax(np.abs(n["products"]), initial=0.0))
        top_s = float(np.nanmax(np.abs(n["scores"]), initial=0.0)) or 1.0
        y0, h = self.row_y(0), ROW * Tk
        parts = [f'<rect x="4" y="{self.row_y(i) + 1:.0f}" width="{c["label"] - 2:.0f}" height="{ROW - 2}" '
                 'fill="#ffe08a"/>',
                 f'<image x="{c["keys"]:.0f}" y="{TOP + 2}" width="{c["vec"]}" height="{ROW - 4}" preserveAspectRatio="none" '
                 f'style="image-rendering:pixelated" href="{self._vector_url(n["q"], top_qk)}"/>',
                 f'<text x="{c["label"]:.0f}" y="{TOP + ROW / 2:.0f}" text-anchor="end" dominant-baseline="central" '
                 f'font-weight="bold">q: {html.escape(self.q_labels[i])}</text>',
                 f'<image x="{c["products"]:.0f}" y="{y0:.0f}" width="{c["vec"]}" height="{h}" preserveAspectRatio="none" '
                 f'style="image-rendering:pixelated" href="{self._vector_url(n["products"], top_p)}"/>']
        for j in range(Tk):
            y = self.row_y(j)
            s, w = n["scores"][j], n["weights"][j]
            if np.isnan(s):
                parts.append(f'<text x="{c["scores"]:.0f}" y="{y + ROW / 2:.0f}" text-anchor="middle" '
                             f'dominant-baseline="central" fill="#999">masked</text>')
            else:
                length = BAR / 2 * s / top_s
                parts.append(f'<rect x="{min(c["scores"], c["scores"] + length):.1f}" y="{y + 3:.0f}" '
                             f'width="{abs(length):.1f}" height="{ROW - 6}" fill="{"#d6604d" if s > 0 else "#4393c3"}"/>')
            parts.append(f'<rect x="{c["softmax"]:.0f}" y="{y + 3:.0f}" width="{BAR * w:.1f}" height="{ROW - 6}" '
                         'fill="#2ca02c"/>'
                         f'<text x="{c["softmax"] + BAR * w + 4:.1f}" y="{y + ROW / 2:.0f}" dominant-baseline="central" '
                         f'font-size="11">{w:.2f}</text>')
        return parts

    def _fixed_parts(self, links: Sequence[str] = ()) -> list[str]:
        """The SVG that stays when the query token changes: column names, key labels, key vectors."""
        c, n = self.columns(), self.numbers()
        Tk = len(self.k_labels)
        top_qk = float(np.nanmax(np.abs(np.r_[n["q"], n["keys"].ravel()])))
        names = [("keys", "key vectors k"), ("products", "q * k (element-wise)")]
        parts = [f'<text x="{c[col]:.0f}" y="{TOP - 8}" fill="#444">{text}</text>' for col, text in names]
        parts += [f'<text x="{c["scores"]:.0f}" y="{TOP - 8}" fill="#444" text-anchor="middle">q . k x scale</text>',
                  f'<text x="{c["softmax"]:.0f}" y="{TOP - 8}" fill="#444">softmax</text>',
                  f'<line x1="{c["scores"]:.0f}" x2="{c["scores"]:.0f}" y1="{self.row_y(0):.0f}" '
                  f'y2="{self.row_y(Tk):.0f}" stroke="#888"/>',
                  f'<image x="{c["keys"]:.0f}" y="{self.row_y(0):.0f}" width="{c["vec"]}" height="{ROW * Tk}" '
                  f'preserveAspectRatio="none" style="image-rendering:pixelated" '
                  f'href="{self._vector_url(n["keys"], top_qk)}"/>']
        for j, label in enumerate(self.k_labels):
            text = (f'<text x="{c["label"]:.0f}" y="{self.row_y(j) + ROW / 2:.0f}" text-anchor="end" '
                    f'dominant-baseline="central">{html.escape(label)}</text>')
            parts.append(f'<a href="#{links[j]}">{text}</a>' if links else text)
        return parts

    def _svg_open(self, header: str) -> list[str]:
        c = self.columns()
        width, height = c["width"], self.row_y(len(self.k_labels)) + 8
        return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
                f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
                '<rect width="100%" height="100%" fill="white"/>',
                f'<text x="4" y="16" fill="#444">{html.escape(header)}</text>']

    def svg(self) -> str:
        """The view as an SVG document (vectors as small inline PNGs, a pixel per dimension)."""
        L, H = self.qk.weights.shape[:2]
        header = f"layer {self.layer} · head {self.head} · query {self.query}"
        # the query's parts first: its highlight lies under the token labels
        return "\n".join([*self._svg_open(header), *self._query_parts(self.query), *self._fixed_parts(), "</svg>"])

    def html_body(self, prefix: str = "nv") -> str:
        """The view for `save_html`, for its layer and head: click a token to make it the query (CSS :target);
        it opens on the view's query token."""
        p, Tq = prefix, len(self.q_labels)
        links = [f"{p}-q{i}" for i in range(Tq)] if self.q_labels == self.k_labels else ()
        css = [f"#{p} .nq{{display:none}} #{p} .tgt{{display:none}} #{p} a{{cursor:pointer}}",
               f"#{p}:not(:has(.tgt:target)) .nq{self.query}{{display:inline}}"]
        css += [f"#{p}:has(#{p}-q{i}:target) .nq{i}{{display:inline}}" for i in range(Tq)]
        groups = [f'<g class="nq nq{i}">{"".join(self._query_parts(i))}</g>' for i in range(Tq)]
        header = f"layer {self.layer} · head {self.head} · click a token to make it the query"
        targets = [f'<span class="tgt" id="{p}-q{i}"></span>' for i in range(Tq)]
        return "\n".join([f"<style>{' '.join(css)}</style>", f'<div id="{p}">', *targets,
                          *self._svg_open(header), *groups, *self._fixed_parts(links), "</svg></div>"])

    def figure(self, dpi: int = 100) -> Figure:
        """The view as a matplotlib Figure: one image per panel (q, keys, products), bars for scores and
        softmax. Not kept by pyplot."""
        n, Tk = self.numbers(), len(self.k_labels)
        fig = Figure(figsize=(11, 1.2 + 0.22 * Tk), dpi=dpi, layout="constrained")
        axes = fig.subplots(2, 4, height_ratios=[1, max(Tk, 1)], width_ratios=[3, 3, 1.5, 1.5], sharey="row")
        top_qk = float(np.nanmax(np.abs(np.r_[n["q"], n["keys"].ravel()])))
        top_p = float(np.nanmax(np.abs(n["products"]), initial=0.0)) or 1.0
        axes[0, 0].imshow(n["q"][None], cmap=CMAP, vmin=-top_qk, vmax=top_qk, aspect="auto")
        axes[0, 0].set_yticks([0], [f"q: {self.q_labels[self.query]}"])
        axes[1, 0].imshow(n["keys"], cmap=CMAP, vmin=-top_qk, vmax=top_qk, aspect="auto")
        masked = matplotlib.colormaps[CMAP].with_extremes(bad="#d9d9d9")  # a masked key's products (NaN): grey
        axes[1, 1].imshow(n["products"], cmap=masked, vmin=-top_p, vmax=top_p, aspect="auto")
        rows = np.arange(Tk)
        axes[1, 2].barh(rows, np.nan_to_num(n["scores"]), color=np.where(n["scores"] > 0, "#d6604d", "#4393c3"))
        axes[1, 3].barh(rows, n["weights"], color="#2ca02c")
        axes[1, 0].set_yticks(rows, self.k_labels, fontsize=8)
        for ax, name in zip(axes[1], ("key vectors k (dimension)", "q * k (dimension)", "q . k x scale", "softmax")):
            ax.set_xlabel(name)
        for ax in axes[1, :2]:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # dimensions are whole numbers
        for ax in axes[0, 1:]:
            ax.axis("off")
        axes[0, 0].set_xticks([])
        fig.suptitle(self.caption(), fontsize=9)
        return fig

    # -- the widget ---------------------------------------------------------------------------------------
    def _build_widget(self):
        import ipywidgets as widgets

        L, H, Tq, _ = self.qk.weights.shape
        self._menus = {name: widgets.Dropdown(options=options, value=getattr(self, name), description=name,
                                              layout=widgets.Layout(width=width))
                       for name, options, width in (("layer", list(range(L)), "150px"), ("head", list(range(H)), "150px"),
                                                    ("query", [(f"{i}: {t}", i) for i, t in enumerate(self.q_labels)],
                                                     "240px"))}
        self._image = widgets.Image(format="svg+xml",
                                    layout=widgets.Layout(width=f"{self.columns()['width']:.0f}px", max_width="none"))
        self._syncing = False

        def from_widgets(_=None):
            if not self._syncing:
                self.select(**{name: menu.value for name, menu in self._menus.items()})

        for menu in self._menus.values():
            menu.observe(from_widgets, names="value")
        regions = [ClickRegions(len(self.k_labels), 1, x=0, y=self.row_y(0), cell_width=self.columns()["label"],
                                cell_height=ROW, tooltips=self.k_labels, on_click=lambda i: self.select(query=i))]
        self.token_regions = regions if self.q_labels == self.k_labels else []
        self._image.value = self.svg().encode()
        return widgets.VBox([widgets.HBox(list(self._menus.values())),
                             picture_with_regions(self._image, self.token_regions)])

    def _sync_widget(self) -> None:
        self._syncing = True
        try:
            for name, menu in self._menus.items():
                menu.value = getattr(self, name)
        finally:
            self._syncing = False
        self._image.value = self.svg().encode()


def neuron_view(model_or_qk, input_ids=None, tokens: Sequence[str] | None = None, *, layer: int = 0, head: int = 0,
                query: int | None = None, batch_index: int = 0, title: str | None = None, **kwargs) -> NeuronView:
    """The neuron view of one head for one query token: q, every k, q * k, the scores and the softmax.

    model_or_qk: a course model (our GPT, an Encoder) or a Hugging Face BERT / GPT-2 loaded with
    attn_implementation="eager", run here on input_ids (B, T) (kwargs go to the model); or the
    `QueriesKeys` that `capture_queries_keys` returned. tokens: the T tokens (default: positions).
    layer, head, query: what to show first (query default: the last token, which sees every key).
    Returns a NeuronView: the cell's last line shows it; `.select(...)` changes it; `save_html` exports it.
    """
    if input_ids is not None and getattr(input_ids, "shape", (1,))[-1] == 0:
        raise ValueError(f"input_ids has no tokens (shape {tuple(input_ids.shape)}): a neuron view needs at least one")
    qk = model_or_qk if isinstance(model_or_qk, QueriesKeys) else capture_queries_keys(
        model_or_qk, input_ids, batch_index=batch_index, **kwargs)
    Tq, Tk = qk.weights.shape[-2:]
    if Tq == 0 or Tk == 0:
        raise ValueError("input_ids has no tokens: a neuron view needs at least one")
    labels = [clean_token(t) for t in tokens] if tokens is not None else [str(i) for i in range(Tk)]
    if len(labels) != Tk:
        raise ValueError(f"tokens has {len(labels)} tokens but the model saw {Tk}")
    return NeuronView(qk, labels, labels, layer=layer, head=head, query=query, title=title)
