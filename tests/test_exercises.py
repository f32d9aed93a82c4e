"""The exercise checkers can tell right from wrong: every stored solution passes, every stub reads
"not answered yet", every plausible wrong answer is rejected; hints escalate; a handout runs."""

import math

import nbformat
import pytest

from lmcourse import classroom, exercises
from lmcourse.exercises.grading import REGISTRY
from tests.exercise_cells import CHAPTERS, define

ALL = [cells for chapter in CHAPTERS.values() for cells in chapter]
WRONG = [(cells, what) for cells in ALL for what in cells.wrong]



@pytest.fixture(autouse=True)
def fresh_progress():
    exercises.reset()
    yield
    exercises.reset()


def test_every_chapter_has_at_least_three_exercises_and_setup_one():
    per_chapter = {f"{n:02d}": sum(e.chapter == f"{n:02d}" for e in REGISTRY.values()) for n in range(10)}
    assert per_chapter["00"] >= 1 and all(per_chapter[f"{n:02d}"] >= 3 for n in range(1, 10)), per_chapter


def test_every_registered_exercise_has_cells_with_wrong_answers():
    assert {c.id for c in ALL} == set(REGISTRY)
    assert all(c.wrong for c in ALL), [c.id for c in ALL if not c.wrong]


@pytest.mark.parametrize("cells", ALL, ids=lambda c: c.id)
def test_stored_solution_is_right(cells, capsys):
    answer, context = define(cells.solution, cells)
    assert exercises.check(cells.id, answer, **context), capsys.readouterr().out
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("cells", ALL, ids=lambda c: c.id)
def test_stub_reads_not_answered_yet_without_a_hint(cells, capsys):
    answer, context = define(cells.stub, cells)
    assert not exercises.check(cells.id, answer, **context)
    out = capsys.readouterr().out
    assert "not answered yet" in out and "Hint" not in out


@pytest.mark.parametrize("cells, what", WRONG, ids=lambda x: x if isinstance(x, str) else x.id)
def test_plausible_wrong_answer_is_rejected_saying_which_case(cells, what, capsys):
    answer, context = define(cells.wrong[what], cells)
    assert not exercises.check(cells.id, answer, **context), f"{cells.id} accepted: {what}"
    out = capsys.readouterr().out
    assert "✗" in out and "case '" in out and "Hint 1/" in out


def test_hints_escalate_with_each_wrong_answer(capsys):
    hints = REGISTRY["04.masked_softmax"].hints

    def wrong(scores, mask):
        return scores.softmax(-1)

    exercises.check("04.masked_softmax", wrong)
    first = capsys.readouterr().out
    exercises.check("04.masked_softmax", wrong)
    second = capsys.readouterr().out
    assert hints[0] in first and hints[1] not in first
    assert hints[0] in second and hints[1] in second and hints[2] not in second


def test_hints_true_shows_every_hint(capsys):
    def stub(scores, mask):
        raise NotImplementedError

    exercises.check("04.masked_softmax", stub, hints=True)
    out = capsys.readouterr().out
    assert "not answered yet" in out and all(h in out for h in REGISTRY["04.masked_softmax"].hints)


def test_failure_never_prints_the_expected_value(capsys):
    assert not exercises.check("00.uniform_cross_entropy", lambda V: math.log2(V))
    out = capsys.readouterr().out
    assert "0.693" not in out and "3.29" not in out and "case 'V = 2'" in out


