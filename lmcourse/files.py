"""Safe file handling: checksums, and writes that never leave a half-written file (or set of files) behind."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# A save killed outright (SIGKILL, a power cut) leaves its hidden temporary behind. The next save of the same
# target removes those whose writer is gone: a process of this machine that no longer runs, or, when the
# writer cannot be checked (another machine on a shared disk, Windows), a file untouched for this long.
STALE_AFTER_SECONDS = 3600
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]  # tells this machine's pids from others'


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one step.

    The new file's bytes are flushed to disk (fsync) before the rename, and the rename itself after it,
    so a crash, a power cut or an exception mid-write leaves the old file (or none) in place, never a torn
    or empty one; the temporary file is removed whatever happens, and those of earlier saves that were
    killed are removed on the next save of the same `path`.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    tmp = _create_temporary(target)
    try:
        yield tmp
        _fsync(tmp)
        if target.exists():  # keep the old file's mode; a new one has open()'s (0o666 minus the umask)
            os.chmod(tmp, target.stat().st_mode & 0o777)
        os.replace(tmp, target)  # atomic on POSIX and Windows when on the same file system
        _fsync_directory(target.parent)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def _create_temporary(target: Path) -> Path:
    """A new empty file `.NAME.HOST-PID-RANDOM.tmp` beside `target`, with the mode a plain open() would give.

    Created with mode 0o666 for the system to apply the umask: reading the umask would mean setting it, for a
    moment, for every thread of the process.
    """
    while True:
        tmp = target.parent / f".{target.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:  # a name taken by a concurrent save: draw another
            continue


def _remove_stale_temporaries(target: Path) -> None:
    """Delete the temporaries of `target` whose save was killed (see STALE_AFTER_SECONDS)."""
    prefix = f".{target.name}."
    for tmp in target.parent.glob(glob.escape(prefix) + "*.tmp"):
        writer = re.fullmatch(r"([0-9a-f]{8})-(\d+)-[0-9a-f]{8}", tmp.name[len(prefix):-len(".tmp")])
        try:
            this_machine = writer is not None and writer[1] == _HOST
            if (this_machine and not _process_runs(int(writer[2]))) \
                    or time.time() - tmp.stat().st_mtime > STALE_AFTER_SECONDS:
                tmp.unlink()
        except FileNotFoundError:  # removed meanwhile by its own save or by another cleaner
            continue


def _process_runs(pid: int) -> bool:
    """Whether process `pid` of this machine still runs (assumed so where that cannot be asked safely)."""
    if pid == os.getpid() or os.name != "posix":  # on Windows os.kill would terminate the process
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        pass
    return True


def _fsync(path: str | os.PathLike) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_directory(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write `payload` to `path` atomically."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be bytes, got a {type(payload).__name__}; for text use atomic_write_text")
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got a {type(text).__name__}; for bytes use atomic_write_bytes")
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_texts(contents: dict[Path, str], journal: str | os.PathLike) -> None:
    """Replace several text files (UTF-8) as one unit: a crash at any point leaves all of them old or all new,
    once `finish_interrupted_writes(journal)` has run (the next writer's first step).

    Each new text goes to a pending file `.NAME.pending` beside its target; the journal, a JSON list of the
    renames, is written before them (uncommitted) and again after them (committed, the point of no return);
    then the renames, then the journal is removed. One writer at a time per journal: hold a lock.
    """
    journal = Path(journal)
    renames = [(target.with_name(f".{target.name}.pending"), target) for target in map(Path, contents)]
    _write_journal(journal, renames, committed=False)  # from here a crash leaves pending files to remove
    for (pending, target), text in zip(renames, contents.values()):
        with open(pending, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        if target.exists():
            os.chmod(pending, target.stat().st_mode & 0o777)
    _write_journal(journal, renames, committed=True)
    finish_interrupted_writes(journal)


def finish_interrupted_writes(journal: str | os.PathLike) -> bool:
    """Complete the renames of a committed `atomic_write_texts`, or remove the pending files of an uncommitted
    one; True if its journal was there (a write was interrupted, or is being finished now)."""
    journal = Path(journal)
    if not journal.is_file():
        return False
    entry = json.loads(journal.read_text(encoding="utf-8"))
    renames = [(journal.parent / pending, journal.parent / target) for pending, target in entry["renames"]]
    for pending, target in renames:
        if pending.exists():  # absent: renamed before the interruption
            if entry["committed"]:
                os.replace(pending, target)
            else:
                pending.unlink()
    for folder in {target.parent for _, target in renames}:
        _fsync_directory(folder)
    journal.unlink()
    _fsync_directory(journal.parent)
    return True


def _write_journal(journal: Path, renames: list[tuple[Path, Path]], committed: bool) -> None:
    relative = [[os.path.relpath(path, journal.parent) for path in pair] for pair in renames]
    atomic_write_text(journal, json.dumps({"committed": committed, "renames": relative}) + "\n")


def cache_dir() -> Path:
    """Where lmcourse keeps derived files: $LMCOURSE_CACHE, else ~/.cache/lmcourse."""
    root = os.environ.get("LMCOURSE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lmcourse"
    return Path(root)
