"""slurm-reschedule --script, and --since over single jobs and sweeps, on the
local backend."""
from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from datalad_slurmsweep.jobs.store import JobStore

from ..helpers import OK, api, commit_count, git, records, sweep, sweep_records
from ..helpers import sweep_config as config


def _sweep_commit(ds) -> str:
    return git(ds, "log", "-1", "--format=%H", "-F",
               "--grep=[DATALAD SLURM SWEEP]", "--grep=jobs to submit", "--all-match").strip()


def _first_sweep_commit(ds) -> str:
    return git(ds, "log", "--reverse", "--format=%H", "-F", "--grep=[DATALAD SLURM SWEEP]",
               "--grep=jobs to submit", "--all-match").split()[0]


def _add_job(ds, name: str, out: str) -> None:
    script = Path(ds.path) / name
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(OK.format(out=shlex.quote(out)))
    script.chmod(0o755)
    ds.save(message=f"add {name}", result_renderer="disabled")


def test_since_replays_single_jobs_and_sweeps_of_one_range(model_ds, monkeypatch):
    model_ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    monkeypatch.setenv("DATALAD_SLURMSWEEP_LOCAL_WORKERS", "2")
    base = git(model_ds, "rev-parse", "HEAD").strip()
    _add_job(model_ds, "single.sh", "out/single")
    (res,) = api(model_ds, "slurm_schedule", ["sbatch", "single.sh"], outputs=["out/single"])
    assert res["status"] == "ok"
    path = config(model_ds, sweep_config={"param_values": [2.0, 3.0]})
    sweep(model_ds, path, "local", wait=True, wait_timeout=180)
    assert [r["status"] for r in api(model_ds, "slurm_finish", wait=True,
                                     wait_timeout=60)] in (["ok"], [])
    firsts = records(model_ds)
    assert len(firsts) == 2  # the sweep's record and the single job's
    sweep_sha = _sweep_commit(model_ds)
    # The range holds the single job's record, the sweep's commit and the
    # sweep's record: each output is replayed once, from its oldest commit.
    results = api(model_ds, "slurm_reschedule", since=base)
    submitted = [r for r in results if r.get("slurm_job_id")]
    assert len(submitted) == 3, results
    assert sorted(r["commit"] for r in submitted) == sorted(
        [sha for sha, rec in firsts if "points" not in rec.record] + [sweep_sha] * 2)
    skipped = [r for r in results if r["status"] == "notneeded"]
    assert len(skipped) == 2 and all("already replayed from commit" in r["message"]
                                     for r in skipped)
    jobs = JobStore.for_dataset(model_ds.repo.dot_git).jobs()
    assert sorted(j.sweep.point if j.sweep else "single" for j in jobs) == [
        "initW-2.0", "initW-3.0", "single"]
    fin = api(model_ds, "slurm_finish", wait=True, wait_timeout=180)
    assert [r["status"] for r in fin] == ["ok"] * 3
    (sha, rec), = sweep_records(model_ds)[:1]
    assert rec.record["chain"] == [sweep_sha]
    assert sorted(p["point"] for p in rec.record["points"]) == ["initW-2.0", "initW-3.0"]
    single = [r for _, r in records(model_ds)[:2] if "points" not in r.record]
    assert [r.record["chain"] for r in single] == [
        [s for s, r in firsts if "points" not in r.record]]
    assert git(model_ds, "status", "--porcelain") == ""


def test_script_writes_quoted_commands_and_changes_nothing(model_ds, tmp_path):
    model_ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    base = git(model_ds, "rev-parse", "HEAD").strip()
    odd = "dir with space/it's $HOME.sh"
    _add_job(model_ds, odd, "out/o'dd")
    (res,) = api(model_ds, "slurm_schedule", ["sbatch", "--job-name=a b", odd],
                 outputs=["out/o'dd"])
    assert res["status"] == "ok", res
    path = config(model_ds, sweep_config={"param_values": [2.0]})
    sweep(model_ds, path, "local")
    api(model_ds, "slurm_finish", wait=True, wait_timeout=180)
    # The configuration changes and the sweep runs again, rewriting the
    # point's script; the script brings the first commit's files back.
    path = config(model_ds, sweep_config={"param_values": [2.0]},
                  slurm={"local": {"time": "00:09:00", "nodes": 1, "ntasks": 1, "mem": 0.1}})
    sweep(model_ds, path, "local", no_skip=True, wait=True, wait_timeout=180)
    first = _first_sweep_commit(model_ds)
    before = (commit_count(model_ds), git(model_ds, "status", "--porcelain"))
    target = tmp_path / "replay.sh"
    results = api(model_ds, "slurm_reschedule", since=base, script=str(target))
    assert [r["status"] for r in results][-1] == "ok", results
    assert results[-1]["script"] == str(target)
    text = target.read_text()
    subprocess.run(["bash", "-n", str(target)], check=True)
    assert f"DATASET={shlex.quote(model_ds.path)}\n" in text
    assert "\ncd \"$DATASET\"\nsbatch '--job-name=a b' 'dir with space/it'\"'\"'s $HOME.sh'\n" \
        in text
    script = "Run-Storage/sweep_initW/initW-2.0/baseline.sh"
    assert f"\ncd \"$DATASET\"\nsbatch {script}\n" in text
    assert 'mkdir -p "$DATASET"/Run-Storage/sweep_initW/logs/baseline\n' in text
    assert (f"git -C \"$DATASET\" checkout --no-overlay {first} --pathspec-from-file=- "
            f"<<'PATHS'\n") in text and f"\n:(literal){script}\n" in text
    assert (commit_count(model_ds), git(model_ds, "status", "--porcelain")) == before
    assert JobStore.for_dataset(model_ds.repo.dot_git).jobs() == []
    # Run in bash with a stand-in sbatch, the script submits from the recorded
    # directories exactly the recorded words.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text('#!/bin/bash\nprintf "%s|" "$PWD" "$@" >> "$SEEN"\n'
                                   'echo >> "$SEEN"\n')
    (bindir / "sbatch").chmod(0o755)
    seen = tmp_path / "seen.txt"
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", SEEN=str(seen))
    subprocess.run(["bash", str(target)], check=True, env=env, cwd=tmp_path)
    lines = seen.read_text().splitlines()
    assert f"{model_ds.path}|--job-name=a b|{odd}|" in lines
    assert f"{model_ds.path}|{script}|" in lines
    assert "--time=00:10:00" in (Path(model_ds.path) / script).read_text()


