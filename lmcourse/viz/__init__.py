"""Figures and widgets. Takes tensors and numbers, returns matplotlib Figures or ipywidgets; no model imports it."""

from lmcourse.viz.style import MODEL_COLORS, model_color
from lmcourse.viz.sampling import explore_sampling, plot_next_token_distribution
from lmcourse.viz.training import plot_history

__all__ = ["MODEL_COLORS", "model_color", "plot_history"]
__all__ += ["explore_sampling", "plot_next_token_distribution"]
