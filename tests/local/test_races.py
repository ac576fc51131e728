"""Two finishes at once, and a user committing during a finish: exactly one
honest record per job (the full trial counts are in ``make robustness``)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ..helpers import (
    api,
    commit_while_running,
    git,
    make_dataset,
    open_jobs,
    records,
    wait_terminal,
)

JOB = "#!/bin/sh\nmkdir -p \"$1\"\necho \"$SLURM_JOB_ID\" > \"$1/result.txt\"\n"


def finished_jobs(tmp_path: Path, n: int):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": JOB})
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    ids = [api(ds, "slurm_schedule", ["sbatch", "job.sh", f"out/{i}"],
               outputs=[f"out/{i}"])[0]["slurm_job_id"] for i in range(n)]
    from datalad_slurmsweep.backends import get_backend
    wait_terminal(ids, backend=get_backend("local", ds.config, ds.repo.dot_git), timeout=120)
    return ds, ids


def record_ids(ds) -> list[str]:
    return [str(rec.job_id) for _, rec in records(ds)]


@pytest.mark.parametrize("trial", range(3))
def test_two_finishes_at_once_record_every_job_once(tmp_path, trial):
    ds, ids = finished_jobs(tmp_path, 12)
    procs = [subprocess.Popen(["datalad", "slurm-finish"], cwd=ds.path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    for proc in procs:
        proc.communicate(timeout=300)
    assert [p.returncode for p in procs] == [0, 0]
    assert sorted(record_ids(ds), key=int) == sorted(ids, key=int)
    assert open_jobs(ds) == []
    assert git(ds, "status", "--porcelain") == ""


def test_a_user_committing_during_a_finish_loses_nothing(tmp_path):
    ds, ids = finished_jobs(tmp_path, 15)
    finish = subprocess.Popen(["datalad", "slurm-finish"], cwd=ds.path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    user_commits = commit_while_running(ds, finish)
    assert user_commits > 0  # the race took place
    assert sorted(record_ids(ds), key=int) == sorted(ids, key=int)
    for sha, rec in records(ds):
        changed = git(ds, "show", "--name-only", "--format=", sha).split()
        assert f"{rec.record['outputs'][0]}/result.txt" in changed, (sha, changed)
        assert not any(p.startswith("mine-") for p in changed)
    for line in git(ds, "log", "--format=%H %s").splitlines():
        sha, subject = line.split(" ", 1)
        if subject.startswith("user "):
            changed = git(ds, "show", "--name-only", "--format=", sha).split()
            assert all(p.startswith("mine-") for p in changed), (subject, changed)
    assert git(ds, "status", "--porcelain") == "" and open_jobs(ds) == []
    assert not list((Path(ds.repo.dot_git) / "slurmsweep").glob("index-*"))
