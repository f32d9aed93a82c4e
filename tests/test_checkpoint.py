"""Checkpoints: what is saved always loads, what cannot load is refused when saving, and each failure says why."""

import dataclasses
import datetime
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lmcourse import checkpoint, files
from lmcourse.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from lmcourse.gpt import GPT, GPTConfig


def tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()


def test_gpt_checkpoint_round_trips_its_config(tmp_path):
    gpt = tiny_gpt()
    path = save_checkpoint(tmp_path / "gpt.pt", gpt, config=gpt.config, step=3)
    assert load_checkpoint(path, tiny_gpt()) == {"config": dataclasses.asdict(gpt.config), "step": 3}
    again = GPT.from_checkpoint(path)
    assert again.config == gpt.config
    ids = torch.randint(11, (2, 8))
    torch.testing.assert_close(again(ids)[0], gpt(ids)[0], rtol=0, atol=0)


def test_gpt_from_checkpoint_without_config_says_how_to_save_it(tmp_path):
    path = save_checkpoint(tmp_path / "gpt.pt", tiny_gpt())
    with pytest.raises(ValueError, match=r"config=model.config"):
        GPT.from_checkpoint(path)


def test_numpy_scalars_in_metadata_come_back_as_python_numbers(tmp_path):
    path = save_checkpoint(tmp_path / "ck.pt", nn.Linear(2, 1), loss=np.float32(0.5), step=np.int64(7),
                           best=np.bool_(True), history=[np.float64(1.25), 2], nested={"lr": np.float16(0.5)})
    meta = load_checkpoint(path, nn.Linear(2, 1))
    assert meta == {"loss": 0.5, "step": 7, "best": True, "history": [1.25, 2], "nested": {"lr": 0.5}}
    assert type(meta["loss"]) is float and type(meta["step"]) is int and type(meta["best"]) is bool


def test_tensors_and_plain_containers_in_metadata_load(tmp_path):
    meta = {"mean": torch.arange(3.0), "pair": (1, "a"), "none": None, "names": ["x", "y"], "map": {1: 2.0}}
    path = save_checkpoint(tmp_path / "ck.pt", nn.Linear(2, 1), **meta)
    got = load_checkpoint(path, nn.Linear(2, 1))
    assert torch.equal(got.pop("mean"), meta.pop("mean")) and got == meta


class Opaque:
    pass


@pytest.mark.parametrize("value, key, words", [
    (datetime.datetime(2026, 1, 1), "metadata['when']", "datetime"),
    (np.arange(3), "metadata['when']", "NumPy array"),
    ({"inner": Path("x")}, "metadata['when']['inner']", "Path"),
    ([1, {2, 3}], "metadata['when'][1]", "set"),
    ({"a": Opaque()}, "metadata['when']['a']", "Opaque"),
    (lambda: 1, "metadata['when']", "function"),
])
def test_metadata_that_would_not_load_is_refused_at_save_time_naming_the_key(tmp_path, value, key, words):
    target = tmp_path / "ck.pt"
    target.write_bytes(b"the previous checkpoint")
    with pytest.raises(TypeError) as info:
        save_checkpoint(target, nn.Linear(2, 1), when=value)
    assert key in str(info.value) and words in str(info.value)
    assert target.read_bytes() == b"the previous checkpoint" and os.listdir(tmp_path) == ["ck.pt"]


def test_a_map_location_this_machine_lacks_is_named_not_called_corrupt(tmp_path):
    path = save_checkpoint(tmp_path / "ck.pt", nn.Linear(2, 1))
    with pytest.raises(ValueError, match="map_location='nonsense' is not a device") as info:
        load_checkpoint(path, nn.Linear(2, 1), map_location="nonsense")
    assert "corrupt" not in str(info.value)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"map_location='cuda'.*no cuda device") as info:
            load_checkpoint(path, nn.Linear(2, 1), map_location="cuda")
        assert "corrupt" not in str(info.value)
    else:
        with pytest.raises(ValueError, match="CUDA device"):
            load_checkpoint(path, nn.Linear(2, 1), map_location=f"cuda:{torch.cuda.device_count()}")


