"""Many points of one sweep that ended alike, said once.

A finish during a 100 000-point sweep had one result per point: 87 000
lines saying "still PENDING" and 13 000 saying "committed", which nobody
reads and which cost time and memory to render. Above ``FOLD_ABOVE``
points of one sweep in the same situation (not ended yet; committed in
the same commit), the points are summed in one result naming the sweep,
the counts per state and the first job ids. Failures and retries are
never folded: each is a message a user acts on.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .model import Outcome

FOLD_ABOVE = 100
SHOWN_IDS = 5


@dataclass
class Folded:
    sweep: str
    status: str
    commit: str | None
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(o.state.value for o in self.outcomes if o.state).items()))

    @property
    def job_ids(self) -> list[str]:
        return [str(o.job.job_id) for o in self.outcomes]

    @property
    def message(self) -> str:
        n = len(self.outcomes)
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        shown = ", ".join(self.job_ids[:SHOWN_IDS]) + (", ..." if n > SHOWN_IDS else "")
        if self.commit:
            return (f"committed {n} points of sweep {self.sweep} as {self.commit[:10]} "
                    f"({counts}; jobs {shown})")
        return (f"{n} points of sweep {self.sweep} have not ended yet ({counts}; jobs "
                f"{shown}); run slurm-finish again later, or with --wait")


def _key(outcome: Outcome) -> tuple | None:
    sweep = outcome.job.sweep
    if sweep is None or outcome.resubmitted:
        return None
    if outcome.status == "impossible" and outcome.state is not None and outcome.state.is_active:
        return (sweep.root, "impossible", None)
    if outcome.status == "ok" and outcome.commit and not outcome.branch:
        return (sweep.root, "ok", outcome.commit)
    return None


def fold(outcomes: list[Outcome], limit: int = FOLD_ABOVE) -> list[Outcome | Folded]:
    """``outcomes`` with each group above ``limit`` replaced by one
    :class:`Folded` where the group's first outcome was."""
    groups: dict[tuple, Folded] = {}
    for outcome in outcomes:
        if (key := _key(outcome)) is not None:
            groups.setdefault(key, Folded(*key)).outcomes.append(outcome)
    big = {key: group for key, group in groups.items() if len(group.outcomes) > limit}
    if not big:
        return list(outcomes)
    folded_ids = {id(o): key for key, group in big.items() for o in group.outcomes}
    placed: set[tuple] = set()
    found: list[Outcome | Folded] = []
    for outcome in outcomes:
        key = folded_ids.get(id(outcome))
        if key is None:
            found.append(outcome)
        elif key not in placed:
            placed.add(key)
            found.append(big[key])
    return found
