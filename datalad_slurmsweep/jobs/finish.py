"""Finishing jobs: one status query, then one commit per finished job.

The order of steps makes ``kill -9`` at any moment safe to rerun:

1. the commits are written (unreachable objects if we die here);
2. the store notes each job's commit (status ``committing``);
3. the branch moves to the last commit, compare-and-swap;
4. the jobs leave the store.

A rerun first reconciles (``reconcile.py``): ``committing`` jobs whose
commit is in the history are done and only leave the store; the others are
open again and are finished anew. No job is lost and no record is written
twice.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..backends.base import Backend, JobId, JobState, JobStatus
from ..crashpoints import crashpoint
from ..provenance.commits import PlannedCommit
from ..provenance.datasets import TOP, read_layout
from ..provenance.nested import commit_nested
from ..provenance.record import format_record
from . import advice, retry
from .branching import Branching, commit_branches
from .model import Job, Outcome
from .outcomes import PointResult, apply_outcomes, forget_outcomes
from .outputs import Expanded, expand_outputs
from .recording import (
    build_record,
    env_file,
    format_sweep_record,
    log_paths,
    sweep_record,
    tool_versions,
    write_env_file,
)
from .resubmit import resubmit
from .runenv import bring_back
from .store import JobStore


def _unfinished(job: Job, status: JobStatus, close_failed: bool,
                refusal: str = "") -> Outcome:
    state, detail = status.state, task_summary(job, status)
    if job.spec.chunk_slot is not None and state.is_terminal:
        detail += (f" (point {job.sweep.point}, exit code {status.exit_code})"
                   if status.exit_code is not None else
                   f" (point {job.sweep.point}: it had not finished when its task ended)")
    # A sweep's advice comes once for all its points (commands/slurm_finish.py).
    detail += advice.note((t.state, t.resources) for t in status.tasks) \
        if state.is_terminal and not job.sweep else ""
    if refusal:  # a point whose retries are used up, with its own advice
        return Outcome(job, "impossible", f"point {job.sweep.point} of sweep "
                       f"{job.sweep.root}: job {job.job_id} {refusal}; its outputs are not "
                       "committed: use --accept-failed-jobs to commit it anyway or "
                       "--close-failed-jobs to forget it", state=state)
    if state.is_active:
        return Outcome(job, "impossible", f"job {job.job_id} is still {state.value}{detail}",
                       state=state)
    if close_failed:
        return Outcome(job, "ok", f"closed job {job.job_id} ({state.value}{detail}) "
                       "without committing; its files are left in place", state=state)
    hint = ("Slurm no longer knows this job, so nothing says it is complete; "
            "inspect its files and use --close-failed-jobs to forget it"
            if state is JobState.LOST else
            "its outputs are not committed; use --accept-failed-jobs to commit "
            "it anyway or --close-failed-jobs to forget it")
    return Outcome(job, "impossible", f"job {job.job_id} ended {state.value}{detail}: {hint}",
                   state=state)


def _no_outputs(job: Job, expanded: Expanded, close_failed: bool) -> Outcome:
    missing = ", ".join(expanded.missing)
    if close_failed:
        return Outcome(job, "ok", f"closed job {job.job_id} (COMPLETED, but none of its "
                       f"declared outputs exists: {missing}) without committing",
                       state=JobState.COMPLETED)
    return Outcome(job, "impossible", f"job {job.job_id} COMPLETED but wrote none of its "
                   f"declared outputs ({missing}), so nothing of its result can be recorded. "
                   "It stays open: use --accept-failed-jobs to record it anyway (the record "
                   "lists the missing outputs) or --close-failed-jobs to forget it",
                   state=JobState.COMPLETED)


def finish(ds_root: Path, store: JobStore, backend: Backend, jobs: list[Job],
           statuses: dict, *, dsid: str | None, use_annex: bool,
           accept_failed: bool = False, close_failed: bool = False,
           named: set[JobId] | None = None,
           messages: list[str] | None = None,
           branching: Branching | None = None,
           inline_points: int | None = None) -> Iterator[Outcome]:
    """Commit finished jobs, close or report failed ones, report the rest.

    A completed job none of whose declared outputs exists counts as failed.
    With ``close_failed``, jobs the user ``named`` are closed whatever their
    end state (a completed job whose outputs cannot be committed, say);
    unnamed ones only when they did not complete. A failed sweep point its
    retry policy retries (not with ``close_failed``) is committed as it
    ended, then submitted again (``retry.py``)."""
    named = named or set()
    packed = apply_outcomes(ds_root, jobs, statuses)
    plans: list[retry.Plan] = []
    to_commit: list[tuple[Job, JobStatus]] = []
    to_close: list[Job] = []
    expanded: dict[str, Expanded] = {}
    for job in jobs:
        status = statuses[job.job_id]
        state = status.state
        if state.is_active:
            yield _unfinished(job, status, False)
            continue
        # An --alt-dir job wrote outside the dataset: its files come home first.
        if job.spec.alt_dir:
            bring_back(ds_root, job.spec, log_paths(job, status))
        found = expanded[job.token] = expand_outputs(ds_root, job.outputs)
        succeeded = state.is_success and not found.none_written
        plan = None if succeeded or close_failed else retry.plan_retry(job, status)
        if plan is not None and plan.request is not None:
            plans.append(plan)
            to_commit.append((job, status))
            continue
        closing = close_failed and (not succeeded or _named(job.job_id, named))
        if not closing and (succeeded or (accept_failed and state is not JobState.LOST)):
            to_commit.append((job, status))
            continue
        if closing:
            to_close.append(job)
        if state.is_success and found.none_written:
            yield _no_outputs(job, found, closing)
        else:
            yield _unfinished(job, status, closing, plan.refusal if plan else "")
    store.remove([j.token for j in to_close])
    forget_outcomes(ds_root, to_close)
    if branching and to_commit:
        to_commit, refused = _off_branches(ds_root, to_commit, expanded)
        yield from refused
    if to_commit:
        yield from _commit_then_retry(ds_root, store, backend, to_commit, expanded, plans,
                                      dsid=dsid, use_annex=use_annex, messages=messages,
                                      branching=branching, packed=packed,
                                      inline_points=inline_points)


def _commit_then_retry(ds_root: Path, store: JobStore, backend: Backend,
                       items: list[tuple[Job, JobStatus]], expanded: dict[str, Expanded],
                       plans: list[retry.Plan], **kwargs) -> Iterator[Outcome]:
    """Commit, then submit the next attempt of the failed points to retry.
    Only an attempt whose record is committed is tried again: its files
    must be out of the way (and its job out of the store) first."""
    committed: dict[str, str] = {}
    kwargs["retrying"] = {p.job.token for p in plans}
    for outcome in _commit(ds_root, store, backend, items, expanded, **kwargs):
        committed.update({outcome.job.token: outcome.commit} if outcome.commit else {})
        yield outcome
    yield from resubmit(ds_root, store, backend, [p for p in plans if p.job.token in committed],
                        committed, use_annex=kwargs["use_annex"])


def _named(job_id: JobId, named: set[JobId]) -> bool:
    """Whether the user named the job: its id, its array, or (for a packed
    point) the array task that ran it."""
    return bool({job_id, JobId(job_id.base), job_id.scheduler_id} & named)


def _off_branches(ds_root: Path, items: list[tuple[Job, JobStatus]],
                  expanded: dict[str, Expanded]) -> tuple[list, list[Outcome]]:
    """The jobs --branches can commit, and the refusals of those whose files
    lie in a subdataset: a branch of the superdataset alone cannot hold them
    (git stages no path inside a submodule), and branching each subdataset
    too is not built. Refused before anything is written, so they stay open."""
    layout = read_layout(ds_root)
    if not layout.installed:
        return items, []
    kept, refused = [], []
    for job, status in items:
        paths = expanded[job.token].present + log_paths(job, status)
        nested = sorted({layout.owner(p) for p in paths} - {TOP})
        if not nested:
            kept.append((job, status))
            continue
        refused.append(Outcome(
            job, "impossible", f"job {job.job_id} ({status.state.value}) wrote into the "
            f"subdataset(s) {', '.join(nested)}: --branches and --octopus commit only to "
            "branches of the top dataset, so it stays open; finish it without them",
            state=status.state))
    return kept, refused


def task_summary(job: Job, status: JobStatus) -> str:
    if job.spec.array_tasks is None:
        return ""
    parts = [f"{job.job_id}_{t.task_id}: {t.state.value}" for t in status.tasks]
    if len(parts) > 10:
        bad = [p for p, t in zip(parts, status.tasks, strict=True) if not t.state.is_success]
        parts = bad[:10] + [f"... {len(parts)} tasks"]
    return " [" + ", ".join(parts) + "]"


def _plan(ds_root: Path, items: list[tuple[Job, JobStatus]], expanded: dict[str, Expanded],
          dsid: str | None, versions: dict, messages: list[str] | None,
          packed: dict[str, PointResult],
          inline_points: int | None) -> tuple[list[PlannedCommit], dict]:
    """One planned commit per single job and per sweep; job token -> plan key."""
    planned: list[PlannedCommit] = []
    keys: dict[str, str] = {}
    sweeps: dict[str, list[tuple[Job, JobStatus]]] = {}
    for job, status in items:
        if job.sweep:
            sweeps.setdefault(job.sweep.root, []).append((job, status))
            continue
        env_path = env_file(job)
        write_env_file(ds_root, job, status, env_path)
        logs = [p for p in log_paths(job, status) if os.path.lexists(ds_root / p)]
        slurm_outputs = logs + [env_path]
        found = expanded[job.token]
        record = build_record(job, status, dsid, versions, slurm_outputs, found)
        msgs = list(messages or []) + ([job.spec.message] if job.spec.message else [])
        planned.append(PlannedCommit(key=job.token, paths=found.present + slurm_outputs,
                                     message=format_record(record, msgs)))
        keys[job.token] = job.token
    for sweep_root, members in sweeps.items():
        made = sweep_record(ds_root, sweep_root, members, expanded, dsid, versions, packed,
                            inline_points)
        planned.append(PlannedCommit(key=sweep_root, paths=made.paths, to_git=made.to_git,
                                     message=format_sweep_record(made.record, messages)))
        keys.update({job.token: sweep_root for job, _ in members})
    return planned, keys


def _commit(ds_root: Path, store: JobStore, backend: Backend,
            items: list[tuple[Job, JobStatus]], expanded: dict[str, Expanded], *,
            dsid: str | None, use_annex: bool, messages: list[str] | None,
            branching: Branching | None = None,
            packed: dict[str, PointResult] | None = None,
            retrying: set[str] = frozenset(),
            inline_points: int | None = None) -> Iterator[Outcome]:
    """Commit ``items``; those in ``retrying`` (failed points tried again)
    stay in the store as ``retrying`` until their next attempt is reserved."""
    planned, keys = _plan(ds_root, items, expanded, dsid, tool_versions(backend), messages,
                          packed or {}, inline_points)

    def note(shas: dict[str, str]) -> None:
        crashpoint("built")
        store.mark_committing({token: shas[key] for token, key in keys.items()
                               if key in shas}, retrying)
        crashpoint("marked")

    if branching:
        result = commit_branches(ds_root, planned, keys, items, use_annex, branching,
                                 before_move=note)
    else:
        result = commit_nested(ds_root, planned, use_annex, before_move=note)
    crashpoint("advanced")
    done = [(job, status) for job, status in items if keys[job.token] in result.shas]
    store.remove([job.token for job, _ in done if job.token not in retrying])
    store.mark_retrying([job.token for job, _ in done if job.token in retrying])
    forget_outcomes(ds_root, [job for job, _ in done])
    for job, status in items:
        key = keys[job.token]
        if key in result.failed:
            yield Outcome(job, "error", f"job {job.job_id} ({status.state.value}) was not "
                          f"committed, its files could not be staged: {result.failed[key]}. "
                          "It stays open and the other jobs were committed; fix or move "
                          "the paths named, then run slurm-finish again (or "
                          "--close-failed-jobs to forget it)", state=status.state)
            continue
        missing = expanded[job.token].missing
        branch = branching.names.get(key) if branching else None
        yield Outcome(job, "ok", f"committed job {job.job_id} ({status.state.value})"
                      + (f" of sweep {job.sweep.root}" if job.sweep else "")
                      + (f" on branch {branch}" if branch else "")
                      + (f", merged in {branching.merge[:10]}"
                         if branch and branching.merge else "")
                      + (f"; declared outputs missing: {', '.join(missing)}" if missing else "")
                      + ("" if job.sweep else advice.note((t.state, t.resources)
                                                          for t in status.tasks)),
                      state=status.state, commit=result.shas[key], branch=branch)
