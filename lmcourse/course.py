"""Run the course's notebooks headlessly, time them, collect their key results, check their outputs.

    python -m lmcourse.course run --mode full            # refresh every notebook's outputs (make course)
    python -m lmcourse.course run --mode fast --no-save  # what CI's nbval run does, with times; writes nothing
    python -m lmcourse.course run --check-reproducible 04_attention   # run twice, compare key results
    python -m lmcourse.course check                      # stored outputs healthy and truthful?

What a run writes (never with --no-save, and only for notebooks that ran without error):
  full mode   the notebook with its new outputs, notebooks/runtimes.json, notebooks/key_results.json,
              the README's runtime table
  fast mode   the same files, but the stored (full-mode) outputs stay; only the runtime-table cell's
              output is refreshed, unless --save-fast asks to store the fast outputs too

A notebook's runtime-table cell (the one calling `runtime_table("NN_name")`) is rewritten with the
table that includes this run's time, in the same write as the outputs, so a stored table is never
one run behind. Key results are lines printed by `key_result`; `make course` collects them.

A notebook's files are replaced as one unit (a journal, notebooks/.course-save.json, lists the renames):
if the runner is killed while saving, the next `run` or `check` completes or discards that save, so the
notebook, runtimes.json, key_results.json and the README always agree. A fast run that took as long as
the recorded full run (a busy machine) is not recorded: run it again.

Ctrl-C stops the whole run at once: the notebook in progress is not saved (a save already under way
completes first), the notebooks finished before it stay saved, one line says which, and the exit
status is 130.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import math
import numbers
import os
import platform
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lmcourse import progress
from lmcourse.files import atomic_write_texts, finish_interrupted_writes

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RUNTIMES = NOTEBOOKS / "runtimes.json"
KEY_RESULTS = NOTEBOOKS / "key_results.json"
README = ROOT / "README.md"
_MACHINE_PATH = re.compile(r"/(home|root|tmp|work|Users)/")


# ---------------------------------------------------------------------------------------------
# Key results: one machine-readable line per headline number
# ---------------------------------------------------------------------------------------------

KEY_RESULT = "key result: "
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_KEY_LINE = re.compile(r"key result: (?P<name>\S+) = (?P<value>\S+) (?P<unit>[^;]+?)(?:; (?P<note>.*))?")


@dataclass(frozen=True)
class KeyResult:
    """One headline number of a notebook: `key result: <name> = <value> <unit>[; <note>]`."""

    name: str
    value: float
    unit: str
    note: str = ""

    def __str__(self) -> str:
        return f"{self.name} = {_format_value(self.value)} {self.unit}" + (f"; {self.note}" if self.note else "")


def _format_value(value: float) -> str:
    """Integers as integers; floats with at most 7 significant digits (float32 noise stays out)."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return repr(float(f"{value:.7g}"))


