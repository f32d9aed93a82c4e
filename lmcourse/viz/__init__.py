"""Figures and widgets. Takes tensors and numbers, returns matplotlib Figures or ipywidgets; no model imports it.

Attention: `plot_attention` (heatmaps), `head_view`, `model_view` and `neuron_view` (bertviz-style, offline,
exportable with `save_html`/`save_png`/`save_svg`; sentence pairs and encoder-decoder outputs too),
`explore_attention`; `capture_attention` reads any course model's weights, `capture_queries_keys` its
queries and keys (and those of a Hugging Face BERT or GPT-2).
"""

from lmcourse.viz.attention import attention_array, head_summary, head_summary_table, plot_attention, plot_head_summary
from lmcourse.viz.attention_explorer import explore_attention, hf_attend
from lmcourse.viz.capture import capture_attention
from lmcourse.viz.embeddings import answer_query, explore_embeddings, pca_2d, plot_word_groups
from lmcourse.viz.head_view import head_view, plot_head_view
from lmcourse.viz.model_view import model_view, plot_model_view
from lmcourse.viz.neuron_view import neuron_view
from lmcourse.viz.queries_keys import capture_queries_keys
from lmcourse.viz.sampling import explore_sampling, plot_next_token_distribution
from lmcourse.viz.style import model_color
from lmcourse.viz.training import plot_history
from lmcourse.viz.views import save_html, save_png, save_svg

__all__ = [
    "model_color", "plot_history",
    "explore_sampling", "plot_next_token_distribution",
    "attention_array", "explore_attention", "head_summary", "head_summary_table", "hf_attend",
    "plot_attention", "plot_head_summary",
    "capture_attention", "capture_queries_keys", "head_view", "model_view", "neuron_view", "plot_head_view",
    "plot_model_view", "save_html", "save_png", "save_svg",
    "answer_query", "explore_embeddings", "pca_2d", "plot_word_groups",
]