def test_crashing_answer_is_reported_not_raised(capsys):
    assert not exercises.check("01.held_out_perplexity", lambda bigram, unigram, dev, test, lambdas: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_returning_none_reads_not_answered_yet_and_asks_about_return(capsys):
    assert not exercises.check("01.held_out_perplexity", lambda bigram, unigram, dev, test, lambdas: None)
    out = capsys.readouterr().out
    assert "not answered yet" in out and "returned None: does it end with `return`?" in out

    def stub(bigram, unigram, dev, test, lambdas):
        raise NotImplementedError

    assert not exercises.check("01.held_out_perplexity", stub)
    assert "returned None" not in capsys.readouterr().out  # the stub itself reads as before


def test_progress_lists_the_chapter_and_what_is_done(capsys):
    right, _ = define(next(c for c in ALL if c.id == "06.top_p_filter").solution, next(c for c in ALL if c.id == "06.top_p_filter"))
    exercises.check("06.top_p_filter", right)
    exercises.check("06.kv_cache_step", lambda q, k, v, k_cache, v_cache: (q, k_cache, v_cache))
    status = exercises.progress("06")
    assert list(status) == [c.id for c in CHAPTERS["06"]]
    assert status == {"06.top_p_filter": "done", "06.beam_search_step": "not tried",
                      "06.kv_cache_step": "not yet right"}
    assert "1 of 3 done" in repr(status) and exercises.progress(6) == status


def test_unknown_exercise_id_names_the_chapter_s_ids():
    with pytest.raises(ValueError, match="04.masked_softmax"):
        exercises.check("04.masked_sofmax", lambda s, m: s)


def spec_notebook(chapters) -> nbformat.NotebookNode:
    """A notebook of the exercise cells of `chapters`, as chapter owners insert them."""
    cells = []
    for chapter in chapters:
        for ex in CHAPTERS[chapter]:
            for spec in ex.notebook_cells():
                make = nbformat.v4.new_markdown_cell if spec["cell_type"] == "markdown" else nbformat.v4.new_code_cell
                cells.append(make(spec["source"], metadata=spec["metadata"], id=spec["id"]))
    cells.append(nbformat.v4.new_code_cell('import lmcourse\n\nlmcourse.exercises.progress("04")'))
    return nbformat.v4.new_notebook(cells=cells)


def test_spec_cells_are_recognised_by_the_handout_builder():
    nb = spec_notebook(sorted(CHAPTERS))
    sheet = classroom.handout(nb)
    assert sum(classroom.is_solution(c) for c in nb.cells) == len(ALL)
    assert not any(classroom.is_solution(c) for c in sheet.cells)
    code = [c for c in sheet.cells if c.cell_type == "code"]
    assert code and all(classroom.is_exercise(c) for c in code)  # stubs, checks and the progress cell


def test_handout_runs_top_to_bottom_with_every_stub_unfilled():
    from nbclient import NotebookClient

    chapters = ["00", "04", "09"]  # every stub is also run in-process above; here a real kernel, kept short
    sheet = classroom.handout(spec_notebook(chapters))
    NotebookClient(sheet, timeout=120, kernel_name="python3").execute()  # raises on an error cell
    outputs = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                      for c in sheet.cells if c.cell_type == "code" for o in c.outputs)
    assert outputs.count("not answered yet") == sum(len(CHAPTERS[c]) for c in chapters)
    assert "✗" not in outputs and "✓" not in outputs and "0 of 3 done" in outputs


def chapter_notebook(chapter: str) -> nbformat.NotebookNode:
    from lmcourse.course import notebook_paths

    path = next(p for p in notebook_paths() if p.name.startswith(chapter + "_"))
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_notebook_carries_its_exercise_cells_unchanged(chapter):
    """Stub and check cells are the learner's contract: the notebook has them exactly as specified."""
    by_id = {c.get("id"): c for c in chapter_notebook(chapter).cells}
    for ex in CHAPTERS[chapter]:
        _, stub, check, solution = ex.notebook_cells()
        stub_cell, check_cell = by_id.get(stub["id"]), by_id.get(check["id"])
        missing = "is missing or edited; insert it from tests/exercise_cells.py"
        assert stub_cell is not None and stub_cell.source == stub["source"], f"{stub['id']} {missing}"
        # a check cell may add context arguments, e.g. check("09.project", fn, eval_chars=EVAL_CHARS)
        assert check_cell is not None and check_cell.source.startswith(check["source"].rstrip(");")), \
            f"{check['id']} {missing}"
        assert solution["id"] in by_id and classroom.is_solution(by_id[solution["id"]]), f"{solution['id']} missing"


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_stored_outputs_show_stubs_unanswered_and_solutions_right(chapter):
    by_id = {c.get("id"): c for c in chapter_notebook(chapter).cells}
    for ex in CHAPTERS[chapter]:
        _, _, check, solution = ex.notebook_cells()
        shown = {part: "".join(o.get("text", "") for o in by_id[spec["id"]].get("outputs", []))
                 for part, spec in (("check", check), ("solution", solution)) if spec["id"] in by_id}
        assert "not answered yet" in shown.get("check", ""), f"{ex.id}: re-run the notebook (check cell output)"
        assert f"✓ {ex.id}: right" in shown.get("solution", ""), f"{ex.id}: re-run the notebook (solution output)"


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_stored_progress_is_a_fresh_learners(chapter):
    """The course's own solution cells never count: a stored progress summary reads "0 of N done" (a run made
    while solution_hashes.json was stale, or with a learner's progress file, shows exercises done)."""
    summaries = [text for cell in chapter_notebook(chapter).cells if cell.cell_type == "code"
                 for out in cell.get("outputs", []) for text in [str(out.get("data", {}).get("text/plain", ""))]
                 if " done" in text and " of " in text]
    n = len(CHAPTERS[chapter])
    for text in summaries:
        assert f"0 of {n} done" in text and "(done)" not in text, \
            f"{chapter}: stored progress shows work done: {text[:120]!r}; run python -m tests.solution_hashes, re-run"


