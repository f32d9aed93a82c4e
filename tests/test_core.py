import random

import numpy as np
import pytest
import torch

import lmcourse
from lmcourse import core


def test_get_device_defaults_to_best_available(monkeypatch):
    monkeypatch.delenv("LMCOURSE_DEVICE", raising=False)
    assert str(lmcourse.get_device()) == lmcourse.available_devices()[0].removesuffix(":0")


def test_cpu_is_always_available_and_listed_last():
    assert lmcourse.available_devices()[-1] == "cpu"
    assert lmcourse.get_device("cpu") == torch.device("cpu")


def test_env_variable_overrides_device(monkeypatch):
    monkeypatch.setenv("LMCOURSE_DEVICE", "cpu")
    assert lmcourse.get_device() == torch.device("cpu")


def test_prefer_argument_beats_env_variable(monkeypatch):
    monkeypatch.setenv("LMCOURSE_DEVICE", "no-such-device")
    assert lmcourse.get_device("cpu") == torch.device("cpu")


def test_missing_device_error_names_it_and_what_is_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"'cuda'.*available: \['cpu'\]"):
        lmcourse.get_device("cuda")


def test_unavailable_device_from_env_names_the_variable(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setenv("LMCOURSE_DEVICE", "mps")
    with pytest.raises(ValueError, match="LMCOURSE_DEVICE"):
        lmcourse.get_device()


def test_nonsense_device_name_is_a_value_error():
    with pytest.raises(ValueError, match="not a device name"):
        lmcourse.get_device("gpu-please")


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("ON", True), ("0", False), ("", False), ("no", False)])
def test_fast_mode_reads_the_env_variable(monkeypatch, value, expected):
    monkeypatch.setenv("LMCOURSE_FAST", value)
    assert lmcourse.fast_mode() is expected


def test_fast_mode_is_off_when_unset(monkeypatch):
    monkeypatch.delenv("LMCOURSE_FAST", raising=False)
    assert lmcourse.fast_mode() is False


def test_fast_mode_rejects_unclear_values(monkeypatch):
    monkeypatch.setenv("LMCOURSE_FAST", "maybe")
    with pytest.raises(ValueError, match="LMCOURSE_FAST"):
        lmcourse.fast_mode()


def test_seed_everything_repeats_python_numpy_and_torch():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    lmcourse.seed_everything(7)
    first = draw()
    lmcourse.seed_everything(7)
    assert draw() == first


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        lmcourse.seed_everything(seed)


def test_unknown_submodule_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_module"):
        lmcourse.no_such_module  # noqa: B018


def test_an_old_torch_is_refused_with_the_fix():
    from lmcourse.core import check_torch_version

    with pytest.raises(ImportError, match=r"torch >= 2.4, found 2.1.0.*pip install"):
        check_torch_version("2.1.0")
    check_torch_version("2.13.0+cpu")


def test_the_course_kernel_is_registered_for_this_environment():
    """`make install` registers it; JupyterLab and the browser test open notebooks with it."""
    import sys
    from pathlib import Path

    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    assert "lmcourse" in specs, "run `make install` to register the course kernel"
    spec = KernelSpecManager().get_kernel_spec("lmcourse")
    assert Path(spec.argv[0]).absolute() == Path(sys.executable).absolute()


def test_peak_flops_is_known_only_for_listed_gpus(monkeypatch):
    assert core.peak_flops("cpu") is None
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert core.peak_flops("cuda") == 989e12
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some Future GPU")
    assert core.peak_flops("cuda") is None


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, "4"])
def test_check_positive_ints_names_the_argument(bad):
    core.check_positive_ints(n_layer=2, block_size=1)
    with pytest.raises(ValueError, match="n_head must be an int >= 1"):
        core.check_positive_ints(n_layer=2, n_head=bad)