def key_result(name: str, value: float, unit: str, note: str = "") -> None:
    """Print a notebook's headline number as one line that `make course` collects.

    name: snake_case and stable across runs (the key the chapter's issue names), e.g. "gpt_nats_per_char".
    value: a plain number (int or float; round it to the digits you quote, at most 7 significant
    digits are printed). unit: e.g. "nats/char", "%", "s", "fraction". note: optional context.
    Prints `key result: <name> = <value> <unit>` (+ `; <note>`).
    """
    if not isinstance(name, str) or not _SNAKE.fullmatch(name):
        raise ValueError(f"key_result name must be snake_case like 'gpt_nats_per_char', got {name!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = " (use .item() for a tensor or an array element)" if hasattr(value, "item") else ""
        raise ValueError(f"key_result value must be a plain number (int or float), got {value!r}{hint}")
    if not math.isfinite(value):
        raise ValueError(f"key_result value must be finite, got {value!r} for {name!r}; a headline number "
                         "that is NaN or infinite means the experiment failed")
    if not isinstance(unit, str) or not unit.strip() or unit != unit.strip() or any(c in unit for c in ";\n"):
        raise ValueError(f"key_result unit must be a non-empty string without ';' or newlines like 'nats/char', "
                         f"'%', 's' or 'fraction', got {unit!r}")
    if not isinstance(note, str) or "\n" in note:
        raise ValueError(f"key_result note must be a one-line string, got {note!r}")
    value = int(value) if isinstance(value, numbers.Integral) else float(value)
    print(KEY_RESULT + str(KeyResult(name, value, unit, note.strip())))


def parse_key_result(line: str) -> KeyResult:
    """The KeyResult a `key result: ...` line states; ValueError when the line does not follow the format."""
    match = _KEY_LINE.fullmatch(line.rstrip())
    problem = None
    if match is None:
        problem = "it does not read 'key result: <name> = <value> <unit>[; <note>]'"
    elif not _SNAKE.fullmatch(match["name"]):
        problem = f"name {match['name']!r} is not snake_case"
    else:
        try:
            value = float(match["value"])
        except ValueError:
            problem = f"value {match['value']!r} is not a plain number"
    if problem:
        raise ValueError(f"bad key result line {line.strip()!r}: {problem}; print it with "
                         "lmcourse.course.key_result(name, value, unit, note='')")
    value = int(value) if re.fullmatch(r"-?\d+", match["value"]) else value
    return KeyResult(match["name"], value, match["unit"], match["note"] or "")


def _stream_lines(nb: dict) -> list[tuple[int, str]]:
    """(cell index, line) for every line a notebook's cells printed."""
    lines = []
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                lines += [(i, line) for line in _visible_text(_joined(out.get("text", ""))).splitlines()]
    return lines


def key_results(nb: dict) -> list[KeyResult]:
    """The key results a notebook printed, in order; ValueError for a line that does not parse."""
    return [parse_key_result(line) for _, line in _stream_lines(nb) if line.startswith(KEY_RESULT.strip())]


def key_result_problems(nb: dict, name: str) -> list[str]:
    """Key result lines that do not parse, and names printed twice."""
    problems, seen = [], {}
    for i, line in _stream_lines(nb):
        if not line.startswith(KEY_RESULT.strip()):
            continue
        try:
            result = parse_key_result(line)
        except ValueError as exc:
            problems.append(f"{name}: cell {i}: {exc}")
            continue
        if result.name in seen:
            problems.append(f"{name}: cells {seen[result.name]} and {i} both print key result {result.name!r}; "
                            "names must be unique in a notebook")
        seen.setdefault(result.name, i)
    if not problems and not seen:
        problems.append(f"{name}: prints no key result; print its headline numbers with "
                        "lmcourse.course.key_result(name, value, unit)")
    return problems


def load_key_results() -> dict:
    """notebooks/key_results.json: {notebook: {mode: {"machine", "results": {name: {"value", "unit", "note"}}}}}."""
    return json.loads(KEY_RESULTS.read_text()) if KEY_RESULTS.is_file() else {}


def recorded_key_result_problems(nb: dict, name: str, recorded: dict) -> list[str]:
    """The stored outputs' key results differ from every full-mode (CPU or GPU) entry of key_results.json."""
    try:
        shown = {r.name: {"value": r.value, "unit": r.unit, "note": r.note} for r in key_results(nb)}
    except ValueError:
        return []  # key_result_problems names the bad line
    entries = {mode: e["results"] for mode, e in recorded.get(name, {}).items() if mode in ("full", "gpu")}
    if not entries:
        return [f"{name}: no full-mode entry in notebooks/key_results.json (run it with the course runner)"]
    if shown not in entries.values():
        differ = sorted(k for k in set(shown) | {k for e in entries.values() for k in e}
                        if any(shown.get(k) != e.get(k) for e in entries.values()))
        return [f"{name}: the stored outputs' key results differ from notebooks/key_results.json in {differ} "
                "(outputs and key results must come from the same run: re-run with the course runner)"]
    return []


# ---------------------------------------------------------------------------------------------
# Runtimes and runtime tables
# ---------------------------------------------------------------------------------------------


def notebook_paths(names: list[str] | None = None) -> list[Path]:
    """The course notebooks in teaching order (NN_topic.ipynb), or the ones named."""
    if names:
        paths = [Path(n) if Path(n).suffix == ".ipynb" else NOTEBOOKS / f"{n}.ipynb" for n in names]
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(f"notebook {str(p)!r} does not exist; see {NOTEBOOKS}")
        return paths
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def load_runtimes() -> dict:
    """notebooks/runtimes.json: {notebook: {mode: {"seconds", "machine"}}}."""
    return json.loads(RUNTIMES.read_text()) if RUNTIMES.is_file() else {}


def _machine() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{os.cpu_count()}-core {platform.machine()} CPU"


def _fmt(entry: dict | None) -> str:
    if not entry:
        return "not measured"
    s = entry["seconds"]
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def runtime_table(notebook: str | None = None, runtimes: dict | None = None) -> str:
    """A markdown table of measured runtimes (fast CPU, full CPU, GPU) for one notebook or all.

    runtimes: the dict of runtimes.json (default: read it). The machines line names only the
    machines of the notebooks shown, so one notebook's table does not change with another's run.
    """
    runtimes = load_runtimes() if runtimes is None else runtimes
    names = [notebook] if notebook else [p.stem for p in notebook_paths()]
    rows = ["| notebook | fast mode (CPU) | full mode (CPU) | full mode (GPU) |", "|---|---|---|---|"]
    for name in names:
        r = runtimes.get(name, {})
        rows.append(f"| {name} | {_fmt(r.get('fast'))} | {_fmt(r.get('full'))} | {_fmt(r.get('gpu'))} |")
    machines = sorted({e["machine"] for n in names for e in runtimes.get(n, {}).values()})
    return "\n".join(rows) + (f"\n\nMeasured on: {', '.join(machines)}." if machines else "")


def runtime_table_cell(nb: dict, name: str) -> int | None:
    """Index of the code cell that shows `runtime_table("<name>")`, or None."""
    calls = (f'runtime_table("{name}")', f"runtime_table('{name}')")
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code" and any(c in _joined(cell.get("source", "")) for c in calls):
            return i
    return None


def _stored_table(cell: dict) -> str | None:
    for out in cell.get("outputs", []):
        if "text/markdown" in out.get("data", {}):
            return _joined(out["data"]["text/markdown"])
    return None


def set_runtime_table(nb: dict, name: str, table: str) -> bool:
    """Replace the stored output of the notebook's runtime-table cell with `table`; False if it has none."""
    i = runtime_table_cell(nb, name)
    if i is None:
        return False
    cell = nb["cells"][i]
    for out in cell.get("outputs", []):
        if "text/markdown" in out.get("data", {}):
            out["data"]["text/markdown"] = table
            return True
    from nbformat.v4 import new_output

    cell["outputs"] = [new_output("execute_result", execution_count=cell.get("execution_count"), data={
        "text/markdown": table, "text/plain": "<IPython.core.display.Markdown object>"})]
    return True


def readme_with_table(text: str, table: str) -> str:
    """The README text with the block between the runtimes markers replaced by `table`."""
    start, end = "<!-- runtimes:start -->", "<!-- runtimes:end -->"
    if start not in text or end not in text:
        return text
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}"


