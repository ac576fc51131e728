"""Reading and validating a sweep configuration.

The schema is BMTool's ``slurm_config_setup.yaml``, unchanged, plus a few
keys of ours (marked below). Every mistake is collected, not just the first,
and each names the file and the key, with a suggestion for a likely typo.
Checks beyond types live in ``sweep/checks.py``. Nothing here touches the
dataset; ``sweep/validate.py`` checks the configuration against it.
"""
from __future__ import annotations

import math
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..jobs.retry import RetryPolicy
from .checks import (
    COMMAND_FIELDS,
    MAX_POINTS,
    Checker,
    check_modules,
    check_slurm,
    command_problems,
    component_file_problem,
    control_problem,
    is_finite_number,
    key_path_problem,
    load_yaml,
    slurm_pattern_problem,
    suggest,
    value_problem,
)
from .chunking import Chunking, check_chunking, retry_problem
from .options import Results, block_wait, results_section, retry_section
from .points import name_problems, overlapping_edit_problems, point_problems

SIMULATION_KEYS = {
    "output_name", "environment", "seed_sweep", "component_path",
    "parallel_submission", "use_coreneuron", "webhook_url",
    "submission",  # ours: array (default) | jobs
    "name",  # ours: a name for the sweep (default: output_name's basename)
    "container",  # ours: a datalad-container container every case runs in
    "status_list",  # BMTool's SimulationBlock argument: when the next block starts
    "results",  # ours: where a point's metrics are (slurm-report)
}
CASE_KEYS = {"config_file", "command", "container"}  # container: ours, for this case
SWEEP_KEYS = {"param_name", "sweep_method", "param_values", "base_value",
              "percent_change", "iterations", "base_json_file", "multiseed_files"}
MULTISEED_KEYS = {"path", "ratio"}
GRID_KEYS = {"mode", "parameters"}
GRID_PARAM_KEYS = {"file", "key", "values", "name"}
TOP_KEYS = {"simulation", "slurm", "module_commands", "simulation_cases",
            "sweep_config", "grid",
            "retry"}  # ours: how failed points are retried (sweep/options.py)
DEFAULT_COMMAND = "mpirun nrniv -mpi -python run_network.py {config_file}"
_CASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass
class Edit:
    """Set ``key`` (a path of keys) in ``file`` (relative to the component dir)."""

    file: str
    key: tuple[str, ...]
    value: Any


@dataclass
class Axis:
    """One swept quantity: a name and, per value, the edits it makes.

    ``where`` is the key listing its values; ``sources`` the key naming each
    edit of one value (a file and key), for messages."""

    name: str
    values: list[Any]
    edits: list[list[Edit]]
    where: str = ""
    sources: list[str] = field(default_factory=list)


@dataclass
class Case:
    name: str
    config_file: str
    command: str
    container: str | None = None  # the case's, else simulation.container


@dataclass
class SweepConfig:
    path: Path
    raw: dict
    output_name: str
    environment: str
    component_path: str
    seed_sweep: str
    parallel_submission: bool
    use_coreneuron: bool
    webhook_url: str | None
    submission: str
    name: str
    slurm: dict[str, Any]
    module_commands: list[str]
    cases: list[Case]
    axes: list[Axis] = field(default_factory=list)
    grid_mode: str = "product"
    container: str | None = None
    containers: dict[str, Any] = field(default_factory=dict)  # name -> ContainerRun, once found
    block_dependency: str = "afterany"
    results: Results = field(default_factory=lambda: Results())
    chunking: Chunking | None = None  # slurm.<env>.n_workers: points packed into tasks
    retry: RetryPolicy | None = None

    @property
    def base_dir(self) -> Path:
        """Relative paths in the file are relative to the file's directory."""
        return self.path.parent


def parse_key_path(key: str) -> tuple[str, ...]:
    """``a.b.c`` or the JSON pointer ``/a/b/c`` (with ``~1`` and ``~0``)."""
    if key.startswith("/"):
        return tuple(p.replace("~1", "/").replace("~0", "~") for p in key[1:].split("/"))
    return tuple(key.split("."))


def percentage_values(base: float, percent: float, iterations: int) -> list[float]:
    """BMTool's compounding: base, base*(1+p), base*(1+p)^2, ... (iterations+1 values)."""
    values = [base]
    for _ in range(iterations):
        values.append(values[-1] * (1 + percent / 100))
    return values


