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
    head_view,
    model_view,
    plot_head_view,
    plot_model_view,
    save_html,
    save_png,
    save_svg,
)
from lmcourse.viz.head_view import head_colors, head_view_lines  # noqa: E402
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
    view = head_view(w, list("abcde"), layer=1, heads=[0, 2])
    fig = view.figure()
    collection = fig.axes[0].collections[0]
    np.testing.assert_allclose(collection.get_colors()[:, 3], lines.weight)  # matplotlib: alpha is the weight
    colours = [matplotlib.colors.to_hex(c[:3]) for c in collection.get_colors()]
    assert colours == [head_colors(3)[h] for h in lines.head]  # one colour per head
    segments = collection.get_segments()
    ys = np.array([view.layout.y(i) for i in range(5)])
    np.testing.assert_allclose([s[0][1] for s in segments], ys[lines.query])  # from the query row ...
    np.testing.assert_allclose([s[1][1] for s in segments], ys[lines.key])    # ... to the key row


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
    enc = Encoder(TransformerConfig(vocab_size=30, max_len=16, n_layers=2, n_heads=2, d_model=16)).eval()
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
    assert not gpt.blocks[0].attn._forward_hooks and not gpt.blocks[0].attn._forward_pre_hooks


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
    enc = Encoder(TransformerConfig(vocab_size=30, max_len=16, n_layers=2, n_heads=2, d_model=16)).eval()
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
    x, y = view._cell_origin(0, 3)
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
    assert [b.value for b in view._head_buttons] == [False, False, True] and view._token_menu.value is None

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
    assert text.count("<svg") == 2 and "data:image/png;base64," in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text) and "<script" not in text  # nothing from the network
    assert "&lt;s&gt;" in text and "<s>" not in text
    body = view.head_view.html_body()  # click-to-select without a script: one hidden group per token
    assert body.count('class="sel"') == 5 and '<a href="#hv-t1">' in body and body.count('type="checkbox"') == 3
    assert body.count(" checked>") == 1  # only the open head is ticked
    fig = plot_head_view(random_attention(), heads=0)
    assert len(fig.axes[0].collections[0].get_segments()) == 25


def test_views_do_not_register_figures_with_pyplot():
    import matplotlib.pyplot as plt

    plt.close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        view = head_view(random_attention())
        view.figure()
        model_view(random_attention()).figure()
    assert plt.get_fignums() == []  # nothing for the inline backend to show a second time
