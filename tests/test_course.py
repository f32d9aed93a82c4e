"""The course runner and the checks of stored notebooks, on tiny synthetic notebooks in tmp dirs."""

import base64
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import nbformat
import numpy as np
import pytest
import torch

from lmcourse import course
from lmcourse.course import KeyResult, runner


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return json.loads(nbformat.writes(nb))


def code(source, count, outputs):
    cell = nbformat.v4.new_code_cell(source, execution_count=count)
    cell.outputs = [nbformat.v4.new_output(**o) for o in outputs]
    return cell


def markdown(source):
    return nbformat.v4.new_markdown_cell(source)


def stream(text, name="stdout"):
    return {"output_type": "stream", "name": name, "text": text}


OK = stream("fine\n")


# --- stored-output health -------------------------------------------------------------------


def test_a_healthy_notebook_has_no_problems():
    assert course.notebook_problems(notebook(code("1", 1, [OK]), code("2", 2, [OK])), "nb") == []


def test_unexecuted_cell_is_reported():
    problems = course.notebook_problems(notebook(code("1", 1, [OK]), code("2", None, [])), "nb")
    assert any("never executed" in p for p in problems)


def test_cell_without_output_is_reported():
    assert any("no stored output" in p for p in course.notebook_problems(notebook(code("x = 1", 1, [])), "nb"))


def test_an_exercise_stub_may_have_no_output():
    stub = code("def f(x):\n    raise NotImplementedError  # your code", 1, [])
    stub.metadata["tags"] = ["exercise"]
    assert course.notebook_problems(notebook(stub), "nb") == []
    stub.metadata["tags"] = []
    assert "no stored output" in course.notebook_problems(notebook(stub), "nb")[0]