# ---------------------------------------------------------------------------------------------
# Running notebooks
# ---------------------------------------------------------------------------------------------


def _joined(text: str | list[str]) -> str:
    return "".join(text) if isinstance(text, list) else text


_CARRIAGE_RETURN = re.compile(r"[^\n]*\r(?=[^\n])")


def _visible_text(text: str) -> str:
    """What a terminal shows of a stream: each line keeps only what follows its last carriage return."""
    return _CARRIAGE_RETURN.sub("", text.replace("\r\n", "\n")).replace("\r", "")


def coalesce_streams(nb: dict) -> None:
    """Merge consecutive stream outputs of a cell and keep only each line's final state.

    A text progress bar redraws its line with carriage returns; stored raw, static renderers
    (GitHub, nbviewer, exported HTML) would show every frame from 0 %. Unlike nbclient's own
    option, streams separated by a figure are not merged, so the reading order stays.
    """
    for cell in nb.get("cells", []):
        merged = []
        for out in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if (out.get("output_type") == "stream" and last is not None and last.get("output_type") == "stream"
                    and last.get("name") == out.get("name")):
                last["text"] = _joined(last["text"]) + _joined(out["text"])
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream":
                out["text"] = _visible_text(_joined(out["text"]))
        if "outputs" in cell:
            cell["outputs"] = [o for o in merged if o.get("output_type") != "stream" or o["text"]]


