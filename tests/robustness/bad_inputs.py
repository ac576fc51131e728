"""Bad inputs to the four commands, from tables, run through the CLI.

Every case must end with a non-zero exit and a clear message (a failed
result, or the argument parser's error, naming the offending file, key,
option or path), no traceback, and no trace: HEAD, ``git status``, the work
tree, the job store and its journal, the backend's jobs and our refs as they
were. Cases share a fixture dataset while they leave no trace; a case that
leaves one gets a fresh fixture for the cases after it.
"""
from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .sandbox import (
    JOB,
    MODEL,
    PULSE,
    SST,
    Outcome,
    datalad,
    git,
    new_dataset,
    remove_dataset,
    run_records,
    snapshot,
    trace,
    write,
)

KIND = "bad input"
GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"  # a GitHub token's shape

Expect = list  # alternatives: a string, or a tuple of strings that must all appear


@dataclass
class BadInput:
    name: str
    command: str  # schedule | finish | reschedule | sweep
    args: list[str]  # after ``datalad -f json``; {placeholders} filled from the fixture
    expect: Expect
    fixture: str = "main"  # main | busy | annex | plain (no dataset)
    backend: str = "local"  # slurm: needs the cluster
    cwd: str = "."
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None
    restore: Callable[[Path], None] | None = None


# -- the fixture dataset ------------------------------------------------------------

SBATCH_SCRIPTS = {
    # name: the #SBATCH lines of a batch script, and what the message must name
    "unclosed-dq": ('#SBATCH --output="unclosed.out', ["unclosed-dq.sh"]),
    "unclosed-sq": ("#SBATCH --job-name='unclosed", ["unclosed-sq.sh"]),
    "unknown-option": ("#SBATCH --bogus-option=1", [("unknown-option.sh", "--bogus-option")]),
    "srun-option": ("#SBATCH --pty", [("srun-option.sh", "--pty")]),
    "array-reversed": ("#SBATCH --array=5-1", ["array-reversed.sh", "--array=5-1"]),
    "array-throttle0": ("#SBATCH --array=0-3%0", ["array-throttle0.sh", "0-3%0"]),
    "array-huge": ("#SBATCH --array=0-3000000000", ["array-huge.sh", "--array=0-3000000000"]),
    "array-step0": ("#SBATCH --array=0-10:0", ["array-step0.sh", "0-10:0"]),
    "chdir-absolute": ("#SBATCH --chdir=/tmp", ["chdir-absolute.sh", "--chdir=/tmp"]),
    "output-absolute": ("#SBATCH --output=/tmp/robustness-abs.out",
                        ["/tmp/robustness-abs.out"]),
    "error-absolute": ("#SBATCH --error=/tmp/robustness-abs.err", ["/tmp/robustness-abs.err"]),
    "output-jobid-dir": ("#SBATCH --output=logs-%j/x.out", ["logs-%j"]),
    "output-outside": ("#SBATCH --output=../outside.out", ["../outside.out", "outside.out"]),
    "not-an-option": ("#SBATCH notanoption", [("not-an-option.sh", "notanoption")]),
    "hetjob": ("#SBATCH --ntasks=1\n#SBATCH hetjob\n#SBATCH --ntasks=1", [("hetjob.sh", "hetjob")]),
    "missing-value": ("#SBATCH --time", [("missing-value.sh", "--time")]),
    "empty-quoted": ('#SBATCH "" --time=1', ["empty-quoted.sh"]),
    "colon": ("#SBATCH : --time=1", [("colon.sh", ":")]),
    "hold-local": ("#SBATCH --hold", ["--hold"]),
}


def _record_message(data: dict, subject: str = "Slurm job 1: Completed") -> str:
    return (f"[DATALAD SLURM RUN] {subject}\n\n=== Do not change lines below ===\n"
            f"{json.dumps(data, indent=1)}\n^^^ Do not change lines above ^^^\n")


def _commit_message(ds: Path, message: str) -> str:
    import subprocess
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-F", "-"], cwd=ds,
                   input=message, text=True, check=True, capture_output=True)
    return git(ds, "rev-parse", "HEAD").strip()


def build_main(path: Path, outside: Path, configs: dict[str, str | bytes]) -> dict[str, str]:
    """The shared dataset of most cases; returns the placeholder values."""
    files = {"job.sh": JOB, "data/input.txt": "input\n", "data/dir/a.txt": "a\n",
             "sub/keep.txt": "keep\n", "existing.txt": "a file\n",
             "scriptdir.sh/keep.txt": "a directory named like a script\n"}
    for name, (lines, _) in SBATCH_SCRIPTS.items():
        files[f"scripts/{name}.sh"] = f"#!/bin/sh\n{lines}\ntrue\n"
    ds = new_dataset(path, annex=False, model=True, files=files)
    (ds / "linkin").symlink_to("sub")
    (ds / "linkout").symlink_to(outside)
    git(ds, "add", "linkin", "linkout")
    git(ds, "commit", "-q", "-m", "symlinks")
    plain = git(ds, "rev-parse", "HEAD").strip()
    # One real record, then records a user (or a bad merge) could have made.
    call = datalad(ds, "slurm-schedule", "-o", "rec", "sbatch", "job.sh", "rec")
    assert call.rc == 0, call.stdout + call.stderr
    call = datalad(ds, "slurm-finish", "--wait", "--wait-timeout", "120")
    assert call.rc == 0, call.stdout + call.stderr
    record = git(ds, "rev-parse", "HEAD").strip()
    (real,) = [r for r in run_records(ds) if r.sha == record]
    base = real.data
    values = {"ds": str(ds), "outside": str(outside), "plain": plain, "record": record}
    crafted = {
        "foreign": {**base, "dsid": "00000000-0000-0000-0000-000000000000"},
        "escape": {**base, "outputs": ["../escape"]},
        "gone": {**base, "cmd": "sbatch gone.sh rec", "sbatch_argv": ["sbatch", "gone.sh", "rec"]},
        "redacted": {**base, "cmd": "sbatch '--export=ALL,TOKEN=<redacted>' job.sh rec",
                     "sbatch_argv": ["sbatch", "--export=ALL,TOKEN=<redacted>", "job.sh", "rec"]},
        "nocmd": {k: v for k, v in base.items() if k not in ("cmd", "sbatch_argv")},
        "notsbatch": {**base, "cmd": "rm -rf rec", "sbatch_argv": ["rm", "-rf", "rec"]},
        "absout": {**base, "outputs": ["/etc/passwd"]},
        "pwdout": {**base, "pwd": "../.."},
    }
    for name, data in crafted.items():
        values[name] = _commit_message(ds, _record_message(data))
    values["broken"] = _commit_message(
        ds, "[DATALAD SLURM RUN] Slurm job 1: Completed\n\n=== Do not change lines below ===\n"
            "{not json\n^^^ Do not change lines above ^^^\n")
    for name, text in configs.items():
        write(ds / "model" / f"bad-{name}.yaml", text)
    git(ds, "add", "model")
    git(ds, "commit", "-q", "-m", "sweep configurations")
    values["tree"] = git(ds, "rev-parse", "HEAD^{tree}").strip()
    values["blob"] = git(ds, "rev-parse", "HEAD:job.sh").strip()
    return values


