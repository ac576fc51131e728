"""One test per defect found by the hostile trials of issue 8 that no other
test module covers; each failed before its fix."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from datalad_slurmsweep.backends import get_backend
from datalad_slurmsweep.provenance.record import BEGIN, END, format_record, parse_record

from ..helpers import api, git, make_dataset, open_jobs, records, wait_terminal

JOB = "#!/bin/sh\nmkdir -p \"$1\"\necho done > \"$1/result.txt\"\n"


def local_ds(tmp_path, **files):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": JOB, **files})
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    return ds


def ended(ds, ids):
    wait_terminal(ids, backend=get_backend("local", ds.config, ds.repo.dot_git), timeout=120)


def test_a_users_own_comment_does_not_lose_an_interrupted_job(tmp_path):
    ds = local_ds(tmp_path)
    env = dict(os.environ, DATALAD_SLURMSWEEP_KILL_AT="submitted")
    proc = subprocess.run(["datalad", "slurm-schedule", "-o", "out", "sbatch",
                           "--comment=my own note", "job.sh", "out"], cwd=ds.path, env=env,
                          capture_output=True)
    assert proc.returncode == -9
    results = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert any("interrupted schedule and is tracked" in r["message"] for r in results), results
    assert [str(rec.record["outputs"]) for _, rec in records(ds)] == ["['out']"]


def test_a_name_that_is_not_utf8_neither_blocks_nor_breaks_a_finish(tmp_path):
    script = "#!/bin/sh\nmkdir -p \"$1\"\nprintf x > \"$1/$(printf 'caf\\351')\"\n"
    ds = local_ds(tmp_path, **{"odd.sh": script})
    odd = api(ds, "slurm_schedule", ["sbatch", "odd.sh", "odd"], outputs=["odd"])[0]
    good = api(ds, "slurm_schedule", ["sbatch", "job.sh", "good"], outputs=["good"])[0]
    ended(ds, [odd["slurm_job_id"], good["slurm_job_id"]])
    results = {r["slurm_job_id"]: r for r in api(ds, "slurm_finish")}
    assert results[good["slurm_job_id"]]["status"] == "ok"
    assert results[odd["slurm_job_id"]]["status"] in ("ok", "error")
    if results[odd["slurm_job_id"]]["status"] == "ok":
        names = subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", "HEAD", "odd"],
                               cwd=ds.path, capture_output=True).stdout
        assert b"caf\xe9" in names
    assert len(records(ds)) == len([r for r in results.values() if r["status"] == "ok"])


def test_an_array_id_finishes_all_of_its_open_tasks(tmp_path):
    ds = local_ds(tmp_path, **{"arr.sh": "#!/bin/sh\n#SBATCH --array=0-2\nmkdir -p out\n"
                                         "echo $SLURM_ARRAY_TASK_ID > out/$SLURM_ARRAY_TASK_ID\n"})
    (res,) = api(ds, "slurm_schedule", ["sbatch", "arr.sh"], outputs=["out"])
    ended(ds, [res["slurm_job_id"]])
    (done,) = [r for r in api(ds, "slurm_finish", [res["slurm_job_id"]]) if r["status"] == "ok"]
    assert open_jobs(ds) == [] and done["slurm_job_id"] == res["slurm_job_id"]


def test_close_failed_jobs_drops_a_named_completed_job(tmp_path):
    ds = local_ds(tmp_path)
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh", "out"], outputs=["out"])
    ended(ds, [res["slurm_job_id"]])
    (closed,) = api(ds, "slurm_finish", [res["slurm_job_id"]], close_failed_jobs=True)
    assert closed["status"] == "ok" and closed["state"] == "COMPLETED"
    assert "closed job" in closed["message"] and open_jobs(ds) == [] and records(ds) == []


def test_a_killed_build_leaves_no_ref_behind(tmp_path):
    ds = local_ds(tmp_path)
    head = git(ds, "rev-parse", "HEAD").strip()
    git(ds, "update-ref", "refs/slurmsweep/build-999999999", head)
    api(ds, "slurm_finish")
    assert git(ds, "for-each-ref", "refs/slurmsweep/") == ""


def test_a_message_holding_the_marker_lines_keeps_the_record_readable():
    message = f"look:\n{BEGIN}\n{{}}\n{END}\nthe end"
    text = format_record({"cmd": "sbatch j.sh", "slurm_job_id": 1, "state": "COMPLETED"},
                         [message])
    parsed = parse_record(text)
    assert parsed.record["cmd"] == "sbatch j.sh" and "the end" in parsed.message


def test_sbatch_given_by_path_is_refused_by_name(tmp_path):
    ds = local_ds(tmp_path)
    for argv0 in ("/usr/bin/sbatch", "./sbatch"):
        (res,) = api(ds, "slurm_schedule", [argv0, "job.sh"], outputs=["out"])
        assert res["status"] == "impossible" and "plain 'sbatch'" in res["message"]
    assert open_jobs(ds) == []


def test_an_unreachable_backend_keeps_reservations_and_says_so(tmp_path, monkeypatch):
    ds = local_ds(tmp_path)
    env = dict(os.environ, DATALAD_SLURMSWEEP_KILL_AT="submitted")
    subprocess.run(["datalad", "slurm-schedule", "-o", "out", "sbatch", "job.sh", "out"],
                   cwd=ds.path, env=env, capture_output=True)
    # The look-up of the interrupted submission fails (here: the backend
    # cannot even be set up); the cluster case is in make robustness.
    monkeypatch.setenv("DATALAD_SLURMSWEEP_LOCAL_MAX_ARRAY_SIZE", "not-a-number")
    results = api(ds, "slurm_finish")
    assert any(r["status"] in ("error", "impossible") for r in results), results
    assert [j.status for j in open_jobs(ds)] == ["submitting"]


@pytest.mark.parametrize("point", ["subdatasets", "built", "marked", "advanced"])
def test_finish_killed_around_subdataset_commits_records_once(tmp_path, point):
    script = "#!/bin/bash\nmkdir -p outputs/deep/res\necho $SLURM_JOB_ID > outputs/deep/res/n\n"
    ds = local_ds(tmp_path, **{"job.sh": script})
    ds.create("outputs", result_renderer="disabled").create("deep", result_renderer="disabled")
    ds.save(recursive=True, message="subdatasets", result_renderer="disabled")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh"], outputs=["outputs/deep/res"])
    assert res["status"] == "ok", res["message"]
    env = dict(os.environ, DATALAD_SLURMSWEEP_KILL_AT=point)
    deadline = time.monotonic() + 60
    while True:  # until the job has ended and the finish got as far as the kill
        proc = subprocess.run(["datalad", "slurm-finish"], cwd=ds.path, env=env,
                              capture_output=True, text=True)
        if proc.returncode == -9 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert proc.returncode == -9, proc.stdout + proc.stderr
    results = api(ds, "slurm_finish")
    assert all(r["status"] in ("ok", "notneeded") for r in results), results
    deep = Path(ds.path) / "outputs" / "deep"
    subjects = subprocess.run(["git", "log", "--format=%s"], cwd=deep, capture_output=True,
                              text=True, check=True).stdout.splitlines()
    assert sum(s.startswith("Outputs of Slurm job") for s in subjects) == 1, subjects
    assert len(records(ds)) == 1
    assert open_jobs(ds) == []
    dirty = [r for r in ds.status(recursive=True, result_renderer="disabled",
                                  return_type="generator") if r.get("state") != "clean"]
    assert dirty == [], dirty
