"""One test per defect found by the hostile trials of issues 9 and 10 that
no other test module covers; each failed before its fix."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..helpers import api, git, make_dataset, records


def nested_ds(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    sub = ds.create("sub", result_renderer="disabled")
    sub.create("deep", result_renderer="disabled")
    for rel in ("sub/g.txt", "sub/deep/f.txt"):
        (Path(ds.path) / rel).write_text("old\n")
    ds.save(recursive=True, message="content", result_renderer="disabled")
    return ds


def test_an_output_holding_a_subdataset_has_its_annexed_files_unlocked(tmp_path):
    # An output without "/" skipped reading the subdataset layout, so nothing
    # below "sub" was unlocked: the job wrote through the annex symlinks into
    # the stored objects (as root) or failed on them (as anyone else).
    ds = nested_ds(tmp_path)
    root = Path(ds.path)
    assert (root / "sub/deep/f.txt").is_symlink()
    (res,) = api(ds, "slurm_schedule", ["sbatch", "--wrap=echo new > sub/deep/f.txt; "
                                        "echo new > sub/g.txt"], outputs=["sub"])
    assert res["status"] == "ok", res
    for rel in ("sub/g.txt", "sub/deep/f.txt"):
        assert not (root / rel).is_symlink(), rel
    (fin,) = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert fin["status"] == "ok", fin
    assert [r.record["outputs"] for _, r in records(ds)] == [["sub"]]
    for rel in ("sub/g.txt", "sub/deep/f.txt"):
        assert (root / rel).read_text() == "new\n"
    assert git(ds, "status", "--porcelain", "--ignore-submodules=none") == ""
    # The stored content is intact: nothing wrote through a symlink.
    subprocess.run(["git", "annex", "fsck", "-q"], cwd=root / "sub/deep", check=True)


def test_reschedule_installs_input_subdatasets_and_gets_their_content(tmp_path):
    # slurm-schedule installs the subdatasets a job's paths lie in and gets
    # its inputs; slurm-reschedule did neither, so the replayed job ran
    # without its inputs (FAILED, "No such file") after an uninstall.
    ds = make_dataset(tmp_path / "ds", files={"job.sh": "#!/bin/sh\nmkdir -p out\n"
                                              "cat \"$@\" > out/r\n"})
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    inputs = ds.create("inputs", result_renderer="disabled")
    raw = inputs.create("raw", result_renderer="disabled")
    (Path(raw.path) / "d 1.txt").write_text("one\n")
    ds.save(recursive=True, message="inputs", result_renderer="disabled")
    # Job 1 is not recorded: the clone's local job ids start at 1 again, and
    # the record's committed slurm-1.out would be in the way of its log.
    api(ds, "slurm_schedule", ["sbatch", "--wrap=true"], outputs=["none"])
    api(ds, "slurm_finish", close_failed_jobs=True, wait=True, wait_timeout=60)
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh", "{inputs}"],
                 inputs=["inputs/raw/*.txt"], outputs=["out"])
    assert res["status"] == "ok", res
    (fin,) = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert fin["status"] == "ok", fin
    # A fresh clone: the subdatasets are registered but not installed.
    from datalad.api import clone
    ds = clone(source=ds.path, path=str(tmp_path / "clone"), result_renderer="disabled")
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    assert not (Path(ds.path) / "inputs/raw").exists()
    (res,) = api(ds, "slurm_reschedule")
    assert res["status"] == "ok", res
    (fin,) = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert fin["status"] == "ok", fin
    assert (Path(ds.path) / "out/r").read_text() == "one\n"
    assert len(records(ds)) == 2


def test_a_rerun_does_not_write_through_a_committed_log_of_a_fixed_name(tmp_path):
    # --output=log.txt was committed as an annexed symlink; the rerun wrote
    # its log through it into the first run's stored content (fsck: bad).
    ds = make_dataset(tmp_path / "ds")
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "--output=logs/%x.log", "-J", "job",
                                        "--wrap=mkdir -p out; echo run $SLURM_JOB_ID; "
                                        "echo $SLURM_JOB_ID > out/id"], outputs=["out"])
    assert res["status"] == "ok", res
    api(ds, "slurm_finish", wait=True, wait_timeout=60)
    log = Path(ds.path) / "logs/job.log"
    assert log.is_symlink() and log.read_text() == f"run {res['slurm_job_id']}\n"
    (again,) = api(ds, "slurm_reschedule")
    assert again["status"] == "ok", again
    (fin,) = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert fin["status"] == "ok", fin
    assert log.read_text() == f"run {again['slurm_job_id']}\n"
    subprocess.run(["git", "annex", "fsck", "-q"], cwd=ds.path, check=True)
    first = git(ds, "show", "HEAD~1:logs/job.log").strip()
    assert first.endswith(".log")  # the key of the first run's log, still intact
    assert (log.parent / first).read_text() == f"run {res['slurm_job_id']}\n"


def test_a_clones_local_job_never_writes_through_a_committed_log(tmp_path):
    # A clone numbers its local jobs from 1 again: the rescheduled job's
    # slurm-1.out was the recorded job's committed log. Absent, the job
    # FAILED ("No such file"); got, its log went into the stored content.
    from datalad.api import clone
    src = make_dataset(tmp_path / "src")
    src.config.set("datalad.slurmsweep.backend", "local", scope="local")
    (res,) = api(src, "slurm_schedule", ["sbatch", "--wrap=mkdir -p out; echo $PWD > out/x; "
                                         "echo log $PWD"], outputs=["out"])
    assert res["status"] == "ok" and res["slurm_job_id"] == "1", res
    api(src, "slurm_finish", wait=True, wait_timeout=60)
    for got in (False, True):
        ds = clone(source=src.path, path=str(tmp_path / f"clone-{got}"),
                   result_renderer="disabled")
        ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
        if got:
            ds.get("slurm-1.out", result_renderer="disabled")
        (again,) = api(ds, "slurm_reschedule")
        assert again["status"] == "ok" and again["slurm_job_id"] == "1", again
        (fin,) = api(ds, "slurm_finish", wait=True, wait_timeout=60)
        assert fin["status"] == "ok", fin
        assert (Path(ds.path) / "slurm-1.out").read_text() == f"log {ds.path}\n"
        subprocess.run(["git", "annex", "fsck", "-q"], cwd=ds.path, check=True)


def test_a_sweeps_snapshot_of_a_component_subdataset_is_in_the_dataset(tmp_path):
    # The snapshot copied the subdataset's annex symlinks, re-pointed into
    # model/.git/annex: committed in the superdataset as keys it never had,
    # so a clone could not get them and the sweep commit was not replayable.
    import shutil

    import yaml
    from datalad.api import clone

    from ..helpers import MODEL
    ds = make_dataset(tmp_path / "ds")
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    ds.create("model", result_renderer="disabled")
    shutil.copytree(MODEL, tmp_path / "ds/model", symlinks=True, dirs_exist_ok=True)
    cfg_path = tmp_path / "ds/model/slurm_config_setup.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["sweep_config"]["param_values"] = [2.0]
    cfg_path.write_text(yaml.safe_dump(cfg))
    ds.save(recursive=True, message="model", result_renderer="disabled")
    results = api(ds, "slurm_sweep", str(cfg_path), wait=True, wait_timeout=180)
    assert all(r["status"] == "ok" for r in results), results
    assert len(records(ds)) == 1
    snap = next((tmp_path / "ds/Run-Storage/sweep_initW/.components").iterdir())
    mech = snap / "mechanisms/mech1.mod"
    assert not mech.is_symlink() or "model/.git" not in os.readlink(mech)
    copy = clone(source=ds.path, path=str(tmp_path / "clone"), result_renderer="disabled")
    got = copy.get("Run-Storage/sweep_initW/.components", on_failure="ignore",
                   return_type="list", result_renderer="disabled")
    assert all(r["status"] in ("ok", "notneeded") for r in got), got
    assert (Path(copy.path) / snap.relative_to(ds.path) / "mechanisms/mech1.mod").read_text() \
        == (MODEL / "components/mechanisms/mech1.mod").read_text()


def test_report_and_init_refuse_an_unusable_directory_by_name(tmp_path):
    # Both ended in a bare "[ERROR] [Errno 17] File exists" (an OSError that
    # escaped the command) instead of a result naming the option.
    from datalad.api import slurm_init
    blocker = tmp_path / "file"
    blocker.write_text("x")
    (res,) = slurm_init(str(blocker / "proj"), on_failure="ignore", return_type="list",
                        result_renderer="disabled")
    assert res["status"] == "impossible" and str(blocker / "proj") in res["message"], res
    ds = make_dataset(tmp_path / "ds")
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "--wrap=mkdir -p o; echo 1 > o/x"],
                 outputs=["o"])
    api(ds, "slurm_finish", wait=True, wait_timeout=60)
    for out in (blocker, blocker / "sub"):
        (res,) = api(ds, "slurm_report", since="HEAD~1", output_dir=str(out))
        assert res["status"] == "impossible", res
        assert "--output-dir" in res["message"] and str(out) in res["message"], res
    assert blocker.read_text() == "x"


def test_a_container_replay_keeps_the_image_out_of_inputs(tmp_path):
    # The record's extra_inputs (the image) went into {inputs} on replay,
    # so the rerun ran "cat data.txt images/fake.sh" instead of the command
    # of the first run. datalad run never puts extra inputs there.
    from ..helpers import FAKE_IMAGE
    ds = make_dataset(tmp_path / "ds", files={"data.txt": "hi\n",
                                              "images/fake.sh": FAKE_IMAGE})
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    ds.containers_add("fake", image="images/fake.sh", call_fmt="bash {img} {cmd}",
                      result_renderer="disabled")
    argv = ["sbatch", "--wrap=mkdir -p o; cat {inputs} > o/r"]
    (res,) = api(ds, "slurm_schedule", argv, inputs=["data.txt"], outputs=["o"],
                 container="fake")
    assert res["status"] == "ok", res
    api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert (Path(ds.path) / "o/r").read_text() == "hi\n"
    (again,) = api(ds, "slurm_reschedule")
    assert again["status"] == "ok", again
    (fin,) = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert fin["status"] == "ok", fin
    assert (Path(ds.path) / "o/r").read_text() == "hi\n"


def test_a_wrap_command_holding_a_secret_leaves_no_copy_once_the_job_ended(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"README": "x\n"})
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    (res,) = api(ds, "slurm_schedule",
                 ["sbatch", f"--wrap=mkdir -p out && echo {token} | wc -c > out/n"],
                 outputs=["out"], backend="local")
    assert res["status"] == "ok", res["message"]
    (done,) = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert done["status"] == "ok", done["message"]
    ours = Path(ds.path) / ".git" / "slurmsweep"
    leaks = [p for p in ours.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert leaks == []
    assert token not in git(ds, "log", "-p", "--all")
