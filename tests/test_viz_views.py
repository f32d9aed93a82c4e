"""Head view and model view: the lines they draw, the inputs they take, the widget, the static copy, the exports."""

import base64
import re
import warnings

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lmcourse.attention import MultiHeadAttention  # noqa: E402
from lmcourse.gpt import GPT, GPTConfig  # noqa: E402
from lmcourse.transformer import DecoderLayer, Encoder, TransformerConfig  # noqa: E402
from lmcourse.viz import (  # noqa: E402
    capture_attention,
    capture_queries_keys,
    head_view,
    model_view,
    neuron_view,
    plot_head_view,
    plot_model_view,
    save_html,
    save_png,
    save_svg,
)
from lmcourse.viz.attention import attention_array  # noqa: E402
from lmcourse.viz.lines import GAP, LINE_WIDTH, head_colors, head_view_lines, raster_lines  # noqa: E402
from lmcourse.viz.model_view import model_view_grid  # noqa: E402


def random_attention(L=2, H=3, Tq=5, Tk=5, causal=False, seed=0):
    """(L, B=1, H, Tq, Tk) rows that sum to 1, as torch.stack(attentions) would give."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(L, 1, H, Tq, Tk, generator=g) * 2
    if causal:
        scores = scores.masked_fill(torch.ones(Tq, Tk).triu(1).bool(), float("-inf"))
    return scores.softmax(-1)


def svg_paths(svg: str) -> list[tuple[str, float, int]]:
    """(colour, opacity, number of line segments) of every <path> in a head view's SVG."""
    return [(c, float(o), d.count("M")) for d, c, o in
            re.findall(r'<path class="h\d+" d="([^"]*)" stroke="([^"]+)" stroke-opacity="([^"]+)"', svg)]


def test_lines_are_one_per_weight_with_opacity_equal_to_it():
    w = random_attention()
    arr = w[:, 0].numpy().astype(np.float64)
    lines = head_view_lines(arr, layer=1, heads=[0, 2])
    assert len(lines.weight) == 2 * 5 * 5
    np.testing.assert_allclose(lines.weight, arr[1][lines.head, lines.query, lines.key])
    assert set(lines.head.tolist()) == {0, 2}
    svg = head_view(w, list("abcde"), layer=1, heads=[0, 2]).svg()
    assert sum(n for _, _, n in svg_paths(svg)) == len(lines.weight) - int((np.rint(lines.weight * 100) == 0).sum())


def test_raster_line_carries_its_weight_and_colour_like_an_svg_stroke():
    # One line from query 0 to key 2, weight 0.6, head 1: per pixel column the ink (-log of the pixel's
    # brightness, summed down the column) is the stroke's area there times the absorbance of an opacity-0.6
    # stroke of the head's colour over white: -log(1 - 0.6 * (1 - colour)).
    arr = np.zeros((1, 2, 3, 3))
    arr[0, 1, 0, 2] = 0.6
    view = head_view(arr, list("abc"))
    image = raster_lines(view.layout, view.lines(), view.colors)
    assert image.shape == (round(view.layout.height), GAP, 3)
    colour = np.array(matplotlib.colors.to_rgb(head_colors(2)[1]))
    absorbance = -np.log(1 - 0.6 * (1 - colour))
    slope = (view.layout.y(2) - view.layout.y(0)) / GAP
    ink = -np.log(np.maximum(image, 1) / 255).sum(axis=0)  # (GAP, 3)
    np.testing.assert_allclose(ink[5:-5], np.broadcast_to(LINE_WIDTH * np.sqrt(1 + slope**2) * absorbance,
                                                          ink[5:-5].shape), rtol=0.05, atol=0.02)
    darkest = image.reshape(-1, 3)[image.sum(-1).argmin()] / 255
    np.testing.assert_allclose(darkest, 1 - 0.6 * (1 - colour), atol=0.08)  # full coverage: the stroke's colour


def test_static_figure_is_one_image_and_labels_not_an_artist_per_line():
    w = random_attention(L=1, H=4, Tq=40, Tk=40)
    fig = plot_head_view(w)
    ax = fig.axes[0]
    assert len(ax.images) == 1 and len(ax.collections) == 0 and len(ax.lines) == 0
    assert len(ax.texts) == 1 + 2 * 40  # the header and the tokens


