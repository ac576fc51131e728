"""Running a sweep: validate, skip what is done, generate, commit, submit.

Order matters for "nothing lost, nothing leaked": every check runs before
the first file is written; all generated files are committed in one commit
before the first submission, so every job runs on committed inputs; all
jobs are reserved in the store before the first sbatch, and each array's
job id is recorded as soon as sbatch returns it.
"""
from __future__ import annotations

import getpass
import json
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .commits import PlannedCommit, advance, build_commits, head_state
from .crashpoints import crashpoint
from .json_edit import JsonEditError, check_edit
from .paths import PathOutsideDatasetError, overlaps, to_dataset_relative
from .record import parse_record
from .redact import redact_environment
from .scheduling import describe_conflicts, dirty_paths
from .slurm import SlurmError
from .store import Job, JobStore, OutputConflictError, new_token, owner_tag
from .sweep_config import ConfigError, SweepConfig
from .sweep_plan import (
    SweepLayout,
    Task,
    edited_files,
    expand_points,
    layout,
    redacted_config_text,
    render_array_script,
    render_script,
    write_clone,
    write_snapshot,
)

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


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout


def validate(root: Path, cfg: SweepConfig) -> SweepLayout:
    """Check the configuration against the dataset; ConfigError lists all problems."""
    problems: list[str] = []

    def rel(path: Path, what: str) -> str | None:
        try:
            return to_dataset_relative(path, root, root)
        except PathOutsideDatasetError:
            problems.append(f"{what} {path} is outside the dataset {root}")
            return None

    config_dir = rel(cfg.base_dir, "the configuration's directory") or "."
    out = rel(cfg.base_dir / cfg.output_name, "simulation.output_name")
    comp = rel(cfg.base_dir / cfg.component_path, "simulation.component_path")
    tree = ""
    if out == ".":
        problems.append("simulation.output_name must not be the dataset root")
    if comp is not None:
        if not (root / comp).is_dir():
            problems.append(f"simulation.component_path: {root / comp} is not a directory")
        else:
            dirty = dirty_paths(root, [comp])
            if dirty:
                problems.append(
                    f"simulation.component_path {comp} has uncommitted changes "
                    f"({', '.join(dirty[:5])}); save them first so the sweep is reproducible")
            proc = subprocess.run(["git", "rev-parse", f"HEAD:{comp}"], cwd=root,
                                  capture_output=True, text=True)
            tree = proc.stdout.strip() if proc.returncode == 0 else ""
            if not tree and not dirty:
                problems.append(f"simulation.component_path {comp} is not committed")
        if out is not None and overlaps(out, comp):
            problems.append(f"simulation.output_name {out} overlaps "
                            f"simulation.component_path {comp}")
    for case in cfg.cases:
        if not (cfg.base_dir / case.config_file).exists():
            problems.append(f"simulation_cases.{case.name}.config_file: "
                            f"{cfg.base_dir / case.config_file} does not exist")
    if comp is not None and (root / comp).is_dir():
        problems.extend(_check_edits(root / comp, cfg))
    if problems:
        raise ConfigError(cfg.path, problems)
    points = expand_points(cfg)
    return layout(cfg, points, root=out, config_dir=config_dir, component_dir=comp,
                  component_tree=tree)


def _check_edits(comp_dir: Path, cfg: SweepConfig) -> list[str]:
    problems, docs, seen = [], {}, set()
    for axis in cfg.axes:
        for edits in axis.edits:
            for edit in edits:
                where = f"parameter '{axis.name}' ({edit.file}, key '{'.'.join(edit.key)}')"
                if edit.file not in docs:
                    path = comp_dir / edit.file
                    try:
                        docs[edit.file] = json.loads(path.read_text())
                    except FileNotFoundError:
                        docs[edit.file] = None
                        problems.append(f"{where}: {path} does not exist")
                    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                        docs[edit.file] = None
                        problems.append(f"{where}: {path} is not valid JSON ({exc})")
                doc = docs[edit.file]
                if doc is None or (edit.file, edit.key) in seen:
                    continue
                try:
                    check_edit(doc, edit.key, edit.value)
                except JsonEditError as exc:
                    seen.add((edit.file, edit.key))
                    problems.append(f"{where}: {exc}")
    return problems


def completed_outputs(root: Path, sweep_root: str) -> set[str]:
    """Output directories of this sweep's points with a COMPLETED record."""
    log = _git(root, "log", "--format=%B%x00", "-F", f"--grep={SWEEP_SUBJECT}")
    done = set()
    for message in log.split("\x00"):
        message = message.strip()
        if not message:
            continue
        parsed = parse_record(message)
        if not parsed or (parsed.record.get("sweep") or {}).get("root") != sweep_root:
            continue
        for point in parsed.record.get("points", []):
            if point.get("state") == "COMPLETED":
                done.update(point.get("outputs", []))
    return done


def plan(root: Path, store: JobStore, cfg: SweepConfig, lay: SweepLayout,
         *, skip: bool) -> SweepPlan:
    done = completed_outputs(root, lay.root) if skip else set()
    open_outputs = {o for j in store.jobs(sweep=lay.root) for o in j.outputs}
    todo, completed, running = [], [], []
    for task in lay.tasks:
        if task.output_dir in open_outputs:
            running.append(task)
        elif task.output_dir in done:
            completed.append(task)
        else:
            todo.append(task)
    for task in todo:
        clashes = store.conflicts([task.output_dir])
        if clashes:
            raise ConfigError(cfg.path, [describe_conflicts(clashes)])
    config_rel = to_dataset_relative(cfg.path, root, root)
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    array = cfg.submission == "array" and cfg.parallel_submission
    return SweepPlan(cfg, lay, config_rel, todo, completed, running, run_id, array)