class _CtrlC:
    """Ctrl-C (SIGINT) while `run_course` runs: stop the whole run at once.

    While a notebook executes, nbclient answers SIGINT itself: it shuts the kernel down, and the notebook
    then fails with some error. Our handler, put back beside nbclient's as the kernel starts, only notes the
    press there, so that the failure reads as Ctrl-C and not as the notebook FAILED. During a save it also
    only notes it (the save completes); anywhere else it raises KeyboardInterrupt at once.
    """

    def __init__(self):
        self.active = self.pressed = self.noting = False

    def _handle(self, signum, frame) -> None:
        self.pressed = True
        if not self.noting:
            raise KeyboardInterrupt

    @contextmanager
    def handling(self):
        """Install the handler for the block (only the main thread receives signals)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        self.active, self.pressed = True, False
        try:
            yield self
        finally:
            self.active = False
            signal.signal(signal.SIGINT, previous)

    def take_back(self) -> None:
        """Reinstall the handler after a library replaced it (a no-op outside `handling`)."""
        if self.active:
            signal.signal(signal.SIGINT, self._handle)

    @contextmanager
    def noting_only(self):
        self.noting = True
        try:
            yield
        finally:
            self.noting = False
            self.take_back()  # nbclient leaves Python's default handler behind

    def stop_if_pressed(self) -> None:
        if self.pressed:
            raise KeyboardInterrupt


_CTRL_C = _CtrlC()


def execute(nb: dict, path: Path, mode: str, timeout: int = 1800) -> float:
    """Execute a notebook in place in a fresh kernel (cwd: its folder); return wall-clock seconds."""
    from jupyter_client import AsyncKernelManager
    from nbclient import NotebookClient

    class KernelManager(AsyncKernelManager):
        async def start_kernel(self, **kwargs):
            _CTRL_C.take_back()  # nbclient has just claimed SIGINT for itself; see _CtrlC
            return await super().start_kernel(**kwargs)

    env = {**os.environ, "LMCOURSE_FAST": "1" if mode == "fast" else "0", progress.ENV: "text"}  # bars stored as text
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", kernel_manager_class=KernelManager,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with _CTRL_C.noting_only():
        client.execute(env=env)
    return time.perf_counter() - start


@dataclass
class Run:
    """One notebook's run: its time, key results, the executed notebook (None after a failure), the text it ran."""

    name: str
    mode: str
    original: str = ""
    seconds: float | None = None
    results: list[KeyResult] = field(default_factory=list)
    error: str = ""
    nb: dict | None = None


def run_notebook(path: Path, mode: str, timeout: int = 1800) -> Run:
    """Execute one notebook top to bottom in a fresh kernel; nothing is written."""
    import nbformat

    run = Run(path.stem, mode, original=path.read_text(encoding="utf-8"))
    nb = nbformat.reads(run.original, as_version=4)
    try:
        run.seconds = execute(nb, path, "fast" if mode == "fast" else "full", timeout)
        coalesce_streams(nb)
        run.results = key_results(nb)
    except Exception as exc:  # a failing cell: report it, go on with the other notebooks
        run.error = f"{type(exc).__name__}: {str(exc)[-2000:]}"
        return run
    run.nb = nb
    return run


def save_run(run: Run, path: Path, save_outputs: bool) -> None:
    """Write what a successful run measured: runtimes.json, key_results.json, the notebook, the README.

    save_outputs: store the run's outputs; otherwise keep the stored outputs and refresh only the
    runtime-table cell. If the notebook's file changed since the run read it (someone edited it),
    nothing is written and a ValueError says so.
    """
    with _course_lock():  # two runners at once must not lose each other's runtimes
        if path.read_text(encoding="utf-8") != run.original:
            raise ValueError(f"{path.name} changed on disk while it ran; its outputs were not saved "
                             "(run it again after the edit)")
        full = load_runtimes().get(run.name, {}).get("full", {}).get("seconds")
        if run.mode == "fast" and full is not None and round(run.seconds, 1) >= full:
            raise ValueError(f"{run.name}: this fast run took {run.seconds:.1f} s, not less than the recorded full "
                             f"run ({full} s), so nothing was saved: on a busy machine run it again when it is "
                             "quieter; otherwise fast mode does not shrink the work")
        _write_run(run, path, save_outputs)


def finish_interrupted_save() -> None:
    """Complete, or discard, a save that was killed half-way (see the module docstring); a no-op otherwise."""
    with _course_lock():
        if finish_interrupted_writes(_journal()):
            print(f"finished an interrupted save of the course's records ({_journal().name})", file=sys.stderr)


def _journal() -> Path:
    return NOTEBOOKS / ".course-save.json"


