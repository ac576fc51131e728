"""What could never be committed is refused when scheduling, and commands
never overwrite what a user or an open job holds."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ..helpers import (
    api,
    commit_count,
    git,
    make_dataset,
    open_jobs,
    sweep,
    sweep_config,
    sweep_records,
)

JOB = "#!/bin/sh\nmkdir -p out\necho x > out/r.txt\n"


@pytest.mark.parametrize("output,words", [
    (".git", "inside .git"),
    (".git/foo", "inside .git"),
    ("lnk/x", "beyond the symbolic link lnk"),
    ("new\nline", "control character"),
])
def test_an_output_that_could_never_be_committed_is_refused(tmp_path, output, words):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": JOB, "real/keep": "k"})
    os.symlink("real", tmp_path / "ds" / "lnk")
    ds.save(message="a link", result_renderer="disabled")
    before = commit_count(ds)
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh"], outputs=[output], backend="local")
    assert res["status"] == "impossible" and words in res["message"], res["message"]
    assert commit_count(ds) == before and open_jobs(ds) == []
    assert not (Path(ds.repo.dot_git) / "slurmsweep" / "local" / "jobs").exists()


def test_a_reservation_being_submitted_is_listed(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": JOB})
    env = dict(os.environ, DATALAD_SLURMSWEEP_KILL_AT="submitted")
    proc = subprocess.run(["datalad", "slurm-schedule", "--backend", "local", "-o", "out",
                           "sbatch", "job.sh"], cwd=ds.path, env=env, capture_output=True)
    assert proc.returncode == -9
    listed = [r for r in api(ds, "slurm_finish", list_open_jobs=True)
              if r["action"] == "slurm-list"]
    assert [r["state"] for r in listed] == ["SUBMITTING"] and listed[0]["outputs"] == ["out"]


def test_a_sweep_never_writes_into_a_path_an_open_job_reserved(model_ds):
    path = sweep_config(model_ds)
    model_ds.save(message="config", result_renderer="disabled")
    (Path(model_ds.path) / "job.sh").write_text(JOB)
    model_ds.save(message="job", result_renderer="disabled")
    before = commit_count(model_ds)
    reserved = "Run-Storage/sweep_initW/manifest.json"
    (res,) = api(model_ds, "slurm_schedule", ["sbatch", "job.sh"], outputs=[reserved],
                 backend="local")
    assert res["status"] == "ok"
    results = api(model_ds, "slurm_sweep", str(path), backend="local")
    assert results[-1]["status"] == "impossible" and reserved in results[-1]["message"]
    assert commit_count(model_ds) == before
    assert not (Path(model_ds.path) / reserved).exists()


def test_replaying_a_sweep_keeps_uncommitted_edits(model_ds):
    path = sweep_config(model_ds, sweep_config={"param_values": [2.0]})
    sweep(model_ds, path, "local", wait=True, wait_timeout=120)
    ((sha, rec),) = sweep_records(model_ds)
    script = Path(model_ds.path) / rec.record["points"][0]["script"]
    script.write_text(script.read_text() + "# my uncommitted edit\n")
    results = api(model_ds, "slurm_reschedule", sha)
    assert results[-1]["status"] == "impossible"
    assert "uncommitted changes" in results[-1]["message"]
    assert script.read_text().endswith("# my uncommitted edit\n")
    assert git(model_ds, "status", "--porcelain").strip().endswith(rec.record["points"][0]["script"])