def _chunks(tasks: list[Task], size: int) -> list[list[Task]]:
    return [tasks[i:i + size] for i in range(0, len(tasks), size)]


def generate(root: Path, p: SweepPlan, max_array: int) -> tuple[list[str], list[dict]]:
    """Write every file of the plan; return paths to commit and submissions.

    A submission is ``{"argv": [...], "tasks": [Task...], "block": k}``.
    """
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
    (root / paths[1]).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
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
    submissions: list[dict] = []
    throttle = cfg.slurm.get("array_parallelism")
    if p.array:
        run_dir = f"{lay.root}/.runs/{p.run_id}"
        (root / run_dir).mkdir(parents=True, exist_ok=True)
        paths.append(run_dir)
        for case in cfg.cases:
            tasks = [t for t in p.todo if t.case.name == case.name]
            for k, chunk in enumerate(_chunks(tasks, max_array)):
                tasks_file = f"{run_dir}/{case.name}-{k}.tasks"
                script = f"{run_dir}/{case.name}-{k}.sh"
                (root / tasks_file).write_text("".join(t.script + "\n" for t in chunk))
                (root / script).write_text(render_array_script(chunk, cfg, lay, tasks_file))
                spec = f"0-{len(chunk) - 1}" + (f"%{throttle}" if throttle else "")
                submissions.append({"argv": ["sbatch", f"--array={spec}", script],
                                    "tasks": chunk, "block": 0})
    else:
        order = list(dict.fromkeys(t.point.name for t in p.todo))
        for task in p.todo:
            block = order.index(task.point.name) if not cfg.parallel_submission else 0
            submissions.append({"argv": ["sbatch", task.script], "tasks": [task],
                                "block": block})
    return paths, submissions


def commit_generated(root: Path, paths: list[str], message: str) -> str:
    """Commit the generated files with plain ``git add``: they are symlinks,
    scripts, small JSON files and a copy of the component directory, which
    go where the originals are (annexed originals are copied as annex
    symlinks); ``git annex add`` would cost seconds per thousand points."""
    ref, head = head_state(root)
    shas = build_commits(root, [PlannedCommit("sweep", paths, message)], head, False)
    advance(root, ref, shas["sweep"], head)
    return shas["sweep"]


def reserve(store: JobStore, p: SweepPlan, submissions: list[dict], backend_name: str,
            environment: dict) -> list[list[Job]]:
    """One store row per (point, case), all reserved in one transaction."""
    env = redact_environment(environment)
    user = getpass.getuser()
    rows_per_submission = []
    for sub in submissions:
        comment = new_token()
        rows = []
        for index, task in enumerate(sub["tasks"]):
            log = (f"{p.layout.log_dir(task.case.name)}/slurm-%A_%a.out" if p.array
                   else f"{p.layout.log_dir(task.case.name)}/slurm-%j.out")
            rows.append(Job(
                token=comment if index == 0 else new_token(),
                cmd=["sbatch", task.script], pwd=".", outputs=[task.output_dir],
                inputs=[task.script, task.clone], backend=backend_name,
                log_output=log, workdir=".", job_name=f"{p.cfg.name}-{task.case.name}",
                environment=env, sweep=p.layout.root, owner=owner_tag(),
                extra={"user": user, "comment": comment, "point": task.point.name,
                       "case": task.case.name, "params": task.point.params,
                       "run": p.run_id, "config": p.config_rel, "sweep_name": p.cfg.name,
                       **({"array_task": index} if p.array else {})}))
        rows_per_submission.append(rows)
    try:
        store.reserve_many([r for rows in rows_per_submission for r in rows])
    except OutputConflictError as exc:
        raise ConfigError(p.cfg.path, [describe_conflicts(exc.args[0])]) from None
    return rows_per_submission


def submit_all(root: Path, store: JobStore, backend, submissions: list[dict],
               rows_per_submission: list[list[Job]], environment: dict):
    """Submit in order; yield (rows, job id or SlurmError). Stops at the first
    refusal and drops the reservations of everything not submitted."""
    previous_block: list[str] = []
    current_block: list[str] = []
    block = 0
    for i, (sub, rows) in enumerate(zip(submissions, rows_per_submission, strict=True)):
        if sub["block"] != block:
            previous_block, current_block, block = current_block, [], sub["block"]
        argv = list(sub["argv"])
        if previous_block:
            argv.insert(1, "--dependency=afterany:" + ":".join(previous_block))
        try:
            job_id = backend.submit(argv, cwd=root, env=environment, comment=rows[0].token)
        except SlurmError as exc:
            store.remove([r.token for rest in rows_per_submission[i:] for r in rest])
            yield rows, exc
            return
        ids = {r.token: (f"{job_id}_{r.extra['array_task']}" if "array_task" in r.extra
                         else job_id) for r in rows}
        crashpoint("sweep-submitted")
        store.mark_submitted_many(ids)
        current_block.append(job_id)
        yield rows, job_id
