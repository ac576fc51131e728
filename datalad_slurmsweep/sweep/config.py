"""Reading and validating a sweep configuration.

The schema is BMTool's ``slurm_config_setup.yaml``, unchanged, plus a few
keys of ours (marked below). Every mistake is collected, not just the first,
and each names the file and the key, with a suggestion for a likely typo.
Nothing here touches the dataset.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

SIMULATION_KEYS = {
    "output_name", "environment", "seed_sweep", "component_path",
    "parallel_submission", "use_coreneuron", "webhook_url",
    "submission",  # ours: array (default) | jobs
    "name",  # ours: a name for the sweep (default: output_name's basename)
}
SLURM_KNOWN = {"time", "partition", "nodes", "ntasks", "mem", "account",
               "array_parallelism"}  # array_parallelism: ours (%N)
CASE_KEYS = {"config_file", "command"}
SWEEP_KEYS = {"param_name", "sweep_method", "param_values", "base_value",
              "percent_change", "iterations", "base_json_file", "multiseed_files"}
MULTISEED_KEYS = {"path", "ratio"}
GRID_KEYS = {"mode", "parameters"}
GRID_PARAM_KEYS = {"file", "key", "values", "name"}
TOP_KEYS = {"simulation", "slurm", "module_commands", "simulation_cases",
            "sweep_config", "grid"}
DEFAULT_COMMAND = "mpirun nrniv -mpi -python run_network.py {config_file}"
_SLURM_OPTION = re.compile(r"^[a-z][a-z0-9_-]*$")
_TIME = re.compile(r"^(\d+-)?\d+(:\d+){0,2}$|^(UNLIMITED|INFINITE)$")


@dataclass
class Edit:
    """Set ``key`` (a path of keys) in ``file`` (relative to the component dir)."""

    file: str
    key: tuple[str, ...]
    value: Any


@dataclass
class Axis:
    """One swept quantity: a name and, per value, the edits it makes."""

    name: str
    values: list[Any]
    edits: list[list[Edit]]


@dataclass
class Case:
    name: str
    config_file: str
    command: str


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

    @property
    def base_dir(self) -> Path:
        """Relative paths in the file are relative to the file's directory."""
        return self.path.parent


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Checker:
    def __init__(self):
        self.problems: list[str] = []

    def add(self, msg: str) -> None:
        self.problems.append(msg)

    def unknown(self, mapping: dict, allowed: set, where: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.add(f"unknown key '{where}{key}'{_suggest(key, allowed)}")

    def mapping(self, value, where: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(f"'{where}' must be a mapping, not {type(value).__name__}")
            return {}
        return value

    def typed(self, mapping: dict, key: str, types, where: str, required=False, default=None):
        if key not in mapping or mapping[key] is None:
            if required:
                self.add(f"'{where}{key}' is required")
            return default
        value = mapping[key]
        # YAML's booleans are ints to Python; never accept one for a number.
        if (isinstance(value, bool) and bool not in _as_tuple(types)) or \
                not isinstance(value, types):
            names = " or ".join(t.__name__ for t in _as_tuple(types))
            self.add(f"'{where}{key}' must be {names}, not {value!r}")
            return default
        return value


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


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
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from None
    c = _Checker()
    if not isinstance(raw, dict):
        raise ConfigError(path, ["the file must hold a mapping with a 'simulation' section"])
    c.unknown(raw, TOP_KEYS, "")
    sim = c.mapping(raw.get("simulation"), "simulation")
    if "simulation" not in raw:
        c.add("'simulation' section is required")
    c.unknown(sim, SIMULATION_KEYS, "simulation.")
    output_name = c.typed(sim, "output_name", str, "simulation.", required=True, default="")
    env = environment or c.typed(sim, "environment", str, "simulation.", required=True, default="")
    component_path = c.typed(sim, "component_path", str, "simulation.", default="components")
    seed_sweep = c.typed(sim, "seed_sweep", str, "simulation.", default="none")
    if seed_sweep not in ("none", "seed", "multiseed"):
        c.add(f"'simulation.seed_sweep' must be none, seed or multiseed, not {seed_sweep!r}"
              + _suggest(seed_sweep, ["none", "seed", "multiseed"]))
    submission = c.typed(sim, "submission", str, "simulation.", default="array")
    if submission not in ("array", "jobs"):
        c.add(f"'simulation.submission' must be array or jobs, not {submission!r}")
    webhook = c.typed(sim, "webhook_url", str, "simulation.") or None

    slurm_all = c.mapping(raw.get("slurm"), "slurm")
    slurm = {}
    if env and env not in slurm_all:
        c.add(f"environment '{env}' has no 'slurm.{env}' section"
              + _suggest(env, slurm_all.keys()))
    elif env:
        slurm = _check_slurm(c, c.mapping(slurm_all[env], f"slurm.{env}"), f"slurm.{env}.")
    modules_all = c.mapping(raw.get("module_commands"), "module_commands")
    modules = modules_all.get(env) or []
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        c.add(f"'module_commands.{env}' must be a list of strings")
        modules = []

    cases = _check_cases(c, raw)
    grid_mode, axes = _check_axes(c, raw, seed_sweep)
    if c.problems:
        raise ConfigError(path, c.problems)
    name = sim.get("name") or Path(output_name).name or "sweep"
    return SweepConfig(
        path=path, raw=raw, output_name=output_name, environment=env,
        component_path=component_path, seed_sweep=seed_sweep,
        parallel_submission=bool(sim.get("parallel_submission", True)),
        use_coreneuron=bool(sim.get("use_coreneuron", False)), webhook_url=webhook,
        submission=submission, name=str(name), slurm=slurm,
        module_commands=list(modules), cases=cases, axes=axes, grid_mode=grid_mode)


def _check_cases(c: _Checker, raw: dict) -> list[Case]:
    cases = []
    case_map = c.mapping(raw.get("simulation_cases"), "simulation_cases")
    if not case_map:
        c.add("'simulation_cases' must name at least one case")
    for name, spec in case_map.items():
        spec = c.mapping(spec, f"simulation_cases.{name}")
        c.unknown(spec, CASE_KEYS, f"simulation_cases.{name}.")
        where = f"simulation_cases.{name}."
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", str(name)):
            c.add(f"case name '{name}' may hold only letters, digits, '_', '.' and '-'")
        config_file = c.typed(spec, "config_file", str, where, required=True, default="")
        command = c.typed(spec, "command", str, where, default=DEFAULT_COMMAND)
        cases.append(Case(str(name), config_file, command))
    return cases


def _check_axes(c: _Checker, raw: dict, seed_sweep: str) -> tuple[str, list[Axis]]:
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
    if grid_mode == "zip" and len({len(a.values) for a in axes}) > 1:
        c.add("grid.mode 'zip' needs the same number of values for every parameter, "
              f"got {[len(a.values) for a in axes]}")
    return grid_mode, axes


def _check_slurm(c: _Checker, section: dict, where: str) -> dict:
    out = dict(section)
    time = c.typed(section, "time", str, where)
    if time and not _TIME.match(time):
        c.add(f"'{where}time' must look like HH:MM:SS or D-HH:MM:SS, not {time!r}")
    for key in ("nodes", "ntasks", "array_parallelism"):
        value = c.typed(section, key, int, where)
        if value is not None and value < 1:
            c.add(f"'{where}{key}' must be at least 1, not {value}")
    mem = c.typed(section, "mem", (int, float), where)
    if mem is not None and not (mem > 0 and math.isfinite(mem)):
        c.add(f"'{where}mem' (GB for the whole job) must be positive, not {mem}")
    for key in ("partition", "account"):
        c.typed(section, key, str, where)
    for key, value in section.items():
        if key in SLURM_KNOWN:
            continue
        if not _SLURM_OPTION.match(str(key)):
            c.add(f"'{where}{key}' is not a valid sbatch option name")
        elif not isinstance(value, (str, int, float)):
            c.add(f"'{where}{key}' must be a single value to pass as --{key}=VALUE "
                  "(or true for a flag)")
    return out


def _number_list(c: _Checker, value, where: str) -> list:
    if not isinstance(value, list) or not value:
        c.add(f"'{where}' must be a non-empty list")
        return []
    return value


def _check_bmtool_sweep(c: _Checker, raw: dict, seed_sweep: str) -> Axis:
    sweep = c.mapping(raw.get("sweep_config"), "sweep_config")
    if not sweep:
        c.add(f"'sweep_config' is required when simulation.seed_sweep is '{seed_sweep}'")
        return Axis("", [], [])
    where = "sweep_config."
    c.unknown(sweep, SWEEP_KEYS, where)
    param = c.typed(sweep, "param_name", str, where, required=True, default="")
    base_file = c.typed(sweep, "base_json_file", str, where, required=True, default="")
    method = c.typed(sweep, "sweep_method", str, where, default="value")
    values: list = []
    if method == "value":
        values = _number_list(c, sweep.get("param_values"), where + "param_values")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                c.add(f"'{where}param_values' must hold numbers, not {v!r}")
    elif method == "percentage":
        base = c.typed(sweep, "base_value", (int, float), where, required=True)
        pct = c.typed(sweep, "percent_change", (int, float), where, required=True)
        its = c.typed(sweep, "iterations", int, where, required=True)
        if its is not None and its < 0:
            c.add(f"'{where}iterations' must not be negative, not {its}")
        elif None not in (base, pct, its):
            values = percentage_values(float(base), float(pct), its)
    else:
        c.add(f"'{where}sweep_method' must be value or percentage, not {method!r}"
              + _suggest(method, ["value", "percentage"]))
    linked: list[tuple[str, float]] = []
    files = sweep.get("multiseed_files")
    if seed_sweep == "multiseed":
        if not isinstance(files, list) or not files:
            c.add(f"'{where}multiseed_files' must list at least one file for a multiseed sweep")
            files = []
        for i, item in enumerate(files):
            item = c.mapping(item, f"{where}multiseed_files[{i}]")
            c.unknown(item, MULTISEED_KEYS, f"{where}multiseed_files[{i}].")
            p = c.typed(item, "path", str, f"{where}multiseed_files[{i}].", required=True)
            r = c.typed(item, "ratio", (int, float), f"{where}multiseed_files[{i}].",
                        required=True)
            if p and r is not None:
                linked.append((p, r))
    key = parse_key_path(param) if param else ()
    edits = [[Edit(base_file, key, v)] + [Edit(p, key, v * r) for p, r in linked]
             for v in values]
    return Axis(param, values, edits)


def _check_grid(c: _Checker, grid: dict) -> tuple[str, list[Axis]]:
    c.unknown(grid, GRID_KEYS, "grid.")
    mode = c.typed(grid, "mode", str, "grid.", default="product")
    if mode not in ("product", "zip"):
        c.add(f"'grid.mode' must be product or zip, not {mode!r}" + _suggest(mode, ["product", "zip"]))
    params = grid.get("parameters")
    if not isinstance(params, list) or not params:
        c.add("'grid.parameters' must list at least one parameter")
        return mode, []
    axes = []
    for i, item in enumerate(params):
        where = f"grid.parameters[{i}]."
        item = c.mapping(item, where[:-1])
        c.unknown(item, GRID_PARAM_KEYS, where)
        file = c.typed(item, "file", str, where, required=True)
        key = c.typed(item, "key", str, where, required=True)
        values = _number_list(c, item.get("values"), where + "values")
        if file and key and values:
            path = parse_key_path(key)
            name = str(item.get("name") or path[-1])
            axes.append(Axis(name, values, [[Edit(file, path, v)] for v in values]))
    names = [a.name for a in axes]
    for dup in {n for n in names if names.count(n) > 1}:
        c.add(f"two grid parameters are called '{dup}': give them distinct 'name's")
    return mode, axes
