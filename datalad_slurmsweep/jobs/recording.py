"""Run records: what a finished job's commit says about it.

A single job gets datalad-slurm's record, with every key that extension
writes plus ours (docs/design.rst lists them). The points of one sweep that
finish together get one record listing each point. The submission
environment goes into ``slurm-job-<id>.env.json`` beside the logs, redacted
again at write time.
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .. import __version__, process
from ..backends.base import Backend, JobStatus, TaskStatus
from ..backends.sbatch import expand_log_pattern
from ..errors import SlurmsweepError
from ..provenance import tables
from ..provenance.datasets import TOP, read_layout
from ..provenance.paths import pwd_relative
from ..provenance.record import RECORD_VERSION, format_record
from ..redact import redact_argv, redact_tree
from .model import Job
from .outcomes import PointResult
from .outputs import Expanded
from .retry import attempts_record
from .runenv import record_keys


def tool_versions(backend: Backend) -> dict[str, str]:
    import datalad

    def first_line(argv: list[str]) -> str:
        try:
            out = process.output(argv, check=False)
        except SlurmsweepError:
            return "unknown"
        return (out.strip().splitlines() or ["unknown"])[0]

    try:
        slurm = backend.version()
    except SlurmsweepError:
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
    logs = job.spec.logs
    for task in status.tasks:
        raw = task.raw_id or str(job.job_id)
        for pattern in logs.patterns():
            name = expand_log_pattern(
                pattern, job_id=raw,
                array_job_id=job.job_id.base if task.task_id is not None else None,
                task_id=task.task_id, job_name=logs.job_name,
                user=job.submission.user, node=task.node)
            path = os.path.normpath(os.path.join(logs.workdir, name))
            found.append(PurePosixPath(path).as_posix())
    return list(dict.fromkeys(found))


def env_file(job: Job) -> str:
    """``slurm-job-<id>.env.json`` beside the job's (first) stdout log; one
    per array for the tasks of a sweep, which share their environment."""
    base = job.job_id.base
    logs = job.spec.logs
    first = expand_log_pattern(logs.output, job_id=base, array_job_id=base, task_id=0,
                               job_name=logs.job_name, user="", node="")
    directory = os.path.normpath(os.path.join(logs.workdir, os.path.dirname(first)))
    return PurePosixPath(directory, f"slurm-job-{base}.env.json").as_posix()


def build_record(job: Job, status: JobStatus, dsid: str | None,
                 versions: dict, slurm_outputs: list[str], found: Expanded) -> dict:
    spec = job.spec
    job_id: int | str = int(job.job_id.base) if job.job_id.task is None else str(job.job_id)
    argv = redact_argv(spec.sbatch_argv)
    return {
        "cmd": shlex.join(argv),
        "sbatch_argv": argv,
        "chain": spec.chain,
        "commit_id": spec.commit_id,
        "dsid": dsid,
        "inputs": [pwd_relative(p, spec.pwd) for p in spec.inputs],
        "extra_inputs": [pwd_relative(p, spec.pwd) for p in spec.extra_inputs],
        "outputs": [pwd_relative(p, spec.pwd) for p in (
            found.present if spec.expand in ("outputs", "both") else spec.outputs)],
        "missing_outputs": [pwd_relative(p, spec.pwd) for p in found.missing],
        "pwd": spec.pwd,
        "slurm_job_id": job_id,
        "slurm_outputs": [pwd_relative(p, spec.pwd) for p in slurm_outputs],
        "state": status.state.value,
        "exit": status.exit_code,
        "exit_code": status.exit_code,
        "tasks": [t.as_record() for t in status.tasks],
        "array": spec.array_tasks is not None,
        "backend": job.backend,
        "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(job.submitted_at)),
        "versions": versions,
        "record_version": RECORD_VERSION,
        "tool": "datalad-slurmsweep",
        **record_keys(spec),
    }


def write_env_file(ds_root: Path, job: Job, status: JobStatus, path: str) -> None:
    content = {
        "slurm_job_id": str(job.job_id),
        "environment": job.submission.environment,
        "slurm": {"source": status.source, "state": status.state.value,
                  "tasks": [t.as_record() for t in status.tasks]},
        "sbatch_argv": redact_argv(job.spec.sbatch_argv),
        "pwd": job.spec.pwd,
    }
    target = ds_root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    # Redact again at write time: the store may predate a stricter pattern.
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(redact_tree(content), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, target)


def _point(job: Job, status: JobStatus, logs: list[str], found: Expanded,
           packed: PointResult | None) -> dict:
    task, member = status.tasks[0], job.sweep
    # Only a packed point has these: an unpacked one's record is as it was.
    chunk = {} if packed is None else {"chunk": {
        "array_task": str(job.job_id.scheduler_id), "slot": job.spec.chunk_slot,
        "task_state": packed.task_state.value, "outcome": packed.outcome is not None}}
    return {
        "point": member.point, "case": member.case, "params": member.params,
        "slurm_job_id": str(job.job_id), "task_id": task.task_id, "raw_id": task.raw_id,
        "state": status.state.value, "exit_code": status.exit_code, "signal": task.signal,
        "start": task.start, "end": task.end, "node": task.node, "outputs": job.outputs,
        "missing_outputs": found.missing, "script": job.spec.sbatch_argv[-1],
        "inputs": job.spec.inputs, "logs": logs, "resources": task.as_record()["resources"],
        **record_keys(job.spec), **chunk, **_attempts(job, task)}


def _attempts(job: Job, task: TaskStatus) -> dict:
    """A retried point's chain of attempts, oldest first, this job's last."""
    if job.spec.retry is None:
        return {}
    return {"attempt": job.spec.retry.attempt,
            "attempts": attempts_record(job, task)}


def sweep_record(ds_root: Path, sweep_root: str, members: list[tuple[Job, JobStatus]],
                 expanded: dict[str, Expanded], dsid: str | None, versions: dict,
                 packed: dict[str, PointResult] | None = None,
                 inline_points: int | None = None) -> SweepRecord:
    """Paths to commit and the record for some finished points of one sweep.
    Past ``inline_points`` points the per-point table goes into a file the
    record names (``provenance/tables.py``), written point by point."""
    table = None
    if inline_points is not None and len(members) > inline_points \
            and read_layout(ds_root).owner(sweep_root) == TOP:
        # (A sweep in a subdataset keeps its table inline: the top commit
        # cannot name a file of another repository.)
        tables.remove_leftovers(ds_root, sweep_root)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        first_id = min(j.job_id.base for j, _ in members)
        table = f"{sweep_root}/{tables.DIRECTORY}/{stamp}-{first_id}.json"
        (ds_root / table).parent.mkdir(parents=True, exist_ok=True)
    tmp = tables.scratch_path(ds_root, ds_root / table) if table else None
    with (tmp.open("wb") if tmp else contextlib.nullcontext()) as stream:
        sink = tables.TableWriter(stream) if table else None
        record = _sweep_record(ds_root, sweep_root, members, expanded, packed or {}, sink)
        record.update({"dsid": dsid, "versions": versions})
        paths = record["outputs"] + record["slurm_outputs"]
        if sink is None:
            return SweepRecord(paths, record)
        ref = sink.end(record)
    os.replace(tmp, ds_root / table)
    return SweepRecord([*paths, table], tables.referencing(record, table, ref), to_git=[table])


def _sweep_record(ds_root: Path, sweep_root: str, members: list[tuple[Job, JobStatus]],
                  expanded: dict[str, Expanded], packed: dict[str, PointResult],
                  sink: tables.TableWriter | None) -> dict:
    points, paths, logs, missing = [], [], set(), set()
    counts: dict[str, int] = {}
    exit_code = 0
    written_env: set[str] = set()
    for job, status in members:
        env_path = env_file(job)
        if env_path not in written_env:
            write_env_file(ds_root, job, status, env_path)
            written_env.add(env_path)
        job_logs = [p for p in log_paths(job, status) if os.path.lexists(ds_root / p)]
        logs.update(job_logs)
        found = expanded[job.token]
        paths += found.present
        point = _point(job, status, job_logs, found, packed.get(job.token))
        counts[point["state"]] = counts.get(point["state"], 0) + 1
        missing.update(point["missing_outputs"])
        exit_code = exit_code or point["exit_code"] or 0
        if sink is None:
            points.append(point)
        else:
            sink.add(point)
    first = members[0][0]
    return {
        "cmd": f"datalad slurm-sweep {first.sweep.config}".strip(),
        "chain": first.spec.chain, "commit_id": first.spec.commit_id,
        "inputs": sorted({i for j, _ in members for i in j.spec.inputs}),
        "extra_inputs": sorted({i for j, _ in members for i in j.spec.extra_inputs}),
        "outputs": sorted(set(paths)), "pwd": ".", "missing_outputs": sorted(missing),
        "slurm_job_id": sorted({j.job_id.base for j, _ in members}),
        "slurm_outputs": sorted(logs | written_env),
        "state": next((s for s in counts if s != "COMPLETED"), "COMPLETED"),
        "exit_code": exit_code,
        "sweep": {"name": first.sweep.name, "root": sweep_root, "config": first.sweep.config,
                  "manifest": f"{sweep_root}/manifest.json",
                  "counts": {s: counts[s] for s in sorted(counts)}},
        "points": points, "backend": first.backend,
        "record_version": RECORD_VERSION, "tool": "datalad-slurmsweep",
    }


@dataclass
class SweepRecord:
    paths: list[str]  # to commit
    record: dict
    to_git: list[str] = field(default_factory=list)  # committed in git, never annexed


def format_sweep_record(record: dict, messages: list[str] | None) -> str:
    counts = record["sweep"]["counts"]
    summary = ", ".join(f"{n} {s.lower()}" for s, n in counts.items())
    name = record["sweep"]["name"] or record["sweep"]["root"]
    text = format_record(record, messages)
    count = record["table"]["points"] if "table" in record else len(record["points"])
    subject = f"[DATALAD SLURM RUN] Sweep {name}: {count} points ({summary})"
    return subject + text[text.index("\n"):]