def load_config(path: Path, environment: str | None = None) -> SweepConfig:
    """Read and validate ``path``; raise ConfigError listing every mistake."""
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(path, ["the file must hold a mapping with a 'simulation' section"])
    c = Checker()
    c.unknown(raw, TOP_KEYS, "")
    sim = _check_simulation(c, raw, environment)
    env = sim["environment"]
    slurm_all = c.mapping(raw.get("slurm"), "slurm")
    slurm, chunking = {}, None
    if env and env not in slurm_all:
        c.add(f"environment '{env}' has no 'slurm.{env}' section"
              + suggest(env, slurm_all.keys()))
    elif env:
        slurm = check_slurm(c, c.mapping(slurm_all[env], f"slurm.{env}"), f"slurm.{env}.")
        chunking = check_chunking(c, slurm, f"slurm.{env}.", array=sim["submission"] == "array"
                                  and sim["parallel_submission"] is not False)
    modules = check_modules(c, raw, env)
    retry = retry_section(c, raw, slurm, env)
    c.add(retry_problem(chunking, retry, env))
    cases = _check_cases(c, raw)
    for case in cases:
        case.container = case.container or sim["container"]
    grid_mode, axes = _check_axes(c, raw, sim["seed_sweep"])
    fields = COMMAND_FIELDS | {a.name for a in axes if a.name.isidentifier()}
    for case in cases:
        c.problems.extend(command_problems(case.command,
                                           f"simulation_cases.{case.name}.command", fields))
    if c.problems:
        raise ConfigError(path, c.problems)
    return SweepConfig(path=path, raw=raw, slurm=slurm, module_commands=modules,
                       cases=cases, axes=axes, grid_mode=grid_mode, chunking=chunking,
                       retry=retry, **sim)


def _check_simulation(c: Checker, raw: dict, environment: str | None) -> dict[str, Any]:
    """The ``simulation`` section, as SweepConfig's keyword arguments."""
    sim = c.mapping(raw.get("simulation"), "simulation")
    if "simulation" not in raw:
        c.add("'simulation' section is required")
    w = "simulation."
    c.unknown(sim, SIMULATION_KEYS, w)
    output_name = c.text(sim, "output_name", w, required=True, default="")
    if "output_name" in sim and output_name == "":
        c.add("'simulation.output_name' must not be empty: it names the sweep's directory")
    env = environment or c.text(sim, "environment", w, required=True, default="")
    if environment:
        c.add(control_problem(environment, "--env"))
    seed_sweep = c.typed(sim, "seed_sweep", str, w, default="none")
    if seed_sweep not in ("none", "seed", "multiseed"):
        c.add(f"'simulation.seed_sweep' must be none, seed or multiseed, not {seed_sweep!r}"
              + suggest(seed_sweep, ["none", "seed", "multiseed"]))
    submission = c.typed(sim, "submission", str, w, default="array")
    if submission not in ("array", "jobs"):
        c.add(f"'simulation.submission' must be array or jobs, not {submission!r}")
    name = c.text(sim, "name", w)
    for key, value in (("output_name", output_name), ("name", name)):
        c.add(isinstance(value, str) and slurm_pattern_problem(value, w + key) or None)
    name = name or Path(output_name).name or "sweep"
    return dict(
        output_name=output_name, environment=env, seed_sweep=seed_sweep,
        component_path=c.text(sim, "component_path", w, default="components"),
        # A string ("false") would be true to Python: the types are checked.
        parallel_submission=c.typed(sim, "parallel_submission", bool, w, default=True),
        use_coreneuron=c.typed(sim, "use_coreneuron", bool, w, default=False),
        webhook_url=c.text(sim, "webhook_url", w) or None,
        submission=submission, name=name, block_dependency=block_wait(c, sim),
        results=results_section(c, sim), container=c.text(sim, "container", w) or None)


