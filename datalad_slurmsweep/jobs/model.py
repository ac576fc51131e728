"""The domain's types: what a job is, from validation to its record.

A :class:`JobSpec` is a validated job (what to run, which paths it reads and
writes). A :class:`Submission` is one sbatch call, which may carry many jobs
(the points of a sweep's array); its token travels to Slurm as the comment,
and its environment is stored once, not once per job. A :class:`Job` is one
tracked unit: a spec, the submission it went out with, and its id.
"""
from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from ..backends.base import JobId, JobState
from ..backends.sbatch import LogSpec
from ..redact import redact_argv, redact_text
from .container import ContainerRun
from .outputs import reserved
from .retry import Retrying


def new_token() -> str:
    return "dlss-" + uuid.uuid4().hex


def owner_tag() -> str:
    """Which process holds a reservation: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass
class SweepMember:
    """A job's place in a sweep: the (point, case) it runs."""

    root: str  # the sweep's directory, dataset-relative
    name: str
    config: str  # the configuration file, dataset-relative
    point: str
    case: str
    params: dict[str, Any] = field(default_factory=dict)
    run: str = ""  # the slurm-sweep invocation that submitted it

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SweepMember:
        return cls(**data)


@dataclass
class JobSpec:
    """A validated job, ready to submit. Paths are dataset-relative."""

    sbatch_argv: list[str]
    pwd: str
    outputs: list[str]
    logs: LogSpec
    inputs: list[str] = field(default_factory=list)
    extra_inputs: list[str] = field(default_factory=list)
    array_tasks: list[int] | None = None
    message: str | None = None
    chain: list[str] = field(default_factory=list)
    sweep: SweepMember | None = None
    expand: str | None = None  # inputs | outputs | both: record the expanded lists
    submit_argv: list[str] | None = None  # the call with its placeholders filled in
    commit_id: str | None = None  # the dataset's HEAD when the job was submitted

    @property
    def argv_to_submit(self) -> list[str]:
        return self.submit_argv or self.sbatch_argv
    container: ContainerRun | None = None  # runs inside it (jobs/runenv.py)
    alt_dir: str | None = None  # runs below it, outside the dataset (jobs/altdir.py)
    # A sweep point packed with others into one array task (n_workers): its
    # slot among them; the task writes its outcome (jobs/outcomes.py).
    chunk_slot: int | None = None
    retry: Retrying | None = None  # a sweep point's retry policy and attempts (jobs/retry.py)

    def to_json(self) -> dict[str, Any]:
        """The spec as stored on disk: secrets in the command line and the
        message redacted (the raw command is used only in memory, to submit)."""
        # Shallow: asdict's deep copy was most of reserving a 10,000-point
        # sweep (the spec is encoded for the journal and for the store).
        data = dict(vars(self))
        data["logs"] = asdict(self.logs)
        data["container"] = asdict(self.container) if self.container else None
        data["sweep"] = self.sweep.to_json() if self.sweep else None
        data["retry"] = asdict(self.retry) if self.retry else None
        data["sbatch_argv"] = redact_argv(self.sbatch_argv)
        if self.submit_argv:
            data["submit_argv"] = redact_argv(self.submit_argv)
        data["message"] = redact_text(self.message) if self.message else self.message
        if self.container and self.container.cmdexec:
            data["container"]["cmdexec"] = redact_text(self.container.cmdexec)
        return data

    @property
    def reserved_paths(self) -> list[str]:
        return reserved(self.outputs, literal=self.sweep is not None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        data = dict(data)
        data["logs"] = LogSpec(**data["logs"])
        data["sweep"] = SweepMember.from_json(data["sweep"]) if data.get("sweep") else None
        data["container"] = ContainerRun(**data["container"]) if data.get("container") else None
        data["retry"] = Retrying.from_json(data["retry"]) if data.get("retry") else None
        return cls(**data)


@dataclass
class Submission:
    """One sbatch call. ``token`` is its Slurm comment, so an interrupted
    submission can be found again; ``environment`` is already redacted."""

    argv: list[str]
    pwd: str
    backend: str
    environment: dict[str, str] = field(default_factory=dict)
    token: str = field(default_factory=new_token)
    user: str = field(default_factory=current_user)
    owner: str = field(default_factory=owner_tag)
    submitted_at: float = field(default_factory=time.time)
    block: int = 0  # submissions of a later block wait for the earlier ones
    job_id: JobId | None = None


@dataclass
class Job:
    """One tracked job: a plain job, or one task (``task``) of an array."""

    spec: JobSpec
    submission: Submission
    token: str = field(default_factory=new_token)
    task: int | None = None  # the array task this job is, within its submission
    job_id: JobId | None = None
    status: str = "submitting"  # submitting | open | committing
    commit: str | None = None

    @property
    def outputs(self) -> list[str]:
        return self.spec.outputs

    @property
    def backend(self) -> str:
        return self.submission.backend

    @property
    def sweep(self) -> SweepMember | None:
        return self.spec.sweep

    @property
    def submitted_at(self) -> float:
        return self.submission.submitted_at

    def id_for(self, base: JobId) -> JobId:
        """This job's id once its submission became ``base``."""
        return base.with_task(self.task, self.spec.chunk_slot)


@dataclass
class Outcome:
    """What happened to one job; a command turns it into a result record."""

    job: Job
    status: str  # ok | impossible | error | notneeded
    message: str
    state: JobState | None = None
    commit: str | None = None
    branch: str | None = None  # slurm-finish --branches: the branch holding ``commit``
    resubmitted: bool = False  # ``job`` is a new attempt of a failed point (jobs/retry.py)
