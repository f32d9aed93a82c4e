"""What the head view and the model view share: a live widget, a static copy for stored notebooks, exports.

A view draws itself two ways: as SVG (the live widget shows it, `save_svg` and `save_html` write it; redrawn
in milliseconds) and as a matplotlib Figure (`save_png`, and the PNG a notebook stores beside the widget so
GitHub, nbviewer and exported notebooks show the view without a kernel).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from lmcourse.files import atomic_write_text

__all__ = ["View", "figure_png", "palette_url", "png_data_url", "save_html", "save_png", "save_svg"]


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (no pyplot: nothing is shown or kept open)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def png_data_url(image: np.ndarray) -> str:
    """An RGB(A) uint8 image (h, w, 3 or 4) as a data: URL of a PNG (for an SVG <image> or an <img>)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def palette_url(values: np.ndarray, cmap: str) -> str:
    """values (h, w) in [0, 1] (NaN: masked, grey) as a data: URL of a palette PNG coloured by cmap: one byte
    per value, so a page can hold hundreds of maps."""
    index = np.where(np.isnan(values), 255, np.rint(np.clip(np.nan_to_num(values), 0, 1) * 254)).astype(np.uint8)
    colours = matplotlib.colormaps[cmap](np.linspace(0, 1, 255), bytes=True)[:, :3]
    palette = np.vstack([colours, [[217, 217, 217]]]).astype(np.uint8)
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette.ravel().tolist())
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class View:
    """Base of the views (head, model, neuron, encoder-decoder): subclasses give `svg()`, `figure()`, `caption()`,
    `html_body(prefix)` and `_build_widget()`."""

    _widget = None

    def svg(self) -> str:
        raise NotImplementedError

    def figure(self) -> Figure:
        raise NotImplementedError

    def caption(self) -> str:
        raise NotImplementedError

    def html_body(self, prefix: str = "view") -> str:
        """What `save_html` puts in the page (element ids start with prefix): here the view's SVG."""
        return self.svg()

    def _build_widget(self):
        raise NotImplementedError

    @property
    def widget(self):
        """The live ipywidgets UI (built on first use; core widgets only, no JavaScript from outside)."""
        if self._widget is None:
            self._widget = self._build_widget()
        return self._widget

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        # A live kernel shows the widget; a stored notebook read without one (GitHub, nbviewer, nbconvert)
        # shows the PNG of the view as it was first drawn, and its text says what it is.
        bundle = self.widget._repr_mimebundle_()
        bundle["image/png"] = base64.b64encode(figure_png(self.figure())).decode()
        bundle["text/plain"] = self.caption()
        return bundle

    def __repr__(self) -> str:
        return self.caption()


def _check_view(view) -> None:
    if not isinstance(view, View):
        raise ValueError(f"view must be what head_view(...), model_view(...) or neuron_view(...) returns, got "
                         f"{type(view).__name__}")


def save_svg(view: View, path: str | Path) -> Path:
    """Write the view as it is now to an SVG file (vector: lines stay sharp on slides). Returns the path."""
    _check_view(view)
    path = Path(path)
    atomic_write_text(path, view.svg())
    return path


def save_png(view: View, path: str | Path, dpi: int = 150) -> Path:
    """Write the view as it is now to a PNG file (drawn by matplotlib at `dpi`). Returns the path."""
    _check_view(view)
    path = Path(path)
    view.figure().savefig(path, format="png", dpi=dpi)
    return path


def save_html(view: View, path: str | Path, title: str | None = None) -> Path:
    """Write the view to one self-contained HTML file: inline SVG (images inside it as base64 PNG), no
    script, nothing from the network; it opens in any browser without a kernel, in the state the view is in,
    and stays interactive through plain CSS: a head view's tokens, heads and layers, a model view's maps
    (each opens enlarged), a neuron view's query token, an encoder-decoder view's parts. Returns the path."""
    _check_view(view)
    path = Path(path)
    title = html.escape(title or view.caption())
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title>"
            "<style>body{font-family:sans-serif;margin:1em;color:#222} figure{margin:1em 0}</style></head>\n"
            f"<body><h3>{title}</h3>\n{view.html_body()}\n"
            "<p style=\"color:#666;font-size:small\">Exported by lmcourse.viz.save_html.</p></body></html>\n")
    atomic_write_text(path, page)
    return path