def build_busy(path: Path) -> dict[str, str]:
    """A dataset with one open job that writes busy/ (and a record of busy/)."""
    ds = new_dataset(path, annex=False, model=True,
                     files={"job.sh": JOB, "slow.sh": "#!/bin/sh\nsleep 600\n",
                            "sub/keep.txt": "keep\n"})
    call = datalad(ds, "slurm-schedule", "-o", "busy", "sbatch", "job.sh", "busy")
    assert call.rc == 0, call.stdout + call.stderr
    call = datalad(ds, "slurm-finish", "--wait", "--wait-timeout", "120")
    assert call.rc == 0, call.stdout + call.stderr
    record = git(ds, "rev-parse", "HEAD").strip()
    call = datalad(ds, "slurm-schedule", "-o", "busy", "sbatch", "slow.sh")
    assert call.rc == 0, call.stdout + call.stderr
    job_id = call.results[0]["slurm_job_id"]
    deadline = time.monotonic() + 60  # running, its log written: nothing changes after
    while not (ds / f"slurm-{job_id}.out").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return {"ds": str(ds), "busyrecord": record,
            "busyjob": call.results[0]["slurm_job_id"]}


def build_annex(path: Path) -> dict[str, str]:
    """An annexed dataset with an annexed file in an output directory."""
    new_dataset(path, annex=True, files={"job.sh": JOB, "results/old.txt": "old\n"})
    return {"ds": str(path)}


def build_plain(path: Path) -> dict[str, str]:
    write(path / "job.sh", JOB)
    return {"ds": str(path)}


# -- sweep configurations -------------------------------------------------------------

def example() -> dict:
    return yaml.safe_load((MODEL / "slurm_config_setup.yaml").read_text())


def _grid(**param) -> dict:
    entry = {"file": SST, "key": "tau2", "values": [1.0, 2.0], **param}
    return {"parameters": [entry]}


def _set(path: str, value) -> Callable[[dict], None]:
    """Set ``a.b.c`` (creating mappings); a value of DELETE removes the key."""
    def apply(cfg: dict) -> None:
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return apply


DELETE = object()
NONE_SWEEP = {"seed_sweep": "none"}


def _no_sweep(cfg: dict) -> None:
    cfg["simulation"]["seed_sweep"] = "none"
    cfg.pop("sweep_config", None)


def _and(*steps: Callable[[dict], None]) -> Callable[[dict], None]:
    def apply(cfg: dict) -> None:
        for step in steps:
            step(cfg)
    return apply


_DUPLICATE_KEYS = (MODEL / "slurm_config_setup.yaml").read_text().replace(
    '  param_name: "initW"\n', '  param_name: "initW"\n  param_name: "tau1"\n')
_ALIASES = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9))

