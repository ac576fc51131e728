"""Jobs in a container (datalad-container) and below --alt-dir, end to end.

tests/local and tests/cluster each run this suite with the ``backend``
fixture of their conftest.py. The "container" is a shell script whose
cmdexec is ``bash {img} {cmd}``, as in datalad-container's own tests: it
sets a variable the payload writes into its output, which proves the payload
ran through it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..helpers import (
    FAKE_IMAGE,
    api,
    git,
    make_dataset,
    records,
    sweep,
    sweep_config,
    sweep_records,
)

pytest.importorskip("datalad_container")

# The payload: its own #SBATCH lines, and what it saw of the container.
PAYLOAD = ("#!/bin/bash\n#SBATCH --job-name=payload\n#SBATCH --output=logs/%x-%j.out\n"
           "set -e\nmkdir -p out\n"
           "echo \"$IN_FAKE_CONTAINER $DATALAD_CONTAINER_NAME $SLURM_JOB_NAME $1\" > out/seen.txt\n")


def _container_dataset(path: Path):
    ds = make_dataset(path, files={"job.sh": PAYLOAD, "images/fake.sh": FAKE_IMAGE})
    ds.containers_add("fake", image="images/fake.sh", call_fmt="bash {img} {cmd}",
                      result_renderer="disabled")
    return ds


def _finish(ds):
    results = api(ds, "slurm_finish", wait=True, wait_timeout=180)
    assert [r["status"] for r in results] == ["ok"], results
    return results[0]


def test_container_job_runs_inside_and_reschedules_with_it(tmp_path, backend):
    ds = _container_dataset(tmp_path / "ds")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh", "arg one"], outputs=["out"],
                 container="fake", backend=backend)
    assert res["status"] == "ok", res["message"]
    _finish(ds)
    seen = (tmp_path / "ds/out/seen.txt").read_text().split()
    # Inside the image, named, the job name (%x) as without it, the argument passed.
    assert seen == ["yes", "fake", "payload", "arg", "one"]
    ((sha, rec),) = records(ds)
    assert rec.record["container"] == "fake"
    assert rec.record["extra_inputs"] == ["images/fake.sh"]
    assert rec.record["sbatch_argv"] == ["sbatch", "job.sh", "arg one"]
    job = rec.job_id
    assert f"logs/payload-{job}.out" in rec.record["slurm_outputs"]
    # slurm-reschedule runs it in the same container.
    (again,) = api(ds, "slurm_reschedule", sha)
    assert again["status"] == "ok", again["message"]
    _finish(ds)
    (new_sha, new), _ = records(ds)
    assert new.record["container"] == "fake" and new.record["chain"] == [sha]
    assert (tmp_path / "ds/out/seen.txt").read_text().split()[:2] == ["yes", "fake"]
    assert git(ds, "status", "--porcelain") == ""


def test_alt_dir_job_runs_outside_and_comes_back(tmp_path, backend):
    script = ("#!/bin/bash\n#SBATCH --output=logs/slurm-%j.out\nset -e\nmkdir -p sub/out\n"
              "cat sub/data/in.txt > sub/out/copy.txt\npwd > sub/out/where.txt\n")
    ds = make_dataset(tmp_path / "ds", files={"sub/job.sh": script,
                                              "sub/data/in.txt": "input\n"})
    alt = tmp_path / "alt"
    (res,) = api(ds, "slurm_schedule", ["sbatch", "sub/job.sh"], outputs=["sub/out"],
                 inputs=["sub/data"], alt_dir=str(alt), backend=backend)
    assert res["status"] == "ok", res["message"]
    assert (alt / "sub/job.sh").is_file() and (alt / "sub/data/in.txt").is_file()
    _finish(ds)
    out = tmp_path / "ds/sub/out"
    assert (out / "copy.txt").read_text() == "input\n"
    # It ran below the alternative directory, in the mirror of its pwd (the root).
    assert os.path.realpath((out / "where.txt").read_text().strip()) == os.path.realpath(alt)
    assert not (alt / "sub/out").exists()  # moved, not copied
    ((sha, rec),) = records(ds)
    assert rec.record["alt_dir"] == str(alt)
    job = rec.job_id
    assert (tmp_path / f"ds/logs/slurm-{job}.out").is_file()
    assert f"logs/slurm-{job}.out" in rec.record["slurm_outputs"]
    assert git(ds, "status", "--porcelain") == ""
    (again,) = api(ds, "slurm_reschedule", sha)
    assert again["status"] == "ok", again["message"]
    _finish(ds)
    (_, new), _ = records(ds)
    assert new.record["alt_dir"] == str(alt) and new.record["chain"] == [sha]
    assert not (alt / "sub/out").exists()


def test_sweep_cases_run_in_their_container_and_reschedule_with_it(model_ds, backend):
    (Path(model_ds.path) / "images").mkdir()
    (Path(model_ds.path) / "images/fake.sh").write_text(FAKE_IMAGE)
    model_ds.save(message="image", result_renderer="disabled")
    model_ds.containers_add("fake", image="images/fake.sh", call_fmt="bash {img} {cmd}",
                            result_renderer="disabled")
    command = 'echo "$IN_FAKE_CONTAINER $DATALAD_CONTAINER_NAME $SWEEP_POINT" > "$OUTPUT_DIR/seen.txt"'
    path = sweep_config(model_ds, simulation={"container": "fake"}, simulation_cases={
        "baseline": {"config_file": "simulation_config_baseline.json", "command": command}})
    sweep(model_ds, path, backend, wait=True, wait_timeout=180)
    root = Path(model_ds.path) / "Run-Storage/sweep_initW"
    for value in (2.0, 3.0, 4.0):
        seen = (root / f"initW-{value}/baseline/seen.txt").read_text().split()
        assert seen == ["yes", "fake", f"initW-{value}"]
    ((sha, rec),) = sweep_records(model_ds)
    assert rec.record["extra_inputs"] == ["images/fake.sh"]
    assert {p["container"] for p in rec.record["points"]} == {"fake"}
    (again, *_) = api(model_ds, "slurm_reschedule", sha)
    assert again["status"] == "ok", again["message"]
    api(model_ds, "slurm_finish", wait=True, wait_timeout=180)
    (_, new), *_ = sweep_records(model_ds)
    assert new.record["chain"] == [sha]
    assert {p["container"] for p in new.record["points"]} == {"fake"}


def test_container_and_alt_dir_together_run_the_copied_image(tmp_path, backend):
    ds = _container_dataset(tmp_path / "ds")
    alt = tmp_path / "alt"
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh", "x"], outputs=["out"],
                 container="fake", alt_dir=str(alt), backend=backend)
    assert res["status"] == "ok", res["message"]
    assert (alt / "images/fake.sh").read_text() == FAKE_IMAGE
    _finish(ds)
    assert (tmp_path / "ds/out/seen.txt").read_text().split() == ["yes", "fake", "payload", "x"]
    ((_, rec),) = records(ds)
    assert rec.record["container"] == "fake" and rec.record["alt_dir"] == str(alt)
    assert not (alt / "out").exists() and list((alt / "logs").iterdir()) == []


def test_wrap_command_runs_in_the_container(tmp_path, backend):
    ds = _container_dataset(tmp_path / "ds")
    command = 'mkdir -p out && echo "$IN_FAKE_CONTAINER $SLURM_JOB_NAME" > out/seen.txt'
    (res,) = api(ds, "slurm_schedule", ["sbatch", f"--wrap={command}"], outputs=["out"],
                 container="fake", backend=backend)
    assert res["status"] == "ok", res["message"]
    _finish(ds)
    assert (tmp_path / "ds/out/seen.txt").read_text().split() == ["yes", "wrap"]
    ((_, rec),) = records(ds)
    assert rec.record["sbatch_argv"] == ["sbatch", f"--wrap={command}"]
    assert rec.record["container"] == "fake"
