"""The results table: one row per (point, case) of a sweep, or per task of
single jobs, with the parameters, the end state, the resource figures and
every metric the point wrote. Built from committed records and files only
(``sources.py``), so that it can be rebuilt at any later commit.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..backends.base import Resources
from ..errors import ReportError
from ..redact import redact_text
from ..sweep.checks import Checker
from ..sweep.options import Results, results_section
from .sources import FoundRecord, commit_of, head, read_blobs, records_in

LOG_TAIL_LINES = 20


@dataclass
class Row:
    point: str
    case: str
    params: dict[str, Any]
    state: str
    exit_code: int | None
    resources: Resources
    record_commit: str
    attempts: int = 1
    start: str | None = None
    end: str | None = None
    node: str | None = None
    outputs: list[str] = field(default_factory=list)
    missing_outputs: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    log_tail: str = ""


@dataclass
class Table:
    """What one report describes, and where it comes from."""

    title: str
    kind: str  # sweep | jobs
    commit: str  # the dataset commit the table was built at
    rows: list[Row]
    dsid: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    config_path: str | None = None
    config_text: str | None = None
    results: Results = field(default_factory=Results)
    record_commits: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def params(self) -> list[str]:
        return list(dict.fromkeys(k for r in self.rows for k in r.params))

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(k for r in self.rows for k in r.metrics))


def _resources(data: dict | None) -> Resources:
    if not data:
        return Resources().completed()
    known = {f.name for f in fields(Resources)}
    return Resources(**{k: v for k, v in data.items() if k in known})


def select(root: Path, target: str | None, since: str | None, base: Path) -> Table:
    """The records TARGET names: a sweep directory (or its configuration),
    a record's commit, ``--since REV`` for single jobs; default: the last sweep."""
    commit = head(root)
    found = records_in(root, commit)
    if since is not None:
        rev = [f"{commit_of(root, since, '--since')}..{commit}"] if since else [commit]
        jobs = [r for r in records_in(root, *rev) if "points" not in r.record.record]
        if not jobs:
            raise ReportError(f"no single-job run record after {since or 'the first commit'}")
        return _jobs_table(root, commit, jobs, f"jobs since {since or 'the first commit'}")
    sweeps = [r for r in found if "points" in r.record.record]
    if target is None:
        if not sweeps:
            raise ReportError("no sweep run record in this dataset's history: name a TARGET "
                              "(a record's commit) or give --since for single jobs")
        return _sweep_table(root, commit, sweeps, sweeps[-1].record.record["sweep"]["root"])
    on_disk = Path(base, target)
    if os.path.lexists(on_disk):
        # abspath, not resolve: an annexed configuration is a symlink.
        rel = Path(os.path.relpath(os.path.abspath(on_disk), os.path.abspath(root))).as_posix()
        roots = {r.record.record["sweep"]["root"] for r in sweeps
                 if rel in (r.record.record["sweep"]["root"], r.record.record["sweep"]["config"])}
        if not roots:
            raise ReportError(f"{target}: no sweep run record names this sweep directory "
                              "or configuration (has slurm-finish committed its points?)")
        return _sweep_table(root, commit, sweeps, roots.pop())
    sha = commit_of(root, target, "TARGET (neither a path nor a commit)")
    match = [r for r in found if r.commit == sha]
    if not match:
        raise ReportError(f"commit {target} holds no [DATALAD SLURM RUN] record")
    if "points" in match[0].record.record:
        upto = sweeps[:sweeps.index(match[0]) + 1]
        return _sweep_table(root, commit, upto, match[0].record.record["sweep"]["root"])
    return _jobs_table(root, commit, match, f"job {match[0].record.job_id}")


def _sweep_table(root: Path, commit: str, sweeps: list[FoundRecord], sweep_root: str) -> Table:
    mine = [r for r in sweeps if r.record.record["sweep"]["root"] == sweep_root]
    rows: dict[tuple[str, str], Row] = {}
    for found in mine:  # oldest first: a rescheduled point's latest run wins
        for p in found.record.record["points"]:
            key = (str(p["point"]), str(p.get("case") or ""))
            attempts = rows[key].attempts + 1 if key in rows else 1
            rows[key] = Row(point=key[0], case=key[1], params=dict(p.get("params") or {}),
                            state=p["state"], exit_code=p.get("exit_code"),
                            resources=_resources(p.get("resources")), record_commit=found.commit,
                            attempts=attempts, start=p.get("start"), end=p.get("end"),
                            node=p.get("node"), outputs=list(p.get("outputs") or []),
                            missing_outputs=list(p.get("missing_outputs") or []),
                            logs=list(p.get("logs") or []))
    last = mine[-1].record.record
    snapshot = f"{sweep_root}/sweep.yaml"
    blobs = read_blobs(root, commit, [snapshot])
    config_text = blobs.get(snapshot, b"").decode(errors="replace") or None
    table = Table(title=f"sweep {last['sweep'].get('name') or sweep_root}", kind="sweep",
                  commit=commit, rows=list(rows.values()), dsid=last.get("dsid"),
                  versions=dict(last.get("versions") or {}), config_path=last["sweep"]["config"],
                  config_text=config_text, results=_results_of(config_text),
                  record_commits=[r.commit for r in mine])
    _fill(root, table, lambda row: [f"{o}/{table.results.file}" for o in row.outputs[:1]])
    return table


