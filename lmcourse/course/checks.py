"""Checks of the notebooks' stored outputs: healthy, consistent with the recorded runs, and truthful.

Each function returns a list of problems, one line each, naming the notebook, the cell and the fix.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from pathlib import Path

from lmcourse.course.results import (
    KEY_RESULT,
    _joined,
    _stored_table,
    _stream_lines,
    _visible_text,
    key_results,
    load_key_results,
    load_runtimes,
    parse_key_result,
    runtime_table,
    runtime_table_cell,
)

_MACHINE_PATH = re.compile(r"/(home|root|tmp|work|Users)/")


def notebook_problems(nb: dict, name: str) -> list[str]:
    """What is wrong with a notebook's stored outputs: unexecuted cells, errors, order, machine paths."""
    problems, counts = [], []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code" or not _joined(cell.get("source", "")).strip():
            continue
        count = cell.get("execution_count")
        counts.append(count)
        if count is None:
            problems.append(f"{name}: code cell {i} was never executed")
        stub = "exercise" in cell.get("metadata", {}).get("tags", []) and "NotImplementedError" in _joined(cell["source"])
        if not cell.get("outputs") and not stub:  # an exercise stub defines the learner's function, shows nothing
            problems.append(f"{name}: code cell {i} has no stored output (end it with something to look at)")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"{name}: code cell {i} stored an error ({out.get('ename')})")
            text = json.dumps(out.get("text", "")) + json.dumps(out.get("data", {}).get("text/plain", ""))
            if _MACHINE_PATH.search(text):
                problems.append(f"{name}: code cell {i} output shows a machine path")
    known = [c for c in counts if c is not None]
    if known != list(range(1, len(known) + 1)):
        problems.append(f"{name}: execution counts are not 1..n in order (run 'Restart kernel and run all')")
    return problems


def runtime_table_problems(nb: dict, name: str, runtimes: dict) -> list[str]:
    """The stored runtime table differs from runtimes.json, or fast mode is not faster than full."""
    problems = []
    i = runtime_table_cell(nb, name)
    if i is None:
        problems.append(f'{name}: no cell shows runtime_table("{name}") (add one under the title)')
    elif _stored_table(nb["cells"][i]) != runtime_table(name, runtimes):
        rows = [r for r in (_stored_table(nb["cells"][i]) or "").splitlines() if r.startswith(f"| {name} ")]
        stored = rows[0] if rows else _stored_table(nb["cells"][i]) or "nothing"
        problems.append(f"{name}: cell {i} stores a stale runtime table {stored!r}; runtimes.json gives "
                        f"{runtime_table(name, runtimes).splitlines()[2]!r} (re-run with the course runner)")
    fast, full = (runtimes.get(name, {}).get(m, {}).get("seconds") for m in ("fast", "full"))
    if fast is not None and full is not None and fast >= full:
        problems.append(f"{name}: fast mode ({fast} s) is not faster than full mode ({full} s); shrink fast mode")
    return problems


def key_result_problems(nb: dict, name: str) -> list[str]:
    """Key result lines that do not parse, and names printed twice."""
    problems, seen = [], {}
    for i, line in _stream_lines(nb):
        if not line.startswith(KEY_RESULT.strip()):
            continue
        try:
            result = parse_key_result(line)
        except ValueError as exc:
            problems.append(f"{name}: cell {i}: {exc}")
            continue
        if result.name in seen:
            problems.append(f"{name}: cells {seen[result.name]} and {i} both print key result {result.name!r}; "
                            "names must be unique in a notebook")
        seen.setdefault(result.name, i)
    if not problems and not seen:
        problems.append(f"{name}: prints no key result; print its headline numbers with "
                        "lmcourse.course.key_result(name, value, unit)")
    return problems


