"""The stored notebooks: executed top to bottom, healthy outputs, and the course's conventions."""

import json
import re

import pytest

from lmcourse import course
from lmcourse.course import NOTEBOOKS, notebook_paths, notebook_problems

PATHS = notebook_paths()
RUNTIMES = course.load_runtimes()
KEY_RESULTS = course.load_key_results()


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_course_has_its_setup_notebook():
    assert (NOTEBOOKS / "00_setup.ipynb") in PATHS


def test_notebooks_are_numbered_in_teaching_order():
    numbers = [int(p.name[:2]) for p in PATHS]
    assert numbers == sorted(set(numbers))


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stored_outputs_are_healthy(path):
    assert notebook_problems(load(path), path.name) == []


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_uses_the_course_kernel(path):
    assert load(path)["metadata"]["kernelspec"]["name"] == "lmcourse"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_parameters_cell_sets_fast_mode_seed_and_device_near_the_top(path):
    cells = load(path)["cells"]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    source = "".join(cells[tagged[0]]["source"])
    assert tagged[0] < 6
    for needed in ("lmcourse.fast_mode()", "SEED", "lmcourse.get_device(", "seed_everything"):
        assert needed in source


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_opens_with_a_title_and_learning_goals(path):
    first = "".join(load(path)["cells"][0]["source"])
    assert first.startswith("# ")
    assert re.search(r"learning goals|you will learn", first, re.IGNORECASE)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_solution_cells_are_hidden(path):
    for cell in load(path)["cells"]:
        if "solution" in cell.get("metadata", {}).get("tags", []):
            assert cell["metadata"].get("jupyter", {}).get("source_hidden") is True


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_figures_are_stored_as_png(path):
    for cell in load(path)["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/svg+xml" in data or "application/pdf" in data:
                pytest.fail(f"{path.name}: store figures as PNG")


CORE_WIDGET_MODULES = {"@jupyter-widgets/controls", "@jupyter-widgets/base", "@jupyter-widgets/output"}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stored_widgets_are_core_ipywidgets_only(path):
    """Widgets from other packages would need JavaScript from a CDN, which an offline learner cannot load."""
    state = load(path).get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    for model in state.get("state", {}).values():
        assert model["model_module"] in CORE_WIDGET_MODULES, f"{path.name} uses {model['model_module']}"


def fix_list(problems):
    """A failure message that lists exactly what to fix, one line each."""
    return "\n" + "\n".join(problems)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stored_runtime_table_is_the_one_in_runtimes_json(path):
    """The table a reader sees comes from the run that stored the outputs (make course rewrites it)."""
    problems = course.runtime_table_problems(load(path), path.stem, RUNTIMES)
    assert problems == [], fix_list(problems)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_no_figure_is_stored_twice(path):
    problems = course.duplicate_figure_problems(load(path), path.stem)
    assert problems == [], fix_list(problems)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_numbers_in_prose_appear_in_the_notebooks_outputs(path):
    """A number in a markdown cell must be shown by an output (or be a constant on course.ALLOWED_PROSE_NUMBERS)."""
    problems = course.prose_number_problems(load(path), path.stem)
    assert problems == [], fix_list(problems)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stored_progress_bars_are_finished(path):
    problems = course.progress_bar_problems(load(path), path.stem)
    assert problems == [], fix_list(problems)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_exported_html_shows_no_unfinished_progress_bar(path):
    """What `jupyter nbconvert --to html` makes of the notebook: no "0%|" bar frozen at its start."""
    problems = course.html_progress_bar_problems(path)
    assert problems == [], fix_list(problems)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_widgets_store_a_meaningful_static_fallback(path):
    problems = course.widget_fallback_problems(load(path), path.stem)
    assert problems == [], fix_list(problems)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_key_result_lines_parse(path):
    nb = load(path)
    problems = course.key_result_problems(nb, path.stem)
    assert problems == [], fix_list(problems)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_key_results_json_comes_from_the_run_that_stored_the_outputs(path):
    problems = course.recorded_key_result_problems(load(path), path.stem, KEY_RESULTS)
    assert problems == [], fix_list(problems)
