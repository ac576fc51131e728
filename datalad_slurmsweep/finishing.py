"""Finishing jobs: one status query, then one commit per finished job.

The order of steps makes ``kill -9`` at any moment safe to rerun:

1. the commits are written (unreachable objects if we die here);
2. the store notes each job's commit (status ``committing``);
3. the branch moves to the last commit, compare-and-swap;
4. the jobs leave the store.

A rerun first looks at ``committing`` jobs: if their commit is in the
history, they are done and only leave the store; otherwise they are open
again and are finished anew. No job is lost and no record is written twice.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import __version__
from .commits import PlannedCommit, advance, build_commits, head_state, is_ancestor
from .crashpoints import crashpoint
from .record import RECORD_VERSION, format_record
from .redact import redact_tree
from .sbatch_args import expand_log_pattern
from .slurm import JobStatus, SlurmError
from .states import JobState
from .store import Job, JobStore


@dataclass
class Outcome:
    """What happened to one job; the command turns it into a result record."""

    job: Job
    status: str  # ok | impossible | error | notneeded
    message: str
    state: JobState | None = None
    commit: str | None = None


def pwd_relative(path: str, pwd: str) -> str:
    """A dataset-relative path as run records store it: relative to pwd."""
    if pwd == ".":
        return path
    return PurePosixPath(os.path.relpath(path, pwd)).as_posix()


def tool_versions(backend) -> dict[str, str]:
    import datalad

    def first_line(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        except OSError:
            return "unknown"
        return (out.strip().splitlines() or ["unknown"])[0]

    try:
        slurm = backend.version()
    except SlurmError:
        slurm = "unknown"
    return {
        "datalad": datalad.__version__,
        "datalad-slurmsweep": __version__,
        "git": first_line(["git", "--version"]).replace("git version ", ""),
        "git-annex": first_line(["git", "annex", "version", "--raw"]),
        "slurm": slurm,
    }


def log_paths(job: Job, status: JobStatus) -> list[str]:
    """Dataset-relative log files of the job's tasks (existing or not)."""
    found = []
    patterns = [job.log_output] + ([job.log_error] if job.log_error
                                    and job.log_error != job.log_output else [])
    array_id = job.job_id.partition("_")[0]
    for task in status.tasks:
        raw = task.raw_id or job.job_id
        for pattern in patterns:
            name = expand_log_pattern(
                pattern, job_id=raw,
                array_job_id=array_id if task.task_id is not None else None,
                task_id=task.task_id, job_name=job.job_name,
                user=job.extra.get("user", ""), node=task.node)
            path = os.path.normpath(os.path.join(job.workdir, name))
            found.append(PurePosixPath(path).as_posix())
    return list(dict.fromkeys(found))


def env_file(job: Job) -> str:
    """``slurm-job-<id>.env.json`` beside the job's (first) stdout log; one
    per array for the tasks of a sweep, which share their environment."""
    job_id = job.job_id.partition("_")[0]
    first = expand_log_pattern(job.log_output, job_id=job_id,
                               array_job_id=job_id, task_id=0,
                               job_name=job.job_name, user="", node="")
    directory = os.path.normpath(os.path.join(job.workdir, os.path.dirname(first)))
    return PurePosixPath(directory, f"slurm-job-{job_id}.env.json").as_posix()


def build_record(job: Job, status: JobStatus, dsid: str | None,
                 versions: dict, slurm_outputs: list[str]) -> dict:
    job_id: int | str = int(job.job_id) if job.job_id.isdigit() else job.job_id
    record = {
        "cmd": shlex.join(job.cmd),
        "sbatch_argv": job.cmd,
        "chain": job.chain,
        "commit_id": None,
        "dsid": dsid,
        "inputs": [pwd_relative(p, job.pwd) for p in job.inputs],
        "extra_inputs": [pwd_relative(p, job.pwd) for p in job.extra_inputs],
        "outputs": [pwd_relative(p, job.pwd) for p in job.outputs],
        "pwd": job.pwd,
        "slurm_job_id": job_id,
        "slurm_outputs": [pwd_relative(p, job.pwd) for p in slurm_outputs],
        "state": status.state.value,
        "exit": status.exit_code,
        "exit_code": status.exit_code,
        "tasks": [t.as_record() for t in status.tasks],
        "array": job.array_tasks is not None,
        "backend": job.backend,
        "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(job.submitted_at)),
        "versions": versions,
        "record_version": RECORD_VERSION,
        "tool": "datalad-slurmsweep",
    }
    if job.sweep:
        record["sweep"] = job.sweep
        record.update(job.extra.get("record", {}))
    return record