# name: (a change to the example, or the file's whole text), what the message names
SWEEP_CONFIGS: dict[str, tuple] = {
    "unknown-top-key": (_set("simulaton", {"x": 1}), ["simulaton"]),
    "unknown-simulation-key": (_set("simulation.outptu_name", "x"), ["outptu_name"]),
    "unknown-case-key": (_set("simulation_cases.baseline.cmd", "x"), ["cmd"]),
    "unknown-sweep-key": (_set("sweep_config.param_nmae", "x"), ["param_nmae"]),
    "unknown-grid-key": (_and(_no_sweep, _set("grid", {**_grid(), "mdoe": "zip"})), ["mdoe"]),
    "unknown-grid-parameter-key": (_and(_no_sweep, _set("grid", _grid(fiel="x"))), ["fiel"]),
    "unknown-multiseed-key": (_and(_set("simulation.seed_sweep", "multiseed"),
                                   _set("sweep_config.multiseed_files",
                                        [{"path": PULSE, "ratio": 1.0, "ration": 2}])),
                              ["ration"]),
    "simulation-not-a-mapping": (_set("simulation", ["x"]), ["simulation"]),
    "simulation-missing": (_set("simulation", DELETE), ["simulation"]),
    "output-name-missing": (_set("simulation.output_name", DELETE), ["output_name"]),
    "output-name-empty": (_set("simulation.output_name", ""), ["output_name"]),
    "output-name-number": (_set("simulation.output_name", 5), ["output_name"]),
    "parallel-submission-string": (_set("simulation.parallel_submission", "yes"),
                                   ["parallel_submission"]),
    "use-coreneuron-number": (_set("simulation.use_coreneuron", 1), ["use_coreneuron"]),
    "seed-sweep-typo": (_set("simulation.seed_sweep", "sed"), ["seed_sweep"]),
    "submission-unknown": (_set("simulation.submission", "both"), ["submission"]),
    "environment-without-section": (_set("simulation.environment", "hellbender"),
                                    ["hellbender"]),
    "ntasks-string": (_set("slurm.local.ntasks", "many"), ["ntasks"]),
    "nodes-zero": (_set("slurm.local.nodes", 0), ["nodes"]),
    "time-words": (_set("slurm.local.time", "ten minutes"), ["time"]),
    "mem-negative": (_set("slurm.local.mem", -1), ["mem"]),
    "slurm-section-string": (_set("slurm.local", "x"), ["slurm.local"]),
    "partition-newline": (_set("slurm.local.partition", "debug\n#SBATCH --hold"),
                          ["partition"]),
    "account-control-character": (_set("slurm.local.account", "a\rb"), ["account"]),
    "sets-array": (_set("slurm.local.array", "0-3"), ["array"]),
    "sets-output": (_set("slurm.local.output", "x.out"), ["output"]),
    "sets-job-name": (_set("slurm.local.job_name", "x"), ["job_name"]),
    "option-name-invalid": (_set("slurm.local.bad key!", 1), ["bad key!"]),
    "option-unknown-to-sbatch": (_set("slurm.local.frobnicate", 1), ["frobnicate"]),
    "option-list-value": (_set("slurm.local.exclude", ["a", "b"]), ["exclude"]),
    "cpus-per-task-word": (_set("slurm.local.cpus_per_task", "two"),
                           ["cpus_per_task", "cpus-per-task"]),
    "array-parallelism-zero": (_set("slurm.local.array_parallelism", 0), ["array_parallelism"]),
    "array-parallelism-word": (_set("slurm.local.array_parallelism", "x"), ["array_parallelism"]),
    "module-commands-string": (_set("module_commands.local", "export X=1"), ["module_commands"]),
    "module-commands-newline": (_set("module_commands.local", ["true\ntrue"]), ["module_commands"]),
    "module-commands-secret": (_set("module_commands.local", [f"export GITHUB_TOKEN={GHP}"]),
                               ["module_commands"]),
    "cases-empty": (_set("simulation_cases", {}), ["simulation_cases"]),
    "case-without-config-file": (_set("simulation_cases.baseline.config_file", DELETE),
                                 ["config_file"]),
    "case-config-file-missing": (_set("simulation_cases.baseline.config_file", "missing.json"),
                                 ["missing.json"]),
    "case-name-with-space": (_set("simulation_cases", {"base line": {
        "config_file": "simulation_config_baseline.json"}}), ["base line"]),
    "command-unknown-field": (_set("simulation_cases.baseline.command", "run {nope}"),
                              ["{nope}", "nope"]),
    "command-positional-field": (_set("simulation_cases.baseline.command", "run {}"),
                                 ["positional", "{}"]),
    "command-bad-conversion": (_set("simulation_cases.baseline.command", "run {config_file!x}"),
                               ["config_file"]),
    "command-secret": (_set("simulation_cases.baseline.command",
                            f"python run_network.py {{config_file}} --token {GHP}"),
                       ["simulation_cases.baseline.command"]),
    "sweep-method-typo": (_set("sweep_config.sweep_method", "valeu"), ["sweep_method"]),
    "param-values-scalar": (_set("sweep_config.param_values", 3.0), ["param_values"]),
    "param-values-empty": (_set("sweep_config.param_values", []), ["param_values"]),
    "param-values-string": (_set("sweep_config.param_values", ["a"]), ["param_values"]),
    "param-values-nan": (_set("sweep_config.param_values", [2.0, float("nan")]),
                         ["param_values"]),
    "param-values-inf": (_set("sweep_config.param_values", [float("inf")]), ["param_values"]),
    "duplicate-points": (_set("sweep_config.param_values", [2.0, 3.0, 2.0]),
                         ["duplicate", "2.0"]),
    "param-name-not-in-json": (_set("sweep_config.param_name", "initw"), ["initw"]),
    "param-name-empty": (_set("sweep_config.param_name", ""), ["param_name"]),
    "base-json-missing": (_set("sweep_config.base_json_file", "nope.json"), ["nope.json"]),
    "base-json-absolute": (_set("sweep_config.base_json_file", "/etc/hostname"),
                           ["base_json_file"]),
    "base-json-dotdot": (_set("sweep_config.base_json_file", "../../x.json"),
                         ["base_json_file"]),
    "percentage-without-base": (_set("sweep_config", {
        "param_name": "initW", "sweep_method": "percentage", "percent_change": 10,
        "iterations": 2, "base_json_file": SST}), ["base_value"]),
    "iterations-negative": (_set("sweep_config", {
        "param_name": "initW", "sweep_method": "percentage", "base_value": 1.0,
        "percent_change": 10, "iterations": -1, "base_json_file": SST}), ["iterations"]),
    "iterations-too-many": (_set("sweep_config", {
        "param_name": "initW", "sweep_method": "percentage", "base_value": 1.0,
        "percent_change": 10, "iterations": 2000000, "base_json_file": SST}), ["iterations"]),
    "percentage-overflow": (_set("sweep_config", {
        "param_name": "initW", "sweep_method": "percentage", "base_value": 1e300,
        "percent_change": 1000, "iterations": 10, "base_json_file": SST}), ["percent_change"]),
    "multiseed-without-files": (_set("simulation.seed_sweep", "multiseed"), ["multiseed_files"]),
    "multiseed-ratio-word": (_and(_set("simulation.seed_sweep", "multiseed"),
                                  _set("sweep_config.multiseed_files",
                                       [{"path": PULSE, "ratio": "x"}])), ["ratio"]),
    "multiseed-path-absolute": (_and(_set("simulation.seed_sweep", "multiseed"),
                                     _set("sweep_config.multiseed_files",
                                          [{"path": "/etc/hostname", "ratio": 1.0}])),
                                ["path"]),
    "sweep-config-without-seed-sweep": (_set("simulation.seed_sweep", "none"), ["sweep_config"]),
    "grid-file-absolute": (_and(_no_sweep, _set("grid", _grid(file="/etc/hostname"))),
                           ["grid.parameters[0].file"]),
    "grid-file-dotdot": (_and(_no_sweep, _set("grid", _grid(file="../x.json"))),
                         ["grid.parameters[0].file"]),
    "grid-key-empty": (_and(_no_sweep, _set("grid", _grid(key=""))), ["grid.parameters[0].key"]),
    "grid-key-not-in-json": (_and(_no_sweep, _set("grid", _grid(key="nope"))), ["nope"]),
    "grid-mode-unknown": (_and(_no_sweep, _set("grid", {**_grid(), "mode": "cross"})),
                          ["grid.mode"]),
    "grid-zip-unequal": (_and(_no_sweep, _set("grid", {"mode": "zip", "parameters": [
        {"file": SST, "key": "tau2", "values": [1.0, 2.0]},
        {"file": SST, "key": "tau1", "values": [1.0, 2.0, 3.0]}]})), ["zip"]),
    "grid-values-mapping": (_and(_no_sweep, _set("grid", _grid(values=[{"a": 1}]))),
                            ["values"]),
    "grid-value-wrong-kind": (_and(_no_sweep, _set("grid", _grid(values=["x"]))),
                              ["tau2", "values"]),
    "grid-name-empty": (_and(_no_sweep, _set("grid", _grid(name=""))), ["name"]),
    "grid-parameters-empty": (_and(_no_sweep, _set("grid", {"parameters": []})),
                              ["grid.parameters"]),
    "output-name-backslash": (_set("simulation.output_name", "../Run\\x"), ["output_name"]),
    "output-name-existing-file": (_set("simulation.output_name", "../existing.txt"),
                                  ["output_name", "existing.txt"]),
    "output-name-in-git": (_set("simulation.output_name", "../.git/sweep"),
                           ["output_name", ".git"]),
    "output-name-outside": (_set("simulation.output_name", "../../outside-sweep"),
                            ["output_name", "outside"]),
    "output-name-absolute": (_set("simulation.output_name", "/tmp/robustness-sweep"),
                             ["output_name", "/tmp/robustness-sweep"]),
    "output-name-through-symlink": (_set("simulation.output_name", "../linkout/sweep"),
                                    ["output_name", "linkout"]),
    "output-name-inside-symlink-in": (_set("simulation.output_name", "../linkin/sweep"),
                                      ["output_name", "linkin"]),
    "output-name-in-components": (_set("simulation.output_name", "components/out"),
                                  ["output_name"]),
    "output-name-root": (_set("simulation.output_name", ".."), ["output_name"]),
    "component-path-missing": (_set("simulation.component_path", "nocomp"),
                               ["component_path", "nocomp"]),
    "webhook-not-a-url": (_set("simulation.webhook_url", "not a url"), ["webhook_url"]),
    "webhook-ftp": (_set("simulation.webhook_url", "ftp://example.invalid/x"), ["webhook_url"]),
    "empty-yaml-key": (_set("simulation.", 1), ["''", "simulation.", "empty"]),
    "duplicate-yaml-keys": (_DUPLICATE_KEYS, [("duplicate", "param_name")]),
    "yaml-syntax-error": ("simulation: [unclosed\n", ["YAML"]),
    "not-utf8": (b"simulation:\n  output_name: \xff\xfe\n", ["UTF-8"]),
    "empty-file": ("", ["simulation", "mapping"]),
    "top-level-list": ("- a\n- b\n", ["mapping"]),
    "alias-bomb": (_ALIASES, ["alias"]),
    "python-tag": ("simulation: !!python/object/apply:os.system ['true']\n", ["tag"]),
}


