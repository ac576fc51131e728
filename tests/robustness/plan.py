"""How many trials of each kind a run makes: ``full`` (make robustness),
``quick`` (about a tenth of each) and ``fast`` (a small local sample, for
tests/local/test_robustness_fast.py under make test)."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import bad_inputs, faults, kills, races


@dataclass
class Plan:
    mode: str
    bad_inputs: list = field(default_factory=list)  # BadInput cases
    kills: list = field(default_factory=list)  # KillTrial
    concurrent: list = field(default_factory=list)  # (n_jobs, pairing)
    racing: list = field(default_factory=list)  # (n_jobs, seed)
    store_faults: list = field(default_factory=list)
    slurm_faults: list = field(default_factory=list)
    secrets: list = field(default_factory=list)  # backends
    targets: dict = field(default_factory=dict)  # figure -> the least it must reach


def _every(items: list, step: int, offset: int = 0) -> list:
    return [x for i, x in enumerate(items) if i % step == offset % step]


def make_plan(mode: str, slurm: bool = True, seed: int = 8) -> Plan:
    cases = bad_inputs.all_cases()
    if not slurm:
        cases = [c for c in cases if c.backend != "slurm"]
    pairings = races.PAIRINGS
    if mode == "full":
        plan = Plan(
            mode, bad_inputs=cases,
            kills=kills.plan_trials(84, 16 if slurm else 0, seed, n_index_lock=6),
            concurrent=[(20 + (i * 7) % 31, pairings[i % len(pairings)]) for i in range(50)],
            racing=[(20 + (i * 3) % 11, seed * 100 + i) for i in range(30)],
            store_faults=list(faults.STORE_FAULTS),
            slurm_faults=list(faults.SLURM_FAULTS) if slurm else [],
            secrets=["local", "slurm"] if slurm else ["local"],
            targets={"bad inputs": 200, "kill -9 trials": 100, "concurrent-finish trials": 50,
                     "racing-commit trials": 30})
    elif mode == "quick":
        plan = Plan(
            mode, bad_inputs=_every(cases, 10),
            kills=kills.plan_trials(8, 3 if slurm else 0, seed, n_index_lock=2),
            concurrent=[(20, pairings[i]) for i in range(5)],
            racing=[(20, seed * 100 + i) for i in range(3)],
            store_faults=["deleted", "row-spec"],
            slurm_faults=["both"] if slurm else [],
            secrets=["local"])
    elif mode == "fast":
        local = [c for c in cases if c.backend == "local"]
        plan = Plan(
            mode, bad_inputs=_every(local, 16, 3),
            kills=[kills.KillTrial(c, m, "local", seed * 1000 + i) for i, (c, m) in enumerate(
                [("schedule", "submitted"), ("sweep", "sweep-submitted"), ("finish", "built"),
                 ("finish", "marked"), ("finish", "advanced")])],
            concurrent=[(20, ("plain", "plain")), (20, ("half", "plain"))],
            racing=[(20, seed * 100)],
            store_faults=["deleted", "read-only-schedule"],
            secrets=["local"])
    else:
        raise ValueError(f"unknown mode {mode!r}: full, quick or fast")
    return plan


def only_matching(plan: Plan, pattern: str) -> Plan:
    """The plan's trials whose name holds ``pattern`` (the names in the report)."""
    def names(items, name):
        return [x for x in items if pattern in name(x)]
    return Plan(
        plan.mode, bad_inputs=names(plan.bad_inputs, lambda c: c.name),
        kills=names(plan.kills, lambda t: t.name),
        concurrent=names(plan.concurrent, lambda c: f"{c[0]} jobs, {' + '.join(c[1])}"),
        racing=names(plan.racing, lambda r: f"{r[0]} jobs"),
        store_faults=names(plan.store_faults, str),
        slurm_faults=names(plan.slurm_faults, str),
        secrets=names(plan.secrets, lambda b: f"every form ({b})"),
        targets={})
