"""Exercises that check like a grader: `check("04.masked_softmax", masked_softmax)`.

Each exercise has a stable id "NN.name" (NN the chapter) and a checker that calls the learner's
function on several cases (random shapes and values, float16 where it matters, edge cases such as
fully masked rows or top_p = 1) and compares it with the package's reference implementation. A
failure says which case failed and how (shape, dtype, NaN, wrong values), never the expected value.

Hints escalate: none before the first attempt; after each wrong answer the next hint, from a nudge
to the full recipe; `check(..., hints=True)` shows them all. `progress()` lists which exercises of
a chapter are done; it is kept on disk for each learner (`record.progress_path()`, outside the repository),
so a restarted kernel loses nothing, and the course's own solution cells are graded but never counted.
The checkers live in one module per chapter (`ch04.py`, ...).

How hard it is to cheat: the checkers build their expected values only after the learner's function has returned,
from their own copies of the inputs, so a function that walks up the stack or through `gc` finds no answer to copy;
while it runs, `grading.call` refuses calls into the package's reference (and torch's, where the task forbids it)
and into the checkers' own code (see `grading.forbidding`). This session's verdicts are a read-only view that only
`check` writes, so `_status["04.masked_softmax"] = "done"` fails. None of this is a lock: the learner's code runs
in the same Python process as the grader, so whoever wants to can patch the grader, write the progress file by
hand or call `record.record` themselves. The aim is that an honest mistake or a casual shortcut is caught, and that
cheating takes deliberate work, not that it is impossible.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

from lmcourse.exercises import ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, record  # noqa: F401 (register)
from lmcourse.exercises.grading import REGISTRY, NotAnswered, Wrong

__all__ = ["check", "progress", "reset", "REGISTRY"]

_wrong_attempts: dict[str, int] = {}


def _verdict_book() -> tuple[types.MappingProxyType, Callable[[str, str], None], Callable[[], None]]:
    """This session's verdicts, id -> "done" | "not yet right" | "not answered": a read-only view, the function
    `check` writes them with (refused from anywhere else), and the function `reset` clears them with."""
    verdicts: dict[str, str] = {}

    def write(exercise_id: str, status: str) -> None:
        if sys._getframe(2).f_code is not check.__code__:  # write <- _remember <- check
            raise RuntimeError("only lmcourse.exercises.check records a verdict")
        if status == "not answered":
            verdicts.setdefault(exercise_id, status)
        elif verdicts.get(exercise_id) != "done":
            verdicts[exercise_id] = status

    return types.MappingProxyType(verdicts), write, verdicts.clear


_status, _write_verdict, _clear_verdicts = _verdict_book()
_course_solutions_run: set[str] = set()   # ids checked with the course's own solution in this session (never counted)


def _exercise(exercise_id: str):
    if not isinstance(exercise_id, str):
        raise ValueError(f"exercise_id must be a string like '04.masked_softmax', got {exercise_id!r}; "
                         f"call check(\"NN.name\", your_function)")
    if exercise_id not in REGISTRY:
        chapter = exercise_id.split(".", 1)[0]
        same = sorted(i for i in REGISTRY if i.startswith(chapter + "."))
        raise ValueError(f"no exercise {exercise_id!r}; chapter {chapter} has {same or 'none'}"
                         if same else f"no exercise {exercise_id!r}; ids look like '04.masked_softmax'")
    return REGISTRY[exercise_id]


def check(exercise_id: str, answer: Callable[..., Any], *, hints: bool = False, **context: Any) -> bool:
    """Grade `answer` (the learner's function or class) for exercise `exercise_id`; print the verdict.

    Returns True when every case agrees with the reference. A stub that raises NotImplementedError or
    returns None reads "not answered yet". `hints=True` shows every hint; otherwise the n-th wrong
    answer shows the n-th hint. `context`: what a checker needs from the notebook (see its task).
    """
    ex = _exercise(exercise_id)
    if not callable(answer):
        print(f"✗ {exercise_id}: pass your function itself, check(\"{exercise_id}\", my_function), not a value.")
        return False
    try:
        note = ex.checker(answer, **context)
    except NotAnswered as nothing:
        _remember(exercise_id, "not answered", answer)
        shown = _hint_lines(ex, len(ex.hints) if hints else 0)
        why = f" {nothing}" if str(nothing) else ""
        print(f"… {exercise_id}: not answered yet.{why}" + ("" if hints else " (Stuck? check(..., hints=True).)") + shown)
        return False
    except Wrong as wrong:
        _remember(exercise_id, "not yet right", answer)
        _wrong_attempts[exercise_id] = n = _wrong_attempts.get(exercise_id, 0) + 1
        said = str(wrong) if str(wrong).endswith((".", "?", "!")) else f"{wrong}."
        print(f"✗ {exercise_id}: not yet right. {said}" + _hint_lines(ex, len(ex.hints) if hints else n))
        return False
    _remember(exercise_id, "done", answer)
    print(f"✓ {exercise_id}: right! ({ex.title})" + (f"\n{note}" if note else ""))
    return True


def _remember(exercise_id: str, status: str, answer: Any) -> None:
    """Keep the verdict for `progress()`, in this session and on disk ("not answered" only in this session); the
    course's own solution is not the learner's."""
    if record.is_course_solution(exercise_id, answer):
        _course_solutions_run.add(exercise_id)
        return
    _write_verdict(exercise_id, status)
    if status in record.STATUSES:
        record.record(exercise_id, status)


def _hint_lines(ex, n: int) -> str:
    """The first n hints of `ex`, the newest last, numbered so the learner sees more are coming."""
    n = min(n, len(ex.hints))
    return "".join(f"\n  Hint {i + 1}/{len(ex.hints)}: {ex.hints[i]}" for i in range(n))


class Progress(dict):
    """id -> status ("done", "not yet right", "not answered", "not tried"), shown as one line each; the summary
    line says when the course's own solutions were checked in this session (they never count as the learner's)."""

    def __repr__(self) -> str:
        marks = {"done": "✓", "not yet right": "✗", "not answered": "…", "not tried": "·"}
        done = sum(s == "done" for s in self.values())
        lines = [f"{marks[s]} {i:<32} {REGISTRY[i].title} ({s})" for i, s in self.items()]
        shown = sum(i in _course_solutions_run and s != "done" for i, s in self.items())
        note = (f" (the course's own solution was checked for {shown} of them in this session: solutions do not "
                "count as yours)" if shown else "")
        return "\n".join(lines + [f"{done} of {len(self)} done{note}"])


def progress(chapter: str | int | None = None) -> Progress:
    """The exercises of `chapter` ("04" or 4; default: the chapters tried so far) and their status, from this
    session and the learner's progress file ("done" in either counts)."""
    stored = record.read()
    status = {**stored, **_status}
    status.update({i: "done" for i, s in stored.items() if s == "done"})
    if chapter is None:
        chapters = sorted({i.split(".")[0] for i in status}) or sorted({e.chapter for e in REGISTRY.values()})
    else:
        chapters = [f"{int(chapter):02d}"] if str(chapter).isdigit() else [str(chapter)]
    ids = [i for i in REGISTRY if i.split(".")[0] in chapters]
    if not ids:
        raise ValueError(f"no exercises for chapter {chapter!r}; chapters with exercises: "
                         f"{sorted({e.chapter for e in REGISTRY.values()})}")
    return Progress((i, status.get(i, "not tried")) for i in ids)


def reset() -> None:
    """Forget this session's attempts and verdicts, as a restarted kernel does; the progress file stays (delete
    `record.progress_path()` to start over)."""
    _wrong_attempts.clear()
    _course_solutions_run.clear()
    _clear_verdicts()
