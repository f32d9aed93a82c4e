"""MathJax 3 for pages read offline: the copy shipped by the `sphinx-mathjax-offline` package, never a CDN.

Used by the website (book/conf.py) and by the chapter exports (`make html`, lmcourse.classroom). It imports
nothing of the course, so the book can be built with the book's extra alone.
"""

from __future__ import annotations

import shutil
from importlib.metadata import distribution
from pathlib import Path

SCRIPT = "tex-svg.js"  # TeX in, SVG out: no web fonts to load
PARTS = [SCRIPT, "input/tex/extensions", "output/svg", "ui", "a11y", "adaptors"]  # the bundle and what it loads lazily


def source() -> Path:
    """The MathJax 3 distribution shipped by sphinx-mathjax-offline (a folder of the installed package)."""
    folder = Path(distribution("sphinx-mathjax-offline").locate_file("sphinx-mathjax-offline/static/mathjax"))
    if not (folder / SCRIPT).is_file():
        raise FileNotFoundError(f"MathJax not found in {folder}: reinstall the book's extra: pip install -e '.[book]'")
    return folder


def copy_to(target: Path) -> Path:
    """Copy the parts of MathJax the pages use into `target` (a folder); returns the script's path there."""
    folder = source()
    for part in PARTS:
        if (folder / part).is_dir():
            shutil.copytree(folder / part, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / part, target / part)
    return target / SCRIPT