def recorded_key_result_problems(nb: dict, name: str, recorded: dict) -> list[str]:
    """The stored outputs' key results differ from every full-mode (CPU or GPU) entry of key_results.json."""
    try:
        shown = {r.name: {"value": r.value, "unit": r.unit, "note": r.note} for r in key_results(nb)}
    except ValueError:
        return []  # key_result_problems names the bad line
    entries = {mode: e["results"] for mode, e in recorded.get(name, {}).items() if mode in ("full", "gpu")}
    if not entries:
        return [f"{name}: no full-mode entry in notebooks/key_results.json (run it with the course runner)"]
    if shown not in entries.values():
        differ = sorted(k for k in set(shown) | {k for e in entries.values() for k in e}
                        if any(shown.get(k) != e.get(k) for e in entries.values()))
        return [f"{name}: the stored outputs' key results differ from notebooks/key_results.json in {differ} "
                "(outputs and key results must come from the same run: re-run with the course runner)"]
    return []


def _images(out: dict) -> list[tuple[str, str]]:
    return [(mime, _joined(v)) for mime, v in out.get("data", {}).items() if mime.startswith("image/")]


def duplicate_figure_problems(nb: dict, name: str) -> list[str]:
    """Byte-identical images stored more than once in one notebook (e.g. plt.show() and a returned figure)."""
    first, problems = {}, []
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            for mime, data in _images(out):
                raw = base64.b64decode(data) if mime != "image/svg+xml" else data.encode()
                digest = hashlib.sha256(raw).hexdigest()
                if digest in first:
                    where = f"cell {i}" if first[digest] == i else f"cells {first[digest]} and {i}"
                    problems.append(f"{name}: {where} store the same {mime} image twice "
                                    "(show a figure once: return it or plt.show(), not both)")
                first.setdefault(digest, i)
    return problems


# A tqdm bar as text: "desc: 45%|####      | 270/600 [...]" (widget fallbacks read the same).
_BAR = re.compile(r"(?P<pct>\d+)%\|[^|\n]*\|\s*(?P<n>[\d.]+[kMG]?)/(?P<total>[\d.]+[kMG]?)")


def _unfinished_bars(text: str) -> list[str]:
    return [m.group(0)[:60] for m in _BAR.finditer(text)
            if int(m["pct"]) < 100 or m["n"] != m["total"]]


def _widget_bars(state: dict) -> list[str]:
    """The text of each tqdm widget (an HBox of HTML, progress bar, HTML) in a stored widget state."""
    models = {k: v.get("state", {}) for k, v in state.items()}
    names = {k: v.get("model_name") for k, v in state.items()}
    bars = []
    for key, model in models.items():
        children = [c.removeprefix("IPY_MODEL_") for c in model.get("children", [])]
        if names[key] != "HBoxModel" or len(children) != 3 or not all(c in models for c in children):
            continue
        left, bar, right = (models[c] for c in children)
        if not names[children[1]].endswith("ProgressModel"):
            continue
        text = html.unescape(f"{left.get('value', '')}|{'#' if bar.get('value') == bar.get('max') else ' '}|"
                             f"{right.get('value', '')}").replace("\u2007", " ")
        bars.append(text if bar.get("value") == bar.get("max") else f"{text} (bar at {bar.get('value')} of {bar.get('max')})")
    return bars


def progress_bar_problems(nb: dict, name: str) -> list[str]:
    """Progress bars whose stored state (what a static view shows) is unfinished."""
    state = nb.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    problems = [f"{name}: the stored widget state holds an unfinished progress bar {bar[:80]!r} (re-run with "
                "the course runner, which stores text bars in their final state)"
                for bar in _widget_bars(state.get("state", {})) if _unfinished_bars(bar) or "(bar at" in bar]
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            texts = [_visible_text(_joined(out.get("text", "")))]
            texts += [_joined(v) for k, v in out.get("data", {}).items() if k in ("text/plain", "text/html")]
            for bar in (b for t in texts for b in _unfinished_bars(t)):
                problems.append(f"{name}: cell {i} stores an unfinished progress bar {bar!r} (re-run with the "
                                "course runner, which stores text bars in their final state)")
    return problems


