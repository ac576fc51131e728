"""What every backend shares: the job identity, the states, the status types,
and the interface a backend implements.

The local backend reports the same states as Slurm, so that finishing,
listing and rescheduling never need to know where a job ran. Nothing here
imports a backend; both backends import this.
"""
from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import JobIdError

lgr = logging.getLogger("datalad.slurmsweep.backends")


class JobState(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    REQUEUED = "REQUEUED"
    SUSPENDED = "SUSPENDED"
    COMPLETING = "COMPLETING"
    CONFIGURING = "CONFIGURING"
    RESIZING = "RESIZING"
    REQUEUE_HOLD = "REQUEUE_HOLD"
    REQUEUE_FED = "REQUEUE_FED"
    SIGNALING = "SIGNALING"
    STAGE_OUT = "STAGE_OUT"
    STOPPED = "STOPPED"
    RESV_DEL_HOLD = "RESV_DEL_HOLD"  # held because its reservation was deleted
    POWER_UP_NODE = "POWER_UP_NODE"  # waiting for its (cloud) node to boot
    UPDATE_DB = "UPDATE_DB"  # the controller is still writing it to the database
    # Not a Slurm state: one this tool does not know (a newer Slurm's). It
    # counts as still active, so it is neither committed nor forgotten.
    UNKNOWN = "UNKNOWN"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    CANCELLED = "CANCELLED"
    PREEMPTED = "PREEMPTED"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    REVOKED = "REVOKED"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    LAUNCH_FAILED = "LAUNCH_FAILED"
    RECONFIG_FAIL = "RECONFIG_FAIL"
    # Not a Slurm state: the job is unknown to Slurm (purged from the
    # controller's memory and absent from accounting). Never a success.
    LOST = "LOST"

    @classmethod
    def parse(cls, text: str) -> JobState:
        """Parse a state as sacct/squeue/scontrol print it.

        sacct prints ``CANCELLED by 0``; squeue may abbreviate nothing but
        scontrol prints ``JobState=COMPLETED``: callers strip the key.
        A word we do not know is UNKNOWN, which counts as still active: a state
        a newer Slurm invents must neither be committed as a success nor be
        closed as a failure, since we cannot tell which it is.
        """
        word = text.strip().split(" ", 1)[0].rstrip("+").upper()
        try:
            return cls(word)
        except ValueError:
            lgr.warning("Slurm reports the state %r, which this version of datalad-slurmsweep "
                        "does not know; the job is kept open", text.strip())
            return cls.UNKNOWN

    @property
    def is_success(self) -> bool:
        return self is JobState.COMPLETED

    @property
    def is_active(self) -> bool:
        return self in _ACTIVE

    @property
    def is_failure(self) -> bool:
        return not self.is_active and not self.is_success

    @property
    def is_terminal(self) -> bool:
        return not self.is_active


_ACTIVE = frozenset({
    JobState.PENDING, JobState.RUNNING, JobState.REQUEUED,
    JobState.SUSPENDED, JobState.COMPLETING, JobState.CONFIGURING,
    JobState.RESIZING, JobState.REQUEUE_HOLD, JobState.REQUEUE_FED,
    JobState.SIGNALING, JobState.STAGE_OUT, JobState.STOPPED,
    JobState.RESV_DEL_HOLD, JobState.POWER_UP_NODE, JobState.UPDATE_DB, JobState.UNKNOWN,
})


def combine_states(states: list[JobState]) -> JobState:
    """The state of an array job, from the states of its tasks.

    Still active while any task is; otherwise COMPLETED only when every task
    completed; otherwise the first failure (the task order is the caller's).
    """
    if not states:
        return JobState.LOST
    for state in states:
        if state.is_active:
            return state
    for state in states:
        if not state.is_success:
            return state
    return JobState.COMPLETED


# The recovery token a submission carries in its Slurm comment.
TOKEN = re.compile(r"dlss-[0-9a-f]{32}")


@dataclass
class CommentLookup:
    """What a backend knows about recovery tokens: the job ids found per
    token, and the tokens it cannot rule out (a job that may have been
    submitted and since forgotten), which must not be dropped."""

    found: dict[str, list[str]] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)


_JOB_ID = re.compile(r"(\d+)(?:_(\d+)(?:\.p(\d+))?)?")


@dataclass(frozen=True)
class JobId:
    """A Slurm job id: a whole job (``123``) or one task of an array (``123_4``).

    Parsed once, where an id enters (sbatch's answer, the store, the command
    line); everything else passes this type around.
    """

    base: str
    task: int | None = None
    # A sweep point packed with others into one array task (n_workers): its
    # slot there. Not Slurm's: ``123_4.p2`` is asked about as ``123_4``.
    slot: int | None = None

    @classmethod
    def parse(cls, text: str | int | JobId) -> JobId:
        if isinstance(text, JobId):
            return text
        match = _JOB_ID.fullmatch(str(text).strip())
        if not match:
            raise JobIdError(f"{text!r} is not a Slurm job id (e.g. 123, or 123_4 for "
                             "task 4 of array job 123, or 123_4.p2 for the third point "
                             "that task runs)")
        task, slot = match.group(2), match.group(3)
        return cls(match.group(1), int(task) if task else None, int(slot) if slot else None)

    def __str__(self) -> str:
        text = self.base if self.task is None else f"{self.base}_{self.task}"
        return text if self.slot is None else f"{text}.p{self.slot}"

    def with_task(self, task: int | None, slot: int | None = None) -> JobId:
        return JobId(self.base, task, slot)

    @property
    def scheduler_id(self) -> JobId:
        """The id Slurm knows: a packed point's array task."""
        return JobId(self.base, self.task)

    @property
    def sort_key(self) -> tuple[int, int, int]:
        return (int(self.base), -1 if self.task is None else self.task,
                -1 if self.slot is None else self.slot)


