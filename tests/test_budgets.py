"""lmcourse.budget: one table of steps and sizes per chapter, mode and device kind."""

import pytest
import torch

import lmcourse
from lmcourse.budgets import BUDGETS, LONGER_ON_GPU, budget, device_kind


def test_the_three_columns():
    fast, cpu, gpu = (budget("06", d, fast=f) for d, f in (("cpu", True), ("cpu", False), ("cuda", False)))
    assert (fast.mode, cpu.mode, gpu.mode) == ("fast", "full", "full")
    assert (cpu.device_kind, gpu.device_kind) == ("cpu", "gpu")
    assert fast.steps < cpu.steps < gpu.steps == LONGER_ON_GPU * cpu.steps
    assert gpu.eval_chars == cpu.eval_chars          # scored on the same text on every device


def test_two_values_mean_the_same_on_both_devices():
    assert budget("09", "cuda", fast=False).budget_s == budget("09", "cpu", fast=False).budget_s == 50
    assert budget("09", "mps", fast=False).device_kind == "gpu"


def test_every_entry_is_fast_then_full():
    for chapter, entries in BUDGETS.items():
        for name, entry in entries.items():
            assert isinstance(entry, tuple) and len(entry) in (2, 3), (chapter, name)
            b = budget(chapter, "cpu", fast=False)
            assert getattr(b, name) == entry[1]


def test_mode_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LMCOURSE_FAST", "1")
    assert budget(3, "cpu").mode == "fast" and lmcourse.budget("03_rnn_lstm", "cpu").lm_steps == 60
    monkeypatch.setenv("LMCOURSE_FAST", "0")
    assert budget("03", torch.device("cpu")).lm_steps == 4000


def test_repr_names_chapter_mode_device_and_values():
    text = repr(budget("08", "cpu", fast=False))
    assert "chapter 08" in text and "full mode on a CPU" in text and "steps=60" in text


@pytest.mark.parametrize("chapter", ["6", "10", 10, "gpt", None, True, 6.0])
def test_bad_chapter(chapter):
    with pytest.raises(ValueError, match="chapter"):
        budget(chapter, "cpu", fast=False)


def test_bad_device_and_fast():
    with pytest.raises(ValueError, match="device"):
        device_kind("tpu:0:x")
    with pytest.raises(ValueError, match="fast"):
        budget("06", "cpu", fast="yes")


def test_unknown_quantity_lists_the_known_ones():
    with pytest.raises(AttributeError, match="char_steps"):
        budget("06", "cpu", fast=False).stepz


def test_the_runner_stores_a_run_under_the_budgets_device_kind(monkeypatch):
    from lmcourse.course import runner
    monkeypatch.setenv("LMCOURSE_DEVICE", "cpu")   # a CPU run, even on a machine with a GPU
    assert runner._device_mode("full") == "full" and runner._device_mode("fast") == "fast"
