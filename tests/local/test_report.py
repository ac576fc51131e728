"""slurm-init, then check, sweep and report on the local backend, and the
report page rendered in a real browser (Debian's headless Chromium)."""
from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from datalad.api import Dataset

from ..helpers import api, chromium, distinct_colours, git, make_dataset, render_page

# The failing point also prints an AWS key id (AWS's documented example),
# put together at run time: the configuration itself may hold no secret.
FAILING = ("python3 model/run_model.py {config_file} && "
           "{{ [ {gain} != 2.0 ] || [ {tau} != 20.0 ] || "
           "{{ echo key AKIA$(echo IOSFODNN7EXAMPLE); false; }}; }}")


def _init(tmp_path: Path) -> Dataset:
    from datalad.api import slurm_init
    (res,) = slurm_init(str(tmp_path / "proj"), result_renderer="disabled",
                        return_type="list")
    assert res["status"] == "ok", res
    return Dataset(tmp_path / "proj")


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_init_check_sweep_report_end_to_end(tmp_path, monkeypatch):
    ds = _init(tmp_path)
    assert git(ds, "status", "--porcelain") == ""
    assert "slurm-init" in git(ds, "log", "-1", "--format=%B") or \
        "SLURM INIT" in git(ds, "log", "-1", "--format=%B")
    (check,) = api(ds, "slurm_sweep", "sweep.yaml", check=True)
    assert check["status"] == "ok" and "12 jobs" in check["message"], check
    results = api(ds, "slurm_sweep", "sweep.yaml", wait=True, wait_timeout=300)
    assert all(r["status"] == "ok" for r in results), results
    # The model holds 20 MiB of the 205 MiB requested: finish says so, once.
    (advice,) = [r for r in results if r.get("advice")]
    assert advice["advice"][0].startswith("--mem=")
    assert "; sweep runs/grid: the tasks used at most" in advice["message"]
    out = tmp_path / "out"
    report = api(ds, "slurm_report", output_dir=str(out))
    assert all(r["status"] == "ok" for r in report), report
    rows = _rows(out / "results.csv")
    assert len(rows) == 12
    head = git(ds, "rev-parse", "HEAD").strip()
    assert {r["dataset_commit"] for r in rows} == {head}
    for row in rows:
        assert row["state"] == "COMPLETED" and row["attempts"] == "1"
        assert float(row["firing_rate"]) > 0 and float(row["elapsed_s"]) > 0.3
        assert int(row["max_rss_bytes"]) > 20 * 1024 ** 2  # the model holds 20 MiB
        assert 0 < float(row["mem_efficiency"]) < 1 and float(row["cpu_efficiency"]) > 0
    assert "<svg" in (out / "report.html").read_text()
    assert git(ds, "status", "--porcelain") == ""  # the report is not in the dataset
    # Rebuilt at a later commit, the table is the same but for that commit.
    (Path(ds.path) / "notes.txt").write_text("later\n")
    ds.save(message="later", result_renderer="disabled")
    again = tmp_path / "again"
    api(ds, "slurm_report", "runs/grid", output_dir=str(again))
    later = _rows(again / "results.csv")
    strip = [{k: v for k, v in r.items() if k != "dataset_commit"} for r in later]
    assert strip == [{k: v for k, v in r.items() if k != "dataset_commit"} for r in rows]
    # Without matplotlib: the table and a page without plots, and how to get them.
    from datalad_slurmsweep.report import plots
    monkeypatch.setattr(plots, "available", lambda: False)
    bare = api(ds, "slurm_report", output_dir=str(tmp_path / "bare"))
    assert any("pip install 'datalad-slurmsweep[report]'" in r["message"] for r in bare)
    assert "<svg" not in (tmp_path / "bare" / "report.html").read_text()
    assert len(_rows(tmp_path / "bare" / "results.csv")) == 12


def test_report_refuses_what_it_cannot_describe(tmp_path):
    ds = _init(tmp_path)
    (res,) = api(ds, "slurm_report", output_dir=str(tmp_path / "o"))
    assert res["status"] == "impossible" and "no sweep run record" in res["message"]
    (res,) = api(ds, "slurm_report", "runs/grid", since="HEAD")
    assert res["status"] == "impossible" and "contradict" in res["message"]
    (res,) = api(ds, "slurm_report", "no-such-thing")
    assert res["status"] == "impossible" and "no-such-thing" in res["message"]
    assert not (tmp_path / "o").exists()
    from datalad.api import slurm_init
    (res,) = slurm_init(ds.path, result_renderer="disabled", return_type="list",
                        on_failure="ignore")
    assert res["status"] == "impossible" and "sweep.yaml" in res["message"]


