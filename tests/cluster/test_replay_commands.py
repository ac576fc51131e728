"""On the real cluster: replaying a sweep from its [DATALAD SLURM SWEEP]
commit after its configuration changed, and slurm-finish --branches/--octopus."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from datalad_slurmsweep.jobs.store import JobStore
from datalad_slurmsweep.provenance.record import parse_record

from ..helpers import (
    OK,
    SST,
    api,
    git,
    make_dataset,
    records,
    seen,
    sweep,
    sweep_records,
    wait_terminal,
)
from ..helpers import sweep_config as config

pytestmark = pytest.mark.slurm
ROOT = "Run-Storage/sweep_initW"


def _sweep_commit(ds) -> str:
    return git(ds, "log", "-1", "--format=%H", "-F",
               "--grep=[DATALAD SLURM SWEEP]", "--grep=jobs to submit", "--all-match").strip()


def test_sweep_commit_is_replayed_as_committed_after_the_configuration_changed(
        model_ds, slurm_cluster):
    path = config(model_ds, sweep_config={"param_values": [2.0, 3.0]})
    sweep(model_ds, path, "slurm", wait=True, wait_timeout=180)
    generated = _sweep_commit(model_ds)
    # Both the components and the configuration change, and the changed sweep
    # runs over the same point, so its script and clone are rewritten.
    comp = Path(model_ds.path) / "model/components" / SST
    data = json.loads(comp.read_text())
    data["tau1"] = 99.0
    comp.unlink()
    comp.write_text(json.dumps(data, indent=2) + "\n")
    path = config(model_ds, sweep_config={"param_values": [2.0, 9.0]},
                  slurm={"local": {"time": "00:09:00", "nodes": 1, "ntasks": 1, "mem": 0.1}})
    model_ds.save(message="new components and configuration", result_renderer="disabled")
    sweep(model_ds, path, "slurm", no_skip=True, wait=True, wait_timeout=180)
    assert seen(model_ds, ROOT, "initW-2.0")["seen"]["SST2PV"]["tau1"] == 99.0
    changed_config = path.read_text()

    results = api(model_ds, "slurm_reschedule", generated)
    assert all(r["status"] == "ok" for r in results), results
    assert any(r["message"].startswith("restored the sweep's inputs") for r in results)
    jobs = JobStore.for_dataset(model_ds.repo.dot_git).jobs()
    assert sorted(j.sweep.point for j in jobs) == ["initW-2.0", "initW-3.0"]
    assert {j.sweep.root for j in jobs} == {ROOT} and {j.backend for j in jobs} == {"slurm"}
    script = Path(model_ds.path, ROOT, "initW-2.0/baseline.sh").read_text()
    assert "--time=00:10:00" in script  # the committed script, not the changed config's
    fin = api(model_ds, "slurm_finish", wait=True, wait_timeout=180)
    assert [r["status"] for r in fin] == ["ok", "ok"]
    sha, rec = sweep_records(model_ds)[0]
    assert rec.record["chain"] == [generated]
    assert sorted(p["point"] for p in rec.record["points"]) == ["initW-2.0", "initW-3.0"]
    assert all(p["state"] == "COMPLETED" for p in rec.record["points"])
    assert seen(model_ds, ROOT, "initW-2.0")["seen"]["SST2PV"]["tau1"] == 10.0
    assert path.read_text() == changed_config  # the work tree's configuration is kept
    assert git(model_ds, "status", "--porcelain") == ""


def test_sweep_commit_whose_files_are_gone_is_refused_without_a_trace(model_ds, slurm_cluster):
    path = config(model_ds, sweep_config={"param_values": [2.0]})
    sweep(model_ds, path, "slurm", wait=True, wait_timeout=180)
    generated = _sweep_commit(model_ds)
    # Rewrite history so that the commit no longer holds the point's script.
    git(model_ds, "checkout", "-q", "--detach", generated)
    git(model_ds, "rm", "-q", "--cached", f"{ROOT}/initW-2.0/baseline.sh")
    git(model_ds, "commit", "-q", "--amend", "--no-edit")
    broken = git(model_ds, "rev-parse", "HEAD").strip()
    git(model_ds, "checkout", "-q", "-f", "-")
    head = git(model_ds, "rev-parse", "HEAD")
    (res,) = api(model_ds, "slurm_reschedule", broken)
    assert res["status"] == "impossible"
    assert f"{ROOT}/initW-2.0/baseline.sh" in res["message"] and broken[:10] in res["message"]
    assert git(model_ds, "rev-parse", "HEAD") == head
    assert JobStore.for_dataset(model_ds.repo.dot_git).jobs() == []


def _three_jobs(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={f"{n}.sh": OK.format(out=f"out/{n}")
                                             for n in ("a", "b", "c")})
    ids = []
    for name in ("a", "b", "c"):
        (res,) = api(ds, "slurm_schedule", ["sbatch", f"{name}.sh"], outputs=[f"out/{name}"])
        assert res["status"] == "ok", res
        ids.append(res["slurm_job_id"])
    return ds, ids


def test_finish_branches_puts_each_job_on_its_own_branch(tmp_path, slurm_cluster):
    ds, ids = _three_jobs(tmp_path)
    head = git(ds, "rev-parse", "HEAD").strip()
    results = api(ds, "slurm_finish", branches=True, wait=True, wait_timeout=120)
    assert [r["status"] for r in results] == ["ok"] * 3, results
    assert git(ds, "rev-parse", "HEAD").strip() == head  # the current branch stays
    for job_id, name in zip(ids, ("a", "b", "c"), strict=True):
        branch = f"slurm-job-branch-{job_id}"
        assert git(ds, "rev-parse", f"{branch}^").strip() == head
        files = git(ds, "ls-tree", "-r", "--name-only", branch, "--", "out").split()
        assert files == [f"out/{name}/result.txt"]
        (res,) = [r for r in results if r["slurm_job_id"] == job_id]
        assert res["branch"] == branch and res["commit"] == git(ds, "rev-parse", branch).strip()
    assert len(records(ds)) == 0  # no record on the current branch
    assert JobStore.for_dataset(ds.repo.dot_git).jobs() == []
    # The outputs live on their branches, so the work tree is as HEAD has it
    # and each branch merges.
    assert git(ds, "status", "--porcelain") == ""
    git(ds, "merge", "-q", "--no-edit", f"slurm-job-branch-{ids[0]}")
    assert (Path(ds.path) / "out/a/result.txt").exists()


def test_finish_octopus_merges_the_branches_in_one_commit(tmp_path, slurm_cluster):
    ds, ids = _three_jobs(tmp_path)
    head = git(ds, "rev-parse", "HEAD").strip()
    results = api(ds, "slurm_finish", octopus=True, branches=True, wait=True,
                  wait_timeout=120)
    assert [r["status"] for r in results] == ["ok"] * 3, results
    parents = git(ds, "log", "-1", "--format=%P").split()
    assert parents[0] == head and len(parents) == 4
    assert sorted(parents[1:]) == sorted(r["commit"] for r in results)
    assert "Merge 3 finished Slurm jobs" in git(ds, "log", "-1", "--format=%s")
    assert sorted(rec.job_id for _, rec in records(ds)) == sorted(ids)
    assert git(ds, "branch", "--list", "slurm-job-branch-*").strip() == ""
    assert git(ds, "status", "--porcelain") == ""
    for name in ("a", "b", "c"):
        assert (Path(ds.path) / f"out/{name}/result.txt").exists()


def _branch_records(ds) -> dict[str, list[str]]:
    """Branch -> job ids of the run records on it and not on HEAD."""
    found = {}
    for branch in git(ds, "branch", "--list", "--format=%(refname:short)",
                      "slurm-job-branch-*").split():
        log = git(ds, "log", "--format=%B%x01", f"HEAD..{branch}").split("\x01")
        found[branch] = [rec.job_id for rec in map(parse_record, log) if rec]
    return found


@pytest.mark.parametrize("option,kill_at", [
    ("--branches", "marked"), ("--branches", "advanced"),
    ("--octopus", "marked"), ("--octopus", "advanced")])
def test_finish_on_branches_killed_midway_records_each_job_once(tmp_path, slurm_cluster,
                                                               option, kill_at):
    ds, ids = _three_jobs(tmp_path)
    wait_terminal(ids)
    env = dict(os.environ, DATALAD_SLURMSWEEP_KILL_AT=kill_at)
    proc = subprocess.run(["datalad", "slurm-finish", option], cwd=ds.path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    proc = subprocess.run(["datalad", "slurm-finish", option], cwd=ds.path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert JobStore.for_dataset(ds.repo.dot_git).jobs() == []
    if option == "--branches":
        assert _branch_records(ds) == {f"slurm-job-branch-{i}": [i] for i in ids}
        assert records(ds) == []
    else:
        assert sorted(rec.job_id for _, rec in records(ds)) == sorted(ids)  # once each
        assert len(git(ds, "log", "--merges", "--format=%H").split()) == 1
    assert git(ds, "status", "--porcelain") == ""
