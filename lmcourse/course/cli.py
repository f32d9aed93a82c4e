"""The course runner's command line.

    python -m lmcourse.course run --mode full            # refresh every notebook's outputs (make course)
    python -m lmcourse.course run --mode fast --no-save  # what CI's nbval run does, with times; writes nothing
    python -m lmcourse.course run --check-reproducible 04_attention   # run twice, compare key results
    python -m lmcourse.course check                      # stored outputs healthy and truthful?
    python -m lmcourse.course table                      # the measured runtimes

Each command works on a clone of the course: --root PATH names it; by default it is the clone the
current folder belongs to, else the one holding lmcourse (an editable install).
"""

from __future__ import annotations

import argparse

from lmcourse.course.checks import check_notebook
from lmcourse.course.folder import course_folder
from lmcourse.course.results import load_key_results, load_runtimes, notebook_paths, runtime_table
from lmcourse.course.runner import __doc__ as RUNNER_DOC
from lmcourse.course.runner import finish_interrupted_save, run_course


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv), do the command, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lmcourse.course", description=f"{__doc__}\n{RUNNER_DOC}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--root", help="the course checkout (the folder holding notebooks/); default: the one the "
                                      "current folder belongs to, else the one holding lmcourse")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[where], help="execute notebooks, record their times and key results "
                                                      "(Ctrl-C: stop, keep what was saved, exit 130)")
    run.add_argument("notebooks", nargs="*", help="names like 01_language_model_probability (default: all)")
    run.add_argument("--mode", choices=("fast", "full"), default="full")
    run.add_argument("--no-save", action="store_true",
                     help="write no file at all (notebooks, runtimes, key results, README); print times")
    run.add_argument("--save-fast", action="store_true",
                     help="in fast mode, also replace the stored (full-mode) outputs with the fast run's")
    run.add_argument("--check-reproducible", action="store_true",
                     help="run each notebook twice and fail when a key result differs")
    check = sub.add_parser("check", parents=[where], help="check the stored outputs of notebooks (default: all)")
    check.add_argument("notebooks", nargs="*")
    check.add_argument("--no-html", action="store_true", help="skip the (slower) exported-HTML check")
    sub.add_parser("table", parents=[where], help="print the measured runtime table")
    args = parser.parse_args(argv)
    try:
        folder = course_folder(args.root)
    except FileNotFoundError as exc:
        parser.error(str(exc))

    if args.command == "table":
        print(runtime_table(folder=folder))
        return 0
    if args.command == "check":
        finish_interrupted_save(folder)
        runtimes, recorded = load_runtimes(folder), load_key_results(folder)
        problems = [p for path in notebook_paths(args.notebooks, folder)
                    for kind in check_notebook(path, runtimes, not args.no_html, recorded).values() for p in kind]
        print("\n".join(problems) or "all stored notebook outputs are healthy")
        return 1 if problems else 0
    if args.save_fast and args.mode != "fast":
        parser.error("--save-fast only applies to --mode fast")
    if args.save_fast and args.no_save:
        parser.error("--save-fast and --no-save contradict each other")
    return run_course(notebook_paths(args.notebooks, folder), args.mode, save=not args.no_save,
                      save_fast=args.save_fast, check_reproducible=args.check_reproducible, folder=folder)
