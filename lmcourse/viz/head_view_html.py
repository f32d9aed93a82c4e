"""A head view in a web page that stays interactive without a kernel or a script: plain HTML and CSS.

The page opens in the state the view is in (layer, heads, selected token or query/key, sentence filter).
Layers are radio buttons, heads check boxes; clicking a token targets an anchor (CSS :target), and the
stylesheet shows the lines of the checked layer and heads and of the targeted token. Lines are stored
twice per layer, grouped by query row and by key column: every line is in one row group (all of them
shown = all tokens), and a token's lines both ways are its row group and its column group.
All layers go in the page while it stays under about HTML_LINE_BUDGET path segments (a few MB);
beyond, only the view's layer does, and the page says so.
"""

from __future__ import annotations

from lmcourse.viz.lines import lines_group, svg_lines, svg_tokens

__all__ = ["HTML_LINE_BUDGET", "head_view_html"]

HTML_LINE_BUDGET = 600_000  # line segments in one page: about 10 MB of SVG


def _groups(view, layer: int, n_q: int, n_k: int) -> list[str]:
    """One layer's lines: a group per query row (class r r{i}), then a group per key column (class c c{j};
    in self-attention without the line from j to itself, which its row group already draws)."""
    every = range(view.arr.shape[1])
    out = [f'<g class="L{layer}">']
    for i in range(n_q):
        out += [f'<g class="r r{i}">', *svg_lines(view.layout, view.lines(layer, every, i, None), view.colors), "</g>"]
    for j in range(n_k):
        lines = view.lines(layer, every, None, j)
        if view.self_attention:
            lines = type(lines)(*(a[lines.query != j] for a in lines))
        out += [f'<g class="c c{j}">', *svg_lines(view.layout, lines, view.colors), "</g>"]
    return out + ["</g>"]


def _selection_css(scope: str, query: int | None, key: int | None) -> list[str]:
    """Rules that show only the lines of a selected query row and/or key column while `scope` matches."""
    css = []
    if query is not None:
        css.append(f"{scope} .r:not(.r{query}){{display:none}}")
    elif key is not None:
        css.append(f"{scope} .r{{display:none}}")
    if key is not None:
        css.append(f"{scope} .c{key}{{display:inline}}")
    return css


def _bold(scope: str, name: str) -> str:
    return f'{scope} a[href="#{name}"] text{{font-weight:bold;fill:#b35900}}'


def head_view_html(view, prefix: str = "hv") -> str:
    """The HTML (a <style>, the controls and an inline SVG) of `view` (a HeadView) for `save_html`;
    element ids start with `prefix` (unique per view in a page)."""
    p, lay = prefix, view.layout
    L, H, Tq, Tk = view.arr.shape
    all_layers = 2 * L * H * Tq * Tk <= HTML_LINE_BUDGET
    layers = range(L) if all_layers else [view.layer]
    if view.self_attention:
        picks = [(f"{p}-t{i}", i, i) for i in range(Tq)]
        links = [[name for name, _, _ in picks]] * 2
    else:
        picks = [(f"{p}-q{i}", i, None) for i in range(Tq)] + [(f"{p}-k{j}", None, j) for j in range(Tk)]
        links = [[f"{p}-q{i}" for i in range(Tq)], [f"{p}-k{j}" for j in range(Tk)]]

    css = [f"#{p} .c{{display:none}} #{p} a{{cursor:pointer}} #{p} .tgt{{display:none}}",
           f"#{p} .controls label{{font:bold 12px sans-serif;margin-right:.8em;cursor:pointer;user-select:none}}"]
    for name, q, k in picks:
        scope = f"#{p}:has(#{name}:target)"
        css += [*_selection_css(scope, q, k), _bold(scope, name)]
    start = f"#{p}:not(:has(.tgt:target))"  # nothing clicked yet: the view's own selection
    css += _selection_css(start, view.query, view.key)
    css += [_bold(start, links[side][i]) for side, i in enumerate((view.query, view.key)) if i is not None]
    if all_layers:
        css += [f"#{p} .L{layer}{{display:none}} #{p}-l{layer}:checked~svg .L{layer}{{display:inline}} "
                f"#{p}-l{layer}:checked~.controls label[for={p}-l{layer}]{{text-decoration:underline}}"
                for layer in layers]
    css += [f"#{p}-h{h}:not(:checked)~svg .h{h}{{display:none}} "
            f"#{p}-h{h}:not(:checked)~.controls label[for={p}-h{h}]{{opacity:.35;text-decoration:line-through}}"
            for h in range(H)]

    targets = [f'<span class="tgt" id="{name}"></span>' for name in [f"{p}-all", *(n for n, _, _ in picks)]]
    radios = [f'<input type="radio" name="{p}-layer" id="{p}-l{layer}" hidden{" checked" * (layer == view.layer)}>'
              for layer in layers] if all_layers else []
    boxes = [f'<input type="checkbox" id="{p}-h{h}" hidden{" checked" * (h in view.heads)}>' for h in range(H)]
    layer_labels = ([f'<label for="{p}-l{layer}">layer {layer}</label>' for layer in layers] if all_layers
                    else [f"<span>layer {view.layer} of {L} (only this layer: the page would be too large with "
                          "all of them)</span>"])
    head_labels = [f'<label for="{p}-h{h}" style="color:{view.colors[h]}">head {h}</label>' for h in range(H)]
    n_lines = len(view.lines(view.layer, range(H), None, None).weight)
    svg = [lay.svg_open(),
           f'<a href="#{p}-all"><text x="4" y="16" fill="#444">all tokens{" · " + view.pair if view.pair != "all" else ""}'
           "</text></a>", lines_group(n_lines)]
    for layer in layers:
        svg += _groups(view, layer, Tq, Tk)
    svg += ["</g>", *svg_tokens(lay, None, None, links, view.dimmed()), "</svg>"]
    hint = ("<p style=\"font-size:small;color:#666\">Click a token to keep only its lines (what it attends to, "
            "what attends to it; \"all tokens\" shows every line again); click a layer to show it, a head to hide "
            "or show it.</p>")
    controls = (f'<div class="controls"><div>{"".join(layer_labels)}</div><div>{"".join(head_labels)}</div></div>')
    return "\n".join([f"<style>{' '.join(css)}</style>", hint, f'<div class="lm-hv" id="{p}">', *targets, *radios,
                      *boxes, controls, *svg, "</div>"])
