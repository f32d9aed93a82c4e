"""Stored notebooks read well in static views: no widget state, so each widget output shows its stored fallback.

With `metadata.widgets` stored, `jupyter nbconvert --to html` (and GitHub, nbviewer) hand each widget output to
a widget manager fetched from a CDN, which draws nothing offline, instead of its PNG or text fallback.
"""

import html
import json
import re

import nbformat
import pytest

from lmcourse import course
from lmcourse.course import runner
from lmcourse.course.checks import widget_state_problems
from lmcourse.course.runner import strip_stored_widget_state, strip_widget_state

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

# Re-run by hand while the runner learnt to drop the widget state: strip them after those runs with
#   .venv/bin/python -c 'import sys, pathlib; from lmcourse.course.runner import strip_stored_widget_state as s;
#   [print(p, s(pathlib.Path(p))) for p in sys.argv[1:]]' notebooks/03_rnn_lstm.ipynb ...
# and empty this set.


def widget_state(model_id="abc"):
    return {WIDGET_STATE: {"state": {model_id: {"model_module": "@jupyter-widgets/controls", "model_name": "TextModel",
                                                "model_module_version": "2.0.0", "state": {"value": "king"}}},
                           "version_major": 2, "version_minor": 0}}


def widget_notebook():
    """A notebook as nbclient stores it: a widget output (view, PNG and text fallbacks) and the widget state."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("explorer", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "image/png": PNG, "text/plain": "explorer (live in Jupyter); first query 'king'"})]
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 · tiny"), cell]
    nb.metadata["widgets"] = widget_state()
    return nb


def test_strip_widget_state_drops_the_metadata_and_keeps_every_output():
    nb = widget_notebook()
    outputs = json.dumps(nb.cells[1].outputs)
    assert strip_widget_state(nb) is True
    assert "widgets" not in nb.metadata
    assert json.dumps(nb.cells[1].outputs) == outputs  # the view and its fallbacks stay
    assert strip_widget_state(nb) is False


def test_strip_widget_state_also_drops_a_state_bundle_stored_in_an_output():
    nb = widget_notebook()
    nb.cells[1].outputs[0].data[WIDGET_STATE] = widget_state()[WIDGET_STATE]
    assert strip_widget_state(nb) is True
    assert set(nb.cells[1].outputs[0].data) == {WIDGET_VIEW, "image/png", "text/plain"}


def test_stripping_a_stored_notebook_keeps_its_cells_byte_for_byte(tmp_path):
    path = tmp_path / "01_tiny.ipynb"
    path.write_text(nbformat.writes(widget_notebook()) + "\n", encoding="utf-8")
    before = path.read_text(encoding="utf-8")
    assert strip_stored_widget_state(path) is True
    after = path.read_text(encoding="utf-8")
    assert "widgets" not in json.loads(after)["metadata"]
    assert runner._cells_text(after) == runner._cells_text(before) is not None
    assert strip_stored_widget_state(path) is False
    assert path.read_text(encoding="utf-8") == after  # nothing to strip: the file is not rewritten


def test_stripping_refuses_a_file_whose_cells_it_would_rewrite(tmp_path):
    path = tmp_path / "01_tiny.ipynb"
    text = json.dumps(widget_notebook())  # one line, not the layout nbformat writes: a rewrite would touch cells
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"01_tiny.ipynb: its cells are not stored as nbformat writes them.*"
                                         r"make course NOTEBOOKS=01_tiny"):
        strip_stored_widget_state(path)
    assert path.read_text(encoding="utf-8") == text


def test_the_check_reports_a_stored_widget_state_with_the_fix():
    nb = json.loads(nbformat.writes(widget_notebook()))
    [problem] = widget_state_problems(nb, "01_tiny")
    assert "01_tiny: the notebook's metadata stores widget state (1 widget models)" in problem
    assert "strip_stored_widget_state" in problem
    strip_widget_state(nb)
    assert widget_state_problems(nb, "01_tiny") == []


def test_course_check_lists_widget_state_among_its_checks(tmp_path):
    path = tmp_path / "01_tiny.ipynb"
    path.write_text(nbformat.writes(widget_notebook()) + "\n", encoding="utf-8")
    found = course.check_notebook(path, runtimes={}, html=False, recorded={})
    assert len(found["widget state"]) == 1


# --- the runner saves no widget state -----------------------------------------------------------


@pytest.fixture
def tiny_course(tmp_path, monkeypatch):
    """A course in a tmp dir with one notebook whose stored copy carries widget state."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "runtimes.json").write_text(json.dumps(
        {"01_tiny": {"full": {"seconds": 50.0, "machine": "test machine"}}}))
    (tmp_path / "notebooks" / "key_results.json").write_text("{}\n")
    nb = widget_notebook()
    nb.cells.insert(1, nbformat.v4.new_code_cell(
        'import lmcourse\nlmcourse.course.runtime_table("01_tiny")', execution_count=1))
    nb.cells[2].execution_count = 2
    (tmp_path / "notebooks" / "01_tiny.ipynb").write_text(nbformat.writes(nb) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "_machine", lambda: "test machine")
    monkeypatch.setattr(runner, "_device_mode", lambda mode: mode)
    return tmp_path