def _failing_grid(tmp_path: Path) -> tuple[Dataset, Path]:
    ds = _init(tmp_path)
    config = Path(ds.path) / "sweep.yaml"
    cfg = yaml.safe_load(config.read_text())
    cfg["simulation_cases"]["baseline"]["command"] = FAILING
    config.write_text(yaml.safe_dump(cfg))
    ds.save(message="fail one point", result_renderer="disabled")
    api(ds, "slurm_sweep", "sweep.yaml", wait=True, wait_timeout=300)
    # A failed point enters the records once it is accepted.
    accepted = api(ds, "slurm_finish", accept_failed_jobs=True)
    assert [r["status"] for r in accepted] == ["ok"], accepted
    out = tmp_path / "report"
    results = api(ds, "slurm_report", "sweep.yaml", output_dir=str(out))
    assert all(r["status"] == "ok" for r in results), results
    return ds, out


def test_report_of_a_2d_grid_with_a_failing_point_in_chromium(tmp_path):
    if chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (make deps installs it)")
        pytest.skip("chromium is not installed (make deps installs it)")
    ds, out = _failing_grid(tmp_path)
    rows = {(r["gain"], r["tau"]): r for r in _rows(out / "results.csv")}
    assert rows[("2.0", "20.0")]["state"] == "FAILED"
    assert rows[("2.0", "20.0")]["exit_code"] == "1"
    assert sum(r["state"] == "COMPLETED" for r in rows.values()) == 11
    shot = tmp_path / "report.png"
    dom, console = render_page(out / "report.html", shot)
    assert console == []
    figures = re.findall(r'<figure class="plot">(.*?)</figure>', dom, re.S)
    assert len(figures) >= 6  # 3 heat maps, states, runtime, MaxRSS, timeline
    for figure in figures:
        svg = re.search(r"<svg.*?</svg>", figure, re.S)
        assert svg and re.search(r"<(path|image|use)\b", svg.group(0)), figure[:200]
    assert "heat map" in dom and "FAILED" in dom
    failed = re.search(r'<table id="failed">(.*?)</table>', dom, re.S).group(1)
    assert "gain-2.0_tau-20.0" in failed and "<pre>" in failed
    assert "key " in failed and "AKIAIOSFODNN7EXAMPLE" not in dom
    assert shot.stat().st_size > 10_000 and distinct_colours(shot) > 50
    if os.environ.get("SLURMSWEEP_SCREENSHOT"):  # docs/report.png is made this way
        shutil.copy(shot, os.environ["SLURMSWEEP_SCREENSHOT"])


def test_init_into_an_annex_dataset_and_annexed_metrics_are_read(tmp_path):
    from datalad.api import slurm_init

    from ..helpers import make_dataset
    ds = make_dataset(tmp_path / "ds")  # every file annexed, metrics.json too
    (res,) = slurm_init(ds.path, result_renderer="disabled", return_type="list")
    assert res["status"] == "ok" and git(ds, "status", "--porcelain") == ""
    api(ds, "slurm_sweep", "sweep.yaml", wait=True, wait_timeout=300)
    metrics = Path(ds.path) / "runs/grid/gain-0.5_tau-5.0/baseline/metrics.json"
    assert metrics.is_symlink()  # content in the annex, key in the commit
    api(ds, "slurm_report", output_dir=str(tmp_path / "out"))
    rows = _rows(tmp_path / "out" / "results.csv")
    assert len(rows) == 12 and all(float(r["energy"]) > 0 for r in rows)


def test_the_table_names_the_outputs_a_job_did_not_write(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"some.sh": "#!/bin/bash\necho x > written.txt\n"})
    (res,) = api(ds, "slurm_schedule", ["sbatch", "some.sh"], outputs=["written.txt", "lost.txt"],
                 backend="local")
    assert res["status"] == "ok", res["message"]
    (done,) = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert "declared outputs missing: lost.txt" in done["message"]
    out = tmp_path / "out"
    api(ds, "slurm_report", "HEAD", output_dir=str(out))
    with open(out / "results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["state"] == "COMPLETED" and row["missing_outputs"] == "lost.txt"
