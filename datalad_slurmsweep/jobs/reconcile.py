"""Settling what an interrupted command left behind.

``committing`` jobs whose commit reached the history leave the store; the
others are open again. ``submitting`` reservations whose process is gone are
looked up by their submission's token (the Slurm comment), in one look-up
per backend: found jobs are tracked, the others dropped. When the look-up
itself fails, the reservations are kept: unknown is not "never submitted".
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..backends.base import Backend, JobId
from ..errors import SlurmsweepError
from ..provenance.git import is_ancestor
from .model import Job, Outcome, Submission, owner_tag
from .store import JobStore


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _settle_commits(ds_root: Path, store: JobStore) -> Iterator[Outcome]:
    committing = store.jobs(status="committing")
    done = [j for j in committing if is_ancestor(ds_root, j.commit)]
    store.remove([j.token for j in done])
    store.reopen([j.token for j in committing if j not in done])
    for job in done:
        yield Outcome(job, "ok", f"job {job.job_id} was already committed as "
                      f"{job.commit[:10]} by an interrupted run", commit=job.commit)


def _interrupted(store: JobStore) -> dict[str, tuple[Submission, list[Job]]]:
    """Reservations of submissions whose process is gone, per token."""
    host = owner_tag().split(":")[0]
    found: dict[str, tuple[Submission, list[Job]]] = {}
    for job in store.jobs(status="submitting"):
        sub = job.submission
        owner_host, _, pid = sub.owner.partition(":")
        if owner_host == host and pid.isdigit() and _alive(int(pid)):
            continue  # a schedule is in progress right now
        found.setdefault(sub.token, (sub, []))[1].append(job)
    return found


def reconcile(ds_root: Path, store: JobStore,
              backend_for: Callable[[str], Backend]) -> Iterator[Outcome]:
    """Settle an interrupted run (see the module doc). ``backend_for(name)``
    gives the backend a reservation was made for."""
    yield from _settle_commits(ds_root, store)
    pending = _interrupted(store)
    known: dict[str, list[str]] = {}
    for name in {sub.backend for sub, _ in pending.values()}:
        wanted = {t for t, (sub, _) in pending.items() if sub.backend == name}
        try:
            known.update(backend_for(name).find_by_comments(wanted))
        except SlurmsweepError:
            for token in wanted:
                pending.pop(token)
    for token, (sub, jobs) in pending.items():
        found = known.get(token)
        if found:
            store.mark_submitted(sub, jobs, JobId.parse(found[0]))
            for job in jobs:
                yield Outcome(job, "ok", f"job {job.job_id} was submitted by an "
                              "interrupted schedule and is tracked now")
        else:
            store.remove([j.token for j in jobs])
            for job in jobs:
                yield Outcome(job, "notneeded", "dropped the reservation of an "
                              "interrupted schedule that submitted nothing")
