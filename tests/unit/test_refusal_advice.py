"""A sweep refused because the controller is full says what to change."""
from __future__ import annotations

from types import SimpleNamespace

from datalad_slurmsweep.sweep.submit import _advice

# sbatch's words when MaxJobCount is reached (seen on the local cluster at 8 008
# of 10 000 one-point tasks)
FULL = ("sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying\n"
        "sbatch: error: Batch job submission failed: Resource temporarily unavailable")


def _plan(chunking=None, n=10000):
    return SimpleNamespace(cfg=SimpleNamespace(chunking=chunking, environment="hpc"),
                           todo=list(range(n)))


def test_a_full_controller_gets_n_workers_advice():
    advice = _advice(_plan(), FULL)
    assert "MaxJobCount" in advice and "'n_workers: N' in slurm.hpc" in advice
    assert "10000 points" in advice


def test_no_advice_for_other_refusals_or_packed_sweeps():
    assert _advice(_plan(), "sbatch: error: invalid partition specified: gpu") == ""
    assert _advice(_plan(chunking=object()), FULL) == ""
