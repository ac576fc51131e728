"""Real DataLad projects: subdatasets, globs and placeholders, honest outputs,
and Slurm's filename patterns in sweep names.

tests/local and tests/cluster each run this suite, with the ``backend``
fixture of their conftest.py (local or slurm).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from datalad.api import clone
from datalad.distribution.dataset import Dataset

from ..helpers import api, git, make_dataset, open_jobs, records, sweep, sweep_records
from ..helpers import sweep_config as config

COUNT = """#!/bin/bash
set -e
mkdir -p outputs/deep/res
# the job id makes each run's output differ from the last
echo "$(wc -c < inputs/raw/d.txt) $SLURM_JOB_ID" > outputs/deep/res/count.txt
echo done > summary.txt
"""


def finish(ds: Dataset, **kwargs) -> list[dict]:
    kwargs.setdefault("wait", True)
    kwargs.setdefault("wait_timeout", 180)
    return api(ds, "slurm_finish", **kwargs)


def schedule(ds: Dataset, backend: str, argv: list[str], **kwargs) -> dict:
    (res,) = api(ds, "slurm_schedule", argv, backend=backend, **kwargs)
    return res


def status_r(ds: Dataset) -> list[dict]:
    """What ``datalad status -r`` reports as not clean."""
    return [r for r in ds.status(recursive=True, result_renderer="disabled",
                                 return_type="generator")
            if r.get("state") not in ("clean", None)]


@pytest.fixture
def yoda(tmp_path) -> Dataset:
    """A fresh clone of a YODA project: code in the superdataset, an input
    subdataset installed without its content, and an output subdataset with
    one inside it, neither installed yet."""
    origin = make_dataset(tmp_path / "origin", files={"code/job.sh": COUNT})
    inputs = origin.create("inputs", result_renderer="disabled")
    (Path(inputs.path) / "raw").mkdir()
    (Path(inputs.path) / "raw" / "d.txt").write_text("data\n")
    outputs = origin.create("outputs", result_renderer="disabled")
    outputs.create("deep", result_renderer="disabled")
    origin.save(recursive=True, message="inputs and outputs", result_renderer="disabled")
    ds = clone(source=origin.path, path=str(tmp_path / "ds"), result_renderer="disabled")
    ds.get("inputs", get_data=False, result_renderer="disabled")
    assert os.path.islink(Path(ds.path) / "inputs/raw/d.txt")
    assert not (Path(ds.path) / "inputs/raw/d.txt").exists()  # no content here
    assert not (Path(ds.path) / "outputs/deep").exists()  # not installed
    return ds


def test_yoda_project_outputs_two_subdatasets_deep(yoda, backend):
    res = schedule(yoda, backend, ["sbatch", "code/job.sh"], inputs=["inputs/raw/d.txt"],
                   outputs=["outputs/deep/res", "summary.txt"])
    assert res["status"] == "ok", res["message"]
    job = res["slurm_job_id"]
    (done,) = finish(yoda)
    assert done["status"] == "ok", done["message"]
    root = Path(yoda.path)
    assert (root / "outputs/deep/res/count.txt").read_text() == f"5 {job}\n"
    assert status_r(yoda) == []  # nothing of the job is left modified anywhere
    deep, outputs = Dataset(root / "outputs/deep"), Dataset(root / "outputs")
    assert git(deep, "ls-tree", "-r", "--name-only", "HEAD", "res") == "res/count.txt\n"
    # Each parent records its child's new state in the job's commit.
    deep_head = git(deep, "rev-parse", "HEAD").strip()
    assert git(outputs, "rev-parse", "HEAD:deep").strip() == deep_head
    assert git(yoda, "rev-parse", "HEAD:outputs").strip() == \
        git(outputs, "rev-parse", "HEAD").strip()
    (sha, rec), *_ = records(yoda)
    assert sha == git(yoda, "rev-parse", "HEAD").strip()
    assert rec.record["outputs"] == ["outputs/deep/res", "summary.txt"]
    assert rec.record["missing_outputs"] == []
    assert "Outputs of Slurm job" in git(deep, "log", "-1", "--format=%s")
    # The record replays, outputs in the subdatasets included.
    (again,) = api(yoda, "slurm_reschedule", sha)
    assert again["status"] == "ok", again["message"]
    (done,) = finish(yoda)
    assert done["status"] == "ok", done["message"]
    rerun = again["slurm_job_id"]
    assert (root / "outputs/deep/res/count.txt").read_text() == f"5 {rerun}\n"
    subjects = git(deep, "log", "-2", "--format=%s").splitlines()
    assert [s.split(":")[0] for s in subjects] == [f"Outputs of Slurm job {rerun}",
                                                   f"Outputs of Slurm job {job}"]
    assert git(deep, "rev-parse", "HEAD:res/count.txt") != \
        git(deep, "rev-parse", "HEAD~1:res/count.txt")
    assert status_r(yoda) == []
    assert open_jobs(yoda) == []


def test_one_job_that_cannot_be_committed_leaves_three_committed(tmp_path, backend):
    fifo = "#!/bin/bash\nmkdir -p {out}\necho x > {out}/ok.txt\nmkfifo {out}/pipe\n"
    good = "#!/bin/bash\nmkdir -p {out}\necho $SLURM_JOB_ID > {out}/ok.txt\n"
    files = {f"job{i}.sh": (fifo if i == 2 else good).format(out=f"out{i}") for i in range(4)}
    ds = make_dataset(tmp_path / "ds", files=files)
    ids = [schedule(ds, backend, ["sbatch", f"job{i}.sh"], outputs=[f"out{i}"])["slurm_job_id"]
           for i in range(4)]
    results = finish(ds)
    by_job = {r["slurm_job_id"]: r for r in results}
    bad = by_job[ids[2]]
    assert bad["status"] == "error"
    assert "out2/pipe" in bad["message"] and "named pipe" in bad["message"]
    assert "Traceback" not in bad["message"] and "CallStack" not in bad["message"]
    assert [by_job[i]["status"] for i in (ids[0], ids[1], ids[3])] == ["ok"] * 3
    assert [str(j.job_id) for j in open_jobs(ds)] == [ids[2]]
    committed = git(ds, "ls-tree", "-r", "--name-only", "HEAD")
    assert all(f"out{i}/ok.txt" in committed for i in (0, 1, 3))
    assert "out2" not in committed


def test_output_glob_commits_exactly_the_matching_files(tmp_path, backend):
    script = ("#!/bin/bash\nmkdir -p res\nfor f in a b; do echo $f > res/$f.csv; done\n"
              "echo no > res/notes.txt\n")
    ds = make_dataset(tmp_path / "ds", files={"job.sh": script})
    res = schedule(ds, backend, ["sbatch", "job.sh"], outputs=["res/*.csv"])
    assert res["status"] == "ok", res["message"]
    (done,) = finish(ds)
    assert done["status"] == "ok", done["message"]
    tree = git(ds, "ls-tree", "-r", "--name-only", "HEAD", "res").split()
    assert tree == ["res/a.csv", "res/b.csv"]
    assert git(ds, "status", "--porcelain", "res") == "?? res/notes.txt\n"
    (_, rec), *_ = records(ds)
    assert rec.record["outputs"] == ["res/*.csv"]  # recorded as the pattern


def test_outputs_that_never_appeared_are_not_a_success(tmp_path, backend):
    ds = make_dataset(tmp_path / "ds", files={
        "none.sh": "#!/bin/bash\necho ran\n",
        "some.sh": "#!/bin/bash\necho x > written.txt\n"})
    none = schedule(ds, backend, ["sbatch", "none.sh"], outputs=["never.txt", "res/*.csv"])
    some = schedule(ds, backend, ["sbatch", "some.sh"], outputs=["written.txt", "lost.txt"])
    by_job = {r["slurm_job_id"]: r for r in finish(ds)}
    nothing = by_job[none["slurm_job_id"]]
    assert nothing["status"] == "impossible"
    assert "wrote none of its declared outputs (never.txt, res/*.csv)" in nothing["message"]
    partial = by_job[some["slurm_job_id"]]
    assert partial["status"] == "ok"
    assert "declared outputs missing: lost.txt" in partial["message"]
    (_, rec), = records(ds)
    assert rec.record["missing_outputs"] == ["lost.txt"]
    assert [str(j.job_id) for j in open_jobs(ds)] == [none["slurm_job_id"]]
    # The user decides: recorded anyway, with the missing outputs listed.
    (accepted,) = finish(ds, accept_failed_jobs=True)
    assert accepted["status"] == "ok", accepted["message"]
    (_, rec), _ = records(ds)
    assert rec.record["missing_outputs"] == ["never.txt", "res/*.csv"]
    assert open_jobs(ds) == []


def test_input_globs_placeholders_and_expand(tmp_path, backend):
    script = "#!/bin/bash\nmkdir -p out\ncat \"$@\" > out/all.txt\n"
    ds = make_dataset(tmp_path / "ds", files={
        "job.sh": script, "data/a.txt": "A\n", "data/b.txt": "B\n", "data/c.dat": "C\n"})
    head = git(ds, "rev-parse", "HEAD").strip()
    res = schedule(ds, backend, ["sbatch", "job.sh", "{inputs}"], inputs=["data/*.txt"],
                   outputs=["out"], expand="inputs")
    assert res["status"] == "ok", res["message"]
    (done,) = finish(ds)
    assert done["status"] == "ok", done["message"]
    assert (Path(ds.path) / "out/all.txt").read_text() == "A\nB\n"
    (_, rec), = records(ds)
    assert rec.record["sbatch_argv"] == ["sbatch", "job.sh", "{inputs}"]  # replays anew
    assert rec.record["inputs"] == ["data/a.txt", "data/b.txt"]  # --expand inputs
    assert rec.record["commit_id"] == head
    bad = schedule(ds, backend, ["sbatch", "--wrap=echo ${HOME}"], outputs=["x"])
    assert bad["status"] in ("error", "impossible")
    assert "{HOME} is not a placeholder" in bad["message"]
    nothing = schedule(ds, backend, ["sbatch", "job.sh"], inputs=["data/*.csv"],
                       outputs=["y"])
    assert "input pattern 'data/*.csv' matches no file" in nothing["message"]
    assert open_jobs(ds) == []


def test_percent_in_a_sweep_name_runs_and_replays(model_ds, backend):
    root = "Run-Storage/final_runs_SST2PV_+25%"
    path = config(model_ds, simulation={"output_name": root})
    results = sweep(model_ds, path, backend, wait=True, wait_timeout=180)
    assert [r["status"] for r in results if r["action"] == "slurm-finish"] == ["ok"] * 3
    ((sha, rec),) = sweep_records(model_ds)
    logs = [log for p in rec.record["points"] for log in p["logs"]]
    where = rec.record["sweep"]["root"]
    assert where.endswith(root) and len(logs) == 3
    assert all(log.startswith(where + "/logs/") for log in logs), logs
    assert all(os.path.exists(Path(model_ds.path) / log) for log in logs)
    (again, *_) = [r for r in api(model_ds, "slurm_reschedule", sha)
                   if r["status"] != "notneeded"]
    assert again["status"] == "ok", again["message"]
    finished = finish(model_ds)
    assert [r["status"] for r in finished] == ["ok"] * 3, finished
    assert subprocess.run(["git", "status", "--porcelain"], cwd=model_ds.path,
                          capture_output=True, text=True).stdout == ""


def test_sweep_of_a_model_kept_in_a_subdataset(tmp_path, backend):
    import shutil

    from ..helpers import MODEL
    ds = make_dataset(tmp_path / "ds")
    model = ds.create("model", result_renderer="disabled")  # YODA: code as a subdataset
    shutil.copytree(MODEL, Path(model.path), symlinks=True, dirs_exist_ok=True)
    ds.save(recursive=True, message="model", result_renderer="disabled")
    results = sweep(ds, Path(model.path) / "slurm_config_setup.yaml", backend, wait=True,
                    wait_timeout=180)
    assert [r["status"] for r in results if r["action"] == "slurm-finish"] == ["ok"] * 3
    ((_, rec),) = sweep_records(ds)
    assert rec.record["sweep"]["root"] == "Run-Storage/sweep_initW"
    assert status_r(ds) == []
    # The sweep's own directory may not lie in a subdataset: refused, nothing written.
    inside = config(ds, simulation={"output_name": "runs"})
    refused = api(ds, "slurm_sweep", str(inside), backend=backend)
    assert any("lies in the subdataset model" in r["message"] for r in refused), refused
    assert not (Path(model.path) / "runs").exists()


def test_sweep_replayed_in_a_fresh_clone_gets_its_model_subdataset(tmp_path, backend):
    import shutil

    from ..helpers import MODEL
    origin = make_dataset(tmp_path / "origin")
    model = origin.create("model", result_renderer="disabled")
    shutil.copytree(MODEL, Path(model.path), symlinks=True, dirs_exist_ok=True)
    origin.save(recursive=True, message="model", result_renderer="disabled")
    sweep(origin, Path(model.path) / "slurm_config_setup.yaml", backend, wait=True,
          wait_timeout=180)
    ds = clone(source=origin.path, path=str(tmp_path / "ds"), result_renderer="disabled")
    assert not (Path(ds.path) / "model" / "bin").exists()  # the model is not installed
    ((sha, _),) = sweep_records(ds)
    replayed = [r for r in api(ds, "slurm_reschedule", sha) if r["status"] != "notneeded"]
    assert all(r["status"] == "ok" for r in replayed), replayed
    finished = finish(ds)
    assert [r["status"] for r in finished] == ["ok"] * 3, [r["message"] for r in finished]
    assert len(sweep_records(ds)) == 2
