"""Faults around the commands: a damaged, read-only or locked job store, and
a Slurm whose accounting or controller cannot be reached.

Store: three jobs are scheduled (as separate processes) and end, then the
store is damaged. A lost store (deleted, emptied, its WAL lost, overwritten)
must be reported clearly by ``slurm-finish``, and ``slurm-finish --recover``
must then record every job exactly once. A read-only or locked store must be
refused with a clear message, with every job kept, and a later finish must
record them all. A damaged row must give a clear message, never a crash.

Slurm: jobs run on the cluster and end; then ``slurm-finish`` runs with a
copy of slurm.conf whose controller and/or accounting port is closed (for
that command only). It must fail clearly, keep every job open and write no
record, or, when one source was still reachable, finish them correctly; a
later normal finish must record every job exactly once.
"""
from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from .sandbox import (
    JOB,
    Outcome,
    books,
    datalad,
    free_port,
    integrity,
    new_dataset,
    remove_dataset,
    snapshot,
    store_path,
    trace,
    wait_all_ended,
)

STORE_FAULTS = ("deleted", "emptied", "wal-deleted", "garbage", "read-only",
                "read-only-schedule", "row-spec", "row-job-id", "row-status",
                "row-orphan", "locked")
LOST = ("deleted", "emptied", "wal-deleted", "garbage")
SLURM_FAULTS = ("accounting", "controller", "both", "list-both", "schedule-controller")

_HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
if sys.argv[2] == "lock":
    conn.execute("BEGIN IMMEDIATE")
else:
    conn.execute("SELECT count(*) FROM jobs").fetchall()
print("ready", flush=True)
time.sleep(float(sys.argv[3]))
"""


def _holder(path: Path, mode: str, seconds: float) -> subprocess.Popen:
    """A process holding the store open (``read``) or write-locked (``lock``)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(path), mode, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _schedule(ds: Path, n: int, backend: str, prefix: str = "out") -> list[str]:
    ids = []
    for i in range(n):
        call = datalad(ds, "slurm-schedule", "--backend", backend, "-o", f"{prefix}/{i}",
                       "sbatch", "job.sh", f"{prefix}/{i}")
        if call.rc != 0:
            raise RuntimeError(f"scheduling a job to set a trial up failed: {call.said()}")
        ids.append(call.results[0]["slurm_job_id"])
    return ids


def _sql(ds: Path, statement: str, *args) -> None:
    conn = sqlite3.connect(store_path(ds), isolation_level=None)
    try:
        conn.execute(statement, args)
    finally:
        conn.close()


def _chattr(path: Path, flag: str) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


def _said(call, words: tuple[str, ...]) -> bool:
    text = call.messages if call.failures else call.stderr
    return any(w in text for w in words)