@contextmanager
def _course_lock():
    """Hold an exclusive lock on the notebooks folder (POSIX; elsewhere runs are not guarded)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    fd = os.open(NOTEBOOKS, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_run(run: Run, path: Path, save_outputs: bool) -> None:
    """The writes of `save_run`, under its lock."""
    import nbformat

    runtimes = load_runtimes()
    runtimes.setdefault(run.name, {})[run.mode] = {"seconds": round(run.seconds, 1), "machine": _machine()}
    results = load_key_results()
    results.setdefault(run.name, {})[run.mode] = {
        "machine": _machine(),
        "results": {r.name: {k: v for k, v in asdict(r).items() if k != "name"} for r in run.results}}
    nb = run.nb if save_outputs else nbformat.reads(run.original, as_version=4)
    set_runtime_table(nb, run.name, runtime_table(run.name, runtimes))
    contents = {path: nbformat.writes(nb) + "\n",  # outputs and their runtime table
                RUNTIMES: json.dumps(runtimes, indent=1, sort_keys=True) + "\n",
                KEY_RESULTS: json.dumps(results, indent=1, sort_keys=True) + "\n"}
    if README.is_file():
        text = README.read_text(encoding="utf-8")
        new = readme_with_table(text, runtime_table(None, runtimes))
        if new != text:
            contents[README] = new
    atomic_write_texts(contents, _journal())  # all four, or none, even if the process is killed


def _interrupted_line(current: str | None, saved: list[str], save: bool) -> str:
    where = f"during {current}, which was not saved" if current else "between notebooks"
    if not save:
        return f"interrupted {where}; --no-save: nothing was written"
    return f"interrupted {where}; saved before it: {', '.join(saved) if saved else 'none'}"


def reproducibility_problems(first: list[KeyResult], second: list[KeyResult], name: str) -> list[str]:
    """Key results that differ between two runs of the same notebook (exact comparison)."""
    a, b = {r.name: r for r in first}, {r.name: r for r in second}
    problems = [f"{name}: key result {k!r} printed in only one of the two runs" for k in sorted(set(a) ^ set(b))]
    for k in sorted(set(a) & set(b)):
        if (a[k].value, a[k].unit) != (b[k].value, b[k].unit):
            problems.append(f"{name}: {k} = {_format_value(a[k].value)} {a[k].unit} then "
                            f"{_format_value(b[k].value)} {b[k].unit}")
    if not a and not b:
        problems.append(f"{name}: prints no key results, nothing to compare")
    return problems


def _device_mode(mode: str) -> str:
    if mode != "full":
        return mode
    import torch

    return "gpu" if torch.cuda.is_available() or torch.backends.mps.is_available() else "full"


def run_course(paths: list[Path], mode: str, save: bool = True, save_fast: bool = False,
               check_reproducible: bool = False) -> int:
    """Run notebooks, save what the flags allow, print the summary; the exit status (0: all fine, 130: Ctrl-C)."""
    mode = _device_mode(mode)
    if save:
        finish_interrupted_save()
    runs, problems, saved, current = [], [], [], None
    try:
        with _CTRL_C.handling() as ctrl_c:
            for path in paths:
                current = path.stem
                print(f"running {path.name} ({mode} mode) ...", flush=True)
                run = run_notebook(path, mode)
                ctrl_c.stop_if_pressed()
                runs.append(run)
                if run.error:
                    problems.append(f"{run.name}: FAILED: {run.error}")
                    continue
                if check_reproducible:
                    print(f"running {path.name} again to compare its key results ...", flush=True)
                    again = run_notebook(path, mode)
                    ctrl_c.stop_if_pressed()
                    found = ([f"{run.name}: the second run FAILED: {again.error}"] if again.error
                             else reproducibility_problems(run.results, again.results, run.name))
                    problems += found
                    print(f"  {'not reproducible' if found else 'reproducible'}: {len(run.results)} key results")
                if save:
                    try:
                        with ctrl_c.noting_only():
                            save_run(run, path, save_outputs=mode != "fast" or save_fast)
                        saved.append(run.name)
                    except ValueError as exc:
                        problems.append(str(exc))
                current = None
                ctrl_c.stop_if_pressed()
    except KeyboardInterrupt:
        print(_interrupted_line(current, saved, save), file=sys.stderr, flush=True)
        return 130
    _print_summary(runs, mode, save, save_fast, problems)
    return 1 if problems else 0


def _print_summary(runs: list[Run], mode: str, save: bool, save_fast: bool, problems: list[str]) -> None:
    """Each notebook's time and key results, what was recorded, then the problems (on stderr)."""
    width = max([len(r.name) for r in runs] + [8])
    print(f"\n{'notebook':<{width}}  {mode + ' mode':>9}  key results")
    for run in runs:
        seconds = "FAILED" if run.error else f"{run.seconds:7.1f} s"
        found = [str(r) for r in run.results] or ["-"]
        print(f"{run.name:<{width}}  {seconds:>9}  {found[0]}")
        for line in found[1:]:
            print(f"{'':<{width}}  {'':>9}  {line}")
    print(f"{'total':<{width}}  {sum(r.seconds or 0 for r in runs):7.1f} s")
    if not save:
        print("(--no-save: nothing was written; times and key results above are not recorded)")
    elif mode == "fast" and not save_fast:
        print("(fast mode: times and key results recorded; stored full-mode outputs kept, use --save-fast to replace them)")
    for p in problems:
        print(p, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Checks of stored outputs
# ---------------------------------------------------------------------------------------------


def notebook_problems(nb: dict, name: str) -> list[str]:
    """What is wrong with a notebook's stored outputs: unexecuted cells, errors, order, machine paths."""
    problems, counts = [], []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code" or not _joined(cell.get("source", "")).strip():
            continue
        count = cell.get("execution_count")
        counts.append(count)
        if count is None:
            problems.append(f"{name}: code cell {i} was never executed")
        stub = "exercise" in cell.get("metadata", {}).get("tags", []) and "NotImplementedError" in _joined(cell["source"])
        if not cell.get("outputs") and not stub:  # an exercise stub defines the learner's function, shows nothing
            problems.append(f"{name}: code cell {i} has no stored output (end it with something to look at)")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"{name}: code cell {i} stored an error ({out.get('ename')})")
            text = json.dumps(out.get("text", "")) + json.dumps(out.get("data", {}).get("text/plain", ""))
            if _MACHINE_PATH.search(text):
                problems.append(f"{name}: code cell {i} output shows a machine path")
    known = [c for c in counts if c is not None]
    if known != list(range(1, len(known) + 1)):
        problems.append(f"{name}: execution counts are not 1..n in order (run 'Restart kernel and run all')")
    return problems


