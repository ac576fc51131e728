"""Retrying failed sweep points with what the failure asks for.

A point that ended in a state its policy lists (``when``), with attempts
left, is submitted again: more time after a TIMEOUT, more memory after
OUT_OF_MEMORY (each by its factor, up to its cap), without the failed node
after NODE_FAIL, unchanged after any other listed state (PREEMPTED). Only
the resource the failure points at grows: a timed-out point that gets more
memory too would wait longer in the queue for nothing (Snakemake scales
everything by the attempt number; we know why the attempt failed).

The types here travel in the job's spec (the store keeps it as JSON), so a
retried job knows its policy, what it asked for and the attempts before it;
the run record lists that chain. This module decides; ``resubmit.py``
submits.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..backends.base import JobState, JobStatus, TaskStatus
from ..backends.local import parse_time_limit
from ..errors import SlurmError
from . import advice

if TYPE_CHECKING:  # model.py keeps a Retrying in every job's spec
    from .model import Job

# The states a point is retried on unless the policy says otherwise: the
# ones a second attempt with more time or memory, or on another node, can
# get past. FAILED (the program's own error) would fail again.
DEFAULT_ON = ("TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED")
# The end states a policy may name: Slurm's failures (LOST is ours, and
# means nothing is known about the run).
RETRYABLE = ("TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "FAILED", "CANCELLED",
             "BOOT_FAIL", "DEADLINE")
MAX_ATTEMPTS = 100
_GIB = 1024 ** 3


@dataclass
class RetryPolicy:
    """A sweep's ``retry:`` section (or slurm-reschedule's options)."""

    attempts: int = 1  # in all, the first one included
    when: list[str] = field(default_factory=lambda: list(DEFAULT_ON))
    scale_time: float = 1.0
    scale_mem: float = 1.0
    max_time: str | None = None  # a Slurm time
    max_mem: float | None = None  # GB for the whole job, as the sweep's mem
    exclude_failed_nodes: bool = True


@dataclass
class Request:
    """What one attempt asked Slurm for: ``time`` as sbatch's --time, ``mem``
    in GB for the whole job (the sweep's unit), spread over ``ntasks``
    (the sweep's scripts ask for --mem-per-cpu)."""

    time: str | None = None
    mem: float | None = None
    ntasks: int = 1
    exclude: list[str] = field(default_factory=list)

    def sbatch_options(self) -> list[str]:
        options = [f"--time={self.time}"] if self.time else []
        if self.mem is not None:
            options.append(f"--mem-per-cpu={mem_per_cpu_mb(self.mem, self.ntasks)}M")
        if self.exclude:
            options.append("--exclude=" + ",".join(self.exclude))
        return options


@dataclass
class Attempt:
    """One ended attempt of a point, as its record lists it."""

    slurm_job_id: str
    state: str
    time: str | None
    mem: float | None
    exclude: list[str]
    elapsed_s: float | None
    max_rss_bytes: int | None
    node: str | None


@dataclass
class Retrying:
    """A point's retry policy, its current request and the attempts before."""

    policy: RetryPolicy
    request: Request
    history: list[Attempt] = field(default_factory=list)

    @property
    def attempt(self) -> int:
        return len(self.history) + 1

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Retrying:
        return cls(RetryPolicy(**data["policy"]), Request(**data["request"]),
                   [Attempt(**a) for a in data.get("history") or []])


@dataclass
class Plan:
    """What to do about one failed point: ``request`` to resubmit with, or
    ``refusal`` saying why not (attempts exhausted, nothing left to grow)."""

    job: Job
    task: TaskStatus
    request: Request | None = None
    refusal: str = ""


def mem_per_cpu_mb(mem_gb: float, ntasks: int) -> int:
    """The sweep's ``mem`` (GB for the job) as sbatch's --mem-per-cpu in MB."""
    return math.ceil(float(mem_gb) * 1024 / max(1, int(ntasks)))


def time_seconds(text: str) -> int | None:
    """A Slurm time in seconds; None for no limit; ValueError if malformed."""
    try:
        return parse_time_limit(text)
    except SlurmError as exc:
        raise ValueError(str(exc)) from None


def slurm_time(seconds: int) -> str:
    """Seconds as ``[D-]HH:MM:SS``, exactly (a cap need not be whole minutes)."""
    days, rest = divmod(int(seconds), 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def scaled_time(time: str, factor: float, cap: str | None) -> str:
    """``time`` times ``factor``, up to a whole minute (Slurm keeps limits
    in minutes and rounds up), then at most ``cap``."""
    seconds = time_seconds(time)
    if seconds is None:
        return time  # no limit: nothing to grow
    grown = math.ceil(seconds * factor / 60) * 60
    limit = time_seconds(cap) if cap else None
    return slurm_time(min(grown, limit) if limit is not None else grown)


def scaled_mem(mem: float, factor: float, cap: float | None) -> float:
    """``mem`` (GB) times ``factor``, at most ``cap``; rounded to 6 places so
    that a record shows 0.15, not 0.15000000000000002 (sbatch gets whole MB,
    rounded up: ``mem_per_cpu_mb``)."""
    grown = round(mem * factor, 6)
    return min(grown, cap) if cap is not None else grown


def grown(policy: RetryPolicy, now: Request, task: TaskStatus) -> tuple[Request, str]:
    """The request after ``task`` failed asking for ``now``, and why it
    cannot be had (or '')."""
    used = task.resources
    nxt = Request(now.time, now.mem, now.ntasks, list(now.exclude))
    if task.state is JobState.TIMEOUT and policy.scale_time > 1:
        base = now.time or (slurm_time(used.time_limit_s) if used and used.time_limit_s
                            else None)
        if base is None:
            return nxt, "its time limit is unknown, so it cannot be raised"
        nxt.time = scaled_time(base, policy.scale_time, policy.max_time)
        if now.time and time_seconds(nxt.time) <= (time_seconds(now.time) or 0):
            return nxt, f"its time limit {now.time} is already at max_time {policy.max_time}"
    if task.state is JobState.OUT_OF_MEMORY and policy.scale_mem > 1:
        base = now.mem if now.mem is not None else (
            used.req_mem_bytes / _GIB if used and used.req_mem_bytes else None)
        if base is None:
            return nxt, "its memory request is unknown, so it cannot be raised"
        nxt.mem = scaled_mem(base, policy.scale_mem, policy.max_mem)
        if now.mem is not None and nxt.mem <= now.mem:
            return nxt, f"its memory {now.mem} GB is already at max_mem {policy.max_mem}"
    if task.state is JobState.NODE_FAIL and policy.exclude_failed_nodes and task.node:
        nxt.exclude = sorted(set(nxt.exclude) | set(task.node.split(",")))
    return nxt, ""


def attempt_of(job: Job, task: TaskStatus) -> Attempt:
    """The attempt this job was, for the record."""
    req = job.spec.retry.request if job.spec.retry else Request()
    used = task.resources
    return Attempt(slurm_job_id=str(job.job_id), state=task.state.value, time=req.time,
                   mem=req.mem, exclude=list(req.exclude),
                   elapsed_s=used.elapsed_s if used else None,
                   max_rss_bytes=used.max_rss_bytes if used else None, node=task.node)


def attempts_record(job: Job, task: TaskStatus) -> list[dict]:
    """The chain of attempts of a point, this job's last (record key ``attempts``)."""
    if job.spec.retry is None:
        return []
    return [asdict(a) for a in job.spec.retry.history + [attempt_of(job, task)]]


def plan_retry(job: Job, status: JobStatus) -> Plan | None:
    """What to do about a failed point whose policy names its state; None
    when there is no policy, the point did not fail, or its state is not one
    to retry on."""
    retrying = job.spec.retry
    # One point per task: retries are refused for packed sweeps (n_workers).
    task = status.tasks[0] if job.sweep and status.tasks else None
    if (retrying is None or task is None or not task.state.is_failure
            or task.state.value not in retrying.policy.when):
        return None
    policy = retrying.policy
    tried = f"attempt {retrying.attempt} of {policy.attempts}"
    hint = advice.note([(task.state, task.resources)])
    if retrying.attempt >= policy.attempts:
        return Plan(job, task, refusal=f"ended {task.state.value} on {tried}: no attempts "
                    f"left (retry.attempts){hint}")
    request, why = grown(policy, retrying.request, task)
    if why:
        return Plan(job, task, refusal=f"ended {task.state.value} on {tried} and is not "
                    f"retried: {why}{hint}")
    return Plan(job, task, request=request)


def next_retrying(plan: Plan) -> Retrying:
    """The retry state of the next attempt of a planned point."""
    retrying = plan.job.spec.retry
    return Retrying(retrying.policy, plan.request,
                    retrying.history + [attempt_of(plan.job, plan.task)])


# -- checks shared by the sweep's retry: section and slurm-reschedule's options --

def factor_problem(value: Any, name: str) -> str | None:
    """A scale factor: a finite number of at least 1 (a retry never shrinks)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value < 1:
        return f"{name} must be a number of at least 1 (2: double it), not {value!r}"
    return None


def time_problem(value: Any, name: str) -> str | None:
    """A Slurm time limit that is a limit (not UNLIMITED)."""
    try:
        if isinstance(value, str) and time_seconds(value) is not None:
            return None
    except ValueError:
        pass
    return (f"{name} must be a Slurm time such as 02:00:00 or 1-00:00:00 (MM, MM:SS, "
            f"HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS), not {value!r}")


def mem_problem(value: Any, name: str) -> str | None:
    """A memory cap in GB for the whole job, as the sweep's ``mem``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value <= 0:
        return f"{name} must be a positive number of GB (as the sweep's mem), not {value!r}"
    return None
