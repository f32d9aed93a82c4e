import json

import nbformat

from lmcourse import course


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return json.loads(nbformat.writes(nb))


def code(source, count, outputs):
    cell = nbformat.v4.new_code_cell(source, execution_count=count)
    cell.outputs = [nbformat.v4.new_output(**o) for o in outputs]
    return cell


OK = {"output_type": "stream", "name": "stdout", "text": "fine\n"}


def test_a_healthy_notebook_has_no_problems():
    assert course.notebook_problems(notebook(code("1", 1, [OK]), code("2", 2, [OK])), "nb") == []


def test_unexecuted_cell_is_reported():
    problems = course.notebook_problems(notebook(code("1", 1, [OK]), code("2", None, [])), "nb")
    assert any("never executed" in p for p in problems)


def test_cell_without_output_is_reported():
    assert any("no stored output" in p for p in course.notebook_problems(notebook(code("x = 1", 1, [])), "nb"))


def test_stored_error_is_reported():
    error = {"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}
    assert any("stored an error" in p for p in course.notebook_problems(notebook(code("1", 1, [error])), "nb"))


def test_out_of_order_counts_are_reported():
    problems = course.notebook_problems(notebook(code("1", 2, [OK]), code("2", 1, [OK])), "nb")
    assert any("not 1..n" in p for p in problems)


def test_machine_path_in_output_is_reported():
    leak = {"output_type": "stream", "name": "stdout", "text": "saved to /home/alice/x.pt\n"}
    assert any("machine path" in p for p in course.notebook_problems(notebook(code("1", 1, [leak])), "nb"))


def test_runtime_table_marks_unmeasured_notebooks(monkeypatch, tmp_path):
    monkeypatch.setattr(course, "RUNTIMES", tmp_path / "runtimes.json")
    (tmp_path / "runtimes.json").write_text(json.dumps({"00_setup": {"full": {"seconds": 12.0, "machine": "m"}}}))
    table = course.runtime_table("00_setup")
    assert "| 00_setup | not measured | 12 s | not measured |" in table
    assert "Measured on: m." in table


def test_unknown_notebook_name_is_a_clear_error():
    import pytest

    with pytest.raises(FileNotFoundError, match="does not exist"):
        course.notebook_paths(["99_nothing"])


def test_key_results_are_collected_from_printed_lines(capsys):
    course.key_result("bigram 2.54 nats/char")
    printed = capsys.readouterr().out
    nb = notebook(code("x", 1, [{"output_type": "stream", "name": "stdout", "text": "other\n" + printed}]))
    assert course.key_results(nb) == ["bigram 2.54 nats/char"]
