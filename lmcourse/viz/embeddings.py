"""Word-vector figures and the nearest-neighbour / analogy explorer.

The logic is in plain functions (`pca_2d`, `parse_query`, `answer_query`); `plot_word_groups` draws,
and `explore_embeddings` only wires `answer_query` to core ipywidgets.
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np

from lmcourse.embeddings import analogy, nearest_neighbours, nearest_to_sum

__all__ = ["pca_2d", "plot_word_groups", "parse_query", "answer_query", "explore_embeddings"]



def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Project (n, dim) vectors on their first two principal components -> (n, 2) (sign fixed: largest |x| positive)."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"vectors must have shape (n >= 2, dim), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("vectors hold NaN or infinite values; the training that made them diverged")
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)  # vt: (min(n, dim), dim)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(1)])
    out = x @ (comps * signs[:, None]).T  # (n, 2)
    return out if out.shape[1] == 2 else np.pad(out, ((0, 0), (0, 2 - out.shape[1])))


def plot_word_groups(kv, groups: dict[str, list[str]], title: str = "Word vectors, first two principal components"):
    """Scatter the words of each group (a colour per group) in the PCA plane of all of them; returns the Figure."""
    if hasattr(kv, "wv"):
        kv = kv.wv
    words, labels, missing = [], [], []
    for name, members in groups.items():
        for w in members:
            (words if w in kv.key_to_index else missing).append(w)
            if w in kv.key_to_index:
                labels.append(name)
    if len(words) < 2:
        raise ValueError(f"groups must hold at least 2 words with vectors; missing: {missing}")
    xy = pca_2d(np.stack([kv[w] for w in words]))
    fig, ax = plt.subplots(figsize=(7, 5))
    colours = plt.get_cmap("tab10")
    for k, name in enumerate(groups):
        idx = [i for i, lab in enumerate(labels) if lab == name]
        ax.scatter(xy[idx, 0], xy[idx, 1], color=colours(k % 10), label=name)
        for i in idx:
            ax.annotate(words[i], xy[i], fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("principal component 1 (cosine-space units)")
    ax.set_ylabel("principal component 2")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def parse_query(query: str) -> list[tuple[int, str]]:
    """'king - man + woman' -> [(+1, 'king'), (-1, 'man'), (+1, 'woman')]; one word -> [(+1, word)]."""
    text = query.strip().lower()
    if not text:
        raise ValueError("query is empty; type a word ('paris') or an analogy ('king - man + woman')")
    terms, pos = [], 0
    for m in re.finditer(r"([+-]?)\s*([^\s+\-]+(?:-[^\s+\-]+)*)", text):
        if text[pos:m.start()].strip():
            raise ValueError(f"query={query!r} could not be read; use words joined by ' + ' and ' - '")
        sign = -1 if m.group(1) == "-" else 1
        if terms and not m.group(1):
            raise ValueError(f"query={query!r}: put + or - between words, e.g. 'king - man + woman'")
        terms.append((sign, m.group(2)))
        pos = m.end()
    return terms


def answer_query(kv, query: str, topn: int = 8) -> list[tuple[str, float]]:
    """Nearest neighbours of one word, or 3CosAdd for 'b - a + c' (any order of terms: a is the '-' word).

    Other +/- combinations rank the words nearest to the signed sum of unit vectors. Words not in the
    vectors raise ValueError naming them.
    """
    if hasattr(kv, "wv"):
        kv = kv.wv
    terms = parse_query(query)
    if len(terms) == 1 and terms[0][0] == 1:
        return nearest_neighbours(kv, terms[0][1], topn=topn)
    plus = [w for s, w in terms if s > 0]
    minus = [w for s, w in terms if s < 0]
    if len(plus) == 2 and len(minus) == 1:
        return analogy(kv, minus[0], plus[0], plus[1], topn=topn)
    return nearest_to_sum(kv, terms, topn=topn)


def explore_embeddings(kv, topn: int = 8, initial: str = "king - man + woman"):
    """An ipywidgets box: type a word or an analogy, see the nearest words and their cosine similarity."""
    import ipywidgets as widgets  # core widgets only: no CDN JavaScript

    box = widgets.Text(value=initial, description="query", continuous_update=False)
    out = widgets.Output()

    def redraw(_=None) -> None:
        out.clear_output()
        with out:
            try:
                rows = answer_query(kv, box.value, topn=topn)
                print("\n".join(f"{w:>16}  {s:.3f}" for w, s in rows))
            except ValueError as exc:
                print(exc)

    box.observe(redraw, names="value")
    redraw()
    return widgets.VBox([box, out])
