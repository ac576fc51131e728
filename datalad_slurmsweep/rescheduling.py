"""Finding run records in history and turning them back into jobs."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .record import ParsedRecord, RecordError, parse_record


class RescheduleError(ValueError):
    """The revision cannot be rescheduled; nothing was submitted."""


@dataclass
class RecordedRun:
    commit: str
    parsed: ParsedRecord

    def ds_relative(self, paths: list[str]) -> list[str]:
        """Record paths are relative to its pwd; make them dataset-relative
        once, so that replaying never prefixes them again."""
        pwd = self.parsed.record.get("pwd") or "."
        found = []
        for p in paths:
            joined = PurePosixPath(pwd, p) if pwd != "." else PurePosixPath(p)
            found.append(_normalise(str(joined)))
        return found


def _normalise(path: str) -> str:
    import os
    norm = os.path.normpath(path)
    if norm.startswith(".."):
        raise RescheduleError(f"recorded path {path} points outside the dataset")
    return PurePosixPath(norm).as_posix()


def _git(root: Path, args: list[str]) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RescheduleError(proc.stderr.strip() or f"git {args[0]} failed")
    return proc.stdout


def find_records(root: Path, revision: str | None, since: str | None) -> list[RecordedRun]:
    """Run records of ``revision`` (default HEAD), or of ``since..revision``
    oldest first. A single named revision without a record is an error."""
    revision = revision or "HEAD"
    try:
        sha = _git(root, ["rev-parse", "--verify", f"{revision}^{{commit}}"]).strip()
    except RescheduleError:
        raise RescheduleError(f"{revision} is not a commit of this dataset") from None
    if since is None:
        commits = [sha]
    else:
        spec = sha if since == "" else f"{since}..{sha}"
        commits = _git(root, ["rev-list", "--reverse", "--no-merges", spec]).split()
    runs = []
    for commit in commits:
        message = _git(root, ["log", "-1", "--format=%B", commit])
        try:
            parsed = parse_record(message)
        except RecordError as exc:
            raise RescheduleError(f"commit {commit[:10]}: {exc}") from None
        if parsed is None:
            if since is None:
                raise RescheduleError(
                    f"commit {commit[:10]} ({revision}) has no [DATALAD SLURM RUN] record")
            continue
        runs.append(RecordedRun(commit=commit, parsed=parsed))
    return runs


def sweep_points(run: RecordedRun, *, only_failed: bool, with_failed: bool) -> list[dict]:
    """The points of a sweep record to replay."""
    points = run.parsed.record.get("points") or []
    if only_failed:
        return [p for p in points if p.get("state") != "COMPLETED"]
    if with_failed:
        return list(points)
    return [p for p in points if p.get("state") == "COMPLETED"]


def changed_since(root: Path, commit: str, paths: list[str]) -> list[str]:
    """Which of ``paths`` differ between ``commit`` and the work tree."""
    proc = subprocess.run(["git", "diff", "--name-only", "-z", commit, "--",
                           *[f":(literal){p}" for p in paths]],
                          cwd=root, capture_output=True, check=True)
    return [p.decode() for p in proc.stdout.split(b"\0") if p]


def restore_inputs(root: Path, commit: str, paths: list[str], use_annex: bool) -> str | None:
    """Bring ``paths`` back to their state in ``commit`` and commit that, so the
    replayed jobs run on committed inputs. None if nothing had changed."""
    from .commits import PlannedCommit, advance, build_commits, head_state
    if not changed_since(root, commit, paths):
        return None
    _git(root, ["checkout", commit, "--", *paths])
    ref, head = head_state(root)
    shas = build_commits(root, [PlannedCommit(
        "restore", paths,
        f"[DATALAD SLURM SWEEP] restore the inputs of {commit[:10]} to replay it\n")],
        head, use_annex)
    advance(root, ref, shas["restore"], head)
    return shas["restore"]
