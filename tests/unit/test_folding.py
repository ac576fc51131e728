"""A finish during a large sweep says "not ended yet" and "committed" once
per sweep, not once per point; failures stay one result each."""
from __future__ import annotations

from types import SimpleNamespace

from datalad_slurmsweep.backends.base import JobState
from datalad_slurmsweep.jobs.folding import Folded, fold
from datalad_slurmsweep.jobs.model import Outcome


def _outcome(i: int, status: str, state: JobState, commit: str | None = None,
             root: str | None = "runs/big") -> Outcome:
    job = SimpleNamespace(job_id=f"7_{i}", sweep=SimpleNamespace(root=root) if root else None)
    return Outcome(job, status, f"job 7_{i}", state=state, commit=commit)


def test_many_alike_points_are_said_once_and_failures_each():
    waiting = [_outcome(i, "impossible", JobState.PENDING) for i in range(150)]
    waiting += [_outcome(150 + i, "impossible", JobState.RUNNING) for i in range(10)]
    done = [_outcome(200 + i, "ok", JobState.COMPLETED, commit="a" * 40) for i in range(120)]
    failed = [_outcome(400, "impossible", JobState.FAILED)]
    single = [_outcome(500 + i, "impossible", JobState.PENDING, root=None) for i in range(200)]
    found = fold(waiting + failed + done + single)
    folded = [f for f in found if isinstance(f, Folded)]
    assert [len(f.outcomes) for f in folded] == [160, 120]
    assert folded[0].counts == {"PENDING": 150, "RUNNING": 10}
    assert "160 points of sweep runs/big have not ended yet" in folded[0].message
    assert "committed 120 points of sweep runs/big as aaaaaaaaaa" in folded[1].message
    assert failed[0] in found and all(o in found for o in single)  # never folded
    assert len(found) == 2 + 1 + 200


def test_few_points_keep_their_own_results():
    few = [_outcome(i, "impossible", JobState.PENDING) for i in range(100)]
    assert fold(few) == few
