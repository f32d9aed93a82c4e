"""The exercise checkers can tell right from wrong: every stored solution passes, every stub reads
"not answered yet", every plausible wrong answer is rejected; hints escalate; a handout runs."""

import pytest

from lmcourse import exercises
from lmcourse.exercises.grading import REGISTRY
from tests.exercise_cells import CHAPTERS

ALL = [cells for chapter in CHAPTERS.values() for cells in chapter]
WRONG = [(cells, what) for cells in ALL for what in cells.wrong]


def define(source: str, cells):
    """Run a cell's source in a fresh namespace (as a notebook would) and return the learner's object."""
    namespace = {}
    exec(compile(source, f"<{cells.id}>", "exec"), namespace)
    context = eval(f"dict({cells.context.lstrip(', ')})", namespace) if cells.context else {}
    return namespace[cells.name], context


@pytest.fixture(autouse=True)
def fresh_progress():
    exercises.reset()
    yield
    exercises.reset()


@pytest.mark.parametrize("cells", ALL, ids=lambda c: c.id)
def test_stored_solution_is_right(cells, capsys):
    answer, context = define(cells.solution, cells)
    assert exercises.check(cells.id, answer, **context), capsys.readouterr().out
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("cells", ALL, ids=lambda c: c.id)
def test_stub_reads_not_answered_yet_without_a_hint(cells, capsys):
    answer, context = define(cells.stub, cells)
    assert not exercises.check(cells.id, answer, **context)
    out = capsys.readouterr().out
    assert "not answered yet" in out and "Hint" not in out


@pytest.mark.parametrize("cells, what", WRONG, ids=lambda x: x if isinstance(x, str) else x.id)
def test_plausible_wrong_answer_is_rejected(cells, what, capsys):
    answer, context = define(cells.wrong[what], cells)
    assert not exercises.check(cells.id, answer, **context), f"{cells.id} accepted: {what}"
    out = capsys.readouterr().out
    assert "✗" in out and "case '" in out and "Hint 1/" in out
