import multiprocessing
import sqlite3

import pytest

from datalad_slurmsweep.store import (
    Job,
    JobStore,
    OutputConflictError,
    StoreError,
    new_token,
)


def job(outputs, job_id=None):
    return Job(token=new_token(), cmd=["sbatch", "j.sh"], pwd=".", outputs=outputs,
               job_id=job_id)


def test_reserve_refuses_overlaps_in_every_direction(tmp_path):
    store = JobStore(tmp_path / "s.sqlite")
    first = job(["a/b"])
    store.reserve(first)
    store.mark_submitted(first.token, "1")
    for clash in (["a/b"], ["a"], ["a/b/c"], ["x", "a/b/c/d"]):
        with pytest.raises(OutputConflictError):
            store.reserve(job(clash))
    store.reserve(job(["a/bc"]))  # a sibling, not a child
    assert len(store.jobs()) == 2


def test_conflict_report_names_the_open_job(tmp_path):
    store = JobStore(tmp_path / "s.sqlite")
    first = job(["out"])
    store.reserve(first)
    store.mark_submitted(first.token, "77")
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
    JobStore(path)
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_reserve_same, args=(path, queue))
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
    j.array_tasks = [0, 1]
    j.environment = {"HOME": "/h"}
    store.reserve(j)
    store.mark_submitted(j.token, "5")
    (back,) = store.jobs(status="open", job_ids=["5"])
    assert back.array_tasks == [0, 1] and back.environment == {"HOME": "/h"}
    store.remove([j.token])
    assert store.jobs() == [] and store.conflicts(["o"]) == []