def test_passing_a_value_instead_of_the_function_says_so(capsys):
    assert not exercises.check("01.held_out_perplexity", 6.0)
    assert "pass your function itself" in capsys.readouterr().out


def test_exercise_id_must_be_a_string():
    with pytest.raises(ValueError, match="exercise_id"):
        exercises.check(lambda: 1, 1.0)


def test_project_bar_is_the_tuned_ngram_the_package_fits_today():
    """09.project's stored numbers are what section 7's tuned n-gram and char LSTM (zoo) score now on the first
    BAR_CHARS characters."""
    from lmcourse.exercises import ch09

    tuned = -ch09.ngram_log_probs(ch09.BAR_CHARS)["tuned"].mean()
    assert round(float(tuned), 4) == ch09.TUNED_NATS, f"update ch09.TUNED_NATS to {tuned:.4f}"
    bar = -ch09.bar_log_probs(ch09.BAR_CHARS).mean()
    assert round(float(bar), 4) == ch09.BAR_NATS, f"update ch09.BAR_NATS to {bar:.4f}"


def _project_scores(n=20_000, seed=0):
    """Synthetic ln p (n,) of a unigram, a tuned n-gram and a bar 0.03 nats/char ahead of it, with the per-character
    noise and passages of varying difficulty a real text gives (for 09.project's verdict, without any model)."""
    import numpy as np

    g = np.random.default_rng(seed)
    difficulty = np.repeat(g.gamma(2.0, 0.7, size=n // 500), 500) + g.gamma(1.5, 0.5, size=n)
    tuned = -(difficulty + 0.05 * g.standard_normal(n) ** 2)
    return {"unigram": tuned - 1.0, "tuned": tuned, "bar": tuned + 0.03 + 0.02 * g.standard_normal(n)}, g


@pytest.mark.parametrize("what, shift", [
    ("section 7's mixtures: ahead of the tuned n-gram by 0.01, behind the bar", -0.01),
    ("level with the bar", None),
    ("ahead of the tuned n-gram by the bar's margin, no more", -0.03),
])
def test_project_verdict_rejects_what_section_7_already_shows(what, shift):
    from lmcourse.exercises import ch09
    from lmcourse.exercises.grading import Wrong

    scores, g = _project_scores()
    got = (scores["bar"].copy() if shift is None                                      # the bar itself, handed in
           else scores["tuned"] - shift + 0.01 * g.standard_normal(len(scores["tuned"])))   # ln p: higher is better
    with pytest.raises(Wrong, match="valid but (behind|not separable from) the bar"):
        ch09._verdict("synthetic", got, scores)


def test_project_verdict_accepts_a_model_ahead_of_the_bar_by_its_interval():
    from lmcourse.exercises import ch09
    from lmcourse.exercises.grading import Wrong

    scores, g = _project_scores()
    ahead = scores["bar"] + 0.02 + 0.01 * g.standard_normal(len(scores["bar"]))   # 0.02 nats/char ahead of the bar
    assert "Verdict: ahead of the bar" in ch09._verdict("synthetic", ahead, scores)
    # ahead on average, but by so little against so much noise that the interval holds 0: not passed
    noisy = scores["bar"] + 0.001 + 0.8 * g.standard_normal(len(scores["bar"]))
    with pytest.raises(Wrong, match="not separable from the bar"):
        ch09._verdict("synthetic", noisy, scores)
    with pytest.raises(Wrong, match="not better than the unigram"):
        ch09._verdict("synthetic", scores["unigram"] - 0.1, scores)
