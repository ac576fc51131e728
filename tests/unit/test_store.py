import multiprocessing
import sqlite3

import pytest

from datalad_slurmsweep.backends.base import JobId
from datalad_slurmsweep.backends.sbatch import LogSpec
from datalad_slurmsweep.errors import OutputConflictError, StoreError
from datalad_slurmsweep.jobs.model import Job, JobSpec, Submission
from datalad_slurmsweep.jobs.store import JobStore


def job(outputs):
    spec = JobSpec(sbatch_argv=["sbatch", "j.sh"], pwd=".", outputs=outputs,
                   logs=LogSpec(output="slurm-%j.out", error=None, workdir=".", job_name="j.sh"))
    return Job(spec=spec, submission=Submission(argv=spec.sbatch_argv, pwd=".", backend="slurm"))


def submitted(store, j, job_id):
    store.mark_submitted(j.submission, [j], JobId.parse(job_id))


def test_reserve_refuses_overlaps_in_every_direction(tmp_path):
    store = JobStore(tmp_path / "s.sqlite")
    first = job(["a/b"])
    store.reserve(first)
    submitted(store, first, "1")
    for clash in (["a/b"], ["a"], ["a/b/c"], ["x", "a/b/c/d"]):
        with pytest.raises(OutputConflictError):
            store.reserve(job(clash))
    store.reserve(job(["a/bc"]))  # a sibling, not a child
    assert len(store.jobs()) == 2


def test_conflict_report_names_the_open_job(tmp_path):
    store = JobStore(tmp_path / "s.sqlite")
    first = job(["out"])
    store.reserve(first)
    submitted(store, first, "77")
    assert store.conflicts(["out/x"]) == [("out/x", "out", "77")]


def _reserve_same(path, result_queue):
    store = JobStore(path)
    try:
        store.reserve(job(["shared/out"]))
        result_queue.put("ok")
    except OutputConflictError:
        result_queue.put("conflict")


def test_concurrent_reservations_of_one_output_let_exactly_one_win(tmp_path):
    path = tmp_path / "s.sqlite"
    JobStore(path).conn.close()
    # Spawned, not forked: a forked child inherits whatever the test process
    # holds, and SQLite's POSIX locks are released when any descriptor of the
    # file closes in that process (CI once saw two winners under fork).
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    procs = [context.Process(target=_reserve_same, args=(path, queue))
             for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = sorted(queue.get() for _ in procs)
    assert results == ["conflict"] * 7 + ["ok"]


def test_corrupt_store_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=str(path)):
        JobStore(path)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    JobStore(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 99"):
        JobStore(path)


def test_jobs_roundtrip_with_json_fields(tmp_path):
    store = JobStore(tmp_path / "s.sqlite")
    j = job(["o"])
    j.spec.array_tasks = [0, 1]
    j.submission.environment = {"HOME": "/h"}
    store.reserve(j)
    submitted(store, j, "5")
    (back,) = store.jobs(status="open", job_ids=[JobId("5")])
    assert back.spec.array_tasks == [0, 1] and back.submission.environment == {"HOME": "/h"}
    store.remove([j.token])
    assert store.jobs() == [] and store.conflicts(["o"]) == []


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE jobs (token TEXT PRIMARY KEY, job_id TEXT, backend TEXT, status TEXT,
  submitted_at FLOAT, cmd TEXT, pwd TEXT, inputs TEXT, extra_inputs TEXT, outputs TEXT,
  message TEXT, chain TEXT, log_output TEXT, log_error TEXT, workdir TEXT, job_name TEXT,
  array_tasks TEXT, environment TEXT, sweep TEXT, extra TEXT, [commit] TEXT, owner TEXT);
CREATE TABLE outputs (token TEXT, path TEXT);
"""


def test_a_version_1_store_is_migrated_with_its_open_jobs(tmp_path):
    """Jobs opened by the previous release are finished by this one: the
    environment copied into every row becomes one submission per comment."""
    import json
    path = tmp_path / "s.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    env = json.dumps({"HOME": "/h"})
    rows = [("t1", "41", "slurm", "open", 1.0, '["sbatch", "a.sh"]', ".", "[]", "[]",
             '["out/a"]', "msg", "[]", "slurm-%j.out", None, ".", "a.sh", None, env, None,
             '{"user": "u"}', None, "h:1")]
    for task in (0, 1):
        extra = {"user": "u", "comment": "c1", "point": f"p{task}", "case": "base",
                 "params": {"x": task}, "run": "r", "config": "s.yaml",
                 "sweep_name": "s", "array_task": task}
        rows.append((f"s{task}", f"50_{task}", "local", "open", 2.0,
                     f'["sbatch", "S/p{task}/base.sh"]', ".", "[]", "[]", f'["S/p{task}/base"]',
                     None, "[]", "S/logs/base/slurm-%A_%a.out", None, ".", "s-base", None, env,
                     "S", json.dumps(extra), None, "h:1"))
    conn.executemany(f"INSERT INTO jobs VALUES ({','.join('?' * 22)})", rows)
    conn.executemany("INSERT INTO outputs VALUES (?, ?)",
                     [("t1", "out/a"), ("s0", "S/p0/base"), ("s1", "S/p1/base")])
    conn.commit()
    conn.close()
    store = JobStore(path)
    single, *points = store.jobs()
    assert str(single.job_id) == "41" and single.spec.message == "msg"
    assert single.submission.environment == {"HOME": "/h"} and single.submission.user == "u"
    assert [str(j.job_id) for j in points] == ["50_0", "50_1"]
    assert points[0].submission is points[1].submission
    assert points[0].submission.token == "c1" and points[1].task == 1
    assert points[1].sweep.point == "p1" and points[1].sweep.params == {"x": 1}
    assert store.conflicts(["S/p1/base/x"]) == [("S/p1/base/x", "S/p1/base", "50_1")]
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM submissions").fetchone() == (2,)


def test_a_locked_store_is_waited_for_and_never_called_damaged(tmp_path, caplog):
    path = tmp_path / "s.sqlite"
    store = JobStore(path, timeout=2.0)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    # Reading needs no lock: listing works while another command writes.
    assert JobStore(path, timeout=2.0).jobs() == []
    with caplog.at_level("INFO", logger="datalad.slurmsweep.store"):
        with pytest.raises(StoreError) as info:
            store.reserve(job(["x"]))
    assert "stayed locked" in str(info.value) and "intact" in str(info.value)
    assert "move it away" not in str(info.value)
    assert any("waiting for another" in r.message for r in caplog.records)
    holder.execute("ROLLBACK")
    store.reserve(job(["x"]))  # released: it works again
    assert len(store.jobs()) == 1
