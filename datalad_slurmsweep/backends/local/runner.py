"""The detached runner of one local job:
``python -m datalad_slurmsweep.backends.local.runner run STATE_DIR JOB_ID``.

``LocalBackend.submit`` starts it in its own session, so that it outlives
the submitter. It waits for the job's dependencies, then runs each task in a
session of its own while holding one of the machine's worker slots, and
records every change in the job's status file under its lock.
"""
from __future__ import annotations

import fcntl
import getpass
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack, suppress
from dataclasses import replace
from pathlib import Path

from ...errors import SlurmsweepError
from ...redact import redact_argv
from .. import sbatch as sa
from ..base import JobId, JobState, Resources
from .spec import NO_PYTHONPATH, ORIGINAL_PYTHONPATH, LocalJobSpec
from .state import (
    KILL_GRACE,
    JobFiles,
    LocalTask,
    RunnerProcess,
    killpg,
    now,
    proc_start,
    write_text,
)

lgr = logging.getLogger("datalad.slurmsweep.local")

USAGE = "usage: python -m datalad_slurmsweep.backends.local.runner run STATE_DIR JOB_ID\n"


def _host() -> str:
    return socket.gethostname().split(".", 1)[0]


def _user() -> str:
    with suppress(KeyError, OSError):
        return getpass.getuser()
    return str(os.getuid())


def _wait_measured(proc: subprocess.Popen, limit: int | None
                   ) -> tuple[int, bool, resource.struct_rusage]:
    """Wait for ``proc`` (TERM, then KILL past ``limit`` seconds): its exit
    status, whether it timed out, and its own resource usage. ``wait4``
    rather than ``getrusage(RUSAGE_CHILDREN)``: this runner's tasks run in
    threads, and only wait4 tells one child's usage from another's."""
    deadline = None if limit is None else time.monotonic() + limit
    timed_out, killed, delay = False, False, 0.01
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, timed_out, usage
        if deadline is not None and time.monotonic() >= deadline and not killed:
            killpg(proc.pid, signal.SIGKILL if timed_out else signal.SIGTERM)
            killed, timed_out = timed_out, True
            deadline = time.monotonic() + KILL_GRACE
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


def task_resources(spec: LocalJobSpec, elapsed: float, usage: resource.struct_rusage) -> Resources:
    """The local counterpart of sacct's figures for one task."""
    return Resources(
        elapsed_s=round(elapsed, 3), total_cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
        max_rss_bytes=usage.ru_maxrss * 1024,  # KiB on Linux
        req_mem_bytes=spec.mem_bytes, alloc_cpus=spec.ntasks * (spec.cpus_per_task or 1),
        time_limit_s=spec.time_limit).completed()


def dependency_verdict(files: JobFiles, deps: list[tuple[str, str]]) -> bool | None:
    """True when satisfied, False when it never can be, None to wait."""
    verdicts = []
    for kind, dep in deps:
        wanted = JobId.parse(dep)
        job = files.read(wanted.base)
        states = [t.state for t in (job.tasks if job else [])
                  if wanted.task is None or wanted.task == t.task_id]
        if not states:
            return False
        done = all(s.is_terminal for s in states)
        failed = any(s.is_failure for s in states)
        if kind == "after":
            verdicts.append(True if JobState.PENDING not in states else None)
        elif kind == "afterany":
            verdicts.append(True if done else None)
        elif kind == "afterok":
            verdicts.append(False if failed else True if done else None)
        else:
            verdicts.append(failed if done else None)
    if False in verdicts:
        return False
    return None if None in verdicts else True


def task_env(spec: LocalJobSpec, job_id: str, task: LocalTask) -> dict[str, str]:
    """The environment of one task: the submitter's, with Slurm's variables."""
    # Stale SLURM_* of a submitter that is itself a job must not leak in.
    env = {k: v for k, v in (spec.env or {}).items() if not k.startswith(("SLURM_", "SLURMD_"))}
    host, ntasks = task.node or "", str(spec.ntasks)
    cpus = str(spec.ntasks * (spec.cpus_per_task or 1))
    env.update(
        SLURM_JOB_ID=task.raw_id, SLURM_JOBID=task.raw_id,
        SLURM_JOB_NAME=spec.name, SLURM_SUBMIT_DIR=spec.cwd, SLURM_SUBMIT_HOST=host,
        SLURM_CPUS_ON_NODE=cpus, SLURM_NTASKS=ntasks, SLURM_NPROCS=ntasks,
        SLURM_JOB_NUM_NODES="1", SLURM_NNODES="1", SLURM_JOB_NODELIST=host,
        SLURM_NODELIST=host, SLURMD_NODENAME=host, SLURM_CLUSTER_NAME="local",
        SLURM_JOB_PARTITION=spec.partition, PWD=spec.workdir)
    if spec.cpus_per_task:
        env["SLURM_CPUS_PER_TASK"] = str(spec.cpus_per_task)
    if spec.tasks:
        env.update(SLURM_ARRAY_JOB_ID=job_id, SLURM_ARRAY_TASK_ID=str(task.task_id),
                   SLURM_ARRAY_TASK_COUNT=str(len(spec.tasks)),
                   SLURM_ARRAY_TASK_MIN=str(min(spec.tasks)),
                   SLURM_ARRAY_TASK_MAX=str(max(spec.tasks)))
    return env


