"""Figures and widgets. Takes tensors and numbers, returns matplotlib Figures or ipywidgets; no model imports it."""

from lmcourse.viz.attention import attention_array, head_summary, head_summary_table, plot_attention, plot_head_summary
from lmcourse.viz.attention_explorer import explore_attention, hf_attend
from lmcourse.viz.embeddings import answer_query, explore_embeddings, pca_2d, plot_word_groups
from lmcourse.viz.sampling import explore_sampling, plot_next_token_distribution
from lmcourse.viz.style import MODEL_COLORS, model_color
from lmcourse.viz.training import plot_history

__all__ = [
    "MODEL_COLORS", "model_color", "plot_history",
    "explore_sampling", "plot_next_token_distribution",
    "attention_array", "explore_attention", "head_summary", "head_summary_table", "hf_attend",
    "plot_attention", "plot_head_summary",
    "answer_query", "explore_embeddings", "pca_2d", "plot_word_groups",
]
