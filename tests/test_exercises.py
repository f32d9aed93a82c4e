import torch

from lmcourse.exercises import check


def test_right_answer_prints_a_tick(capsys):
    assert check(0.5, 0.5, hint="h")
    assert "✓" in capsys.readouterr().out


def test_close_tensors_count_as_right():
    assert check(torch.tensor([1.0, 2.0]) + 1e-9, torch.tensor([1.0, 2.0]), hint="h")


def test_wrong_answer_prints_the_hint(capsys):
    assert not check(3, 4, hint="add one")
    assert "✗" in (out := capsys.readouterr().out) and "add one" in out


def test_stub_raising_not_implemented_is_not_answered_yet(capsys):
    def stub():
        raise NotImplementedError

    assert not check(stub, 1, hint="h")
    assert "not answered yet" in capsys.readouterr().out


def test_crashing_answer_is_reported_not_raised(capsys):
    assert not check(lambda: 1 / 0, 1, hint="h")
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_wrong_shape_is_wrong():
    assert not check(torch.zeros(2), torch.zeros(3), hint="h")
