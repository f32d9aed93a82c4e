"""What notebooks call: `key_result` prints a headline number, `runtime_table` shows the measured runtimes.

Also what reads them back: the key results of a stored notebook, runtimes.json and key_results.json,
and the runtime tables of notebooks and the README.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path

from lmcourse.course.folder import CourseFolder, course_folder

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


def load_key_results(folder: CourseFolder | None = None) -> dict:
    """notebooks/key_results.json: {notebook: {mode: {"machine", "results": {name: {"value", "unit", "note"}}}}}."""
    path = (folder or course_folder()).key_results
    return json.loads(path.read_text()) if path.is_file() else {}


def notebook_paths(names: list[str] | None = None, folder: CourseFolder | None = None) -> list[Path]:
    """The course notebooks in teaching order (NN_topic.ipynb), or the ones named."""
    notebooks = (folder or course_folder()).notebooks
    if names:
        paths = [Path(n) if Path(n).suffix == ".ipynb" else notebooks / f"{n}.ipynb" for n in names]
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(f"notebook {str(p)!r} does not exist; see {notebooks}")
        return paths
    return sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))


def load_runtimes(folder: CourseFolder | None = None) -> dict:
    """notebooks/runtimes.json: {notebook: {mode: {"seconds", "machine"}}}."""
    path = (folder or course_folder()).runtimes
    return json.loads(path.read_text()) if path.is_file() else {}


def _fmt(entry: dict | None) -> str:
    if not entry:
        return "not measured"
    s = entry["seconds"]
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def runtime_table(notebook: str | None = None, runtimes: dict | None = None, folder: CourseFolder | None = None) -> str:
    """A markdown table of measured runtimes (fast CPU, full CPU, GPU) for one notebook or all.

    runtimes: the dict of runtimes.json (default: read it from `folder`, by default the course checkout's;
    one notebook opened outside a checkout shows "not measured"). The machines line names only the
    machines of the notebooks shown, so one notebook's table does not change with another's run.
    """
    if runtimes is None:
        try:
            runtimes = load_runtimes(folder)
        except FileNotFoundError:
            if notebook is None:
                raise
            runtimes = {}  # a notebook copied out of the course: nothing was measured there
    names = [notebook] if notebook else [p.stem for p in notebook_paths(folder=folder)]
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


def _joined(text: str | list[str]) -> str:
    return "".join(text) if isinstance(text, list) else text


_CARRIAGE_RETURN = re.compile(r"[^\n]*\r(?=[^\n])")


def _visible_text(text: str) -> str:
    """What a terminal shows of a stream: each line keeps only what follows its last carriage return."""
    return _CARRIAGE_RETURN.sub("", text.replace("\r\n", "\n")).replace("\r", "")
