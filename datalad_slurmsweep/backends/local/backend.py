"""The local backend: the same sbatch batch scripts, run on this machine.

No Slurm, no daemon: ``submit`` checks the command line as sbatch would,
records the job in ``STATE_DIR/jobs/<id>.json`` and starts a detached runner
(``python -m datalad_slurmsweep.backends.local.runner run STATE_DIR ID``)
that outlives the caller, waits for the job's dependencies and runs its
tasks, each in its own session and holding one of N machine-wide slot locks
(N is ``workers``: the setting datalad.slurmsweep.local.workers, else the
CPU count).

Unlike Slurm, on purpose: time limits are enforced to the second (SIGTERM,
then SIGKILL KILL_GRACE seconds later); a dependency that can never be
satisfied ends the job CANCELLED (reason DependencyNeverSatisfied) rather
than pending forever; a task whose working or log directory is missing, or
whose script cannot be executed, ends FAILED with exit code 1 (the reason is
in the job file, and in the log if it could be opened); a job whose runner
died is NODE_FAIL, and its leftover processes are killed when that is
noticed; every task takes one slot whatever its --cpus-per-task, and free
slots go to waiting jobs in no particular order; ``--test-only`` is
``validate()`` (and ``check_resources()``); --hold, --wait, --input and
--export other than ALL are refused, other options are ignored.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from ... import __version__
from ...errors import JobIdError, SlurmError
from ...redact import redact_value
from ..base import (
    TOKEN,
    CommentLookup,
    JobId,
    JobState,
    JobStatus,
    TaskStatus,
    assemble,
    base_ids,
)
from .spec import (
    NO_PYTHONPATH,
    ORIGINAL_PYTHONPATH,
    LocalJobSpec,
    Submission,
    validate_submission,
)
from .state import (
    KILL_GRACE,
    JobFiles,
    LocalJob,
    LocalTask,
    RunnerProcess,
    alive,
    killpg,
    now,
    proc_start,
    write_text,
)

RUNNER_MODULE = "datalad_slurmsweep.backends.local.runner"
# The directory that holds this copy of the package (backends/local/ is 3 deep).
_PACKAGE_ROOT = Path(__file__).resolve().parents[3]
# Runners this process started; polled now and then so they do not linger
# as zombies (which look alive) in a long-lived caller.
_children: list[subprocess.Popen] = []


def _task_status(job: LocalJob, task: LocalTask) -> TaskStatus:
    return TaskStatus(raw_id=task.raw_id, task_id=task.task_id, state=task.state,
                      exit_code=task.exit_code, signal=task.signal, start=task.start,
                      end=task.end, node=task.node, name=job.name,
                      resources=task.resources)


def _redacted(comment: str | None) -> str | None:
    """A comment as the job files keep it: secrets out, our token in."""
    return redact_value(comment) if comment else comment


class LocalBackend:
    """Slurm's batch semantics on this machine; all state lives in ``state_dir``.

    ``workers`` tasks run at once (None: one per CPU); array task ids must be
    below ``max_array_size``, like Slurm's MaxArraySize.
    """

    name = "local"

    def __init__(self, state_dir: Path, workers: int | None = None,
                 max_array_size: int = 1001) -> None:
        self.files = JobFiles(state_dir)
        self.workers = workers or os.cpu_count() or 1
        self._max_array_size = max_array_size

    @property
    def state_dir(self) -> Path:
        return self.files.state_dir

    @property
    def jobs_dir(self) -> Path:
        return self.files.jobs_dir

    # -- the backend interface ------------------------------------------------

    def validate(self, sbatch_argv: list[str], cwd: Path, env: Mapping[str, str] | None = None,
                 comment: str | None = None) -> LocalJobSpec:
        """Check ``sbatch ...`` as sbatch would and return the job's spec.

        The local ``--test-only``: nothing is recorded and nothing runs.
        """
        return self._validate(sbatch_argv, cwd, env, comment).spec

    def _validate(self, sbatch_argv: list[str], cwd: Path, env: Mapping[str, str] | None,
                  comment: str | None) -> Submission:
        return validate_submission(sbatch_argv, cwd, env, comment, workers=self.workers,
                                   max_array_size=self._max_array_size, read=self.files.read)

    def check_resources(self, options: list[str], cwd: Path) -> None:
        """Raise SlurmError if ``sbatch OPTIONS --wrap=true`` would be refused."""
        self.validate(["sbatch", *options, "--wrap=true"], cwd)

    def submit(self, sbatch_argv: list[str], cwd: Path, env: Mapping[str, str] | None = None,
               comment: str | None = None) -> JobId:
        """Start ``sbatch OPTIONS...`` in the background here; return the job id.

        ``--test-only`` is refused: call ``validate`` instead.
        """
        spec, script, test_only = self._validate(sbatch_argv, cwd, env, comment)
        if test_only:
            raise SlurmError("sbatch: error: --test-only is not supported by the local "
                             "backend's submit; use LocalBackend.validate")
        self.jobs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        task_ids = spec.task_ids
        first = self.files.allocate(len(task_ids))
        job_id = str(first)
        # Like Slurm, run a copy: editing the script later changes nothing.
        write_text(self.files.path(job_id, ".script"), script, mode=0o700)
        # The submission environment never touches the disk: the runner
        # inherits it as its own environment.
        write_text(self.files.path(job_id, ".spec.json"),
                   replace(spec, env=None, comment=_redacted(spec.comment)).to_json())
        self.files.save(LocalJob(
            job_id=job_id, name=spec.name, comment=_redacted(spec.comment),
            array=spec.tasks is not None,
            submitted=now(), submitted_at=time.time(),
            tasks=[LocalTask(task_id=t, raw_id=str(first + i)) for i, t in enumerate(task_ids)]))
        proc = self._spawn(job_id, spec.env if spec.env is not None else dict(os.environ))
        with self.files.locked(job_id) as job:
            job.runner = RunnerProcess(proc.pid, proc_start(proc.pid))
        return JobId(job_id)

    def query(self, job_ids: list[JobId],
              expected_tasks: Mapping[JobId, list[int] | None] | None = None
              ) -> dict[JobId, JobStatus]:
        """The status of every job in ``job_ids`` (unknown ones are LOST)."""
        _children[:] = [p for p in _children if p.poll() is None]
        expected = dict(expected_tasks or {})
        rows: dict[str, list[TaskStatus]] = {}
        for base in base_ids(job_ids):
            job = self.files.read(base)
            if job is None:
                continue
            rows[base] = [_task_status(job, t) for t in job.tasks]
            whole = JobId(base)
            if job.array and whole in job_ids and expected.get(whole) is None:
                expected[whole] = [t.task_id for t in job.tasks if t.task_id is not None]
        return assemble(job_ids, rows, expected, "local")

    def find_by_comments(self, comments: Mapping[str, float]) -> CommentLookup:
        """Job ids per recovery token, in one pass over the job files; the
        local backend never forgets a job, so what it does not find was
        never submitted."""
        found: dict[str, list[str]] = {}
        for job_id in self.files.job_ids():
            text = self.files.load(job_id).comment or ""
            for token in set(TOKEN.findall(text)) & set(comments):
                found.setdefault(token, []).append(job_id)
        return CommentLookup(found)
    def version(self) -> str:
        return f"local {__version__}"

    def max_array_size(self) -> int:
        return self._max_array_size

    def cancel(self, job_id: JobId | str) -> None:
        """Cancel a job (``123``) or one array task (``123_4``), like scancel."""
        try:
            wanted = JobId.parse(job_id)
        except JobIdError:
            raise SlurmError(f"scancel: error: Invalid job id {job_id}") from None
        if self.files.read(wanted.base) is None:
            raise SlurmError(f"scancel: error: Invalid job id {job_id}")
        victims = []
        with self.files.locked(wanted.base) as job:
            for task in job.tasks:
                if task.state.is_terminal or wanted.task not in (None, task.task_id):
                    continue
                if task.state is JobState.RUNNING and task.pid and alive(task.pid, task.pid_start):
                    killpg(task.pid, signal.SIGTERM)
                    victims.append((task.pid, task.pid_start))
                task.state, task.end = JobState.CANCELLED, now()
        deadline = time.monotonic() + KILL_GRACE
        while any(alive(*v) for v in victims) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid, _ in victims:
            killpg(pid, signal.SIGKILL)

    # -- bookkeeping ------------------------------------------------------------

    def _spawn(self, job_id: str, job_env: Mapping[str, str]) -> subprocess.Popen:
        env = dict(job_env)
        # The runner must import this very copy of the package; the job's
        # own PYTHONPATH is restored for its tasks (runner.job_environment).
        env[ORIGINAL_PYTHONPATH] = env.get("PYTHONPATH", NO_PYTHONPATH)
        root = str(_PACKAGE_ROOT)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        with open(self.files.path(job_id, ".log"), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", RUNNER_MODULE, "run", str(self.state_dir), job_id],
                cwd=self.state_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, start_new_session=True, close_fds=True)
        _children[:] = [p for p in _children if p.poll() is None] + [proc]
        return proc
