"""What the store says about sweeps without decoding a job's spec.

``slurm-finish --list-open-jobs`` counts per sweep and per case from one
store query and one status query per backend for whole arrays, so 100 000
open points cost a summary line, not 100 000 job objects and result
records; planning a sweep again asks for its reserved outputs the same way."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..backends.base import Backend, JobId
from .store import JobStore

SUBMITTING = "SUBMITTING"


@dataclass
class SweepRow:
    """One sweep job as ``--list-open-jobs`` counts it."""

    sweep: str
    case: str | None
    backend: str
    array_id: str | None  # the submission's job id (None while submitting)
    task: int | None
    submitted_at: float


def open_count(store: JobStore, sweep: str) -> int:
    """How many jobs of ``sweep`` the store still holds."""
    return store.conn.execute("SELECT count(*) FROM jobs WHERE sweep = ?",
                              (sweep,)).fetchone()[0]


def sweep_outputs(store: JobStore, sweep: str) -> set[str]:
    """The output paths the open jobs of ``sweep`` reserve (a sweep's
    outputs are literal, so these are its points' output directories)."""
    return {r[0] for r in store.conn.execute(
        "SELECT o.path FROM outputs o JOIN jobs j ON j.token = o.token WHERE j.sweep = ?",
        (sweep,))}


def sweep_job_ids(store: JobStore, sweep: str) -> list[str]:
    """The job ids of ``sweep``'s jobs that have one, oldest first."""
    return [r[0] for r in store.conn.execute(
        "SELECT job_id FROM jobs WHERE sweep = ? AND job_id IS NOT NULL ORDER BY rowid",
        (sweep,))]


def sweep_members(store: JobStore, status: str) -> list[SweepRow]:
    """The sweep jobs in ``status``, without decoding their specs (SQLite
    reads the case out of the spec's JSON)."""
    rows = store.conn.execute(
        "SELECT j.sweep, json_extract(j.spec, '$.sweep.case'), j.backend, s.job_id, j.task, "
        "s.submitted_at FROM jobs j JOIN submissions s ON s.token = j.submission "
        "WHERE j.status = ? AND j.sweep IS NOT NULL ORDER BY s.submitted_at, j.rowid",
        (status,))
    return [SweepRow(*row) for row in rows]


@dataclass
class SweepSummary:
    sweep: str
    submitted_at: float
    counts: Counter = field(default_factory=Counter)  # state -> jobs
    cases: dict[str, Counter] = field(default_factory=dict)  # case -> state -> jobs

    @property
    def n_jobs(self) -> int:
        return sum(self.counts.values())

    def add(self, case: str, state: str, n: int, submitted_at: float) -> None:
        self.counts[state] += n
        self.cases.setdefault(case, Counter())[state] += n
        self.submitted_at = min(self.submitted_at, submitted_at)


def _states(backend_for: Callable[[str], Backend], rows: list[SweepRow]) -> list[str]:
    """Each row's state: one query per backend, naming arrays, not tasks."""
    wanted: dict[str, dict[JobId, list[int]]] = {}
    for row in rows:
        if row.task is not None:
            wanted.setdefault(row.backend, {}).setdefault(JobId(row.array_id), []).append(
                row.task)
    by_task: dict[tuple[str, int | None], str] = {}
    for name, arrays in sorted(wanted.items()):
        statuses = backend_for(name).query(list(arrays), arrays)
        for job_id, status in statuses.items():
            for task in status.tasks:
                by_task[(job_id.base, task.task_id)] = task.state.value
    singles = [r for r in rows if r.task is None]
    for name in sorted({r.backend for r in singles}):
        ids = [JobId(r.array_id) for r in singles if r.backend == name]
        for job_id, status in backend_for(name).query(ids).items():
            by_task[(job_id.base, None)] = status.state.value
    return [by_task.get((r.array_id, r.task), "LOST") for r in rows]


def sweep_summaries(store: JobStore, backend_for: Callable[[str], Backend]
                    ) -> list[SweepSummary]:
    """Open and still-submitting sweep jobs, summed per sweep and case."""
    found: dict[str, SweepSummary] = {}

    def add(rows: list[SweepRow], states: list[str]) -> None:
        # Counted as tuples first: a method call per row cost ~1 s per 100,000.
        first: dict[str, float] = {}
        for row in rows:
            first[row.sweep] = min(first.get(row.sweep, row.submitted_at), row.submitted_at)
        tally = Counter((r.sweep, r.case or "", s) for r, s in zip(rows, states, strict=True))
        for (sweep, case, state), n in tally.items():
            summary = found.setdefault(sweep, SweepSummary(sweep, first[sweep]))
            summary.add(case, state, n, first[sweep])

    submitting = sweep_members(store, "submitting")
    add(submitting, [SUBMITTING] * len(submitting))
    rows = sweep_members(store, "open")
    add(rows, _states(backend_for, rows))
    return list(found.values())
