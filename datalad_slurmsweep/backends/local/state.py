"""The local backend's state on disk: one directory of job files.

``STATE_DIR/jobs/<id>.json`` is a job's status (a :class:`LocalJob`), written
whole and atomically under ``<id>.lock``; ``<id>.spec.json`` is what the
runner follows, ``<id>.script`` the batch script it runs, ``<id>.log`` the
runner's own log. ``STATE_DIR/next-job-id`` hands out ids, and
``STATE_DIR/slot-N.lock`` are the machine-wide worker slots.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base import JobState, Resources

KILL_GRACE = 3.0
# A job whose runner never registered (its submitter died in between) is
# given up after this long rather than left pending forever.
SPAWN_GRACE = 60.0


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


# -- processes ------------------------------------------------------------------

def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def proc_start(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot), None if unknown."""
    stat = _proc_stat(pid)
    return stat[19] if stat else None


def alive(pid: int, start: str | None) -> bool:
    """Whether ``pid`` still runs and is the process that started at ``start``."""
    if not Path("/proc/self/stat").exists():  # no procfs: ask the kernel, less precisely
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, as another user
            pass
        return True
    stat = _proc_stat(pid)
    # A zombie has finished; the start time guards against a reused pid.
    return stat is not None and stat[0] not in ("Z", "X") and start in (None, stat[19])


def killpg(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# -- files ----------------------------------------------------------------------

def write_text(path: Path, text: str, mode: int = 0o600) -> None:
    """Readers see the old or the new content, never a partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as f:
        f.write(text)
    os.replace(tmp, path)


@contextmanager
def flock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``, for as long as the block runs."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- the status of a job ------------------------------------------------------------

@dataclass
class LocalTask:
    """One allocation: the job itself, or one task of an array."""

    task_id: int | None
    raw_id: str
    state: JobState = JobState.PENDING
    exit_code: int | None = None
    signal: int | None = None
    start: str | None = None
    end: str | None = None
    node: str | None = None
    pid: int | None = None  # also the process group of the task
    pid_start: str | None = None
    reason: str | None = None
    resources: Resources | None = None  # once the task ended


@dataclass
class RunnerProcess:
    pid: int
    start: str | None


@dataclass
class LocalJob:
    """A job's status file."""

    job_id: str
    name: str
    comment: str | None
    array: bool
    submitted: str
    submitted_at: float  # time.time(), for SPAWN_GRACE
    runner: RunnerProcess | None = None
    tasks: list[LocalTask] = field(default_factory=list)

    def to_json(self) -> str:
        # Shallow copies: a runner writes this file twice per task, and
        # asdict of 1000 tasks with their resources cost ~150 ms a time.
        data = dict(vars(self))
        data["runner"] = dict(vars(self.runner)) if self.runner else None
        data["tasks"] = [{**vars(t), "state": t.state.value,
                          "resources": vars(t.resources) if t.resources else None}
                         for t in self.tasks]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> LocalJob:
        data: dict[str, Any] = json.loads(text)
        runner = data.pop("runner")
        tasks = [LocalTask(**{**t, "state": JobState(t["state"]),
                              "resources": Resources(**t["resources"]) if t.get("resources")
                              else None}) for t in data.pop("tasks")]
        return cls(**data, runner=RunnerProcess(**runner) if runner else None, tasks=tasks)

    @property
    def finished(self) -> bool:
        return all(t.state.is_terminal for t in self.tasks)

    def runner_dead(self) -> bool:
        if self.finished:
            return False
        if self.runner is None:
            return time.time() - self.submitted_at > SPAWN_GRACE
        return not alive(self.runner.pid, self.runner.start)


class JobFiles:
    """The job files under ``state_dir``; every reader and writer goes through here."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.jobs_dir = self.state_dir / "jobs"

    def path(self, job_id: str, suffix: str) -> Path:
        return self.jobs_dir / f"{job_id}{suffix}"

    def load(self, job_id: str) -> LocalJob:
        """The status as written, without looking at the runner."""
        return LocalJob.from_json(self.path(job_id, ".json").read_text())

    def save(self, job: LocalJob) -> None:
        write_text(self.path(job.job_id, ".json"), job.to_json())

    @contextmanager
    def locked(self, job_id: str) -> Iterator[LocalJob]:
        """The job's status, written back unless the block raises."""
        with flock(self.path(job_id, ".lock")):
            job = self.load(job_id)
            yield job
            self.save(job)

    def read(self, job_id: str) -> LocalJob | None:
        """A job's status, None if unknown; a dead runner's job becomes NODE_FAIL."""
        # Ids come from users and other jobs: never let one name another path.
        if not job_id.isdigit():
            return None
        try:
            job = self.load(job_id)
        except FileNotFoundError:
            return None
        if job.runner_dead():
            with self.locked(job_id) as job:
                if job.runner_dead():
                    _node_fail(job)
        return job

    def job_ids(self) -> list[str]:
        """Every job with a status file, oldest first."""
        stems = [p.stem for p in self.jobs_dir.glob("*.json") if p.stem.isdigit()]
        return sorted(stems, key=lambda s: (len(s), s))

    def allocate(self, count: int) -> int:
        """The first of ``count`` consecutive new ids, safe among concurrent submitters."""
        counter = self.state_dir / "next-job-id"
        with flock(self.state_dir / "next-job-id.lock"):
            try:
                first = int(counter.read_text())
            except FileNotFoundError:
                first = 1
            write_text(counter, str(first + count))
        return first


def _node_fail(job: LocalJob) -> None:
    for task in job.tasks:
        if task.state.is_terminal:
            continue
        # Slurm kills a failed node's jobs: do not leave orphans.
        if task.pid and alive(task.pid, task.pid_start):
            killpg(task.pid, signal.SIGKILL)
        task.state, task.end, task.reason = JobState.NODE_FAIL, now(), "the runner died"