def _check_cases(c: Checker, raw: dict) -> list[Case]:
    cases = []
    case_map = c.mapping(raw.get("simulation_cases"), "simulation_cases")
    if not case_map:
        c.add("'simulation_cases' must name at least one case")
    for name, spec in case_map.items():
        where = f"simulation_cases.{name}."
        spec = c.mapping(spec, where[:-1])
        c.unknown(spec, CASE_KEYS, where)
        # The name is a directory, a script (NAME.sh) and a log directory.
        if not _CASE_NAME.fullmatch(name):
            c.add(f"case name {name!r} may hold only letters, digits, '_', '.' and '-' "
                  "(at most 100, the first a letter or digit)")
        elif name.endswith(".sh") and name[:-3] in case_map:
            c.add(f"case names '{name[:-3]}' and '{name}' clash: the script of the first "
                  "is the directory of the second")
        config_file = c.text(spec, "config_file", where, required=True, default="")
        # A template may span lines (a YAML block scalar): it is the user's
        # own shell code, written into the script as it is.
        command = c.text(spec, "command", where, default=DEFAULT_COMMAND, allow="\n\t")
        cases.append(Case(name, config_file, command, c.text(spec, "container", where) or None))
    return cases


def _check_axes(c: Checker, raw: dict, seed_sweep: str) -> tuple[str, list[Axis]]:
    """The swept axes (a BMTool sweep, then grid parameters) and the grid mode."""
    axes = []
    if seed_sweep != "none":
        axes.append(_check_bmtool_sweep(c, raw, seed_sweep))
    elif "sweep_config" in raw and raw["sweep_config"]:
        c.add("'sweep_config' is given but 'simulation.seed_sweep' is 'none'; "
              "set it to 'seed' or 'multiseed' (or remove sweep_config)")
    grid_mode = "product"
    if raw.get("grid") is not None:
        grid_mode, grid_axes = _check_grid(c, c.mapping(raw["grid"], "grid"))
        axes.extend(grid_axes)
    axes = [a for a in axes if a.values]
    if grid_mode == "zip" and len({len(a.values) for a in axes}) > 1:
        c.add("grid.mode 'zip' needs the same number of values for every parameter, "
              f"got {[len(a.values) for a in axes]}")
    else:
        c.problems.extend(point_problems(axes, grid_mode))
    c.problems.extend(name_problems(axes))
    c.problems.extend(overlapping_edit_problems(axes))
    return grid_mode, axes


def _number_list(c: Checker, value, where: str) -> list:
    if not isinstance(value, list) or not value:
        c.add(f"'{where}' must be a non-empty list")
        return []
    if len(value) > MAX_POINTS:
        c.add(f"'{where}' lists more than {MAX_POINTS} values")
        return []
    return value


def _file(c: Checker, mapping: dict, key: str, where: str) -> str | None:
    """A file relative to the component directory, normalised (so that two
    spellings of one file are one file)."""
    value = c.typed(mapping, key, str, where, required=True)
    problem = value is not None and component_file_problem(value, where + key)
    c.add(problem or None)
    return None if value is None or problem else posixpath.normpath(value)


def _key_path(c: Checker, mapping: dict, key: str, where: str) -> tuple[str, ...] | None:
    text = c.typed(mapping, key, str, where, required=True)
    problem = text is not None and key_path_problem(text, where + key)
    c.add(problem or None)
    return None if text is None or problem else parse_key_path(text)


def _bmtool_values(c: Checker, sweep: dict, param: str) -> tuple[list, str]:
    """The values of a BMTool sweep, and the key that lists them."""
    where = "sweep_config."
    method = c.typed(sweep, "sweep_method", str, where, default="value")
    if method == "value":
        values = _number_list(c, sweep.get("param_values"), where + "param_values")
        bad = [v for v in values if not is_finite_number(v)]
        if bad:
            c.add(f"'{where}param_values' must hold finite numbers, not {bad[0]!r}")
            return [], where + "param_values"
        return values, where + "param_values"
    if method != "percentage":
        c.add(f"'{where}sweep_method' must be value or percentage, not {method!r}"
              + suggest(method, ["value", "percentage"]))
        return [], where + "sweep_method"
    base = c.typed(sweep, "base_value", (int, float), where, required=True)
    pct = c.typed(sweep, "percent_change", (int, float), where, required=True)
    its = c.typed(sweep, "iterations", int, where, required=True)
    for key, value in (("base_value", base), ("percent_change", pct)):
        if value is not None and not is_finite_number(value):
            c.add(f"'{where}{key}' must be a finite number, not {value!r}")
            return [], where + key
    if its is not None and its < 0:
        c.add(f"'{where}iterations' must not be negative, not {its}")
    elif its is not None and its >= MAX_POINTS:
        c.add(f"'{where}iterations' {its} would make more than {MAX_POINTS} points")
    elif None not in (base, pct, its):
        values = percentage_values(float(base), float(pct), its)
        bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        if bad is None:
            return values, where + "percent_change"
        c.add(f"'{where}percent_change' {pct} compounds '{param}' past the largest float "
              f"after {bad} of {its} iterations: JSON has no infinity")
    return [], where + "percent_change"


