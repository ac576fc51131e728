"""Asking the backends how jobs stand: one query per backend, and waiting
with backoff until they have all ended."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from datalad.log import log_progress

from ..backends.base import Backend, JobId, JobStatus
from ..errors import WaitTimeout
from .model import Job

lgr = logging.getLogger("datalad.slurmsweep.wait")


def query_all(backend_for: Callable[[str], Backend], jobs: list[Job]) -> dict[JobId, JobStatus]:
    """One status query per backend for all ``jobs``."""
    by_backend: dict[str, list[Job]] = {}
    for job in jobs:
        by_backend.setdefault(job.backend, []).append(job)
    statuses: dict[JobId, JobStatus] = {}
    for name, group in sorted(by_backend.items()):
        statuses.update(backend_for(name).query(
            [j.job_id for j in group], {j.job_id: j.spec.array_tasks for j in group}))
    return statuses


def wait_for(backend_for: Callable[[str], Backend], jobs: list[Job],
             timeout: float) -> dict[JobId, JobStatus]:
    """Poll with backoff until every job has ended; the last statuses.
    Raises WaitTimeout (the jobs stay open) when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    delay = 1.0
    pid = f"slurm-finish-wait-{id(jobs)}"
    log_progress(lgr.info, pid, "Waiting for %d jobs", len(jobs),
                 total=len(jobs), label="Waiting", unit=" jobs")
    try:
        while True:
            statuses = query_all(backend_for, jobs)
            done = sum(1 for s in statuses.values() if s.state.is_terminal)
            log_progress(lgr.info, pid, "%d of %d jobs ended", done, len(jobs),
                         update=done, total=len(jobs))
            if done == len(jobs):
                return statuses
            if time.monotonic() + delay > deadline:
                raise WaitTimeout(
                    f"{len(jobs) - done} jobs still running after {timeout:.0f} s "
                    "(--wait-timeout); they stay open")
            time.sleep(delay)
            delay = min(delay * 1.5, 30.0)
    finally:
        log_progress(lgr.info, pid, "Done waiting")