def test_a_file_of_a_newer_format_says_upgrade_not_corrupt(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": checkpoint.FORMAT + 1, "model": nn.Linear(2, 1).state_dict(), "metadata": {}}, path)
    with pytest.raises(ValueError, match="newer than this lmcourse reads.*upgrade lmcourse") as info:
        load_checkpoint(path, nn.Linear(2, 1))
    assert "corrupt" not in str(info.value)


def test_a_file_with_pickled_objects_says_what_it_holds_not_corrupt(tmp_path):
    path = tmp_path / "old.pt"  # as an older save_checkpoint(path, gpt, config=gpt.config) wrote it
    gpt = tiny_gpt()
    torch.save({"model": gpt.state_dict(), "metadata": {"config": gpt.config}}, path)
    with pytest.raises(ValueError, match="weights_only load refuses.*GPTConfig") as info:
        read_checkpoint(path)
    assert "corrupt" not in str(info.value)


def test_a_truncated_file_is_called_corrupt(tmp_path):
    path = save_checkpoint(tmp_path / "ck.pt", nn.Linear(20, 10))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(path, nn.Linear(20, 10))


def test_the_new_file_is_flushed_to_disk_before_it_replaces_the_old(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(files.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    save_checkpoint(tmp_path / "ck.pt", nn.Linear(2, 1))
    assert "fsync" in events and events.index("fsync") < events.index("replace")


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_while_writing_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, error):
    target = tmp_path / "ck.pt"
    save_checkpoint(target, nn.Linear(2, 1), step=1)

    def half_written(obj, f):
        Path(f).write_bytes(b"PK\x03\x04 half a zip")
        raise error("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", half_written)
    with pytest.raises(error):
        save_checkpoint(target, nn.Linear(2, 1), step=2)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ck.pt"] and load_checkpoint(target, nn.Linear(2, 1)) == {"step": 1}


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_saved_file_gets_the_usual_permissions_not_private_ones(tmp_path):
    umask = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "ck.pt", nn.Linear(2, 1))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644



@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_save_leaves_the_umask_alone_for_other_threads(tmp_path, monkeypatch):
    import threading
    import time

    real_umask = os.umask

    def slow_umask(mask):  # widens any moment in which a save would change the process's umask
        previous = real_umask(mask)
        time.sleep(0.02)
        return previous

    monkeypatch.setattr(os, "umask", slow_umask)
    (tmp_path / "other").mkdir()
    modes, stop = [], threading.Event()

    def create_files():  # another thread of the same process writing its own files meanwhile
        while not stop.is_set():
            path = tmp_path / "other" / f"{len(modes)}.txt"
            path.write_text("x")
            modes.append(stat.S_IMODE(path.stat().st_mode))

    previous = real_umask(0o027)
    try:
        thread = threading.Thread(target=create_files)
        thread.start()
        for i in range(5):
            files.atomic_write_text(tmp_path / f"saved{i}.txt", "y")
        stop.set()
        thread.join()
    finally:
        real_umask(previous)
    assert modes and set(modes) == {0o666 & ~0o027}
    assert {stat.S_IMODE((tmp_path / f"saved{i}.txt").stat().st_mode) for i in range(5)} == {0o666 & ~0o027}


def test_a_save_removes_the_temporary_a_killed_save_left_behind(tmp_path):
    import signal
    import subprocess
    import sys

    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs SIGKILL")
    target = tmp_path / "ck.pt"
    killed_mid_save = ("import os, signal, sys\nfrom lmcourse.files import atomic_path\n"
                       "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'half')\n"
                       "    os.kill(os.getpid(), signal.SIGKILL)\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", killed_mid_save, str(target)], cwd=root, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".ck.pt.") and left[0].endswith(".tmp")
    save_checkpoint(target, nn.Linear(2, 1), step=1)
    assert sorted(os.listdir(tmp_path)) == ["ck.pt"]


def test_a_save_keeps_temporaries_whose_writer_may_still_run(tmp_path):
    import time

    target = tmp_path / "ck.pt"
    live = tmp_path / f".ck.pt.{files._HOST}-{os.getpid()}-0123abcd.tmp"  # a save in another thread of this process
    elsewhere = tmp_path / ".ck.pt.ffffffff-1-0123abcd.tmp"  # another machine's save on a shared disk
    other_target = tmp_path / ".other.pt.ffffffff-1-0123abcd.tmp"
    abandoned = tmp_path / ".ck.pt.eeeeeeee-1-0123abcd.tmp"  # another machine's, untouched for too long
    for path in (live, elsewhere, other_target, abandoned):
        path.write_bytes(b"half")
    hours_ago = time.time() - files.STALE_AFTER_SECONDS - 60
    os.utime(abandoned, (hours_ago, hours_ago))
    os.utime(other_target, (hours_ago, hours_ago))
    save_checkpoint(target, nn.Linear(2, 1))
    assert sorted(os.listdir(tmp_path)) == sorted(["ck.pt", live.name, elsewhere.name, other_target.name])