def _check_bmtool_sweep(c: Checker, raw: dict, seed_sweep: str) -> Axis:
    sweep = c.mapping(raw.get("sweep_config"), "sweep_config")
    if not sweep:
        c.add(f"'sweep_config' is required when simulation.seed_sweep is '{seed_sweep}'")
        return Axis("", [], [])
    where = "sweep_config."
    c.unknown(sweep, SWEEP_KEYS, where)
    key = _key_path(c, sweep, "param_name", where)
    base_file = _file(c, sweep, "base_json_file", where)
    param = str(sweep.get("param_name"))
    values, values_key = _bmtool_values(c, sweep, param)
    linked = _multiseed(c, sweep, values, param) if seed_sweep == "multiseed" else []
    if key is None or base_file is None or linked is None:
        return Axis(param, [], [])
    edits = [[Edit(base_file, key, v)] + [Edit(p, key, v * r) for p, r, _ in linked]
             for v in values]
    sources = [where + "base_json_file"] + [source for _, _, source in linked]
    return Axis(param, values, edits, values_key, sources)


def _multiseed(c: Checker, sweep: dict, values: list,
               param: str) -> list[tuple[str, float, str]] | None:
    """(file, ratio, its key) of every multiseed file; None after a problem."""
    where = "sweep_config.multiseed_files"
    files = sweep.get("multiseed_files")
    if not isinstance(files, list) or not files:
        c.add(f"'{where}' must list at least one file for a multiseed sweep")
        return None
    linked: list | None = []
    for i, item in enumerate(files):
        item = c.mapping(item, f"{where}[{i}]")
        c.unknown(item, MULTISEED_KEYS, f"{where}[{i}].")
        path = _file(c, item, "path", f"{where}[{i}].")
        ratio = c.typed(item, "ratio", (int, float), f"{where}[{i}].", required=True)
        if ratio is not None and not is_finite_number(ratio):
            c.add(f"'{where}[{i}].ratio' must be a finite number, not {ratio!r}")
        elif ratio is not None and not all(is_finite_number(_scaled(v, ratio))
                                           for v in values):
            c.add(f"'{where}[{i}].ratio' {ratio} scales '{param}' past the largest float")
        elif path is not None and ratio is not None and linked is not None:
            linked.append((path, ratio, f"{where}[{i}].path"))
            continue
        linked = None
    return linked


def _scaled(value: float, ratio: float) -> float:
    try:
        return value * ratio
    except OverflowError:  # an integer too large for a float
        return math.inf


def _check_grid(c: Checker, grid: dict) -> tuple[str, list[Axis]]:
    c.unknown(grid, GRID_KEYS, "grid.")
    mode = c.typed(grid, "mode", str, "grid.", default="product")
    if mode not in ("product", "zip"):
        c.add(f"'grid.mode' must be product or zip, not {mode!r}" + suggest(mode, ["product", "zip"]))
    params = grid.get("parameters")
    if not isinstance(params, list) or not params:
        c.add("'grid.parameters' must list at least one parameter")
        return mode, []
    axes = []
    for i, item in enumerate(params):
        where = f"grid.parameters[{i}]."
        item = c.mapping(item, where[:-1])
        c.unknown(item, GRID_PARAM_KEYS, where)
        file = _file(c, item, "file", where)
        path = _key_path(c, item, "key", where)
        name = c.text(item, "name", where)
        if name == "":
            c.add(f"'{where}name' must not be empty (leave it out for the key's last step)")
        values = _number_list(c, item.get("values"), where + "values")
        problem = next(filter(None, (value_problem(v, where + "values") for v in values)), None)
        c.add(problem)
        if file and path and values and not problem:
            axes.append(Axis(name or path[-1], values, [[Edit(file, path, v)] for v in values],
                             where + "values", [where + "key"]))
    return mode, axes
