"""Planning a sweep: what is left to submit, and the files it needs.

Order matters for "nothing lost, nothing leaked": every check runs before
the first file is written, and all generated files are committed in one
commit before the first submission, so every job runs on committed inputs.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, GitError, OutputConflictError
from ..jobs.listing import sweep_outputs
from ..jobs.store import JobStore
from ..provenance.commits import PlannedCommit
from ..provenance.committing import commit_plans
from ..provenance.git import messages
from ..provenance.paths import to_dataset_relative
from ..provenance.record import parse_record
from ..provenance.tables import inflate
from ..redact import redact_tree
from .chunking import task_starts
from .clones import edited_files, write_clone, write_snapshot
from .config import SweepConfig
from .points import SweepLayout, Task
from .scripts import redacted_config_text, render_array_script, render_script

SWEEP_SUBJECT = "[DATALAD SLURM RUN] Sweep"


@dataclass
class SweepPlan:
    cfg: SweepConfig
    layout: SweepLayout
    config_rel: str
    todo: list[Task]
    completed: list[Task] = field(default_factory=list)
    running: list[Task] = field(default_factory=list)
    run_id: str = ""
    array: bool = True


@dataclass
class Dispatch:
    """One sbatch call of the sweep: an array over ``tasks``, or one task."""

    argv: list[str]
    tasks: list[Task]
    block: int = 0
    # n_workers: (array task, slot in it) of each of ``tasks``; else task i is tasks[i]
    packing: list[tuple[int, int]] | None = None


def completed_outputs(root: Path, sweep_root: str) -> set[str]:
    """Output directories of this sweep's points with a COMPLETED record."""
    mine = []
    for sha, message in messages(root, "-F", f"--grep={SWEEP_SUBJECT}"):
        parsed = parse_record(message)
        if parsed and (parsed.record.get("sweep") or {}).get("root") == sweep_root:
            mine.append((sha, parsed))
    done = set()
    for _, parsed in inflate(root, mine):
        for point in parsed.record.get("points", []):
            if point.get("state") == "COMPLETED":
                done.update(point.get("outputs", []))
    return done


def plan(root: Path, store: JobStore, cfg: SweepConfig, lay: SweepLayout,
         *, skip: bool) -> SweepPlan:
    done = completed_outputs(root, lay.root) if skip else set()
    open_outputs = sweep_outputs(store, lay.root)
    todo, completed, running = [], [], []
    for task in lay.tasks:
        if task.output_dir in open_outputs:
            running.append(task)
        elif task.output_dir in done:
            completed.append(task)
        else:
            todo.append(task)
    # Everything generate() will write, not only the points' outputs: an
    # open job may have reserved the sweep directory's own files.
    written = [f"{lay.root}/sweep.yaml", f"{lay.root}/manifest.json", lay.snapshot,
               f"{lay.root}/.runs", *{lay.log_dir(c.name) for c in cfg.cases}]
    for task in todo:
        written += [task.output_dir, task.script, task.clone]
    clashes = [c for c in store.conflicts(written) if c[1] not in open_outputs]
    if clashes:
        raise ConfigError(cfg.path, [str(OutputConflictError(clashes))])
    config_rel = to_dataset_relative(cfg.path, root, root)
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    array = cfg.submission == "array" and cfg.parallel_submission
    return SweepPlan(cfg, lay, config_rel, todo, completed, running, run_id, array)


def _write_description(root: Path, p: SweepPlan) -> list[str]:
    """sweep.yaml (redacted) and manifest.json: the sweep as configured."""
    cfg, lay = p.cfg, p.layout
    paths = [f"{lay.root}/sweep.yaml", f"{lay.root}/manifest.json"]
    (root / lay.root).mkdir(parents=True, exist_ok=True)
    (root / paths[0]).write_text(redacted_config_text(cfg))
    points = {t.point.name: t.point for t in lay.tasks}
    manifest = {"sweep": cfg.name, "root": lay.root, "config": p.config_rel,
                "component_dir": lay.component_dir, "component_tree": lay.component_tree,
                "cases": [{"name": c.name, "config_file": c.config_file, "command": c.command}
                          for c in cfg.cases],
                "points": [pt.manifest() for pt in points.values()]}
    (root / paths[1]).write_text(json.dumps(redact_tree(manifest), indent=1,
                                            sort_keys=True) + "\n")
    return paths