def store_fault(workdir: Path, fault: str, serial: int = 0) -> Outcome:
    start = time.monotonic()
    outcome = Outcome("store fault", fault)
    outcome.count("trials")
    ds = new_dataset(workdir / f"store-{fault}-{serial}", annex=False, files={"job.sh": JOB})
    store = store_path(ds)
    holder = None
    immutable = False
    try:
        ids = _schedule(ds, 1, "local")
        if fault == "wal-deleted":  # keeps the WAL from being checkpointed away
            holder = _holder(store, "read", 600)
        ids += _schedule(ds, 2, "local", "more")
        if not wait_all_ended(ds, "local", 0):
            outcome.fail("setting up: the jobs did not end within 120 s")
        first = ids[0]
        if fault == "deleted":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{store}{suffix}").unlink(missing_ok=True)
        elif fault == "emptied":
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{store}{suffix}").exists():
                    Path(f"{store}{suffix}").write_bytes(b"")
        elif fault == "wal-deleted":
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            holder = None
            had_wal = Path(f"{store}-wal").exists() and Path(f"{store}-wal").stat().st_size > 0
            outcome.count("WAL held data when deleted" if had_wal else "WAL was empty")
            for suffix in ("-wal", "-shm"):
                Path(f"{store}{suffix}").unlink(missing_ok=True)
        elif fault == "garbage":
            store.write_bytes(b"this is not a database\n" * 100)
            for suffix in ("-wal", "-shm"):
                Path(f"{store}{suffix}").unlink(missing_ok=True)
        elif fault in ("read-only", "read-only-schedule"):
            _chattr(store, "+i")
            immutable = True
        elif fault == "row-spec":
            _sql(ds, "UPDATE jobs SET spec='{not json' WHERE job_id=?", first)
        elif fault == "row-job-id":
            _sql(ds, "UPDATE jobs SET job_id='not-an-id' WHERE job_id=?", first)
        elif fault == "row-status":
            _sql(ds, "UPDATE jobs SET status='bogus' WHERE job_id=?", first)
        elif fault == "row-orphan":
            _sql(ds, "DELETE FROM submissions WHERE token=(SELECT submission FROM jobs "
                     "WHERE job_id=?)", first)
        elif fault == "locked":
            holder = _holder(store, "lock", 600)
        if fault == "read-only-schedule":
            before = snapshot(ds)
            call = datalad(ds, "slurm-schedule", "-o", "new", "sbatch", "job.sh", "new")
            outcome.command = call.shell() + "  # the store is read-only (chattr +i)"
            _clear_failure(outcome, call, ("read-only", str(store)))
            for item in trace(before, snapshot(ds)):
                outcome.fail(f"left a trace: {item}")
        else:
            before = snapshot(ds)
            call = datalad(ds, "slurm-finish", timeout=300)
            outcome.command = call.shell() + f"  # after: {fault}"
            if fault in LOST:
                _lost_store(ds, outcome, call, ids)
            elif fault in ("read-only", "locked"):
                words = ("read-only",) if fault == "read-only" else ("locked",)
                _clear_failure(outcome, call, words)
                if before.head != snapshot(ds).head:
                    outcome.fail("a record was written although the store could not be changed")
                if open_count(ds) != 3:
                    outcome.fail(f"jobs were dropped: {open_count(ds)} of 3 still open")
            else:  # a damaged row
                if call.crash:
                    outcome.count("tracebacks")
                    outcome.fail(f"crashed: {call.crash}")
                elif call.rc != 0 and not _said(call, (str(store), "jobs.sqlite", "--recover",
                                                       "damaged", first)):
                    outcome.fail(f"unclear message (should name the store or job {first}): "
                                 f"{call.said()!r}")
                else:
                    outcome.count("clear")
        if holder is not None:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            holder = None
        if immutable:
            _chattr(store, "-i")
            immutable = False
        if fault not in LOST:
            # As the message says: with --recover when it points there.
            recover = fault.startswith("row-") and "--recover" in call.messages
            _then_all_recorded(ds, outcome, ids, fault.startswith("row-"), recover)
    except Exception as exc:  # noqa: BLE001  (a broken harness is reported, not hidden)
        outcome.fail(f"the trial itself failed: {type(exc).__name__}: {exc}")
    finally:
        if holder is not None:
            holder.kill()
        if immutable:
            _chattr(store, "-i")
        remove_dataset(ds)
    outcome.seconds = time.monotonic() - start
    return outcome


def open_count(ds: Path) -> int:
    return len(books(ds, "local").open)


def _clear_failure(outcome: Outcome, call, words: tuple[str, ...]) -> None:
    if call.crash:
        outcome.count("tracebacks")
        outcome.fail(f"crashed: {call.crash}")
    elif call.rc == 0:
        outcome.fail(f"not refused (exit 0): {call.said()}")
    elif not _said(call, words):
        outcome.fail(f"unclear message (should say {' or '.join(words)!r}): {call.said()!r}")
    else:
        outcome.count("clear")


