"""Reading a version-1 store (one row per job, environment copied into
each) into the version-2 schema, so that jobs opened by an older
datalad-slurmsweep are finished by this one."""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from ..backends.base import JobId
from ..backends.sbatch import LogSpec
from .model import Job, JobSpec, Submission, SweepMember


def _v1_job(row: dict, submissions: dict[str, Submission]) -> Job:
    extra = json.loads(row["extra"] or "{}")
    comment = extra.get("comment", row["token"])
    sub = submissions.get(comment)
    if sub is None:
        sub = submissions[comment] = Submission(
            argv=json.loads(row["cmd"]), pwd=row["pwd"], backend=row["backend"],
            environment=json.loads(row["environment"] or "{}"), token=comment,
            user=extra.get("user", ""), owner=row["owner"] or "",
            submitted_at=row["submitted_at"])
    sweep = None
    if row["sweep"]:
        sweep = SweepMember(root=row["sweep"], name=extra.get("sweep_name") or row["sweep"],
                            config=extra.get("config") or "", point=extra.get("point") or "",
                            case=extra.get("case") or "", params=extra.get("params") or {},
                            run=extra.get("run") or "")
    spec = JobSpec(
        sbatch_argv=json.loads(row["cmd"]), pwd=row["pwd"], outputs=json.loads(row["outputs"]),
        logs=LogSpec(output=row["log_output"], error=row["log_error"],
                     workdir=row["workdir"], job_name=row["job_name"]),
        inputs=json.loads(row["inputs"]), extra_inputs=json.loads(row["extra_inputs"]),
        array_tasks=json.loads(row["array_tasks"]) if row["array_tasks"] else None,
        message=row["message"], chain=json.loads(row["chain"] or "[]"), sweep=sweep)
    job_id = JobId.parse(row["job_id"]) if row["job_id"] else None
    if job_id is not None and sub.job_id is None:
        sub.job_id = JobId(job_id.base)
    return Job(spec=spec, submission=sub, token=row["token"], task=extra.get("array_task"),
               job_id=job_id, status=row["status"], commit=row["commit"])


def migrate_v1(conn: sqlite3.Connection, create_schema: Callable[[], None],
               insert: Callable[[list[Job]], None]) -> None:
    """Rewrite the tables in place; the caller holds the write transaction."""
    cursor = conn.execute("SELECT * FROM jobs ORDER BY submitted_at, rowid")
    names = [d[0] for d in cursor.description]
    submissions: dict[str, Submission] = {}
    jobs = [_v1_job(dict(zip(names, row, strict=True)), submissions) for row in cursor]
    for table in ("outputs", "jobs", "meta"):
        conn.execute(f"DROP TABLE {table}")
    create_schema()
    insert(jobs)
