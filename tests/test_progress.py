"""Progress bars end in a state that reads well in a stored notebook: finished, and saying why when stopped early."""

import re

import pytest
import torch
from torch import nn

from lmcourse import course, progress
from lmcourse.train import train


def final_line(text: str) -> str:
    """What a terminal (and the course runner's stored output) shows of a redrawn bar."""
    return course._visible_text(text).strip().splitlines()[-1]


@pytest.mark.parametrize("value, style", [("text", "text"), ("off", "off"), ("widget", "widget"), ("", "text")])
def test_progress_style_comes_from_the_environment(monkeypatch, value, style):
    monkeypatch.setenv(progress.ENV, value)
    assert progress.progress_style() == style  # "" means auto: text outside a notebook kernel


def test_an_unknown_progress_style_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(progress.ENV, "fancy")
    with pytest.raises(ValueError, match="LMCOURSE_PROGRESS must be one of auto, text, widget, off, got 'fancy'"):
        progress.progress_style()


def test_a_text_bar_ends_finished_and_stays(monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV, "text")
    for _ in progress.progress_bar(range(4), desc="steps"):
        pass
    assert re.match(r"steps: 100%\|\S+\| 4/4 \[", final_line(capsys.readouterr().out))


def test_off_prints_nothing(monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV, "off")
    for _ in progress.progress_bar(range(4), desc="steps"):
        pass
    assert capsys.readouterr().out == ""


def test_training_stopped_by_its_time_limit_shows_a_finished_bar_that_says_why(monkeypatch, capsys):
    """Before: a bar frozen at '0%|' or '3%| 2/60' in every static view, as if training had crashed."""
    monkeypatch.setenv(progress.ENV, "text")
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    batches = [(torch.randn(4, 2), torch.randn(4, 1))]
    history = train(model, batches, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), steps=60,
                    loss_fn=lambda m, b: nn.functional.mse_loss(m(b[0]), b[1]), time_limit=1e-9, desc="fit")
    n = len(history.step)
    line = final_line(capsys.readouterr().out)
    assert n < 60 and f"| {n}/{n} [" in line and line.startswith("fit: 100%|")
    assert f"stopped at {n} of 60 (time limit 1e-09 s)" in line


def test_a_finished_training_bar_reads_100_percent(monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV, "text")
    model = nn.Linear(2, 1)
    train(model, [(torch.randn(4, 2), torch.randn(4, 1))], optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
          steps=5, loss_fn=lambda m, b: nn.functional.mse_loss(m(b[0]), b[1]), desc="fit")
    assert re.match(r"fit: 100%\|\S+\| 5/5 \[.*loss=", final_line(capsys.readouterr().out))


def test_a_widget_bar_stores_its_final_state_as_its_static_text(monkeypatch):
    """A live widget's stored text/plain is computed when first shown ('0%'); closing must refresh it."""
    import IPython.display

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(repr(obj))

    def display(obj, display_id=None):
        shown.append(repr(obj))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setenv(progress.ENV, "widget")
    progress._widget_bar.cache_clear()
    try:
        for _ in progress.progress_bar(range(3), desc="steps"):
            pass
    finally:
        progress._widget_bar.cache_clear()
    assert "0/3" in shown[0]  # what tqdm stores at first display ...
    assert re.match(r"steps: 100%\|.*\| 3/3 \[", shown[-1])  # ... replaced by the final state on close