def test_stored_error_is_reported():
    error = {"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}
    assert any("stored an error" in p for p in course.notebook_problems(notebook(code("1", 1, [error])), "nb"))


def test_out_of_order_counts_are_reported():
    problems = course.notebook_problems(notebook(code("1", 2, [OK]), code("2", 1, [OK])), "nb")
    assert any("not 1..n" in p for p in problems)


def test_machine_path_in_output_is_reported():
    leak = stream("saved to /home/alice/x.pt\n")
    assert any("machine path" in p for p in course.notebook_problems(notebook(code("1", 1, [leak])), "nb"))


def test_unknown_notebook_name_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        course.notebook_paths(["99_nothing"])


# --- key results ----------------------------------------------------------------------------


def test_key_result_prints_exactly_one_line(capsys):
    course.key_result("gpt_nats_per_char", 1.496, "nats/char")
    course.key_result("qa_span_accuracy", 22.0, "%", note="dev split; 95 % interval 20.1-23.9")
    assert capsys.readouterr().out == ("key result: gpt_nats_per_char = 1.496 nats/char\n"
                                       "key result: qa_span_accuracy = 22 %; dev split; 95 % interval 20.1-23.9\n")


@pytest.mark.parametrize("name", ["GPT nats", "gptNats", "", "1_gpt", "gpt__nats", "gpt_", "gpt-nats", None])
def test_key_result_refuses_names_that_are_not_snake_case(name):
    with pytest.raises(ValueError, match="snake_case"):
        course.key_result(name, 1.0, "nats/char")


@pytest.mark.parametrize("value", ["1.5", True, None, torch.tensor(1.5), np.array([1.5]), math.nan, math.inf])
def test_key_result_refuses_values_that_are_not_plain_finite_numbers(value):
    with pytest.raises(ValueError, match="value must be"):
        course.key_result("gpt_nats_per_char", value, "nats/char")


@pytest.mark.parametrize("unit", ["", " nats", "nats; per char", "a\nb", None])
def test_key_result_refuses_a_missing_or_malformed_unit(unit):
    with pytest.raises(ValueError, match="unit must be"):
        course.key_result("gpt_nats_per_char", 1.0, unit)


def test_key_result_prints_numpy_scalars_without_float32_noise(capsys):
    course.key_result("exact_match", np.float32(0.83), "fraction")
    course.key_result("steps", np.int64(2500), "steps")
    assert capsys.readouterr().out.splitlines() == ["key result: exact_match = 0.83 fraction",
                                                    "key result: steps = 2500 steps"]


@pytest.mark.parametrize("args", [("a", 0.1, "nats/char", ""), ("b_2", -3, "s", "x; y = 1"), ("c", 1e-7, "%", ""),
                                  ("d", 123456.5, "tokens/s", "")])
def test_printed_key_results_parse_back_to_the_same_values(capsys, args):
    course.key_result(*args)
    parsed = course.parse_key_result(capsys.readouterr().out)
    assert parsed == KeyResult(*args)


def test_key_results_are_collected_from_a_notebooks_outputs(capsys):
    course.key_result("bigram_nats_per_char", 2.54, "nats/char")
    printed = capsys.readouterr().out
    nb = notebook(code("x", 1, [stream("other\n" + printed)]), code("y", 2, [stream("key result: n = 3 steps\n")]))
    assert course.key_results(nb) == [KeyResult("bigram_nats_per_char", 2.54, "nats/char"), KeyResult("n", 3, "steps")]
    assert course.key_result_problems(nb, "nb") == []


def test_free_text_and_duplicate_key_results_are_reported():
    nb = notebook(code("x", 1, [stream("key result: bigram model 2.5 nats/char\n")]),
                  code("y", 2, [stream("key result: a = 1 s\n")]), code("z", 3, [stream("key result: a = 2 s\n")]))
    problems = course.key_result_problems(nb, "nb")
    assert len(problems) == 2
    assert "cell 0" in problems[0] and "key_result(name, value, unit" in problems[0]
    assert "cells 1 and 2 both print key result 'a'" in problems[1]


# --- runtime tables -------------------------------------------------------------------------


def test_runtime_table_marks_unmeasured_notebooks():
    table = course.runtime_table("00_setup", {"00_setup": {"full": {"seconds": 12.0, "machine": "m"}}})
    assert "| 00_setup | not measured | 12 s | not measured |" in table
    assert "Measured on: m." in table


def test_runtime_table_names_only_the_machines_of_the_notebook_shown():
    runtimes = {"a": {"full": {"seconds": 1.0, "machine": "cpu"}}, "b": {"gpu": {"seconds": 1.0, "machine": "H200"}}}
    assert "H200" not in course.runtime_table("a", runtimes)


def test_stale_runtime_table_and_slow_fast_mode_are_reported():
    runtimes = {"nb": {"fast": {"seconds": 37.7, "machine": "m"}, "full": {"seconds": 32.3, "machine": "m"}}}
    stale = {"output_type": "execute_result", "execution_count": 1, "metadata": {},
             "data": {"text/markdown": course.runtime_table("nb", {}), "text/plain": "<Markdown>"}}
    nb = notebook(code('Markdown(lmcourse.course.runtime_table("nb"))', 1, [stale]))
    problems = course.runtime_table_problems(nb, "nb", runtimes)
    assert "cell 0 stores a stale runtime table '| nb | not measured |" in problems[0] and "| nb | 38 s | 32 s |" in problems[0]
    assert "fast mode (37.7 s) is not faster than full mode (32.3 s)" in problems[1]
    course.set_runtime_table(nb, "nb", course.runtime_table("nb", runtimes))
    assert course.runtime_table_problems(nb, "nb", runtimes)[:1] == problems[1:]


def test_a_runtime_table_cell_without_output_gets_one_that_nbformat_accepts():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('Markdown(lmcourse.course.runtime_table("nb"))', execution_count=1)]
    assert course.set_runtime_table(nb, "nb", "| table |")
    stored = nbformat.reads(nbformat.writes(nb), as_version=4)
    nbformat.validate(stored)
    assert course.runtime_table_problems(stored, "nb", {})[0].startswith("nb: cell 0 stores a stale runtime table")


def test_a_notebook_without_a_runtime_table_cell_is_reported():
    assert "no cell shows" in course.runtime_table_problems(notebook(code("1", 1, [OK])), "nb", {})[0]


# --- the runner: what it writes and what it must not touch ----------------------------------

