"""Retries of failed sweep points on the local backend, which enforces time
limits to the second (so a timed-out attempt costs seconds, not minutes).
The cluster's version is tests/cluster/test_retry_commands.py."""
from __future__ import annotations

import pytest

from ..helpers import api, commit_count, git, open_jobs, seen, sweep, sweep_records
from ..helpers import retry_config as config

ROOT = "Run-Storage/sweep_initW"


def points_by_name(ds) -> dict[str, list[dict]]:
    """Every recorded entry of each point, oldest record first."""
    found: dict[str, list[dict]] = {}
    for _, rec in reversed(sweep_records(ds)):
        for point in rec.record["points"]:
            found.setdefault(point["point"], []).append(point)
    return found


def record_of(ds, job_id: str) -> tuple:
    """(commit, record) of the sweep record listing ``job_id``."""
    return next((sha, rec) for sha, rec in sweep_records(ds)
                if any(p["slurm_job_id"] == job_id for p in rec.record["points"]))


def test_timed_out_point_is_retried_with_twice_the_time(model_ds):
    # initW 1 sleeps 1 s, within the 3 s limit; initW 5 sleeps 5 s: TIMEOUT,
    # then completes with the doubled limit, rounded up to a minute.
    path = config(model_ds, time="00:03", values=[1.0, 5.0],
                  retry={"attempts": 2, "scale": {"time": 2}})
    results = sweep(model_ds, path, "local", wait=True, wait_timeout=120)
    finished = [r for r in results if r["action"] == "slurm-finish"]
    assert all(r["status"] == "ok" for r in finished), finished
    again = [r for r in finished if "resubmitted" in r["message"]]
    assert len(again) == 1 and "--time=00:01:00" in again[0]["message"]
    points = points_by_name(model_ds)
    fast, slow = points["initW-1.0"], points["initW-5.0"]
    assert [p["state"] for p in fast] == ["COMPLETED"] and fast[0]["attempt"] == 1
    assert [p["state"] for p in slow] == ["TIMEOUT", "COMPLETED"]
    chain = slow[-1]["attempts"]
    assert [(a["state"], a["time"]) for a in chain] == [("TIMEOUT", "00:03"),
                                                        ("COMPLETED", "00:01:00")]
    assert chain[0]["slurm_job_id"] == slow[0]["slurm_job_id"]
    assert chain[1]["slurm_job_id"] == slow[1]["slurm_job_id"] != chain[0]["slurm_job_id"]
    assert chain[0]["elapsed_s"] >= 3 and chain[1]["elapsed_s"] >= 5
    # The retry ran only the failed task of the array, as task 1 again.
    assert slow[1]["slurm_job_id"].endswith("_1") and slow[1]["resources"]["time_limit_s"] == 60
    # The second attempt's record links back to the first one's commit.
    first_sha, _ = record_of(model_ds, slow[0]["slurm_job_id"])
    assert first_sha in record_of(model_ds, slow[1]["slurm_job_id"])[1].record["chain"]
    assert seen(model_ds, ROOT, "initW-5.0")["seen"]["SST2PV"]["initW"] == 5.0
    assert open_jobs(model_ds) == [] and git(model_ds, "status", "--porcelain") == ""


def test_retry_of_a_sweep_submitted_as_single_jobs(model_ds):
    path = config(model_ds, time="00:02", values=[4.0], retry={"attempts": 3,
                                                            "scale": {"time": 2}},
                  simulation={"submission": "jobs"})
    results = sweep(model_ds, path, "local", wait=True, wait_timeout=120)
    (again,) = [r for r in results if "resubmitted" in r["message"]]
    assert "(attempt 2 of 3) with --time=00:01:00" in again["message"]
    (point,) = points_by_name(model_ds)["initW-4.0"][-1:]
    assert point["state"] == "COMPLETED" and point["task_id"] is None
    assert [a["state"] for a in point["attempts"]] == ["TIMEOUT", "COMPLETED"]
    assert open_jobs(model_ds) == []


def test_point_out_of_attempts_is_reported_with_advice(model_ds):
    path = config(model_ds, time="00:02", values=[5.0],
                  retry={"attempts": 2, "scale": {"time": 1.2}, "max_time": "00:03"})
    results = sweep(model_ds, path, "local", wait=True, wait_timeout=120)
    finished = [r for r in results if r["action"] == "slurm-finish"]
    # 2 s * 1.2 rounds up to a minute, capped at 3 s: the retry times out too.
    (last,) = [r for r in finished if r["status"] != "ok"]
    assert last["status"] == "impossible"
    assert "attempt 2 of 2: no attempts left" in last["message"]
    assert "request --time=" in last["message"]  # jobs/advice.py's proposal
    points = points_by_name(model_ds)["initW-5.0"]
    assert [p["state"] for p in points] == ["TIMEOUT"]  # the second stays open
    assert [j.spec.retry.attempt for j in open_jobs(model_ds)] == [2]


