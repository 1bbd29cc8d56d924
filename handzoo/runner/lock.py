"""One run per run folder: an OS file lock held for the whole run, released when the process dies.

Two ``handzoo run`` into one ``--out`` at once would interleave their outputs
(one's config, the other's weights, a mixed ``history.jsonl``). The first run
takes an exclusive ``flock`` on ``OUT/.handzoo-run.lock`` and writes who holds
it into the file; a second run finds the lock taken and stops before it
writes anything, naming the holder. The kernel drops the lock when the holder
exits or is killed, so a crashed run never leaves the folder locked.

Only the main process of a distributed run locks (its other ranks write
nothing into the folder). Where ``fcntl`` is missing (Windows) no lock is taken.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from handzoo.errors import UsageError

LOCK_NAME = ".handzoo-run.lock"


class RunFolderBusy(UsageError):
    """Another process holds the run folder's lock."""


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a ``torchrun`` launch (read before any process group)."""
    return os.environ.get("RANK", "0") == "0"


@contextlib.contextmanager
def run_folder_lock(
    out: Path, what: str = "handzoo run", created: Sequence[Path] = ()
) -> Iterator[Path | None]:
    """Hold ``out``'s run lock for the block; yields the lock file (None where nothing locks).

    ``created``: folders this process made for the run (``out`` and missing
    parents, innermost first). When the block fails and ``out`` holds nothing
    but the lock file, the lock file is removed while still held and those
    folders are removed again, so a run that wrote nothing leaves nothing.
    Only the process holding the lock cleans up.

    Raises:
        RunFolderBusy: another live process holds it (the message names its pid, host and start).
        UsageError: the lock file cannot be opened (a symlink planted there, a read-only folder).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield None
        return
    if not is_main_process():
        yield None
        return
    path = out / LOCK_NAME
    try:
        # O_NOFOLLOW: a planted symlink is refused rather than followed out of the folder.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise UsageError(
            f"cannot lock the run folder {out} ({path}: {exc.strerror}); it must be a writable folder "
            "of your own: choose another --out"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 500, 0).decode(errors="replace").strip() or "another process"
            raise RunFolderBusy(
                f"{out} is in use by another run ({holder}); wait for it to end or choose another --out"
            ) from None
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, pid {os.getpid()} on {socket.gethostname()}, since {started}\n".encode(), 0)
        try:
            yield path
        except BaseException:
            if [p.name for p in out.iterdir()] == [LOCK_NAME]:  # nothing but the lock: undo the folder
                path.unlink(missing_ok=True)  # while still held: no other run can hold this file
                for folder in created:
                    if not folder.is_dir() or any(folder.iterdir()):
                        break
                    folder.rmdir()
            raise
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
