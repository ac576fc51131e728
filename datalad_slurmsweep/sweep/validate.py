"""Checking a sweep configuration against the dataset before anything is
written: paths inside the dataset, a committed component directory, case
files that exist, and every JSON edit applicable to the file it names."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError, JsonEditError, PathOutsideDatasetError
from ..provenance.git import dirty_paths, tree_of
from ..provenance.paths import overlaps, to_dataset_relative
from .config import SweepConfig
from .json_edit import check_edit
from .points import SweepLayout, expand_points, layout


def _component_problems(root: Path, comp: str, out: str | None) -> tuple[list[str], str]:
    """Problems with the component directory, and its committed tree id."""
    problems: list[str] = []
    if not (root / comp).is_dir():
        return [f"simulation.component_path: {root / comp} is not a directory"], ""
    dirty = dirty_paths(root, [comp])
    if dirty:
        problems.append(
            f"simulation.component_path {comp} has uncommitted changes "
            f"({', '.join(dirty[:5])}); save them first so the sweep is reproducible")
    tree = tree_of(root, comp)
    if not tree and not dirty:
        problems.append(f"simulation.component_path {comp} is not committed")
    if out is not None and overlaps(out, comp):
        problems.append(f"simulation.output_name {out} overlaps "
                        f"simulation.component_path {comp}")
    return problems, tree


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
        found, tree = _component_problems(root, comp, out)
        problems.extend(found)
    for case in cfg.cases:
        if not (cfg.base_dir / case.config_file).exists():
            problems.append(f"simulation_cases.{case.name}.config_file: "
                            f"{cfg.base_dir / case.config_file} does not exist")
    if comp is not None and (root / comp).is_dir():
        problems.extend(_check_edits(root / comp, cfg))
    if problems:
        raise ConfigError(cfg.path, problems)
    return layout(cfg, expand_points(cfg), root=out, config_dir=config_dir,
                  component_dir=comp, component_tree=tree)


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
