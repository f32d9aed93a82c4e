"""Run the course's notebooks headlessly, time them, and record what they measured.

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

A saved notebook keeps no widget state (`metadata.widgets`): with it, `jupyter nbconvert --to html`, GitHub
and nbviewer hand each widget output to a widget manager fetched from a CDN, which draws nothing offline;
without it they show the output's static fallback (the PNG or text the course's views store beside it).

Ctrl-C stops the whole run at once: the notebook in progress is not saved (a save already under way
completes first), the notebooks finished before it stay saved, one line says which, and the exit
status is 130.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lmcourse import progress
from lmcourse.course.folder import CourseFolder, course_folder
from lmcourse.course.results import (
    KeyResult,
    _format_value,
    _joined,
    _visible_text,
    key_results,
    load_key_results,
    load_runtimes,
    readme_with_table,
    runtime_table,
    set_runtime_table,
)
from lmcourse.files import atomic_path, atomic_write_texts, finish_interrupted_writes


def _machine() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{os.cpu_count()}-core {platform.machine()} CPU"


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


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def strip_widget_state(nb: dict) -> bool:
    """Remove the stored widget state (`metadata.widgets`, and a widget-state bundle in any output); True if any.

    Each output keeps its widget view and its static fallback (text/plain, image/png, text/html): a static view
    without the state shows the fallback, JupyterLab draws the widget again when the cell runs.
    """
    found = nb.get("metadata", {}).pop("widgets", None) is not None
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            found |= out.get("data", {}).pop(WIDGET_STATE, None) is not None
    return found


def _cells_text(text: str) -> str | None:
    """The stored text of a notebook file's `cells` list (the course writes it first, keys sorted)."""
    head = '{\n "cells": '
    if not text.startswith(head):
        return None
    _, end = json.JSONDecoder().raw_decode(text, len(head))
    return text[len(head):end]


def strip_stored_widget_state(path: Path) -> bool:
    """Remove the widget state from a stored notebook file; its cells stay byte for byte. True if it had any.

    Raises ValueError, writing nothing, when rewriting the file would change a cell's stored text (a file not
    written by the course runner or nbformat, e.g. edited by hand): re-run that notebook with the runner instead.
    """
    import nbformat

    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    if not strip_widget_state(nb):
        return False
    new = nbformat.writes(nb) + "\n"
    if _cells_text(text) is None or _cells_text(new) != _cells_text(text):
        raise ValueError(f"{path.name}: its cells are not stored as nbformat writes them, so removing the widget "
                         "state would rewrite them too; nothing was written (re-run it with `make course "
                         f"NOTEBOOKS={path.stem}`, which stores no widget state)")
    with atomic_path(path) as tmp:
        tmp.write_text(new, encoding="utf-8")
    return True


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

    # bars stored as text; progress summaries stored as a fresh learner's (the runner's own record is never read)
    env = {**os.environ, "LMCOURSE_FAST": "1" if mode == "fast" else "0", progress.ENV: "text",
           "LMCOURSE_EXERCISE_RECORD": "off"}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", kernel_manager_class=KernelManager,
                            # nbclient must track widget state while it runs (its Output-widget hook writes into
                            # it: with store_widget_state=False a notebook with an Output widget fails with a KeyError);
                            # the state is stripped when the notebook is saved (see the module docstring)
                            store_widget_state=True,
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


def save_run(run: Run, path: Path, save_outputs: bool, folder: CourseFolder | None = None) -> None:
    """Write what a successful run measured: runtimes.json, key_results.json, the notebook, the README.

    save_outputs: store the run's outputs; otherwise keep the stored outputs and refresh only the
    runtime-table cell. If the notebook's file changed since the run read it (someone edited it),
    nothing is written and a ValueError says so.
    """
    folder = folder or course_folder()
    with _course_lock(folder):  # two runners at once must not lose each other's runtimes
        if path.read_text(encoding="utf-8") != run.original:
            raise ValueError(f"{path.name} changed on disk while it ran; its outputs were not saved "
                             "(run it again after the edit)")
        full = load_runtimes(folder).get(run.name, {}).get("full", {}).get("seconds")
        if run.mode == "fast" and full is not None and round(run.seconds, 1) >= full:
            raise ValueError(f"{run.name}: this fast run took {run.seconds:.1f} s, not less than the recorded full "
                             f"run ({full} s), so nothing was saved: on a busy machine run it again when it is "
                             "quieter; otherwise fast mode does not shrink the work")
        _write_run(run, path, save_outputs, folder)


def finish_interrupted_save(folder: CourseFolder) -> None:
    """Complete, or discard, a save that was killed half-way (see the module docstring); a no-op otherwise."""
    with _course_lock(folder):
        if finish_interrupted_writes(folder.journal):
            print(f"finished an interrupted save of the course's records ({folder.journal.name})", file=sys.stderr)


@contextmanager
def _course_lock(folder: CourseFolder):
    """Hold an exclusive lock on the notebooks folder (POSIX; elsewhere runs are not guarded)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    fd = os.open(folder.notebooks, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_run(run: Run, path: Path, save_outputs: bool, folder: CourseFolder) -> None:
    """The writes of `save_run`, under its lock."""
    import nbformat

    runtimes = load_runtimes(folder)
    runtimes.setdefault(run.name, {})[run.mode] = {"seconds": round(run.seconds, 1), "machine": _machine()}
    results = load_key_results(folder)
    results.setdefault(run.name, {})[run.mode] = {
        "machine": _machine(),
        "results": {r.name: {k: v for k, v in asdict(r).items() if k != "name"} for r in run.results}}
    nb = run.nb if save_outputs else nbformat.reads(run.original, as_version=4)
    strip_widget_state(nb)  # also from a notebook stored before the runner dropped it
    set_runtime_table(nb, run.name, runtime_table(run.name, runtimes))
    contents = {path: nbformat.writes(nb) + "\n",  # outputs and their runtime table
                folder.runtimes: json.dumps(runtimes, indent=1, sort_keys=True) + "\n",
                folder.key_results: json.dumps(results, indent=1, sort_keys=True) + "\n"}
    if folder.readme.is_file():
        text = folder.readme.read_text(encoding="utf-8")
        new = readme_with_table(text, runtime_table(None, runtimes, folder))
        if new != text:
            contents[folder.readme] = new
    atomic_write_texts(contents, folder.journal)  # all four, or none, even if the process is killed


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
    """Where a run's times and key results are stored: "gpu" for full mode on the device the notebooks will pick
    (`lmcourse.get_device()`, so LMCOURSE_DEVICE=cpu on a GPU machine is a CPU run), as `lmcourse.budget` decides."""
    if mode != "full":
        return mode
    from lmcourse.budgets import device_kind
    from lmcourse.core import get_device

    return "gpu" if device_kind(get_device()) == "gpu" else "full"


def run_course(paths: list[Path], mode: str, save: bool = True, save_fast: bool = False,
               check_reproducible: bool = False, folder: CourseFolder | None = None) -> int:
    """Run notebooks, save what the flags allow, print the summary; the exit status (0: all fine, 130: Ctrl-C)."""
    mode = _device_mode(mode)
    folder = folder or course_folder()
    if save:
        finish_interrupted_save(folder)
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
                            save_run(run, path, save_outputs=mode != "fast" or save_fast, folder=folder)
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
