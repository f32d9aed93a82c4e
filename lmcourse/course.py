"""Run the course's notebooks headlessly, time them, and check their stored outputs.

    python -m lmcourse.course run --mode full            # refresh every notebook's outputs
    python -m lmcourse.course run --mode fast --no-save  # what CI's nbval run does, with times
    python -m lmcourse.course check                      # stored outputs healthy?

Times are recorded in notebooks/runtimes.json; `runtime_table()` and the README's chapter map
are built from it, so runtime tables are measured, never typed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

from lmcourse.files import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RUNTIMES = NOTEBOOKS / "runtimes.json"
MODES = ("fast", "full", "gpu")
_MACHINE_PATH = re.compile(r"/(home|root|tmp|work|Users)/")
KEY_RESULT = "key result: "


def key_result(text: str) -> None:
    """Print a notebook's headline number; `make course` lists these in its end-of-run summary."""
    print(f"{KEY_RESULT}{text}")


def key_results(nb: dict) -> list[str]:
    """The `key_result` lines a notebook printed."""
    lines = ("".join(out.get("text", "")) for cell in nb.get("cells", []) for out in cell.get("outputs", [])
             if out.get("output_type") == "stream")
    return [line[len(KEY_RESULT):] for text in lines for line in text.splitlines() if line.startswith(KEY_RESULT)]


def notebook_paths(names: list[str] | None = None) -> list[Path]:
    """The course notebooks in teaching order (NN_topic.ipynb), or the ones named."""
    if names:
        paths = [Path(n) if Path(n).suffix == ".ipynb" else NOTEBOOKS / f"{n}.ipynb" for n in names]
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(f"notebook {str(p)!r} does not exist; see {NOTEBOOKS}")
        return paths
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def notebook_problems(nb: dict, name: str) -> list[str]:
    """What is wrong with a notebook's stored outputs: unexecuted cells, errors, order, machine paths."""
    problems, counts = [], []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code" or not "".join(cell.get("source", "")).strip():
            continue
        count = cell.get("execution_count")
        counts.append(count)
        if count is None:
            problems.append(f"{name}: code cell {i} was never executed")
        if not cell.get("outputs"):
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


def _device_mode(mode: str) -> str:
    if mode != "full":
        return mode
    import torch

    return "gpu" if torch.cuda.is_available() or torch.backends.mps.is_available() else "full"


def run_notebook(path: Path, mode: str, save: bool, timeout: int = 1800) -> tuple[float, list[str]]:
    """Execute one notebook top to bottom in a fresh kernel; return its wall-clock seconds and key results."""
    import nbformat
    from nbclient import NotebookClient

    env_fast = "1" if mode == "fast" else "0"
    nb = nbformat.read(path, as_version=4)
    os.environ["LMCOURSE_FAST"] = env_fast  # the kernel inherits it
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if save:
        atomic_write_text(path, nbformat.writes(nb) + "\n")
    return seconds, key_results(nb)


def load_runtimes() -> dict:
    return json.loads(RUNTIMES.read_text()) if RUNTIMES.is_file() else {}


def record_runtime(name: str, mode: str, seconds: float) -> None:
    runtimes = load_runtimes()
    runtimes.setdefault(name, {})[mode] = {"seconds": round(seconds, 1), "machine": _machine()}
    atomic_write_text(RUNTIMES, json.dumps(runtimes, indent=1, sort_keys=True) + "\n")


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


def runtime_table(notebook: str | None = None) -> str:
    """A markdown table of measured runtimes (fast CPU, full CPU, GPU) for one notebook or all."""
    runtimes = load_runtimes()
    names = [notebook] if notebook else [p.stem for p in notebook_paths()]
    rows = ["| notebook | fast mode (CPU) | full mode (CPU) | full mode (GPU) |", "|---|---|---|---|"]
    for name in names:
        r = runtimes.get(name, {})
        rows.append(f"| {name} | {_fmt(r.get('fast'))} | {_fmt(r.get('full'))} | {_fmt(r.get('gpu'))} |")
    machines = sorted({e["machine"] for r in runtimes.values() for e in r.values()})
    return "\n".join(rows) + (f"\n\nMeasured on: {', '.join(machines)}." if machines else "")


def _update_readme() -> None:
    readme = ROOT / "README.md"
    if not readme.is_file():
        return
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- runtimes:start -->", "<!-- runtimes:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1]
        atomic_write_text(readme, f"{head}{start}\n{runtime_table()}\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmcourse.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks and record their times")
    run.add_argument("notebooks", nargs="*", help="names like 01_language_model_probability (default: all)")
    run.add_argument("--mode", choices=("fast", "full"), default="full")
    run.add_argument("--no-save", action="store_true", help="do not write outputs back into the notebooks")
    sub.add_parser("check", help="check the stored outputs of every notebook")
    sub.add_parser("table", help="print the measured runtime table")
    args = parser.parse_args(argv)

    if args.command == "table":
        print(runtime_table())
        return 0
    if args.command == "check":
        import nbformat

        problems = [p for path in notebook_paths() for p in notebook_problems(nbformat.read(path, 4), path.name)]
        print("\n".join(problems) or "all stored notebook outputs are healthy")
        return 1 if problems else 0

    paths = notebook_paths(args.notebooks)
    mode = _device_mode(args.mode)
    results, failed = [], False
    for path in paths:
        print(f"running {path.name} ({mode} mode) ...", flush=True)
        try:
            seconds, results_of_notebook = run_notebook(path, args.mode, save=not args.no_save)
        except Exception as exc:  # a failing cell: report it, go on with the others
            failed = True
            print(f"  FAILED: {type(exc).__name__}: {str(exc)[-2000:]}", file=sys.stderr)
            results.append((path.stem, None, []))
            continue
        record_runtime(path.stem, mode, seconds)
        results.append((path.stem, seconds, results_of_notebook))
    _update_readme()
    width = max(len(n) for n, _, _ in results) if results else 10
    print(f"\n{'notebook':<{width}}  {mode + ' mode':>9}  key results")
    for name, seconds, found in results:
        print(f"{name:<{width}}  {'FAILED' if seconds is None else f'{seconds:7.1f} s'}  {'; '.join(found) or '-'}")
    print(f"{'total':<{width}}  {sum(s or 0 for _, s, _ in results):7.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
