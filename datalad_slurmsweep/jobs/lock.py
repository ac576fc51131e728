"""One finish at a time per dataset.

Two ``slurm-finish`` runs (two terminals, or cron and a user) would both read
the open jobs before either removed them, and both would record them. The
whole of reconcile -> query -> commit -> store update therefore runs under an
exclusive ``flock`` on ``<git dir>/slurmsweep/finish.lock``. A second run
says who holds it, waits, and then sees the jobs the first one left open.
The kernel releases the lock when its holder dies, even by ``kill -9``.
"""
from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import SlurmsweepError

lgr = logging.getLogger("datalad.slurmsweep.lock")
DEFAULT_TIMEOUT = 3600.0


class BusyError(SlurmsweepError):
    """Another command held the dataset's finish lock for too long."""

    status = "error"


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "another process"
    return text or "another process"


@contextmanager
def finish_lock(dot_git: Path, purpose: str,
                timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    """Hold the dataset's finish lock; wait (saying so) while another holds it."""
    path = Path(dot_git) / "slurmsweep" / "finish.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _wait(fd, path, timeout)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{purpose} (pid {os.getpid()}, since "
                      f"{time.strftime('%H:%M:%S')})\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _wait(fd: int, path: Path, timeout: float) -> None:
    lgr.warning("%s is finishing jobs of this dataset; waiting for it to end", _holder(path))
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise BusyError(f"{_holder(path)} has been finishing jobs of this dataset "
                                f"for over {timeout:.0f} s; run again once it has ended "
                                f"(the lock is {path})") from None
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
