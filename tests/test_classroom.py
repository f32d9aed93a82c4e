import nbformat
import pytest

from lmcourse import classroom
from lmcourse.course import notebook_paths

PATHS = notebook_paths()


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_handout_keeps_no_solution(path):
    nb = nbformat.read(path, as_version=4)
    shared = {line for c in nb.cells if not classroom.is_solution(c) for line in c.source.splitlines()}
    secret = {line for c in nb.cells if classroom.is_solution(c) for line in c.source.splitlines()
              if line.strip() and line not in shared}
    sheet = classroom.handout(nb)
    assert not any(classroom.is_solution(c) for c in sheet.cells)
    leaked = secret & {line for c in sheet.cells for line in c.source.splitlines()}
    assert not leaked, f"solution lines survived in the handout: {leaked}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_handout_clears_exercise_outputs_and_keeps_the_rest(path):
    nb = nbformat.read(path, as_version=4)
    sheet = classroom.handout(nb)
    assert all(not c.outputs for c in sheet.cells if classroom.is_exercise(c))
    original = {c.id: c for c in nb.cells}
    kept = [c for c in sheet.cells if c.cell_type == "code" and not classroom.is_exercise(c)]
    assert kept and all(c.outputs == original[c.id].outputs for c in kept)


def test_every_chapter_with_exercises_has_solutions():
    for path in PATHS:
        nb = nbformat.read(path, as_version=4)
        if any(classroom.is_exercise(c) for c in nb.cells):
            assert any(classroom.is_solution(c) for c in nb.cells), f"{path.name}: exercises without a solution"


def test_answer_key_shows_solutions():
    nb = nbformat.read(PATHS[0], as_version=4)
    key = classroom.answer_key(nb)
    solutions = [c for c in key.cells if classroom.is_solution(c)]
    assert solutions and all(not c.metadata.get("jupyter", {}).get("source_hidden") for c in solutions)


def test_slides_start_at_headings_and_skip_solutions():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("### Detail"),
        nbformat.v4.new_code_cell("answer = 2", metadata={"tags": ["solution"]})])
    kinds = [c.metadata["slideshow"]["slide_type"] for c in classroom.set_slide_metadata(nb).cells]
    assert kinds == ["slide", "-", "subslide", "skip"]


def _exercise_notebook():
    """A task, a stub, its check (with a stored verdict), the hidden solution, and the progress summary."""
    stored = [nbformat.v4.new_output("stream", name="stdout", text="✓ 04.masked_softmax: right!\n")]
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("### Exercise 1 · Masked softmax", metadata={"tags": ["exercise"]}),
        nbformat.v4.new_code_cell("def masked_softmax(scores, mask):\n    raise NotImplementedError  # your code"),
        nbformat.v4.new_code_cell('check("04.masked_softmax", masked_softmax);', outputs=stored),
        nbformat.v4.new_code_cell("def masked_softmax(scores, mask):\n    return scores.softmax(-1)",
                                  metadata={"tags": ["solution"], "jupyter": {"source_hidden": True}}, outputs=stored),
        nbformat.v4.new_code_cell('lmcourse.exercises.progress("04")', outputs=stored),
        nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")]),
    ])


def test_stubs_checks_and_progress_are_exercises_by_content_without_tags():
    nb = _exercise_notebook()
    assert [classroom.is_exercise(c) for c in nb.cells] == [False, True, True, False, True, False]


def test_handout_drops_solutions_and_clears_verdicts_but_keeps_the_task():
    sheet = classroom.handout(_exercise_notebook())
    assert [c.source.split("\n")[0] for c in sheet.cells] == [
        "### Exercise 1 · Masked softmax", "def masked_softmax(scores, mask):", 'check("04.masked_softmax", masked_softmax);',
        'lmcourse.exercises.progress("04")', "x = 1"]
    assert [bool(c.get("outputs")) for c in sheet.cells if c.cell_type == "code"] == [False, False, False, True]


def test_answer_key_keeps_solutions_visible_with_their_outputs():
    key = classroom.answer_key(_exercise_notebook())
    solution = next(c for c in key.cells if classroom.is_solution(c))
    assert "source_hidden" not in solution.metadata.get("jupyter", {}) and solution.outputs


def test_make_handout_writes_a_handout_and_an_answer_key_per_notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(classroom, "BUILD", tmp_path)
    assert len(classroom.write_handouts()) == 2 * len(PATHS)
    for path in PATHS:
        sheet = nbformat.read(tmp_path / "handout" / path.name, as_version=4)
        key = nbformat.read(tmp_path / "answers" / path.name, as_version=4)
        assert not any(classroom.is_solution(c) for c in sheet.cells)
        assert sum(classroom.is_solution(c) for c in key.cells) == sum(
            classroom.is_solution(c) for c in nbformat.read(path, as_version=4).cells)
