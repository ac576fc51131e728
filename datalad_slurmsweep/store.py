"""The open-jobs store: SQLite in the dataset's git directory.

A job goes through three states here:

``submitting``
    its outputs are reserved; sbatch may or may not have been called. The row
    carries a token that is also the job's Slurm comment, so an interrupted
    schedule can be reconciled with what Slurm knows.
``open``
    submitted, with a job id, waiting to be finished.
``committing``
    its run record was written as commit ``commit``, which may or may not
    have reached the branch yet; the next finish checks and either closes the
    job or retries.

A finished (or closed) job is deleted: history, not this store, is the
archive. sqlite-utils creates the schema; the hot path uses the stdlib
connection directly, because importing sqlite-utils imports numpy when it is
installed, about 80 ms of every command-line call. Reserving outputs is one ``BEGIN IMMEDIATE`` transaction holding
the overlap check and the insert, so of N concurrent schedules of the same
output exactly one succeeds.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .paths import ancestors_and_self

SCHEMA_VERSION = 1
STORE_NAME = "slurmsweep/jobs.sqlite"

_COLUMNS = ("token", "job_id", "backend", "status", "submitted_at", "cmd", "pwd",
            "inputs", "extra_inputs", "outputs", "message", "chain", "log_output",
            "log_error", "workdir", "job_name", "array_tasks", "environment", "sweep",
            "extra", "commit", "owner")
_COLUMN_TYPES = {"submitted_at": float}
_JSON_COLUMNS = ("cmd", "inputs", "extra_inputs", "outputs", "array_tasks",
                 "chain", "environment", "extra")


class StoreError(RuntimeError):
    """The store cannot be used; the message names its file."""


class OutputConflictError(ValueError):
    """Declared outputs overlap the outputs of an open job."""


@dataclass
class Job:
    token: str
    cmd: list[str]
    pwd: str
    outputs: list[str]
    inputs: list[str] = field(default_factory=list)
    extra_inputs: list[str] = field(default_factory=list)
    job_id: str | None = None
    backend: str = "slurm"
    status: str = "submitting"
    submitted_at: float = field(default_factory=time.time)
    message: str | None = None
    chain: list[str] = field(default_factory=list)
    log_output: str = ""
    log_error: str | None = None
    workdir: str = "."
    job_name: str = ""
    array_tasks: list[int] | None = None
    environment: dict = field(default_factory=dict)
    sweep: str | None = None
    extra: dict = field(default_factory=dict)
    commit: str | None = None
    owner: str = ""

    def row(self) -> dict:
        row = dict(self.__dict__)
        for col in _JSON_COLUMNS:
            row[col] = json.dumps(row[col])
        return row

    @classmethod
    def from_row(cls, row: dict) -> Job:
        data = dict(row)
        for col in _JSON_COLUMNS:
            data[col] = json.loads(data[col]) if data[col] is not None else None
        return cls(**data)


def new_token() -> str:
    return "dlss-" + uuid.uuid4().hex


def owner_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobStore:
    """Open jobs of one dataset."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._ensure_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"the job store {self.path} is unreadable ({exc}); move it away "
                "to start with an empty store (open jobs in it are then "
                "forgotten)") from exc

    @classmethod
    def for_dataset(cls, dot_git: Path) -> JobStore:
        return cls(Path(dot_git) / STORE_NAME)

    def _ensure_schema(self) -> None:
        with self.transaction():
            tables = {r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if "meta" in tables:
                row = self.conn.execute(
                    "SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else None
                if version != SCHEMA_VERSION:
                    raise StoreError(
                        f"the job store {self.path} has schema version {version}, "
                        f"this datalad-slurmsweep reads version {SCHEMA_VERSION}: "
                        "upgrade datalad-slurmsweep")
                return
            if tables:
                raise StoreError(f"{self.path} is not a datalad-slurmsweep job store")
            self._create_schema()

    def _create_schema(self) -> None:
        import sqlite_utils
        db = sqlite_utils.Database(self.conn)
        db["meta"].create({"key": str, "value": str}, pk="key")
        db["meta"].insert({"key": "schema_version", "value": str(SCHEMA_VERSION)})
        db["jobs"].create({name: _COLUMN_TYPES.get(name, str) for name in _COLUMNS},
                          pk="token")
        db["jobs"].create_index(["backend", "job_id"], unique=True)
        db["jobs"].create_index(["sweep"])
        db["outputs"].create({"token": str, "path": str})
        db["outputs"].create_index(["path"])
        db["outputs"].create_index(["token"])

    def _insert(self, job: Job) -> None:
        row = job.row()
        marks = ",".join("?" * len(_COLUMNS))
        self.conn.execute(f"INSERT INTO jobs ({','.join(f'[{c}]' for c in _COLUMNS)}) "
                          f"VALUES ({marks})", [row[c] for c in _COLUMNS])
        self.conn.executemany("INSERT INTO outputs (token, path) VALUES (?, ?)",
                              [(job.token, p) for p in job.outputs])

    class _Tx:
        def __init__(self, conn: sqlite3.Connection):
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type, exc, tb):
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            return False

    def transaction(self) -> _Tx:
        return self._Tx(self.conn)

    def conflicts(self, outputs: list[str]) -> list[tuple[str, str, str | None]]:
        """(new path, open job's path, open job's id) for every overlap."""
        found = []
        for path in outputs:
            holders = ancestors_and_self(path)
            marks = ",".join("?" * len(holders))
            # Descendants of ``path``: between 'path/' and 'path0' ('0' sorts
            # right after '/'), which the index on path answers directly.
            lo, hi = (path + "/", path + "0") if path != "." else ("", "\uffff")
            rows = self.conn.execute(
                f"SELECT o.path, j.job_id FROM outputs o JOIN jobs j ON j.token=o.token "
                f"WHERE o.path IN ({marks}) OR (o.path >= ? AND o.path < ?)",
                [*holders, lo, hi]).fetchall()
            found.extend((path, held, job_id) for held, job_id in rows)
        return found

    def reserve(self, job: Job) -> None:
        """Insert ``job`` unless its outputs overlap an open job's (atomic)."""
        with self.transaction():
            clashes = self.conflicts(job.outputs)
            if clashes:
                raise OutputConflictError(clashes)
            self._insert(job)

    def reserve_many(self, jobs: list[Job]) -> None:
        """Reserve several jobs at once, all or none."""
        with self.transaction():
            for job in jobs:
                clashes = self.conflicts(job.outputs)
                if clashes:
                    raise OutputConflictError(clashes)
                self._insert(job)

    def mark_submitted(self, token: str, job_id: str) -> None:
        self.mark_submitted_many({token: job_id})

    def mark_submitted_many(self, ids: dict[str, str]) -> None:
        """Record the job ids of many reservations in one transaction."""
        with self.transaction():
            self.conn.executemany(
                "UPDATE jobs SET job_id = ?, status = 'open' WHERE token = ?",
                [(job_id, token) for token, job_id in ids.items()])

    def mark_committing(self, commits: dict[str, str]) -> None:
        with self.transaction():
            self.conn.executemany(
                "UPDATE jobs SET status = 'committing', [commit] = ? WHERE token = ?",
                [(sha, token) for token, sha in commits.items()])

    def reopen(self, tokens: list[str]) -> None:
        with self.transaction():
            self.conn.executemany(
                "UPDATE jobs SET status = 'open', [commit] = NULL WHERE token = ?",
                [(t,) for t in tokens])

    def remove(self, tokens: list[str]) -> None:
        if not tokens:
            return
        with self.transaction():
            for chunk in _chunks(tokens, 500):
                marks = ",".join("?" * len(chunk))
                self.conn.execute(f"DELETE FROM outputs WHERE token IN ({marks})", chunk)
                self.conn.execute(f"DELETE FROM jobs WHERE token IN ({marks})", chunk)

    def jobs(self, status: str | None = None, job_ids: list[str] | None = None,
             sweep: str | None = None) -> list[Job]:
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if sweep:
            where.append("sweep = ?")
            args.append(sweep)
        sql = "SELECT * FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY submitted_at, rowid"
        cursor = self.conn.execute(sql, args)
        names = [d[0] for d in cursor.description]
        found = [Job.from_row(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
        if job_ids is not None:
            wanted = set(job_ids)
            found = [j for j in found if j.job_id in wanted]
        return found

    def __iter__(self) -> Iterator[Job]:
        return iter(self.jobs())


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
