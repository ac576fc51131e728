"""Checking a sweep configuration against the dataset before anything is
written: paths inside the dataset, a committed component directory, case
files that exist, every JSON edit applicable to the file it names, and no
file or symlink where the sweep will need a directory (or the reverse)."""
from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from ..errors import ConfigError, JsonEditError, PathOutsideDatasetError
from ..provenance.datasets import TOP, dirty_nested, local, read_layout
from ..provenance.git import tree_of
from ..provenance.paths import overlaps, to_dataset_relative
from ..redact import secret_findings
from .checks import slurm_pattern_problem, template_fields
from .config import SweepConfig
from .json_edit import check_edit
from .points import SweepLayout, expand_points, layout
from .scripts import render_command

# Problems of one kind listed before the rest are summed up: a sweep of many
# points would otherwise repeat one mistake thousands of times.
_SHOWN = 5


def _component_problems(root: Path, comp: str, out: str | None) -> tuple[list[str], str]:
    """Problems with the component directory, and its committed tree id."""
    problems: list[str] = []
    if ".git" in PurePosixPath(comp).parts:
        return [f"simulation.component_path {comp} is inside .git"], ""
    if not (root / comp).is_dir():
        return [f"simulation.component_path: {root / comp} is not a directory"], ""
    layout = read_layout(root)
    dirty = dirty_nested(root, layout, [comp])
    if dirty:
        problems.append(
            f"simulation.component_path {comp} has uncommitted changes "
            f"({', '.join(dirty[:5])}); save them first so the sweep is reproducible")
    holder = layout.owner(comp)
    tree = tree_of(root / holder, local(comp, holder))  # a YODA code/ subdataset, say
    if not tree and not dirty:
        problems.append(f"simulation.component_path {comp} is not committed")
    if out is not None and overlaps(out, comp):
        problems.append(f"simulation.output_name {out} overlaps "
                        f"simulation.component_path {comp}")
    return problems, tree


def _output_problems(root: Path, out: str, config_rel: str) -> list[str]:
    """The sweep's directory must be one the sweep can create and own."""
    key = "simulation.output_name"
    if out == ".":
        return [f"{key} must not be the dataset root"]
    parts = PurePosixPath(out).parts
    if ".git" in parts:
        return [f"{key} {out} is inside .git, where git keeps its own files"]
    problem = slurm_pattern_problem(out, f"{key} (in the dataset: {out})")
    if problem:
        return [problem]
    holder = read_layout(root).owner(out)
    if holder != TOP:
        return [f"{key} {out} lies in the subdataset {holder}; a sweep writes its points "
                "into the dataset that holds its configuration: put the configuration "
                "into that subdataset, or choose a directory outside it"]
    # git adds nothing beyond a symlink, and mkdir fails on a file.
    for i in range(1, len(parts) + 1):
        path = root.joinpath(*parts[:i])
        if path.is_symlink():
            return [f"{key}: {'/'.join(parts[:i])} is a symbolic link; the sweep's files "
                    "must be written into directories of the dataset"]
        if path.exists() and not path.is_dir():
            return [f"{key}: {'/'.join(parts[:i])} is an existing file, not a directory"]
        if not path.exists():
            break
    if config_rel.startswith(out + "/"):
        return [f"{key} {out} holds the configuration file {config_rel}; the sweep writes "
                "sweep.yaml, manifest.json and a directory per point there"]
    return _foreign_description(root, out)


def _foreign_description(root: Path, out: str) -> list[str]:
    """sweep.yaml and manifest.json are rewritten by every run: refuse to
    overwrite files of those names that a sweep did not write."""
    manifest = root / out / "manifest.json"
    if not manifest.exists() and not (root / out / "sweep.yaml").exists():
        return []
    try:
        ours = "points" in json.loads(manifest.read_text())
    except (OSError, ValueError, TypeError):
        ours = False
    return [] if ours else [
        f"simulation.output_name {out} holds a sweep.yaml or manifest.json that no sweep "
        "wrote (manifest.json lists no points); the sweep would overwrite them: remove "
        "them or choose another directory"]


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
    config_rel = str(PurePosixPath(config_dir) / cfg.path.name)
    out = rel(cfg.base_dir / cfg.output_name, "simulation.output_name")
    comp = rel(cfg.base_dir / cfg.component_path, "simulation.component_path")
    tree = ""
    if out is not None:
        problems.extend(_output_problems(root, out, config_rel))
    if comp is not None:
        found, tree = _component_problems(root, comp, out)
        problems.extend(found)
        problems.extend(_case_name_problems(cfg, comp))
    for case in cfg.cases:
        if not (cfg.base_dir / case.config_file).exists():
            problems.append(f"simulation_cases.{case.name}.config_file: "
                            f"{cfg.base_dir / case.config_file} does not exist")
    if comp is not None and (root / comp).is_dir():
        problems.extend(_check_edits(root, root / comp, cfg))
    problems.extend(_secret_problems(cfg))
    if problems:
        raise ConfigError(cfg.path, problems)
    lay = layout(cfg, expand_points(cfg), root=out, config_dir=config_dir,
                 component_dir=comp, component_tree=tree)
    problems = _occupied_problems(root, lay) + _command_problems(cfg, lay)
    if problems:
        raise ConfigError(cfg.path, problems)
    return lay


