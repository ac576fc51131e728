"""Rebuilding lost open jobs from the journal and the scheduler.

A journalled submission the store lacks is put back when the backend finds
its token (as open, with the id the backend has) or cannot rule it out (as
``submitting``, for reconcile to keep reporting); it is dropped when the
backend knows it was never submitted. Jobs whose id already has a run record
in history are not put back: they were finished before the store was lost.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from ..backends.base import Backend, JobId
from ..errors import OutputConflictError, RecordError, StoreError
from ..provenance.git import messages
from ..provenance.record import SUBJECT_TAG, parse_record
from ..provenance.tables import inflate
from .model import Job, Outcome
from .store import _JOB_COLUMNS, JobStore, _job

lgr = logging.getLogger("datalad.slurmsweep.recover")


def missing_submissions(store: JobStore) -> set[str]:
    """Journalled submissions the store lost."""
    return store.lost_submissions()


def _recorded_ids(root: Path) -> set[str]:
    records = []
    for sha, message in messages(root, "-F", f"--grep={SUBJECT_TAG}"):
        try:
            parsed = parse_record(message)
        except RecordError:
            continue
        if parsed:
            records.append((sha, parsed))
    found: set[str] = set()
    for _, parsed in inflate(root, records, skip_damaged=True):
        found.add(str(parsed.record.get("slurm_job_id")))
        found.update(str(p.get("slurm_job_id")) for p in parsed.record.get("points") or [])
    return found


def recover(root: Path, store: JobStore,
            backend_for: Callable[[str], Backend]) -> Iterator[Outcome]:
    """Put journalled submissions the store lost back into it; damaged rows
    are dropped first, whole submissions at a time, and restored likewise."""
    dropped = drop_damaged(store)
    if dropped:
        lgr.warning("dropped %d damaged submission(s) from the job store %s to restore "
                    "them from the journal", dropped, store.path)
    lost = {t: store.journal.read(t) for t in missing_submissions(store)}
    lost = {t: jobs for t, jobs in lost.items() if jobs}
    if not lost:
        return
    recorded = _recorded_ids(root)
    for name in sorted({jobs[0].backend for jobs in lost.values()}):
        wanted = {t: jobs[0].submitted_at for t, jobs in lost.items() if jobs[0].backend == name}
        lookup = backend_for(name).find_by_comments(wanted)
        for token in wanted:
            yield from _restore(store, lost[token], lookup.found.get(token),
                                token in lookup.unknown, recorded)


def _restore(store: JobStore, jobs: list[Job], found: list[str] | None, unknown: bool,
             recorded: set[str]) -> Iterator[Outcome]:
    sub = jobs[0].submission
    if not found and not unknown:
        store.journal.remove({sub.token})
        for job in jobs:
            yield Outcome(job, "notneeded", "the journal's submission was never "
                          "submitted; nothing to recover")
        return
    base = JobId.parse(found[0]) if found else None
    keep = [j for j in jobs if base is None or str(j.id_for(base)) not in recorded]
    for job in jobs:
        if job not in keep:
            yield Outcome(job, "notneeded", f"job {job.id_for(base)} already has a run "
                          "record; not recovered")
    if not keep:
        store.journal.remove({sub.token})
        return
    try:
        store.reserve_many(keep)
    except OutputConflictError as exc:
        for job in keep:
            yield Outcome(job, "error", f"cannot recover a job writing {job.outputs}: {exc}")
        return
    if base is not None:
        store.mark_submitted(sub, keep, base)
    for job in keep:
        yield Outcome(job, "ok", f"recovered job {job.job_id} from the journal"
                      if base else "recovered the reservation of a submission Slurm cannot "
                      "account for; slurm-finish keeps reporting it")


def drop_damaged(store: JobStore) -> int:
    """Delete the submissions a damaged row belongs to, whole, so that
    --recover restores them from the journal; returns how many."""
    try:
        submissions = store._submissions()
    except StoreError:
        submissions = {}
    bad: set[str] = set()
    rows = store.conn.execute(
        f"SELECT {','.join(f'[{c}]' for c in _JOB_COLUMNS)} FROM jobs").fetchall()
    for row in rows:
        data = dict(zip(_JOB_COLUMNS, row, strict=True))
        try:
            _job(store.path, data, submissions)
        except StoreError:
            bad.add(data["submission"])
    bad |= {r[0] for r in store.conn.execute("SELECT token FROM submissions")} - set(submissions)
    if bad:
        marks = ",".join("?" * len(bad))
        with store.transaction():
            store.conn.execute("DELETE FROM outputs WHERE token IN (SELECT token FROM jobs "
                              f"WHERE submission IN ({marks}))", list(bad))
            store.conn.execute(f"DELETE FROM jobs WHERE submission IN ({marks})", list(bad))
            store.conn.execute(f"DELETE FROM submissions WHERE token IN ({marks})",
                              list(bad))
    return len(bad)
