"""slurm-finish --branches with a sweep, on the local backend: the points
that finish together are one record, so one commit on one branch."""
from __future__ import annotations

import subprocess
from pathlib import Path

from datalad_slurmsweep.jobs.store import JobStore
from datalad_slurmsweep.provenance.record import parse_record

from ..helpers import OK, api, commit_while_running, git, make_dataset, sweep, sweep_records
from ..helpers import sweep_config as config


def test_a_sweeps_points_go_on_one_branch_then_merge(model_ds):
    path = config(model_ds, sweep_config={"param_values": [2.0, 3.0]})
    sweep(model_ds, path, "local")
    head = git(model_ds, "rev-parse", "HEAD").strip()
    results = api(model_ds, "slurm_finish", branches=True, wait=True, wait_timeout=180)
    assert [r["status"] for r in results] == ["ok", "ok"], results
    (branch,) = {r["branch"] for r in results}
    assert branch.startswith("slurm-sweep-branch-") and branch.endswith(
        min((r["slurm_job_id"].split("_")[0] for r in results), key=int))
    assert git(model_ds, "rev-parse", f"{branch}^").strip() == head
    rec = parse_record(git(model_ds, "log", "-1", "--format=%B", branch))
    assert sorted(p["point"] for p in rec.record["points"]) == ["initW-2.0", "initW-3.0"]
    assert sweep_records(model_ds) == [] and git(model_ds, "status", "--porcelain") == ""
    assert not (Path(model_ds.path) / "Run-Storage/sweep_initW/initW-2.0/baseline").exists()
    assert JobStore.for_dataset(model_ds.repo.dot_git).jobs() == []
    git(model_ds, "merge", "-q", "--no-edit", branch)
    assert (Path(model_ds.path) / "Run-Storage/sweep_initW/initW-2.0/baseline").is_dir()
    assert len(sweep_records(model_ds)) == 1


def test_a_rerun_on_a_branch_leaves_heads_version_in_the_work_tree(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"a.sh": OK.format(out="out")})
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    api(ds, "slurm_schedule", ["sbatch", "a.sh"], outputs=["out"])
    api(ds, "slurm_finish", wait=True, wait_timeout=60)
    first = (Path(ds.path) / "out/result.txt").read_text()
    (res,) = api(ds, "slurm_reschedule")
    assert res["status"] == "ok", res
    head = git(ds, "rev-parse", "HEAD").strip()
    (fin,) = api(ds, "slurm_finish", branches=True, wait=True, wait_timeout=60)
    assert fin["status"] == "ok" and fin["branch"] == f"slurm-job-branch-{res['slurm_job_id']}"
    assert git(ds, "rev-parse", "HEAD").strip() == head
    assert (Path(ds.path) / "out/result.txt").read_text() == first
    assert git(ds, "status", "--porcelain") == ""
    git(ds, "merge", "-q", "--no-edit", fin["branch"])
    assert (Path(ds.path) / "out/result.txt").read_text().strip() == res["slurm_job_id"]


def test_a_user_committing_during_an_octopus_finish_loses_nothing(tmp_path):
    files = {f"job{i}.sh": OK.format(out=f"out/{i}") for i in range(12)}
    ds = make_dataset(tmp_path / "ds", files=files)
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    for i in range(12):
        api(ds, "slurm_schedule", ["sbatch", f"job{i}.sh"], outputs=[f"out/{i}"])
    finish = subprocess.Popen(["datalad", "slurm-finish", "--octopus", "--wait"],
                              cwd=ds.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    user_commits = commit_while_running(ds, finish)
    assert user_commits > 0
    (merge,) = git(ds, "log", "--merges", "--format=%H").split()
    parents = git(ds, "log", "-1", "--format=%P", merge).split()
    assert len(parents) == 13
    recorded = [parse_record(git(ds, "log", "-1", "--format=%B", p)) for p in parents[1:]]
    assert len({r.job_id for r in recorded}) == 12
    for i in range(12):
        assert (Path(ds.path) / f"out/{i}/result.txt").exists()
    users = [s for s in git(ds, "log", "--format=%s").splitlines() if s.startswith("user ")]
    assert len(users) >= user_commits
    assert git(ds, "status", "--porcelain") == ""
    assert JobStore.for_dataset(ds.repo.dot_git).jobs() == []


def test_a_deletion_on_a_branch_leaves_heads_files_in_place(tmp_path):
    job = "#!/bin/sh\nrm out/old.txt\necho new > out/new.txt\n"
    ds = make_dataset(tmp_path / "ds", files={"job.sh": job, "out/old.txt": "old\n"})
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh"], outputs=["out"])
    (fin,) = api(ds, "slurm_finish", branches=True, wait=True, wait_timeout=60)
    assert fin["status"] == "ok", fin
    assert git(ds, "ls-tree", "-r", "--name-only", fin["branch"], "--", "out").split() == [
        "out/new.txt"]
    assert (Path(ds.path) / "out/old.txt").read_text() == "old\n"
    assert not (Path(ds.path) / "out/new.txt").exists()
    assert git(ds, "status", "--porcelain") == ""


def test_branches_keep_a_job_with_outputs_in_a_subdataset_open_untouched(tmp_path):
    # Found by hostile testing: --branches staged the subdataset's files in the
    # superdataset ("Pathspec ... is in submodule"), failed, and left annexed
    # log symlinks untracked behind. Now the job is refused before anything is
    # written and a plain finish commits it.
    ds = make_dataset(tmp_path / "ds", files={"a.sh": OK.format(out="sub/res")})
    ds.create("sub", result_renderer="disabled")
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "a.sh"], outputs=["sub/res/*.txt"])
    assert res["status"] == "ok", res
    head = git(ds, "rev-parse", "HEAD").strip()
    (fin,) = api(ds, "slurm_finish", octopus=True, wait=True, wait_timeout=60)
    assert fin["status"] == "impossible" and "sub" in fin["message"], fin
    assert "--branches" in fin["message"]
    assert git(ds, "rev-parse", "HEAD").strip() == head
    assert "slurm-job-branch" not in git(ds, "branch", "--list")
    assert not (Path(ds.path) / f"slurm-job-{res['slurm_job_id']}.env.json").exists()
    assert not (Path(ds.path) / f"slurm-{res['slurm_job_id']}.out").is_symlink()
    assert len(JobStore.for_dataset(ds.repo.dot_git).jobs()) == 1
    (fin,) = api(ds, "slurm_finish")
    assert fin["status"] == "ok", fin
    assert ds.status(recursive=True, annex=None, result_renderer="disabled",
                     return_type="list", result_filter=lambda r: r["state"] != "clean") == []