def runtime_table_problems(nb: dict, name: str, runtimes: dict) -> list[str]:
    """The stored runtime table differs from runtimes.json, or fast mode is not faster than full."""
    problems = []
    i = runtime_table_cell(nb, name)
    if i is None:
        problems.append(f'{name}: no cell shows runtime_table("{name}") (add one under the title)')
    elif _stored_table(nb["cells"][i]) != runtime_table(name, runtimes):
        rows = [r for r in (_stored_table(nb["cells"][i]) or "").splitlines() if r.startswith(f"| {name} ")]
        stored = rows[0] if rows else _stored_table(nb["cells"][i]) or "nothing"
        problems.append(f"{name}: cell {i} stores a stale runtime table {stored!r}; runtimes.json gives "
                        f"{runtime_table(name, runtimes).splitlines()[2]!r} (re-run with the course runner)")
    fast, full = (runtimes.get(name, {}).get(m, {}).get("seconds") for m in ("fast", "full"))
    if fast is not None and full is not None and fast >= full:
        problems.append(f"{name}: fast mode ({fast} s) is not faster than full mode ({full} s); shrink fast mode")
    return problems


def _images(out: dict) -> list[tuple[str, str]]:
    return [(mime, _joined(v)) for mime, v in out.get("data", {}).items() if mime.startswith("image/")]


def duplicate_figure_problems(nb: dict, name: str) -> list[str]:
    """Byte-identical images stored more than once in one notebook (e.g. plt.show() and a returned figure)."""
    first, problems = {}, []
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            for mime, data in _images(out):
                raw = base64.b64decode(data) if mime != "image/svg+xml" else data.encode()
                digest = hashlib.sha256(raw).hexdigest()
                if digest in first:
                    where = f"cell {i}" if first[digest] == i else f"cells {first[digest]} and {i}"
                    problems.append(f"{name}: {where} store the same {mime} image twice "
                                    "(show a figure once: return it or plt.show(), not both)")
                first.setdefault(digest, i)
    return problems


# A tqdm bar as text: "desc: 45%|####      | 270/600 [...]" (widget fallbacks read the same).
_BAR = re.compile(r"(?P<pct>\d+)%\|[^|\n]*\|\s*(?P<n>[\d.]+[kMG]?)/(?P<total>[\d.]+[kMG]?)")


def _unfinished_bars(text: str) -> list[str]:
    return [m.group(0)[:60] for m in _BAR.finditer(text)
            if int(m["pct"]) < 100 or m["n"] != m["total"]]


def _widget_bars(state: dict) -> list[str]:
    """The text of each tqdm widget (an HBox of HTML, progress bar, HTML) in a stored widget state."""
    models = {k: v.get("state", {}) for k, v in state.items()}
    names = {k: v.get("model_name") for k, v in state.items()}
    bars = []
    for key, model in models.items():
        children = [c.removeprefix("IPY_MODEL_") for c in model.get("children", [])]
        if names[key] != "HBoxModel" or len(children) != 3 or not all(c in models for c in children):
            continue
        left, bar, right = (models[c] for c in children)
        if not names[children[1]].endswith("ProgressModel"):
            continue
        text = html.unescape(f"{left.get('value', '')}|{'#' if bar.get('value') == bar.get('max') else ' '}|"
                             f"{right.get('value', '')}").replace("\u2007", " ")
        bars.append(text if bar.get("value") == bar.get("max") else f"{text} (bar at {bar.get('value')} of {bar.get('max')})")
    return bars


