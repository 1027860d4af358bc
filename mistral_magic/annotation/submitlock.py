"""Whether a run is still submitting a batch job: a lock on a small file beside the reply cache,
taken before the run's claim is written and let go once its job is recorded (or the claim given up).
The operating system lets go of it when the kernel dies, so a claim whose lock is free and whose job
is still unknown was left by a run that ended without knowing how its job creation went."""

from __future__ import annotations

import os
import sys
from pathlib import Path

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # per open file: two opens in one process conflict
        except OSError:
            return False
        return True


class SubmitLock:
    """Held by the one run submitting the job of claim ``run`` (a fresh name, so never taken already)."""

    def __init__(self, folder: Path, run: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{run}.lock"
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(self._fd):
            os.close(self._fd)
            raise OSError(f"{self.path} is locked already")

    def release(self) -> None:
        if self._fd is None:
            return
        os.close(self._fd)  # closing lets go of the lock
        self._fd = None
        _remove(self.path)

    def __enter__(self) -> SubmitLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def submitting(folder: Path, run: str) -> bool:
    """A live run holds the lock of claim ``run``."""
    path = folder / f"{run}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return False  # no folder, or not writable: nobody could hold a lock there
    try:
        held = not _try_lock(fd)
    finally:
        os.close(fd)
    if not held:
        _remove(path)
    return held


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
