"""Keys of ours in a sweep configuration's ``simulation`` section that do
not shape the points: when a later block starts (BMTool's ``status_list``)
and where a point leaves its metrics (``results``, read by slurm-report)."""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from .checks import Checker

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

