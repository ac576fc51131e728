"""The local backend: the same sbatch batch scripts, run on this machine.

No Slurm, no daemon: ``submit`` checks the command line as sbatch would,
records the job in ``STATE_DIR/jobs/<id>.json`` and starts a detached runner
(``python -m datalad_slurmsweep.local_backend run STATE_DIR ID``) that
outlives the caller, waits for the job's dependencies and runs its tasks,
each in its own session and holding one of N machine-wide slot locks (N from
DATALAD_SLURMSWEEP_LOCAL_WORKERS, else the CPU count).

Unlike Slurm, on purpose: time limits are enforced to the second (SIGTERM,
then SIGKILL KILL_GRACE seconds later); a dependency that can never be
satisfied ends the job CANCELLED (reason DependencyNeverSatisfied) rather
than pending forever; a task whose working or log directory is missing, or
whose script cannot be executed, ends FAILED with exit code 1 (the reason is
in the job file, and in the log if it could be opened); a job whose runner
died is NODE_FAIL, and its leftover processes are killed when that is
noticed; every task takes one slot whatever its --cpus-per-task, and free
slots go to waiting jobs in no particular order; ``--test-only`` is
``validate()``; --hold, --wait, --input and --export other than ALL are
refused, other options are ignored.
"""
from __future__ import annotations

import fcntl
import getpass
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from . import __version__
from . import sbatch_args as sa
from .slurm import JobStatus, SlurmError, TaskStatus, assemble, base_ids
from .states import JobState

lgr = logging.getLogger("datalad.slurmsweep.local")

WORKERS_ENV = "DATALAD_SLURMSWEEP_LOCAL_WORKERS"
MAX_ARRAY_SIZE_ENV = "DATALAD_SLURMSWEEP_LOCAL_MAX_ARRAY_SIZE"
KILL_GRACE = 3.0
# A job whose runner never registered (its submitter died in between) is
# given up after this long rather than left pending forever.
SPAWN_GRACE = 60.0
_DEPENDENCY_KINDS = ("after", "afterany", "afterok", "afternotok")
_REFUSED = {"hold": "--hold", "wait": "--wait", "input": "--input", "i": "-i"}
_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")
# Runners this process started; polled now and then so they do not linger
# as zombies (which look alive) in a long-lived caller.
_children: list[subprocess.Popen] = []


def parse_time_limit(text: str) -> int | None:
    """Seconds of a Slurm ``--time`` value; None means no limit."""
    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "-1"):
        return None
    match = _TIME.fullmatch(text)
    if not match:
        raise SlurmError(
            f"sbatch: error: Invalid --time specification {text!r}: use MM, MM:SS, "
            "HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED")
    days, *rest = match.groups()
    parts = [int(p) for p in rest if p is not None]
    # Without days, one number is minutes and two are MM:SS; else HH[:MM[:SS]].
    units = (3600, 60, 1) if days or len(parts) == 3 else (60, 1)
    seconds = int(days or 0) * 86400 + sum(p * u for p, u in zip(parts, units, strict=False))
    return seconds or None  # as in Slurm, zero means no limit


def parse_dependency(text: str) -> list[tuple[str, str]]:
    """``afterok:1:2,afterany:3_4`` -> [(kind, job id), ...]."""
    deps = []
    for item in text.split(","):
        kind, _, ids = item.partition(":")
        words = ids.split(":")
        if kind not in _DEPENDENCY_KINDS or not all(re.fullmatch(r"\d+(_\d+)?", w) for w in words):
            raise SlurmError(
                f"sbatch: error: --dependency={text}: the local backend understands "
                f"{', '.join(_DEPENDENCY_KINDS)} with job ids (ID or ID_TASK), "
                "separated by ':' and ','")
        deps.extend((kind, w) for w in words)
    return deps


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _host() -> str:
    return socket.gethostname().split(".", 1)[0]


