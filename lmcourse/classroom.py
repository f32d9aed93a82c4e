"""Lecturer tools: an exercise handout without solutions, an answer key, reveal.js slides, and HTML pages.

    python -m lmcourse.classroom handout   # build/handout/*.ipynb and build/answers/*.ipynb
    python -m lmcourse.classroom slides    # build/slides/*.slides.html (reveal.js, served locally)
    python -m lmcourse.classroom html      # build/html/*.html: each chapter with its stored outputs, read offline
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import nbformat

from lmcourse.course import ROOT, notebook_paths
from lmcourse.files import atomic_write_text

BUILD = ROOT / "build"
REVEAL_VERSION = "4.0.2"  # the version nbconvert's reveal template is written for


def is_solution(cell) -> bool:
    return "solution" in cell.get("metadata", {}).get("tags", [])


# check("04.masked_softmax", ...), the self-check of an exercise (lmcourse.exercises)
CHECK_CALL = re.compile(r"""\bcheck\(\s*["']\d\d\.\w+["']""")


def is_exercise(cell) -> bool:
    """A learner's code cell, not the hidden solution: a stub or its self-check (tagged "exercise", or calling
    check("NN.name", ...) or raising NotImplementedError), or the progress summary."""
    if cell.cell_type != "code" or is_solution(cell):
        return False
    return ("exercise" in cell.get("metadata", {}).get("tags", []) or bool(CHECK_CALL.search(cell.source))
            or "raise NotImplementedError" in cell.source or "exercises.progress(" in cell.source)


def handout(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The exercise version: solution cells removed, outputs of exercise cells cleared (so the stored run's
    "right!" and progress do not show before the learner has answered)."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if not is_solution(c)]
    for cell in out.cells:
        if is_exercise(cell):
            cell.outputs, cell.execution_count = [], None
    return out


def answer_key(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The answer key: every solution cell shown, not hidden."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if is_solution(cell):
            cell.metadata.get("jupyter", {}).pop("source_hidden", None)
    return out


def set_slide_metadata(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A new slide at every # or ## heading, a sub-slide at ###; the cells between follow their heading."""
    for cell in nb.cells:
        first = cell.source.lstrip().split("\n", 1)[0] if cell.cell_type == "markdown" else ""
        if first.startswith(("# ", "## ")):
            kind = "slide"
        elif first.startswith("### "):
            kind = "subslide"
        elif is_solution(cell):
            kind = "skip"  # never show a solution on the projector by accident
        else:
            kind = "-"
        cell.metadata["slideshow"] = {"slide_type": kind}
    return nb


def write_handouts() -> list[Path]:
    written = []
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        for folder, version in (("handout", handout(nb)), ("answers", answer_key(nb))):
            target = BUILD / folder / path.name
            atomic_write_text(target, nbformat.writes(version) + "\n")
            written.append(target)
    return written


# What nbconvert's reveal template loads from CDNs, served from build/slides/vendor/ instead, so
# slides present offline: CDN address -> (npm package, version, file inside the package).
VENDOR = {
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js": ("requirejs", "2.3.7", "require.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/jquery/2.0.3/jquery.min.js": ("jquery", "2.2.4", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js": ("mathjax", "2.7.7", "MathJax.js"),
    "reveal.js/": ("reveal.js", REVEAL_VERSION, ""),
}


def _npm_fetch(package: str, version: str, target: Path) -> bool:
    """Unpack an npm package into `target` once (from the npm registry); False if npm or the network is missing."""
    if target.is_dir():
        return True
    npm = shutil.which("npm")
    if npm is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", f"{package}@{version}", "--silent"], cwd=tmp, capture_output=True, text=True)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            return False
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(tmp, filter="data")
        shutil.copytree(Path(tmp) / "package", target)
    return True


def write_slides() -> list[Path]:
    from nbconvert import SlidesExporter

    folder = BUILD / "slides"
    missing = [f"{p}@{v}" for p, v, _ in VENDOR.values() if not _npm_fetch(p, v, folder / "vendor" / f"{p}-{v}")]
    exporter = SlidesExporter(exclude_input_prompt=True, exclude_output_prompt=True)
    written = []
    for path in notebook_paths():
        nb = set_slide_metadata(handout(nbformat.read(path, as_version=4)))
        nb.metadata.pop("widgets", None)  # slides are static: widgets show their text fallback
        for cell in nb.cells:  # the regression-test marker means nothing to an audience
            cell.source = cell.source.replace("# NBVAL_CHECK_OUTPUT\n", "")
        body, _ = exporter.from_notebook_node(nb)
        for url, (package, version, file) in VENDOR.items():
            prefix = "https://unpkg.com/reveal.js@" + REVEAL_VERSION + "/" if url == "reveal.js/" else url
            body = body.replace(prefix, f"vendor/{package}-{version}/{file}")
        target = folder / f"{path.stem}.slides.html"
        atomic_write_text(target, body)
        written.append(target)
    if missing:
        print(f"note: could not fetch {', '.join(missing)} from the npm registry (no npm, or offline); the slides "
              f"will need the network to present. Run `make slides` once online.", file=sys.stderr)
    return written


def _book_mathjax():
    """book/mathjax.py (MathJax 3 from the book's extra), the website's and these pages' one source of MathJax."""
    spec = importlib.util.spec_from_file_location("lmcourse_book_mathjax", ROOT / "book" / "mathjax.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# nbconvert's page loads MathJax 2 and require.js from a CDN; these pages load MathJax 3 from build/html/mathjax/
# (require.js only serves widget managers, and stored notebooks carry no widget state: widgets show their fallback).
MATHJAX_BLOCK = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
REQUIRE_JS = re.compile(r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/require\.js/[^"]*"></script>')
MATHJAX_3 = """<script>window.MathJax = {tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
  displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]], processEscapes: true, processEnvironments: true, tags: "ams"},
  svg: {fontCache: "global"}};</script>
<script defer src="mathjax/{script}"></script>"""


def write_html(paths: list[Path] | None = None, folder: Path | None = None) -> list[Path]:
    """Each chapter (or `paths`) as one HTML page with its stored outputs (nbconvert's lab template) and a local
    MathJax, in build/html/ (or `folder`)."""
    from nbconvert import HTMLExporter

    folder = BUILD / "html" if folder is None else folder
    script = _book_mathjax().copy_to(folder / "mathjax").name
    exporter = HTMLExporter()
    written = []
    for path in notebook_paths() if paths is None else paths:
        nb = nbformat.read(path, as_version=4)
        nb.metadata.pop("widgets", None)  # static pages: each widget output shows its stored PNG or text
        title = next((line.lstrip("# ").strip() for line in nb.cells[0].source.splitlines() if line.startswith("#")),
                     path.stem)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        body = MATHJAX_BLOCK.sub(lambda _: MATHJAX_3.replace("{script}", script), body, count=1)
        body = REQUIRE_JS.sub("", body, count=1)
        target = folder / f"{path.stem}.html"
        atomic_write_text(target, body)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmcourse.classroom", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("handout", "slides", "html"))
    args = parser.parse_args(argv)
    written = {"handout": write_handouts, "slides": write_slides, "html": write_html}[args.what]()
    for path in written:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