def _lost_store(ds: Path, outcome: Outcome, call, ids: list[str]) -> None:
    """The loss must be said (pointing at --recover), and --recover must
    bring every job back exactly once."""
    if call.crash:
        outcome.count("tracebacks")
        outcome.fail(f"crashed: {call.crash}")
    elif call.rc != 0 and not _said(call, ("--recover",)):
        outcome.fail(f"unclear message (should point at --recover): {call.said()!r}")
    elif call.rc == 0:
        counts = books(ds, "local").counts
        if sorted(k for k in counts if counts[k]) != sorted(ids):
            outcome.fail(f"exit 0 but not every job was recorded (the loss went unsaid): "
                         f"recorded {sorted(counts)}")
        else:
            outcome.count("nothing was lost")
    else:
        outcome.count("clear")
    rec = datalad(ds, "slurm-finish", "--recover", "--wait", "--wait-timeout", "120")
    if rec.crash:
        outcome.fail(f"slurm-finish --recover crashed: {rec.crash}")
    elif rec.rc != 0:
        outcome.fail(f"slurm-finish --recover failed (exit {rec.rc}): {rec.said()}")
    outcome.command += f"; {rec.shell()}"
    if not _exactly_once(ds, outcome, ids):
        return
    again = datalad(ds, "slurm-finish", "--recover")
    if again.rc != 0 or again.crash:
        outcome.fail(f"a second --recover failed (exit {again.rc}): {again.crash or again.said()}")
    if _exactly_once(ds, outcome, ids) and outcome.ok:
        outcome.count("recovered")


def _then_all_recorded(ds: Path, outcome: Outcome, ids: list[str], damaged: bool,
                       recover: bool = False) -> None:
    """After the fault is gone, a normal finish records every job once (a
    damaged row: the intact jobs at least, and never one twice)."""
    fin = datalad(ds, "slurm-finish", *(["--recover"] if recover else []), "--wait",
                  "--wait-timeout", "120")
    if fin.crash:
        outcome.fail(f"the finish after the fault crashed: {fin.crash}")
    b = books(ds, "local")
    if b.duplicated:
        outcome.count("duplicated", len(b.duplicated))
        outcome.fail(f"jobs recorded more than once: {b.duplicated}")
    if damaged:
        intact = [i for i in ids[1:] if b.counts[i] != 1]
        if intact:
            how = "slurm-finish --recover --wait (as the message advises)" if recover \
                else "slurm-finish --wait"
            outcome.fail(f"after a damaged row, {how} did not record the intact jobs {intact}: "
                         f"{fin.said()}")
        outcome.count("damaged job recorded" if b.counts[ids[0]] == 1 else
                      "damaged job left to the user")
        return
    if fin.rc != 0:
        outcome.fail(f"the finish after the fault was gone failed (exit {fin.rc}): {fin.said()}")
    _exactly_once(ds, outcome, ids)


def _exactly_once(ds: Path, outcome: Outcome, ids: list[str]) -> bool:
    """Whether every job has exactly one record and the repository is sound."""
    before = len(outcome.problems)
    b = books(ds, "local")
    wrong = {i: b.counts[i] for i in ids if b.counts[i] != 1}
    if wrong:
        outcome.count("duplicated" if any(n > 1 for n in wrong.values()) else "not recorded",
                      len(wrong))
        outcome.fail(f"jobs not recorded exactly once (job: records): {wrong}; "
                     f"open: {b.still_open}")
    elif b.still_open:
        outcome.fail(f"jobs still open although recorded: {b.still_open}")
    for problem in integrity(ds):
        outcome.fail(problem)
    return len(outcome.problems) == before


# -- Slurm unreachable ------------------------------------------------------------------

