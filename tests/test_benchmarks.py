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
