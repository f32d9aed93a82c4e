"""Where the course's files are: a checkout's notebooks/, their runtimes.json and key_results.json, the README.

The runner and the checks work on a clone of the course, not on an installed package: the folder is the
one given (`--root`), else the one the current directory belongs to (a notebook's kernel runs in
notebooks/), else the one holding this package when it is installed from a clone (`pip install -e .`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_CHECKOUT = Path(__file__).resolve().parents[2]  # the clone holding lmcourse/, when it is one


@dataclass(frozen=True)
class CourseFolder:
    """A course checkout: `root` holds notebooks/NN_topic.ipynb and README.md."""

    root: Path

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def runtimes(self) -> Path:
        return self.notebooks / "runtimes.json"

    @property
    def key_results(self) -> Path:
        return self.notebooks / "key_results.json"

    @property
    def readme(self) -> Path:
        return self.root / "README.md"

    @property
    def journal(self) -> Path:
        """Lists the renames of a save under way (see `lmcourse.files.atomic_write_texts`)."""
        return self.notebooks / ".course-save.json"


def is_checkout(root: Path) -> bool:
    """Whether `root` holds the course's notebooks (notebooks/NN_topic.ipynb)."""
    return any((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def course_folder(root: str | os.PathLike | None = None) -> CourseFolder:
    """The course checkout to work on (see the module docstring); FileNotFoundError naming the fix if none."""
    if root is not None:
        if not is_checkout(Path(root)):
            raise FileNotFoundError(f"root {str(root)!r} is not a course checkout (it has no notebooks/NN_topic.ipynb); "
                                    "give the folder of a clone of the course, the one that holds notebooks/")
        return CourseFolder(Path(root).resolve())
    here = Path.cwd()
    for candidate in (here, here.parent, PACKAGE_CHECKOUT):
        if is_checkout(candidate):
            return CourseFolder(candidate.resolve())
    raise FileNotFoundError(f"no course checkout found in {str(here)!r}, its parent, or beside the lmcourse package "
                            f"({str(PACKAGE_CHECKOUT)!r}): run this from a clone of the course, or pass --root with "
                            "the folder that holds notebooks/")