def slurm_conf(workdir: Path, controller: bool, accounting: bool) -> Path:
    """A copy of the cluster's configuration with the controller's and/or
    accounting's port closed (an unused loopback port)."""
    conf_dir = workdir / f"slurm-conf-{int(controller)}{int(accounting)}"
    conf_dir.mkdir(parents=True, exist_ok=True)
    for item in Path("/etc/slurm").iterdir():
        if item.name == "slurmdbd.conf":
            continue
        target = conf_dir / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy(item, target)
    extra = ""
    if controller:
        extra += f"SlurmctldPort={free_port()}\n"
    if accounting:
        extra += f"AccountingStoragePort={free_port()}\n"
    with open(conf_dir / "slurm.conf", "a") as conf:
        conf.write("\n# robustness trial: unreachable\n" + extra)
    return conf_dir / "slurm.conf"


SLURM_WORDS = ("sacct", "scontrol", "squeue", "sbatch", "Slurm", "slurm", "controller",
               "accounting", "slurmdbd")


def slurm_fault(workdir: Path, fault: str, serial: int = 0) -> Outcome:
    start = time.monotonic()
    outcome = Outcome("Slurm fault", fault)
    outcome.count("trials")
    since = time.time()
    ds = new_dataset(workdir / f"slurm-{fault}-{serial}", annex=False, files={"job.sh": JOB},
                     backend="slurm")
    try:
        conf = slurm_conf(workdir, controller=fault != "accounting",
                          accounting=fault not in ("controller", "schedule-controller"))
        env = {"SLURM_CONF": str(conf)}
        if fault == "schedule-controller":
            before = snapshot(ds, slurm=True)
            call = datalad(ds, "slurm-schedule", "-o", "out", "sbatch", "job.sh", "out", env=env)
            outcome.command = call.shell()
            _clear_failure(outcome, call, SLURM_WORDS)
            for item in trace(before, snapshot(ds, slurm=True)):
                outcome.fail(f"left a trace: {item}")
            return outcome
        ids = _schedule(ds, 3, "slurm")
        if not wait_all_ended(ds, "slurm", since, timeout=300):
            outcome.fail("setting up: the jobs did not end within 300 s")
        before = snapshot(ds)
        args = ["slurm-finish", "--list-open-jobs"] if fault == "list-both" else ["slurm-finish"]
        call = datalad(ds, *args, env=env, timeout=600)
        outcome.command = call.shell()
        after = snapshot(ds)
        if call.crash:
            outcome.count("tracebacks")
            outcome.fail(f"crashed: {call.crash}")
        elif call.rc != 0:
            if not _said(call, SLURM_WORDS):
                outcome.fail(f"unclear message (should name Slurm): {call.said()!r}")
            else:
                outcome.count("failed clearly")
            if after.head != before.head:
                outcome.fail("a record was written although the finish failed")
            if after.store != before.store:
                outcome.fail(f"the open jobs changed although the finish failed: "
                             f"{trace(before, after)}")
        elif fault in ("both", "list-both"):
            outcome.fail(f"exit 0 with neither controller nor accounting reachable: "
                         f"{call.said()}")
        else:
            outcome.count("finished through the other source")
        fin = datalad(ds, "slurm-finish", "--wait", "--wait-timeout", "300", timeout=600)
        if fin.crash or fin.rc != 0:
            outcome.fail(f"the normal finish afterwards failed (exit {fin.rc}): "
                         f"{fin.crash or fin.said()}")
        b = books(ds, "slurm", since)
        wrong = {i: b.counts[i] for i in ids if b.counts[i] != 1}
        if wrong:
            outcome.count("duplicated" if any(n > 1 for n in wrong.values())
                          else "not recorded", len(wrong))
            outcome.fail(f"jobs not recorded exactly once (job: records): {wrong}")
        for problem in integrity(ds):
            outcome.fail(problem)
    except Exception as exc:  # noqa: BLE001  (a broken harness is reported, not hidden)
        outcome.fail(f"the trial itself failed: {type(exc).__name__}: {exc}")
    finally:
        remove_dataset(ds)
        outcome.seconds = time.monotonic() - start
    return outcome
