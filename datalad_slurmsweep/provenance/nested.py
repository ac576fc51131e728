"""Committing jobs whose paths lie in subdatasets, as ``datalad save -r`` would.

Each plan's paths are split by the dataset that holds them. The datasets
commit deepest first, each in one :func:`commit_plans` pass for all jobs
that touch it; a parent then records its children's new states (gitlinks)
in the same job's commit. The top dataset's commit carries the run record,
and only it is noted in the job store: a subdataset commit is content, not
a record. After an interruption, a rerun finds a subdataset already holding
a job's content and writes no second commit there (``skip_unchanged``).

A job that fails in any dataset is dropped from the datasets above it, so
it stays open, and every other job still commits.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..crashpoints import crashpoint
from .commits import PlannedCommit
from .committing import CommitResult, commit_plans
from .datasets import TOP, Layout, depth_first, is_annexed, local, read_layout
from .index import remove_stale_indexes

Split = dict[str, dict[str, list[str]]]  # dataset -> plan key -> local paths


def _split(layout: Layout, planned: list[PlannedCommit]) -> Split:
    split: Split = {}
    for plan in planned:
        for path in plan.paths:
            owner = layout.owner(path)
            split.setdefault(owner, {}).setdefault(plan.key, []).append(local(path, owner))
            # A directory output holding subdatasets: they are the job's too.
            for inner in layout.below(path):
                split.setdefault(inner, {}).setdefault(plan.key, []).append(TOP)
    return split


def _with_parents(layout: Layout, roots: set[str]) -> set[str]:
    found = {TOP}
    for root in roots:
        while root != TOP and root not in found:
            found.add(root)
            root = layout.parent(root)
    return found


def _sub_message(message: str, root: str) -> str:
    subject = message.split("\n", 1)[0].replace("[DATALAD SLURM RUN] ", "", 1)
    return (f"Outputs of {subject}\n\nWhat this job wrote into the subdataset {root}. "
            "The run record is in the commit of the superdataset that records this "
            "state of the subdataset.\n")


def commit_nested(top: Path, planned: list[PlannedCommit], use_annex: bool, *,
                  before_move: Callable[[dict[str, str]], None] | None = None,
                  layout: Layout | None = None) -> CommitResult:
    """Commit ``planned`` (paths relative to ``top``) across subdatasets;
    the shas returned are the top dataset's."""
    layout = layout if layout is not None else read_layout(top)
    if not layout.installed:
        return commit_plans(top, planned, use_annex, before_move=before_move)
    split = _split(layout, planned)
    datasets = depth_first(_with_parents(layout, set(split)))
    failed: dict[str, str] = {}
    shas: dict[str, dict[str, str]] = {}
    for root in datasets:
        if root == TOP:
            crashpoint("subdatasets")
        children = [c for c in datasets if c != TOP and c != root and layout.parent(c) == root]
        plans = []
        for plan in planned:
            if plan.key in failed:
                continue
            links = {local(c, root): shas[c][plan.key] for c in children
                     if plan.key in shas.get(c, {})}
            paths = split.get(root, {}).get(plan.key, [])
            if root == TOP:
                plans.append(PlannedCommit(plan.key, paths, plan.message, links,
                                           to_git=plan.to_git))
            elif paths or links:
                plans.append(PlannedCommit(plan.key, paths, _sub_message(plan.message, root),
                                           links))
        if not plans:
            continue
        repo = top / root
        if root != TOP:
            remove_stale_indexes(repo)
        result = commit_plans(
            repo, plans, use_annex if root == TOP else is_annexed(repo),
            before_move=before_move if root == TOP else None, skip_unchanged=root != TOP)
        where = "" if root == TOP else f"in subdataset {root}: "
        failed.update({key: where + why for key, why in result.failed.items()})
        shas[root] = result.shas
    return CommitResult(shas=shas.get(TOP, {}), failed=failed)
