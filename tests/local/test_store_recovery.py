"""A lost job store is noticed, and its open jobs are rebuilt from the
journal and the backend (slurm-finish --recover). The commands run as
separate processes, as a user's would: no connection holds the store open
while it is damaged."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ..helpers import make_dataset, records

JOB = "#!/bin/sh\nmkdir -p \"$1\"\necho done > \"$1/result.txt\"\n"


def datalad(ds, *args) -> list[dict]:
    proc = subprocess.run(["datalad", "-f", "json", *args], cwd=ds.path,
                          capture_output=True, text=True)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("damage", ["deleted", "emptied", "wal-deleted"])
def test_a_lost_store_is_noticed_and_rebuilt(tmp_path, damage):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": JOB})
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    ids = [datalad(ds, "slurm-schedule", "-o", f"out/{i}", "sbatch", "job.sh",
                   f"out/{i}")[0]["slurm_job_id"] for i in range(3)]
    store = Path(ds.repo.dot_git) / "slurmsweep" / "jobs.sqlite"
    for suffix in ("-wal", "-shm", ""):
        part = store.with_name(store.name + suffix)
        if damage == "deleted" or (damage == "wal-deleted" and suffix):
            part.unlink(missing_ok=True)
        elif damage == "emptied" and part.exists():
            part.write_bytes(b"")
    results = datalad(ds, "slurm-finish", "--list-open-jobs")
    listed = [r for r in results if r.get("action") == "slurm-list"]
    if len(listed) < 3:  # the damage lost jobs: that must be said, never silently
        lost = [r for r in results if "--recover" in r["message"]]
        assert lost and lost[0]["status"] == "impossible", results
    datalad(ds, "slurm-finish", "--recover", "--wait", "--wait-timeout", "60")
    assert sorted(str(rec.job_id) for _, rec in records(ds)) == sorted(ids)
    assert datalad(ds, "slurm-finish", "--list-open-jobs")[0]["message"] == "no open jobs"
    again = datalad(ds, "slurm-finish", "--recover")
    assert [r["status"] for r in again] == ["notneeded"]
    assert len(records(ds)) == 3