def test_svg_groups_lines_by_head_and_opacity_rounded_to_a_hundredth():
    w = random_attention()
    view = head_view(w, list("abcde"), layer=0, heads=[1])
    paths = svg_paths(view.svg())
    levels = np.rint(w[0, 0, 1].double().numpy() * 100).astype(int)  # opacity in hundredths
    expected = {(int(v), int((levels == v).sum())) for v in np.unique(levels[levels > 0])}
    assert {(round(o * 100), n) for _, o, n in paths} == expected
    assert {c for c, _, _ in paths} == {head_colors(3)[1]}


def test_selected_token_keeps_only_its_lines_both_ways():
    w = random_attention(causal=True)
    view = head_view(w, list("abcde"), token=2)
    lines = view.lines()
    assert ((lines.query == 2) | (lines.key == 2)).all()
    # causal: token 2 attends to 0, 1, 2 and is attended by 2, 3, 4 -> 5 distinct lines per head
    assert len(lines.weight) == 3 * 5
    assert sorted(set(zip(lines.query.tolist(), lines.key.tolist()))) == [(2, 0), (2, 1), (2, 2), (3, 2), (4, 2)]
    assert "token 2 'c'" in view.caption()
    assert view.select(token=None).lines().weight.size == 3 * 15  # cleared: all 15 allowed pairs per head


def test_causal_future_and_masked_weights_draw_no_line():
    w = random_attention(causal=True)
    lines = head_view(w).lines()
    assert (lines.key <= lines.query).all() and len(lines.weight) == 3 * 15
    w = w.clone()
    w[0, 0, 0, 4, 1] = float("-inf")  # a masked score, as in attention_stages
    assert (1 not in head_view(w, heads=0, query=4).lines().key.tolist())


def test_cross_attention_has_different_query_and_key_columns():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    _, w = mha(torch.randn(1, 3, 8), torch.randn(1, 6, 8), torch.randn(1, 6, 8), need_weights=True)
    view = head_view(w, ["x", "y", "z"], key_tokens=list("uvwxyz"))
    assert view.arr.shape == (1, 2, 3, 6) and not view.self_attention
    assert len(view.lines().weight) == 2 * 3 * 6
    svg = view.svg()
    assert svg.count('class="query"') == 3 and svg.count('class="key"') == 6
    assert ((view.select(key=4).lines().key == 4)).all() and len(view.lines().weight) == 2 * 3
    view.select(key=None, query=1)
    assert (view.lines().query == 1).all() and len(view.lines().weight) == 2 * 6
    with pytest.raises(ValueError, match="cross-attention"):
        view.select(token=1)
    with pytest.raises(ValueError, match="key_tokens"):
        head_view(w, ["x", "y", "z"])


def test_inputs_course_models_hf_attentions_and_raw_tensors_agree():
    torch.manual_seed(0)
    enc = Encoder(TransformerConfig(vocab_size=30, max_len=16, n_layer=2, n_head=2, n_embd=16)).eval()
    ids = torch.randint(0, 30, (1, 7))
    _, weights = enc(ids, need_weights=True)
    captured = capture_attention(enc, ids)
    for a, b in zip(weights, captured):
        torch.testing.assert_close(a, b)
    raw = torch.stack(weights)  # (L, B, H, T, T)
    assert np.allclose(head_view(raw).arr, head_view(weights).arr)
    assert head_view(weights[1][0, 1]).arr.shape == (1, 1, 7, 7)  # one head (T, T)

    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=2)
    cfg._attn_implementation = "eager"
    hf = transformers.GPT2Model(cfg).eval()
    out = hf(torch.tensor([[1, 2, 3, 4]]), output_attentions=True)
    assert np.allclose(model_view(out).arr, model_view(out.attentions).arr)  # the output object or its attentions


def test_capture_attention_gets_a_gpts_weights_and_leaves_it_unchanged():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=3, n_head=2, n_embd=16)).train()
    ids = torch.randint(0, 50, (2, 9))
    gpt.eval()
    logits_before, _ = gpt(ids)
    gpt.train()
    weights = capture_attention(gpt, ids)
    assert gpt.training and len(weights) == 3 and weights[0].shape == (2, 2, 9, 9)
    assert torch.allclose(weights[2].sum(-1), torch.ones(2, 2, 9)) and (weights[0].triu(1) == 0).all()
    gpt.eval()
    assert torch.equal(gpt(ids)[0], logits_before)  # hooks removed
    assert not gpt.blocks[0].self_attn._forward_hooks and not gpt.blocks[0].self_attn._forward_pre_hooks


