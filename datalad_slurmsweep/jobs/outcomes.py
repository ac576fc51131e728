"""Per-point outcomes of sweep points packed into shared array tasks.

With ``n_workers`` a sweep's array task runs several points, one after
another or a few at a time. Slurm's state is the task's, not the point's:
a task COMPLETED although one of its points exited 3, and a task killed at
its time limit had finished some points before. So the task's dispatcher
(``sweep/chunking.py``) writes, for each point it ran to its end, a small
JSON file beside the point's batch script (:func:`outcome_path`): its exit
code, start and end, and what it used (GNU time's figures). Finishing reads
it here and turns each packed point into a status of its own
(:func:`apply_outcomes`), so the rest of finishing and recording treats a
packed point like a point that had an array task to itself:

* an outcome file: COMPLETED if it exited 0, else FAILED with its exit code
  (or the task's kill state when the task's killing ended it: exit 137/143
  in a TIMEOUT, CANCELLED, OUT_OF_MEMORY, ... task);
* no outcome file once the task ended: the point never finished; its state
  is the task's (TIMEOUT, CANCELLED, ...), or FAILED if the task COMPLETED
  (the dispatcher could not write the file).

The files are not committed: the run record holds all they say. They are
removed when their point leaves the job store (:func:`forget_outcomes`).
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from ..backends.base import JobId, JobState, JobStatus, Resources, TaskStatus
from .model import Job

OUTCOME_SUFFIX = ".outcome.json"
# States in which Slurm (or the local backend) killed the whole task: a
# point that died of the kill's SIGTERM/SIGKILL died of the task's state.
_KILLED = frozenset({JobState.TIMEOUT, JobState.CANCELLED, JobState.OUT_OF_MEMORY,
                     JobState.NODE_FAIL, JobState.PREEMPTED, JobState.DEADLINE})
_KILL_CODES = frozenset({128 + 9, 128 + 15})


def outcome_path(script: str) -> str:
    """``O/<point>/.<case>.outcome.json`` for the script ``O/<point>/<case>.sh``.
    Hidden, and so never a case's output directory (case names start with a
    letter or digit)."""
    path = PurePosixPath(script)
    return str(path.with_name("." + path.name.removesuffix(".sh") + OUTCOME_SUFFIX))


@dataclass
class PointOutcome:
    """What a packed point's dispatcher measured for it."""

    exit_code: int
    start: str | None = None
    end: str | None = None
    elapsed_s: float | None = None
    user_cpu_s: float | None = None
    system_cpu_s: float | None = None
    max_rss_bytes: int | None = None
    array_job_id: str | None = None  # whose task wrote it: a stale file is not this run's

    @classmethod
    def from_json(cls, data: dict) -> PointOutcome | None:
        """None for a file that is not an outcome (damaged, hand-edited)."""
        if not isinstance(data, dict) or not isinstance(data.get("exit_code"), int):
            return None
        known = {k: data.get(k) for k in cls.__dataclass_fields__}
        numbers = ("elapsed_s", "user_cpu_s", "system_cpu_s", "max_rss_bytes")
        for key in numbers:
            if not isinstance(known[key], (int, float)) or isinstance(known[key], bool):
                known[key] = None
        for key in ("start", "end", "array_job_id"):
            known[key] = known[key] if isinstance(known[key], str) else None
        return cls(**known)

    def to_json(self) -> dict:
        return asdict(self)


def read_outcome(ds_root: Path, job: Job) -> PointOutcome | None:
    """The outcome the dispatcher wrote for ``job``'s point, if any."""
    try:
        text = (ds_root / outcome_path(job.spec.sbatch_argv[-1])).read_text()
        found = PointOutcome.from_json(json.loads(text))
    except (OSError, ValueError):
        return None
    if found is None or (found.array_job_id and job.job_id
                         and found.array_job_id != job.job_id.base):
        return None
    return found


