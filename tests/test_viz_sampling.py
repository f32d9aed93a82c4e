"""The sampling explorer's logic: the same filters as generate, shown as a table and bars."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from lmcourse.viz.sampling import distribution_table, filtered_distribution, plot_next_token_distribution

LOGITS = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
LABELS = ["a", "b", " ", "\n"]


def test_no_filter_keeps_the_softmax():
    before, after, kept = filtered_distribution(LOGITS)
    assert torch.allclose(before, torch.tensor([0.5, 0.3, 0.15, 0.05])) and torch.allclose(after, before)
    assert kept.all()


def test_temperature_sharpens_like_a_power_of_the_probabilities():
    before, _, _ = filtered_distribution(LOGITS, temperature=0.5)
    p2 = torch.tensor([0.5, 0.3, 0.15, 0.05]) ** 2
    assert torch.allclose(before, p2 / p2.sum())


def test_top_k_renormalises_the_kept_tokens():
    _, after, kept = filtered_distribution(LOGITS, top_k=2)
    assert kept.tolist() == [True, True, False, False]
    assert torch.allclose(after, torch.tensor([0.625, 0.375, 0.0, 0.0]))


def test_top_p_keeps_the_nucleus():
    _, after, kept = filtered_distribution(LOGITS, top_p=0.85)
    assert kept.tolist() == [True, True, True, False]
    assert torch.allclose(after.sum(), torch.tensor(1.0))


def test_table_lists_most_likely_first():
    rows = distribution_table(LOGITS, LABELS, top_k=1, n_show=3)
    assert [r["token"] for r in rows] == ["a", "b", " "]
    assert [r["kept"] for r in rows] == [True, False, False] and rows[0]["p_filtered"] == 1.0


def test_plot_returns_a_figure_with_one_bar_per_token():
    fig = plot_next_token_distribution(LOGITS, LABELS, top_p=0.5)
    assert len(fig.axes[0].patches) == 4 and "1 tokens can be drawn" in fig.axes[0].get_title()


@pytest.mark.parametrize("bad, message", [(dict(temperature=0.0), "temperature"), (dict(top_p=1.5), "top_p"),
                                          (dict(top_k=0), "top_k")])
def test_bad_options_raise_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        filtered_distribution(LOGITS, **bad)


def test_logits_must_be_one_distribution():
    with pytest.raises(ValueError, match="vocab"):
        filtered_distribution(LOGITS[None])


def test_explore_sampling_builds_a_widget_for_a_gpt(capsys):
    widgets = pytest.importorskip("ipywidgets")
    from lmcourse.gpt import GPT, GPTConfig
    from lmcourse.viz.sampling import explore_sampling

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=4, block_size=16, n_layer=1, n_head=1, n_embd=8))
    def encode(text):
        return [LABELS.index(c) if c in LABELS else 0 for c in text]

    def decode(ids):
        return "".join(LABELS[i] for i in ids)

    ui = explore_sampling(model, encode, decode, prompt="ab a", max_new_tokens=5)
    assert isinstance(ui, widgets.VBox)
    from lmcourse.generate import generate

    greedy = f"ab a|{decode(generate(model, torch.tensor([encode('ab a')]), 5)[0, 4:].tolist())}"
    assert greedy not in capsys.readouterr().out  # top_k off: a sampled continuation
    ui.children[1].children[1].value = 1  # top_k = 1: the redrawn continuation must be the greedy one
    assert greedy in capsys.readouterr().out


def test_explore_sampling_stores_a_caption_not_the_widget_repr():
    from IPython.core.formatters import DisplayFormatter

    from lmcourse.gpt import GPT, GPTConfig
    from lmcourse.viz import explore_sampling

    model = GPT(GPTConfig(20, 16, 1, 2, 8))
    ui = explore_sampling(model, lambda s: [ord(c) % 20 for c in s], lambda ids: "".join(chr(97 + i) for i in ids),
                          max_new_tokens=5)
    text = DisplayFormatter().format(ui)[0]["text/plain"]
    assert text.startswith("sampling explorer") and "VBox" not in text
