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
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from .checks import COMMAND_FIELDS, MAX_POINTS, is_finite_number

if TYPE_CHECKING:  # config checks the points with the functions below
    from .config import Axis, Case, Edit, SweepConfig


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

    def log_pattern(self, case: str, array: bool) -> str:
        """The --output pattern of ``case``'s jobs. A '%' in the sweep's
        directory (BMTool's "..._+25%") is written '%%': Slurm's literal."""
        directory = self.log_dir(case).replace("%", "%%")
        return f"{directory}/slurm-%A_%a.out" if array else f"{directory}/slurm-%j.out"


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


# -- checks of the points, before any is made -----------------------------------

def same_value_key(value: Any, depth: int = 0) -> Any:
    """A hashable key under which values a model reads alike are equal (1 and 1.0)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if is_finite_number(value):
        return ("number", float(value))
    if isinstance(value, list) and depth < 50:
        return ("list", tuple(same_value_key(v, depth + 1) for v in value))
    if isinstance(value, dict) and depth < 50:
        return ("object", tuple(sorted((str(k), same_value_key(v, depth + 1))
                                       for k, v in value.items())))
    return ("other", id(value))  # refused elsewhere: never equal to another


def param_variable(name: str) -> str:
    """The environment variable a batch script exports a parameter as."""
    return "SWEEP_PARAM_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _section(axis) -> str:
    return axis.where.rsplit(".", 1)[0]


def name_problems(axes: list[Axis]) -> list[str]:
    """Parameter names that would shadow each other in a point's parameters,
    its environment variables or its command template."""
    problems, by_name, by_var = [], {}, {}
    for axis in axes:
        var = param_variable(axis.name)
        if axis.name in by_name:
            problems.append(f"'{by_name[axis.name]}' and '{_section(axis)}' both sweep a "
                            f"parameter called '{axis.name}': give them distinct 'name's")
        elif var in by_var:
            problems.append(f"'{by_var[var]}' and '{_section(axis)}' would both be exported "
                            f"as {var}: give them distinct 'name's")
        if axis.name in COMMAND_FIELDS:
            problems.append(f"'{_section(axis)}': the parameter name '{axis.name}' is the "
                            f"command field {{{axis.name}}}: give it another 'name'")
        by_name.setdefault(axis.name, _section(axis))
        by_var.setdefault(var, _section(axis))
    return problems


def point_problems(axes: list[Axis], mode: str) -> list[str]:
    """Too many points, or two points with identical parameters (the second
    would redo the first under another name)."""
    sizes = [len(axis.values) for axis in axes]
    count = (min(sizes) if mode == "zip" else math.prod(sizes)) if axes else 1
    if count > MAX_POINTS:
        return [f"the sweep would have {count} points ({' x '.join(map(str, sizes))}), "
                f"more than {MAX_POINTS}"]
    if mode == "zip" and len(axes) > 1:
        seen: dict = {}
        for i in range(count):
            params = {axis.name: axis.values[i] for axis in axes}
            first = seen.setdefault(tuple(same_value_key(v) for v in params.values()), i)
            if first != i:
                return [f"'grid.mode' zip: values {first} and {i} of every parameter are the "
                        f"same ({params}): two points would have identical parameters"]
        return []
    problems = []
    for axis in axes:
        seen_keys: set = set()
        for value in axis.values:
            key = same_value_key(value)
            if key in seen_keys:
                problems.append(f"'{axis.where}' gives '{axis.name}' the value {value!r} more "
                                "than once: two points would have identical parameters")
                break
            seen_keys.add(key)
    return problems


def overlapping_edit_problems(axes: list[Axis]) -> list[str]:
    """Two edits of one key (or of a key and a key inside it) in one file:
    the later overwrites the earlier, so points that differ in their
    parameters would run the same model."""
    targets = [(edit.file, edit.key, where) for axis in axes if axis.edits
               for edit, where in zip(axis.edits[0], axis.sources, strict=False)]
    problems = []
    for i, (file, key, where) in enumerate(targets):
        for file2, key2, where2 in targets[i + 1:]:
            n = min(len(key), len(key2))
            if file == file2 and key[:n] == key2[:n]:
                problems.append(f"'{where}' and '{where2}' both set '{'.'.join(key[:n])}' "
                                f"in {file}: one edit would overwrite the other")
    return problems
