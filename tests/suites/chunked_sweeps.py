"""Sweeps whose points are packed into fewer array tasks (n_workers).

tests/local and tests/cluster each run this suite with their ``backend``
fixture. Each point keeps its own outcome: a failed point is FAILED with
its exit code although its task ran on, and only it is replayed."""
from __future__ import annotations

from pathlib import Path

from datalad_slurmsweep.jobs.store import JobStore

from ..helpers import api, git, seen, sweep, sweep_records
from ..helpers import sweep_config as config

ROOT = "Run-Storage/sweep_initW"
VALUES = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def _slurm(**keys) -> dict:
    """The example's environment ("local", on either backend) with ``keys``."""
    return {"slurm": {"local": {"time": "00:10:00", "nodes": 1, "ntasks": 1, "mem": 0.1,
                                **keys}}}


def test_packed_points_keep_their_own_outcome_and_failed_one_is_replayed(
        model_ds, backend, monkeypatch):
    path = config(model_ds, sweep_config={"param_values": VALUES},
                  **_slurm(n_workers=3, points_in_parallel=2))
    monkeypatch.setenv("FAIL_IF_INITW", "3.0")
    results = sweep(model_ds, path, backend, wait=True, wait_timeout=240)
    submitted = [r for r in results if r.get("points")]
    # One array of three tasks (3, 2, 2 points), not seven tasks.
    assert len(submitted) == 1 and len(submitted[0]["points"]) == 7
    run_dir, = (Path(model_ds.path) / ROOT / ".runs").iterdir()
    assert sorted(p.suffix for p in run_dir.iterdir()) == [".sh", ".tasks"]
    finished = [r for r in results if r["action"] == "slurm-finish"]
    bad = [r for r in finished if r["status"] != "ok"]
    assert len(finished) == 7 and len(bad) == 1, finished
    assert "FAILED" in bad[0]["message"] and "exit code 5" in bad[0]["message"]
    assert bad[0]["state"] == "FAILED"
    (_, rec), = sweep_records(model_ds)
    points = {p["point"]: p for p in rec.record["points"]}
    assert sorted(points) == [f"initW-{v}" for v in VALUES if v != 3.0]
    assert all(p["state"] == "COMPLETED" and p["exit_code"] == 0 for p in points.values())
    tasks = {p["chunk"]["array_task"] for p in points.values()}
    assert len(tasks) == 3 and all(p["chunk"]["outcome"] for p in points.values())
    assert all(p["resources"]["elapsed_s"] is not None for p in points.values())
    for value in VALUES:
        if value != 3.0:
            assert seen(model_ds, ROOT, f"initW-{value}")["seen"]["SST2PV"]["initW"] == value
    # Outcome files are not committed; only the open point's is left.
    left = sorted(p.parent.name for p in (Path(model_ds.path) / ROOT).glob("*/.*.outcome.json"))
    assert left == ["initW-3.0"]
    assert "outcome.json" not in git(model_ds, "ls-files", ROOT)
    (open_job,) = JobStore.for_dataset(model_ds.repo.dot_git).jobs()
    assert open_job.sweep.point == "initW-3.0"
    (acc,) = api(model_ds, "slurm_finish", accept_failed_jobs=True)
    assert acc["status"] == "ok"
    sha, rec = sweep_records(model_ds)[0]
    (failed,) = rec.record["points"]
    assert (failed["point"], failed["state"], failed["exit_code"]) == ("initW-3.0", "FAILED", 5)
    assert failed["chunk"]["task_state"] == "FAILED"
    assert git(model_ds, "status", "--porcelain") == ""
    # Only the failed point is replayed, alone.
    monkeypatch.delenv("FAIL_IF_INITW")
    results = api(model_ds, "slurm_reschedule", sha, only_failed=True)
    assert [r["status"] for r in results] == ["ok"]
    (job,) = JobStore.for_dataset(model_ds.repo.dot_git).jobs()
    assert job.sweep.point == "initW-3.0" and job.spec.chunk_slot is None
    (fin,) = api(model_ds, "slurm_finish", wait=True, wait_timeout=180)
    assert fin["status"] == "ok"
    _, rec = sweep_records(model_ds)[0]
    assert [(p["point"], p["state"]) for p in rec.record["points"]] == [
        ("initW-3.0", "COMPLETED")]
    assert seen(model_ds, ROOT, "initW-3.0")["seen"]["SST2PV"]["initW"] == 3.0


SLOW = ("if [ {initW} = 3.0 ]; then sleep 100; fi; "
        "mpirun nrniv -mpi -python run_network.py {config_file}")


def test_a_killed_task_fails_only_its_unfinished_points(model_ds, backend):
    # One task runs 1.0, 2.0, then 3.0, which outlives the time limit, so
    # 4.0 never starts. (Slurm counts whole minutes: 20 s is one there.)
    path = config(model_ds, sweep_config={"param_values": [1.0, 2.0, 3.0, 4.0]},
                  simulation_cases={"baseline": {"config_file": "simulation_config_baseline.json",
                                                 "command": SLOW}},
                  **_slurm(n_workers=1, time="00:00:20"))
    results = sweep(model_ds, path, backend, wait=True, wait_timeout=240)
    finished = {r["slurm_job_id"]: r for r in results if r["action"] == "slurm-finish"}
    assert len(finished) == 4
    bad = sorted((r["state"], r["status"]) for r in finished.values() if r["status"] != "ok")
    assert bad == [("TIMEOUT", "impossible")] * 2, finished
    assert all("had not finished" in r["message"] for r in finished.values()
               if r["status"] != "ok")
    (_, rec), = sweep_records(model_ds)
    assert sorted((p["point"], p["state"]) for p in rec.record["points"]) == [
        ("initW-1.0", "COMPLETED"), ("initW-2.0", "COMPLETED")]
    assert {p["chunk"]["task_state"] for p in rec.record["points"]} == {"TIMEOUT"}
    still = sorted(j.sweep.point for j in JobStore.for_dataset(model_ds.repo.dot_git).jobs())
    assert still == ["initW-3.0", "initW-4.0"]
    accepted = api(model_ds, "slurm_finish", accept_failed_jobs=True)
    assert [r["status"] for r in accepted] == ["ok", "ok"]
    _, rec = sweep_records(model_ds)[0]
    assert sorted((p["point"], p["state"], p["exit_code"], p["chunk"]["outcome"])
                  for p in rec.record["points"]) == [
        ("initW-3.0", "TIMEOUT", None, False), ("initW-4.0", "TIMEOUT", None, False)]


def test_an_array_tasks_id_finishes_the_points_it_ran(model_ds, backend):
    path = config(model_ds, sweep_config={"param_values": VALUES[:4]},
                  **_slurm(n_workers=2))
    results = sweep(model_ds, path, backend)
    (submitted,) = [r for r in results if r.get("points")]
    base = str(submitted["slurm_job_id"]).split("_")[0]
    finished = api(model_ds, "slurm_finish", [f"{base}_1"], wait=True, wait_timeout=180)
    assert sorted(r["slurm_job_id"] for r in finished) == [f"{base}_1.p0", f"{base}_1.p1"]
    assert all(r["status"] == "ok" for r in finished)
    left = sorted(str(j.job_id) for j in JobStore.for_dataset(model_ds.repo.dot_git).jobs())
    assert left == [f"{base}_0.p0", f"{base}_0.p1"]
    api(model_ds, "slurm_finish", wait=True, wait_timeout=180)
    assert JobStore.for_dataset(model_ds.repo.dot_git).jobs() == []