@dataclass
class PointResult:
    """How one point of a sweep ended: ``state`` is the point's own;
    ``task_state`` that of the Slurm task that ran it (the same for an
    unpacked point); ``outcome`` None when the point left none."""

    job: Job
    state: JobState
    exit_code: int | None
    task_state: JobState
    outcome: PointOutcome | None = None

    @property
    def packed(self) -> bool:
        return self.job.spec.chunk_slot is not None


def point_result(job: Job, task: JobStatus, outcome: PointOutcome | None) -> PointResult:
    """A packed point's own end, from its task's status and its outcome."""
    if task.state.is_active:
        return PointResult(job, task.state, None, task.state, outcome)
    if outcome is None:
        # It never exited on its own: no exit code is its.
        state = JobState.FAILED if task.state.is_success else task.state
        return PointResult(job, state, None, task.state, None)
    if outcome.exit_code == 0:
        state = JobState.COMPLETED
    elif task.state in _KILLED and outcome.exit_code in _KILL_CODES:
        state = task.state
    else:
        state = JobState.FAILED
    return PointResult(job, state, outcome.exit_code, task.state, outcome)


def _point_status(result: PointResult, task: JobStatus) -> JobStatus:
    """A status of the point alone, shaped like an array task's own."""
    ran = task.tasks[0] if task.tasks else TaskStatus(raw_id="", task_id=None,
                                                        state=task.state)
    out = result.outcome
    resources = None
    if out is not None:
        cpu = (None if out.user_cpu_s is None or out.system_cpu_s is None
               else round(out.user_cpu_s + out.system_cpu_s, 3))
        limit = ran.resources.time_limit_s if ran.resources else None
        resources = Resources(elapsed_s=out.elapsed_s, total_cpu_s=cpu,
                              max_rss_bytes=out.max_rss_bytes,
                              time_limit_s=limit).completed()
    code = result.exit_code
    signal = code - 128 if code is not None and code > 128 and out is not None else (
        ran.signal if out is None else None)
    return JobStatus(job_id=result.job.job_id, source=task.source, tasks=[TaskStatus(
        raw_id=ran.raw_id, task_id=ran.task_id, state=result.state, exit_code=code,
        signal=signal, start=out.start if out else ran.start,
        end=out.end if out else ran.end, node=ran.node, name=ran.name,
        resources=resources if out else ran.resources)])


def apply_outcomes(ds_root: Path, jobs: list[Job],
                   statuses: dict[JobId, JobStatus]) -> dict[str, PointResult]:
    """Replace, in ``statuses``, each packed point's status (its task's, as
    the backend answered) by the point's own; job token -> its result. The
    task's own status stays under the task's id for whoever asks."""
    results: dict[str, PointResult] = {}
    for job in jobs:
        if job.spec.chunk_slot is None or job.job_id not in statuses:
            continue
        task = statuses[job.job_id]
        outcome = read_outcome(ds_root, job) if task.state.is_terminal else None
        result = point_result(job, task, outcome)
        results[job.token] = result
        statuses[job.job_id.scheduler_id] = task
        statuses[job.job_id] = _point_status(result, task)
    return results


def forget_outcomes(ds_root: Path, jobs: list[Job]) -> None:
    """Remove the outcome files of packed points that left the store (only
    their dispatcher writes one): the record holds what they said, and a
    stale one must not speak for a rerun."""
    for job in jobs:
        if job.spec.chunk_slot is not None and job.spec.sbatch_argv:
            # One left behind misleads nobody: the dispatcher removes it
            # first. ``.usage`` is its temporary file, left by a killed task.
            # A point that ran to its end renamed ``.usage`` to its outcome.
            outcome = ds_root / outcome_path(job.spec.sbatch_argv[-1])
            try:
                os.unlink(outcome)
            except FileNotFoundError:
                with contextlib.suppress(OSError):
                    os.unlink(outcome.with_name(outcome.name + ".usage"))
            except OSError:
                pass