def _user() -> str:
    with suppress(KeyError, OSError):
        return getpass.getuser()
    return str(os.getuid())


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _proc_start(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return stat[19] if stat else None


def _alive(pid: int, start: str | None) -> bool:
    """Whether ``pid`` still runs and is the process that started at ``start``."""
    if not Path("/proc/self/stat").exists():  # no procfs: ask the kernel, less precisely
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, as another user
            pass
        return True
    stat = _proc_stat(pid)
    # A zombie has finished; the start time guards against a reused pid.
    return stat is not None and stat[0] not in ("Z", "X") and start in (None, stat[19])


def _killpg(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _terminate(proc: subprocess.Popen) -> int:
    _killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(KILL_GRACE)
    except subprocess.TimeoutExpired:
        _killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def _write_text(path: Path, text: str, mode: int = 0o600) -> None:
    """Readers see the old or the new content, never a partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _workers() -> int:
    value = os.environ.get(WORKERS_ENV, "")
    if not value:
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise SlurmError(f"{WORKERS_ENV}={value!r} is not a positive number")
    return int(value)


class LocalBackend:
    """Slurm's batch semantics on this machine; all state lives in ``state_dir``."""

    name = "local"

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.jobs_dir = self.state_dir / "jobs"
        # Set when one of this runner's tasks frees its slot: no need to
        # wait out the polling delay that other runners' slots need.
        self._slot_freed = threading.Event()

    def _file(self, job_id: str, suffix: str) -> Path:
        return self.jobs_dir / f"{job_id}{suffix}"

    @contextmanager
    def _locked(self, job_id: str) -> Iterator[dict]:
        """The job's status, written back unless the block raises."""
        with _flock(self._file(job_id, ".lock")):
            job = _read_json(self._file(job_id, ".json"))
            yield job
            _write_text(self._file(job_id, ".json"), json.dumps(job))

    # -- the backend interface ------------------------------------------------

    def validate(self, sbatch_argv: list[str], cwd: Path, env: Mapping[str, str] | None = None,
                 comment: str | None = None) -> dict:
        """Check ``sbatch ...`` as sbatch would and return the job's spec.

        The local ``--test-only``: nothing is recorded and nothing runs.
        """
        if not sbatch_argv or sbatch_argv[0] != "sbatch":
            raise ValueError("the command must start with 'sbatch'")
        cwd = Path(cwd).absolute()
        try:
            call = sa.parse_sbatch_argv(sbatch_argv[1:])
            if call.wrap is not None:
                if call.script is not None:
                    raise sa.SbatchArgumentError("Script arguments not permitted with --wrap option")
                text = f"#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{call.wrap}\n"
            else:
                try:
                    text = (cwd / call.script).read_text(errors="replace")
                except OSError:
                    raise sa.SbatchArgumentError(f"Unable to open file {call.script}") from None
                if not text.startswith("#!"):
                    raise sa.SbatchArgumentError(
                        f"{call.script} does not look like a batch script: its first line "
                        "must start with #! followed by the path to an interpreter")
            opts = sa.effective_options(call, None if call.wrap is not None else text)
            tasks = sa.parse_array_spec(opts["array"]) if opts.get("array") is not None else None
        except sa.SbatchArgumentError as exc:
            raise SlurmError(f"sbatch: error: {exc}") from None
        for key, shown in _REFUSED.items():
            if key in opts:
                raise SlurmError(f"sbatch: error: {shown} is not supported by the local backend")
        if (opts.get("export") or "ALL").upper() != "ALL":
            raise SlurmError("sbatch: error: the local backend supports only --export=ALL")
        throttle = None
        if tasks is not None:
            match = re.search(r"%(\d+)$", opts["array"].strip())
            throttle = int(match.group(1)) if match else None
            if throttle == 0 or tasks[-1] >= self.max_array_size():
                raise SlurmError(
                    f"sbatch: error: Batch job submission failed: Invalid job array "
                    f"specification --array={opts['array']} (task ids must be below "
                    f"{self.max_array_size()}, a throttle above 0)")
        numbers = {}
        for key in ("ntasks", "cpus-per-task"):
            value = opts.get(key)
            if value is not None and (not value.isdigit() or int(value) < 1):
                raise SlurmError(f"sbatch: error: invalid --{key}={value}")
            numbers[key] = int(value) if value else None
        open_mode = opts.get("open-mode") or "truncate"
        if open_mode not in ("truncate", "append"):
            raise SlurmError(f"sbatch: error: invalid --open-mode={open_mode}")
        deps = parse_dependency(opts["dependency"]) if opts.get("dependency") else []
        for _, dep in deps:
            base, _, task = dep.partition("_")
            job = self._read(base)
            if job is None or (task and int(task) not in [t["task_id"] for t in job["tasks"]]):
                raise SlurmError("sbatch: error: Batch job submission failed: "
                                 f"Job dependency problem (no job {dep})")
        time_limit = parse_time_limit(opts["time"]) if opts.get("time") else None
        return {
            "cwd": str(cwd), "workdir": str(cwd / (opts.get("chdir") or ".")),
            "name": opts.get("job-name") or (Path(call.script).name if call.script else "wrap"),
            "comment": opts.get("comment") or comment, "script": text, "args": call.script_args,
            "shebang": text.splitlines()[0],
            "tasks": tasks, "throttle": throttle, "time_limit": time_limit, "dependency": deps,
            "output": opts.get("output") or (sa.DEFAULT_ARRAY_OUTPUT if tasks else sa.DEFAULT_OUTPUT),
            "error": opts.get("error"), "open_mode": open_mode, "ntasks": numbers["ntasks"] or 1,
            "cpus_per_task": numbers["cpus-per-task"], "partition": opts.get("partition") or "local",
            "workers": _workers(), "env": dict(os.environ if env is None else env),
            "test_only": "test-only" in opts,
        }

    def submit(self, sbatch_argv: list[str], cwd: Path, env: Mapping[str, str] | None = None,
               comment: str | None = None) -> str:
        """Start ``sbatch OPTIONS...`` in the background here; return the job id.

        ``--test-only`` is refused: call ``validate`` instead.
        """
        spec = self.validate(sbatch_argv, cwd, env, comment)
        if spec.pop("test_only"):
            raise SlurmError("sbatch: error: --test-only is not supported by the local "
                             "backend's submit; use LocalBackend.validate")
        self.jobs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        task_ids = spec["tasks"] if spec["tasks"] is not None else [None]
        first = self._allocate(len(task_ids))
        job_id = str(first)
        # Like Slurm, run a copy: editing the script later changes nothing.
        _write_text(self._file(job_id, ".script"), spec.pop("script"), mode=0o700)
        _write_text(self._file(job_id, ".spec.json"), json.dumps(spec))
        status = {
            "job_id": job_id, "name": spec["name"], "comment": spec["comment"],
            "array": spec["tasks"] is not None, "submitted": _now(),
            "submitted_at": time.time(), "runner": None,
            "tasks": [{"task_id": t, "raw_id": str(first + i), "state": "PENDING",
                       **dict.fromkeys(("exit_code", "signal", "start", "end", "node",
                                        "pid", "pid_start", "reason"))}
                      for i, t in enumerate(task_ids)],
        }
        _write_text(self._file(job_id, ".json"), json.dumps(status))
        proc = self._spawn(job_id)
        with self._locked(job_id) as job:
            job["runner"] = {"pid": proc.pid, "start": _proc_start(proc.pid)}
        return job_id

    def query(self, job_ids: list[str],
              expected_tasks: Mapping[str, list[int] | None] | None = None) -> dict[str, JobStatus]:
        """The status of every job in ``job_ids`` (unknown ones are LOST)."""
        _children[:] = [p for p in _children if p.poll() is None]
        expected = dict(expected_tasks or {})
        rows: dict[str, list[TaskStatus]] = {}
        for base in base_ids(job_ids):
            job = self._read(base)
            if job is None:
                continue
            rows[base] = [self._task_status(job, t) for t in job["tasks"]]
            if job["array"] and base in job_ids and expected.get(base) is None:
                expected[base] = [t["task_id"] for t in job["tasks"]]
        return assemble(job_ids, rows, expected, "local")

    def find_by_comments(self, comments: set[str]) -> dict[str, list[str]]:
        """Job ids per comment in ``comments``, in one pass over the jobs."""
        found: dict[str, list[str]] = {}
        for p in sorted(self.jobs_dir.glob("*.json"), key=lambda p: (len(p.stem), p.stem)):
            if p.stem.isdigit():
                comment = _read_json(p).get("comment")
                if comment in comments:
                    found.setdefault(comment, []).append(p.stem)
        return found

    def version(self) -> str:
        return f"local {__version__}"

    def max_array_size(self) -> int:
        return int(os.environ.get(MAX_ARRAY_SIZE_ENV) or 1001)

    def cancel(self, job_id: str) -> None:
        """Cancel a job (``123``) or one array task (``123_4``), like scancel."""
        base, _, task_id = job_id.partition("_")
        if self._read(base) is None:
            raise SlurmError(f"scancel: error: Invalid job id {job_id}")
        victims = []
        with self._locked(base) as job:
            for task in job["tasks"]:
                if JobState(task["state"]).is_terminal or task_id not in ("", str(task["task_id"])):
                    continue
                if task["state"] == "RUNNING" and _alive(task["pid"], task["pid_start"]):
                    _killpg(task["pid"], signal.SIGTERM)
                    victims.append((task["pid"], task["pid_start"]))
                task.update(state="CANCELLED", end=_now())
        deadline = time.monotonic() + KILL_GRACE
        while any(_alive(*v) for v in victims) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid, _ in victims:
            _killpg(pid, signal.SIGKILL)

    # -- bookkeeping ------------------------------------------------------------

    def _allocate(self, count: int) -> int:
        """The first of ``count`` consecutive new ids, safe among concurrent submitters."""
        counter = self.state_dir / "next-job-id"
        with _flock(self.state_dir / "next-job-id.lock"):
            try:
                first = int(counter.read_text())
            except FileNotFoundError:
                first = 1
            _write_text(counter, str(first + count))
        return first

    def _spawn(self, job_id: str) -> subprocess.Popen:
        env = dict(os.environ)
        # The runner must import this very copy of the package.
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        with open(self._file(job_id, ".log"), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "datalad_slurmsweep.local_backend", "run",
                 str(self.state_dir), job_id],
                cwd=self.state_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, start_new_session=True, close_fds=True)
        _children[:] = [p for p in _children if p.poll() is None] + [proc]
        return proc

    def _read(self, job_id: str) -> dict | None:
        """A job's status, None if unknown; a dead runner's job becomes NODE_FAIL."""
        if not job_id.isdigit():
            return None
        try:
            job = _read_json(self._file(job_id, ".json"))
        except FileNotFoundError:
            return None
        if self._runner_dead(job):
            with self._locked(job_id) as job:
                if self._runner_dead(job):
                    for task in job["tasks"]:
                        if JobState(task["state"]).is_terminal:
                            continue
                        # Slurm kills a failed node's jobs: do not leave orphans.
                        if task["pid"] and _alive(task["pid"], task["pid_start"]):
                            _killpg(task["pid"], signal.SIGKILL)
                        task.update(state="NODE_FAIL", end=_now(), reason="the runner died")
        return job

    @staticmethod
    def _runner_dead(job: dict) -> bool:
        if all(JobState(t["state"]).is_terminal for t in job["tasks"]):
            return False
        runner = job["runner"]
        if runner is None:
            return time.time() - job["submitted_at"] > SPAWN_GRACE
        return not _alive(runner["pid"], runner["start"])

    @staticmethod
    def _task_status(job: dict, task: dict) -> TaskStatus:
        return TaskStatus(raw_id=task["raw_id"], task_id=task["task_id"],
                          state=JobState(task["state"]), exit_code=task["exit_code"],
                          signal=task["signal"], start=task["start"], end=task["end"],
                          node=task["node"], name=job["name"])

    def _dependency_verdict(self, deps: list[list[str]]) -> bool | None:
        """True when satisfied, False when it never can be, None to wait."""
        verdicts = []
        for kind, dep in deps:
            base, _, task_id = dep.partition("_")
            job = self._read(base) or {"tasks": []}
            states = [JobState(t["state"]) for t in job["tasks"]
                      if task_id in ("", str(t["task_id"]))]
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

    # -- the runner -------------------------------------------------------------

    def run(self, job_id: str) -> int:
        """Run a submitted job to its end: dependencies, then the tasks."""
        spec = _read_json(self._file(job_id, ".spec.json"))
        # The runner keeps the submission environment in memory; on disk it
        # would keep every token and password of the submitter's shell.
        _write_text(self._file(job_id, ".spec.json"), json.dumps({**spec, "env": None}))
        with self._locked(job_id) as job:
            job["runner"] = {"pid": os.getpid(), "start": _proc_start(os.getpid())}
        delay = 0.05
        while spec["dependency"]:
            verdict = self._dependency_verdict(spec["dependency"])
            if verdict:
                break
            if verdict is False:
                with self._locked(job_id) as job:
                    for task in job["tasks"]:
                        if task["state"] == "PENDING":
                            task.update(state="CANCELLED", end=_now(),
                                        reason="DependencyNeverSatisfied")
                return 0
            if not self._pending(job_id):
                return 0
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        throttle = threading.BoundedSemaphore(spec["throttle"] or len(job["tasks"]))
        threads = []
        for index in range(len(job["tasks"])):
            throttle.acquire()
            if index not in self._pending(job_id):
                throttle.release()
                continue
            slot = self._take_slot(spec["workers"])
            thread = threading.Thread(target=self._run_task,
                                      args=(spec, job_id, index, slot, throttle))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        return 0

    def _pending(self, job_id: str) -> set[int]:
        tasks = _read_json(self._file(job_id, ".json"))["tasks"]
        return {i for i, t in enumerate(tasks) if t["state"] == "PENDING"}

    def _take_slot(self, workers: int) -> int:
        """A held lock on one of the machine's ``workers`` slots (its fd)."""
        delay = 0.05
        while True:
            for i in range(workers):
                fd = os.open(self.state_dir / f"slot-{i}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    os.close(fd)
            self._slot_freed.wait(delay)
            self._slot_freed.clear()
            delay = min(delay * 1.5, 0.5)

    def _run_task(self, spec: dict, job_id: str, index: int, slot: int,
                  throttle: threading.BoundedSemaphore) -> None:
        try:
            self._run_one(spec, job_id, index)
        except Exception:
            # The task stays non-terminal and turns NODE_FAIL once we exit.
            lgr.exception("job %s: task %d", job_id, index)
        finally:
            os.close(slot)
            self._slot_freed.set()
            throttle.release()

    def _run_one(self, spec: dict, job_id: str, index: int) -> None:
        # Starting under the job's lock: a concurrent cancel sees either a
        # PENDING task it can simply mark, or a RUNNING one with its pid.
        with self._locked(job_id) as job:
            task = job["tasks"][index]
            if task["state"] != "PENDING":
                return
            task.update(node=_host(), start=_now())
            try:
                proc = self._start(spec, job_id, task)
            except OSError as exc:
                lgr.error("job %s: task %d failed to start: %s", job_id, index, exc)
                task.update(state="FAILED", exit_code=1, signal=0, end=_now(), reason=str(exc))
                return
            task.update(state="RUNNING", pid=proc.pid, pid_start=_proc_start(proc.pid))
        timed_out = False
        try:
            returncode = proc.wait(timeout=spec["time_limit"])
        except subprocess.TimeoutExpired:
            timed_out = True
            returncode = _terminate(proc)
        # Processes the script left behind end with it, as under Slurm.
        _killpg(proc.pid, signal.SIGKILL)
        code, sig = (returncode, 0) if returncode >= 0 else (0, -returncode)
        state = "TIMEOUT" if timed_out else "COMPLETED" if returncode == 0 else "FAILED"
        with self._locked(job_id) as job:
            task = job["tasks"][index]
            if task["state"] == "RUNNING":  # else cancelled meanwhile
                task.update(state=state, exit_code=code, signal=sig, end=_now())

    def _start(self, spec: dict, job_id: str, task: dict) -> subprocess.Popen:
        workdir = Path(spec["workdir"])
        if not workdir.is_dir():
            raise FileNotFoundError(f"working directory {workdir} does not exist")
        fields = dict(job_id=task["raw_id"], array_job_id=job_id if spec["tasks"] else None,
                      task_id=task["task_id"], job_name=spec["name"], user=_user(),
                      node=task["node"])
        out_path = workdir / sa.expand_log_pattern(spec["output"], **fields)
        err_path = workdir / sa.expand_log_pattern(spec["error"], **fields) if spec["error"] else out_path
        mode = "ab" if spec["open_mode"] == "append" else "wb"
        with ExitStack() as stack:
            out = stack.enter_context(open(out_path, mode))
            err = out if err_path == out_path else stack.enter_context(open(err_path, mode))
            try:
                return subprocess.Popen(
                    [str(self._file(job_id, ".script")), *spec["args"]], cwd=workdir,
                    env=self._task_env(spec, job_id, task), stdin=subprocess.DEVNULL,
                    stdout=out, stderr=err, start_new_session=True)
            except OSError as exc:
                # ENOENT for an existing file: its #! interpreter is missing.
                line = f" ({spec['shebang']})" if isinstance(exc, FileNotFoundError) else ""
                msg = f"cannot run the batch script of {spec['name']}{line}: {exc.strerror}"
                err.write(f"local backend: error: {msg}\n".encode())
                raise OSError(msg) from None

    @staticmethod
    def _task_env(spec: dict, job_id: str, task: dict) -> dict[str, str]:
        # Stale SLURM_* of a submitter that is itself a job must not leak in.
        env = {k: v for k, v in spec["env"].items() if not k.startswith(("SLURM_", "SLURMD_"))}
        host, ntasks = task["node"], str(spec["ntasks"])
        cpus = str(spec["ntasks"] * (spec["cpus_per_task"] or 1))
        env.update(
            SLURM_JOB_ID=task["raw_id"], SLURM_JOBID=task["raw_id"],
            SLURM_JOB_NAME=spec["name"], SLURM_SUBMIT_DIR=spec["cwd"], SLURM_SUBMIT_HOST=host,
            SLURM_CPUS_ON_NODE=cpus, SLURM_NTASKS=ntasks, SLURM_NPROCS=ntasks,
            SLURM_JOB_NUM_NODES="1", SLURM_NNODES="1", SLURM_JOB_NODELIST=host,
            SLURM_NODELIST=host, SLURMD_NODENAME=host, SLURM_CLUSTER_NAME="local",
            SLURM_JOB_PARTITION=spec["partition"], PWD=spec["workdir"])
        if spec["cpus_per_task"]:
            env["SLURM_CPUS_PER_TASK"] = str(spec["cpus_per_task"])
        if spec["tasks"]:
            env.update(SLURM_ARRAY_JOB_ID=job_id, SLURM_ARRAY_TASK_ID=str(task["task_id"]),
                       SLURM_ARRAY_TASK_COUNT=str(len(spec["tasks"])),
                       SLURM_ARRAY_TASK_MIN=str(min(spec["tasks"])),
                       SLURM_ARRAY_TASK_MAX=str(max(spec["tasks"])))
        return env


def main(argv: list[str] | None = None) -> int:
    """``run STATE_DIR JOB_ID``: the detached runner that ``submit`` starts."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] != "run":
        sys.stderr.write("usage: python -m datalad_slurmsweep.local_backend run STATE_DIR JOB_ID\n")
        return 2
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s [%(process)d] %(levelname)s %(message)s")
    return LocalBackend(Path(argv[1])).run(argv[2])


if __name__ == "__main__":
    sys.exit(main())