def write_env_file(ds_root: Path, job: Job, status: JobStatus, path: str) -> None:
    content = {
        "slurm_job_id": job.job_id,
        "environment": job.environment,
        "slurm": {"source": status.source, "state": status.state.value,
                  "tasks": [t.as_record() for t in status.tasks]},
        "sbatch_argv": job.cmd,
        "pwd": job.pwd,
    }
    target = ds_root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    # Redact again at write time: the store may predate a stricter pattern.
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(redact_tree(content), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, target)


def reconcile(ds_root: Path, store: JobStore, backend_for) -> Iterator[Outcome]:
    """Settle what an interrupted run left behind (see the module doc).

    ``backend_for(name)`` gives the backend a reservation was made for."""
    committing = store.jobs(status="committing")
    done = [j for j in committing if is_ancestor(ds_root, j.commit)]
    store.remove([j.token for j in done])
    store.reopen([j.token for j in committing if j not in done])
    for job in done:
        yield Outcome(job, "ok", f"job {job.job_id} was already committed as "
                      f"{job.commit[:10]} by an interrupted run", commit=job.commit)
    from .store import owner_tag
    host = owner_tag().split(":")[0]
    by_comment: dict[str, list[Job]] = {}
    for job in store.jobs(status="submitting"):
        owner_host, _, pid = job.owner.partition(":")
        if owner_host == host and pid.isdigit() and _alive(int(pid)):
            continue  # a schedule is in progress right now
        by_comment.setdefault(job.extra.get("comment", job.token), []).append(job)
    known: dict[str, list[str]] = {}
    for name in {rows[0].backend for rows in by_comment.values()}:
        wanted = {c for c, rows in by_comment.items() if rows[0].backend == name}
        try:
            known.update(backend_for(name).find_by_comments(wanted))
        except SlurmError:
            # Unknown is not "never submitted": keep the reservations.
            for comment in wanted:
                by_comment.pop(comment)
    for comment, rows in by_comment.items():
        found = known.get(comment)
        if found:
            ids = {j.token: (f"{found[0]}_{j.extra['array_task']}" if "array_task" in j.extra
                             else found[0]) for j in rows}
            store.mark_submitted_many(ids)
            for job in rows:
                job.job_id = ids[job.token]
                yield Outcome(job, "ok", f"job {job.job_id} was submitted by an "
                              "interrupted schedule and is tracked now")
        else:
            store.remove([j.token for j in rows])
            for job in rows:
                yield Outcome(job, "notneeded", "dropped the reservation of an "
                              "interrupted schedule that submitted nothing")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finish(ds_root: Path, store: JobStore, backend, jobs: list[Job],
           statuses: dict[str, JobStatus], *, dsid: str | None, use_annex: bool,
           accept_failed: bool = False, close_failed: bool = False,
           messages: list[str] | None = None) -> Iterator[Outcome]:
    """Commit finished jobs, close or report failed ones, report the rest."""
    to_commit: list[tuple[Job, JobStatus]] = []
    to_close: list[Job] = []
    for job in jobs:
        status = statuses[job.job_id]
        state = status.state
        detail = _task_summary(job, status)
        if state.is_active:
            yield Outcome(job, "impossible", f"job {job.job_id} is still {state.value}{detail}",
                          state=state)
        elif state.is_success or (accept_failed and state is not JobState.LOST):
            to_commit.append((job, status))
        elif close_failed:
            to_close.append(job)
            yield Outcome(job, "ok", f"closed failed job {job.job_id} ({state.value}{detail}) "
                          "without committing; its files are left in place", state=state)
        else:
            hint = ("Slurm no longer knows this job, so nothing says it is complete; "
                    "inspect its files and use --close-failed-jobs to forget it"
                    if state is JobState.LOST else
                    "its outputs are not committed; use --accept-failed-jobs to commit "
                    "it anyway or --close-failed-jobs to forget it")
            yield Outcome(job, "impossible", f"job {job.job_id} ended {state.value}{detail}: "
                          f"{hint}", state=state)
    store.remove([j.token for j in to_close])
    if to_commit:
        yield from _commit(ds_root, store, backend, to_commit, dsid=dsid,
                           use_annex=use_annex, messages=messages)


def _task_summary(job: Job, status: JobStatus) -> str:
    if job.array_tasks is None:
        return ""
    parts = [f"{job.job_id}_{t.task_id}: {t.state.value}" for t in status.tasks]
    if len(parts) > 10:
        bad = [p for p, t in zip(parts, status.tasks, strict=True) if not t.state.is_success]
        parts = bad[:10] + [f"... {len(parts)} tasks"]
    return " [" + ", ".join(parts) + "]"