def executor_that_stores_widget_state(seconds):
    def execute(nb, path, mode, timeout=0):
        nb.metadata["widgets"] = widget_state("new")  # what nbclient does with store_widget_state=True
        return seconds

    return execute


@pytest.mark.parametrize("mode, seconds", [("full", 30.0), ("fast", 2.0)])
def test_the_runner_saves_no_widget_state(tiny_course, monkeypatch, mode, seconds):
    monkeypatch.setattr(runner, "execute", executor_that_stores_widget_state(seconds))
    assert course.main(["run", "--mode", mode, "01_tiny"]) == 0
    saved = json.loads((tiny_course / "notebooks" / "01_tiny.ipynb").read_text())
    assert "widgets" not in saved["metadata"]
    assert widget_state_problems(saved, "01_tiny") == []
    assert set(saved["cells"][2]["outputs"][0]["data"]) == {WIDGET_VIEW, "image/png", "text/plain"}


def test_the_runner_executes_a_notebook_that_prints_into_an_output_widget(tmp_path):
    """nbclient's Output-widget hook writes into the widget state it tracks: the runner must let it track it (and
    strips it on save, above); with store_widget_state=False this notebook failed with a KeyError (chapter 06)."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "import ipywidgets\nfrom IPython.display import display\nout = ipywidgets.Output()\ndisplay(out)\n"
        "with out:\n    print('inside the widget')"))
    runner.execute(nb, tmp_path / "01_tiny.ipynb", "fast", timeout=120)
    assert nb.cells[0].outputs, "the cell's output (the widget view) is stored"


# --- the stored notebooks ------------------------------------------------------------------------


def stored_paths():
    return [pytest.param(p, id=p.stem) for p in course.notebook_paths()]


@pytest.mark.parametrize("path", stored_paths())
def test_stored_notebooks_carry_no_widget_state(path):
    problems = widget_state_problems(json.loads(path.read_text(encoding="utf-8")), path.stem)
    assert problems == [], "\n" + "\n".join(problems)


WIDGET_PATHS = [p for p in course.notebook_paths() if WIDGET_VIEW in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", WIDGET_PATHS, ids=[p.stem for p in WIDGET_PATHS])
def test_exported_html_shows_each_widgets_fallback_and_loads_no_widget_manager(path):
    """`jupyter nbconvert --to html`: every PNG the notebook stores is an <img>, and nothing comes from a CDN."""
    from nbconvert import HTMLExporter

    nb = json.loads(path.read_text(encoding="utf-8"))
    outputs = [out.get("data", {}) for cell in nb["cells"] for out in cell.get("outputs", [])]
    page, _ = HTMLExporter().from_filename(str(path))
    assert len(re.findall(r"<img [^>]*src=\"data:image/png", page)) == sum("image/png" in data for data in outputs)
    for data in outputs:  # a widget stored with a text fallback only shows that text
        if WIDGET_VIEW in data and "image/png" not in data:
            assert html.escape("".join(data["text/plain"])[:60], quote=False) in page
    assert "unpkg.com" not in page and "cdn.jsdelivr.net" not in page
    assert WIDGET_STATE not in page