def _dispatches(root: Path, p: SweepPlan, max_array: int, paths: list[str]) -> list[Dispatch]:
    cfg, lay = p.cfg, p.layout
    if not p.array:
        order = list(dict.fromkeys(t.point.name for t in p.todo))
        return [Dispatch(["sbatch", t.script], [t],
                         order.index(t.point.name) if not cfg.parallel_submission else 0)
                for t in p.todo]
    throttle = cfg.slurm.get("array_parallelism")
    run_dir = f"{lay.root}/.runs/{p.run_id}"
    (root / run_dir).mkdir(parents=True, exist_ok=True)
    paths.append(run_dir)
    found = []
    for case in cfg.cases:
        tasks = [t for t in p.todo if t.case.name == case.name]
        for k, (chunk, starts) in enumerate(_arrays(tasks, cfg, max_array)):
            tasks_file = f"{run_dir}/{case.name}-{k}.tasks"
            script = f"{run_dir}/{case.name}-{k}.sh"
            (root / tasks_file).write_text("".join(t.script + "\n" for t in chunk))
            (root / script).write_text(render_array_script(chunk, cfg, lay, tasks_file,
                                                           starts))
            count = len(starts) - 1 if starts else len(chunk)
            spec = f"0-{count - 1}" + (f"%{throttle}" if throttle else "")
            packing = None if starts is None else [
                (i, j - starts[i]) for i in range(count) for j in range(starts[i], starts[i + 1])]
            found.append(Dispatch(["sbatch", f"--array={spec}", script], chunk,
                                  packing=packing))
    return found


def _arrays(tasks: list[Task], cfg: SweepConfig,
            max_array: int) -> list[tuple[list[Task], list[int] | None]]:
    """One case's arrays: its points split at MaxArraySize tasks; with
    n_workers each array's tasks start at the given points."""
    if cfg.chunking is None:
        return [(tasks[k:k + max_array], None) for k in range(0, len(tasks), max_array)]
    starts = task_starts(len(tasks), cfg.chunking.workers)
    arrays = []
    for k in range(0, len(starts) - 1, max_array):
        mine = starts[k:k + max_array + 1]
        arrays.append((tasks[mine[0]:mine[-1]], [s - mine[0] for s in mine]))
    return arrays


def generate(root: Path, p: SweepPlan, max_array: int) -> tuple[list[str], list[Dispatch]]:
    """Write every file of the plan; return the paths to commit and the
    sbatch calls to make."""
    cfg, lay = p.cfg, p.layout
    paths = _write_description(root, p)
    paths += write_snapshot(root, lay) or [lay.snapshot]
    cache: dict[str, str] = {}
    templates: dict = {}
    cloned: set[str] = set()
    for task in p.todo:
        if task.clone not in cloned:
            write_clone(root, lay, task, edited_files(root, lay, task.point, cache), templates)
            cloned.add(task.clone)
            paths.append(task.clone)
        script = root / task.script
        script.write_text(render_script(task, cfg, lay, array=p.array))
        script.chmod(0o755)
        paths.append(task.script)
    for case in cfg.cases:
        (root / lay.log_dir(case.name)).mkdir(parents=True, exist_ok=True)
    return paths, _dispatches(root, p, max_array, paths)


def commit_generated(root: Path, paths: list[str], message: str) -> str:
    """Commit the generated files with plain ``git add``: they are symlinks,
    scripts, small JSON files and a copy of the component directory, which
    go where the originals are (annexed originals are copied as annex
    symlinks); ``git annex add`` would cost seconds per thousand points."""
    result = commit_plans(root, [PlannedCommit("sweep", paths, message)], use_annex=False)
    if result.failed:
        raise GitError(f"the sweep's generated files could not be staged: {result.failed['sweep']}")
    return result.shas["sweep"]