def config_texts() -> dict[str, str | bytes]:
    texts = {}
    for name, (change, _) in SWEEP_CONFIGS.items():
        if isinstance(change, (str, bytes)):
            texts[name] = change
        else:
            cfg = copy.deepcopy(example())
            change(cfg)
            texts[name] = yaml.safe_dump(cfg, allow_unicode=False)
    return texts


# -- the tables ------------------------------------------------------------------------

def _git_config(key: str, value: str) -> tuple[Callable, Callable]:
    """Set a git config key for one case, and put back what was there."""
    saved: dict[str, str] = {}

    def prepare(ds: Path) -> None:
        saved[key] = git(ds, "config", "--local", "--get", key, check=False).strip()
        git(ds, "config", key, value)

    def restore(ds: Path) -> None:
        if saved.get(key):
            git(ds, "config", key, saved[key])
        else:
            git(ds, "config", "--unset", key, check=False)
    return prepare, restore


def _append(rel: str, text: str = "echo changed\n") -> tuple[Callable, Callable]:
    saved: dict[str, str] = {}

    def prepare(ds: Path) -> None:
        saved[rel] = (ds / rel).read_text()
        (ds / rel).write_text(saved[rel] + text)

    def restore(ds: Path) -> None:
        (ds / rel).write_text(saved[rel])
    return prepare, restore


def _new_file(rel: str, text: str = "new\n") -> tuple[Callable, Callable]:
    return (lambda ds: write(ds / rel, text), lambda ds: (ds / rel).unlink())


def _hide(rel: str) -> tuple[Callable, Callable]:
    saved: dict[str, bytes] = {}

    def prepare(ds: Path) -> None:
        saved[rel] = (ds / rel).read_bytes()
        (ds / rel).unlink()

    def restore(ds: Path) -> None:
        (ds / rel).write_bytes(saved[rel])
    return prepare, restore