def test_capture_attention_which_selects_cross_attention():
    torch.manual_seed(0)
    dec = DecoderLayer(16, 2, 32, dropout=0.0).eval()
    y, memory = torch.randn(1, 4, 16), torch.randn(1, 6, 16)
    _, (w_self, w_cross) = dec(y, memory, need_weights=True)
    (got,) = capture_attention(dec, y, memory, which="cross_attn")
    torch.testing.assert_close(got, w_cross)
    both = capture_attention(dec, y, memory)
    assert [w.shape[-1] for w in both] == [4, 6]
    with pytest.raises(ValueError, match="no MultiHeadAttention whose name contains which='nope'"):
        capture_attention(dec, y, memory, which="nope")
    with pytest.raises(ValueError, match="output_attentions=True"):
        capture_attention(torch.nn.Linear(2, 2), torch.randn(1, 2))


def test_missing_weights_name_the_eager_fix_and_need_weights():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=2)
    cfg._attn_implementation = "sdpa"
    out = transformers.GPT2Model(cfg).eval()(torch.tensor([[1, 2, 3]]), output_attentions=True)
    for view in (head_view, model_view):
        with pytest.raises(ValueError, match='attn_implementation="eager"'):
            view(out.attentions)
    enc = Encoder(TransformerConfig(vocab_size=30, max_len=16, n_layer=2, n_head=2, n_embd=16)).eval()
    _, weights = enc(torch.tensor([[1, 2, 3]]))  # need_weights left False
    with pytest.raises(ValueError, match="need_weights=True"):
        head_view(weights)


def test_bad_selections_name_the_argument_and_the_range():
    w = random_attention()
    with pytest.raises(ValueError, match=r"layer=2 out of range: there are 2 layers \(0..1\)"):
        head_view(w, layer=2)
    with pytest.raises(ValueError, match=r"heads=\[0, 5\] out of range: there are 3 heads"):
        head_view(w, heads=[0, 5])
    with pytest.raises(ValueError, match="token=9 out of range|query=9 out of range"):
        head_view(w, token=9)
    with pytest.raises(ValueError, match="tokens has 2 tokens"):
        head_view(w, ["a", "b"])
    with pytest.raises(ValueError, match="head=3 out of range"):
        model_view(w, head=3)
    with pytest.raises(ValueError, match="view must be what head_view"):
        save_png("not a view", "x.png")


def test_model_view_grid_has_every_layer_and_head_scaled_to_its_own_peak():
    w = random_attention(L=3, H=4, Tq=6, Tk=6, causal=True)
    image, th, tw = model_view_grid(w[:, 0].numpy().astype(np.float64), tile=12)
    assert (th, tw) == (12, 12) and image.shape == (3 * 12 + 2 * 4, 4 * 12 + 3 * 4, 4)
    viridis = matplotlib.colormaps["viridis"]
    top = np.array(viridis(1.0, bytes=True))
    for layer in range(3):
        for head in range(4):
            tile = image[layer * 16:layer * 16 + 12, head * 16:head * 16 + 12]
            assert (tile == top).all(-1).any()  # each map's largest weight gets the top colour
            assert (tile[0, -1] == [217, 217, 217, 255]).all()  # the causal future is grey


def test_model_view_pools_long_sequences_keeping_thin_diagonals():
    T = 128
    prev = np.zeros((1, 1, T, T))
    prev[0, 0, np.arange(1, T), np.arange(T - 1)] = 1.0  # a previous-token head
    prev[0, 0, 0, 0] = 1.0
    image, th, tw = model_view_grid(prev, tile=32)
    assert (th, tw) == (32, 32)
    top = np.array(matplotlib.colormaps["viridis"](1.0, bytes=True))
    on_diagonal = [(image[i, i] == top).all() or (image[i, max(i - 1, 0)] == top).all() for i in range(32)]
    assert all(on_diagonal)


