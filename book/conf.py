"""Sphinx configuration of the course website (`make book`; book/build.py stages the pages and runs Sphinx).

Every page is built from stored outputs (no notebook runs), and the site loads nothing from the network:
MathJax is copied from the `sphinx-mathjax-offline` package into _static/mathjax, widget outputs show their
stored fallback (PNG or text) instead of a widget manager from a CDN, and no theme feature that fetches
(launch buttons, Thebe, analytics, search summaries) is switched on.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mathjax  # noqa: E402  (book/mathjax.py: MathJax 3 from the installed package)

project = "lmcourse"
author = "the lmcourse authors"
html_title = "lmcourse: language models, from n-grams to GPT and diffusion"

extensions = ["myst_nb", "sphinx.ext.githubpages"]  # myst_nb brings myst_parser; githubpages: a .nojekyll file
myst_enable_extensions = ["dollarmath", "amsmath"]  # $...$ and $$...$$ as in Jupyter
myst_dmath_double_inline = True  # $$...$$ inside a paragraph is display math, as in Jupyter
myst_heading_anchors = 3

# The pages show what `make course` stored; nothing is executed.
nb_execution_mode = "off"
nb_merge_streams = True
nb_render_markdown_format = "myst"  # Markdown outputs (the runtime tables, results) with tables and math
# A widget output shows its stored static fallback; no widget manager (it would come from a CDN).
nb_ipywidgets_js: dict = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]

exclude_patterns = ["_build", "**.ipynb_checkpoints"]

html_theme = "sphinx_book_theme"
html_theme_options = {
    "home_page_in_toc": True,  # the sidebar: the course's front page, then every chapter in order
    "show_navbar_depth": 1,
    "show_toc_level": 2,  # the page's sections in the right-hand column
    "use_download_button": True,  # the chapter's .ipynb (with its stored outputs)
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "use_source_button": False,
    "use_edit_page_button": False,
    "use_issues_button": False,
    "navigation_with_keys": False,
}
html_show_sourcelink = False
html_show_search_summary = False  # summaries are fetched per result, which a page opened from file:// cannot do
html_last_updated_fmt = None
html_static_path: list[str] = []

# MathJax 3 from the installed package, never from a CDN; SVG output needs no web fonts.
mathjax_path = f"mathjax/{mathjax.SCRIPT}"


def copy_mathjax(app, exception) -> None:
    """Copy the parts of MathJax the pages use (the TeX-to-SVG bundle, its lazily loaded pieces) into _static."""
    if exception is None and app.builder.format == "html":
        mathjax.copy_to(Path(app.outdir) / "_static" / "mathjax")


def setup(app) -> None:
    app.connect("build-finished", copy_mathjax)
