"""Slurm job states and how this extension classifies them.

One enum for every backend: the local backend reports the same states as
Slurm, so that finishing, listing and rescheduling never need to know where a
job ran.
"""
from __future__ import annotations

import enum


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
    # Not a Slurm state: the job is unknown to Slurm (purged from the
    # controller's memory and absent from accounting). Never a success.
    LOST = "LOST"

    @classmethod
    def parse(cls, text: str) -> JobState:
        """Parse a state as sacct/squeue/scontrol print it.

        sacct prints ``CANCELLED by 0``; squeue may abbreviate nothing but
        scontrol prints ``JobState=COMPLETED``: callers strip the key.
        Unknown words map to FAILED rather than to success, so a state that a
        newer Slurm invents can never make us commit a broken job silently.
        """
        word = text.strip().split(" ", 1)[0].rstrip("+").upper()
        try:
            return cls(word)
        except ValueError:
            return cls.FAILED

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