@dataclass
class Resources:
    """What one task used against what it was granted (``seff``'s figures).

    ``unknown`` names the figures the backend could not know (e.g. MaxRSS
    before accounting sampled the task, or everything when only scontrol
    answered); they stay None rather than a guess.
    """

    elapsed_s: float | None = None
    total_cpu_s: float | None = None
    max_rss_bytes: int | None = None
    req_mem_bytes: int | None = None
    alloc_cpus: int | None = None
    time_limit_s: int | None = None
    cpu_efficiency: float | None = None
    mem_efficiency: float | None = None
    unknown: list[str] = field(default_factory=list)

    def completed(self) -> Resources:
        """With the efficiencies computed and ``unknown`` filled in."""
        if self.total_cpu_s is not None and self.elapsed_s and self.alloc_cpus:
            self.cpu_efficiency = round(self.total_cpu_s / (self.elapsed_s * self.alloc_cpus), 4)
        if self.max_rss_bytes is not None and self.req_mem_bytes:
            self.mem_efficiency = round(self.max_rss_bytes / self.req_mem_bytes, 4)
        self.unknown = [name for name, value in asdict(self).items()
                        if value is None and name != "unknown"]
        return self


@dataclass
class TaskStatus:
    """One allocation: a plain job, or one task of an array job."""

    raw_id: str
    task_id: int | None
    state: JobState
    exit_code: int | None = None
    signal: int | None = None
    start: str | None = None
    end: str | None = None
    node: str | None = None
    name: str | None = None
    resources: Resources | None = None

    def as_record(self) -> dict:
        # A shallow copy: asdict's deep recursion cost a second per 10,000
        # points of a sweep's record.
        rec = dict(vars(self))
        rec["state"] = self.state.value
        if self.resources is not None:
            rec["resources"] = {**vars(self.resources), "unknown": list(self.resources.unknown)}
        return rec


@dataclass
class JobStatus:
    """A scheduled job as its backend sees it now."""

    job_id: JobId
    tasks: list[TaskStatus] = field(default_factory=list)
    source: str = "sacct"

    @property
    def state(self) -> JobState:
        return combine_states([t.state for t in self.tasks])

    @property
    def exit_code(self) -> int | None:
        """The first non-zero exit code of a task, else 0 (None if unknown)."""
        codes = [t.exit_code for t in self.tasks if t.exit_code is not None]
        if not codes:
            return None
        return next((c for c in codes if c != 0), 0)

    @property
    def node(self) -> str | None:
        return next((t.node for t in self.tasks if t.node), None)


def assemble(job_ids: Iterable[JobId], rows: Mapping[str, list[TaskStatus]],
             expected_tasks: Mapping[JobId, list[int] | None], source: str) -> dict[JobId, JobStatus]:
    """Statuses for exactly ``job_ids``: tasks the backend did not mention are LOST.

    ``123_4`` asks for task 4 of array 123 alone (rows are keyed by ``123``).
    The rows of one array are indexed once, however many of its tasks are asked for.
    """
    result = {}
    by_task: dict[str, dict[int | None, TaskStatus]] = {}
    for job_id in job_ids:
        tasks = by_task.get(job_id.base)
        if tasks is None:
            tasks = by_task[job_id.base] = {t.task_id: t for t in rows.get(job_id.base, [])}
        wanted = [job_id.task] if job_id.task is not None else expected_tasks.get(job_id)
        if wanted:
            ordered = [tasks.get(i) or TaskStatus(raw_id="", task_id=i, state=JobState.LOST)
                       for i in wanted]
        else:
            ordered = list(tasks.values())[:1] or [
                TaskStatus(raw_id=str(job_id), task_id=None, state=JobState.LOST)]
        result[job_id] = JobStatus(job_id=job_id, tasks=ordered, source=source)
    return result


def base_ids(job_ids: Iterable[JobId]) -> list[str]:
    """The scheduler job ids to ask about for ``job_ids`` (tasks -> their array)."""
    return sorted({j.base for j in job_ids}, key=lambda j: (len(j), j))


class Backend(Protocol):
    """Where jobs run. ``name`` is stored with each job, so that finishing
    asks the backend that ran it."""

    name: str

    def submit(self, sbatch_argv: list[str], cwd: Path, env: Mapping[str, str] | None = None,
               comment: str | None = None) -> JobId:
        """Submit ``sbatch OPTIONS...``; raise SlurmError with the backend's
        own message when the submission is refused. ``comment`` tags the job
        so that an interrupted submission can be found again."""

    def query(self, job_ids: list[JobId],
              expected_tasks: Mapping[JobId, list[int] | None] | None = None
              ) -> dict[JobId, JobStatus]:
        """One look-up for all ``job_ids``; unknown jobs are LOST."""

    def find_by_comments(self, comments: Mapping[str, float]) -> CommentLookup:
        """Job ids per recovery token (mapped to when it was reserved): one
        look-up for all reservations an interrupted run left behind."""

    def check_resources(self, options: list[str], cwd: Path) -> None:
        """Raise SlurmError if a job with these sbatch ``options`` could never
        run here; submits nothing."""

    def version(self) -> str: ...

    def max_array_size(self) -> int: ...
