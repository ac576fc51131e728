"""Two finishes at once, and a user committing while a finish runs.

Concurrent finishes: N ended jobs (and sometimes a sweep), then two
``datalad slurm-finish`` processes started at the same moment, in several
pairings (both plain, one waiting, one naming half of the jobs). Every job
must end up with exactly one record, nothing open, the repository sound.

Racing commits: while a finish commits N jobs, the user loops ``git add
<their file>; git commit`` (trying again when git meets our index.lock, as
with any two git processes) and now and then ``datalad save <their file>``.
Every record commit must change exactly its job's outputs, logs and env
file; every user commit only the user's files; nothing untracked or staged
left over; one record per job.
"""
from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

from .sandbox import (
    Bench,
    Outcome,
    Running,
    books,
    git,
    integrity,
    run_records,
    run_sweep,
    schedule_jobs,
    sweep_config,
    wait_all_ended,
)

PAIRINGS = [("plain", "plain"), ("plain", "wait"), ("half", "plain"), ("wait", "wait"),
            ("plain", "plain-sweep")]


def _finish_args(kind: str, ids: list[str]) -> list[str]:
    if kind == "wait":
        return ["slurm-finish", "--wait", "--wait-timeout", "120"]
    if kind == "half":
        return ["slurm-finish", *ids[: len(ids) // 2]]
    return ["slurm-finish"]


def concurrent_finish(bench: Bench, n_jobs: int, pairing: tuple[str, str]) -> Outcome:
    start = time.monotonic()
    outcome = Outcome("concurrent finishes", f"{n_jobs} jobs, {' + '.join(pairing)}")
    outcome.count("trials")
    ds = bench.get()
    n = bench.serial
    ids = schedule_jobs(ds, n_jobs, f"out/c{n}", "local")
    if "plain-sweep" in pairing:
        run_sweep(ds, sweep_config(ds, f"c{n}"), "local")
    if not wait_all_ended(ds, "local", bench.since):
        outcome.fail("setting up: the jobs did not end within 120 s")
    procs = [Running(ds, *_finish_args(kind, ids)) for kind in pairing]
    calls = [p.wait(timeout=300) for p in procs]
    outcome.command = " & ".join(c.shell() for c in calls)
    for kind, call in zip(pairing, calls, strict=True):
        if call.crash:
            outcome.fail(f"a finish crashed: {call.crash}")
        elif call.rc != 0 and not (kind == "half" and _all_taken(call)):
            outcome.fail(f"a finish failed (exit {call.rc}): {call.said()}")
    _check_one_record_each(ds, outcome, bench)
    outcome.seconds = time.monotonic() - start
    if not outcome.ok:
        bench.spoil()
    return outcome


def _all_taken(call) -> bool:
    """A finish naming jobs that the other finish committed first says so."""
    return bool(call.failures) and all("is not an open job" in r.get("message", "")
                                       for r in call.failures)


def _check_one_record_each(ds: Path, outcome: Outcome, bench: Bench) -> None:
    b = books(ds, "local", bench.since)
    if b.duplicated:
        outcome.count("duplicated", len(b.duplicated))
        outcome.fail(f"jobs recorded more than once: {b.duplicated}")
    unrecorded = sorted(k for k in b.ran if b.counts[k] == 0)
    if unrecorded:
        outcome.count("unrecorded", len(unrecorded))
        outcome.fail(f"ended jobs without a record: {unrecorded} (open: {b.still_open})")
    if b.phantom:
        outcome.fail(f"records of jobs the backend never ran: {b.phantom}")
    for problem in integrity(ds):
        outcome.fail(problem)


# -- a user committing while a finish runs ---------------------------------------------

def _retry(argv: list[str], cwd: Path, tries: int = 50) -> bool:
    """A git step a user would simply repeat when git meets a lock."""
    for _ in range(tries):
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
        if proc.returncode == 0:
            return True
        time.sleep(0.02)
    return False


def racing_commits(bench: Bench, n_jobs: int, seed: int) -> Outcome:
    start = time.monotonic()
    rng = random.Random(seed)
    outcome = Outcome("racing commits", f"{n_jobs} jobs")
    outcome.count("trials")
    ds = bench.get()
    n = bench.serial
    ids = schedule_jobs(ds, n_jobs, f"out/r{n}", "local")
    if not wait_all_ended(ds, "local", bench.since):
        outcome.fail("setting up: the jobs did not end within 120 s")
    finish = Running(ds, "slurm-finish")
    mine, during, k = [], 0, 0
    while finish.proc.poll() is None and k < 400:
        name = f"mine/r{n}-{k}.txt"
        (ds / "mine").mkdir(exist_ok=True)
        (ds / name).write_text(f"the user's own work {k}\n")
        if rng.random() < 0.1:
            ok = _retry(["datalad", "save", "-m", f"user save {k}", name], ds, tries=5)
        else:
            ok = _retry(["git", "add", name], ds) and _retry(
                ["git", "commit", "-q", "-m", f"user {k}", "--", name], ds)
        if not ok:
            outcome.fail(f"the user's commit of {name} kept failing while the finish ran")
        mine.append(name)
        if finish.proc.poll() is None:
            during += 1
        k += 1
    call = finish.wait(timeout=300)
    outcome.command = call.shell() + "  # while the user commits"
    outcome.count("user commits during the finish", during)
    if call.crash:
        outcome.fail(f"the finish crashed: {call.crash}")
    elif call.rc != 0:
        outcome.fail(f"the finish failed (exit {call.rc}): {call.said()}")
    _check_attribution(ds, outcome, set(ids))
    _check_one_record_each(ds, outcome, bench)
    outcome.seconds = time.monotonic() - start
    if not outcome.ok:
        bench.spoil()
    return outcome


def _changed(ds: Path, sha: str) -> list[str]:
    return git(ds, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", sha).split("\n")


def _check_attribution(ds: Path, outcome: Outcome, ids: set[str]) -> None:
    """Record commits hold exactly their job's files; user commits only the user's."""
    for rec in run_records(ds):
        data = rec.data or {}
        if str(data.get("slurm_job_id")) not in ids:
            continue
        changed = [p for p in _changed(ds, rec.sha) if p]
        outputs = [o.rstrip("/") for o in data.get("outputs", [])]
        logs = set(data.get("slurm_outputs", []))
        if not changed:
            outcome.count("empty records")
            outcome.fail(f"record {rec.sha[:10]} ({rec.subject}) changes nothing")
        foreign = [p for p in changed if p not in logs
                   and not any(p == o or p.startswith(o + "/") for o in outputs)]
        if foreign:
            outcome.count("mis-attributed records")
            outcome.fail(f"record {rec.sha[:10]} ({rec.subject}) also commits {foreign[:5]}")
        missing = [p for p in logs if p not in changed] + [
            o for o in outputs if not any(p.startswith(o + "/") or p == o for p in changed)]
        if missing:
            outcome.count("mis-attributed records")
            outcome.fail(f"record {rec.sha[:10]} ({rec.subject}) lacks its own {missing[:5]}")
    log = git(ds, "log", "--format=%H %s", "HEAD")
    for line in log.splitlines():
        sha, _, subject = line.partition(" ")
        if subject.startswith("user "):
            changed = [p for p in _changed(ds, sha) if p]
            if not changed or any(not p.startswith("mine/") for p in changed):
                outcome.count("mis-attributed user commits")
                outcome.fail(f"user commit {sha[:10]} ({subject}) changes {changed[:5]}")