def _commit(ds_root: Path, store: JobStore, backend, items, *, dsid, use_annex,
            messages) -> Iterator[Outcome]:
    versions = tool_versions(backend)
    planned = []
    singles = [(j, s) for j, s in items if not j.sweep]
    sweeps: dict[str, list] = {}
    for job, status in items:
        if job.sweep:
            sweeps.setdefault(job.sweep, []).append((job, status))
    keys: dict[str, str] = {}  # job token -> plan key
    for job, status in singles:
        env_path = env_file(job)
        write_env_file(ds_root, job, status, env_path)
        logs = [p for p in log_paths(job, status) if os.path.lexists(ds_root / p)]
        slurm_outputs = logs + [env_path]
        record = build_record(job, status, dsid, versions, slurm_outputs)
        msgs = list(messages or []) + ([job.message] if job.message else [])
        planned.append(PlannedCommit(
            key=job.token, paths=job.outputs + slurm_outputs,
            message=format_record(record, msgs)))
        keys[job.token] = job.token
    for sweep_root, members in sweeps.items():
        paths, record = sweep_record(ds_root, sweep_root, members, dsid, versions)
        planned.append(PlannedCommit(key=sweep_root, paths=paths,
                                     message=format_sweep_record(record, messages)))
        keys.update({job.token: sweep_root for job, _ in members})
    ref, head = head_state(ds_root)
    shas = build_commits(ds_root, planned, head, use_annex)
    crashpoint("built")
    store.mark_committing({token: shas[key] for token, key in keys.items()})
    crashpoint("marked")
    advance(ds_root, ref, shas[planned[-1].key], head)
    crashpoint("advanced")
    store.remove([job.token for job, _ in items])
    for job, status in items:
        yield Outcome(job, "ok", f"committed job {job.job_id} ({status.state.value})"
                      + (f" of sweep {job.sweep}" if job.sweep else ""),
                      state=status.state, commit=shas[keys[job.token]])


def sweep_record(ds_root: Path, sweep_root: str, members, dsid, versions) -> tuple[list[str], dict]:
    """Paths to commit and the record for some finished points of one sweep."""
    points, paths, logs = [], [], []
    written_env: set[str] = set()
    for job, status in members:
        env_path = env_file(job)
        if env_path not in written_env:
            write_env_file(ds_root, job, status, env_path)
            written_env.add(env_path)
        job_logs = [p for p in log_paths(job, status) if os.path.lexists(ds_root / p)]
        logs += job_logs
        paths += job.outputs
        task = status.tasks[0]
        points.append({
            "point": job.extra.get("point"), "case": job.extra.get("case"),
            "params": job.extra.get("params", {}), "slurm_job_id": job.job_id,
            "task_id": task.task_id, "raw_id": task.raw_id, "state": status.state.value,
            "exit_code": status.exit_code, "signal": task.signal, "start": task.start,
            "end": task.end, "node": task.node, "outputs": job.outputs,
            "script": job.cmd[-1], "inputs": job.inputs, "logs": job_logs})
    slurm_outputs = sorted(set(logs) | written_env)
    first = members[0][0]
    states = [p["state"] for p in points]
    state = next((s for s in states if s != "COMPLETED"), "COMPLETED")
    record = {
        "cmd": f"datalad slurm-sweep {first.extra.get('config', '')}".strip(),
        "chain": first.chain, "commit_id": None, "dsid": dsid,
        "inputs": sorted({i for j, _ in members for i in j.inputs}),
        "extra_inputs": [], "outputs": sorted(set(paths)), "pwd": ".",
        "slurm_job_id": sorted({j.job_id.partition("_")[0] for j, _ in members}),
        "slurm_outputs": slurm_outputs, "state": state,
        "exit_code": next((p["exit_code"] for p in points if p["exit_code"]), 0),
        "sweep": {"name": first.extra.get("sweep_name"), "root": sweep_root,
                  "config": first.extra.get("config"),
                  "manifest": f"{sweep_root}/manifest.json",
                  "counts": {s: states.count(s) for s in sorted(set(states))}},
        "points": points, "backend": first.backend, "versions": versions,
        "record_version": RECORD_VERSION, "tool": "datalad-slurmsweep",
    }
    return sorted(set(paths)) + slurm_outputs, record


def format_sweep_record(record: dict, messages: list[str] | None) -> str:
    counts = record["sweep"]["counts"]
    summary = ", ".join(f"{n} {s.lower()}" for s, n in counts.items())
    name = record["sweep"]["name"] or record["sweep"]["root"]
    text = format_record(record, messages)
    subject = f"[DATALAD SLURM RUN] Sweep {name}: {len(record['points'])} points ({summary})"
    return subject + text[text.index("\n"):]