def progress_bar_problems(nb: dict, name: str) -> list[str]:
    """Progress bars whose stored state (what a static view shows) is unfinished."""
    state = nb.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    problems = [f"{name}: the stored widget state holds an unfinished progress bar {bar[:80]!r} (re-run with "
                "the course runner, which stores text bars in their final state)"
                for bar in _widget_bars(state.get("state", {})) if _unfinished_bars(bar) or "(bar at" in bar]
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            texts = [_visible_text(_joined(out.get("text", "")))]
            texts += [_joined(v) for k, v in out.get("data", {}).items() if k in ("text/plain", "text/html")]
            for bar in (b for t in texts for b in _unfinished_bars(t)):
                problems.append(f"{name}: cell {i} stores an unfinished progress bar {bar!r} (re-run with the "
                                "course runner, which stores text bars in their final state)")
    return problems


_WIDGET_REPR = re.compile(r"^[A-Z]\w*\((children|value|description|options)=")


def widget_fallback_problems(nb: dict, name: str) -> list[str]:
    """Widgets whose stored text (what a static view shows) is their repr, e.g. `VBox(children=(...`."""
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            plain = _joined(data.get("text/plain", ""))
            if "application/vnd.jupyter.widget-view+json" in data and _WIDGET_REPR.match(plain):
                problems.append(f"{name}: cell {i} stores a widget whose static view is {plain[:40]!r}...; "
                                "store a meaningful fallback (a short text or a figure of the initial view)")
    return problems