def test_script_refusals_leave_no_trace(model_ds, tmp_path):
    before = commit_count(model_ds)
    (res,) = api(model_ds, "slurm_reschedule", script="x.sh", report=True)
    assert res["status"] == "impossible" and "--script" in res["message"] \
        and "--report" in res["message"]
    (res,) = api(model_ds, "slurm_reschedule", script=str(tmp_path / "no/such/dir/x.sh"))
    assert res["status"] == "impossible" and "does not exist" in res["message"]
    assert commit_count(model_ds) == before


def test_sweep_commit_without_its_annexed_content_is_refused(model_ds):
    path = config(model_ds, sweep_config={"param_values": [2.0]})
    sweep(model_ds, path, "local", wait=True, wait_timeout=180)
    generated = _sweep_commit(model_ds)
    # The snapshot's annexed files share their content with the originals.
    drop = subprocess.run(["git", "annex", "drop", "--force", "model/components"],
                          cwd=model_ds.path, capture_output=True, text=True)
    assert drop.returncode == 0, drop.stderr
    before = commit_count(model_ds)
    (res,) = api(model_ds, "slurm_reschedule", generated)
    assert res["status"] == "impossible", res
    assert "is not in this dataset" in res["message"] and ".components/" in res["message"]
    assert commit_count(model_ds) == before
    assert JobStore.for_dataset(model_ds.repo.dot_git).jobs() == []


def test_script_to_standard_output_is_the_script_alone(tmp_path):
    from ..helpers import make_dataset
    ds = make_dataset(tmp_path / "ds", files={"a.sh": OK.format(out="out/a")})
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "a.sh"], outputs=["out/a"])
    assert res["status"] == "ok"
    api(ds, "slurm_finish", wait=True, wait_timeout=60)
    proc = subprocess.run(["datalad", "slurm-reschedule", "--script", "-"], cwd=ds.path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("#!/bin/bash\n")
    assert proc.stdout.endswith('\ncd "$DATASET"\nsbatch a.sh\n')
    subprocess.run(["bash", "-n"], input=proc.stdout, text=True, check=True)
    assert JobStore.for_dataset(ds.repo.dot_git).jobs() == []


def test_only_failed_is_refused_for_a_sweep_commit(model_ds):
    path = config(model_ds, sweep_config={"param_values": [2.0]})
    sweep(model_ds, path, "local", wait=True, wait_timeout=180)
    generated = _sweep_commit(model_ds)
    before = commit_count(model_ds)
    (res,) = api(model_ds, "slurm_reschedule", generated, only_failed=True)
    assert res["status"] == "impossible" and "--only-failed" in res["message"] \
        and generated[:10] in res["message"]
    assert commit_count(model_ds) == before
    assert JobStore.for_dataset(model_ds.repo.dot_git).jobs() == []


def test_script_fills_in_placeholders_and_literal_braces(tmp_path):
    # Found by hostile testing: the script kept the recorded {inputs} and {{
    # as they were, so running it handed sbatch a literal "{inputs}".
    from ..helpers import make_dataset
    ds = make_dataset(tmp_path / "ds", files={"in/a b.txt": "1\n"})
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "--wrap=mkdir -p o; cat {inputs} > "
                                        "{outputs}/r; echo ${{HOME}}"],
                 inputs=["in/*.txt"], outputs=["o"])
    assert res["status"] == "ok", res
    api(ds, "slurm_finish", wait=True, wait_timeout=60)
    script = tmp_path / "replay.sh"
    (res,) = api(ds, "slurm_reschedule", script=str(script))
    assert res["status"] == "ok", res
    last = shlex.split(script.read_text().splitlines()[-1])
    assert last == ["sbatch", "--wrap=mkdir -p o; cat 'in/a b.txt' > o/r; echo ${HOME}"]


def test_script_refuses_an_alt_dir_record_without_a_trace(tmp_path):
    # The script would have run the job in the dataset, not below --alt-dir.
    from ..helpers import make_dataset
    ds = make_dataset(tmp_path / "ds", files={"a.sh": OK.format(out="out")})
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "a.sh"], outputs=["out"],
                 alt_dir=str(tmp_path / "alt"))
    assert res["status"] == "ok", res
    api(ds, "slurm_finish", wait=True, wait_timeout=60)
    script = tmp_path / "replay.sh"
    (res,) = api(ds, "slurm_reschedule", script=str(script))
    assert res["status"] == "impossible" and "--alt-dir" in res["message"], res
    assert not script.exists()
    assert JobStore.for_dataset(ds.repo.dot_git).jobs() == []