def test_model_view_opens_the_chosen_map_in_the_head_view():
    w = random_attention(L=3, H=4)
    view = model_view(w, list("abcde"), layer=2, head=1)
    assert (view.head_view.layer, view.head_view.heads) == (2, [1])
    view.select(layer=0, head=3)
    assert (view.layer, view.head, view.head_view.layer, view.head_view.heads) == (0, 3, 0, [3])
    x, y = view.cell_origin(0, 3)
    assert f'<rect class="open" x="{x - 2}" y="{y - 2}"' in view.svg()
    assert "open: layer 0, head 3" in view.caption()
    fig = plot_model_view(w, list("abcde"), layer=1, head=2)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "1", "2", "3"]


def test_widgets_change_the_view_and_redraw():
    widgets = pytest.importorskip("ipywidgets")
    w = random_attention(L=2, H=3)
    view = head_view(w, list("abcde"))
    ui = view.widget
    assert isinstance(ui, widgets.VBox)
    before = view._image.value
    view._head_buttons[1].value = False  # hide head 1
    assert view.heads == [0, 2] and view._image.value != before
    view._token_menu.value = ("token", 3)
    assert (view.query, view.key) == (3, 3) and len(view.lines().weight) == 2 * 9
    view._layer_menu.value = 1
    assert view.layer == 1 and "layer 1" in bytes(view._image.value).decode()
    view.select(heads=[2], token=None)  # from code: the menus follow
    assert [b.value for b in view._head_buttons] == [False, False, True]
    assert view._token_menu.label == "all tokens"  # not a blank menu

    mv = model_view(w, list("abcde"))
    mv.widget
    mv._head_menu.value = 2
    assert mv.head_view.heads == [2] and mv.head_view._head_buttons[2].value


def test_stored_output_has_a_png_copy_and_a_meaningful_text():
    pytest.importorskip("ipywidgets")
    view = head_view(random_attention(), list("abcde"), title="demo")
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert bundle["text/plain"].startswith("demo: head view, layer 0 of 2, all heads")
    assert "VBox" not in bundle["text/plain"]
    assert model_view(random_attention())._repr_mimebundle_()["text/plain"].startswith("model view, 2 layers x 3 heads")


def test_exports_png_svg_and_self_contained_html(tmp_path):
    view = model_view(random_attention(causal=True), ["<s>", "a&b", "c", "d", "e"], layer=1, head=2)
    png, svg, page = save_png(view, tmp_path / "m.png"), save_svg(view.head_view, tmp_path / "h.svg"), \
        save_html(view, tmp_path / "m.html")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert svg.read_text().startswith("<svg") and "a&amp;b" in svg.read_text()
    text = page.read_text()
    assert text.count("<svg") == 3 and "data:image/png;base64," in text  # grid, enlarged maps, head view
    assert not re.search(r"(src|href)=\"(https?:)?//", text) and "<script" not in text  # nothing from the network
    assert "&lt;s&gt;" in text and "<s>" not in text
    body = view.head_view.html_body()  # click-to-select without a script: a row and a column group per token
    assert body.count('class="r r') == 5 * 2 and body.count('class="c c') == 5 * 2  # for each of the 2 layers
    assert '<a href="#hv-t1">' in body and body.count('type="checkbox"') == 3
    assert body.count('type="checkbox" id="hv-h2" hidden checked>') == 1 and body.count(" checked>") == 2  # head 2, layer 1
    assert 'id="hv-l1" hidden checked>' in body


def test_views_do_not_register_figures_with_pyplot():
    import matplotlib.pyplot as plt

    plt.close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        view = head_view(random_attention())
        view.figure()
        model_view(random_attention()).figure()
    assert plt.get_fignums() == []  # nothing for the inline backend to show a second time


# -- bertviz's reach: clicks, scales, exports in the given state, sentence pairs, encoder-decoder, neurons --

def test_clicking_a_token_in_the_picture_selects_it_and_a_second_click_clears_it():
    pytest.importorskip("ipywidgets")
    view = head_view(random_attention(), list("abcde"))
    view.widget
    left, right = view.token_regions
    left.click(3)
    assert view.token == 3 and view._token_menu.value == ("token", 3)
    right.click(3)  # the same token on the key side: selected already, so cleared
    assert view.token is None and view._token_menu.label == "all tokens"
    right.click(1)
    assert view.token == 1 and left.buttons.index is None  # the buttons only report clicks

    torch.manual_seed(0)
    _, w = MultiHeadAttention(8, 2).eval()(torch.randn(1, 3, 8), torch.randn(1, 4, 8), torch.randn(1, 4, 8),
                                           need_weights=True)
    cross = head_view(w, list("xyz"), key_tokens=list("abcd"))
    cross.widget
    assert cross._token_menu.label == "all tokens"
    cross.token_regions[1].click(2)
    cross.token_regions[0].click(0)
    assert (cross.query, cross.key) == (0, 2)