def _schedule_cases() -> list[BadInput]:
    out = ["slurm-schedule", "-o", "out"]
    job = ["job.sh", "out"]
    cases = []

    def add(name, args, expect, **kw):
        cases.append(BadInput(f"schedule {name}", "schedule", args, expect, **kw))

    sbatch_lines = [
        ("unknown-long-option", ["--bogus", *job], ["--bogus"]),
        ("unknown-long-option-with-value", ["--frobnicate=3", *job], ["--frobnicate"]),
        ("unknown-short-option", ["-y", *job], ["-y"]),
        ("srun-option", ["--pty", *job], ["--pty"]),
        ("unknown-short-in-bundle", ["-vZ", *job], ["-Z"]),
        ("ambiguous-option", ["--mem-per", *job], ["--mem-per"]),
        ("missing-value-long", ["--time"], ["--time"]),
        ("missing-value-short", ["-o"], ["-o"]),
        ("missing-value-array", ["--array"], ["--array"]),
        ("value-on-flag", ["--requeue=yes", *job], ["--requeue"]),
        ("no-script", [], ["script"]),
        ("options-only", ["--time=5"], ["script"]),
        ("missing-script", ["nope.sh"], ["nope.sh"]),
        ("script-is-a-directory", ["scriptdir.sh"], ["scriptdir.sh"]),
        ("script-outside", ["{outside}/job.sh"], ["{outside}/job.sh"]),
        ("script-name-with-newline", ["job\n.sh"], ["job\n.sh", "job\\n.sh"]),
        ("script-empty-name", [""], ["batch script", "''"]),
        ("wrap-and-script", ["--wrap=true", *job], ["--wrap"]),
        ("wrap-without-value", ["--wrap"], ["--wrap"]),
        ("hetjob-colon", [*job, ":", *job], ["heterogeneous", "':'"]),
        ("array-huge", ["--array=0-3000000000", *job], ["--array=0-3000000000"]),
        ("array-reversed", ["--array=5-1", *job], ["5-1"]),
        ("array-throttle-zero", ["--array=0-3%0", *job], ["%0"]),
        ("array-throttle-word", ["--array=0-3%x", *job], ["0-3%x"]),
        ("array-step-zero", ["--array=0-10:0", *job], ["0-10:0"]),
        ("array-negative", ["--array=-1", *job], ["-1"]),
        ("array-empty-part", ["--array=1,,2", *job], ["1,,2"]),
        ("array-letters", ["--array=a-b", *job], ["a-b"]),
        ("array-above-max-array-size", ["--array=0-1001", *job], ["1001"]),
        ("array-many-digits", ["--array=0-99999999999999999999", *job], ["--array"]),
        ("chdir-absolute", ["--chdir=/tmp", *job], ["--chdir=/tmp"]),
        ("chdir-absolute-short", ["-D", "/tmp", *job], ["/tmp"]),
        ("chdir-outside", ["--chdir=../..", *job], ["--chdir", "outside"]),
        ("output-absolute", ["--output=/tmp/robustness-x.out", *job],
         ["/tmp/robustness-x.out"]),
        ("error-absolute", ["--error=/tmp/robustness-x.err", *job], ["/tmp/robustness-x.err"]),
        ("output-jobid-directory", ["--output=logs-%j/x.out", *job], ["logs-%j"]),
        ("output-array-directory", ["-o", "%A/x.out", *job], ["%A"]),
        ("error-task-directory", ["--error=e%a/x.err", *job], ["e%a"]),
        ("output-outside", ["--output=../outside.out", *job], ["../outside.out", "outside.out"]),
        ("hold-on-local", ["--hold", *job], ["--hold"]),
        ("wait-on-local", ["--wait", *job], ["--wait"]),
        ("export-none-on-local", ["--export=NONE", *job], ["--export"]),
        ("help", ["--help", *job], ["--help"]),
        ("usage", ["--usage", *job], ["--usage"]),
        ("version", ["--version", *job], ["--version"]),
        ("test-only", ["--test-only", *job], ["--test-only"]),
        ("time-word", ["--time=abc", *job], ["abc"]),
        ("time-negative", ["--time=-5", *job], ["-5"]),
        ("ntasks-word", ["--ntasks=zero", *job], ["--ntasks"]),
        ("cpus-per-task-word", ["--cpus-per-task=x", *job], ["--cpus-per-task"]),
        ("dependency-word", ["--dependency=afterok:abc", *job], ["afterok:abc"]),
        ("dependency-type-unknown", ["--dependency=bogus:1", *job], ["bogus"]),
        ("dependency-unknown-job", ["--dependency=afterok:999999", *job], ["999999"]),
        ("open-mode-unknown", ["--open-mode=sideways", *job], ["sideways"]),
    ]
    for name, words, expect in sbatch_lines:
        add(name, [*out, "sbatch", *words], expect)
    for name, (_, expect) in SBATCH_SCRIPTS.items():
        add(f"#SBATCH {name}", [*out, "sbatch", f"scripts/{name}.sh"], expect)
    add("not-sbatch", [*out, "srun", *job], ["sbatch"])
    add("sbatch-by-path", [*out, "/usr/bin/sbatch", *job], ["/usr/bin/sbatch"])
    add("shell-instead", [*out, "bash", *job], ["sbatch"])
    add("no-command", [*out], ["sbatch"])
    # paths
    sched = ["sbatch", *job]
    paths = [
        ("output-.git", [".git"], [".git"]),
        ("output-in-.git", [".git/x"], [".git"]),
        ("output-.git-objects", ["./.git/objects"], [".git"]),
        ("output-.git-via-dotdot", ["sub/../.git/hooks"], [".git"]),
        ("output-outside", ["../outside"], ["../outside"]),
        ("output-absolute-outside", ["{outside}/x"], ["{outside}/x"]),
        ("output-dataset-dotdot", ["{ds}/../x"], ["outside"]),
        ("output-through-symlink-out", ["linkout/x"], ["linkout"]),
        ("output-through-symlink-in", ["linkin/x"], ["linkin"]),
        ("output-newline", ["a\nb"], ["a\nb", "a\\nb", "newline"]),
        ("output-root", ["."], ["root"]),
        ("output-empty", [""], ["root", "empty", "''"]),
        ("output-absolute-root", ["{ds}"], ["root"]),
        ("output-root-dotdot", ["sub/.."], ["root"]),
    ]
    for name, outputs, expect in paths:
        args = ["slurm-schedule"]
        for o in outputs:
            args += ["-o", o]
        add(name, [*args, *sched], expect)
    add("input-missing", [*out, "-i", "missing.txt", *sched], ["missing.txt"])
    add("input-outside", [*out, "-i", "../outside-in", *sched], ["../outside-in", "outside"])
    add("input-missing-directory", [*out, "-i", "data/nope/", *sched], ["data/nope"])
    add("no-output", ["slurm-schedule", *sched], ["--output", "-o"])
    prep, rest = _append("job.sh")
    add("dirty-script", [*out, *sched], ["job.sh"], prepare=prep, restore=rest)
    prep, rest = _append("data/input.txt")
    add("dirty-input", [*out, "-i", "data/input.txt", *sched], ["data/input.txt"],
        prepare=prep, restore=rest)
    prep, rest = _new_file("new.sh", JOB)
    add("untracked-script", [*out, "sbatch", "new.sh", "out"], ["new.sh"],
        prepare=prep, restore=rest)
    prep, rest = _new_file("data/dir/new.txt")
    add("untracked-file-in-input", [*out, "-i", "data/dir", *sched], ["data/dir"],
        prepare=prep, restore=rest)
    prep, rest = _hide("data/input.txt")
    add("deleted-input", [*out, "-i", "data/input.txt", *sched], ["data/input.txt"],
        prepare=prep, restore=rest)
    add("from-subdir-output-.git", ["slurm-schedule", "-o", "../.git", "sbatch", "../job.sh",
                                    "out"], [".git"], cwd="sub")
    add("from-subdir-output-outside", ["slurm-schedule", "-o", "../../x", "sbatch", "../job.sh",
                                       "x"], ["outside"], cwd="sub")
    add("dataset-missing", ["slurm-schedule", "-d", "/nonexistent/ds", *out[1:], *sched],
        ["/nonexistent/ds"])
    add("outside-a-dataset", [*out, *sched], ["dataset"], fixture="plain")
    # settings
    for value in ("abc", "0", "-1"):
        add(f"max-array-size={value}", [*out, *sched], ["DATALAD_SLURMSWEEP_LOCAL_MAX_ARRAY_SIZE"],
            env={"DATALAD_SLURMSWEEP_LOCAL_MAX_ARRAY_SIZE": value})
    for value in ("abc", "0"):
        add(f"workers={value}", [*out, *sched], ["DATALAD_SLURMSWEEP_LOCAL_WORKERS"],
            env={"DATALAD_SLURMSWEEP_LOCAL_WORKERS": value})
    prep, rest = _git_config("datalad.slurmsweep.backend", "nope")
    add("git-config-backend-nope", [*out, *sched], ["datalad.slurmsweep.backend"],
        prepare=prep, restore=rest)
    prep, rest = _git_config("datalad.slurmsweep.local.workers", "many")
    add("git-config-workers-word", [*out, *sched], ["datalad.slurmsweep.local.workers"],
        prepare=prep, restore=rest)
    prep, rest = _git_config("datalad.slurmsweep.local.max-array-size", "0")
    add("git-config-max-array-size-zero", [*out, *sched],
        ["datalad.slurmsweep.local.max-array-size"], prepare=prep, restore=rest)
    add("backend-option-unknown", ["slurm-schedule", "--backend", "nope", "-o", "out", *sched],
        ["nope"])
    # outputs overlapping an open job
    for name, outputs, cwd in (("overlap-same", "busy", "."), ("overlap-inside", "busy/deep/x", "."),
                               ("overlap-dotdot", "./busy/../busy", "."),
                               ("overlap-absolute", "{ds}/busy", "."),
                               ("overlap-from-subdir", "../busy", "sub"),
                               ("overlap-parent", "{ds}/busy/..", ".")):
        script = "../job.sh" if cwd == "sub" else "job.sh"
        add(name, ["slurm-schedule", "-o", outputs, "sbatch", script, "x"],
            ["busy", "{busyjob}", "root"], fixture="busy", cwd=cwd)
    # sbatch refuses after the log directory was made and annexed outputs unlocked
    add("refused-after-log-directory", [*out, "sbatch", "--output=newlogs/x.out",
                                        "--open-mode=sideways", *job], ["sideways"])
    add("refused-with-annexed-output", ["slurm-schedule", "-o", "results", "sbatch",
                                        "--output=newlogs/x.out", "--open-mode=sideways",
                                        "job.sh", "results"], ["sideways"], fixture="annex")
    add("slurm-refused-after-log-directory",
        ["slurm-schedule", "--backend", "slurm", *out[1:], "sbatch", "--output=newlogs/x-%j.out",
         "--mem=lots", *job], ["mem"], backend="slurm")
    add("slurm-refused-with-annexed-output",
        ["slurm-schedule", "--backend", "slurm", "-o", "results", "sbatch", "--mem=lots",
         "job.sh", "results"], ["mem"], fixture="annex", backend="slurm")
    # refused by Slurm itself
    slurm = [
        ("slurm-partition-unknown", ["--partition=nope"], ["nope", "partition"]),
        ("slurm-memory-too-large", ["--mem=99999999"], ["emory"]),
        ("slurm-mem-word", ["--mem=lots"], ["mem"]),
        ("slurm-time-word", ["--time=abc"], ["time"]),
        ("slurm-array-above-max-array-size", ["--array=0-1001"], ["1001", "array"]),
        ("slurm-gres-unknown", ["--gres=gpu:1"], ["gres", "generic resource"]),
        ("slurm-constraint-unknown", ["--constraint=nope"], ["feature", "constraint"]),
        ("slurm-begin-word", ["--begin=notatime"], ["begin", "notatime"]),
        ("slurm-test-only", ["--test-only"], ["--test-only"]),
        ("slurm-help", ["--help"], ["--help"]),
    ]
    for name, words, expect in slurm:
        add(name, ["slurm-schedule", "--backend", "slurm", "-o", "out", "sbatch", *words, *job],
            expect, backend="slurm")
    return cases