_WIDGET_REPR = re.compile(r"^[A-Z]\w*\((children|value|description|options)=")


def widget_fallback_problems(nb: dict, name: str) -> list[str]:
    """Widgets whose stored text (what a static view shows) is their repr, e.g. `VBox(children=(...`."""
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            plain = _joined(data.get("text/plain", ""))
            if "application/vnd.jupyter.widget-view+json" in data and _WIDGET_REPR.match(plain):
                problems.append(f"{name}: cell {i} stores a widget whose static view is {plain[:40]!r}...; "
                                "store a meaningful fallback (a short text or a figure of the initial view)")
    return problems


def widget_state_problems(nb: dict, name: str) -> list[str]:
    """A stored widget state (`metadata.widgets`, or a widget-state bundle in an output).

    With it, static views (`jupyter nbconvert --to html`, GitHub, nbviewer) hand each widget output to a widget
    manager fetched from a CDN, which draws nothing offline, instead of showing the output's stored fallback.
    """
    fix = ("remove it: re-run with the course runner, which stores none, or keep the outputs with "
           "lmcourse.course.runner.strip_stored_widget_state(path)")
    problems = []
    state = nb.get("metadata", {}).get("widgets")
    if state is not None:
        models = len(state.get("application/vnd.jupyter.widget-state+json", {}).get("state", {}))
        problems.append(f"{name}: the notebook's metadata stores widget state ({models} widget models); {fix}")
    for i, cell in enumerate(nb.get("cells", [])):
        if any("application/vnd.jupyter.widget-state+json" in out.get("data", {}) for out in cell.get("outputs", [])):
            problems.append(f"{name}: cell {i} stores a widget state in its output; {fix}")
    return problems


