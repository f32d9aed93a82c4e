"""Our head and model views against bertviz's, in headless Chromium: page size, time to first view, redraw.

The attention is GPT-2-small-shaped (12 layers x 12 heads; random causal heads) at 24 and 128 tokens.
Each view is a self-contained page: ours from `save_html` (inline SVG and CSS, no script), bertviz's from
`head_view(..., html_action="return")` / `model_view(...)`. Times are measured in the page:

- first view: from navigation start until the view is drawn (bertviz: its d3 lines exist) and painted
  (two animation frames later);
- redraw: a selection until the new picture is painted. bertviz: choose another layer in its menu. Ours:
  choose another layer (the page holds every layer at 24 tokens), or, where only the shown layer fits in
  the page (128 tokens), click a token; in a notebook ours also redraws from the kernel (bench_viz).

bertviz loads require.js, d3 and jQuery from a CDN. "network": the three scripts are served from a local
folder (BERTVIZ_SCRIPTS, default /tmp/bertviz_scripts; made with `npm pack` when missing) in place of the
CDN; "offline": every request outside the page fails, as on a machine without internet (bertviz: blank).
bertviz is installed into a throw-away folder (BERTVIZ_TARGET, default /tmp/bertviz_pkg):
`python -m pip install --no-deps --target /tmp/bertviz_pkg bertviz`. Run alone on an idle machine: the
bertviz model view at 128 tokens takes minutes (WAIT_S bounds each wait).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from lmcourse.viz import head_view, model_view, save_html
from lmcourse.viz.head_view_html import HTML_LINE_BUDGET

TARGET = Path(os.environ.get("BERTVIZ_TARGET", "/tmp/bertviz_pkg"))
SCRIPTS = Path(os.environ.get("BERTVIZ_SCRIPTS", "/tmp/bertviz_scripts"))
CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p and Path(p).is_file()), None)
# What bertviz asks the CDN for -> (npm package, file inside it, local name)
CDN_SCRIPTS = {"require": ("requirejs@2.3.6", "package/require.js", "require.js"),
               "/d3/": ("d3@5.7.0", "package/dist/d3.min.js", "d3.min.js"),
               "jquery": ("jquery@2.2.4", "package/dist/jquery.min.js", "jquery.min.js")}  # 2.0.0 is not on npm
WAIT_S = 300          # s: the longest wait for a page to draw (bertviz's model view at 128 tokens takes minutes)
OFFLINE_WAIT_S = 10  # s: an offline bertviz page that has not drawn by then is blank (its scripts failed)
PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now()))))"


def attention(n_layer: int, n_head: int, T: int, seed: int = 0) -> tuple[list[torch.Tensor], list[str]]:
    """Random causal attention, one (1, H, T, T) per layer, and T token labels."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n_layer, 1, n_head, T, T, generator=g)
    scores = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
    return list(scores.softmax(-1)), [f"tok{i}" for i in range(T)]


def bertviz():
    """The bertviz package from its throw-away folder (None when it is not there)."""
    if not (TARGET / "bertviz").is_dir():
        return None
    sys.path.insert(0, str(TARGET))
    try:
        import bertviz as module
    finally:
        sys.path.remove(str(TARGET))
    return module


def local_scripts() -> dict[str, Path] | None:
    """The three CDN scripts in SCRIPTS, fetched with `npm pack` if missing; None when they cannot be had."""
    files = {key: SCRIPTS / name for key, (_, _, name) in CDN_SCRIPTS.items()}
    if all(f.is_file() for f in files.values()):
        return files
    if shutil.which("npm") is None:
        return None
    SCRIPTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for key, (package, member, name) in CDN_SCRIPTS.items():
            done = subprocess.run(["npm", "pack", package, "--silent"], cwd=tmp, capture_output=True, text=True)
            if done.returncode != 0:
                return None
            with tarfile.open(Path(tmp) / done.stdout.strip().splitlines()[-1]) as tar:
                (SCRIPTS / name).write_bytes(tar.extractfile(member).read())
    return files