def job_environment(runner_env: Mapping[str, str]) -> dict[str, str]:
    """The submission environment the runner was started with, as the job
    must see it: without the PYTHONPATH entry that found this package."""
    env = dict(runner_env)
    original = env.pop(ORIGINAL_PYTHONPATH, NO_PYTHONPATH)
    if original == NO_PYTHONPATH:
        env.pop("PYTHONPATH", None)
    else:
        env["PYTHONPATH"] = original
    return env


class _Pending:
    """The job's pending tasks, read again at most every ``REFRESH`` seconds:
    reading the whole status file once per task made a 1000-task array cost
    a million task parses, and 100 runners seeing a cancel that way kept
    the machine at load 64 for minutes. A cancel is seen within REFRESH,
    and a task found cancelled when it starts is skipped anyway."""

    REFRESH = 0.5

    def __init__(self, read: Callable[[], set[int]]) -> None:
        self._read = read
        self._tasks = read()
        self._at = time.monotonic()

    def current(self) -> set[int]:
        if time.monotonic() - self._at > self.REFRESH:
            self._tasks, self._at = self._read(), time.monotonic()
        return self._tasks


class Runner:
    """Runs the jobs of ``state_dir``; one process runs one job."""

    def __init__(self, state_dir: Path) -> None:
        self.files = JobFiles(state_dir)
        # Set when one of this runner's tasks frees its slot: no need to
        # wait out the polling delay that other runners' slots need.
        self._slot_freed = threading.Event()

    def run(self, job_id: str) -> int:
        """Run a submitted job to its end: dependencies, then the tasks."""
        spec_file = self.files.path(job_id, ".spec.json")
        spec = replace(LocalJobSpec.from_json(spec_file.read_text()),
                       env=job_environment(os.environ))
        # The script's arguments may hold a secret: on disk only as long as
        # it took this runner to read them.
        write_text(spec_file, replace(spec, env=None, args=redact_argv(spec.args)).to_json())
        with self.files.locked(job_id) as job:
            job.runner = RunnerProcess(os.getpid(), proc_start(os.getpid()))
        try:
            self._run_tasks(spec, job_id, len(job.tasks))
        finally:
            # A --wrap command is the script, and it may hold a secret: it
            # stays on disk only while the job can still run it (Slurm's
            # spool keeps a batch script as long, and no longer).
            self.files.path(job_id, ".script").unlink(missing_ok=True)
        return 0

    def _run_tasks(self, spec: LocalJobSpec, job_id: str, count: int) -> None:
        if not self._wait_for_dependencies(spec, job_id):
            return
        throttle = threading.BoundedSemaphore(spec.throttle or count)
        threads = []
        pending = _Pending(lambda: self._pending(job_id))
        for index in range(count):
            throttle.acquire()
            if index not in pending.current():
                throttle.release()
                continue
            slot = self._take_slot(spec.workers)
            # Waiting for a slot may have outlasted a cancel.
            if index not in pending.current():
                os.close(slot)
                self._slot_freed.set()
                throttle.release()
                continue
            thread = threading.Thread(target=self._run_task,
                                      args=(spec, job_id, index, slot, throttle))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()

    def _wait_for_dependencies(self, spec: LocalJobSpec, job_id: str) -> bool:
        """Whether the tasks may start; False once there is nothing left to run."""
        delay = 0.05
        while spec.dependency:
            verdict = dependency_verdict(self.files, spec.dependency)
            if verdict:
                break
            if verdict is False:
                with self.files.locked(job_id) as job:
                    for task in job.tasks:
                        if task.state is JobState.PENDING:
                            task.state, task.end = JobState.CANCELLED, now()
                            task.reason = "DependencyNeverSatisfied"
                return False
            if not self._pending(job_id):  # cancelled while waiting
                return False
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        return True

    def _pending(self, job_id: str) -> set[int]:
        tasks = self.files.load(job_id).tasks
        return {i for i, t in enumerate(tasks) if t.state is JobState.PENDING}

    def _take_slot(self, workers: int) -> int:
        """A held lock on one of the machine's ``workers`` slots (its fd)."""
        delay = 0.05
        while True:
            for i in range(workers):
                fd = os.open(self.files.state_dir / f"slot-{i}.lock",
                             os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    os.close(fd)
            self._slot_freed.wait(delay)
            self._slot_freed.clear()
            delay = min(delay * 1.5, 0.5)

    def _run_task(self, spec: LocalJobSpec, job_id: str, index: int, slot: int,
                  throttle: threading.BoundedSemaphore) -> None:
        try:
            self._run_one(spec, job_id, index)
        except (OSError, ValueError, SlurmsweepError):
            # The task stays non-terminal and turns NODE_FAIL once we exit;
            # anything else reaches threading's excepthook, i.e. the log.
            lgr.exception("job %s: task %d", job_id, index)
        finally:
            os.close(slot)
            self._slot_freed.set()
            throttle.release()

    def _run_one(self, spec: LocalJobSpec, job_id: str, index: int) -> None:
        # Starting under the job's lock: a concurrent cancel sees either a
        # PENDING task it can simply mark, or a RUNNING one with its pid.
        with self.files.locked(job_id) as job:
            task = job.tasks[index]
            if task.state is not JobState.PENDING:
                return
            task.node, task.start = _host(), now()
            try:
                proc = self._start(spec, job_id, task)
            except OSError as exc:
                lgr.error("job %s: task %d failed to start: %s", job_id, index, exc)
                task.state, task.exit_code, task.signal = JobState.FAILED, 1, 0
                task.end, task.reason = now(), str(exc)
                return
            task.state, task.pid, task.pid_start = JobState.RUNNING, proc.pid, proc_start(proc.pid)
        started = time.monotonic()
        returncode, timed_out, usage = _wait_measured(proc, spec.time_limit)
        used = task_resources(spec, time.monotonic() - started, usage)
        # Processes the script left behind end with it, as under Slurm.
        killpg(proc.pid, signal.SIGKILL)
        code, sig = (returncode, 0) if returncode >= 0 else (0, -returncode)
        state = (JobState.TIMEOUT if timed_out else
                 JobState.COMPLETED if returncode == 0 else JobState.FAILED)
        with self.files.locked(job_id) as job:
            task = job.tasks[index]
            if task.state is JobState.RUNNING:  # else cancelled meanwhile
                task.state, task.exit_code, task.signal, task.end = state, code, sig, now()
                task.resources = used

    def _start(self, spec: LocalJobSpec, job_id: str, task: LocalTask) -> subprocess.Popen:
        workdir = Path(spec.workdir)
        if not workdir.is_dir():
            raise FileNotFoundError(f"working directory {workdir} does not exist")
        fields = dict(job_id=task.raw_id, array_job_id=job_id if spec.tasks else None,
                      task_id=task.task_id, job_name=spec.name, user=_user(), node=task.node)
        out_path = workdir / sa.expand_log_pattern(spec.output, **fields)
        err_path = workdir / sa.expand_log_pattern(spec.error, **fields) if spec.error else out_path
        mode = "ab" if spec.open_mode == "append" else "wb"
        with ExitStack() as stack:
            out = stack.enter_context(_open_log(out_path, mode))
            err = out if err_path == out_path else stack.enter_context(_open_log(err_path, mode))
            try:
                return subprocess.Popen(
                    [str(self.files.path(job_id, ".script")), *spec.args], cwd=workdir,
                    env=task_env(spec, job_id, task), stdin=subprocess.DEVNULL,
                    stdout=out, stderr=err, start_new_session=True)
            except OSError as exc:
                # ENOENT for an existing file: its #! interpreter is missing.
                line = f" ({spec.shebang})" if isinstance(exc, FileNotFoundError) else ""
                msg = f"cannot run the batch script of {spec.name}{line}: {exc.strerror}"
                err.write(f"local backend: error: {msg}\n".encode())
                raise OSError(msg) from None


def _open_log(path: Path, mode: str):
    """A log file opened for the job. A committed annexed log in its place (a
    clone numbers its local jobs from 1 again, so slurm-1.out of a recorded
    job is there) is replaced by a file of its own, never written through:
    that would change, or for absent content fail on, the stored content."""
    if path.is_symlink() and "annex/objects/" in os.readlink(path):
        kept = path.read_bytes() if mode == "ab" and path.exists() else b""
        path.unlink()
        path.write_bytes(kept)
    return open(path, mode)


def main(argv: list[str] | None = None) -> int:
    """``run STATE_DIR JOB_ID``: the detached runner that ``submit`` starts."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] != "run":
        sys.stderr.write(USAGE)
        return 2
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s [%(process)d] %(levelname)s %(message)s")
    return Runner(Path(argv[1])).run(argv[2])


if __name__ == "__main__":
    sys.exit(main())
