"""Every benchmark runs in its fast (smoke) mode and returns well-formed rows; no timing is asserted."""

import importlib.util
from pathlib import Path

import pytest

BENCHES = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("bench_*.py"))
KEYS = {"benchmark", "ours", "reference", "ratio", "note"}


@pytest.mark.parametrize("path", BENCHES, ids=lambda p: p.stem)
def test_benchmark_runs_and_returns_rows_for_the_results_table(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.run(fast=True)
    assert rows, f"{path.name} returned no rows"
    for row in rows:
        assert KEYS <= set(row), f"{path.name}: a row lacks {KEYS - set(row)}"
        assert all(str(row[key]).strip() for key in ("benchmark", "ours", "reference", "ratio"))


def test_there_is_a_benchmark_for_every_reference_the_results_table_promises():
    names = {p.stem for p in BENCHES}
    assert {"bench_ngram", "bench_word2vec", "bench_attention", "bench_kv_cache", "bench_lstm",
            "bench_quantization", "bench_gpt_training"} <= names


def test_rerunning_one_bench_replaces_only_its_rows_and_says_when(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_run", BENCHES[0].parent / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    header = ["# Benchmark results", "", "Machine: x", "", "| benchmark | ours | reference | ratio | note | source |",
              "|---|---|---|---|---|---|"]
    (tmp_path / "RESULTS.md").write_text("\n".join(header + [
        "| a | 1 | 2 | 2 | n | bench_a.py |", "| b old | 1 | 2 | 2 | n | bench_b.py |",
        "| b old 2 | 1 | 2 | 2 | n | bench_b.py |", "| c | 1 | 2 | 2 | n | bench_c.py |"]) + "\n")
    monkeypatch.setattr(run, "HERE", tmp_path)
    for _ in range(2):  # a second refresh replaces the first's note instead of adding another
        run.refresh_rows([{"benchmark": "b new", "ours": 3, "reference": 4, "ratio": 1.3, "note": "x|y",
                           "source": "bench_b.py"}], ["bench_b.py"])
    lines = (tmp_path / "RESULTS.md").read_text().splitlines()
    rows = [line.split(" | ")[0] for line in lines if line.startswith("| ") and not line.startswith("| benchmark")]
    assert rows == ["| a", "| b new", "| c"]
    assert "| b new | 3 | 4 | 1.3 | x\\|y | bench_b.py |" in lines
    notes = [line for line in lines if line.startswith("Rows of bench_b.py refreshed on ")]
    assert len(notes) == 1 and lines.index(notes[0]) < lines.index(header[4])
