"""The sha256 of every stored solution's source, so that `check` can tell the course's solution cells from the
learner's work (`lmcourse.exercises.record.is_course_solution`).

`python -m tests.solution_hashes` rewrites lmcourse/exercises/solution_hashes.json from tests/exercise_cells.py;
tests/test_exercise_record.py fails while the file is out of date.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from pathlib import Path

from lmcourse.exercises import record
from tests.exercise_cells import CHAPTERS


def solution_hashes() -> dict[str, str]:
    """{exercise id: sha256 of its solution's source}, computed the way `check` computes it for an answer."""
    hashes = {}
    with tempfile.TemporaryDirectory() as folder:
        for cells in (c for chapter in CHAPTERS.values() for c in chapter):
            module_name = f"solution_{cells.id.replace('.', '_')}"
            path = Path(folder) / f"{module_name}.py"
            path.write_text(cells.solution, encoding="utf-8")
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # inspect finds a class's file through its module
            try:
                spec.loader.exec_module(module)
                digest = record.source_sha256(getattr(module, cells.name))
            finally:
                del sys.modules[module_name]
            if digest is None:
                raise ValueError(f"{cells.id}: Python cannot show the source of the solution's {cells.name}")
            hashes[cells.id] = digest
    return dict(sorted(hashes.items()))


if __name__ == "__main__":
    record.HASHES.write_text(json.dumps(solution_hashes(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {record.HASHES}")
