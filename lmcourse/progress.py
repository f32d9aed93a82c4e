"""Progress bars that read well live in JupyterLab and in a stored notebook (GitHub, nbviewer, HTML).

A tqdm widget shows progress live, but a static view shows only the text stored beside it, which
tqdm computes when the bar first appears: "0%| | 0/600", as if training never started. So:

- run headlessly by the course runner or nbval (env LMCOURSE_PROGRESS=text), bars are plain text
  on stdout; the runner keeps only each line's final state, "100%|##########| 600/600 [00:05<00:00]";
- in a live notebook they are widgets whose stored text is refreshed when the bar closes;
- elsewhere (a terminal, a script) tqdm's text bar.

LMCOURSE_PROGRESS=off turns all bars off.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable

from tqdm import tqdm as text_tqdm

ENV = "LMCOURSE_PROGRESS"
_MODES = ("auto", "text", "widget", "off")


def _in_notebook_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


def progress_style() -> str:
    """The bar style, "text", "widget" or "off": LMCOURSE_PROGRESS, else a widget in a notebook kernel, else text."""
    style = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if style not in _MODES:
        raise ValueError(f"{ENV} must be one of {', '.join(_MODES)}, got {style!r}")
    if style == "auto":
        return "widget" if _in_notebook_kernel() else "text"
    return style


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 disable: bool = False) -> text_tqdm:
    """A tqdm bar in the style `progress_style()` picks; it stays visible, finished, after close()."""
    style = "off" if disable else progress_style()
    if style == "widget":
        return _widget_bar()(iterable, total=total, desc=desc, leave=True)
    # stdout, not tqdm's stderr: a notebook shows stderr as a warning box. mininterval: a headless run
    # sends every redraw to the notebook until the runner keeps the last; half a second is enough to watch
    return text_tqdm(iterable, total=total, desc=desc, leave=True, disable=style == "off", file=sys.stdout,
                     mininterval=0.5)


def stop_early(bar: text_tqdm, reason: str) -> None:
    """Mark a bar that stops before its total (a time limit, a short iterator) as finished, saying why."""
    if bar.disable:
        return
    bar.set_postfix_str(f"{bar.postfix + ', ' if bar.postfix else ''}stopped at {bar.n} of {bar.total} ({reason})",
                        refresh=False)
    bar.total = bar.n
    if hasattr(bar, "container"):  # a widget: its bar's maximum too
        bar.container.children[1].max = bar.n
    bar.refresh()


@functools.cache
def _widget_bar() -> type:
    from IPython.display import display
    from tqdm.notebook import tqdm_notebook

    class WidgetBar(tqdm_notebook):
        """tqdm's widget, shown through a display handle so close() can store its final text too."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, display=False, **kwargs)
            self._handle = display(self.container, display_id=True) if not self.disable else None
            self.displayed = True

        def close(self):
            super().close()
            if self._handle is not None:
                self._handle.update(self.container)  # the stored text/plain becomes the final state
                self._handle = None

    return WidgetBar
