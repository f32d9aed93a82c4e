"""Attention visualizers: our weights and a transformers model's `attentions` (built from a small config)."""

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lmcourse.attention import MultiHeadAttention, attention_stages, causal_mask  # noqa: E402
from lmcourse.viz.attention import (  # noqa: E402
    attention_array,
    attention_with_labels,
    clean_token,
    head_summary,
    head_summary_table,
    plot_attention,
    plot_head_summary,
)
from lmcourse.viz.attention_explorer import attention_row, explore_attention, hf_attend, highlight_html, top_keys  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def tiny_gpt2(attn_implementation="eager"):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=2,
                                  bos_token_id=0, eos_token_id=0)
    cfg._attn_implementation = attn_implementation
    torch.manual_seed(0)
    return transformers.GPT2Model(cfg).eval()


def tiny_bert():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=3, num_attention_heads=4,
                                  intermediate_size=32, max_position_embeddings=16)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    return transformers.BertModel(cfg).eval()


def our_weights(T=5):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, T, 16)
    _, w = mha(x, x, x, is_causal=True, need_weights=True)
    return w  # (2, 4, T, T)


def test_attention_array_shapes():
    w = our_weights()
    assert attention_array(w).shape == (1, 4, 5, 5)
    assert attention_array(w[0, 0]).shape == (1, 1, 5, 5)
    assert attention_array(w[0]).shape == (1, 4, 5, 5)
    assert attention_array([w, w, w]).shape == (3, 4, 5, 5)
    np.testing.assert_allclose(attention_array(w, batch_index=1)[0], w[1].detach().numpy(), atol=1e-7)


def test_attention_array_accepts_hf_attentions_tuple():
    model = tiny_bert()
    out = model(torch.tensor([[1, 5, 7, 2]]), output_attentions=True)
    arr = attention_array(out.attentions)
    assert arr.shape == (3, 4, 4, 4)
    np.testing.assert_allclose(arr[2, 1], out.attentions[2][0, 1].detach().numpy(), atol=1e-7)
    np.testing.assert_allclose(arr.sum(-1), 1.0, atol=1e-5)


def test_missing_hf_attentions_say_load_eager():
    model = tiny_gpt2("sdpa")
    out = model(torch.tensor([[1, 2, 3]]), output_attentions=True)
    with pytest.raises(ValueError, match='attn_implementation="eager"'):
        plot_attention(out.attentions)
    with pytest.raises(ValueError, match='attn_implementation="eager"'):
        attention_array(None)
    with pytest.raises(ValueError, match='attn_implementation="eager"'):
        attention_array((None, None))


def test_plot_one_head_has_tokens_on_both_axes(tmp_path):
    w = our_weights()
    tokens = ["The", "Ġcat", "Ġsat", "Ġon", "Ġit"]
    path = tmp_path / "head.png"
    fig = plot_attention(w, tokens, layers=0, heads=1, path=path)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["The", "cat", "sat", "on", "it"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["The", "cat", "sat", "on", "it"]
    assert ax.get_xlabel() == "key" and ax.get_ylabel() == "query"
    assert path.exists() and path.stat().st_size > 1000


def test_plot_causal_triangle_is_greyed():
    w = our_weights()
    fig = plot_attention(w, heads=0)
    data = fig.axes[0].images[0].get_array()
    assert data.mask[np.triu_indices(5, 1)].all() and not data.mask[np.tril_indices(5)].any()
    assert "causal" in fig._suptitle.get_text()


def test_plot_grid_shares_one_colour_scale():
    model = tiny_bert()
    out = model(torch.tensor([[1, 5, 7, 2, 9]]), output_attentions=True)
    fig = plot_attention(out.attentions, ["[CLS]", "play", "##ing", "x", "[SEP]"])
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3 * 4
    assert len({im.get_clim() for im in images}) == 1
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["[CLS]", "play", "-ing", "x", "[SEP]"]


def test_plot_cross_attention_different_query_and_key_tokens():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    q, mem = torch.randn(1, 3, 8), torch.randn(1, 6, 8)
    _, w = mha(q, mem, mem, need_weights=True)
    fig = plot_attention(w, ["a", "b", "c"], key_tokens=list("uvwxyz"), heads=0)
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) == 3 and len(ax.get_xticklabels()) == 6
    with pytest.raises(ValueError, match="key_tokens"):
        plot_attention(w, ["a", "b", "c"])


def test_plot_stages_masked_entries_are_grey_and_finite():
    q, k = torch.randn(4, 8, dtype=torch.float16), torch.randn(4, 8, dtype=torch.float16)
    stages = attention_stages(q, k, causal_mask(4))
    for stage in ("scores", "masked", "weights"):
        fig = plot_attention(stages, list("abcd"), stage=stage, causal=False)
        data = fig.axes[0].images[0].get_array()
        if stage == "masked":
            assert data.mask[np.triu_indices(4, 1)].all()
        if stage == "scores":
            assert not data.mask.any()
    with pytest.raises(ValueError, match="stage"):
        plot_attention(stages, stage="softmax")


def test_plot_rejects_bad_arguments():
    w = our_weights()
    with pytest.raises(ValueError, match="heads=7 out of range"):
        plot_attention(w, heads=7)
    with pytest.raises(ValueError, match="tokens has 3 tokens"):
        plot_attention(w, ["a", "b", "c"])
    with pytest.raises(ValueError, match="2 to 5 dimensions"):
        plot_attention(torch.ones(3))


def test_clean_token():
    assert [clean_token(t) for t in ["Ġthe", "▁the", "##ing", "Ċ", "\n", " ", "", "low</w>", "x"]] == \
        ["the", "the", "-ing", "\\n", "\\n", "␣", "∅", "low", "x"]


def test_attention_with_labels_cleans_tokens_and_numbers_missing_ones():
    arr, q_labels, k_labels = attention_with_labels(torch.rand(1, 2, 2, 3), ["Ġa", "b"], ["x", "##y", "z"])
    assert arr.shape == (1, 2, 2, 3) and q_labels == ["a", "b"] and k_labels == ["x", "-y", "z"]
    assert attention_with_labels(torch.rand(2, 2))[1:] == (["0", "1"], ["0", "1"])
    with pytest.raises(ValueError, match="key_tokens"):
        attention_with_labels(torch.rand(2, 3), ["a", "b"])


def test_head_summary_on_known_patterns():
    T = 6
    prev = torch.zeros(T, T)
    prev[0, 0] = 1
    prev[torch.arange(1, T), torch.arange(T - 1)] = 1  # each token looks at the one before it
    uniform = causal_mask(T).float() / causal_mask(T).sum(-1, keepdim=True)
    rows = head_summary(torch.stack([prev, uniform])[None])  # (1, 2 heads, T, T)
    assert rows[0]["prev_token"] == pytest.approx(1.0) and rows[0]["entropy"] == pytest.approx(0.0)
    assert rows[1]["entropy_ratio"] == pytest.approx(1.0, abs=1e-6)
    expected_entropy = np.mean([np.log(i + 1) for i in range(T)])
    assert rows[1]["entropy"] == pytest.approx(expected_entropy, abs=1e-6)
    assert rows[1]["first_token"] == pytest.approx(np.mean([1 / (i + 1) for i in range(T)]))
    table = head_summary_table(rows)
    assert table.splitlines()[0].startswith("| layer | head | entropy")
    fig = plot_head_summary(rows)
    assert len([a for a in fig.axes if a.images]) == 4


def test_head_summary_of_hf_model_and_bad_metric():
    model = tiny_gpt2()
    out = model(torch.tensor([[1, 2, 3, 4]]), output_attentions=True)
    rows = head_summary(out.attentions)
    assert len(rows) == 4 and {r["layer"] for r in rows} == {0, 1}
    with pytest.raises(ValueError, match="unknown metrics"):
        plot_head_summary(rows, metrics=["nope"])


def test_attention_row_top_keys_and_highlight():
    w = our_weights()
    arr = attention_array(w)
    row = attention_row(arr, 0, 2, 3)
    np.testing.assert_allclose(row, w[0, 2, 3].detach().numpy(), atol=1e-7)
    tokens = ["a", "<b>", "c", "d", "e"]
    best = top_keys(tokens, row, 2)
    assert best[0][1] == pytest.approx(float(row.max()), abs=1e-4) and len(best) == 2
    html = highlight_html(tokens, row, query=3)
    assert "&lt;b&gt;" in html and "<b>" not in html and html.count("<span") == 5
    assert "rgba(214,39,40,1.00)" in html  # the largest weight is fully opaque
    with pytest.raises(ValueError, match="head=9 out of range"):
        attention_row(arr, 0, 9, 0)


