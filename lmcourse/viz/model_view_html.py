"""A model view in a web page that needs no kernel and no script: click a map in the grid to see it
enlarged with its tokens; the head view of the open map follows (`head_view_html`).

Each map of the grid is covered by the <label> of a hidden radio button; the stylesheet shows the
enlarged picture of the checked one and frames it in the grid. An enlarged map is a palette PNG (one byte
per weight), so even 12 x 12 maps of 128 tokens keep the page to a few MB.
"""

from __future__ import annotations

import html

from lmcourse.viz.views import palette_url

__all__ = ["ENLARGED", "model_view_html"]

ENLARGED = 360    # px: the longer side of an enlarged map
MIN_LABEL_ROW = 9  # px: below this a row is too thin for its token label
CHAR = 6.6        # px per character of an 11 px label


def _enlarged_maps(view) -> str:
    """One SVG with the tokens on both axes and, per map, a hidden group (class m{layer}-{head}) with its picture."""
    maps = view.scaled()  # (L, H, Tq, Tk) in [0, 1] or NaN
    L, H, Tq, Tk = maps.shape
    cell = ENLARGED / max(Tq, Tk)
    q_labels, k_labels = view.pair_labels()
    labelled = cell >= MIN_LABEL_ROW
    left = 10 + CHAR * max(map(len, q_labels)) if labelled else 10
    top = 30 + (CHAR * max(map(len, k_labels)) if labelled else 0)
    w, h = cell * Tk, cell * Tq
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + w + 10:.0f}" height="{top + h + 10:.0f}" '
             'font-family="sans-serif" font-size="11">', '<rect width="100%" height="100%" fill="white"/>']
    if labelled:
        parts += [f'<text x="{left - 4:.0f}" y="{top + cell * (i + 0.5):.1f}" text-anchor="end" '
                  f'dominant-baseline="central">{html.escape(t)}</text>' for i, t in enumerate(q_labels)]
        parts += [f'<text transform="translate({left + cell * (j + 0.5):.1f} {top - 4:.0f}) rotate(-90)" '
                  f'dominant-baseline="central">{html.escape(t)}</text>' for j, t in enumerate(k_labels)]
    for layer in range(L):
        for head in range(H):
            url = palette_url(maps[layer, head], view.cmap)
            parts.append(f'<g class="m m{layer}-{head}"><text x="4" y="16" font-size="12" fill="#444">layer {layer}, '
                         f'head {head} (queries down, keys across)</text><image x="{left:.0f}" y="{top:.0f}" '
                         f'width="{w:.1f}" height="{h:.1f}" style="image-rendering:pixelated" '
                         f'preserveAspectRatio="none" href="{url}"/></g>')
    return "\n".join([*parts, "</svg>"])


def model_view_html(view, prefix: str = "mv") -> str:
    """The HTML of `view` (a ModelView) for `save_html`: the grid with clickable maps, the open map
    enlarged, and its head view. Element ids start with `prefix`."""
    p = prefix
    L, H = view.arr.shape[:2]
    cells = [(layer, head) for layer in range(L) for head in range(H)]
    radios = [f'<input type="radio" name="{p}-cell" id="{p}-c{layer}-{head}" hidden'
              f'{" checked" * ((layer, head) == (view.layer, view.head))}>' for layer, head in cells]
    x0, y0 = view.cell_origin(0, 0)
    labels = [f'<label for="{p}-c{layer}-{head}" title="layer {layer}, head {head}"></label>' for layer, head in cells]
    css = [f"#{p} .m{{display:none}} #{p} .grid{{position:relative;display:inline-block}}",
           f"#{p} .cells{{position:absolute;left:{x0}px;top:{y0}px;display:grid;"
           f"grid-template-columns:repeat({H},{view.tile_w}px);grid-auto-rows:{view.tile_h}px;gap:{view.gap}px}}",
           f"#{p} .cells label{{cursor:pointer}} #{p} .cells label:hover{{outline:2px solid #888}}"]
    css += [f"#{p}-c{layer}-{head}:checked~.maps .m{layer}-{head}{{display:inline}} "
            f"#{p}-c{layer}-{head}:checked~.grid label[for={p}-c{layer}-{head}]{{outline:3px solid #d62728}}"
            for layer, head in cells]
    hint = ("<p style=\"font-size:small;color:#666\">Click a map to see it enlarged below the grid; the head view "
            f"after it shows layer {view.layer}, head {view.head} (its own layer and head buttons choose others).</p>")
    return "\n".join([f"<style>{' '.join(css)}</style>", hint, f'<div id="{p}">', *radios,
                      f'<div class="grid">{view.svg(frame=False)}<div class="cells">{"".join(labels)}</div></div>',
                      f'<div class="maps">{_enlarged_maps(view)}</div>',
                      f"<figure>{view.head_view.html_body(p + '-hv')}</figure>", "</div>"])
