"""Settling what an interrupted command left behind.

``committing`` jobs whose commit reached the history leave the store; the
others are open again. ``submitting`` reservations whose process is gone are
looked up by their submission's token (the Slurm comment), in one look-up
per backend: found jobs are tracked, the others dropped. When the look-up
itself fails, the reservations are kept: unknown is not "never submitted".
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..backends.base import Backend, JobId
from ..errors import SlurmsweepError
from ..process import pid_alive
from ..provenance.branches import reachable
from ..provenance.commits import remove_stale_build_refs
from ..provenance.index import remove_stale_indexes
from .model import Job, Outcome, Submission, owner_tag
from .outcomes import forget_outcomes
from .store import JobStore


def _settle_commits(ds_root: Path, store: JobStore) -> Iterator[Outcome]:
    committing = store.jobs(status="committing")
    retried = store.jobs(status="retry-committing")
    # --branches leaves a commit on its own branch, not in HEAD's history.
    found = reachable(ds_root, [j.commit for j in committing + retried if j.commit])
    done = [j for j in committing if j.commit in found]
    store.remove([j.token for j in done])
    forget_outcomes(ds_root, done)
    # A committed failed point still owes its next attempt (retry_pending).
    store.mark_retrying([j.token for j in retried if j.commit in found])
    store.reopen([j.token for j in committing + retried if j.commit not in found])
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
        if owner_host == host and pid.isdigit() and pid_alive(int(pid)):
            continue  # a schedule is in progress right now
        found.setdefault(sub.token, (sub, []))[1].append(job)
    return found


def reconcile(ds_root: Path, store: JobStore, backend_for: Callable[[str], Backend], *,
              drop_unknown: bool = False) -> Iterator[Outcome]:
    """Settle an interrupted run (see the module doc). ``backend_for(name)``
    gives the backend a reservation was made for. ``drop_unknown`` forgets
    reservations the backend can neither find nor rule out (the user
    decided, with --close-failed-jobs)."""
    remove_stale_build_refs(ds_root)
    remove_stale_indexes(ds_root)
    yield from _settle_commits(ds_root, store)
    pending = _interrupted(store)
    for name in sorted({sub.backend for sub, _ in pending.values()}):
        wanted = {t: sub.submitted_at for t, (sub, _) in pending.items()
                  if sub.backend == name}
        try:
            lookup = backend_for(name).find_by_comments(wanted)
        except SlurmsweepError as exc:
            for token in wanted:
                for job in pending.pop(token)[1]:
                    yield Outcome(job, "error", "could not ask the backend whether an "
                                  f"interrupted schedule submitted {_what(job)} ({exc}); "
                                  "its reservation is kept: run slurm-finish again later")
            continue
        for token in wanted:
            sub, jobs = pending.pop(token)
            yield from _settle(store, sub, jobs, lookup.found.get(token),
                               token in lookup.unknown and not drop_unknown)


def _what(job: Job) -> str:
    return f"the job writing {', '.join(job.outputs[:3])}"


def _settle(store: JobStore, sub: Submission, jobs: list[Job], found: list[str] | None,
            unknown: bool) -> Iterator[Outcome]:
    if found:
        store.mark_submitted(sub, jobs, JobId.parse(found[0]))
        for job in jobs:
            yield Outcome(job, "ok", f"job {job.job_id} was submitted by an "
                          "interrupted schedule and is tracked now")
    elif unknown:
        for job in jobs:
            yield Outcome(job, "impossible", "an interrupted schedule may have submitted "
                          f"{_what(job)}, and Slurm can no longer tell (it keeps jobs for "
                          "MinJobAge, and comments in accounting only with "
                          "AccountingStoreFlags=job_comment); the reservation is kept. "
                          "If no such job ran, drop it with slurm-finish --close-failed-jobs")
    else:
        store.remove([j.token for j in jobs])
        for job in jobs:
            yield Outcome(job, "notneeded", "dropped the reservation of an "
                          "interrupted schedule that submitted nothing")
