"""The course website (`make book`): built from the stored outputs, read offline in headless Chromium.

The site is opened from file:// with every other request aborted (and none may be attempted); the test follows
the sidebar through every chapter and checks each page's title, its figures (images that loaded) and its math
(rendered by the local MathJax, no raw `$$`). It reuses build/book when that was built from the current inputs,
else builds it (about 5 s). Skips with the reason when the book's extra or a browser is missing, except in CI:
LMCOURSE_REQUIRE_BOOK=1 (set by .ci/run, which runs `make book`) and LMCOURSE_REQUIRE_BROWSER=1 make it fail.
Screenshots go to artifacts/book/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "book"
CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and Path(p).is_file()), None)


def _missing_book_packages() -> list[str]:
    missing = [name for name in ("sphinx", "myst_nb", "sphinx_book_theme") if importlib.util.find_spec(name) is None]
    try:
        distribution("sphinx-mathjax-offline")
    except PackageNotFoundError:
        missing.append("sphinx-mathjax-offline")
    return missing


MISSING = _missing_book_packages()
REQUIRE_BOOK = os.environ.get("LMCOURSE_REQUIRE_BOOK") == "1"
REQUIRE_BROWSER = os.environ.get("LMCOURSE_REQUIRE_BROWSER") == "1"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:'sphinx_book_theme"),  # the theme uses an API that Sphinx 11 removes
    pytest.mark.skipif(bool(MISSING) and not REQUIRE_BOOK,
                       reason=f"the book's extra is not installed ({', '.join(MISSING)}): `make book` installs it "
                              "(pip install -c constraints.txt -e '.[book]')"),
]


def load_builder():
    """book/build.py as a module (book/ is a folder of the repository, not a package)."""
    spec = importlib.util.spec_from_file_location("lmcourse_book_build", ROOT / "book" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDER = load_builder()


@pytest.fixture(scope="module")
def site() -> Path:
    """build/book, built from the current notebooks and book/ (reused when it already is)."""
    if MISSING:
        pytest.fail(f"the book's extra is not installed ({', '.join(MISSING)}); LMCOURSE_REQUIRE_BOOK=1: the book "
                    "test must run here (make book installs it)")
    if not BUILDER.is_fresh():
        assert BUILDER.build() == 0, "the book did not build: run `make book` to see Sphinx's messages"
    assert BUILDER.is_fresh()
    return BUILDER.OUT


@pytest.fixture(scope="module")
def browser():
    def missing(reason):
        if REQUIRE_BROWSER:
            pytest.fail(f"{reason} (LMCOURSE_REQUIRE_BROWSER=1: the browser tests must run here)")
        pytest.skip(reason)

    if CHROMIUM is None:
        missing("no Chromium found: `apt-get install chromium` (CI does)")
    try:
        import playwright.sync_api as playwright
    except ImportError:
        missing("Playwright for Python is not installed")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield browser
        browser.close()


class OfflinePage:
    """A page that may load file:// URLs only: any other request is aborted and recorded, as are files that
    failed to load and uncaught script errors."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._only_files)
        self.page.on("requestfailed", lambda r: r.url.startswith("file://") and self.failed.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _only_files(self, route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def assert_offline(self):
        assert self.blocked == [], f"the site requested the network: {self.blocked}"
        assert self.failed == [], f"files of the site failed to load: {self.failed}"
        assert self.errors == [], f"scripts failed: {self.errors}"


@pytest.fixture
def offline(browser):
    page = OfflinePage(browser)
    yield page
    page.page.close()


# What each notebook shows, read from the stored notebook itself.

_MATH = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$[^\s$][^$\n]*?(?<![\s\\])\$", re.S)


def _markdown_texts(nb: dict) -> list[str]:
    texts = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    texts += ["".join(out["data"]["text/markdown"]) for c in nb["cells"] for out in c.get("outputs", [])
              if "text/markdown" in out.get("data", {})]
    return [re.sub(r"```.*?```|`[^`\n]*`", " ", t, flags=re.S) for t in texts]  # code is not math


def chapter(path: Path) -> dict:
    nb = json.loads(path.read_text(encoding="utf-8"))
    title = "".join(nb["cells"][0]["source"]).splitlines()[0].removeprefix("# ").strip()
    outputs = [out.get("data", {}) for c in nb["cells"] for out in c.get("outputs", [])]
    tables = sum(bool(re.search(r"^\|.*\|\s*\n\|[-:| ]+\|\s*$", "".join(d.get("text/markdown", "")), re.M))
                 for d in outputs)
    solutions = sum("solution" in c.get("metadata", {}).get("tags", []) for c in nb["cells"])
    return {"name": path.stem, "title": title, "pngs": sum("image/png" in d for d in outputs), "tables": tables,
            "solutions": solutions, "math": any(_MATH.search(t) for t in _markdown_texts(nb))}


CHAPTERS = [chapter(p) for p in BUILDER.chapters()]

WAIT_FOR_IMAGES = """() => [...document.querySelectorAll('article img')].every(i => i.complete)"""
LOADED_FIGURES = """() => [...document.querySelectorAll('article .cell_output img')].filter(i => i.naturalWidth > 0).length"""
BROKEN_IMAGES = """() => [...document.querySelectorAll('article img')].filter(i => !(i.naturalWidth > 0)).map(i => i.src)"""
MATHJAX_DONE = """() => window.MathJax && MathJax.startup && MathJax.startup.promise
                      && MathJax.startup.promise.then(() => true)"""
MATH = """() => {
  const math = [...document.querySelectorAll('article .math')];
  const text = el => { const c = el.cloneNode(true); c.querySelectorAll('pre, code, mjx-container').forEach(n => n.remove());
                       return c.textContent; };
  return {math: math.length, rendered: document.querySelectorAll('article mjx-container').length,
          unrendered: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
          errors: [...document.querySelectorAll('article mjx-merror')].map(e => e.textContent.slice(0, 80)),
          raw_dollars: text(document.querySelector('article')).includes('$$')};
}"""


def test_every_chapter_is_in_the_sidebar_in_teaching_order(site, offline):
    page = offline.page
    page.goto((site / "index.html").as_uri())
    links = page.eval_on_selector_all("nav.bd-docs-nav a.reference.internal",
                                      "links => links.map(a => [a.getAttribute('href'), a.textContent.trim()])")
    assert [href for href, _ in links if href.startswith("notebooks/")] == [
        f"notebooks/{c['name']}.html" for c in CHAPTERS]
    assert [text for href, text in links if href.startswith("notebooks/")] == [c["title"] for c in CHAPTERS]
    offline.assert_offline()


def test_following_the_sidebar_every_chapter_shows_its_title_figures_and_math(site, offline):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = offline.page
    page.goto((site / "index.html").as_uri())
    for c in CHAPTERS:
        page.click(f"nav.bd-docs-nav a.reference.internal[href$='{c['name']}.html']")  # the sidebar of this page
        page.wait_for_url(f"**/notebooks/{c['name']}.html")
        page.wait_for_load_state("load")
        assert page.locator("article h1").first.inner_text().rstrip("#¶ \n") == c["title"]
        note = page.locator("article .run-this-chapter")
        assert note.count() == 1 and "make lab" in note.inner_text() and f"notebooks/{c['name']}.ipynb" in note.inner_text()
        page.wait_for_function(WAIT_FOR_IMAGES, timeout=30_000)
        assert page.evaluate(BROKEN_IMAGES) == [], f"{c['name']}: images that did not load"
        if c["pngs"]:
            assert page.evaluate(LOADED_FIGURES) == c["pngs"], f"{c['name']}: each stored PNG is a loaded figure"
        # Markdown outputs (runtime tables, results) render their tables; solutions are folded as in the lab
        assert page.locator("article .cell_output table").count() >= c["tables"], c["name"]
        assert page.locator("article .tag_solution details:not([open]) .cell_input").count() == c["solutions"]
        if c["math"]:
            page.wait_for_function(MATHJAX_DONE, timeout=60_000)
            found = page.evaluate(MATH)
            assert found["math"] > 0 and found["rendered"] >= found["math"], (c["name"], found)
            assert found["unrendered"] == [] and found["errors"] == [], (c["name"], found)
            assert not found["raw_dollars"], f"{c['name']}: raw $$ left on the page"
        page.screenshot(path=str(ARTIFACTS / f"{c['name']}.png"))
    offline.assert_offline()


def test_search_finds_the_chapter_that_teaches_a_word(site, offline):
    page = offline.page
    page.goto((site / "search.html").as_uri() + "?q=perplexity")
    page.wait_for_function("document.querySelectorAll('#search-results ul.search li').length > 0", timeout=30_000)
    hrefs = page.eval_on_selector_all("#search-results ul.search li a", "links => links.map(a => a.href)")
    assert any("notebooks/01_language_model_probability.html" in h for h in hrefs), hrefs
    offline.assert_offline()


def test_the_pages_reference_no_remote_script_style_or_image(site):
    remote = re.compile(r"<(?:script|img|iframe)[^>]*\ssrc=\"(?:https?:)?//|<link[^>]*\shref=\"(?:https?:)?//")
    found = [p.name for p in site.rglob("*.html") if remote.search(p.read_text(encoding="utf-8"))]
    assert found == []
    assert (site / "_static" / "mathjax" / "tex-svg.js").is_file()


# `make html`: each chapter as one nbconvert page (lmcourse.classroom.write_html) with MathJax from the book's extra.
EXPORT_MATH = """() => new Promise(done => {
  const check = () => {
    if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return setTimeout(check, 100);
    MathJax.startup.promise.then(() => {
      const body = document.querySelector('main') || document.body;
      const c = body.cloneNode(true);
      c.querySelectorAll('pre, code, mjx-container, .jp-CodeCell .jp-InputArea').forEach(n => n.remove());
      done({rendered: document.querySelectorAll('mjx-container').length,
            errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80)),
            raw_dollars: c.textContent.includes('$$')});
    });
  };
  check();
})"""


@pytest.mark.parametrize("name", ["01_language_model_probability", "04_attention"])
def test_an_exported_chapter_reads_offline_with_its_figures_and_math(tmp_path, offline, name):
    if MISSING:
        pytest.fail(f"the book's extra is not installed ({', '.join(MISSING)}); `make html` takes MathJax from it")
    from lmcourse.classroom import write_html

    c = next(c for c in CHAPTERS if c["name"] == name)
    [page_path] = write_html([ROOT / "notebooks" / f"{name}.ipynb"], tmp_path)
    remote = re.compile(r"<(?:script|img|iframe)[^>]*\ssrc=\"(?:https?:)?//|<link[^>]*\shref=\"(?:https?:)?//")
    assert not remote.search(page_path.read_text(encoding="utf-8")), "the page names a remote script, style or image"
    page = offline.page
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    assert page.title() == c["title"]
    figures = page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea-output img')]"
                            ".filter(i => i.naturalWidth > 0).length")
    assert figures == c["pngs"], f"{name}: each stored PNG is a loaded figure"
    found = page.evaluate(EXPORT_MATH)
    assert found["rendered"] > 0 and found["errors"] == [] and not found["raw_dollars"], (name, found)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"export-{name}.png"))
    offline.assert_offline()