def _secret_problems(cfg: SweepConfig) -> list[str]:
    """Commands and module lines are written into committed scripts: a secret
    in them would reach history, and redacting it there would break the job."""
    texts = [(f"simulation_cases.{c.name}.command", c.command) for c in cfg.cases]
    texts += [(f"module_commands.{cfg.environment}[{i}]", line)
              for i, line in enumerate(cfg.module_commands)]
    problems = []
    for where, text in texts:
        for line, what in secret_findings(text):
            problems.append(f"'{where}' holds {what} (line {line}); it would be committed "
                            "in every batch script: pass it through an environment variable "
                            "instead (the environment is redacted before anything is written)")
    return problems


def _case_name_problems(cfg: SweepConfig, comp: str) -> list[str]:
    """A point's directory holds CASE.sh, CASE/ and the component clone."""
    clone = PurePosixPath(comp).name or "components"
    return [f"case name '{case.name}' clashes with the component clone '{clone}' that "
            "every point's directory holds: rename the case"
            for case in cfg.cases if clone in (case.name, case.name + ".sh")]


def _occupied_problems(root: Path, lay: SweepLayout) -> list[str]:
    """Paths the sweep writes that a previous run or the user already took
    with the wrong kind of entry (a file where a directory goes, or the
    reverse), which would stop the generation halfway."""
    if not (root / lay.root).is_dir():
        return []
    dirs = [f"{lay.root}/.components", f"{lay.root}/.runs", f"{lay.root}/logs"]
    dirs += [lay.log_dir(case) for case in dict.fromkeys(t.case.name for t in lay.tasks)]
    files = [f"{lay.root}/sweep.yaml", f"{lay.root}/manifest.json"]
    for point in dict.fromkeys(t.point.name for t in lay.tasks):
        dirs.append(f"{lay.root}/{point}")
    for task in lay.tasks:
        if os.path.lexists(root / lay.root / task.point.name):
            dirs += [task.output_dir, task.clone]
            files.append(task.script)
    found = [f"{p} is a file or symbolic link; the sweep needs a directory there"
             for p in dirs if os.path.lexists(root / p) and
             ((root / p).is_symlink() or not (root / p).is_dir())]
    found += [f"{p} is a directory; the sweep writes a file there"
              for p in files if (root / p).is_dir()]
    if len(found) > _SHOWN:
        found = found[:_SHOWN] + [f"(and {len(found) - _SHOWN} more such paths)"]
    return [f"simulation.output_name: {p}" for p in found]


def _command_problems(cfg: SweepConfig, lay: SweepLayout) -> list[str]:
    """A template with a format spec ({initW:.3f}) or conversion fails only
    for values it does not suit: fill it in for every point."""
    problems = []
    for case in cfg.cases:
        if not any(spec or conv for _, spec, conv in template_fields(case.command)):
            continue
        for task in (t for t in lay.tasks if t.case is case):
            try:
                render_command(task, cfg)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                problems.append(f"simulation_cases.{case.name}.command: cannot be filled in "
                                f"for point {task.point.name} ({task.point.params}): {exc}")
                break
    return problems


def _check_edits(root: Path, comp_dir: Path, cfg: SweepConfig) -> list[str]:
    problems, docs, seen = [], {}, set()
    for axis in cfg.axes:
        for edits in axis.edits:
            for edit in edits:
                where = f"parameter '{axis.name}' ({edit.file}, key '{'.'.join(edit.key)}')"
                if edit.file not in docs:
                    docs[edit.file], problem = _read_json(root, comp_dir / edit.file)
                    if problem:
                        problems.append(f"{where}: {problem}")
                doc = docs[edit.file]
                if doc is None or (edit.file, edit.key) in seen:
                    continue
                try:
                    check_edit(doc, edit.key, edit.value)
                except JsonEditError as exc:
                    seen.add((edit.file, edit.key))
                    problems.append(f"{where}: {exc}")
    return problems


def _read_json(root: Path, path: Path) -> tuple[object, str | None]:
    """The parsed file, or None and why it cannot be edited."""
    real = Path(os.path.realpath(path))
    # Annexed files lead into .git/annex inside the dataset: that is fine.
    if not real.is_relative_to(os.path.realpath(root)):
        return None, f"{path} leads outside the dataset (to {real})"
    try:
        return json.loads(path.read_text()), None
    except FileNotFoundError:
        return None, f"{path} does not exist"
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"{path} is not valid JSON ({exc})"
    except OSError as exc:
        return None, f"{path} cannot be read: {exc.strerror or exc}"