def test_clicking_a_model_view_map_opens_it_in_the_head_view():
    pytest.importorskip("ipywidgets")
    view = model_view(random_attention(L=3, H=4), list("abcde"))
    view.widget
    view.cell_regions.click(2 * 4 + 1)  # row by row: layer 2, head 1
    assert (view.layer, view.head, view.head_view.layer, view.head_view.heads) == (2, 1, 2, [1])
    assert (view._layer_menu.value, view._head_menu.value) == (2, 1)
    assert view.cell_regions.buttons.tooltips[2 * 4 + 1] == "layer 2, head 1"


def test_shared_scale_shows_an_even_head_dim_and_both_scales_have_a_colour_bar():
    arr = np.zeros((1, 2, 4, 4))
    arr[0, 0] = 0.25          # spreads evenly
    arr[0, 1] = np.eye(4)     # sharp
    own = model_view_grid(arr, tile=4, scale="map")[0]
    shared = model_view_grid(arr, tile=4, scale="shared")[0]
    viridis = matplotlib.colormaps["viridis"]
    assert (own[:4, :4] == np.array(viridis(1.0, bytes=True))).all()       # on its own scale: solid top colour
    assert (shared[:4, :4] == np.array(viridis(0.25, bytes=True))).all()   # on the shared one: a quarter
    for scale, words in (("map", "largest weight of each map"), ("shared", "1 (largest weight of all maps)")):
        view = model_view(arr, scale=scale)
        assert words in view.svg() and "lm-cbar" in view.svg()
        fig = view.figure()
        assert len(fig.axes) == 2  # the grid and its colour bar
    with pytest.raises(ValueError, match="scale must be one of"):
        model_view(arr, scale="log")


def test_model_view_caption_is_wrapped_to_the_picture_never_cut():
    view = model_view(random_attention(L=2, H=2, Tq=3, Tk=3), list("abc"), title="a rather long title for a small grid")
    lines = view.caption_lines()
    assert len(lines) > 1 and " ".join(lines) == view.caption()
    assert all(len(line) * 6.8 <= view.width for line in lines)
    svg = view.svg()
    assert all(f">{line}</text>" in svg for line in lines)
    fig = view.figure()
    fig.canvas.draw()
    box = fig._suptitle.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width  # inside the stored PNG


def test_save_html_opens_in_the_state_the_view_was_given(tmp_path, monkeypatch):
    w = random_attention(L=3, H=2, Tq=7, Tk=7)
    page = save_html(head_view(w, list("abcdefg"), layer=1, token=5), tmp_path / "h.html").read_text()
    assert 'id="hv-l1" hidden checked>' in page and page.count('name="hv-layer"') == 3  # every layer, layer 1 on
    assert "#hv:not(:has(.tgt:target)) .r:not(.r5){display:none}" in page  # token 5's lines until a click
    assert "#hv:not(:has(.tgt:target)) .c5{display:inline}" in page
    monkeypatch.setattr("lmcourse.viz.head_view_html.HTML_LINE_BUDGET", 100)  # too large for all layers
    page = save_html(head_view(w, layer=2), tmp_path / "h2.html").read_text()
    assert 'name="hv-layer"' not in page and 'class="L2"' in page and 'class="L0"' not in page
    assert "only this layer" in page


def test_model_view_page_has_a_clickable_map_for_every_cell(tmp_path):
    view = model_view(random_attention(L=2, H=3), list("abcde"), layer=1, head=2)
    page = save_html(view, tmp_path / "m.html").read_text()
    assert page.count('<label for="mv-c') == 6 and page.count('class="m m') == 6
    assert 'id="mv-c1-2" hidden checked>' in page
    assert "#mv-c0-1:checked~.maps .m0-1{display:inline}" in page


@pytest.mark.parametrize("view", [head_view, model_view])
def test_no_tokens_is_a_clear_error_not_a_zero_division(view):
    with pytest.raises(ValueError, match="0 queries and 0 keys.*at least one token"):
        view(torch.zeros(2, 1, 3, 0, 0), [])