TABLE_CELL = 'import lmcourse\nfrom IPython.display import Markdown\nMarkdown(lmcourse.course.runtime_table("01_tiny"))'


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A course in a tmp dir: one notebook with stored full-mode outputs, runtimes, key results, README."""
    return build_tree(tmp_path, monkeypatch)


def build_tree(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    runtimes = {"01_tiny": {"full": {"seconds": 50.0, "machine": "test machine"}}}
    (nbdir / "runtimes.json").write_text(json.dumps(runtimes))
    (nbdir / "key_results.json").write_text("{}\n")
    (tmp_path / "README.md").write_text("# x\n<!-- runtimes:start -->\nold\n<!-- runtimes:end -->\nend\n")
    table = {"output_type": "execute_result", "execution_count": 1, "metadata": {},
             "data": {"text/markdown": course.runtime_table("01_tiny", runtimes), "text/plain": "<Markdown>"}}
    nb = notebook(markdown("# tiny"), code(TABLE_CELL, 1, [table]),
                  code("lmcourse.course.key_result('loss', LOSS, 'nats')", 2,
                       [stream("key result: loss = 1.5 nats\n")]))
    (nbdir / "01_tiny.ipynb").write_text(json.dumps(nb))
    monkeypatch.chdir(tmp_path)  # the runner works on the checkout the current folder belongs to
    monkeypatch.setattr(runner, "_machine", lambda: "test machine")
    monkeypatch.setattr(runner, "_device_mode", lambda mode: mode)
    return tmp_path


def fake_execute(values, seconds={"fast": 2.0, "full": 30.0}, edit=None):
    """An executor that 'runs' a notebook: counts, a table, a key result per run from `values`."""
    calls = iter(values)

    def execute(nb, path, mode, timeout=0):
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            cell.execution_count = i + 1
        nb.cells[1].outputs = [nbformat.v4.new_output("execute_result", execution_count=1, data={
            "text/markdown": course.runtime_table("01_tiny"), "text/plain": "<Markdown>"})]
        nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                      text=f"{mode} run\nkey result: loss = {value} nats\n")]
        if edit:
            edit(path)
        return seconds[mode]

    return execute


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def stored(root):
    return json.loads((root / "notebooks" / "01_tiny.ipynb").read_text())


def test_a_full_run_stores_outputs_with_the_runtime_table_of_that_run(tree, monkeypatch, capsys):
    monkeypatch.setattr(runner, "execute", fake_execute([1.25]))
    assert course.main(["run", "--mode", "full", "01_tiny"]) == 0
    nb, runtimes = stored(tree), course.load_runtimes()
    assert runtimes["01_tiny"]["full"]["seconds"] == 30.0
    assert "full run" in "".join(nb["cells"][2]["outputs"][0]["text"])
    # the table stored in the notebook includes this run's 30 s (before: the previous run's 50 s)
    assert course.runtime_table_problems(nb, "01_tiny", runtimes) == []
    assert course.recorded_key_result_problems(nb, "01_tiny", course.load_key_results()) == []
    assert "| 01_tiny | not measured | 30 s |" in (tree / "README.md").read_text()
    assert json.loads((tree / "notebooks" / "key_results.json").read_text()) == {
        "01_tiny": {"full": {"machine": "test machine",
                             "results": {"loss": {"value": 1.25, "unit": "nats", "note": ""}}}}}
    out = capsys.readouterr().out
    assert "01_tiny" in out and "30.0 s" in out and "loss = 1.25 nats" in out


def test_no_save_writes_no_file_at_all(tree, monkeypatch, capsys):
    before = snapshot(tree)
    monkeypatch.setattr(runner, "execute", fake_execute([1.25, 1.25]))
    assert course.main(["run", "--mode", "fast", "--no-save", "01_tiny"]) == 0
    assert course.main(["run", "--mode", "full", "--no-save", "01_tiny"]) == 0
    assert snapshot(tree) == before
    out = capsys.readouterr().out
    assert "2.0 s" in out and "30.0 s" in out and "nothing was written" in out


def test_make_course_fast_passes_no_save():
    makefile = (course.ROOT / "Makefile").read_text()
    recipe = makefile.split("\ncourse-fast:", 1)[1].split("\n\n", 1)[0]
    assert "--mode fast" in recipe and "--no-save" in recipe


def test_a_fast_run_keeps_the_stored_full_outputs_and_refreshes_only_the_table(tree, monkeypatch):
    monkeypatch.setattr(runner, "execute", fake_execute([9.0]))
    before = stored(tree)
    assert course.main(["run", "--mode", "fast", "01_tiny"]) == 0
    nb, runtimes = stored(tree), course.load_runtimes()
    assert nb["cells"][2] == before["cells"][2]  # the full run's key result stays
    assert runtimes["01_tiny"] == {"fast": {"seconds": 2.0, "machine": "test machine"},
                                   "full": {"seconds": 50.0, "machine": "test machine"}}
    assert course.runtime_table_problems(nb, "01_tiny", runtimes) == []
    results = json.loads((tree / "notebooks" / "key_results.json").read_text())["01_tiny"]
    assert list(results) == ["fast"] and results["fast"]["results"]["loss"]["value"] == 9.0


def test_save_fast_stores_the_fast_outputs_when_asked(tree, monkeypatch):
    monkeypatch.setattr(runner, "execute", fake_execute([9.0]))
    assert course.main(["run", "--mode", "fast", "--save-fast", "01_tiny"]) == 0
    assert "key result: loss = 9.0 nats" in "".join(stored(tree)["cells"][2]["outputs"][0]["text"])


def test_save_fast_is_refused_outside_fast_mode_or_with_no_save(tree):
    for argv in (["run", "--save-fast"], ["run", "--mode", "fast", "--save-fast", "--no-save"]):
        with pytest.raises(SystemExit):
            course.main(argv)


def test_a_failing_notebook_writes_nothing(tree, monkeypatch, capsys):
    before = snapshot(tree)
    monkeypatch.setattr(runner, "execute", fake_execute([RuntimeError("cell 3 failed")]))
    assert course.main(["run", "--mode", "full", "01_tiny"]) == 1
    assert snapshot(tree) == before
    assert "FAILED: RuntimeError: cell 3 failed" in capsys.readouterr().err


def test_a_notebook_edited_during_its_run_is_not_overwritten(tree, monkeypatch, capsys):
    def edit(path):
        path.write_text(path.read_text().replace("# tiny", "# tiny, edited"))

    monkeypatch.setattr(runner, "execute", fake_execute([1.0], edit=edit))
    assert course.main(["run", "--mode", "full", "01_tiny"]) == 1
    assert "# tiny, edited" in (tree / "notebooks" / "01_tiny.ipynb").read_text()
    assert course.load_runtimes()["01_tiny"]["full"]["seconds"] == 50.0
    assert "changed on disk while it ran" in capsys.readouterr().err


def test_check_reproducible_fails_when_a_key_result_changes(tree, monkeypatch, capsys):
    monkeypatch.setattr(runner, "execute", fake_execute([0.83, 0.93]))
    assert course.main(["run", "--no-save", "--check-reproducible", "01_tiny"]) == 1
    assert "01_tiny: loss = 0.83 nats then 0.93 nats" in capsys.readouterr().err


def test_check_reproducible_passes_when_key_results_repeat(tree, monkeypatch, capsys):
    monkeypatch.setattr(runner, "execute", fake_execute([0.83, 0.83]))
    assert course.main(["run", "--no-save", "--check-reproducible", "01_tiny"]) == 0
    assert "reproducible: 1 key results" in capsys.readouterr().out


def test_reproducibility_reports_missing_results():
    problems = course.reproducibility_problems([KeyResult("a", 1, "s")], [], "nb")
    assert problems == ["nb: key result 'a' printed in only one of the two runs"]


def test_a_real_kernel_run_stores_final_progress_bars_and_key_results(tmp_path):
    """The runner's kernel gets LMCOURSE_PROGRESS=text; stored streams keep only each bar's final line."""
    nb = notebook(code("import os, lmcourse.course, lmcourse.progress\n"
                       "for _ in lmcourse.progress.progress_bar(range(3), desc='steps'):\n    pass\n"
                       "print(os.environ['LMCOURSE_PROGRESS'], os.environ['LMCOURSE_FAST'])\n"
                       "lmcourse.course.key_result('answer', 42, 'units')", None, []))
    path = tmp_path / "01_kernel.ipynb"
    path.write_text(json.dumps(nb))
    run = course.run_notebook(path, "fast")
    assert run.error == "" and run.results == [KeyResult("answer", 42, "units")]
    text = "".join(o["text"] for o in run.nb.cells[0].outputs if o["output_type"] == "stream")
    assert "\r" not in text and not re.search(r"(?<!\d)0%", text)
    assert text.splitlines()[0].startswith("steps: 100%|") and "3/3" in text
    assert text.splitlines()[1:] == ["text 1", "key result: answer = 42 units"]
    assert path.read_text() == json.dumps(nb)  # run_notebook writes nothing


# --- coalescing streams ---------------------------------------------------------------------


def test_coalesced_streams_keep_each_lines_final_state_and_the_reading_order():
    figure = {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "<Figure>"}}
    nb = notebook(code("x", 1, [stream("a:   0%|  | 0/2\r"), stream("a:  50%|# | 1/2\ra: 100%|##| 2/2\n"),
                                stream("done\n"), figure, stream("after\n")]))
    course.coalesce_streams(nb)
    outs = nb["cells"][0]["outputs"]
    assert [o.get("text") for o in outs] == ["a: 100%|##| 2/2\ndone\n", None, "after\n"]


# --- checks of stored outputs ---------------------------------------------------------------


def png(payload: bytes) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(payload).decode(), "text/plain": "<Figure>"}}


def test_byte_identical_figures_are_reported_with_their_cells():
    nb = notebook(code("a", 1, [png(b"one")]), code("b", 2, [png(b"two"), png(b"two")]), code("c", 3, [png(b"one")]))
    problems = course.duplicate_figure_problems(nb, "nb")
    assert len(problems) == 2
    assert "cell 1 store the same image/png image twice" in problems[0]
    assert "cells 0 and 2 store the same" in problems[1]


def test_unfinished_progress_bars_are_reported_in_streams_and_widget_fallbacks():
    widget = {"output_type": "display_data", "metadata": {},
              "data": {"text/plain": "bigram:   0%|          | 0/600 [00:00<?, ?it/s]",
                       "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2}}}
    raw = stream("gpt:  97%|#########7| 146/150 [00:19<00:00]\n")
    done = stream("gpt: 100%|##########| 150/150 [00:19<00:00, loss=1.2]\n")
    problems = course.progress_bar_problems(notebook(code("a", 1, [widget]), code("b", 2, [raw, done])), "nb")
    assert len(problems) == 2 and "cell 0" in problems[0] and "146/150" in problems[1]


def test_exported_html_shows_unfinished_bars(tmp_path):
    frozen = {"output_type": "display_data", "metadata": {},
              "data": {"text/plain": "bigram:   0%|          | 0/600 [00:00<?, ?it/s]"}}
    path = tmp_path / "01_bars.ipynb"
    path.write_text(json.dumps(notebook(code("a", 1, [frozen]))))
    assert "0/600" in course.html_progress_bar_problems(path)[0]
    path.write_text(json.dumps(notebook(code("a", 1, [stream("x: 100%|##| 600/600\n")]))))
    assert course.html_progress_bar_problems(path) == []


def test_prose_numbers_are_found_with_their_units():
    text = ("The GPT reaches 1.496 nats/char in 19 s (3.2 min), 40 % of the compute and 22.0% accuracy, "
            "1.2 bits; 600 steps, GPT-2, the 1990s, python 3.11.7, `lr=3e-4`, [paper](https://x.org/1706.03762), "
            "std 0.02, 12 nats.")
    assert course.prose_numbers(text) == ["1.496 nats", "19 s", "3.2 min", "40 %", "22.0 %", "1.2 bits", "12 nats"]


def test_prose_numbers_missing_from_outputs_are_reported():
    nb = notebook(markdown("It reaches 1.50 nats/char, 40 % of the FLOPs, in about 30 s; 0.83 exact match."),
                  code("x", 1, [stream("loss 1.496\nshare 0.402\ntime 19.3 s\n")]))
    problems = course.prose_number_problems(nb, "nb")
    assert [p.split("states ")[1].split(",")[0] for p in problems] == ["'30 s'", "'0.83'"]
    assert all("markdown cell 0" in p for p in problems)
    assert "in about 30 s; 0.83 exact" in problems[0]  # the words around it, to find the sentence


def test_constants_of_the_methods_are_allowed_only_with_their_unit():
    assert course.prose_numbers("init std 0.02, beta from 1e-4, 95 % intervals, BERT's 80 % and 10 %") == []
    assert course.prose_numbers("it took 95 s, about 0.021") == ["95 s", "0.021"]


def test_widgets_that_store_only_their_repr_are_reported():
    view = {"model_id": "x", "version_major": 2, "version_minor": 0}
    bare = {"output_type": "display_data", "metadata": {}, "data": {
        "text/plain": "VBox(children=(Text(value='king'), Output()))",
        "application/vnd.jupyter.widget-view+json": view}}
    good = {"output_type": "display_data", "metadata": {}, "data": {
        "text/plain": "nearest neighbours of 'king': queen 0.71, prince 0.65",
        "application/vnd.jupyter.widget-view+json": view}}
    problems = course.widget_fallback_problems(notebook(code("a", 1, [bare]), code("b", 2, [good])), "nb")
    assert len(problems) == 1 and "cell 0" in problems[0] and "VBox(children=" in problems[0]


def tqdm_widget_state(value, maximum, right, left="fine-tuning:\u200799%"):
    return {"state": {
        "box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]}},
        "l": {"model_name": "HTMLModel", "state": {"value": left}},
        "p": {"model_name": "FloatProgressModel", "state": {"value": value, "max": maximum}},
        "r": {"model_name": "HTMLModel", "state": {"value": right}}}}


def test_unfinished_bars_in_the_stored_widget_state_are_reported():
    nb = notebook(code("a", 1, [OK]))
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": tqdm_widget_state(149, 150, "149/150")}
    assert "149/150" in course.progress_bar_problems(nb, "nb")[0]
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": tqdm_widget_state(150, 150, "150/150", "fine-tuning: 100%")}
    nb["cells"][0]["outputs"][0]["text"] = "fine-tuning: 100%|#| 150/150\n"
    assert course.progress_bar_problems(nb, "nb") == []


def test_key_results_json_must_match_the_stored_outputs():
    nb = notebook(code("x", 1, [stream("key result: loss = 1.5 nats\n")]))
    same = {"nb": {"full": {"machine": "m", "results": {"loss": {"value": 1.5, "unit": "nats", "note": ""}}}}}
    other = {"nb": {"full": {"machine": "m", "results": {"loss": {"value": 1.6, "unit": "nats", "note": ""}}}}}
    assert course.recorded_key_result_problems(nb, "nb", same) == []
    assert "differ from notebooks/key_results.json in ['loss']" in course.recorded_key_result_problems(nb, "nb", other)[0]
    assert "no full-mode entry" in course.recorded_key_result_problems(nb, "nb", {})[0]


# --- the runner's writes as one unit, Ctrl-C, timing flukes --------------------------------


class Kill(BaseException):
    """A stand-in for kill -9: nothing after it runs, not even `except Exception` blocks."""


def file_operations(monkeypatch, crash_at=None):
    """Count os.replace and os.fsync calls (the steps of a save); raise Kill instead of call number crash_at."""
    calls = []

    def counted(real):
        def operation(*args):
            if len(calls) == crash_at:
                raise Kill
            calls.append(real.__name__)
            return real(*args)
        return operation

    for name in ("replace", "fsync"):
        monkeypatch.setattr(os, name, counted(getattr(os, name)))
    return calls


def course_state(root):
    """What a reader and `course check` see: stored key result, runtimes, key_results.json, README table."""
    runtimes = json.loads((root / "notebooks" / "runtimes.json").read_text())
    return {"shown": [line for line in "".join(stored(root)["cells"][2]["outputs"][0]["text"]).splitlines()
                      if line.startswith("key result")],
            "seconds": runtimes["01_tiny"]["full"]["seconds"],
            "recorded": json.loads((root / "notebooks" / "key_results.json").read_text())["01_tiny"]["full"]["results"],
            "readme": course.readme_with_table((root / "README.md").read_text(), course.runtime_table(None, runtimes))
            == (root / "README.md").read_text()}


def saved_twice(root, monkeypatch, crash_at=None):
    """A course run in full mode once (1.25 nats in 30 s), then again (2.5 nats in 40 s) with a crash planted."""
    root.mkdir()
    build_tree(root, monkeypatch)
    monkeypatch.setattr(runner, "execute", fake_execute([1.25]))
    assert course.main(["run", "--mode", "full", "01_tiny"]) == 0
    monkeypatch.setattr(runner, "execute", fake_execute([2.5], seconds={"full": 40.0}))
    with monkeypatch.context() as patch:
        calls = file_operations(patch, crash_at)
        try:
            course.main(["run", "--mode", "full", "01_tiny"])
        except Kill:
            pass
    return calls


def test_a_save_killed_at_any_step_leaves_a_course_that_check_accepts(tmp_path, monkeypatch, capsys):
    steps = len(saved_twice(tmp_path / "whole", monkeypatch))
    new = course_state(tmp_path / "whole")
    old = {"shown": ["key result: loss = 1.25 nats"], "seconds": 30.0,
           "recorded": {"loss": {"value": 1.25, "unit": "nats", "note": ""}}, "readme": True}
    assert new == old | {"shown": ["key result: loss = 2.5 nats"], "seconds": 40.0,
                         "recorded": {"loss": {"value": 2.5, "unit": "nats", "note": ""}}}
    for k in range(steps):
        root = tmp_path / f"killed{k}"
        saved_twice(root, monkeypatch, crash_at=k)
        assert course.main(["check", "01_tiny", "--no-html"]) == 0, (k, capsys.readouterr())  # replays the journal
        assert course_state(root) in (old, new), k
        assert sorted(p.name for p in (root / "notebooks").iterdir()) == [
            "01_tiny.ipynb", "key_results.json", "runtimes.json"], k  # no journal, no pending file left
    assert steps >= 8  # the journal twice, four new files flushed, four renames


@pytest.mark.parametrize("seconds", [49.9, 49.96, 50.0, 70.0])
def test_a_fast_run_is_recorded_only_if_check_would_accept_it_beside_the_full_run(tree, monkeypatch, capsys, seconds):
    before = snapshot(tree)  # the recorded full run took 50.0 s
    monkeypatch.setattr(runner, "execute", fake_execute([9.0], seconds={"fast": seconds}))
    status = course.main(["run", "--mode", "fast", "01_tiny"])
    recorded = {"01_tiny": {"fast": {"seconds": round(seconds, 1)}, "full": {"seconds": 50.0}}}
    would_fail = [p for p in course.runtime_table_problems({}, "01_tiny", recorded) if "not faster" in p]  # check's verdict
    if would_fail:
        assert status == 1 and snapshot(tree) == before
        assert f"took {seconds:.1f} s, not less than the recorded full run (50.0 s), so nothing was saved" \
            in capsys.readouterr().err
    else:
        assert status == 0 and course.runtime_table_problems(stored(tree), "01_tiny", course.load_runtimes()) == []


def press_ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_the_run_and_saves_nothing_of_the_notebook_in_progress(tree, monkeypatch, capsys):
    before = snapshot(tree)

    def interrupted(nb, path, mode, timeout=0):
        press_ctrl_c()
        raise AssertionError("unreachable: Ctrl-C raises first")

    monkeypatch.setattr(runner, "execute", interrupted)
    assert course.main(["run", "--mode", "full", "01_tiny"]) == 130
    assert snapshot(tree) == before
    out, err = capsys.readouterr()
    assert err == "interrupted during 01_tiny, which was not saved; saved before it: none\n"
    assert "FAILED" not in out


def test_ctrl_c_read_as_a_failing_cell_still_stops_the_run(tree, monkeypatch, capsys):
    """nbclient answers Ctrl-C itself (it shuts the kernel down) and the cell then fails with another error."""
    before = snapshot(tree)

    def kernel_shut_down(nb, path, mode, timeout=0):
        with runner._CTRL_C.noting_only():  # as in runner.execute while the kernel runs
            press_ctrl_c()
        raise AssertionError("the kernel client is gone")

    monkeypatch.setattr(runner, "execute", kernel_shut_down)
    assert course.main(["run", "--mode", "full", "01_tiny"]) == 130
    assert snapshot(tree) == before
    assert capsys.readouterr().err == "interrupted during 01_tiny, which was not saved; saved before it: none\n"


def test_ctrl_c_during_a_save_lets_the_save_complete_then_stops(tree, monkeypatch, capsys):
    real = runner.atomic_write_texts

    def save_pressed(contents, journal):
        press_ctrl_c()
        real(contents, journal)

    monkeypatch.setattr(runner, "execute", fake_execute([1.25]))
    monkeypatch.setattr(runner, "atomic_write_texts", save_pressed)
    assert course.main(["run", "--mode", "full", "01_tiny"]) == 130
    assert course.main(["check", "01_tiny", "--no-html"]) == 0 and course.load_runtimes()["01_tiny"]["full"]["seconds"] == 30.0
    assert capsys.readouterr().err == "interrupted between notebooks; saved before it: 01_tiny\n"


CTRL_C_RUNNER = """
import sys
from lmcourse.course import main, runner

