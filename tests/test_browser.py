"""The course as a person sees it: JupyterLab in headless Chromium, a chapter run top to bottom.

Needs Debian's `chromium` (the CI script installs it) and Playwright for Python; skips with the
reason when either is missing, except under LMCOURSE_REQUIRE_BROWSER=1 (set by .ci/run), where a missing
browser fails the run: CI must not pass with the browser tests silently skipped. Screenshots go to
artifacts/browser/.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and Path(p).is_file()), None)
WIDGET_NOTEBOOK = "04_attention.ipynb"
REQUIRED = os.environ.get("LMCOURSE_REQUIRE_BROWSER") == "1"


def missing(reason: str) -> None:
    """Skip for a learner without a browser; fail in CI, where the browser tests must run."""
    if REQUIRED:
        pytest.fail(f"{reason} (LMCOURSE_REQUIRE_BROWSER=1: the browser tests must run here)")
    pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)  # before the module's browser fixture
def chromium_present():
    if CHROMIUM is None:
        missing("no Chromium found: `apt-get install chromium` (CI does)")


pytestmark = [pytest.mark.browser]


@pytest.fixture  # a fresh JupyterLab per test: a second notebook opened in one lab did not run reliably
def lab(tmp_path_factory):
    """A JupyterLab server from this environment on a free loopback port, serving a copy of notebooks/."""
    folder = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", folder / "notebooks")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "LMCOURSE_FAST": "1", "JUPYTER_PLATFORM_DIRS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder / 'notebooks'}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.port_retries=0", "--allow-root",
         # a workspace of its own: a shared one reopens the tabs of earlier runs over the notebook under test
         f"--LabApp.workspaces_dir={folder / 'workspaces'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not answer within 60 s")
    yield url, token, folder / "notebooks"
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
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


def open_and_run_all(browser, url: str, token: str, notebook: str):
    """Open `notebook` with its kernel, run all cells, wait for the last one; return the page and blocked requests."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    blocked: list[str] = []

    def offline_only(route):
        if route.request.url.startswith("http://127.0.0.1"):
            route.continue_()
        else:  # the course must render with no internet: nothing may come from a CDN
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", offline_only)
    page.goto(f"{url}/lab/tree/{notebook}?token={token}")
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
                           "&& window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel", timeout=120_000)
    kernel = page.evaluate("window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel.name")
    assert kernel == "lmcourse", f"the notebook opened with {kernel!r}: register the course kernel with `make install`"
    page.wait_for_function("window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel.status === 'idle'",
                           timeout=120_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # Done when the kernel is idle again and no cell still shows the busy prompt [*].
    page.wait_for_timeout(2000)
    page.wait_for_function(
        "window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel.status === 'idle' && "
        "![...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'))",
        timeout=300_000, polling=1000)
    return page, blocked


VIEWS_NOTEBOOK = """\
import torch
from lmcourse.viz import head_view, model_view
torch.manual_seed(0)
weights = list(torch.randn(3, 1, 4, 6, 6).mul(2).softmax(-1))  # 3 layers of (B=1, 4 heads, 6, 6)
tokens = ["The", "Ġcat", "Ġsat", "Ġon", "Ġthe", "Ġmat"]
head_view(weights, tokens, layer=1)
"""
MORE_VIEWS = """\
from lmcourse.gpt import GPT, GPTConfig
from lmcourse.viz import neuron_view
grid = model_view(weights, tokens, layer=0, head=0)
gpt = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32))
neurons = neuron_view(gpt, torch.tensor([[1, 2, 3, 4, 5, 6]]), tokens, layer=1, head=0, query=5)
display(grid, neurons)
"""
BIG_VIEW = """\
# GPT-2-small-sized: 12 layers x 12 heads x 128 tokens, causal
scores = torch.randn(12, 1, 12, 128, 128).masked_fill(torch.ones(128, 128).triu(1).bool(), float("-inf"))
head_view(list(scores.softmax(-1)), [f"t{i}" for i in range(128)])
"""


def show_cell(page, index: int, locator, timeout_s: float = 60) -> None:
    """Scroll the notebook to cell `index` until `locator` is visible: "run all" leaves the notebook scrolled to its
    last cell, and JupyterLab's windowed notebook hides cells outside the window (sometimes after a first scroll)."""
    locator.wait_for(state="attached", timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    while not locator.is_visible():
        if time.monotonic() > deadline:
            state = locator.evaluate("""(img) => { const r = img.getBoundingClientRect();
                const hidden = []; for (let e = img; e; e = e.parentElement) {
                    const c = getComputedStyle(e); if (c.display === 'none' || c.visibility === 'hidden') hidden.push(e.className); }
                return {w: r.width, h: r.height, natural: img.naturalWidth, complete: img.complete, hidden}; }""")
            pytest.fail(f"cell {index}'s output stayed hidden for {timeout_s:.0f} s after scrolling to it: {state}")
        page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.scrollToItem(i, 'start')", index)
        page.wait_for_timeout(1000)


SELECTED = "m => m.options[m.selectedIndex].text.replace(/\\u00a0/g, ' ')"  # a menu's choice (ipywidgets: nbsp)


def _view_image(page, output):
    """The data URL or blob URL of the image a view widget shows (changes on every redraw)."""
    return output.locator("img").first.get_attribute("src")


def test_head_view_responds_to_a_head_and_a_token_in_jupyterlab(lab, browser):
    nbformat = pytest.importorskip("nbformat")
    url, token, folder = lab
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "lmcourse", "display_name": "lmcourse", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(VIEWS_NOTEBOOK), nbformat.v4.new_code_cell(BIG_VIEW),
                nbformat.v4.new_code_cell(MORE_VIEWS)]
    nbformat.write(nb, folder / "viz_views.ipynb")
    page, blocked = open_and_run_all(browser, url, token, "viz_views.ipynb")
    view = page.locator(".jp-OutputArea-output .widget-vbox:has(.widget-toggle-button)").first
    show_cell(page, 0, view.locator("img").first)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "head_view-before.png")
    before = _view_image(page, view)

    menu = view.locator("select").nth(1)  # layer, then token
    assert menu.evaluate(SELECTED) == "all tokens"  # not a blank menu
    view.locator(".widget-toggle-button", has_text="head 2").click()  # hide head 2
    page.wait_for_function("(before) => [...document.querySelectorAll('.jp-OutputArea-output img')]"
                           ".every(img => img.src !== before)", arg=before, timeout=20_000)
    after_head = _view_image(page, view)
    left_tokens = view.locator(".lm-picture .widget-toggle-buttons").first
    picture, button = view.locator(".lm-picture img").first.bounding_box(), left_tokens.locator("button").nth(2).bounding_box()
    assert abs(button["y"] + button["height"] / 2 - (picture["y"] + 28 + 18 * 2.5)) < 2  # over row 2 ...
    assert picture["x"] <= button["x"] < picture["x"] + 20  # ... on the left, where the query tokens are
    left_tokens.locator("button").nth(2).click()  # the token "sat" in the picture
    page.wait_for_function("(before) => [...document.querySelectorAll('.jp-OutputArea-output img')]"
                           ".every(img => img.src !== before)", arg=after_head, timeout=20_000)
    page.screenshot(path=ARTIFACTS / "head_view-after.png")
    assert _view_image(page, view) not in (before, after_head)
    page.wait_for_function(f"(m) => ({SELECTED})(m) === '2: sat'", arg=menu.element_handle(), timeout=20_000)
    assert page.locator(".jp-OutputArea-output:has-text('Error displaying widget')").count() == 0
    assert not blocked, f"requests to the network: {blocked}"

    # The time a learner waits, measured in the browser: choose a layer of the big view until its new
    # picture is decoded and painted (kernel round trip + SVG render). Recorded, not asserted.
    big = page.locator(".jp-OutputArea-output .widget-vbox:has(.widget-toggle-button)").nth(1)
    show_cell(page, 1, big.locator("img").first)
    old = big.locator("img").first.get_attribute("src")
    start = page.evaluate("performance.now()")
    big.locator("select").first.select_option(label="3")
    page.wait_for_function(
        "(old) => { const img = [...document.querySelectorAll('.jp-OutputArea-output img')].find(i => i.src === old);"
        " return !img; }", arg=old, timeout=60_000)
    seconds = page.evaluate("""(start) => new Promise(done => {
        const imgs = [...document.querySelectorAll('.jp-OutputArea-output .widget-vbox img')];
        Promise.all(imgs.map(i => i.decode().catch(() => null))).then(() =>
            requestAnimationFrame(() => requestAnimationFrame(() => done((performance.now() - start) / 1000))));
    })""", start)
    (ARTIFACTS / "head_view_redraw_seconds.txt").write_text(
        f"12 layers x 12 heads x 128 tokens, choose a layer -> new picture painted: {seconds:.2f} s\n")
    page.screenshot(path=ARTIFACTS / "head_view-big.png")

    # The model view: click the map of layer 2, head 3; its head view below opens that layer.
    grid = page.locator(".jp-OutputArea-output .widget-vbox:has(.widget-dropdown:has-text('open layer'))").first
    show_cell(page, 2, grid.locator("img").first)
    cell = grid.locator(".lm-picture .widget-toggle-buttons").first.locator("button").nth(2 * 4 + 3)
    picture, box = grid.locator(".lm-picture img").first.bounding_box(), cell.bounding_box()
    assert picture["x"] + picture["width"] / 2 < box["x"] and picture["y"] + picture["height"] / 2 < box["y"]  # bottom right
    cell.click()
    layer_menu = grid.locator("select").first
    page.wait_for_function(f"(m) => ({SELECTED})(m) === '2'",
                           arg=layer_menu.element_handle(), timeout=20_000)
    assert grid.locator("select").nth(1).evaluate(SELECTED) == "3"
    grid.scroll_into_view_if_needed()
    grid.screenshot(path=ARTIFACTS / "model_view-clicked.png")

    # The neuron view: click a token to make it the query.
    neurons = page.locator(".jp-OutputArea-output .widget-vbox:has(.widget-dropdown:has-text('query'))").last
    neurons.scroll_into_view_if_needed()
    old = neurons.locator("img").first.get_attribute("src")
    neurons.locator(".lm-picture .widget-toggle-buttons button").nth(1).click()
    page.wait_for_function("([img, old]) => img.src !== old", arg=[neurons.locator("img").first.element_handle(), old],
                           timeout=20_000)
    assert neurons.locator("select").nth(2).evaluate(SELECTED) == "1: cat"
    neurons.screenshot(path=ARTIFACTS / "neuron_view-clicked.png")
    assert page.locator(".jp-OutputArea-output:has-text('Error displaying widget')").count() == 0
    page.close()


def test_chapter_runs_in_jupyterlab_with_figures_and_working_widgets(lab, browser):
    url, token, _ = lab
    notebook = WIDGET_NOTEBOOK if (ROOT / "notebooks" / WIDGET_NOTEBOOK).is_file() else "00_setup.ipynb"
    page, blocked = open_and_run_all(browser, url, token, notebook)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{Path(notebook).stem}-top.png")

    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']:has-text('Traceback')")
    assert errors.count() == 0, errors.first.inner_text()
    assert page.locator(".jp-RenderedImage img").count() >= 1, "no matplotlib figure was rendered"
    assert page.locator(".jp-OutputArea-output:has-text('Error displaying widget')").count() == 0
    assert not [u for u in blocked if u.endswith(".js")], f"JavaScript requested from outside: {blocked}"

    if notebook == WIDGET_NOTEBOOK:  # the attention explorer: rendered offline, and it responds
        assert page.locator(".jp-OutputArea-output .jupyter-widgets").count() >= 1, "no ipywidget was rendered"
        explorer = page.locator(".jp-OutputArea-output .widget-vbox:has(select), .jp-OutputArea-output .widget-vbox:has(.widget-slider)").last
        explorer.scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "explore_attention-before.png")
        before = explorer.inner_html()
        menus = [m for m in explorer.locator("select").all() if m.locator("option").count() >= 2]
        if menus:  # a choice of head (or layer): pick the last option
            menus[-1].select_option(label=menus[-1].locator("option").all_inner_texts()[-1])
        else:  # one head only: move the query-token slider instead
            handle = explorer.locator(".widget-slider .noUi-handle, .widget-slider [role=slider]").first
            handle.focus()
            for _ in range(3):
                page.keyboard.press("ArrowRight")
        page.wait_for_timeout(2000)
        page.screenshot(path=ARTIFACTS / "explore_attention-after.png")
        assert explorer.inner_html() != before, "changing the head or query did not change the attention view"
    page.close()



