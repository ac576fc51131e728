"""The single-job commands on the local backend: the same records, no cluster."""
from __future__ import annotations

from ..helpers import OK, api, git, make_dataset, records


def test_schedule_finish_and_reschedule_since_on_the_local_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("DATALAD_SLURMSWEEP_LOCAL_WORKERS", "2")
    ds = make_dataset(tmp_path / "ds", files={"a.sh": OK.format(out="out/a"),
                                             "b.sh": OK.format(out="out/b")})
    base = git(ds, "rev-parse", "HEAD").strip()
    for name in ("a", "b"):
        (res,) = api(ds, "slurm_schedule", ["sbatch", f"{name}.sh"], outputs=[f"out/{name}"],
                     backend="local")
        assert res["status"] == "ok" and res["backend"] == "local"
    results = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert [r["status"] for r in results] == ["ok", "ok"]
    firsts = records(ds)
    assert [rec.record["backend"] for _, rec in firsts] == ["local", "local"]
    job = firsts[0][1].job_id
    assert (tmp_path / "ds/out/b/result.txt").read_text().strip() == job  # SLURM_JOB_ID seen
    assert firsts[0][1].record["slurm_outputs"] == [f"slurm-{job}.out", f"slurm-job-{job}.env.json"]
    # Reschedule both records at once; each new record chains its original.
    again = api(ds, "slurm_reschedule", since=base)
    assert [r["status"] for r in again] == ["ok", "ok"]
    api(ds, "slurm_finish", wait=True, wait_timeout=60)
    latest = records(ds)[:2]
    assert sorted(tuple(rec.record["chain"]) for _, rec in latest) == sorted(
        (sha,) for sha, _ in firsts)
    assert git(ds, "status", "--porcelain") == ""


def test_git_config_chooses_the_default_backend(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"a.sh": OK.format(out="out")})
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "a.sh"], outputs=["out"])
    assert res["backend"] == "local"
    (fin,) = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert fin["status"] == "ok"