def test_explore_attention_widget_updates_without_a_browser():
    widgets = pytest.importorskip("ipywidgets")
    model = tiny_gpt2()
    attend = hf_attend(model, lambda text: [ord(c) % 40 for c in text])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ui = explore_attention(attend, "abcd", show_map=False)
    assert isinstance(ui, widgets.VBox)
    text_box, menus, slider, highlighted, _ = ui.children
    layer_menu, head_menu = menus.children
    assert list(layer_menu.options) == [0, 1] and slider.max == 3 and slider.value == 3
    assert highlighted.value.count("<span") == 4
    slider.value = 0  # the first token of a causal model attends only to itself
    assert "rgba(214,39,40,1.00)" in highlighted.value and "rgba(214,39,40,0.00)" in highlighted.value
    head_menu.value = 1
    text_box.value = "abcdefg"  # re-runs the model
    assert ui.state["arr"].shape == (2, 2, 7, 7) and slider.max == 6 and head_menu.value == 1
    text_box.value = ""
    assert "no tokens" in highlighted.value


def test_explore_attention_cross_attention_query_and_key_tokens():
    pytest.importorskip("ipywidgets")
    def attend(text):  # a decoder of len(text) + 1 steps reading the text: uniform weights
        w = torch.full((len(text) + 1, len(text)), 1.0 / len(text))
        return [f"out{i}" for i in range(len(text) + 1)], list(text), w
    ui = explore_attention(attend, "xyz", show_map=False)
    _, _, slider, highlighted, _ = ui.children
    assert slider.max == 3 and highlighted.value.count("<span") == 3 and "out3" in highlighted.value
    assert ui.state["keys"] == ["x", "y", "z"]


def test_explore_attention_draws_the_map_of_any_layer(monkeypatch):
    pytest.importorskip("ipywidgets")
    import matplotlib

    from lmcourse.viz import attention_explorer

    matplotlib.use("Agg")
    drawn = []  # every figure the explorer draws
    monkeypatch.setattr(attention_explorer, "plot_attention", lambda *a, **k: drawn.append(plot_attention(*a, **k))
                        or drawn[-1])
    model = tiny_gpt2()
    attend = hf_attend(model, lambda text: [ord(c) % 40 for c in text])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ui = explore_attention(attend, "abcd", show_map=True)
        _, menus, _, _, _ = ui.children
        layer_menu, head_menu = menus.children
        layer_menu.value, head_menu.value = 1, 1  # the second layer of a 2-layer model used to fail
    with torch.no_grad():
        want = model(torch.tensor([[ord(c) % 40 for c in "abcd"]]), output_attentions=True).attentions[1][0, 1]
    (image,) = drawn[-1].axes[0].images  # the last map drawn: layer 1, head 1 of the model
    np.testing.assert_allclose(np.ma.filled(image.get_array(), 0.0), want.numpy(), atol=1e-6)


def test_capture_attention_sees_cached_generation_as_rows_of_the_full_forward():
    from lmcourse.gpt import GPT, GPTConfig
    from lmcourse.viz.capture import capture_attention

    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=16)).eval()
    ids = torch.randint(30, (2, 9))
    full = capture_attention(gpt, ids)  # [(2, 2, 9, 9)] per layer
    cache = gpt.new_kv_cache()
    gpt(ids[:, :6], kv_cache=cache)
    new = capture_attention(gpt, ids[:, 6:8], kv_cache=cache)  # two new tokens after 6 cached
    one = capture_attention(gpt, ids[:, 8:], kv_cache=cache)   # then one more
    assert len(new) == len(one) == 2
    for layer in range(2):
        torch.testing.assert_close(new[layer], full[layer][:, :, 6:8, :8], atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(one[layer], full[layer][:, :, 8:, :], atol=1e-6, rtol=1e-6)
