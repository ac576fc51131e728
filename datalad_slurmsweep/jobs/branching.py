"""``slurm-finish --branches``/``--octopus``: which branch each commit goes on.

Names follow datalad-slurm: ``slurm-job-branch-<job id>`` for a single job.
The points of one sweep that finish together share one record, so one
commit and one branch: ``slurm-sweep-branch-<sweep name>-<first job id>``
(a job id is unique on a cluster, so the name is too).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.base import JobStatus
from ..provenance.branches import commit_on_branches, safe_branch_name
from ..provenance.commits import PlannedCommit
from ..provenance.committing import CommitResult
from .model import Job


@dataclass
class Branching:
    """What --branches asked for, and what it did."""

    octopus: bool = False
    names: dict[str, str] = field(default_factory=dict)  # plan key -> branch
    merge: str | None = None  # the octopus merge commit


def _sort_key(base: str) -> tuple[int, str]:
    return (int(base), base) if base.isdigit() else (1 << 62, base)


def branch_name(jobs: list[Job]) -> str:
    first = jobs[0]
    if first.sweep is None:
        return f"slurm-job-branch-{safe_branch_name(str(first.job_id))}"
    base = min((j.job_id.base for j in jobs), key=_sort_key)
    sweep = safe_branch_name(first.sweep.name or first.sweep.root)
    return f"slurm-sweep-branch-{sweep}-{safe_branch_name(base)}"


def commit_branches(ds_root: Path, planned: list[PlannedCommit], keys: dict[str, str],
                    items: list[tuple[Job, JobStatus]], use_annex: bool,
                    branching: Branching, *,
                    before_move: Callable[[dict[str, str]], None]) -> CommitResult:
    """Commit each plan on its own branch (``keys``: job token -> plan key)."""
    members: dict[str, list[Job]] = {}
    for job, _ in items:
        members.setdefault(keys[job.token], []).append(job)
    branching.names = {key: branch_name(jobs) for key, jobs in members.items()}
    result, branching.merge = commit_on_branches(
        ds_root, planned, branching.names, use_annex, octopus=branching.octopus,
        before_move=before_move)
    return result