def test_exported_html_renders_in_chromium_with_the_network_off(browser, tmp_path):
    import torch

    from lmcourse.viz import model_view, save_html

    torch.manual_seed(0)
    weights = list(torch.randn(2, 1, 3, 5, 5).softmax(-1))
    path = save_html(model_view(weights, ["<s>", "a", "b", "c", "</s>"], layer=1, head=2), tmp_path / "view.html")
    context = browser.new_context(offline=True)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert page.locator("svg").count() == 3 and page.locator("svg path").count() > 0  # grid, enlarged map, head view
    size = page.evaluate("(() => { const i = document.querySelector('svg image');"
                         " return [i.getBBox().width, i.href.baseVal.slice(0, 22)]; })()")
    assert size[0] > 0 and size[1] == "data:image/png;base64,"
    assert "&lt;s&gt;" in page.content()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "exported_view.png", full_page=True)

    def drawn():  # head-view paths the browser draws now (those in a display:none group have no box)
        return page.evaluate("[...document.querySelectorAll('.lm-hv path')]"
                             ".filter(p => p.getBoundingClientRect().height > 0).length")

    one_head = drawn()
    page.locator(".lm-hv label", has_text="head 0").click()  # tick a second head
    two_heads = drawn()
    page.locator(".lm-hv svg a text", has_text="b").last.click()  # one token: its lines only
    one_token = drawn()
    page.screenshot(path=ARTIFACTS / "exported_view-token.png", full_page=True)
    assert 0 < one_head < two_heads and 0 < one_token < two_heads, (one_head, two_heads, one_token)

    def enlarged():  # the enlarged map shown now: the caption of the visible group
        return page.evaluate("[...document.querySelectorAll('.maps .m')].filter(g => g.getBoundingClientRect()"
                             ".height > 0).map(g => g.querySelector('text').textContent)")

    assert enlarged() == ["layer 1, head 2 (queries down, keys across)"]  # the open map, until a click
    page.locator("#mv .cells label").nth(1 * 3 + 0).click()  # layer 1, head 0
    assert enlarged() == ["layer 1, head 0 (queries down, keys across)"]
    page.screenshot(path=ARTIFACTS / "exported_view-map.png", full_page=True)
    assert requested == [path.as_uri()], f"the page asked for more than itself: {requested}"
    context.close()


