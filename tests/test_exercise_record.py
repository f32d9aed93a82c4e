"""Exercise progress is kept on disk per learner: a restarted kernel loses nothing, the course's solution cells
are never counted, and a progress file that cannot be read is left as it is."""

import json
import linecache

import pytest

from lmcourse import exercises
from lmcourse.exercises import record
from tests.exercise_cells import CHAPTERS
from tests.solution_hashes import solution_hashes

CELLS = {c.id: c for chapter in CHAPTERS.values() for c in chapter}
EXERCISE = "04.masked_softmax"
LEARNERS = '''
import torch


def masked_softmax(scores, mask):
    # written by the learner: the same idea as the course's solution, in other words
    filled = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(filled, dim=-1)
    return torch.nan_to_num(weights, nan=0.0)
'''


def as_in_a_notebook(source: str, name: str, cell: int):
    """Define `name` from `source` the way IPython runs a cell: the source registered with linecache, so that
    inspect can show it."""
    filename = f"/tmp/ipykernel_0/{cell}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


@pytest.fixture
def progress_file(tmp_path, monkeypatch):
    path = tmp_path / "progress.json"
    monkeypatch.setenv("LMCOURSE_EXERCISE_RECORD", str(path))
    exercises.reset()
    yield path
    exercises.reset()


def test_solution_hashes_json_is_current():
    assert json.loads(record.HASHES.read_text()) == solution_hashes(), "run python -m tests.solution_hashes"


def test_a_learners_right_answer_is_saved_and_survives_a_restart(progress_file):
    assert exercises.check(EXERCISE, as_in_a_notebook(LEARNERS, "masked_softmax", 1))
    saved = json.loads(progress_file.read_text())
    assert saved["format"] == 1 and saved["exercises"][EXERCISE]["status"] == "done"
    exercises.reset()  # a restarted kernel
    assert exercises.progress("04")[EXERCISE] == "done"


def test_done_stays_done_after_a_wrong_attempt(progress_file):
    exercises.check(EXERCISE, as_in_a_notebook(LEARNERS, "masked_softmax", 1))
    wrong = as_in_a_notebook(CELLS[EXERCISE].wrong[next(iter(CELLS[EXERCISE].wrong))], "masked_softmax", 2)
    assert not exercises.check(EXERCISE, wrong)
    assert json.loads(progress_file.read_text())["exercises"][EXERCISE]["status"] == "done"
    assert exercises.progress("04")[EXERCISE] == "done"


def test_a_wrong_answer_is_saved_as_not_yet_right_and_a_stub_is_not_saved(progress_file):
    assert not exercises.check(EXERCISE, as_in_a_notebook(CELLS[EXERCISE].stub, "masked_softmax", 1))
    assert not progress_file.exists()
    wrong = as_in_a_notebook(CELLS[EXERCISE].wrong[next(iter(CELLS[EXERCISE].wrong))], "masked_softmax", 2)
    exercises.check(EXERCISE, wrong)
    assert json.loads(progress_file.read_text())["exercises"][EXERCISE]["status"] == "not yet right"


@pytest.mark.parametrize("exercise_id", sorted(CELLS))
def test_the_course_solution_cell_is_graded_but_never_counted(exercise_id, progress_file):
    cells = CELLS[exercise_id]
    answer = as_in_a_notebook(cells.solution, cells.name, 1)
    assert record.is_course_solution(exercise_id, answer)
    assert not record.is_course_solution(exercise_id, as_in_a_notebook(cells.stub, cells.name, 2))


def test_the_solution_passes_but_progress_stays_not_tried(progress_file, capsys):
    cells = CELLS[EXERCISE]
    assert exercises.check(EXERCISE, as_in_a_notebook(cells.solution, cells.name, 1))
    assert "right!" in capsys.readouterr().out
    assert not progress_file.exists() and exercises.progress("04")[EXERCISE] == "not tried"
    summary = repr(exercises.progress("04")).splitlines()[-1]
    assert summary.startswith("0 of 3 done") and "course's own solution was checked for 1 of them" in summary
    exercises.reset()
    assert repr(exercises.progress("04")).splitlines()[-1] == "0 of 3 done"


def test_an_unreadable_progress_file_is_left_as_it_is(progress_file):
    progress_file.write_text("{not json", encoding="utf-8")
    with pytest.warns(UserWarning, match="could not read your exercise progress.*leaves that file as it is"):
        assert exercises.check(EXERCISE, as_in_a_notebook(LEARNERS, "masked_softmax", 1))
    assert progress_file.read_text(encoding="utf-8") == "{not json"
    assert exercises.progress("04")[EXERCISE] == "done"  # this session still knows


def test_off_keeps_progress_in_memory_and_the_default_file_is_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMCOURSE_EXERCISE_RECORD", "off")
    assert record.progress_path() is None
    monkeypatch.delenv("LMCOURSE_EXERCISE_RECORD")
    monkeypatch.setenv("LMCOURSE_CACHE", str(tmp_path))
    assert record.progress_path() == tmp_path / "progress.json"
