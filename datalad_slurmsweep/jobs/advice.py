"""What to request next time, from what the tasks used (``seff``'s advice).

One rule for ``slurm-finish`` and ``slurm-report``: a task that ended
OUT_OF_MEMORY or TIMEOUT needs more; tasks that used under 30 % of the
requested memory or time limit ask for too much, which costs queue time.
The proposal leaves 50 % headroom over the largest use seen.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..backends.base import JobState, Resources

if TYPE_CHECKING:  # model imports this module
    from .model import Outcome

LOW_USE = 0.30
HEADROOM = 1.5
_MIB = 1024 ** 2


@dataclass
class Advice:
    """One proposal: the figure (memory | time), why, and the sbatch option."""

    figure: str
    reason: str
    option: str

    def __str__(self) -> str:
        return f"{self.reason}; request {self.option} next time"


def mem_text(nbytes: float) -> str:
    """Bytes as sbatch reads them, in whole MiB or GiB (``--mem=1536M``)."""
    mib = max(1, math.ceil(nbytes / _MIB))
    return f"{mib // 1024}G" if mib % 1024 == 0 else f"{mib}M"


def time_text(seconds: float) -> str:
    """Seconds as sbatch's ``--time`` in whole minutes (``D-HH:MM:SS``)."""
    minutes = max(1, math.ceil(seconds / 60))
    days, rest = divmod(minutes * 60, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:00"
    return f"{days}-{text}" if days else text


def advise(tasks: Iterable[tuple[JobState, Resources | None]]) -> list[Advice]:
    """Proposals for the next run of these tasks (one job or a whole sweep)."""
    items = [(state, r) for state, r in tasks if r is not None]
    advice = []
    req_mem = max((r.req_mem_bytes or 0 for _, r in items), default=0)
    peak = max((r.max_rss_bytes or 0 for _, r in items), default=0)
    limit = max((r.time_limit_s or 0 for _, r in items), default=0)
    longest = max((r.elapsed_s or 0 for s, r in items if s.is_success), default=0)
    oom = sum(s is JobState.OUT_OF_MEMORY for s, _ in items)
    timeouts = sum(s is JobState.TIMEOUT for s, _ in items)
    if oom and req_mem:
        advice.append(Advice("memory", f"{oom} task(s) ran out of memory at "
                             f"{mem_text(req_mem)}",
                             f"--mem={mem_text(max(2 * req_mem, HEADROOM * peak))}"))
    elif req_mem and peak and peak < LOW_USE * req_mem and \
            mem_text(HEADROOM * peak) != mem_text(req_mem):
        advice.append(Advice("memory", f"the tasks used at most {mem_text(peak)} "
                             f"({peak / req_mem:.0%}) of the {mem_text(req_mem)} requested",
                             f"--mem={mem_text(HEADROOM * peak)}"))
    if timeouts and limit:
        advice.append(Advice("time", f"{timeouts} task(s) hit the time limit of "
                             f"{time_text(limit)}", f"--time={time_text(2 * limit)}"))
    elif limit and longest and longest < LOW_USE * limit and \
            math.ceil(HEADROOM * longest / 60) * 60 < limit:
        advice.append(Advice("time", f"the longest task took {longest:.0f} s "
                             f"({longest / limit:.0%}) of the {time_text(limit)} limit",
                             f"--time={time_text(HEADROOM * longest)}"))
    return advice


def note(tasks: Iterable[tuple[JobState, Resources | None]]) -> str:
    """The advice as a clause to append to a message ('' when there is none)."""
    found = advise(tasks)
    return "".join(f"; {a}" for a in found)


def sweep_advice(outcomes: list[Outcome], statuses: dict) -> dict[int, list[Advice]]:
    """seff-like advice per sweep, from its points that ended in this
    finish; given once, with the sweep's last outcome (one result per job).
    Keyed by ``id(outcome)``; one pass over the outcomes."""
    by_sweep: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.job.sweep:
            by_sweep.setdefault(outcome.job.sweep.root, []).append(outcome)
    found = {}
    for mine in by_sweep.values():
        # Packed points share a task: the advice is about the task (finish
        # left its status under its own id), counted once.
        ended = {}
        for o in mine:
            key = o.job.job_id.scheduler_id
            if (s := statuses.get(key if o.job.spec.chunk_slot is not None
                                  else o.job.job_id)) and s.state.is_terminal:
                ended[key] = s
        found[id(mine[-1])] = advise((t.state, t.resources) for s in ended.values()
                                     for t in s.tasks)
    return found
