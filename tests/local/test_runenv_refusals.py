"""--container and --alt-dir refused before anything is written or submitted,
and what slurm-finish says about an --alt-dir job that wrote nothing."""
from __future__ import annotations

import sys

import pytest

from ..helpers import (
    FAKE_IMAGE,
    OK,
    api,
    commit_count,
    git,
    make_dataset,
    model_dataset,
    open_jobs,
    records,
    sweep_config,
)

pytest.importorskip("datalad_container")


@pytest.fixture
def ds(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="out"),
                                              "images/fake.sh": FAKE_IMAGE})
    ds.containers_add("fake", image="images/fake.sh", call_fmt="bash {img} {cmd}",
                      result_renderer="disabled")
    return ds


def _refused(ds, argv, **kwargs) -> str:
    before = commit_count(ds)
    (res,) = api(ds, "slurm_schedule", argv, outputs=["out"], backend="local", **kwargs)
    assert res["status"] in ("error", "impossible"), res
    assert open_jobs(ds) == [] and commit_count(ds) == before
    assert git(ds, "status", "--porcelain") == ""
    return res["message"]


def test_unknown_container_is_refused_naming_the_known_ones(ds):
    message = _refused(ds, ["sbatch", "job.sh"], container="nosuch")
    assert "--container nosuch" in message and "fake" in message


def test_container_script_without_interpreter_line_is_refused(ds, tmp_path):
    (tmp_path / "ds/bare.sh").write_text("echo no interpreter\n")
    ds.save(message="bare", result_renderer="disabled")
    assert "'#!' line" in _refused(ds, ["sbatch", "bare.sh"], container="fake")


def test_unknown_cmdexec_placeholder_is_refused(ds):
    ds.config.set("datalad.containers.fake.cmdexec", "run {image} {cmd}", scope="local")
    message = _refused(ds, ["sbatch", "job.sh"], container="fake")
    assert "{image}" in message or "image" in message
    assert "datalad.containers.fake.cmdexec" in message


def test_without_datalad_container_the_error_says_how_to_install_it(ds, monkeypatch):
    monkeypatch.setitem(sys.modules, "datalad_container.find_container", None)
    message = _refused(ds, ["sbatch", "job.sh"], container="fake")
    assert "pip install 'datalad-slurmsweep[containers]'" in message


@pytest.mark.parametrize("where", ["relative", "inside", "dataset"])
def test_alt_dir_relative_or_in_the_dataset_is_refused(ds, tmp_path, where):
    alt = {"relative": "alt", "inside": str(tmp_path / "ds/sub/alt"),
           "dataset": str(tmp_path / "ds")}[where]
    message = _refused(ds, ["sbatch", "job.sh"], alt_dir=alt)
    assert "--alt-dir" in message
    assert not (tmp_path / "ds/sub").exists()


def test_alt_dir_whose_mirror_would_land_in_the_dataset_is_refused(ds, tmp_path):
    # The dataset is tmp/ds: a mirror in tmp would put the output "ds/..." in it.
    ds.save(result_renderer="disabled")
    (tmp_path / "ds/ds").mkdir()
    (tmp_path / "ds/ds/job.sh").write_text(OK.format(out="ds/out"))
    ds.save(message="nested", result_renderer="disabled")
    before = commit_count(ds)
    (res,) = api(ds, "slurm_schedule", ["sbatch", "ds/job.sh"], outputs=["ds/out"],
                 alt_dir=str(tmp_path), backend="local")
    assert res["status"] == "impossible" and "inside the dataset" in res["message"]
    assert open_jobs(ds) == [] and commit_count(ds) == before


def test_alt_dir_output_that_exists_already_is_refused(ds, tmp_path):
    (tmp_path / "alt/out").mkdir(parents=True)
    message = _refused(ds, ["sbatch", "job.sh"], alt_dir=str(tmp_path / "alt"))
    assert "already exists below --alt-dir" in message
    assert sorted(p.name for p in (tmp_path / "alt").iterdir()) == ["out"]


def test_refused_submission_takes_its_alt_dir_copies_away(ds, tmp_path):
    alt = tmp_path / "alt"
    (res,) = api(ds, "slurm_schedule", ["sbatch", "--hold", "job.sh"], outputs=["out"],
                 alt_dir=str(alt), backend="local")
    # sbatch (here the local backend) refuses --hold after the copies were made.
    assert res["status"] == "impossible" and "--hold" in res["message"], res
    assert open_jobs(ds) == [] and not alt.exists()


def test_alt_dir_output_the_job_did_not_write_is_named_at_finish(ds, tmp_path):
    (tmp_path / "ds/quiet.sh").write_text("#!/bin/bash\ntrue\n")
    ds.save(message="quiet", result_renderer="disabled")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "quiet.sh"], outputs=["out"],
                 alt_dir=str(tmp_path / "alt"), backend="local")
    assert res["status"] == "ok", res["message"]
    (fin,) = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert fin["status"] == "impossible"  # stays open: nothing of its result exists
    assert "wrote none of its declared outputs (out)" in fin["message"]
    (fin,) = api(ds, "slurm_finish", accept_failed_jobs=True)
    assert fin["status"] == "ok", fin["message"]
    ((_, rec),) = records(ds)
    assert rec.record["alt_dir"] == str(tmp_path / "alt")
    assert rec.record["missing_outputs"] == ["out"]


def test_sweep_naming_an_unknown_container_is_refused_at_check(tmp_path):
    ds = model_dataset(tmp_path / "ds")
    path = sweep_config(ds, simulation_cases={"baseline": {
        "config_file": "simulation_config_baseline.json", "container": "nosuch"}})
    (res,) = api(ds, "slurm_sweep", str(path), check=True, backend="local")
    assert res["status"] != "ok"
    assert "simulation_cases.baseline.container" in res["message"]
    assert "nosuch" in res["message"]