def html_progress_bar_problems(path: Path) -> list[str]:
    """Unfinished progress bars in the notebook exported to HTML (jupyter nbconvert --to html)."""
    from nbconvert import HTMLExporter

    page, _ = HTMLExporter().from_filename(str(path))
    states = re.findall(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', page, re.S)
    widget_bars = [b for s in states for b in _widget_bars(json.loads(s).get("state", {}))]
    text = html.unescape(re.sub(r"<[^>]+>", "", page)).replace("\u2007", " ")
    return [f"{path.stem}: exported HTML shows an unfinished progress bar {bar[:80]!r}"
            for bar in _unfinished_bars(text) + [b for b in widget_bars if _unfinished_bars(b) or "(bar at" in b]]


# Numbers a markdown cell may state without an output showing them: constants of the methods,
# not measurements. Keep this list short; a measured number belongs in an output.
ALLOWED_PROSE_NUMBERS = {
    (0.02, ""),    # GPT-2's initialisation std; DDPM's beta_end
    (1e-4, ""),    # DDPM's beta_start
    (0.008, ""),   # the cosine schedule's offset s (Nichol & Dhariwal)
    (1e-3, ""),    # word2vec's subsampling threshold t (gensim's default `sample`)
    (0.5, ""),     # one half: a fair coin, sigma(0)
    (0.75, ""),    # Kneser-Ney's usual discount
    (0.9, ""), (0.95, ""), (0.999, ""),  # Adam's betas, top-p values, a clip
    (0.15, ""), (15, "%"), (80, "%"), (10, "%"),  # BERT's masking: 15 % picked, 80/10/10
    (95, "%"), (2.5, ""), (97.5, ""), (0.05, ""),  # 95 % intervals, their percentiles, the usual significance level
    (1e-5, ""), (1e-6, ""), (1e-8, ""),  # the epsilons of layer norm and Adam
}
_PROSE_NUMBER = re.compile(
    r"(?<![\w.\-/])(?P<num>\d+(?:\.\d+)?(?:[eE]-?\d+)?)"
    r"(?:\s?(?P<unit>%|s|min|nats|bits)\b|\s?(?P<pct>%))?(?![\w.]*\d)")
_OUTPUT_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _prose_text(markdown: str) -> str:
    """Markdown without the parts that are not prose: code, links' targets, HTML tags, headings' anchors."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"https?://\S+", " ", text)
    return re.sub(r"<[^>]+>", " ", text)


def _prose_matches(markdown: str) -> list[tuple[str, str]]:
    """(number with its unit, the words around it) for each number a markdown text states."""
    text, found = " ".join(_prose_text(markdown).split()), []
    for m in _PROSE_NUMBER.finditer(text):
        num, unit = m["num"], m["unit"] or m["pct"]
        if not ("." in num or "e" in num.lower() or unit):
            continue
        if unit == "s" and re.fullmatch(r"1[89]\d0|20[0-9]0", num):
            continue  # a decade ("the 1990s")
        if (float(num), unit or "") in ALLOWED_PROSE_NUMBERS:
            continue
        found.append((num + (f" {unit}" if unit else ""), text[max(0, m.start() - 50):m.end() + 30]))
    return found


def prose_numbers(markdown: str) -> list[str]:
    """Decimal numbers and numbers with a unit (%, s, min, nats, bits) a markdown text states."""
    return [item for item, _ in _prose_matches(markdown)]


def _output_text(nb: dict) -> str:
    parts = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            parts.append(_joined(out.get("text", "")))
            parts += [_joined(v) for k, v in out.get("data", {}).items()
                      if k.startswith("text/") or k == "application/json"]
    return "\n".join(parts)


def _supported(num: str, unit: str, values: set[float]) -> bool:
    """An output number rounds to the prose number at the prose's precision (a % may be a fraction)."""
    decimals = len(num.split(".")[1]) if "." in num and "e" not in num.lower() else None
    target = float(num)
    for v in values:
        candidates = (v, v * 100) if unit == "%" else (v,)
        for c in candidates:
            if (round(c, decimals) == target) if decimals is not None else (round(c) == target or c == target):
                return True
    return False


def prose_number_problems(nb: dict, name: str) -> list[str]:
    """Numbers in markdown cells that no output of the notebook shows (they drift from the run)."""
    values = {v for v in map(float, _OUTPUT_NUMBER.findall(_output_text(nb))) if math.isfinite(v)}
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        for item, context in _prose_matches(_joined(cell.get("source", ""))):
            num, _, unit = item.partition(" ")
            if not _supported(num, unit, values):
                problems.append(f"{name}: markdown cell {i} states {item!r}, which no output shows "
                                f"(generate the sentence with Markdown(f'...') or print the number above it): "
                                f"...{context}...")
    return problems


def check_notebook(path: Path, runtimes: dict | None = None, html: bool = True,
                   recorded: dict | None = None) -> dict[str, list[str]]:
    """Every check of one stored notebook, by kind: health, runtime table, figures, prose, bars, widgets, key results.

    runtimes, recorded: the contents of runtimes.json and key_results.json (default: read them).
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    runtimes = load_runtimes() if runtimes is None else runtimes
    recorded = load_key_results() if recorded is None else recorded
    name = path.stem
    found = {
        "health": notebook_problems(nb, path.name),
        "runtime table": runtime_table_problems(nb, name, runtimes),
        "duplicate figures": duplicate_figure_problems(nb, name),
        "prose numbers": prose_number_problems(nb, name),
        "progress bars": progress_bar_problems(nb, name) + (html_progress_bar_problems(path) if html else []),
        "widget fallbacks": widget_fallback_problems(nb, name),
        "key results": key_result_problems(nb, name) + recorded_key_result_problems(nb, name, recorded),
    }
    return found


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmcourse.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks, record their times and key results "
                                     "(Ctrl-C: stop, keep what was saved, exit 130)")
    run.add_argument("notebooks", nargs="*", help="names like 01_language_model_probability (default: all)")
    run.add_argument("--mode", choices=("fast", "full"), default="full")
    run.add_argument("--no-save", action="store_true",
                     help="write no file at all (notebooks, runtimes, key results, README); print times")
    run.add_argument("--save-fast", action="store_true",
                     help="in fast mode, also replace the stored (full-mode) outputs with the fast run's")
    run.add_argument("--check-reproducible", action="store_true",
                     help="run each notebook twice and fail when a key result differs")
    check = sub.add_parser("check", help="check the stored outputs of notebooks (default: all)")
    check.add_argument("notebooks", nargs="*")
    check.add_argument("--no-html", action="store_true", help="skip the (slower) exported-HTML check")
    sub.add_parser("table", help="print the measured runtime table")
    args = parser.parse_args(argv)

    if args.command == "table":
        print(runtime_table())
        return 0
    if args.command == "check":
        finish_interrupted_save()
        runtimes, recorded = load_runtimes(), load_key_results()
        problems = [p for path in notebook_paths(args.notebooks)
                    for kind in check_notebook(path, runtimes, not args.no_html, recorded).values() for p in kind]
        print("\n".join(problems) or "all stored notebook outputs are healthy")
        return 1 if problems else 0
    if args.save_fast and args.mode != "fast":
        parser.error("--save-fast only applies to --mode fast")
    if args.save_fast and args.no_save:
        parser.error("--save-fast and --no-save contradict each other")
    return run_course(notebook_paths(args.notebooks), args.mode, save=not args.no_save,
                      save_fast=args.save_fast, check_reproducible=args.check_reproducible)


if __name__ == "__main__":
    sys.exit(main())
