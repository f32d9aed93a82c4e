import json
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


def test_setup_takes_the_device_that_get_device_chooses(monkeypatch):
    from lmcourse import distributed

    for variable, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                            "MASTER_PORT": str(free_port()), "LMCOURSE_DEVICE": "cpu"}.items():
        monkeypatch.setenv(variable, value)
    try:
        rank, world, device = distributed.setup()
        assert (rank, world, device) == (0, 1, torch.device("cpu"))
        assert torch.distributed.get_backend() == "gloo"
    finally:
        distributed.teardown()


def test_setup_refuses_a_device_that_is_not_here(monkeypatch):
    from lmcourse import distributed

    for variable, value in {"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1",
                            "LMCOURSE_DEVICE": f"cuda:{torch.cuda.device_count() + 7}"}.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match="LMCOURSE_DEVICE"):
        distributed.setup()


def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_sharded_batches_reshuffle_each_epoch_and_cover_every_example_once():
    from torch.utils.data import TensorDataset

    from lmcourse import distributed

    dataset = TensorDataset(torch.arange(20))
    ranks = [distributed.sharded_batches(dataset, global_batch_size=4, seed=0, rank=r, world_size=2) for r in range(2)]
    epochs = []
    for _ in range(2):  # 20 examples / global batch 4 = 5 steps per epoch
        seen = [torch.cat([b[0] for b in _take(it, 5)]) for it in ranks]
        epochs.append(seen)
        assert sorted(torch.cat(seen).tolist()) == list(range(20))   # every example once across the ranks
    assert not all(torch.equal(a, b) for a, b in zip(epochs[0], epochs[1]))   # a new order in epoch 2


@pytest.mark.parametrize("n_examples, global_batch_size, world_size", [(3, 4, 1), (7, 8, 2), (0, 2, 2)])
def test_sharded_batches_refuse_a_dataset_smaller_than_one_global_batch(n_examples, global_batch_size, world_size):
    from torch.utils.data import TensorDataset

    from lmcourse import distributed

    dataset = TensorDataset(torch.arange(n_examples))
    # by hand: each rank's shard of n // world examples holds no full batch of global // world
    assert (n_examples // world_size) // (global_batch_size // world_size) == 0
    batches = distributed.sharded_batches(dataset, global_batch_size, rank=0, world_size=world_size)
    with pytest.raises(ValueError, match=rf"global_batch_size={global_batch_size} .* {n_examples} examples"):
        next(batches)


def test_ring_allreduce_bytes_matches_the_closed_form():
    from lmcourse.distributed import ring_allreduce_bytes

    assert ring_allreduce_bytes(1000, 1) == 0
    assert ring_allreduce_bytes(1000, 2) == 4000
    assert ring_allreduce_bytes(124_000_000, 8, bytes_per_param=2) == pytest.approx(2 * 7 / 8 * 248e6)
    with pytest.raises(ValueError, match="world_size"):
        ring_allreduce_bytes(1000, 0)


def test_parameters_sha256_sees_a_change_a_sum_would_miss():
    from lmcourse.distributed import parameters_sha256

    model = make_model()
    before = parameters_sha256(model)
    with torch.no_grad():
        weight = next(model.parameters()).view(-1)
        weight[0], weight[1] = weight[1].item(), weight[0].item()   # same sum, different weights
    assert parameters_sha256(model) != before


def run_scale_out(world: int, *arguments: str) -> None:
    """Run `python -m lmcourse.scale_out arguments` on `world` CPU processes of one thread each, on a small corpus,
    with a global batch of 8 sequences."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(world), "--master-addr",
               "127.0.0.1", "--master-port", str(free_port()), "-m", "lmcourse.scale_out", "--max-chars", "20000",
               "--global-batch", "8", *arguments]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "LMCOURSE_DEVICE": "cpu",
           "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


def read_ranks(folder: Path, stem: str, world: int = 2) -> list[dict]:
    return [json.loads((folder / f"{stem}{r}.json").read_text()) for r in range(world)]


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    """One launch of 2 processes that runs scale_out's three checks."""
    out = tmp_path_factory.mktemp("checks")
    run_scale_out(2, "--allreduce-check", "--no-sync-check", "--time-allreduce", "5", "--out", str(out))
    return out


def test_gradients_all_reduced_by_hand_equal_ddp(checks):
    assert max(r["max_abs_difference"] for r in read_ranks(checks, "allreduce")) < 1e-6


def test_no_sync_all_reduces_once_only_when_it_covers_the_forward_too(checks):
    from lmcourse.scale_out import NO_SYNC_MICRO_BATCHES

    for found in read_ranks(checks, "no_sync"):   # the course GPT's gradients fill one bucket
        assert found["allreduces"] == {"without no_sync": NO_SYNC_MICRO_BATCHES,
                                       "no_sync around the forward and backward": 1,
                                       "no_sync around the backward only": NO_SYNC_MICRO_BATCHES}
        assert max(found["relative_gap"].values()) < 1e-5   # each the gradient of the whole global batch


def test_time_allreduce_times_each_repetition(checks):
    for found in read_ranks(checks, "allreduce_seconds"):
        assert len(found["seconds"]) == 5 and all(0 < s < 10 for s in found["seconds"])


@pytest.fixture(scope="module")
def control_runs(tmp_path_factory):
    """The same 3 steps on 2 DDP processes, and on 1 process accumulating the 2 ranks' shards (1 thread each, as
    the thread count changes the rounding)."""
    out = tmp_path_factory.mktemp("control")
    for world, accumulate in ((2, 1), (1, 2)):
        run_scale_out(world, "--steps", "3", "--accumulate", str(accumulate), "--out", str(out / f"world{world}"))
    return {world: {"result": json.loads((out / f"world{world}" / "result.json").read_text()),
                    "sha256": read_ranks(out / f"world{world}", "rank", world)[0]["weights_sha256"]}
            for world in (1, 2)}


def test_one_process_accumulating_the_ranks_shards_takes_ddps_steps_bit_for_bit(control_runs):
    # halving a gradient is exact, and a sum of 2 terms does not depend on their order
    assert control_runs[1]["result"]["accumulate"] == 2
    assert control_runs[1]["result"]["loss"] == control_runs[2]["result"]["loss"]
    assert control_runs[1]["sha256"] == control_runs[2]["sha256"]


def test_backward_micro_batches_leaves_the_whole_batch_gradient():
    from lmcourse.distributed import backward_micro_batches

    x, y = make_dataset().tensors
    torch.manual_seed(0)
    model = make_model()
    mse(model, (x, y)).backward()
    want = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    loss = backward_micro_batches(model, list(zip(x.chunk(4), y.chunk(4))), mse)
    assert loss == pytest.approx(mse(model, (x, y)).item(), rel=1e-6)
    for got, expected in zip((p.grad for p in model.parameters()), want):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_accumulate_refuses_a_global_batch_it_does_not_divide(monkeypatch, tmp_path):
    from lmcourse import distributed, scale_out

    for variable, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                            "MASTER_PORT": str(free_port()), "LMCOURSE_DEVICE": "cpu"}.items():
        monkeypatch.setenv(variable, value)
    try:
        with pytest.raises(ValueError, match="--accumulate 3 needs 1 process .* --global-batch"):
            scale_out.main(["--accumulate", "3", "--global-batch", "16", "--out", str(tmp_path)])
    finally:
        distributed.teardown()