def test_exported_pages_open_in_the_state_given_and_respond_offline(browser, tmp_path):
    import numpy as np
    import torch

    from lmcourse.gpt import GPT, GPTConfig
    from lmcourse.viz import head_view, neuron_view, save_html

    torch.manual_seed(0)
    weights = list(torch.randn(3, 1, 2, 6, 6).mul(2).softmax(-1))
    tokens = ["[CLS]", "a", "[SEP]", "b", "c", "[SEP]"]
    view = head_view(weights, tokens, layer=1, token=4)
    context = browser.new_context(offline=True)
    page = context.new_page()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def drawn_segments():  # line segments of the visible head-view paths
        return page.evaluate("[...document.querySelectorAll('.lm-hv path')].filter(p => p.getBoundingClientRect()"
                             ".width > 0).reduce((n, p) => n + p.getAttribute('d').split('M').length - 1, 0)")

    def expected(layer, token):  # lines with an opacity of at least 0.01 (the SVG's rounding)
        lines = view.lines(layer, range(2), token, token)
        return int((np.rint(lines.weight * 100) > 0).sum())

    page.goto(save_html(view, tmp_path / "head.html").as_uri())
    assert drawn_segments() == expected(1, 4)  # layer 1, token 4: as given
    page.screenshot(path=ARTIFACTS / "exported_head_view-token.png", full_page=True)
    page.locator(".lm-hv label", has_text="layer 2").click()
    assert drawn_segments() == expected(2, 4)
    page.locator(".lm-hv svg a text", has_text="all tokens").click()
    assert drawn_segments() == expected(2, None)

    pair = head_view(weights, tokens, sentence_b_start=3, pair="A->B")
    page.goto(save_html(pair, tmp_path / "pair.html").as_uri())
    assert drawn_segments() == int((np.rint(pair.lines(0, range(2)).weight * 100) > 0).sum())
    page.screenshot(path=ARTIFACTS / "exported_head_view-pair.png", full_page=True)

    gpt = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32))
    neurons = neuron_view(gpt, torch.tensor([[1, 2, 3, 4, 5, 6]]), tokens, layer=1, head=0, query=4)
    page.goto(save_html(neurons, tmp_path / "neurons.html").as_uri())

    def shown():
        return page.evaluate("[...document.querySelectorAll('.nq')].filter(g => g.getBoundingClientRect().height > 0)"
                             ".map(g => g.getAttribute('class'))")

    assert shown() == ["nq nq4"]
    page.locator("#nv svg a text").nth(1).click()
    assert shown() == ["nq nq1"]
    page.screenshot(path=ARTIFACTS / "exported_neuron_view.png", full_page=True)

    transformers = pytest.importorskip("transformers")
    cfg = transformers.BartConfig(vocab_size=40, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                                  decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                  max_position_embeddings=32)
    cfg._attn_implementation = "eager"
    out = transformers.BartModel(cfg).eval()(torch.tensor([[0, 5, 6, 2]]), decoder_input_ids=torch.tensor([[2, 0, 7]]),
                                             output_attentions=True)
    both = head_view(out, encoder_tokens=["<s>", "a", "b", "</s>"], decoder_tokens=["</s>", "<s>", "x"])
    page.goto(save_html(both, tmp_path / "encoder_decoder.html").as_uri())

    def parts():  # the parts shown now
        return page.evaluate("[...document.querySelectorAll('.part')].filter(d => d.getBoundingClientRect().height > 0)"
                             ".map(d => d.className)")

    assert parts() == ["part cross"]
    page.locator(".parts label", has_text="decoder self-attention").click()
    assert parts() == ["part decoder"]
    page.screenshot(path=ARTIFACTS / "exported_encoder_decoder.png", full_page=True)
    context.close()