def measure(browser, page_path: Path, drawn: str, redraw: str, scripts: dict[str, Path] | None,
            wait_s: float = WAIT_S) -> dict:
    """Open page_path; wait (up to wait_s) until `drawn` (a JS expression) holds and two frames are painted;
    then run `redraw` (a JS function returning a promise of ms). scripts: serve these in place of the CDN;
    None: offline."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()

    result = {"size_mb": page_path.stat().st_size / 1e6, "blocked": 0}

    def route(request_route):
        url = request_route.request.url
        if url.startswith("file://"):
            return request_route.continue_()
        for key, path in (scripts or {}).items():
            if key in url:
                return request_route.fulfill(path=str(path), content_type="application/javascript")
        result["blocked"] += 1
        return request_route.abort()

    page.route("**/*", route)
    try:
        page.goto(page_path.as_uri(), wait_until="load", timeout=wait_s * 1000)
        page.wait_for_function(drawn, timeout=wait_s * 1000, polling=100)
        result["first_s"] = page.evaluate(PAINTED) / 1000
        result["redraw_ms"] = page.evaluate(redraw)
    except Exception as exc:  # a page that never draws (offline bertviz) or takes longer than WAIT_S
        result["error"] = (f"blank after {wait_s:.0f} s" if "Timeout" in type(exc).__name__
                           else f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    context.close()
    return result


# A selection and the time until its new picture is painted, in ms (layer 1, token 5, map 2: there in fast mode).
OUR_LAYER = f"""async () => {{ const t = performance.now(); document.querySelector('.lm-hv label[for$="-l1"]').click();
    return (await ({PAINTED})()) - t; }}"""
OUR_TOKEN = f"""async () => {{ const t = performance.now(); location.hash = '#hv-t5';
    return (await ({PAINTED})()) - t; }}"""
OUR_MAP = f"""async () => {{ const t = performance.now(); document.querySelector('#mv .cells label:nth-child(2)').click();
    return (await ({PAINTED})()) - t; }}"""
BERTVIZ_LAYER = f"""async () => {{ const m = document.querySelector('#layer'); const t = performance.now();
    m.value = '1'; m.dispatchEvent(new Event('change')); return (await ({PAINTED})()) - t; }}"""
BERTVIZ_MAP = f"""async () => {{ const cells = [...document.querySelectorAll('svg rect')].filter(r => r.style.opacity === '0');
    const t = performance.now(); cells[1].dispatchEvent(new MouseEvent('click', {{bubbles: true}}));
    return (await ({PAINTED})()) - t; }}"""
BERTVIZ_DRAWN = "document.querySelectorAll('svg line').length > 0"
OUR_DRAWN = "document.querySelectorAll('svg').length > 0"


def _cell(r: dict) -> str:
    size = f"{r['size_mb']:.1f} MB" if r["size_mb"] >= 1 else f"{r['size_mb'] * 1000:.0f} KB"
    if "error" in r:
        return f"{size}, {r['error']}"
    return f"{size}, first view {r['first_s']:.2f} s, redraw {r['redraw_ms']:.0f} ms"


def run(fast: bool) -> list[dict]:
    module = bertviz()
    if CHROMIUM is None or module is None:
        missing = "Chromium" if CHROMIUM is None else f"bertviz in {TARGET}"
        return [{"benchmark": "head / model view against bertviz", "ours": "not measured",
                 "reference": "not measured", "ratio": "n/a",
                 "note": f"skipped: no {missing} (see this file's docstring)"}]
    import playwright.sync_api as playwright

    n_layer, n_head, sizes = (2, 2, (8,)) if fast else (12, 12, (24, 128))
    offline_wait_s = 2 if fast else OFFLINE_WAIT_S
    scripts = local_scripts()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        for T in sizes:
            weights, tokens = attention(n_layer, n_head, T)
            size = f"{n_layer} layers x {n_head} heads x {T} tokens"
            start = time.perf_counter()
            view = head_view(weights, tokens)
            view._repr_mimebundle_()  # what a notebook cell costs: the widget and its PNG copy
            cell_s = time.perf_counter() - start
            for kind, ours_view, theirs_fn, our_redraw, their_redraw in (
                    ("head view", view, module.head_view, OUR_LAYER if 2 * n_layer * n_head * T * T <= HTML_LINE_BUDGET
                     else OUR_TOKEN, BERTVIZ_LAYER),
                    ("model view", model_view(weights, tokens), module.model_view, OUR_MAP, BERTVIZ_MAP)):
                ours_path = save_html(ours_view, Path(tmp) / f"ours-{kind}-{T}.html")
                theirs_path = Path(tmp) / f"bertviz-{kind}-{T}.html"
                theirs_path.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                                       + theirs_fn(tuple(weights), tokens, html_action="return").data + "</body></html>")
                ours = measure(browser, ours_path, OUR_DRAWN, our_redraw, None)
                network = measure(browser, theirs_path, BERTVIZ_DRAWN, their_redraw, scripts) if scripts else None
                offline = measure(browser, theirs_path, BERTVIZ_DRAWN, their_redraw, None, offline_wait_s)
                ratio = (f"{network['first_s'] / ours['first_s']:.1f}" if network and "first_s" in network
                         and "first_s" in ours else "")
                what = "a layer" if our_redraw is OUR_LAYER else ("a token" if our_redraw is OUR_TOKEN else "a map")
                rows.append({
                    "benchmark": f"{kind} page, {size}: size, time to first view, redraw",
                    "ours": f"{_cell(ours)} (choose {what}); measured offline, requests outside the page: "
                            f"{ours['blocked']}",
                    "reference": (f"bertviz with its CDN scripts served locally: {_cell(network)}; offline: "
                                  f"{offline.get('error', 'drawn')}" if network else
                                  f"bertviz offline: {offline.get('error', 'drawn')} (no local copy of its scripts)"),
                    "ratio": ratio,
                    "note": ("time to first view, bertviz / ours. " if ratio else "")
                            + (f"In a notebook: head_view + its widget and PNG copy take {cell_s:.2f} s in Python."
                               if kind == "head view" else "redraw: click a map (both enlarge it)"),
                })
        browser.close()
    return rows


if __name__ == "__main__":
    for row in run(fast=True):
        print(row)
