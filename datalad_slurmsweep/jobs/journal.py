"""A second copy of every open submission, so a lost store can be rebuilt.

The store is one SQLite file; a user may delete it, truncate it, or lose
its WAL. Each submission is therefore also written, before sbatch is
called, as ``<git dir>/slurmsweep/journal/<token>.json`` (its jobs' specs
and the redacted environment: what the store holds), and removed once its
last job has left the store. ``slurm-finish --recover`` puts journal
entries the store lacks back into it, asking the backend by the token in
each job's comment whether (and as what) it was submitted.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from ..backends.base import JobId
from ..redact import redact_argv
from .model import Job, JobSpec, Submission


def _submission_json(sub: Submission) -> dict:
    data = asdict(sub)
    data["job_id"] = str(sub.job_id) if sub.job_id else None
    data["argv"] = redact_argv(sub.argv)
    return data


class Journal:
    """The journal directory beside the store file."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)

    def _file(self, token: str) -> Path:
        return self.dir / f"{token}.json"

    def write(self, jobs: list[Job]) -> None:
        """One file per submission of ``jobs``, written atomically."""
        self.dir.mkdir(parents=True, exist_ok=True)
        by_sub: dict[str, list[Job]] = {}
        for job in jobs:
            by_sub.setdefault(job.submission.token, []).append(job)
        for token, members in by_sub.items():
            data = {"submission": _submission_json(members[0].submission),
                    "jobs": [{"token": j.token, "task": j.task, "spec": j.spec.to_json()}
                             for j in members]}
            tmp = self._file(token).with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.replace(tmp, self._file(token))

    def remove(self, tokens: set[str]) -> None:
        for token in tokens:
            self._file(token).unlink(missing_ok=True)

    def tokens(self) -> set[str]:
        if not self.dir.is_dir():
            return set()
        return {p.stem for p in self.dir.glob("dlss-*.json")}

    def read(self, token: str) -> list[Job]:
        """The jobs of one journalled submission (empty if it is unreadable)."""
        try:
            data = json.loads(self._file(token).read_text())
            sub = dict(data["submission"])
            sub["job_id"] = JobId.parse(sub["job_id"]) if sub.get("job_id") else None
            submission = Submission(**sub)
            return [Job(spec=JobSpec.from_json(j["spec"]), submission=submission,
                        token=j["token"], task=j["task"]) for j in data["jobs"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []
