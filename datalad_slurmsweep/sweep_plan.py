"""From a validated configuration to points, clones and batch scripts.

Layout under the sweep's output directory ``O`` (``simulation.output_name``):

``O/sweep.yaml``, ``O/manifest.json``
    the configuration (secrets redacted) and every point of the sweep.
``O/.components/<tree>/``
    one copy of the component directory as committed (``<tree>`` is its git
    tree id): shared by all points, so a sweep of N points does not pay N
    copies, and a changed component directory gets a new snapshot instead of
    changing files under running jobs.
``O/<point>/components/``
    the point's clone: the JSON files the point edits are real files, in
    real directories; everything else is a symlink into the snapshot (a
    whole directory where nothing in it is edited). ``COMPONENT_PATH``
    points here.
``O/<point>/<case>.sh``
    the batch script of one (point, case); ``O/<point>/<case>/`` is its
    ``OUTPUT_DIR``.
``O/.runs/<run>/``
    array dispatch scripts of one ``slurm-sweep`` invocation.
``O/logs/<case>/``
    Slurm's log files (``slurm-%A_%a.out`` or ``slurm-%j.out``).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import shlex
import shutil
import string
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .json_edit import apply_edits
from .redact import redact_tree
from .sweep_config import Case, Edit, SweepConfig


@dataclass
class Point:
    name: str
    params: dict[str, Any]
    edits: list[Edit]

    def manifest(self) -> dict:
        return {"name": self.name, "params": self.params,
                "edits": [{"file": e.file, "key": list(e.key), "value": e.value}
                          for e in self.edits]}


@dataclass
class Task:
    """One (point, case): one job, or one task of an array."""

    point: Point
    case: Case
    script: str  # dataset-relative
    output_dir: str  # dataset-relative
    clone: str  # dataset-relative


@dataclass
class SweepLayout:
    root: str  # O, dataset-relative
    config_dir: str  # directory of the configuration file, dataset-relative
    component_dir: str  # dataset-relative
    component_tree: str
    tasks: list[Task] = field(default_factory=list)

    @property
    def snapshot(self) -> str:
        return f"{self.root}/.components/{self.component_tree[:12]}"

    def log_dir(self, case: str) -> str:
        return f"{self.root}/logs/{case}"


def _fmt(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def point_name(params: dict[str, Any]) -> str:
    """A readable, stable directory name for a point's parameters."""
    if not params:
        return "base"
    name = "_".join(f"{k}-{_fmt(v)}" for k, v in params.items())
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    if len(name) <= 60 and name:
        return name
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    return f"p-{digest}"


def expand_points(cfg: SweepConfig) -> list[Point]:
    """The points: the axes crossed (product) or zipped."""
    if not cfg.axes:
        return [Point("base", {}, [])]
    combos = (zip(*[range(len(a.values)) for a in cfg.axes], strict=True)
              if cfg.grid_mode == "zip"
              else itertools.product(*[range(len(a.values)) for a in cfg.axes]))
    points = []
    for combo in combos:
        params = {a.name: a.values[i] for a, i in zip(cfg.axes, combo, strict=True)}
        edits = [e for a, i in zip(cfg.axes, combo, strict=True) for e in a.edits[i]]
        points.append(Point(point_name(params), params, edits))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        for p in points:
            digest = hashlib.sha1(json.dumps(p.params, sort_keys=True).encode()).hexdigest()
            p.name = f"p-{digest[:10]}"
    return points


def layout(cfg: SweepConfig, points: list[Point], *, root: str, config_dir: str,
           component_dir: str, component_tree: str) -> SweepLayout:
    lay = SweepLayout(root, config_dir, component_dir, component_tree)
    clone_name = PurePosixPath(component_dir).name or "components"
    for point in points:
        for case in cfg.cases:
            base = f"{root}/{point.name}"
            lay.tasks.append(Task(point, case, f"{base}/{case.name}.sh",
                                  f"{base}/{case.name}", f"{base}/{clone_name}"))
    return lay


class _QuotingFormatter(string.Formatter):
    """Every substituted value is shell-quoted; the template is the user's."""

    def format_field(self, value, format_spec):
        return shlex.quote(format(value, format_spec) if format_spec else _fmt(value))


def command_fields(task: Task, cfg: SweepConfig) -> dict[str, Any]:
    fields = {k: v for k, v in task.point.params.items() if k.isidentifier()}
    fields.update(config_file=task.case.config_file, case=task.case.name,
                  point=task.point.name, output_dir="$OUTPUT_DIR",
                  component_path="$COMPONENT_PATH", use_coreneuron=cfg.use_coreneuron)
    return fields


def render_command(task: Task, cfg: SweepConfig) -> str:
    command = _QuotingFormatter().format(task.case.command, **command_fields(task, cfg))
    # $OUTPUT_DIR and $COMPONENT_PATH must expand at run time: unquote them
    # into double quotes (their values contain no characters special there).
    return (command.replace("'$OUTPUT_DIR'", '"$OUTPUT_DIR"')
            .replace("'$COMPONENT_PATH'", '"$COMPONENT_PATH"'))


def sbatch_directives(cfg: SweepConfig) -> list[str]:
    s = cfg.slurm
    lines = []
    for key in ("time", "partition", "nodes", "ntasks", "account"):
        if s.get(key) is not None:
            lines.append(f"--{key}={s[key]}")
    if s.get("mem") is not None:
        per_cpu = math.ceil(float(s["mem"]) * 1024 / int(s.get("ntasks") or 1))
        lines.append(f"--mem-per-cpu={per_cpu}M")
    for key, value in s.items():
        if key in ("time", "partition", "nodes", "ntasks", "account", "mem",
                   "array_parallelism"):
            continue
        option = key.replace("_", "-")
        if value is True:
            lines.append(f"--{option}")
        elif value is not False:
            lines.append(f"--{option}={value}")
    return lines


def _sbatch_line(option: str) -> str:
    # Slurm splits #SBATCH lines on white space with shell-like quoting.
    return "#SBATCH " + shlex.quote(option)


def _header(cfg: SweepConfig, case: str, log: str) -> list[str]:
    """The shebang and ``#SBATCH`` lines every job script of ``case`` shares."""
    lines = ["#!/bin/bash", f"#SBATCH --job-name={shlex.quote(cfg.name + '-' + case)}"]
    lines += [_sbatch_line(o) for o in sbatch_directives(cfg)]
    return lines + [_sbatch_line(f"--output={log}")]


def render_script(task: Task, cfg: SweepConfig, lay: SweepLayout, *, array: bool) -> str:
    q = shlex.quote
    env = {"COMPONENT_PATH": task.clone, "OUTPUT_DIR": task.output_dir}
    log = (f"{lay.log_dir(task.case.name)}/slurm-%A_%a.out" if array
           else f"{lay.log_dir(task.case.name)}/slurm-%j.out")
    lines = _header(cfg, task.case.name, log)
    lines += [f"# Generated by datalad slurm-sweep for point {task.point.name}, "
              f"case {task.case.name}. Submit from the dataset root.", ""]
    lines += list(cfg.module_commands)
    lines += ['SWEEP_ROOT="${SLURM_SUBMIT_DIR:-$PWD}"']
    lines += [f'export {k}="$SWEEP_ROOT"/{q(v)}' for k, v in env.items()]
    lines += [f"export SWEEP_NAME={q(cfg.name)} SWEEP_POINT={q(task.point.name)} "
              f"SWEEP_CASE={q(task.case.name)}",
              f"export SWEEP_PARAMS={q(json.dumps(task.point.params, sort_keys=True))}",
              f"export USE_CORENEURON={q(str(cfg.use_coreneuron).lower())}"]
    for name, value in task.point.params.items():
        var = re.sub(r"[^A-Za-z0-9_]", "_", name)
        lines.append(f"export SWEEP_PARAM_{var}={q(_fmt(value))}")
    lines += ['mkdir -p "$OUTPUT_DIR"', f'cd "$SWEEP_ROOT"/{q(lay.config_dir)}',
              render_command(task, cfg), ""]
    return "\n".join(lines)


