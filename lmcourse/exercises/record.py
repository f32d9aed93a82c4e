"""The learner's progress on disk, so that a kernel restart or a new session loses nothing.

One JSON file per learner, outside the repository: $LMCOURSE_EXERCISE_RECORD if set, else progress.json in
`lmcourse.files.cache_dir()` (~/.cache/lmcourse/progress.json). LMCOURSE_EXERCISE_RECORD=off keeps progress in memory
only (the tests set it). The file holds {"format": 1, "exercises": {"04.masked_softmax": {"status": "done",
"when": "2026-12-05T17:02:00+00:00"}}}; "done" stays done when a later attempt is wrong.

The course's own solutions are graded but never recorded: `is_course_solution` compares the answer's source with
the sha256 of the stored solution in `solution_hashes.json` (written by `python -m tests.solution_hashes`).
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
import json
import os
import warnings
from functools import cache
from pathlib import Path
from typing import Any

from lmcourse.files import atomic_write_text, cache_dir

FORMAT = 1
STATUSES = ("done", "not yet right")  # what is recorded; "not answered" (the stub) is not
HASHES = Path(__file__).with_name("solution_hashes.json")
_unreadable: set[Path] = set()  # files we could not read: never overwritten, the learner's data stays as it was


def progress_path() -> Path | None:
    """The progress file, or None when LMCOURSE_EXERCISE_RECORD=off."""
    setting = os.environ.get("LMCOURSE_EXERCISE_RECORD", "")
    if setting.lower() == "off":
        return None
    return Path(setting).expanduser() if setting else cache_dir() / "progress.json"


def read() -> dict[str, str]:
    """{exercise id: status} from the progress file; {} when there is none (or LMCOURSE_EXERCISE_RECORD=off)."""
    path = progress_path()
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {i: entry["status"] for i, entry in data["exercises"].items() if entry["status"] in STATUSES}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if path not in _unreadable:
            _unreadable.add(path)
            warnings.warn(f"lmcourse could not read your exercise progress in {path} ({type(exc).__name__}: {exc}); "
                          "it leaves that file as it is and keeps this session's progress in memory. Move the file "
                          "away (or set LMCOURSE_EXERCISE_RECORD to another file) to start a new record.", stacklevel=3)
        return {}


def record(exercise_id: str, status: str) -> None:
    """Write `status` for `exercise_id` to the progress file (atomically); "done" is never downgraded."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    path = progress_path()
    if path is None:
        return
    statuses = read()
    if path in _unreadable or statuses.get(exercise_id) == "done":
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"format": FORMAT, "exercises": {}}
        when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        data["exercises"][exercise_id] = {"status": status, "when": when}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError as exc:  # a read-only home, a full disk: grading goes on, in memory
        warnings.warn(f"lmcourse could not save your exercise progress to {path} ({exc}); this session keeps it in "
                      "memory", stacklevel=3)


@cache
def _solution_hashes() -> dict[str, str]:
    return json.loads(HASHES.read_text(encoding="utf-8"))


def source_sha256(answer: Any) -> str | None:
    """sha256 of the source that defines `answer`, or None when Python cannot show it.

    A function: its source. A class: the sources of the functions it defines, in order (Python 3.11 cannot show a
    class defined in a notebook cell, but it can show its methods).
    """
    try:
        if inspect.isclass(answer):
            source = "\n".join(inspect.getsource(f) for f in vars(answer).values() if inspect.isfunction(f))
        else:
            source = inspect.getsource(answer)
    except (OSError, TypeError):
        return None
    if not source.strip():
        return None
    normalised = "\n".join(line.rstrip() for line in source.strip().splitlines())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def is_course_solution(exercise_id: str, answer: Any) -> bool:
    """True when `answer` is defined by the course's stored solution of `exercise_id`, character for character."""
    digest = _solution_hashes().get(exercise_id)
    return digest is not None and source_sha256(answer) == digest