def test_sentence_pairs_keep_one_block_as_bertviz_filters_do():
    w = random_attention(L=2, H=2, Tq=7, Tk=7)
    view = head_view(w, list("CabSxyS"), sentence_b_start=4, pair="A->B")
    lines = view.lines()
    assert len(lines.weight) and (lines.query < 4).all() and (lines.key >= 4).all()
    assert len(lines.weight) == 2 * 4 * 3  # 2 heads x 4 queries of A x 3 keys of B
    assert view.dimmed() == [[False] * 4 + [True] * 3, [True] * 4 + [False] * 3]
    for pair, rows, cols in (("A->A", range(4), range(4)), ("B->B", range(4, 7), range(4, 7)),
                             ("B->A", range(4, 7), range(4))):
        got = view.select(pair=pair).lines()
        assert set(got.query.tolist()) == set(rows) and set(got.key.tolist()) == set(cols)
    grid = model_view(w, list("CabSxyS"), sentence_b_start=4, pair="B->A")
    assert grid.maps().shape == (2, 2, 3, 4) and grid.pair_labels() == (list("xyS"), list("CabS"))
    np.testing.assert_allclose(grid.maps(), grid.arr[:, :, 4:, :4])
    assert grid.head_view.pair == "B->A"
    with pytest.raises(ValueError, match="needs sentence_b_start"):
        head_view(w, pair="A->B")
    with pytest.raises(ValueError, match="sentence_b_start=7 must be a position inside the 7 tokens"):
        head_view(w, sentence_b_start=7)
    with pytest.raises(ValueError, match="pair must be one of"):
        model_view(w, sentence_b_start=2, pair="A<-B")


def tiny_bart():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BartConfig(vocab_size=40, d_model=16, encoder_layers=2, decoder_layers=3,
                                  encoder_attention_heads=2, decoder_attention_heads=4, encoder_ffn_dim=32,
                                  decoder_ffn_dim=32, max_position_embeddings=32)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    return transformers.BartModel(cfg).eval()


def test_an_encoder_decoder_output_is_one_view_with_a_selector(tmp_path):
    out = tiny_bart()(torch.tensor([[0, 5, 6, 7, 2]]), decoder_input_ids=torch.tensor([[2, 0, 8]]),
                      output_attentions=True)
    enc, dec = ["<s>", "a", "b", "c", "</s>"], ["</s>", "<s>", "x"]
    view = head_view(out, encoder_tokens=enc, decoder_tokens=dec)
    assert view.part == "cross"
    for part, attentions, q, k in (("encoder", out.encoder_attentions, enc, enc),
                                   ("decoder", out.decoder_attentions, dec, dec),
                                   ("cross", out.cross_attentions, dec, enc)):
        part_view = view.views[part]
        np.testing.assert_allclose(part_view.arr, torch.stack(attentions)[:, 0].detach().numpy(), rtol=1e-6)
        assert (part_view.q_labels, part_view.k_labels) == (q, k)
    assert "cross-attention" in view.caption() and view.svg() == view.views["cross"].svg()
    view.select(part="decoder", layer=2, token=1)
    assert view.view.layer == 2 and view.view.token == 1 and "decoder self-attention" in view.caption()
    pytest.importorskip("ipywidgets")
    view.widget._repr_mimebundle_()
    view._part_menu.value = "encoder"
    assert view.part == "encoder" and view.widget.children[1].children[0] is view.views["encoder"].widget
    page = save_html(view, tmp_path / "ed.html").read_text()
    assert page.count('name="ed-part"') == 3 and 'id="ed-encoder" hidden checked>' in page
    grid = model_view(out, encoder_tokens=enc, decoder_tokens=dec, part="encoder")
    assert grid.view.arr.shape == (2, 2, 5, 5) and grid.views["cross"].arr.shape == (3, 4, 3, 5)
    with pytest.raises(ValueError, match="encoder_tokens= and decoder_tokens= instead of tokens"):
        head_view(out, enc)
    with pytest.raises(ValueError, match="encoder-decoder output"):
        attention_array(out)
    with pytest.raises(ValueError, match="name the tokens of an encoder-decoder output"):
        head_view(random_attention(), decoder_tokens=dec)


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def test_neuron_view_scores_and_softmax_are_the_models_own_attention():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16))
    bert_cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=32, max_position_embeddings=32)
    gpt2_cfg = transformers.GPT2Config(vocab_size=50, n_embd=16, n_layer=2, n_head=2, n_positions=32,
                                       bos_token_id=0, eos_token_id=0)
    models = [gpt]
    for cls, cfg in ((transformers.BertModel, bert_cfg), (transformers.GPT2Model, gpt2_cfg)):
        cfg._attn_implementation = "eager"
        models.append(cls(cfg).eval())
    ids = torch.randint(0, 50, (1, 6))
    for model in models:
        qk = capture_queries_keys(model, ids)
        L, H = qk.weights.shape[:2]
        for layer, head, query in ((0, 0, 5), (L - 1, H - 1, 2)):
            numbers = neuron_view(qk, layer=layer, head=head, query=query).numbers()
            np.testing.assert_allclose(numbers["products"][~np.isnan(numbers["scores"])].sum(-1) * qk.scale,
                                       numbers["scores"][~np.isnan(numbers["scores"])], rtol=1e-5)
            allowed = ~np.isnan(numbers["scores"])
            np.testing.assert_allclose(softmax(numbers["scores"][allowed]), numbers["weights"][allowed], atol=1e-5)
            causal = model is not models[1]  # our GPT and GPT-2 may not look ahead; BERT may
            assert allowed.sum() == (query + 1 if causal else 6)
    hooks = [m._forward_hooks for m in gpt.modules()]
    assert not any(hooks)  # the model is handed back unchanged