def render_array_script(tasks: list[Task], cfg: SweepConfig, lay: SweepLayout,
                        tasks_file: str) -> str:
    """One array job's script: task i runs the i-th (point, case) script."""
    q = shlex.quote
    case = tasks[0].case.name
    lines = _header(cfg, case, f"{lay.log_dir(case)}/slurm-%A_%a.out")
    lines += ["# Generated by datalad slurm-sweep: array task i runs line i+1 of the",
              "# tasks file, one (point, case) batch script per line.",
              'SWEEP_ROOT="${SLURM_SUBMIT_DIR:-$PWD}"',
              f'script=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$SWEEP_ROOT"/{q(tasks_file)})',
              'exec bash "$SWEEP_ROOT/$script"', ""]
    return "\n".join(lines)


def redacted_config_text(cfg: SweepConfig) -> str:
    import yaml
    raw = redact_tree(cfg.raw)
    sim = raw.get("simulation") or {}
    if sim.get("webhook_url"):
        sim["webhook_url"] = "<redacted>"
    return yaml.safe_dump(raw, sort_keys=False)


def _relink(src: Path, dst: Path) -> None:
    """Copy a symlink so that it still points at the same place."""
    target = os.readlink(src)
    if not os.path.isabs(target):
        absolute = os.path.normpath(os.path.join(os.path.dirname(src), target))
        target = os.path.relpath(absolute, os.path.dirname(dst))
    os.symlink(target, dst)


def write_snapshot(ds_root: Path, lay: SweepLayout) -> list[str]:
    """Copy the component directory once; return the created top path (or none)."""
    snap = ds_root / lay.snapshot
    if snap.exists():
        return []
    tmp = snap.with_name(snap.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    src_root = ds_root / lay.component_dir
    for dirpath, dirnames, filenames in os.walk(src_root):
        rel = Path(dirpath).relative_to(src_root)
        (tmp / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            src, dst = Path(dirpath) / name, tmp / rel / name
            if src.is_symlink():
                _relink(src, dst)
            else:
                shutil.copy2(src, dst)
                # Shared by every point: a job writing into its clone in
                # place must fail, not change the other points' inputs.
                dst.chmod(dst.stat().st_mode & ~0o222)
    os.replace(tmp, snap)
    return [lay.snapshot]


def clone_template(snapshot: Path, edited: frozenset[str]) -> tuple[list[str], list[str]]:
    """(directories to create, entries to link) for a clone whose ``edited``
    files are real. Only the directories leading to an edited file exist in
    the clone; every other entry, whole directories included, is one symlink
    into the snapshot, so a clone costs a handful of entries, not one per
    file of the component directory."""
    keep = {"."}
    for rel in edited:
        parts = PurePosixPath(rel).parts[:-1]
        keep.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    links = []
    for directory in sorted(keep):
        for entry in sorted(os.listdir(snapshot / directory)):
            rel = entry if directory == "." else f"{directory}/{entry}"
            if rel not in keep and rel not in edited:
                links.append(rel)
    return sorted(keep), links


def write_clone(ds_root: Path, lay: SweepLayout, task: Task, edited: dict[str, str],
                templates: dict) -> None:
    """The point's component clone: links into the snapshot, edited files real."""
    clone = ds_root / task.clone
    if os.path.lexists(clone):
        shutil.rmtree(clone)
    snap = ds_root / lay.snapshot
    key = frozenset(edited)
    if key not in templates:
        templates[key] = clone_template(snap, key)
    directories, links = templates[key]
    for directory in directories:
        (clone / directory).mkdir(parents=True, exist_ok=True)
    for rel in links:
        dst = clone / rel
        os.symlink(os.path.relpath(snap / rel, dst.parent), dst)
    for rel, text in edited.items():
        (clone / rel).write_text(text)


def edited_files(ds_root: Path, lay: SweepLayout, point: Point,
                 cache: dict[str, str]) -> dict[str, str]:
    """file (relative to the component dir) -> new text, for one point."""
    by_file: dict[str, list] = {}
    for edit in point.edits:
        by_file.setdefault(str(PurePosixPath(edit.file)), []).append((edit.key, edit.value))
    out = {}
    for rel, edits in by_file.items():
        if rel not in cache:
            cache[rel] = (ds_root / lay.component_dir / rel).read_text()
        out[rel] = apply_edits(cache[rel], edits)
    return out
