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
    kept = [c for c in sheet.cells if c.cell_type == "code" and not classroom.is_exercise(c)]
    assert kept and all(c.outputs for c in kept)


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
