import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from lmcourse.train import train
from tests.ddp_reference import make_dataset, make_model, mse
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(free_port()), str(ROOT / "tests" / "ddp_worker.py"), str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "LMCOURSE_DEVICE": "cpu",
           "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def test_both_ranks_hold_identical_weights_after_training(ddp_run):
    a, b = (r["state"] for r in ddp_run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_processes_match_one_process_with_the_same_global_batch(ddp_run):
    torch.manual_seed(0)
    model = make_model()
    history = train(model, DataLoader(make_dataset(), batch_size=8), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                    steps=6, loss_fn=mse, progress=False)
    assert ddp_run[0]["loss"] == pytest.approx(history.loss, rel=1e-5)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(ddp_run[0]["state"][key], value, rtol=1e-5, atol=1e-6)


def test_setup_outside_torchrun_says_how_to_launch(monkeypatch):
    from lmcourse import distributed

    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        distributed.setup()
