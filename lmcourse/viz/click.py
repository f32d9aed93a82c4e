"""Clickable places on a picture in a widget, with core ipywidgets only (no JavaScript of our own).

ipywidgets' Image reports no clicks; a ToggleButtons widget does. `ClickRegions` lays a ToggleButtons'
buttons, made transparent, over a rectangle of the picture as a grid of cells (a token column: n rows x
1 column; a model view: layers x heads), and calls back with the cell clicked. A <style> in an HTML widget
places them (`picture_with_regions`). The picture keeps its labels and highlights; the buttons only say
where the click was. Each cell has a tooltip (the token, or "layer 3, head 5").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

__all__ = ["ClickRegions", "picture_with_regions"]

_ids = itertools.count()


class ClickRegions:
    """A grid of n_rows x n_cols clickable cells, the top-left one at (x, y) px of the picture, each
    cell_width x cell_height px, `gap` px apart. on_click(i) gets the cell's index, row by row."""

    def __init__(self, n_rows: int, n_cols: int, *, x: float, y: float, cell_width: float, cell_height: float,
                 on_click: Callable[[int], None], gap: float = 0, tooltips: Sequence[str] | None = None):
        import ipywidgets as widgets

        n = n_rows * n_cols
        self.css_class = f"lm-click-{next(_ids)}"
        self.buttons = widgets.ToggleButtons(options=[(str(i), i) for i in range(n)], index=None,
                                             tooltips=list(tooltips) if tooltips is not None else [])
        self.buttons.add_class(self.css_class)
        w, h = f"{cell_width:.1f}px", f"{cell_height:.1f}px"
        place = f".lm-picture .{self.css_class}"  # more specific than ipywidgets' and lumino's own rules
        self.css = (
            f"{place}{{position:absolute;left:{x:.1f}px;top:{y:.1f}px;width:auto;height:auto;margin:0;padding:0;"
            "overflow:visible;z-index:1}"
            f"{place}>div{{display:grid;grid-template-columns:repeat({n_cols},{w});grid-auto-rows:{h};gap:{gap}px}}"
            f"{place} button.widget-toggle-button{{width:{w};height:{h};margin:0;padding:0;border:0;min-width:0;"
            "background:transparent;box-shadow:none;outline:none;color:transparent;font-size:0;line-height:0}"
            f"{place} button.widget-toggle-button:hover{{background:rgba(0,0,0,.08);cursor:pointer}}")

        def clicked(change):
            if change["new"] is None:
                return
            self.buttons.index = None  # the next click on the same cell is a change again
            on_click(change["new"])

        self.buttons.observe(clicked, names="index")

    def click(self, i: int) -> None:
        """Click cell i from Python (what the browser does; for tests)."""
        self.buttons.index = i


def picture_with_regions(image, regions: Sequence[ClickRegions]):
    """A Box holding the picture (an ipywidgets Image at its natural size) with the regions over it."""
    import ipywidgets as widgets

    style = widgets.HTML("<style>.lm-picture{position:relative} .lm-picture>.widget-image{margin:0}"
                         + "".join(r.css for r in regions) + "</style>",
                         layout=widgets.Layout(display="none"))
    box = widgets.Box([image, *(r.buttons for r in regions), style])
    box.add_class("lm-picture")
    return box
