"""The three commands against the real local Slurm cluster.

Every test here submits real jobs; nothing about Slurm is mocked.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from datalad_slurmsweep.backends.base import JobId
from datalad_slurmsweep.backends.sbatch import LogSpec
from datalad_slurmsweep.jobs.model import Job, JobSpec, Submission
from datalad_slurmsweep.jobs.store import JobStore

from ..helpers import (
    ARRAY,
    DATA,
    FAIL,
    OK,
    api,
    commit_count,
    git,
    make_dataset,
    open_jobs,
    records,
    schedule,
    wait_terminal,
)

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def test_walkthrough_of_the_datalad_slurm_documentation(tmp_path):
    files = {
        "submit_gold.slurm": OK.format(out="models/gold"),
        "submit_silver.slurm": OK.format(out="models/silver"),
        "submit_bronze.slurm": FAIL.format(out="models/bronze"),
        "submit_array_platinum.slurm": ARRAY.format(out="models/platinum", bad=2),
    }
    ds = make_dataset(tmp_path / "ds", files=files)
    initial = commit_count(ds)
    gold = schedule(ds, "sbatch", "submit_gold.slurm", outputs=["models/gold/"])
    silver = schedule(ds, "sbatch", "submit_silver.slurm", outputs=["models/silver/"])
    bronze = schedule(ds, "sbatch", "submit_bronze.slurm", outputs=["models/bronze/"])
    platinum = schedule(ds, "sbatch", "submit_array_platinum.slurm",
                        outputs=["models/platinum/"])
    listed = api(ds, "slurm_finish", list_open_jobs=True)
    assert [r["slurm_job_id"] for r in listed] == [gold, silver, bronze, platinum]
    assert all(r["submitted"] and r["state"] for r in listed)
    assert listed[3]["outputs"] == ["models/platinum"]
    assert commit_count(ds) == initial  # scheduling and listing commit nothing

    wait_terminal([gold, silver, bronze, platinum], {platinum: [0, 1, 2]})
    before = commit_count(ds)
    results = {r["slurm_job_id"]: r for r in api(ds, "slurm_finish")}
    assert results[gold]["status"] == results[silver]["status"] == "ok"
    assert results[bronze]["status"] == "impossible"
    assert "FAILED" in results[bronze]["message"]
    assert results[platinum]["status"] == "impossible"
    assert f"{platinum}_2: FAILED" in results[platinum]["message"]
    assert commit_count(ds) == before + 2

    recs = {rec.job_id: (sha, rec) for sha, rec in records(ds)}
    sha, gold_rec = recs[gold]
    assert gold_rec.subject == f"Slurm job {gold}: Completed"
    r = gold_rec.record
    assert r["outputs"] == ["models/gold"] and r["pwd"] == "."
    assert r["slurm_outputs"] == [f"slurm-{gold}.out", f"slurm-job-{gold}.env.json"]
    assert r["exit_code"] == 0 and r["tasks"][0]["node"] and r["tasks"][0]["start"]
    used = r["tasks"][0]["resources"]  # from sacct: what it used against the request
    assert used["elapsed_s"] is not None and used["total_cpu_s"] is not None, used
    assert used["alloc_cpus"] >= 1 and used["req_mem_bytes"] > 0  # DefMemPerCPU at least
    # A job shorter than a second has ElapsedRaw 0: no efficiency, and it says so.
    assert used["cpu_efficiency"] is not None or "cpu_efficiency" in used["unknown"]
    assert set(r["versions"]) >= {"datalad", "git", "git-annex", "slurm"}
    assert r["dsid"] == ds.id and r["cmd"] == "sbatch submit_gold.slurm"
    committed = git(ds, "show", "--name-only", "--format=", sha).split()
    assert sorted(committed) == sorted(["models/gold/result.txt", f"slurm-{gold}.out",
                                        f"slurm-job-{gold}.env.json"])
    assert (tmp_path / "ds/models/gold/result.txt").read_text().strip() == gold

    # Failed jobs stay open until the user decides.
    assert {str(j.job_id) for j in open_jobs(ds)} == {bronze, platinum}
    (closed,) = api(ds, "slurm_finish", [bronze], close_failed_jobs=True)
    assert closed["status"] == "ok" and "closed" in closed["message"]
    assert (tmp_path / "ds/models/bronze/partial.txt").exists()  # files left
    (accepted,) = api(ds, "slurm_finish", [platinum], accept_failed_jobs=True)
    assert accepted["status"] == "ok"
    sha, plat = records(ds)[0]
    assert plat.subject == f"Slurm job {platinum}: Failed"
    assert [(t["task_id"], t["state"], t["exit_code"]) for t in plat.record["tasks"]] == [
        (0, "COMPLETED", 0), (1, "COMPLETED", 0), (2, "FAILED", 1)]
    assert sorted(plat.record["slurm_outputs"])[:3] == [
        f"slurm-{platinum}_{i}.out" for i in range(3)]
    assert open_jobs(ds) == []
    # Only the closed job's files are left uncommitted.
    assert sorted(git(ds, "status", "--porcelain").splitlines()) == [
        "?? models/bronze/", f"?? slurm-{bronze}.out"]

    # Reschedule gold: same command, tracked, and its record chains the original.
    gold_sha = recs[gold][0]
    (res,) = api(ds, "slurm_reschedule", gold_sha)
    assert res["status"] == "ok", res["message"]
    again = res["slurm_job_id"]
    wait_terminal([again])
    (fin,) = api(ds, "slurm_finish")
    assert fin["status"] == "ok"
    sha, rec = records(ds)[0]
    assert rec.job_id == again and rec.record["chain"] == [gold_sha]
    assert rec.record["outputs"] == ["models/gold"]


def test_output_conflicts_across_path_spellings(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="a/b"),
                                             "sub/.keep": ""})
    first = schedule(ds, "sbatch", "job.sh", outputs=["./a/b"])
    root = Path(ds.path)
    for spelling in ("a/b", "a/b/", str(root / "a" / "b"), "a", "a/b/c"):
        (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh"], outputs=[spelling])
        assert res["status"] == "impossible", spelling
        assert f"open job {first}" in res["message"]
    # From a subdirectory, on the command line, ../a/b is the same path.
    proc = subprocess.run(["datalad", "slurm-schedule", "-o", "../a/b", "sbatch", "../job.sh"],
                          cwd=root / "sub", capture_output=True, text=True)
    assert proc.returncode != 0 and f"open job {first}" in proc.stdout + proc.stderr
    assert [str(j.job_id) for j in open_jobs(ds)] == [first]
    wait_terminal([first])


def test_concurrent_schedules_of_one_output_submit_exactly_one(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="out")})
    name = f"concurrent-{uuid.uuid4().hex[:12]}"  # no other test's jobs carry it
    procs = [subprocess.Popen(["datalad", "-f", "json", "slurm-schedule", "-o", "out",
                               "sbatch", f"--job-name={name}", "job.sh"], cwd=ds.path,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=120) for p in procs]
    statuses = [json.loads(o.splitlines()[-1])["status"] for o, _ in outs]
    assert sorted(statuses) == ["impossible"] * 5 + ["ok"]
    jobs = open_jobs(ds)
    assert len(jobs) == 1
    wait_terminal([jobs[0].job_id])
    # Slurm received exactly one submission: the losers never called sbatch.
    # sacct lists a job that just ended by name only after a few seconds.
    for _ in range(60):
        proc = subprocess.run(["sacct", "-X", "-n", "-P", "-S", "2020-01-01", f"--name={name}",
                               "-o", "JobID"], capture_output=True, text=True, check=True)
        if proc.stdout.split():
            break
        time.sleep(0.5)
    assert proc.stdout.split() == [str(jobs[0].job_id)]


def test_sbatch_failure_is_reported_and_leaves_no_trace(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="out")})
    (res,) = api(ds, "slurm_schedule",
                 ["sbatch", "--partition=nope", "--output=newlogs/%j.out", "job.sh"],
                 outputs=["out"])
    assert res["status"] == "impossible"
    assert "invalid partition" in res["message"].lower()
    assert open_jobs(ds) == []
    assert not (tmp_path / "ds/newlogs").exists()
    assert git(ds, "status", "--porcelain") == ""


def test_log_directory_is_created_and_logs_committed(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="out")})
    job = schedule(ds, "sbatch", "--output=logs/%x/%j.out", "--error=logs/%x/%j.err",
                   "job.sh", outputs=["out"])
    wait_terminal([job])
    (res,) = api(ds, "slurm_finish")
    assert res["status"] == "ok"
    committed = git(ds, "show", "--name-only", "--format=", "HEAD").split()
    assert f"logs/job.sh/{job}.out" in committed and f"logs/job.sh/{job}.err" in committed
    assert f"logs/job.sh/slurm-job-{job}.env.json" in committed


def test_log_directory_that_needs_the_job_id_is_refused_before_submission(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="out")})
    (res,) = api(ds, "slurm_schedule", ["sbatch", "--output=logs/%j/out.txt", "job.sh"],
                 outputs=["out"])
    assert res["status"] == "impossible" and "logs/%j/out.txt" in res["message"]
    assert open_jobs(ds) == [] and not (tmp_path / "ds/logs").exists()


def test_unknown_and_lost_jobs_do_not_stop_the_others(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="out")})
    good = schedule(ds, "sbatch", "job.sh", outputs=["out"])
    # A job Slurm never heard of, as after the accounting database was purged.
    store = JobStore.for_dataset(ds.repo.dot_git)
    spec = JobSpec(sbatch_argv=["sbatch", "job.sh"], pwd=".", outputs=["ghost"],
                   logs=LogSpec(output="slurm-%j.out", error=None, workdir=".",
                                job_name="job.sh"))
    ghost = Job(spec=spec, submission=Submission(argv=spec.sbatch_argv, pwd=".",
                                                 backend="slurm"))
    store.reserve(ghost)
    store.mark_submitted(ghost.submission, [ghost], JobId("987654321"))
    wait_terminal([good])
    results = {r["slurm_job_id"]: r for r in api(ds, "slurm_finish", [good, "987654321", "42424242"])}
    assert results[good]["status"] == "ok", results[good]["message"]
    assert results["987654321"]["status"] == "impossible"
    assert results["987654321"]["state"] == "LOST"
    assert "not an open job" in results["42424242"]["message"]
    (closed,) = api(ds, "slurm_finish", close_failed_jobs=True)
    assert closed["state"] == "LOST" and open_jobs(ds) == []


def test_dirty_script_or_input_is_refused_before_submission(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="out"),
                                             "data/in.txt": "v1"})
    # The script is annexed (a symlink): edit it as a user would, unlocked.
    (tmp_path / "ds/job.sh").unlink()
    (tmp_path / "ds/job.sh").write_text(OK.format(out="out") + "# edited\n")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh"], outputs=["out"])
    assert res["status"] == "impossible" and "job.sh" in res["message"]
    git(ds, "checkout", "--", "job.sh")
    (tmp_path / "ds/data/in.txt").unlink()
    (tmp_path / "ds/data/in.txt").write_text("v2")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh"], inputs=["data"], outputs=["out"])
    assert res["status"] == "impossible" and "data/in.txt" in res["message"]
    (tmp_path / "ds/untracked.sh").write_text("#!/bin/sh\n")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "untracked.sh"], outputs=["out"])
    assert res["status"] == "impossible" and "untracked.sh" in res["message"]
    assert open_jobs(ds) == []


@pytest.mark.parametrize("kill_at", ["built", "marked", "advanced"])
def test_finish_killed_midway_completes_on_rerun(tmp_path, kill_at):
    files = {f"job{i}.sh": OK.format(out=f"out{i}") for i in range(3)}
    ds = make_dataset(tmp_path / "ds", files=files)
    ids = [schedule(ds, "sbatch", f"job{i}.sh", outputs=[f"out{i}"]) for i in range(3)]
    wait_terminal(ids)
    env = dict(os.environ, DATALAD_SLURMSWEEP_KILL_AT=kill_at)
    proc = subprocess.run(["datalad", "slurm-finish"], cwd=ds.path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    proc = subprocess.run(["datalad", "slurm-finish"], cwd=ds.path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recorded = [rec.job_id for _, rec in records(ds)]
    assert sorted(recorded) == sorted(ids)  # each exactly once
    assert open_jobs(ds) == []
    assert git(ds, "status", "--porcelain") == ""


def test_secrets_never_reach_a_commit(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="out")})
    secret = "s3cr3t-value-0042"
    env = dict(os.environ, MY_API_TOKEN=secret, DB_PASSWORD=secret,
               NOTIFY_WEBHOOK_URL=f"https://hooks.slack.com/services/{secret}")
    proc = subprocess.run(["datalad", "slurm-schedule", "-o", "out", "sbatch", "job.sh"],
                          cwd=ds.path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (job,) = open_jobs(ds)
    wait_terminal([job.job_id])
    api(ds, "slurm_finish")
    history = git(ds, "log", "-p", "--all")
    assert secret not in history
    env_json = json.loads((tmp_path / f"ds/slurm-job-{job.job_id}.env.json").read_text())
    assert env_json["environment"]["MY_API_TOKEN"] == "<redacted>"
    assert env_json["environment"]["HOME"]  # the rest is kept
    store_bytes = (Path(ds.repo.dot_git) / "slurmsweep/jobs.sqlite").read_bytes()
    assert secret.encode() not in store_bytes


def test_subdirectory_as_working_directory_and_stable_reschedule(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"sim/job.sh": OK.format(out="out")})
    sim = tmp_path / "ds/sim"
    proc = subprocess.run(["datalad", "slurm-schedule", "-o", "out", "sbatch", "job.sh"],
                          cwd=sim, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (job,) = open_jobs(ds)
    assert job.outputs == ["sim/out"] and job.spec.pwd == "sim"
    for _ in range(2):
        wait_terminal([open_jobs(ds)[0].job_id])
        (fin,) = api(ds, "slurm_finish")
        assert fin["status"] == "ok", fin["message"]
        sha, rec = records(ds)[0]
        assert rec.record["pwd"] == "sim" and rec.record["outputs"] == ["out"]
        assert (sim / "out/result.txt").read_text().strip() == rec.job_id
        (res,) = api(ds, "slurm_reschedule", sha)
        assert res["status"] == "ok", res["message"]
    assert open_jobs(ds)[0].outputs == ["sim/out"]  # no prefix grew
    wait_terminal([open_jobs(ds)[0].job_id])


def test_annexed_outputs_are_unlocked_rewritten_and_annexed(tmp_path):
    script = ("#!/bin/bash\nmkdir -p out\nhead -c 20000 /dev/urandom > out/blob.bin\n")
    ds = make_dataset(tmp_path / "ds", files={"job.sh": script})
    for _ in range(2):  # the second run rewrites the annexed file of the first
        job = schedule(ds, "sbatch", "job.sh", outputs=["out"])
        wait_terminal([job])
        (fin,) = api(ds, "slurm_finish")
        assert fin["status"] == "ok", fin["message"]
        blob = tmp_path / "ds/out/blob.bin"
        assert blob.is_symlink() and ".git/annex/objects" in os.readlink(blob)
    assert git(ds, "status", "--porcelain") == ""
    shas = git(ds, "log", "--format=%H", "-2", "--", "out/blob.bin").split()
    assert len(shas) == 2  # both runs' content is in history


def test_reschedule_reads_datalad_slurm_records_and_refuses_other_datasets(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"submit.slurm": OK.format(out="models/x")})
    template = (DATA / "datalad_slurm_record.txt").read_text()
    theirs = (template.replace("61576cad-ea4f-4425-8f35-16b9955c9926", ds.id)
              .replace("submit_silver.slurm", "submit.slurm")
              .replace("models/abrupt/silver", "models/x"))
    git(ds, "commit", "--allow-empty", "-m", theirs)
    (res,) = api(ds, "slurm_reschedule", "HEAD", report=True)
    assert res["status"] == "ok" and res["outputs"] == ["models/x"]
    (res,) = api(ds, "slurm_reschedule")
    assert res["status"] == "ok", res["message"]
    wait_terminal([res["slurm_job_id"]])
    git(ds, "commit", "--allow-empty", "-m", template)  # the foreign dsid
    (res,) = api(ds, "slurm_reschedule")
    assert res["status"] == "impossible" and "another dataset" in res["message"]
    (res,) = api(ds, "slurm_reschedule", "HEAD~2")
    assert res["status"] == "impossible" and "no [DATALAD SLURM RUN] record" in res["message"]


def test_wait_finishes_when_jobs_end(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="out")})
    job = schedule(ds, "sbatch", "job.sh", outputs=["out"])
    (res,) = api(ds, "slurm_finish", wait=True, wait_timeout=120)
    assert res["status"] == "ok" and res["slurm_job_id"] == job, res["message"]


def test_cli_json_output(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="out")})
    proc = subprocess.run(["datalad", "-f", "json", "slurm-schedule",
                           "--dry-run", "-o", "out", "sbatch", "job.sh"],
                          cwd=ds.path, capture_output=True, text=True)
    rec = json.loads(proc.stdout.splitlines()[-1])
    assert rec["status"] == "ok" and rec["cmd"] == ["sbatch", "job.sh"]
    assert open_jobs(ds) == []


def test_schedule_killed_after_submission_leaves_no_untracked_job(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"job.sh": OK.format(out="out")})
    env = dict(os.environ, DATALAD_SLURMSWEEP_KILL_AT="submitted")
    proc = subprocess.run(["datalad", "slurm-schedule", "-o", "out", "sbatch", "job.sh"],
                          cwd=ds.path, env=env, capture_output=True, text=True)
    assert proc.returncode == -9
    (pending,) = open_jobs(ds)
    assert pending.status == "submitting" and pending.job_id is None
    # The outputs stay reserved meanwhile: a second schedule is refused.
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh"], outputs=["out"])
    assert res["status"] == "impossible"
    results = api(ds, "slurm_finish", wait=True, wait_timeout=120)
    adopted = [r for r in results if "interrupted schedule" in r["message"]]
    assert len(adopted) == 1 and adopted[0]["status"] == "ok"
    assert [r["status"] for r in results if r not in adopted] == ["ok"]
    (sha, rec), *_ = records(ds)
    assert rec.record["outputs"] == ["out"] and open_jobs(ds) == []


def test_a_job_the_controller_forgot_is_found_in_accounting(tmp_path):
    """After MinJobAge only accounting knows a job: the recovery token in its
    comment must be found there (AccountingStoreFlags=job_comment)."""
    from datalad_slurmsweep.backends.slurm import SlurmBackend
    token = "dlss-" + uuid.uuid4().hex
    backend = SlurmBackend()
    job_id = backend.submit(["sbatch", "--comment=the user's note", "--wrap=true"],
                            tmp_path, comment=token)
    wait_terminal([str(job_id)])
    found: dict = {}
    deadline = time.monotonic() + 30
    while not found and time.monotonic() < deadline:  # accounting lags a moment
        backend._find_in_accounting({token: time.time()}, found)
        time.sleep(0.5)
    assert found == {token: {str(job_id)}}
    comment = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "Comment", "-j", str(job_id)],
                             capture_output=True, text=True).stdout.strip()
    assert comment == f"the user's note {token}"