def _results_of(config_text: str | None) -> Results:
    try:
        raw = yaml.safe_load(config_text or "") or {}
    except yaml.YAMLError:
        return Results()
    simulation = raw.get("simulation") if isinstance(raw, dict) else None
    checker = Checker()
    results = results_section(checker, simulation if isinstance(simulation, dict) else {})
    return Results() if checker.problems else results


def _jobs_table(root: Path, commit: str, found: list[FoundRecord], title: str) -> Table:
    rows = []
    for f in found:
        rec = f.record.record
        for task in rec.get("tasks") or [{"state": f.record.state}]:
            job = str(rec.get("slurm_job_id"))
            point = job if task.get("task_id") is None else f"{job}_{task['task_id']}"
            rows.append(Row(point=point, case="", params={}, state=task.get("state", ""),
                            exit_code=task.get("exit_code"), record_commit=f.commit,
                            resources=_resources(task.get("resources")), start=task.get("start"),
                            end=task.get("end"), node=task.get("node"),
                            outputs=f.record.declared_outputs,
                            missing_outputs=list(rec.get("missing_outputs") or []),
                            logs=list(rec.get("slurm_outputs") or [])))
    last = found[-1].record.record
    table = Table(title=title, kind="jobs", commit=commit, rows=rows, dsid=last.get("dsid"),
                  versions=dict(last.get("versions") or {}),
                  record_commits=[f.commit for f in found])
    _fill(root, table, lambda row: [p if p.endswith(".json") else f"{p}/metrics.json"
                                    for p in row.outputs])
    return table


def _fill(root: Path, table: Table, metric_files) -> None:
    """Metrics of every row and log tails of the failed ones, in one read."""
    wanted = {id(r): metric_files(r) for r in table.rows}
    failed = [r for r in table.rows if r.state != "COMPLETED"]
    paths = sorted({p for ps in wanted.values() for p in ps} | {p for r in failed for p in r.logs})
    blobs = read_blobs(root, table.commit, paths)
    missing = 0
    for row in table.rows:
        for path in wanted[id(row)]:
            if path in blobs:
                row.metrics.update(metric_values(blobs[path], table.results.keys))
        missing += not row.metrics and row.state == "COMPLETED"
    for row in failed:
        text = b"".join(blobs.get(p, b"") for p in row.logs).decode(errors="replace")
        # A job may print a token: the page is something we write.
        row.log_tail = redact_text("\n".join(text.rstrip("\n").splitlines()[-LOG_TAIL_LINES:]))
    if missing:
        table.notes.append(f"{missing} completed row(s) have no readable metrics "
                           f"('{table.results.file}' absent, not JSON, or its annexed "
                           "content not present: datalad get it)")


def metric_values(blob: bytes, keys: list[str]) -> dict[str, Any]:
    """Scalars of a metrics JSON file: ``keys`` (a.b for nested ones) or
    every scalar at its top level."""
    try:
        data = json.loads(blob)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    if not keys:
        return {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool))}
    found = {}
    for key in keys:
        value: Any = data
        for step in key.split("."):
            value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, (int, float, str, bool)):
            found[key] = value
    return found


RESOURCE_COLUMNS = ["elapsed_s", "total_cpu_s", "cpu_efficiency", "max_rss_bytes",
                    "req_mem_bytes", "mem_efficiency", "alloc_cpus", "time_limit_s"]


def write_csv(table: Table, path: Path) -> None:
    """``results.csv``; its ``dataset_commit`` column says which commit it describes."""
    params, metrics = table.params, table.metrics
    fixed = {"point", "case", "state", "exit_code", "attempts", "missing_outputs",
             *RESOURCE_COLUMNS, "node", "start", "end", "record_commit", "dataset_commit"}
    # A parameter or metric named like a column of ours (a metric "case")
    # keeps its value under a prefixed name rather than a duplicate header.
    param_cols = [f"param.{p}" if p in fixed else p for p in params]
    metric_cols = [f"metric.{m}" if m in fixed | set(param_cols) else m for m in metrics]
    header = (["point", "case", *param_cols, "state", "exit_code", "attempts",
               "missing_outputs", *RESOURCE_COLUMNS, "node", "start", "end", *metric_cols, "record_commit",
               "dataset_commit"])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in table.rows:
            used = asdict(r.resources)
            writer.writerow([r.point, r.case, *(r.params.get(p) for p in params), r.state,
                             r.exit_code, r.attempts, " ".join(r.missing_outputs),
                             *(used[c] for c in RESOURCE_COLUMNS),
                             r.node, r.start, r.end, *(r.metrics.get(m) for m in metrics),
                             r.record_commit, table.commit])