def _finish_cases() -> list[BadInput]:
    cases = []

    def add(name, args, expect, **kw):
        cases.append(BadInput(f"finish {name}", "finish", ["slurm-finish", *args], expect, **kw))

    add("accept-and-close", ["--accept-failed-jobs", "--close-failed-jobs"],
        [("--accept-failed-jobs", "--close-failed-jobs")])
    add("points-alone", ["--points"], ["--points"])
    add("wait-timeout-without-wait", ["--wait-timeout", "5"], ["--wait-timeout"])
    add("wait-timeout-zero", ["--wait", "--wait-timeout", "0"], ["--wait-timeout"])
    add("wait-timeout-negative", ["--wait", "--wait-timeout=-3"], ["--wait-timeout"])
    add("wait-timeout-word", ["--wait", "--wait-timeout", "abc"], ["--wait-timeout"])
    add("wait-timeout-nan", ["--wait", "--wait-timeout", "nan"], ["--wait-timeout"])
    add("list-and-wait", ["--list-open-jobs", "--wait"], ["--list-open-jobs"])
    add("list-and-recover", ["--list-open-jobs", "--recover"], ["--recover"])
    add("list-and-message", ["--list-open-jobs", "-m", "hi"], ["--list-open-jobs"])
    add("list-and-close", ["--list-open-jobs", "--close-failed-jobs"], ["--list-open-jobs"])
    add("list-and-branches", ["--list-open-jobs", "--branches"], ["--branches"])
    add("list-and-octopus", ["--list-open-jobs", "--octopus"], ["--octopus"])
    for job_id in ("abc", "12_x", "1.5", "99999", "12_", "_3", "1_2_3", "12[1-3]", "$(id)",
                   "", " 12", "123456789012345678901234567890", "12_-1",
                   "12_99999999999999999999", "0"):
        shown = job_id if job_id.strip() else repr(job_id)
        expect = [job_id, repr(job_id)] if job_id.strip() else ["''", "' 12'", "job id"]
        if job_id == "0":
            expect = ["job 0 ", "'0'"]
        add(f"job-id {shown}", [job_id], expect)
    add("accept-unknown-job", ["--accept-failed-jobs", "99999"], ["99999"])
    add("close-unknown-job", ["--close-failed-jobs", "99999"], ["99999"])
    add("unknown-option", ["--bogus"], ["--bogus"])
    add("dataset-missing", ["-d", "/nonexistent/ds"], ["/nonexistent/ds"])
    add("outside-a-dataset", [], ["dataset"], fixture="plain")
    return cases