def test_neuron_view_greys_a_causal_models_future_even_where_its_score_is_far_below_the_rest():
    from lmcourse.viz.queries_keys import QueriesKeys

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    k[3] = -50 * q[1]                                  # a future key the query at position 1 scores far below the rest
    scores = (q @ k.T / 8 ** 0.5).masked_fill(~torch.ones(4, 4, dtype=torch.bool).tril(), float("-inf"))
    qk = QueriesKeys(q[None, None].numpy(), k[None, None].numpy(), scores.softmax(-1)[None, None].numpy(), 8 ** -0.5)
    numbers = neuron_view(qk, query=1).numbers()
    assert np.isnan(numbers["scores"][2:]).all() and not np.isnan(numbers["scores"][:2]).any()
    assert np.isnan(numbers["products"][3]).all()


def test_neuron_view_picture_greys_masked_products_and_counts_dimensions_in_whole_numbers():
    from lmcourse.viz.queries_keys import QueriesKeys

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)
    scores = (q @ k.T / 6 ** 0.5).masked_fill(~torch.ones(5, 5, dtype=torch.bool).tril(), float("-inf"))
    qk = QueriesKeys(q[None, None].numpy(), k[None, None].numpy(), scores.softmax(-1)[None, None].numpy(), 6 ** -0.5)
    fig = neuron_view(qk, query=1).figure()
    keys_ax, products_ax = fig.axes[4], fig.axes[5]   # row 2 of the 2 x 4 grid: keys, products, scores, softmax
    image = products_ax.images[0]
    grey = image.cmap.get_bad()
    assert np.isnan(image.get_array()[2:].filled(np.nan)).all() and grey[:3] == pytest.approx((0.85, 0.85, 0.85), abs=0.01)
    fig.canvas.draw()
    for ax in (keys_ax, products_ax):
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)


def test_neuron_view_widget_click_and_page(tmp_path):
    pytest.importorskip("ipywidgets")
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16))
    tokens = ["The", "Ġcat", "Ġsat", "</script>"]
    view = neuron_view(gpt, torch.tensor([[1, 2, 3, 4]]), tokens, layer=1, head=1, query=2)
    assert view.caption() == "neuron view, layer 1 of 2, head 1 of 2, query 2 'sat'"
    view.widget
    view.token_regions[0].click(0)
    assert view.query == 0 and view._menus["query"].value == 0
    svg = view.svg()
    assert svg.count("<image") == 3 and "masked" in svg  # q, keys, products; query 0 sees only itself
    page = save_html(view, tmp_path / "n.html").read_text()
    assert page.count('class="nq nq') == 4 and "&lt;/script&gt;" in page and "</script>" not in page
    assert "#nv:not(:has(.tgt:target)) .nq0{display:inline}" in page
    fig = view.figure()
    assert sum(len(ax.images) for ax in fig.axes) == 3  # one image per panel
    with pytest.raises(ValueError, match="input_ids has no tokens"):
        neuron_view(gpt, torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="head=2 out of range"):
        view.select(head=2)
