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
    j.spec.array_tasks = [0, 1]
    j.submission.environment = {"HOME": "/h"}
    store.reserve(j)
    submitted(store, j, "5")
    (back,) = store.jobs(status="open", job_ids=[JobId("5")])
    assert back.spec.array_tasks == [0, 1] and back.submission.environment == {"HOME": "/h"}
    store.remove([j.token])
    assert store.jobs() == [] and store.conflicts(["o"]) == []