def test_states_not_listed_are_not_retried(model_ds):
    path = config(model_ds, time="00:02", values=[5.0],
                  retry={"attempts": 3, "when": ["OUT_OF_MEMORY"], "scale": {"mem": 2}})
    results = sweep(model_ds, path, "local", wait=True, wait_timeout=120)
    assert not any("resubmitted" in r["message"] for r in results)
    (job,) = open_jobs(model_ds)
    assert job.spec.retry.attempt == 1


def test_retry_section_mistakes_name_file_and_key(model_ds):
    path = config(model_ds, time="00:10:00", values=[1.0],
                  retry={"attempts": 0, "when": ["TIMOUT"], "scale": {"time": 0.5},
                         "max_mem": 4})
    before = commit_count(model_ds)
    (res,) = api(model_ds, "slurm_sweep", str(path), backend="local")
    assert res["status"] == "impossible"
    for expected in (str(path), "'retry.attempts'", "did you mean 'TIMEOUT'",
                     "'retry.scale.time' must be a number of at least 1",
                     "'retry.max_mem' caps 'retry.scale.mem', which is not given"):
        assert expected in res["message"]
    assert open_jobs(model_ds) == [] and commit_count(model_ds) == before


def test_reschedule_only_failed_with_more_time(model_ds):
    path = config(model_ds, time="00:02", values=[1.0, 5.0], retry=None)
    sweep(model_ds, path, "local", wait=True, wait_timeout=120)
    api(model_ds, "slurm_finish", accept_failed_jobs=True)
    (sha, rec), *_ = sweep_records(model_ds)
    assert rec.record["sweep"]["counts"] == {"TIMEOUT": 1}
    (res,) = api(model_ds, "slurm_reschedule", sha, only_failed=True, scale_time=2,
                 max_time="00:00:50", report=True)
    assert "--time=00:00:50" in res["cmd"]
    api(model_ds, "slurm_reschedule", sha, only_failed=True, scale_time=2)
    api(model_ds, "slurm_finish", wait=True, wait_timeout=120)
    (_, last), *_ = sweep_records(model_ds)
    (point,) = last.record["points"]
    assert point["state"] == "COMPLETED" and point["attempt"] == 2
    assert [(a["state"], a["time"]) for a in point["attempts"]] == [
        ("TIMEOUT", "00:02"), ("COMPLETED", "00:01:00")]
    assert sha in last.record["chain"]


def test_reschedule_growth_options_need_only_failed(model_ds):
    for kwargs, expected in (
            (dict(scale_time=2), "--scale-time give failed points more"),
            (dict(only_failed=True, max_time="01:00:00"), "--max-time caps --scale-time"),
            (dict(only_failed=True, scale_mem=0.5), "--scale-mem must be a number of at "
                                                    "least 1"),
            (dict(only_failed=True, scale_time=2, max_time="soon"),
             "--max-time must be a Slurm time")):
        (res,) = api(model_ds, "slurm_reschedule", **kwargs)
        assert res["status"] == "impossible" and expected in res["message"], res


@pytest.mark.parametrize("point", ["marked", "advanced"])
def test_a_finish_killed_before_the_retry_submits_it_on_its_next_run(model_ds, point):
    """kill -9 before the failed attempt's record reached the branch, or
    after it did but before its next attempt went out: the next finish
    submits that attempt, once, and the point completes."""
    import os
    import subprocess
    import time
    path = config(model_ds, time="00:02", values=[4.0], retry={"attempts": 2,
                                                            "scale": {"time": 2}})
    sweep(model_ds, path, "local")
    deadline = time.monotonic() + 60
    while set(api(model_ds, "slurm_finish", list_open_jobs=True)[0]["counts"]) != {"TIMEOUT"}:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    killed = subprocess.run(["datalad", "slurm-finish"], cwd=model_ds.path,
                            env=dict(os.environ, DATALAD_SLURMSWEEP_KILL_AT=point),
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    recorded = [p["state"] for p in points_by_name(model_ds).get("initW-4.0", [])]
    assert recorded == ([] if point == "marked" else ["TIMEOUT"])
    results = api(model_ds, "slurm_finish", wait=True, wait_timeout=120)
    assert len([r for r in results if "resubmitted" in r["message"]]) == 1, results
    points = points_by_name(model_ds)["initW-4.0"]
    assert [p["state"] for p in points] == ["TIMEOUT", "COMPLETED"]
    assert [a["state"] for a in points[-1]["attempts"]] == ["TIMEOUT", "COMPLETED"]
    first_sha, _ = record_of(model_ds, points[0]["slurm_job_id"])
    assert first_sha in record_of(model_ds, points[1]["slurm_job_id"])[1].record["chain"]
    assert open_jobs(model_ds) == [] and git(model_ds, "status", "--porcelain") == ""