runner._machine = lambda: "test machine"
sys.exit(main(["run", "--root", sys.argv[1], "--mode", "fast"]))
"""


@pytest.mark.slow
def test_ctrl_c_in_a_real_kernel_run_exits_130_with_one_line(tmp_path):
    (tmp_path / "notebooks").mkdir()
    started = tmp_path / "notebooks" / "started"
    for name, source in [("01_quick", "import lmcourse.course\nlmcourse.course.key_result('answer', 42, 'units')"),
                         ("02_sleep", "import pathlib, time\npathlib.Path('started').touch()\ntime.sleep(60)")]:
        (tmp_path / "notebooks" / f"{name}.ipynb").write_text(json.dumps(notebook(code(source, None, []))))
    before = (tmp_path / "notebooks" / "02_sleep.ipynb").read_text()
    root = course.ROOT
    runner = subprocess.Popen([sys.executable, "-c", CTRL_C_RUNNER, str(tmp_path)], cwd=root, text=True,
                              env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not started.exists() and runner.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=30)
    assert runner.returncode == 130, (out, err)
    assert [line for line in err.splitlines() if line.startswith("interrupted")] == [
        "interrupted during 02_sleep, which was not saved; saved before it: 01_quick"]
    assert "FAILED" not in out + err and "KeyboardInterrupt" not in err
    assert (tmp_path / "notebooks" / "02_sleep.ipynb").read_text() == before
    assert list(json.loads((tmp_path / "notebooks" / "runtimes.json").read_text())) == ["01_quick"]


# --- where the course is: a checkout, found or named ------------------------------------------


def test_the_course_folder_is_the_checkout_the_current_folder_belongs_to(tree, monkeypatch):
    assert course.course_folder().root == tree.resolve()
    monkeypatch.chdir(tree / "notebooks")  # where a notebook's kernel runs
    assert course.course_folder().root == tree.resolve()
    assert course.runtime_table("01_tiny") == course.runtime_table("01_tiny", course.load_runtimes(course.CourseFolder(tree)))


def test_root_names_the_checkout_from_anywhere(tree, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    monkeypatch.setattr(runner, "execute", fake_execute([1.25]))
    assert course.main(["run", "--root", str(tree), "--mode", "full", "01_tiny"]) == 0
    assert json.loads((tree / "notebooks" / "runtimes.json").read_text())["01_tiny"]["full"]["seconds"] == 30.0


def test_a_root_that_is_not_a_checkout_is_refused_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit):
        course.main(["check", "--root", str(tmp_path)])
    assert f"root '{tmp_path}' is not a course checkout" in capsys.readouterr().err


def test_outside_any_checkout_the_error_says_where_it_looked_and_the_fix(tmp_path, monkeypatch):
    from lmcourse.course import folder

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(folder, "PACKAGE_CHECKOUT", tmp_path / "site-packages")  # an installed, not cloned, package
    with pytest.raises(FileNotFoundError, match=r"no course checkout found in .*site-packages.*--root"):
        course.load_runtimes()
    # but a notebook copied out of the course still shows its (unmeasured) runtime table
    assert course.runtime_table("01_tiny") == course.runtime_table("01_tiny", {})


def test_python_dash_m_runs_the_command_line(tree):
    done = subprocess.run([sys.executable, "-m", "lmcourse.course", "table", "--root", str(tree)], cwd=course.ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == course.runtime_table(folder=course.CourseFolder(tree))
