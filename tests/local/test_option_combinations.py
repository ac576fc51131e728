"""Options that do not go together are refused before anything happens:
a result naming the options, no store, no commit, nothing submitted."""
from __future__ import annotations

from pathlib import Path

import pytest

from ..helpers import api, commit_count, make_dataset

CASES = [
    ("slurm_finish", (), dict(accept_failed_jobs=True, close_failed_jobs=True),
     ["--accept-failed-jobs", "--close-failed-jobs"]),
    ("slurm_finish", (), dict(points=True), ["--points", "--list-open-jobs"]),
    ("slurm_finish", (), dict(wait_timeout=5.0), ["--wait-timeout", "--wait"]),
    ("slurm_finish", (), dict(list_open_jobs=True, wait=True), ["--list-open-jobs", "--wait"]),
    ("slurm_finish", (["12x"],), {}, ["'12x' is not a Slurm job id"]),
    ("slurm_finish", (), dict(list_open_jobs=True, octopus=True),
     ["--list-open-jobs", "--octopus"]),
    ("slurm_reschedule", (), dict(script="x.sh", report=True), ["--script", "--report"]),
    ("slurm_sweep", ("sweep.yaml",), dict(check=True, dry_run=True), ["--check", "--dry-run"]),
    ("slurm_sweep", ("sweep.yaml",), dict(wait_timeout=5.0), ["--wait-timeout", "--wait"]),
    ("slurm_reschedule", (), dict(only_failed=True, with_failed_jobs=True),
     ["--only-failed", "--with-failed-jobs"]),
    ("slurm_schedule", ("sbatch job.sh",), dict(outputs=["out"]),
     ["cmd must be a list", "'sbatch job.sh'"]),
]


@pytest.mark.parametrize("command,args,kwargs,words", CASES,
                         ids=[f"{c[0]}-{'-'.join(c[2]) or 'args'}" for c in CASES])
def test_contradicting_options_are_refused_without_a_trace(tmp_path, command, args,
                                                          kwargs, words):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": "#!/bin/sh\ntrue\n"})
    before = commit_count(ds)
    (res,) = api(ds, command, *args, **kwargs)
    assert res["status"] == "impossible", res
    for word in words:
        assert word in res["message"], res["message"]
    assert res["path"] == ds.path
    assert commit_count(ds) == before
    assert not (Path(ds.repo.dot_git) / "slurmsweep").exists()


def test_a_bad_setting_is_refused_naming_its_source(tmp_path, monkeypatch):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": "#!/bin/sh\ntrue\n"})
    monkeypatch.setenv("DATALAD_SLURMSWEEP_LOCAL_MAX_ARRAY_SIZE", "abc")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh"], outputs=["out"], backend="local")
    assert res["status"] == "impossible"
    assert "DATALAD_SLURMSWEEP_LOCAL_MAX_ARRAY_SIZE" in res["message"]
    assert "abc" in res["message"]


def test_a_since_that_names_no_commit_is_refused_by_name(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": "#!/bin/sh\ntrue\n"})
    (res,) = api(ds, "slurm_reschedule", since="nope")
    assert res["status"] == "impossible"
    assert res["message"] == "--since nope is not a commit of this dataset"
