"""Retries of a timed-out sweep point on the real cluster.

The cluster has OverTimeLimit=0 and KillWait=5 s, and slurmctld looks for
jobs over their limit about every 30 s: a job limited to one minute ends
TIMEOUT between 60 and ~95 s. The point sleeps 100 s, so its first attempt
cannot complete, and its second (two minutes) can."""
from __future__ import annotations

import pytest

from ..helpers import git, open_jobs, seen, sweep, sweep_records
from ..helpers import retry_config as config

pytestmark = pytest.mark.slurm
ROOT = "Run-Storage/sweep_initW"


def test_timed_out_point_completes_on_its_second_attempt(model_ds, backend):
    path = config(model_ds, time="00:01:00", values=[1.0, 100.0],
                  retry={"attempts": 2, "scale": {"time": 2}})
    results = sweep(model_ds, path, backend, wait=True, wait_timeout=900)
    finished = [r for r in results if r["action"] == "slurm-finish"]
    assert all(r["status"] == "ok" for r in finished), finished
    (again,) = [r for r in finished if "resubmitted" in r["message"]]
    assert "--time=00:02:00" in again["message"]
    entries = [p for _, rec in reversed(sweep_records(model_ds))
               for p in rec.record["points"] if p["point"] == "initW-100.0"]
    assert [p["state"] for p in entries] == ["TIMEOUT", "COMPLETED"]
    chain = entries[-1]["attempts"]
    assert [(a["state"], a["time"]) for a in chain] == [("TIMEOUT", "00:01:00"),
                                                        ("COMPLETED", "00:02:00")]
    assert [a["slurm_job_id"] for a in chain] == [p["slurm_job_id"] for p in entries]
    # Slurm's own figures: the limits asked for, and the second attempt ran its 100 s.
    assert [p["resources"]["time_limit_s"] for p in entries] == [60, 120]
    assert chain[1]["elapsed_s"] >= 100
    # Only the timed-out task went out again, as the same task of a new array.
    first, second = (p["slurm_job_id"] for p in entries)
    assert first.split("_")[1] == second.split("_")[1] and first != second
    assert seen(model_ds, ROOT, "initW-100.0")["seen"]["SST2PV"]["initW"] == 100.0
    assert open_jobs(model_ds) == [] and git(model_ds, "status", "--porcelain") == ""