def _reschedule_cases() -> list[BadInput]:
    cases = []

    def add(name, args, expect, **kw):
        cases.append(BadInput(f"reschedule {name}", "reschedule", ["slurm-reschedule", *args],
                              expect, **kw))

    add("unknown-revision", ["nope"], ["nope"])
    add("not-a-record", ["{plain}"], ["{plain7}"])
    add("head-not-a-record", ["HEAD"], ["HEAD"])
    add("since-unknown", ["--since", "nope"], ["nope"])
    add("only-failed-and-with-failed", ["--only-failed", "--with-failed-jobs"],
        [("--only-failed", "--with-failed-jobs")])
    add("revision-beyond-history", ["HEAD~999"], ["HEAD~999"])
    add("a-tree", ["{tree}"], ["{tree7}"])
    add("a-blob", ["{blob}"], ["{blob7}"])
    add("a-path-revision", ["HEAD:job.sh"], ["HEAD:job.sh"])
    add("revision-with-newline", ["HEAD\n"], ["HEAD"])
    add("record-of-another-dataset", ["{foreign}"], ["{foreign7}", "another dataset"])
    add("record-json-broken", ["{broken}"], ["{broken7}", "JSON"])
    add("record-output-escapes", ["{escape}"], ["../escape"])
    add("record-script-gone", ["{gone}"], ["gone.sh"])
    add("record-command-redacted", ["{redacted}"], ["redacted"])
    add("record-without-cmd", ["{nocmd}"], ["'cmd'", "cmd"])
    add("record-not-sbatch", ["{notsbatch}"], ["sbatch"])
    add("record-output-absolute", ["{absout}"], ["/etc/passwd"])
    add("record-pwd-outside", ["{pwdout}"], ["outside", "../.."])
    add("unknown-option", ["-x"], ["-x"])
    add("dataset-missing", ["-d", "/nonexistent/ds"], ["/nonexistent/ds"])
    add("outside-a-dataset", [], ["dataset"], fixture="plain")
    add("record-overlaps-open-job", ["{busyrecord}"], ["busy"], fixture="busy")
    add("script-and-report", ["--script", "x.sh", "--report", "{plain}"],
        [("--script", "--report")])
    add("script-into-missing-dir", ["--script", "/nonexistent/dir/x.sh"],
        ["/nonexistent/dir"])
    add("script-empty-name", ["--script", ""], ["--script"])
    return cases


def _sweep_cases(check_every: int = 2) -> list[BadInput]:
    """Each broken configuration submitted; every ``check_every``-th also
    with --check (a path of its own through the code)."""
    cases = []

    def add(name, args, expect, **kw):
        cases.append(BadInput(f"sweep {name}", "sweep", ["slurm-sweep", *args], expect, **kw))

    for i, (name, (_, expect)) in enumerate(SWEEP_CONFIGS.items()):
        path = f"model/bad-{name}.yaml"
        add(name, ["--backend", "local", path], expect)
        if i % check_every == 0:
            add(f"{name} --check", ["--backend", "local", "--check", path], expect)
    prep, rest = _append(f"model/components/{SST}", "\n")
    add("component-directory-dirty", ["--backend", "local", "model/slurm_config_setup.yaml"],
        ["components"], prepare=prep, restore=rest)
    add("config-missing", ["model/none.yaml"], ["none.yaml"])
    add("config-is-a-directory", ["model/components"], ["model/components"])
    add("config-outside-dataset", ["{outside}/sweep.yaml"], ["component_path", "outside"],
        prepare=lambda ds: write(Path(ds).parent / "outside" / "sweep.yaml",
                                 (MODEL / "slurm_config_setup.yaml").read_text()))
    add("env-unknown", ["--env", "nope", "model/slurm_config_setup.yaml"], ["nope"])
    add("env-newline", ["--env", "a\nb", "model/slurm_config_setup.yaml"], ["--env"])
    add("check-and-dry-run", ["--check", "--dry-run", "model/slurm_config_setup.yaml"],
        [("--check", "--dry-run")])
    add("wait-timeout-without-wait", ["--wait-timeout", "5", "model/slurm_config_setup.yaml"],
        ["--wait-timeout"])
    add("check-and-wait", ["--check", "--wait", "model/slurm_config_setup.yaml"], ["--wait"])
    add("dry-run-and-wait", ["--dry-run", "--wait", "model/slurm_config_setup.yaml"], ["--wait"])
    add("backend-unknown", ["--backend", "nope", "model/slurm_config_setup.yaml"], ["nope"])
    add("no-configuration", [], ["CONFIG.yaml", "config"])
    add("outside-a-dataset", ["sweep.yaml"], ["dataset"], fixture="plain")
    add("webhook-environment-not-a-url", ["model/slurm_config_setup.yaml"],
        ["DATALAD_SLURMSWEEP_WEBHOOK_URL"], env={"DATALAD_SLURMSWEEP_WEBHOOK_URL": "not-a-url"})
    prep, rest = _git_config("datalad.slurmsweep.webhook-url", "ftp://example.invalid/x")
    add("webhook-git-config-ftp", ["model/slurm_config_setup.yaml"],
        ["datalad.slurmsweep.webhook-url"], prepare=prep, restore=rest)
    add("max-array-size-word", ["--backend", "local", "model/slurm_config_setup.yaml"],
        ["DATALAD_SLURMSWEEP_LOCAL_MAX_ARRAY_SIZE"],
        env={"DATALAD_SLURMSWEEP_LOCAL_MAX_ARRAY_SIZE": "abc"})
    prep, rest = _git_config("datalad.slurmsweep.backend", "nope")
    add("git-config-backend-nope", ["--check", "model/slurm_config_setup.yaml"],
        ["datalad.slurmsweep.backend"], prepare=prep, restore=rest)
    add("output-overlaps-open-job", ["--backend", "local", "model/busy.yaml"],
        ["busy", "output_name"], fixture="busy",
        prepare=lambda ds: write(ds / "model" / "busy.yaml", yaml.safe_dump(
            {**example(), "simulation": {**example()["simulation"],
                                         "output_name": "../busy/sweep"}})),
        restore=lambda ds: (ds / "model" / "busy.yaml").unlink())
    for name, section, expect in (
            ("slurm-partition-unknown", {"partition": "nope"}, ["partition", "nope"]),
            ("slurm-memory-too-large", {"mem": 99999}, ["mem", "emory"])):
        cfg = example()
        cfg["slurm"]["local"].update(section)
        text = yaml.safe_dump(cfg)
        for check in ([], ["--check"]):
            add(f"{name}{' --check' if check else ''}",
                ["--backend", "slurm", *check, f"model/{name}.yaml"], expect, backend="slurm",
                prepare=lambda ds, n=name, t=text: write(ds / "model" / f"{n}.yaml", t),
                restore=lambda ds, n=name: (ds / "model" / f"{n}.yaml").unlink())
    return cases


