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
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from .config import Case, Edit, SweepConfig


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


def fmt_value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def point_name(params: dict[str, Any]) -> str:
    """A readable, stable directory name for a point's parameters."""
    if not params:
        return "base"
    name = "_".join(f"{k}-{fmt_value(v)}" for k, v in params.items())
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
