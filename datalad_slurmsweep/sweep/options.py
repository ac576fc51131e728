"""Keys of ours in a sweep configuration that do not shape the points: when
a later block starts (BMTool's ``status_list``), where a point leaves its
metrics (``simulation.results``, read by slurm-report) and how a failed
point is retried (the top-level ``retry`` section)."""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from ..jobs.retry import (
    MAX_ATTEMPTS,
    RETRYABLE,
    RetryPolicy,
    factor_problem,
    mem_problem,
    time_problem,
    time_seconds,
)
from .checks import Checker, suggest

# BMTool's status_list choices and the Slurm dependency each one means.
BLOCK_WAITS = {("CANCELLED", "COMPLETED", "FAILED"): "afterany",
               ("CANCELLED", "COMPLETED", "FAILED", "RUNNING"): "after"}


@dataclass
class Results:
    """Where each point leaves its metrics: a JSON file in its OUTPUT_DIR,
    and the keys to read (empty: every scalar at its top level)."""

    file: str = "metrics.json"
    keys: list[str] = field(default_factory=list)


def block_wait(c: Checker, sim: dict) -> str:
    """``--dependency`` kind of a later block, from BMTool's status_list."""
    states = c.typed(sim, "status_list", list, "simulation.", default=[])
    if not states:
        return "afterany"
    kind = BLOCK_WAITS.get(tuple(sorted({str(s).upper() for s in states})))
    if kind is None:
        c.add("'simulation.status_list' must be [COMPLETED, FAILED, CANCELLED] (a block "
              "starts when the previous one ended) or [RUNNING, COMPLETED, FAILED, "
              f"CANCELLED] (as soon as it runs), not {states!r}")
    return kind or "afterany"


def results_section(c: Checker, sim: dict) -> Results:
    section = c.mapping(sim.get("results"), "simulation.results")
    c.unknown(section, {"file", "keys"}, "simulation.results.")
    file = c.text(section, "file", "simulation.results.", default="metrics.json")
    if file and (posixpath.isabs(file) or ".." in file.split("/")):
        c.add(f"'simulation.results.file' must be a path inside the point's OUTPUT_DIR, "
              f"not {file!r}")
    keys = c.typed(section, "keys", list, "simulation.results.", default=[])
    if any(not isinstance(k, str) or not k for k in keys):
        c.add("'simulation.results.keys' must list key names (a.b for nested keys)")
        keys = []
    return Results(file or "metrics.json", keys)



RETRY_KEYS = {"attempts", "when", "scale", "max_time", "max_mem", "exclude_failed_nodes"}


def _retry_states(c: Checker, section: dict) -> list[str] | None:
    states = c.typed(section, "when", list, "retry.")
    if states is None:
        return None
    if not states:
        c.add("'retry.when' must list at least one state (leave it out for the default)")
    for state in states:
        if str(state).upper() not in RETRYABLE:
            c.add(f"'retry.when' lists {state!r}, which is not a state to retry on"
                  + suggest(str(state).upper(), RETRYABLE) + f"; known: {', '.join(RETRYABLE)}")
    return list(dict.fromkeys(str(s).upper() for s in states))


def retry_section(c: Checker, raw: dict, slurm: dict, env: str) -> RetryPolicy | None:
    """The ``retry`` section; None when there is none. Caps below what the
    first attempt asks for (``slurm.<env>``) are refused: no retry could
    ever get more."""
    if raw.get("retry") is None:
        return None
    section = c.mapping(raw["retry"], "retry")
    c.unknown(section, RETRY_KEYS, "retry.")
    policy = RetryPolicy()
    attempts = c.typed(section, "attempts", int, "retry.", default=1)
    if not 1 <= attempts <= MAX_ATTEMPTS:
        c.add(f"'retry.attempts' counts every attempt, the first included: 1 to "
              f"{MAX_ATTEMPTS}, not {attempts}")
    policy.attempts = attempts
    policy.when = _retry_states(c, section) or policy.when
    scale = c.mapping(section.get("scale"), "retry.scale")
    c.unknown(scale, {"time", "mem"}, "retry.scale.")
    for key in ("time", "mem"):
        found = key in scale and factor_problem(scale[key], f"'retry.scale.{key}'")
        c.add(found or None)
        if key in scale and not found:
            setattr(policy, f"scale_{key}", float(scale[key]))
    checks = {"max_time": (time_problem, "time", "slurm.{env}.time"),
              "max_mem": (mem_problem, "mem", "slurm.{env}.mem")}
    for key, (problem, scaled, first) in checks.items():
        if key not in section:
            continue
        found = problem(section[key], f"'retry.{key}'")
        c.add(found)
        if not found and scaled not in scale:
            c.add(f"'retry.{key}' caps 'retry.scale.{scaled}', which is not given")
        if not found:
            setattr(policy, key, section[key])
        base = slurm.get(scaled)
        if not found and base is not None and _below(key, section[key], base):
            c.add(f"'retry.{key}' {section[key]!r} is below '{first.format(env=env)}' "
                  f"{base!r}: a retry could never get more")
    policy.exclude_failed_nodes = c.typed(section, "exclude_failed_nodes", bool, "retry.",
                                          default=True)
    return policy


def _below(key: str, cap, base) -> bool:
    if key == "max_mem":
        return isinstance(base, (int, float)) and cap < base
    try:
        first = time_seconds(str(base))
    except ValueError:
        return False  # check_slurm names that mistake
    return first is not None and (time_seconds(cap) or 0) < first
