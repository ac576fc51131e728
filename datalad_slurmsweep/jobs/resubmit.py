"""Submitting the next attempt of failed sweep points (``retry.py`` decides).

The points of one array that failed alike go out again as one array over
just their task indices (``--array=3,7``), from the same dispatch script
and tasks file, so task i still runs line i+1: one sbatch per case and
request, not one per point. The new request rides on the command line,
which overrides the script's ``#SBATCH`` lines. Each group is submitted on
its own: a refusal (``--exclude`` of a cluster's only node, say) stops that
group only.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..backends.base import Backend
from ..redact import redact_environment
from . import retry
from .model import Job, Outcome, Submission
from .replay_sweep import log_directories
from .retry import Plan, next_retrying
from .store import JobStore
from .submit import Batch, submit_batches
from .wait import query_all

# Options of a previous attempt's command line that the next one sets anew.
_OURS = ("--array=", "--time=", "--mem-per-cpu=", "--exclude=")


def next_argv(job: Job, plan: Plan, tasks: list[int] | None) -> list[str]:
    """The sbatch call of the next attempt of ``tasks`` (None: not an array),
    from the call ``job`` went out with; its throttle (``%N``) is kept."""
    old = job.submission.argv
    kept = [w for w in old[1:] if not w.startswith(_OURS)]
    array = next((w for w in old if w.startswith("--array=")), "")
    throttle = array[array.index("%"):] if "%" in array else ""
    head = [f"--array={','.join(map(str, tasks))}{throttle}"] if tasks is not None else []
    return [old[0], *head, *plan.request.sbatch_options(), *kept]


def sbatch_groups(plans: list[Plan]) -> list[list[Plan]]:
    """Plans one sbatch can carry: tasks of one array script with one request."""
    groups: dict[tuple, list[Plan]] = {}
    for plan in plans:
        job = plan.job
        if job.task is None:
            groups[(job.token,)] = [plan]
            continue
        key = (tuple(next_argv(job, plan, [])), tuple(plan.request.sbatch_options()))
        groups.setdefault(key, []).append(plan)
    return list(groups.values())


def _next_job(plan: Plan, sub: Submission, commit: str | None) -> Job:
    old = plan.job
    spec = dataclasses.replace(old.spec, retry=next_retrying(plan), commit_id=None,
                               chain=list(old.spec.chain) + ([commit] if commit else []))
    return Job(spec=spec, submission=sub, task=old.task)


def _describe(plan: Plan, new: Job) -> str:
    old, retrying = plan.job, new.spec.retry
    asked = " ".join(plan.request.sbatch_options()) or "the same resources"
    return (f"point {old.sweep.point} ({old.sweep.case}) of sweep {old.sweep.root}: job "
            f"{old.job_id} ended {plan.task.state.value}; resubmitted as job {new.job_id} "
            f"(attempt {retrying.attempt} of {retrying.policy.attempts}) with {asked}")


def resubmit(ds_root: Path, store: JobStore, backend: Backend, plans: list[Plan],
             commits: dict[str, str], *, use_annex: bool) -> Iterator[Outcome]:
    """Submit the next attempt of each planned point; ``commits`` maps a
    failed job's token to the commit of its record, which the new attempt's
    ``chain`` names."""
    environment = dict(os.environ)
    redacted = redact_environment(environment)
    for group in sbatch_groups(plans):
        first = group[0].job
        tasks = sorted(p.job.task for p in group) if first.task is not None else None
        sub = Submission(argv=next_argv(first, group[0], tasks), pwd=first.submission.pwd,
                         backend=first.backend, environment=redacted)
        jobs = [_next_job(p, sub, commits.get(p.job.token)) for p in group]
        for directory in {d for j in jobs for d in log_directories(ds_root, j.spec)}:
            directory.mkdir(parents=True, exist_ok=True)
        # The failed attempts leave the store as their next one is reserved:
        # killed before, the next finish submits it (retry_pending); after,
        # the store tracks the new job and nothing is submitted twice.
        (outcome,) = submit_batches(ds_root, store, backend, [Batch(sub, jobs)],
                                    use_annex=use_annex, environment=environment,
                                    replacing=[p.job.token for p in group])
        for plan, job in zip(group, jobs, strict=True):
            if outcome.error is None:
                yield Outcome(job, "ok", _describe(plan, job), resubmitted=True)
                continue
            yield Outcome(plan.job, "error", f"point {plan.job.sweep.point} of sweep "
                          f"{plan.job.sweep.root}: job {plan.job.job_id} ended "
                          f"{plan.task.state.value} and its retry was refused: "
                          f"{outcome.error}; replay it with datalad slurm-reschedule "
                          f"--only-failed {commits.get(plan.job.token, '')[:10]}".rstrip(),
                          state=plan.task.state)


def retry_pending(ds_root: Path, store: JobStore, backend_for: Callable[[str], Backend], *,
                  use_annex: bool, close_failed: bool = False) -> Iterator[Outcome]:
    """Submit the next attempts a killed finish owed: failed points already
    committed (store status ``retrying``) whose retry was never reserved.
    With ``close_failed`` they are forgotten instead."""
    owed = store.jobs(status="retrying")
    if not owed:
        return
    if close_failed:
        store.remove([j.token for j in owed])
        for job in owed:
            yield Outcome(job, "ok", f"closed job {job.job_id}: committed as "
                          f"{job.commit[:10]}, its retry is not submitted", commit=job.commit)
        return
    statuses = query_all(backend_for, owed)
    plans = [retry.plan_retry(job, statuses[job.job_id]) for job in owed]
    refused = [(job, plan) for job, plan in zip(owed, plans, strict=True)
               if plan is None or plan.request is None]
    store.remove([job.token for job, _ in refused])
    for job, plan in refused:
        yield Outcome(job, "impossible", f"job {job.job_id} was committed as "
                      f"{job.commit[:10]}; its retry cannot be submitted"
                      + (f": {plan.refusal}" if plan and plan.refusal else ""),
                      commit=job.commit)
    ready = [p for p in plans if p is not None and p.request is not None]
    for name in sorted({p.job.backend for p in ready}):
        group = [p for p in ready if p.job.backend == name]
        yield from resubmit(ds_root, store, backend_for(name), group,
                            {p.job.token: p.job.commit for p in group}, use_annex=use_annex)