def html_progress_bar_problems(path: Path) -> list[str]:
    """Unfinished progress bars in the notebook exported to HTML (jupyter nbconvert --to html)."""
    from nbconvert import HTMLExporter

    page, _ = HTMLExporter().from_filename(str(path))
    states = re.findall(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', page, re.S)
    widget_bars = [b for s in states for b in _widget_bars(json.loads(s).get("state", {}))]
    text = html.unescape(re.sub(r"<[^>]+>", "", page)).replace("\u2007", " ")
    return [f"{path.stem}: exported HTML shows an unfinished progress bar {bar[:80]!r}"
            for bar in _unfinished_bars(text) + [b for b in widget_bars if _unfinished_bars(b) or "(bar at" in b]]


# Numbers a markdown cell may state without an output showing them: constants of the methods,
# not measurements. Keep this list short; a measured number belongs in an output.
ALLOWED_PROSE_NUMBERS = {
    (0.02, ""),    # GPT-2's initialisation std; DDPM's beta_end
    (1e-4, ""),    # DDPM's beta_start
    (0.008, ""),   # the cosine schedule's offset s (Nichol & Dhariwal)
    (1e-3, ""),    # word2vec's subsampling threshold t (gensim's default `sample`)
    (0.5, ""),     # one half: a fair coin, sigma(0)
    (0.75, ""),    # Kneser-Ney's usual discount
    (0.9, ""), (0.95, ""), (0.999, ""),  # Adam's betas, top-p values, a clip
    (0.15, ""), (15, "%"), (80, "%"), (10, "%"),  # BERT's masking: 15 % picked, 80/10/10
    (95, "%"), (2.5, ""), (97.5, ""), (0.05, ""),  # 95 % intervals, their percentiles, the usual significance level
    (1e-5, ""), (1e-6, ""), (1e-8, ""),  # the epsilons of layer norm and Adam
}
_PROSE_NUMBER = re.compile(
    r"(?<![\w.\-/])(?P<num>\d+(?:\.\d+)?(?:[eE]-?\d+)?)"
    r"(?:\s?(?P<unit>%|s|min|nats|bits)\b|\s?(?P<pct>%))?(?![\w.]*\d)")
_OUTPUT_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _prose_text(markdown: str) -> str:
    """Markdown without the parts that are not prose: code, links' targets, HTML tags, headings' anchors."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"https?://\S+", " ", text)
    return re.sub(r"<[^>]+>", " ", text)


def _prose_matches(markdown: str) -> list[tuple[str, str]]:
    """(number with its unit, the words around it) for each number a markdown text states."""
    text, found = " ".join(_prose_text(markdown).split()), []
    for m in _PROSE_NUMBER.finditer(text):
        num, unit = m["num"], m["unit"] or m["pct"]
        if not ("." in num or "e" in num.lower() or unit):
            continue
        if unit == "s" and re.fullmatch(r"1[89]\d0|20[0-9]0", num):
            continue  # a decade ("the 1990s")
        if (float(num), unit or "") in ALLOWED_PROSE_NUMBERS:
            continue
        found.append((num + (f" {unit}" if unit else ""), text[max(0, m.start() - 50):m.end() + 30]))
    return found


def prose_numbers(markdown: str) -> list[str]:
    """Decimal numbers and numbers with a unit (%, s, min, nats, bits) a markdown text states."""
    return [item for item, _ in _prose_matches(markdown)]


def _output_text(nb: dict) -> str:
    parts = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            parts.append(_joined(out.get("text", "")))
            parts += [_joined(v) for k, v in out.get("data", {}).items()
                      if k.startswith("text/") or k == "application/json"]
    return "\n".join(parts)


def _supported(num: str, unit: str, values: set[float]) -> bool:
    """An output number rounds to the prose number at the prose's precision (a % may be a fraction)."""
    decimals = len(num.split(".")[1]) if "." in num and "e" not in num.lower() else None
    target = float(num)
    for v in values:
        candidates = (v, v * 100) if unit == "%" else (v,)
        for c in candidates:
            if (round(c, decimals) == target) if decimals is not None else (round(c) == target or c == target):
                return True
    return False


def prose_number_problems(nb: dict, name: str) -> list[str]:
    """Numbers in markdown cells that no output of the notebook shows (they drift from the run)."""
    values = {v for v in map(float, _OUTPUT_NUMBER.findall(_output_text(nb))) if math.isfinite(v)}
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        for item, context in _prose_matches(_joined(cell.get("source", ""))):
            num, _, unit = item.partition(" ")
            if not _supported(num, unit, values):
                problems.append(f"{name}: markdown cell {i} states {item!r}, which no output shows "
                                f"(generate the sentence with Markdown(f'...') or print the number above it): "
                                f"...{context}...")
    return problems


def check_notebook(path: Path, runtimes: dict | None = None, html: bool = True,
                   recorded: dict | None = None) -> dict[str, list[str]]:
    """Every check of one stored notebook, by kind: health, runtime table, figures, prose, bars, widgets (fallbacks,
    stored state), key results.

    runtimes, recorded: the contents of runtimes.json and key_results.json (default: read them).
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    runtimes = load_runtimes() if runtimes is None else runtimes
    recorded = load_key_results() if recorded is None else recorded
    name = path.stem
    found = {
        "health": notebook_problems(nb, path.name),
        "runtime table": runtime_table_problems(nb, name, runtimes),
        "duplicate figures": duplicate_figure_problems(nb, name),
        "prose numbers": prose_number_problems(nb, name),
        "progress bars": progress_bar_problems(nb, name) + (html_progress_bar_problems(path) if html else []),
        "widget fallbacks": widget_fallback_problems(nb, name),
        "widget state": widget_state_problems(nb, name),
        "key results": key_result_problems(nb, name) + recorded_key_result_problems(nb, name, recorded),
    }
    return found
