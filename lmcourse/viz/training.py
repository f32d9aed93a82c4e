"""Learning curves from a training `History`."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from lmcourse.train import History


def plot_history(history: History, title: str = "Learning curve", unit: str = "nats/token",
                 x: str = "step", color: str | None = None, label: str | None = None, ax=None) -> Figure:
    """Training loss (thin) and evaluation loss (dots) against steps or wall-clock seconds.

    x: "step" or "seconds". Pass `ax` to draw several runs on one axes.
    """
    if not isinstance(history, History):
        raise ValueError(f"history must be the History that lmcourse.train.train returns, got "
                         f"{type(history).__name__}")
    if x not in ("step", "seconds"):
        raise ValueError(f"x must be 'step' or 'seconds', got {x!r}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    xs = history.step if x == "step" else history.seconds
    eval_xs = history.eval_step if x == "step" else history.eval_seconds
    line, = ax.plot(xs, history.loss, lw=0.8, alpha=0.6, color=color, label=f"{label or 'train'}")
    if history.eval_loss:
        ax.plot(eval_xs, history.eval_loss, "o-", ms=4, color=line.get_color(),
                label=f"{label + ' ' if label else ''}validation")
    ax.set_xlabel("optimizer step" if x == "step" else "wall-clock time (s)")
    ax.set_ylabel(f"loss ({unit})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig
