"""The open-jobs store: SQLite in the dataset's git directory.

A job goes through three states here:

``submitting``
    its outputs are reserved; sbatch may or may not have been called. Its
    submission's token is also the job's Slurm comment, so an interrupted
    schedule can be reconciled with what Slurm knows.
``open``
    submitted, with a job id, waiting to be finished.
``committing``
    its run record was written as commit ``commit``, which may or may not
    have reached the branch yet; the next finish checks and either closes the
    job or retries.
``retry-committing`` / ``retrying``
    the same for a failed sweep point its retry policy tries again:
    committing, then committed with its next attempt not yet submitted. The
    row leaves the store in the transaction that reserves that next attempt,
    so a finish killed in between submits it on its next run, once.

A finished (or closed) job is deleted: history, not this store, is the
archive. A submission (one sbatch call, many jobs for a sweep's array) is one
row holding the environment once; it goes when its last job goes.

sqlite-utils creates the schema; the hot path uses the stdlib connection
directly, because importing sqlite-utils imports numpy when it is installed,
about 80 ms of every command-line call. Reserving outputs is one
``BEGIN IMMEDIATE`` transaction holding the overlap check and the insert, so
of N concurrent schedules of the same output exactly one succeeds.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..backends.base import JobId
from ..errors import DamagedStoreError, OutputConflictError, SlurmsweepError, StoreError
from ..provenance.paths import ancestors_and_self
from ..redact import redact_argv
from .journal import Journal
from .model import Job, JobSpec, Submission

lgr = logging.getLogger("datalad.slurmsweep.store")
SCHEMA_VERSION = 2
STORE_NAME = "slurmsweep/jobs.sqlite"

_SUBMISSION_COLUMNS = ("token", "backend", "job_id", "argv", "pwd", "environment", "user",
                       "owner", "submitted_at", "block")
_JOB_COLUMNS = ("token", "submission", "backend", "job_id", "task", "status", "sweep",
                "spec", "commit")


def _submission_row(sub: Submission) -> list:
    return [sub.token, sub.backend, str(sub.job_id) if sub.job_id else None,
            json.dumps(redact_argv(sub.argv)), sub.pwd, json.dumps(sub.environment), sub.user,
            sub.owner, sub.submitted_at, sub.block]


def _job_row(job: Job) -> list:
    return [job.token, job.submission.token, job.backend,
            str(job.job_id) if job.job_id else None, job.task, job.status,
            job.sweep.root if job.sweep else None, json.dumps(job.spec.to_json()), job.commit]


@contextmanager
def _store_errors(path: Path, timeout: float) -> Iterator[None]:
    """SQLite's errors as StoreErrors that say what to do."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise StoreError(
            f"the job store {path} already tracks a job with this id ({exc}): was "
            "the scheduler's (or the local backend's) state reset? Finish or close the "
            "older job first") from None
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreError(
                f"the job store {path} stayed locked by another datalad-slurmsweep "
                f"command for {timeout:.0f} s; run again once it has ended "
                "(the store and its open jobs are intact)") from None
        raise StoreError(f"the job store {path} cannot be used: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise DamagedStoreError(
            f"the job store {path} is damaged ({exc}); its open jobs can be "
            "rebuilt from Slurm with: datalad slurm-finish --recover") from None


class JobStore:
    """Open jobs of one dataset."""

    def __init__(self, path: Path, timeout: float = 60.0):
        self.path = Path(path)
        self.journal = Journal(self.path.parent / "journal")
        self.timeout = timeout
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the job store's directory {self.path.parent}: "
                             f"{exc.strerror}") from None
        for target in (self.path, self.path.parent):
            if target.exists() and not os.access(target, os.W_OK):
                raise StoreError(f"the job store {self.path} is read-only ({target} is not "
                                 "writable); nothing was done. Make it writable again")
        with _store_errors(self.path, self.timeout):
            # Each BEGIN waits a second at a time, so _begin can say it waits.
            self.conn = sqlite3.connect(str(self.path), timeout=min(timeout, 1.0),
                                        isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._ensure_schema()

    @classmethod
    def for_dataset(cls, dot_git: Path) -> JobStore:
        return cls(Path(dot_git) / STORE_NAME)

    def _ensure_schema(self) -> None:
        # The common case, a current store, needs no write lock: reading
        # while another command writes must not wait.
        row = None
        if self.conn.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone():
            row = self.conn.execute(
                "SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row and row[0] == str(SCHEMA_VERSION):
            return
        with self.transaction():
            tables = {r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if "meta" in tables:
                row = self.conn.execute(
                    "SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else None
                if version == 1:
                    from .store_migration import migrate_v1
                    migrate_v1(self.conn, self._create_schema, self._insert)
                    return
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
        db["submissions"].create({c: float if c == "submitted_at" else int if c == "block"
                                  else str for c in _SUBMISSION_COLUMNS}, pk="token")
        db["jobs"].create({c: int if c == "task" else str for c in _JOB_COLUMNS}, pk="token")
        db["jobs"].create_index(["backend", "job_id"], unique=True)
        db["jobs"].create_index(["sweep"])
        db["jobs"].create_index(["submission"])
        db["outputs"].create({"token": str, "path": str})
        db["outputs"].create_index(["path"])
        db["outputs"].create_index(["token"])

    def _insert(self, jobs: list[Job]) -> None:
        submissions = {j.submission.token: j.submission for j in jobs}
        self.conn.executemany(
            f"INSERT OR IGNORE INTO submissions ({','.join(f'[{c}]' for c in _SUBMISSION_COLUMNS)}) "
            f"VALUES ({','.join('?' * len(_SUBMISSION_COLUMNS))})",
            [_submission_row(s) for s in submissions.values()])
        self.conn.executemany(
            f"INSERT INTO jobs ({','.join(f'[{c}]' for c in _JOB_COLUMNS)}) "
            f"VALUES ({','.join('?' * len(_JOB_COLUMNS))})", [_job_row(j) for j in jobs])
        self.conn.executemany("INSERT INTO outputs (token, path) VALUES (?, ?)",
                              [(j.token, p) for j in jobs for p in j.spec.reserved_paths])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it or none of it. Another command's
        transaction is waited for (saying so), up to ``timeout``."""
        with _store_errors(self.path, self.timeout):
            self._begin()
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def _begin(self) -> None:
        deadline = time.monotonic() + self.timeout
        told = False
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                if not told:
                    lgr.info("waiting for another datalad-slurmsweep command to release "
                             "the job store %s", self.path)
                    told = True

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
        self.reserve_many([job])

    def reserve_many(self, jobs: list[Job], replacing: list[str] = ()) -> None:
        """Reserve several jobs at once, all or none. The journal gets its
        copy inside the same write lock, so a reader holding the lock never
        sees a journal entry whose reservation is still being written.
        ``replacing``: jobs (retried points) that leave in the same step."""
        with self.transaction():
            if replacing:
                _delete(self.conn, self.journal, list(replacing))
            tokens = {j.submission.token for j in jobs} - self.submission_tokens()
            self.journal.write([j for j in jobs if j.submission.token in tokens])
            try:
                for job in jobs:
                    clashes = self.conflicts(job.spec.reserved_paths)
                    if clashes:
                        raise OutputConflictError(clashes)
                    self._insert([job])
            except BaseException:
                self.journal.remove(tokens)
                raise

    def lost_submissions(self) -> set[str]:
        """Journalled submissions the store does not hold: a sign that the
        store file was deleted, emptied or damaged."""
        with self.transaction():
            return self.journal.tokens() - self.submission_tokens()

    def submission_tokens(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT token FROM submissions")}

    def mark_submitted(self, submission: Submission, jobs: list[Job], base: JobId) -> None:
        """Record the job id sbatch gave ``submission`` for all its jobs."""
        submission.job_id = base
        with self.transaction():
            self.conn.execute("UPDATE submissions SET job_id = ? WHERE token = ?",
                              (str(base), submission.token))
            self.conn.executemany(
                "UPDATE jobs SET job_id = ?, status = 'open' WHERE token = ?",
                [(str(job.id_for(base)), job.token) for job in jobs])
        for job in jobs:
            job.job_id, job.status = job.id_for(base), "open"

    def mark_committing(self, commits: dict[str, str],
                        retrying: frozenset[str] | set[str] = frozenset()) -> None:
        with self.transaction():
            self.conn.executemany(
                "UPDATE jobs SET status = ?, [commit] = ? WHERE token = ?",
                [("retry-committing" if token in retrying else "committing", sha, token)
                 for token, sha in commits.items()])

    def mark_retrying(self, tokens: list[str]) -> None:
        """Committed failed points whose next attempt is still to submit."""
        with self.transaction():
            self.conn.executemany("UPDATE jobs SET status = 'retrying' WHERE token = ?",
                                  [(t,) for t in tokens])

    def reopen(self, tokens: list[str]) -> None:
        with self.transaction():
            self.conn.executemany(
                "UPDATE jobs SET status = 'open', [commit] = NULL WHERE token = ?",
                [(t,) for t in tokens])

    def remove(self, tokens: list[str]) -> None:
        """Forget these jobs, and submissions left without a job."""
        if not tokens:
            return
        with self.transaction():
            _delete(self.conn, self.journal, tokens)

    def _submissions(self) -> dict[str, Submission]:
        cursor = self.conn.execute(
            f"SELECT {','.join(f'[{c}]' for c in _SUBMISSION_COLUMNS)} FROM submissions")
        found = {}
        for row in cursor:
            data = dict(zip(_SUBMISSION_COLUMNS, row, strict=True))
            try:
                data["argv"] = json.loads(data["argv"])
                data["environment"] = json.loads(data["environment"])
                data["job_id"] = JobId.parse(data["job_id"]) if data["job_id"] else None
                found[data["token"]] = Submission(**data)
            except (ValueError, TypeError, SlurmsweepError) as exc:
                raise StoreError(f"the job store {self.path} holds a damaged submission "
                                 f"({data.get('token')}: {exc!r}); rebuild the open jobs "
                                 "with: datalad slurm-finish --recover") from None
        return found

    def jobs(self, status: str | None = None, job_ids: list[JobId] | None = None,
             sweep: str | None = None, plain: bool = False) -> list[Job]:
        """The jobs asked for (``plain``: only those of no sweep), oldest first."""
        where, args = ["j.sweep IS NULL"] if plain else [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if sweep:
            where.append("sweep = ?")
            args.append(sweep)
        sql = (f"SELECT {','.join(f'j.[{c}]' for c in _JOB_COLUMNS)} FROM jobs j "
               "JOIN submissions s ON s.token = j.submission")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY s.submitted_at, j.rowid"
        rows = self.conn.execute(sql, args).fetchall()
        if not rows:
            return []
        submissions = self._submissions()
        wanted = {str(j) for j in job_ids} if job_ids is not None else None
        found = []
        for row in rows:
            data = dict(zip(_JOB_COLUMNS, row, strict=True))
            if wanted is not None and data["job_id"] not in wanted:
                continue
            found.append(_job(self.path, data, submissions))
        return found

    def __iter__(self) -> Iterator[Job]:
        return iter(self.jobs())


def _job(path: Path, data: dict, submissions: dict[str, Submission]) -> Job:
    try:
        return Job(spec=JobSpec.from_json(json.loads(data["spec"])),
                   submission=submissions[data["submission"]], token=data["token"],
                   task=data["task"], status=data["status"], commit=data["commit"],
                   job_id=JobId.parse(data["job_id"]) if data["job_id"] else None)
    except (ValueError, TypeError, KeyError, SlurmsweepError) as exc:
        raise StoreError(f"the job store {path} holds a damaged row (job "
                         f"{data.get('job_id') or data.get('token')}: {exc!r}); rebuild "
                         "the open jobs with: datalad slurm-finish --recover") from None


def _delete(conn: sqlite3.Connection, journal: Journal, tokens: list[str]) -> None:
    """``JobStore.remove``'s work, inside a transaction of the caller's."""
    for chunk in _chunks(tokens, 500):
        marks = ",".join("?" * len(chunk))
        conn.execute(f"DELETE FROM outputs WHERE token IN ({marks})", chunk)
        conn.execute(f"DELETE FROM jobs WHERE token IN ({marks})", chunk)
    gone = {r[0] for r in conn.execute(
        "SELECT token FROM submissions WHERE token NOT IN "
        "(SELECT DISTINCT submission FROM jobs)")}
    conn.execute("DELETE FROM submissions WHERE token NOT IN "
                 "(SELECT DISTINCT submission FROM jobs)")
    journal.remove(gone)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
