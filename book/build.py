"""Build the course website: every chapter with its stored outputs, as a static site in build/book/.

    python book/build.py              # what `make book` runs; Sphinx rebuilds only the pages that changed
    python book/build.py --if-stale   # nothing to do when build/book was built from the current inputs

The pages are staged in build/book-src/: book/index.md, and each notebook with a "run this chapter" note after
its title cell and without widget state. Sphinx (configuration: book/conf.py) then writes build/book/.
No notebook is executed and nothing is fetched; open build/book/index.html from disk, no server needed.
BOOK_REPO=https://github.com/OWNER/REPO adds a Binder link to each chapter's note.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
SOURCE = ROOT / "build" / "book-src"  # staged pages
OUT = ROOT / "build" / "book"  # the site
DOCTREES = ROOT / "build" / "book-doctrees"  # Sphinx's cache between builds
STAMP = OUT / ".lmcourse-inputs.sha256"  # the digest of what the site was built from
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def chapters() -> list[Path]:
    """The course's notebooks in teaching order (notebooks/NN_topic.ipynb)."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def inputs_digest() -> str:
    """A sha256 over everything the site is built from: the notebooks, book/, BOOK_REPO."""
    digest = hashlib.sha256(os.environ.get("BOOK_REPO", "").encode())
    for path in [*sorted(p for p in BOOK.iterdir() if p.is_file()), *chapters()]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_fresh() -> bool:
    """Whether build/book was built from the current inputs."""
    return (OUT / "index.html").is_file() and STAMP.is_file() and STAMP.read_text().strip() == inputs_digest()


def run_note(name: str, repo: str = "") -> str:
    """The "run this chapter" note shown under a chapter's title (MyST markdown)."""
    binder = ""
    if repo.startswith("https://github.com/"):
        binder = (f" Or run it in your browser: [launch on Binder](https://mybinder.org/v2/gh/"
                  f"{repo.removeprefix('https://github.com/').strip('/')}/HEAD?labpath=notebooks%2F{name}) "
                  "(it installs the course first, which takes a few minutes; choose the Python 3 kernel if asked).")
    return ("```{admonition} Run this chapter\n:class: tip run-this-chapter\n\n"
            "This page shows the outputs stored by the course's last full run. To run it yourself, in a clone of "
            f"the course: `make lab` sets everything up and opens JupyterLab; open `notebooks/{name}` and choose "
            "*Run → Run All Cells*. `LMCOURSE_FAST=1 make lab` runs every cell in seconds (fast mode)."
            f"{binder}\n```\n")


def staged_notebook(path: Path, repo: str) -> str:
    """The notebook as the site shows it: the note after the title cell, solutions folded away as in the lab,
    no widget state (the widgets' stored fallbacks show)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags and "hide-input" not in tags:
            cell["metadata"]["tags"] = [*tags, "hide-input"]  # a "Show code cell source" fold
        for out in cell.get("outputs", []):
            out.get("data", {}).pop(WIDGET_STATE, None)
    note = {"cell_type": "markdown", "id": "run-this-chapter", "metadata": {}, "source": run_note(path.name, repo)}
    nb["cells"].insert(1, note)
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    """Write `text`, leaving an unchanged file alone so that Sphinx does not rebuild its page."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def stage() -> None:
    """Write build/book-src/: index.md and the staged notebooks; remove chapters that are gone."""
    repo = os.environ.get("BOOK_REPO", "")
    _write_if_changed(SOURCE / "index.md", (BOOK / "index.md").read_text(encoding="utf-8"))
    names = set()
    for path in chapters():
        _write_if_changed(SOURCE / "notebooks" / path.name, staged_notebook(path, repo))
        names.add(path.name)
    for old in (SOURCE / "notebooks").glob("*.ipynb"):
        if old.name not in names:
            old.unlink()


def build(quiet: bool = True) -> int:
    """Stage the pages and run Sphinx into build/book/; Sphinx's exit status (0: built)."""
    from sphinx.cmd.build import build_main

    digest = inputs_digest()
    stage()
    STAMP.unlink(missing_ok=True)
    args = ["-b", "html", "-c", str(BOOK), "-d", str(DOCTREES), "--keep-going", str(SOURCE), str(OUT)]
    status = build_main(args + (["-q"] if quiet else []))
    if status == 0:
        STAMP.write_text(digest + "\n")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--if-stale", action="store_true", help="build only when the inputs changed since the last build")
    parser.add_argument("--verbose", action="store_true", help="Sphinx's progress lines too")
    args = parser.parse_args(argv)
    if args.if_stale and is_fresh():
        print(f"{OUT.relative_to(ROOT)}/ is up to date")
        return 0
    start = time.perf_counter()
    status = build(quiet=not args.verbose)
    if status == 0:
        print(f"built {OUT.relative_to(ROOT)}/index.html in {time.perf_counter() - start:.0f} s "
              f"({len(chapters())} chapters, from their stored outputs); open it in a browser")
    else:
        print(f"the book did not build (Sphinx exited {status}); see the messages above", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
