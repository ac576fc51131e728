"""The local backend, with real batch scripts run on this machine."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datalad_slurmsweep import __version__
from datalad_slurmsweep.backends.base import JobId, JobState, JobStatus
from datalad_slurmsweep.backends.local import LocalBackend, parse_time_limit
from datalad_slurmsweep.errors import SlurmError

from ..helpers import wait_terminal

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


@pytest.fixture
def backend(tmp_path):
    backend = LocalBackend(tmp_path / "state")
    yield backend
    # No job may outlive its test and keep writing into tmp_path.
    ids = [JobId(p.stem) for p in backend.jobs_dir.glob("*.json") if p.stem.isdigit()]
    for job_id, status in backend.query(ids).items():
        if status.state.is_active:
            backend.cancel(job_id)


@pytest.fixture
def work(tmp_path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def write_script(directory: Path, name: str, body: str) -> str:
    path = directory / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return name


def wait_for(backend: LocalBackend, ids: list, timeout: float = 15) -> dict[JobId, JobStatus]:
    return wait_terminal(ids, timeout=timeout, backend=backend, interval=0.1)


def wait_state(backend: LocalBackend, job_id: JobId, state: JobState, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while backend.query([job_id])[job_id].state is not state:
        assert time.monotonic() < deadline, f"job {job_id} never became {state.value}"
        time.sleep(0.05)


RECORD_TIMES = """
date +%s.%N > "times/$SLURM_JOB_ID.start"
echo "task ${SLURM_ARRAY_TASK_ID:-none} job $SLURM_JOB_ID"
sleep 0.6
date +%s.%N > "times/$SLURM_JOB_ID.end"
"""


def intervals(times: Path) -> list[tuple[float, float]]:
    return [(float(p.read_text()), float(p.with_suffix(".end").read_text()))
            for p in sorted(times.glob("*.start"))]


def max_overlap(spans: list[tuple[float, float]]) -> int:
    # At equal times an end (-1) sorts before a start (+1).
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def test_plain_job_runs_with_slurm_environment(backend, work):
    write_script(work, "job.sh", "echo hello from the job\necho oops >&2\n"
                 "env | grep -E '^(SLURM|MY_VAR)' | sort > env.txt\npwd > pwd.txt\n")
    env = dict(os.environ, MY_VAR="hello", SLURM_ARRAY_TASK_ID="99")
    job_id = backend.submit(["sbatch", "job.sh"], work, env=env)
    assert str(job_id).isdigit()
    task = wait_for(backend, [job_id])[job_id].tasks[0]
    assert (task.state, task.exit_code, task.signal) == (JobState.COMPLETED, 0, 0)
    assert task.raw_id == str(job_id) and task.task_id is None and task.name == "job.sh"
    assert ISO.fullmatch(task.start) and ISO.fullmatch(task.end) and task.node
    assert (work / f"slurm-{job_id}.out").read_text() == "hello from the job\noops\n"
    seen = dict(line.split("=", 1) for line in (work / "env.txt").read_text().splitlines())
    assert seen["SLURM_JOB_ID"] == str(job_id)
    assert seen["SLURM_SUBMIT_DIR"] == str(work)
    assert seen["SLURM_JOB_NAME"] == "job.sh"
    assert seen["SLURM_CLUSTER_NAME"] == "local" and seen["SLURM_JOB_PARTITION"] == "local"
    assert seen["SLURM_NTASKS"] == "1" and seen["SLURMD_NODENAME"] == task.node
    assert seen["MY_VAR"] == "hello"
    assert "SLURM_ARRAY_TASK_ID" not in seen  # the submitter's stale value is dropped
    assert (work / "pwd.txt").read_text().strip() == str(work)


def test_failing_job_reports_its_exit_code(backend, work):
    job_id = backend.submit(["sbatch", "--wrap=exit 3"], work)
    status = wait_for(backend, [job_id])[job_id]
    assert (status.state, status.exit_code) == (JobState.FAILED, 3)
    assert status.tasks[0].name == "wrap"


def test_array_runs_every_task_within_its_throttle(backend, work):
    (work / "times").mkdir()
    write_script(work, "task.sh", RECORD_TIMES)
    job_id = backend.submit(["sbatch", "--array=0-3%2", "task.sh"], work)
    status = wait_for(backend, [job_id])[job_id]
    assert [t.task_id for t in status.tasks] == [0, 1, 2, 3]
    assert status.state is JobState.COMPLETED
    raw_ids = [t.raw_id for t in status.tasks]
    assert len(set(raw_ids)) == 4 and raw_ids[0] == str(job_id)
    for task in status.tasks:
        log = (work / f"slurm-{job_id}_{task.task_id}.out").read_text()
        assert log == f"task {task.task_id} job {task.raw_id}\n"
    spans = intervals(work / "times")
    assert len(spans) == 4 and max_overlap(spans) <= 2
    one = backend.query([job_id.with_task(2)])[job_id.with_task(2)]
    assert [t.task_id for t in one.tasks] == [2] and one.state is JobState.COMPLETED


def test_time_limit_ends_a_job_as_timeout(backend, work):
    started = time.monotonic()
    job_id = backend.submit(["sbatch", "--time=0:02", "--wrap=sleep 30"], work)
    status = wait_for(backend, [job_id], timeout=10)[job_id]
    assert status.state is JobState.TIMEOUT
    assert time.monotonic() - started < 10


def test_script_directives_are_honoured_and_the_command_line_wins(backend, work):
    (work / "logs").mkdir()
    write_script(work, "job.sh", "#SBATCH --job-name=named\n#SBATCH --output=logs/%x-%j.out\n"
                 "echo $SLURM_JOB_NAME\n")
    first = backend.submit(["sbatch", "job.sh"], work)
    second = backend.submit(["sbatch", "-J", "cli", "job.sh"], work)
    statuses = wait_for(backend, [first, second])
    assert statuses[first].tasks[0].name == "named"
    assert (work / "logs" / f"named-{first}.out").read_text() == "named\n"
    assert (work / "logs" / f"cli-{second}.out").read_text() == "cli\n"


def test_a_job_outlives_the_process_that_submitted_it(backend, work):
    code = ("import sys; from pathlib import Path; "
            "from datalad_slurmsweep.backends.local import LocalBackend; "
            "print(LocalBackend(Path(sys.argv[1])).submit("
            "['sbatch', '--wrap=sleep 1.5; echo done'], Path(sys.argv[2])))")
    proc = subprocess.run([sys.executable, "-c", code, str(backend.state_dir), str(work)],
                          capture_output=True, text=True, check=True, timeout=30)
    job_id = JobId.parse(proc.stdout.strip())
    assert backend.query([job_id])[job_id].state.is_active
    assert wait_for(backend, [job_id])[job_id].state is JobState.COMPLETED
    assert (work / f"slurm-{job_id}.out").read_text() == "done\n"


def test_workers_bound_how_many_jobs_run_at_once(backend, work):
    one_worker = LocalBackend(backend.state_dir, workers=1)
    (work / "times").mkdir()
    write_script(work, "task.sh", RECORD_TIMES)
    ids = [one_worker.submit(["sbatch", "task.sh"], work) for _ in range(2)]
    assert all(s.state is JobState.COMPLETED for s in wait_for(backend, ids).values())
    assert max_overlap(intervals(work / "times")) == 1


def test_afterok_waits_for_its_dependency(backend, work):
    first = backend.submit(["sbatch", "--wrap=sleep 1; touch first.done"], work)
    second = backend.submit(["sbatch", f"--dependency=afterok:{first}",
                             "--wrap=test -f first.done"], work)
    assert backend.query([second])[second].state is JobState.PENDING
    statuses = wait_for(backend, [first, second])
    assert statuses[second].state is JobState.COMPLETED
    assert statuses[second].tasks[0].start >= statuses[first].tasks[0].end


def test_dependencies_on_a_failed_array(backend, work):
    array = backend.submit(["sbatch", "--array=0-1", "--wrap=exit $SLURM_ARRAY_TASK_ID"], work)
    kinds = ("afterok", "afternotok", "afterany")
    ids = [backend.submit(["sbatch", f"-d{kind}:{array}", "--wrap=true"], work) for kind in kinds]
    ok_on_first = backend.submit(["sbatch", f"--dependency=afterok:{array}_0", "--wrap=true"], work)
    statuses = wait_for(backend, [array, *ids, ok_on_first])
    assert statuses[array].state is JobState.FAILED
    assert [statuses[j].state for j in ids] == [
        JobState.CANCELLED, JobState.COMPLETED, JobState.COMPLETED]
    assert not (work / f"slurm-{ids[0]}.out").exists()
    assert statuses[ok_on_first].state is JobState.COMPLETED


def test_unknown_jobs_are_lost(backend, work):
    job_id = backend.submit(["sbatch", "--wrap=true"], work)
    statuses = backend.query([JobId("999"), JobId("999", 1), job_id.with_task(1), JobId("../x")])
    assert all(s.state is JobState.LOST for s in statuses.values())
    wait_for(backend, [job_id])


@pytest.mark.parametrize("argv,message", [
    (["nope.sh"], "Unable to open file nope.sh"),
    (["--array=3-1", "--wrap=true"], "--array"),
    (["--array=0-5000", "--wrap=true"], "Invalid job array"),
    (["--time=1:2:3:4", "--wrap=true"], "Invalid --time"),
    (["--dependency=afterok:4242", "--wrap=true"], "Job dependency problem"),
    (["--dependency=singleton", "--wrap=true"], "--dependency"),
    (["--hold", "--wrap=true"], "--hold"),
    (["--test-only", "--wrap=true"], "validate"),
    (["--wrap=true", "job.sh"], "not permitted with --wrap"),
])
def test_refused_submissions_say_why(backend, work, argv, message):
    with pytest.raises(SlurmError, match=re.escape(message)):
        backend.submit(["sbatch", *argv], work)
    assert not list(backend.jobs_dir.glob("*.json"))


def test_a_script_without_interpreter_line_is_refused(backend, work):
    (work / "plain.sh").write_text("echo hi\n")
    with pytest.raises(SlurmError, match="plain.sh does not look like a batch script"):
        backend.submit(["sbatch", "plain.sh"], work)


def test_validate_checks_without_running(backend, work):
    spec = backend.validate(["sbatch", "--test-only", "--time=1-2", "--array=1-3%1",
                             "--wrap=true"], work)
    assert spec.time_limit == 26 * 3600 and spec.tasks == [1, 2, 3]
    assert spec.throttle == 1
    assert not backend.jobs_dir.exists()


@pytest.mark.parametrize("text,seconds", [
    ("5", 300), ("5:30", 330), ("1:00:05", 3605), ("2-3", 2 * 86400 + 3 * 3600),
    ("1-0:01", 86460), ("1-00:00:07", 86407), ("UNLIMITED", None), ("infinite", None),
    ("0", None),
])
def test_time_limit_formats(text, seconds):
    assert parse_time_limit(text) == seconds


def test_killed_runner_makes_the_job_node_fail(backend, work):
    job_id = backend.submit(["sbatch", "--wrap=sleep 30"], work)
    wait_state(backend, job_id, JobState.RUNNING)
    record = json.loads((backend.jobs_dir / f"{job_id}.json").read_text())
    task_pid = record["tasks"][0]["pid"]
    os.kill(record["runner"]["pid"], signal.SIGKILL)
    wait_state(backend, job_id, JobState.NODE_FAIL)
    # The orphaned task is killed too (a zombie of an unreaping init is dead).
    deadline = time.monotonic() + 5
    while Path(f"/proc/{task_pid}").exists() and \
            Path(f"/proc/{task_pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.monotonic() < deadline, "the orphaned task still runs"
        time.sleep(0.05)


def test_concurrent_submissions_get_distinct_ids(backend, work):
    code = ("import sys; from pathlib import Path; "
            "from datalad_slurmsweep.backends.local import LocalBackend; "
            "b = LocalBackend(Path(sys.argv[1])); "
            "print(*[b.submit(['sbatch', '--wrap=true'], Path(sys.argv[2])) for _ in range(5)])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(backend.state_dir), str(work)],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    ids = [j for p in procs for j in p.communicate(timeout=60)[0].split()]
    assert all(p.returncode == 0 for p in procs)
    assert len(ids) == 20 and len(set(ids)) == 20
    assert all(s.state is JobState.COMPLETED for s in wait_for(backend, ids, 30).values())


def test_cancel_kills_a_running_job(backend, work):
    job_id = backend.submit(["sbatch", "--wrap=sleep 30"], work)
    wait_state(backend, job_id, JobState.RUNNING)
    backend.cancel(job_id)
    assert wait_for(backend, [job_id], timeout=5)[job_id].state is JobState.CANCELLED


def test_missing_log_directory_fails_the_job(backend, work):
    job_id = backend.submit(["sbatch", "--output=missing/%j.out", "--wrap=true"], work)
    status = wait_for(backend, [job_id])[job_id]
    assert (status.state, status.exit_code) == (JobState.FAILED, 1)


def test_comment_version_and_array_size(backend, work):
    token, absent = "dlss-" + "1" * 32, "dlss-" + "2" * 32
    tagged = backend.submit(["sbatch", "--wrap=true"], work, comment=token)
    # The user's own comment is kept, and the token still reaches the job.
    theirs = backend.submit(["sbatch", "--comment=other", "--wrap=true"], work, comment=token)
    lookup = backend.find_by_comments({token: 0.0, absent: 0.0})
    assert lookup.found == {token: [str(tagged), str(theirs)]} and lookup.unknown == set()
    assert backend.files.load(str(theirs)).comment == f"other {token}"
    assert backend.version() == f"local {__version__}"
    assert backend.max_array_size() == 1001
    with pytest.raises(SlurmError, match="Invalid job array"):
        LocalBackend(backend.state_dir, max_array_size=4).submit(
            ["sbatch", "--array=0-4", "--wrap=true"], work)
    wait_for(backend, [tagged, theirs])