def all_cases() -> list[BadInput]:
    return _schedule_cases() + _finish_cases() + _reschedule_cases() + _sweep_cases()


# -- running them -----------------------------------------------------------------------

_FIELD = re.compile(r"\{(\w+)\}")


def fill(text: str, values: dict[str, str]) -> str:
    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        if name.endswith("7") and name[:-1] in values:
            return values[name[:-1]][:7]
        return match.group(0)
    return _FIELD.sub(sub, text)


def _named(message: str, expect: Expect, values: dict[str, str]) -> bool:
    for alternative in expect:
        words = alternative if isinstance(alternative, tuple) else (alternative,)
        if all(fill(w, values) in message for w in words):
            return True
    return False


class Fixtures:
    """The fixture datasets, built when first needed and rebuilt after a
    case left a trace in one."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.built: dict[str, tuple[Path, dict[str, str]]] = {}
        self.generation = 0
        self.outside = workdir / "outside"
        write(self.outside / "job.sh", JOB)
        self._configs = config_texts()

    def get(self, name: str) -> tuple[Path, dict[str, str]]:
        if name not in self.built:
            self.generation += 1
            path = self.workdir / f"{name}-{self.generation}"
            if name == "main":
                values = build_main(path, self.outside, self._configs)
            elif name == "busy":
                values = build_busy(path)
            elif name == "annex":
                values = build_annex(path)
            else:
                values = build_plain(path)
            self.built[name] = (path, values)
        return self.built[name]

    def discard(self, name: str) -> None:
        path, _ = self.built.pop(name)
        remove_dataset(path)

    def close(self) -> None:
        for name in list(self.built):
            self.discard(name)


def run_case(case: BadInput, fixtures: Fixtures) -> Outcome:
    start = time.monotonic()
    outcome = Outcome(KIND, case.name)
    ds, fixed = fixtures.get(case.fixture)
    values = fixed
    args = [fill(a, values) for a in case.args]
    slurm = case.backend == "slurm"
    if case.prepare:
        case.prepare(ds)
    before = snapshot(ds, slurm=slurm)
    call = datalad(ds / case.cwd, *args, env=case.env, timeout=180)
    if slurm:
        time.sleep(0.5)  # a job sbatch accepted shows in squeue at once; be generous
    after = snapshot(ds, slurm=slurm)
    if case.restore:
        case.restore(ds)
    outcome.command = call.shell()
    outcome.count("cases")
    crash = call.crash
    if crash:
        outcome.count("tracebacks")
        outcome.fail(f"crashed: {crash}")
    refused = call.rc != 0 and (call.failures or call.usage_error)
    if call.rc == 0:
        outcome.fail(f"accepted (exit 0): {call.said()}")
    elif not refused and not crash:
        outcome.fail(f"exit {call.rc} without a failed result: {call.said()}")
    message = call.messages if call.failures else call.stderr
    if refused and _named(message, case.expect, values):
        outcome.count("clear")
    elif refused:
        wanted = " or ".join(" + ".join(a) if isinstance(a, tuple) else a for a in case.expect)
        outcome.fail(f"unclear message (should name {fill(wanted, values)!r}): "
                     f"{message.strip()[:500]!r}")
    left = trace(before, after)
    if left:
        outcome.count("traces")
        for item in left:
            outcome.fail(f"left a trace: {item}")
        fixtures.discard(case.fixture)
    outcome.seconds = time.monotonic() - start
    return outcome


def run_cases(cases: list[BadInput], workdir: Path, progress=None) -> list[Outcome]:
    fixtures = Fixtures(workdir)
    outcomes = []
    try:
        for case in cases:
            try:
                outcome = run_case(case, fixtures)
            except Exception as exc:  # noqa: BLE001  (a broken harness is reported, not hidden)
                outcome = Outcome(KIND, case.name)
                outcome.count("cases")
                outcome.fail(f"the trial itself failed: {type(exc).__name__}: {exc}")
                if case.fixture in fixtures.built:
                    fixtures.discard(case.fixture)
            outcomes.append(outcome)
            if progress:
                progress(outcome)
    finally:
        fixtures.close()
    return outcomes
