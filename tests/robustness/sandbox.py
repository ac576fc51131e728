"""What every trial shares: datasets, ``datalad`` command calls as
subprocesses, snapshots for "no trace" checks, run records read back from
history, the jobs a backend ran, and the integrity checks after a crash.

Records are parsed here with a parser of our own (not the package's), so a
bug in the package's reader cannot hide a duplicated or missing record.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "model"
MODEL_CONFIG = "model/slurm_config_setup.yaml"
SST = "synaptic_models/synapses_final/SST2PV.json"
PULSE = "synaptic_models/synapses_final/Pulse2IT.json"

# The job of most trials: writes its one declared output directory.
JOB = '#!/bin/sh\nmkdir -p "$1"\necho "$SLURM_JOB_ID" > "$1/result.txt"\n'
SUBJECT = "[DATALAD SLURM RUN]"
BEGIN = "=== Do not change lines below ==="
END = "^^^ Do not change lines above ^^^"
TERMINAL = {"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "CANCELLED",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE", "LOST", "REVOKED", "SPECIAL_EXIT"}


# -- outcomes -------------------------------------------------------------------

@dataclass
class Outcome:
    """One trial: what was done, whether the user got what they need, and
    precisely what went wrong otherwise."""

    kind: str
    name: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)
    command: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # worth knowing, not a failure

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)

    def count(self, figure: str, n: int = 1) -> None:
        self.figures[figure] = self.figures.get(figure, 0) + n

    def summary(self) -> str:
        head = f"[{self.kind}] {self.name}: {'ok' if self.ok else 'FAILED'}"
        lines = [head] + [f"    - {p}" for p in self.problems]
        if self.command and not self.ok:
            lines.append(f"    reproduce: {self.command}")
        return "\n".join(lines)


# -- commands -------------------------------------------------------------------

def command_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without our settings (a trial sets its own)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DATALAD_SLURMSWEEP_") and k != "SLURM_CONF"}
    env.update(extra or {})
    return env


def _message(result: dict) -> str:
    msg = result.get("message", "")
    if isinstance(msg, (list, tuple)) and msg:
        try:
            return str(msg[0]) % tuple(msg[1:])
        except (TypeError, ValueError):
            return " ".join(str(m) for m in msg)
    return str(msg or "")


_ERROR_LOG = re.compile(r"^\[ERROR\s*\]", re.MULTILINE)


@dataclass
class Call:
    """One finished ``datalad`` call."""

    argv: list[str]
    cwd: str
    env_extra: dict[str, str]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def results(self) -> list[dict]:
        found = []
        for line in self.stdout.splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    pass
        return found

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.results if r.get("status") in ("impossible", "error")]

    @property
    def messages(self) -> str:
        return "\n".join(_message(r) for r in self.failures)

    @property
    def usage_error(self) -> bool:
        """Refused by DataLad's argument parser: its usage line, and 'error:
        ...' (exit 2) or '[ERROR] unknown argument' (exit 1) on stderr."""
        text = self.stdout + self.stderr
        return "usage: datalad" in text and (
            (self.rc == 2 and "error:" in self.stderr)
            or (self.rc == 1 and "unknown argument" in self.stderr))

    @property
    def crash(self) -> str | None:
        """A traceback, or an exception DataLad's handler printed as one
        '[ERROR] ...' line with no failed result: both are crashes."""
        text = self.stdout + self.stderr
        if "Traceback (most recent call last)" in text:
            return "traceback: " + _tail(text)
        if self.rc < 0:
            return f"killed by signal {-self.rc}"
        if self.rc not in (0, 1, 2):
            return f"exit code {self.rc}: " + _tail(text)
        if self.rc != 0 and not self.failures and not self.usage_error:
            match = _ERROR_LOG.search(self.stderr)
            shown = self.stderr[match.start():].strip() if match else _tail(text)
            return "unhandled exception (no failed result): " + shown[:400]
        return None

    def shell(self) -> str:
        def shown(key: str, value: str) -> str:
            inherited = os.environ.get(key, "")
            if key == "PATH" and inherited and value.endswith(os.pathsep + inherited):
                return shlex.quote(value[: -len(inherited)]) + "$PATH"
            return shlex.quote(value)
        env = " ".join(f"{k}={shown(k, v)}" for k, v in self.env_extra.items())
        return f"cd {shlex.quote(self.cwd)} && {env + ' ' if env else ''}{shlex.join(self.argv)}"

    def said(self) -> str:
        """What the user was told, for a report."""
        if self.failures:
            return self.messages[:600]
        if self.results:
            return "; ".join(f"{r.get('status')}: {_message(r)}" for r in self.results)[:600]
        return (self.stderr.strip() or self.stdout.strip())[:600]


def _tail(text: str, n: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


def datalad(cwd: Path | str, *args: str, env: dict[str, str] | None = None,
            timeout: float = 600, render_json: bool = True) -> Call:
    """``datalad [-f json] ARGS`` in ``cwd``, as a user would run it."""
    argv = ["datalad", *(["-f", "json"] if render_json else []), *args]
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=command_env(env), capture_output=True,
                              text=True, timeout=timeout, errors="replace")
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc = 124
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) \
            else (exc.stdout or "")
        err = f"timed out after {timeout} s"
    return Call(argv=argv, cwd=str(cwd), env_extra=dict(env or {}), rc=rc, stdout=out,
                stderr=err, seconds=time.monotonic() - start)


class Running:
    """A ``datalad`` command started in the background (to be killed).
    Its output goes to files: a killed command's children may hold pipes."""

    def __init__(self, cwd: Path | str, *args: str, env: dict[str, str] | None = None,
                 render_json: bool = True):
        import tempfile
        self.argv = ["datalad", *(["-f", "json"] if render_json else []), *args]
        self.cwd, self.env_extra = str(cwd), dict(env or {})
        self._files = [tempfile.TemporaryFile(mode="w+", errors="replace") for _ in range(2)]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, cwd=cwd, env=command_env(env),
                                     stdout=self._files[0], stderr=self._files[1])

    def kill(self) -> bool:
        """kill -9 the command itself (not its children); whether it was still running."""
        landed = self.proc.poll() is None
        if landed:
            os.kill(self.proc.pid, signal.SIGKILL)
        return landed

    def wait(self, timeout: float = 600) -> Call:
        try:
            self.proc.wait(timeout=timeout)
            note = ""
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            note = f"\n(timed out after {timeout} s)"
        texts = []
        for handle in self._files:
            handle.seek(0)
            texts.append(handle.read())
            handle.close()
        return Call(argv=self.argv, cwd=self.cwd, env_extra=self.env_extra,
                    rc=self.proc.returncode, stdout=texts[0], stderr=texts[1] + note,
                    seconds=time.monotonic() - self.started)


def git(path: Path | str, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True,
                          errors="replace")
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {path}: {proc.stderr.strip()}")
    return proc.stdout


# -- datasets -------------------------------------------------------------------

def new_dataset(path: Path, *, annex: bool = True, model: bool = False,
                files: dict[str, str] | None = None, backend: str | None = "local") -> Path:
    """A committed dataset at ``path``: ``files`` (``*.sh`` executable) and,
    with ``model``, the example model in ``model/``. ``backend`` becomes the
    dataset's default (git config datalad.slurmsweep.backend)."""
    from datalad.api import Dataset
    ds = Dataset(str(path)).create(annex=annex, result_renderer="disabled")
    for name, text in (files or {}).items():
        write(path / name, text)
    if model:
        shutil.copytree(MODEL, path / "model", symlinks=True)
    if files or model:
        ds.save(message="job files", result_renderer="disabled")
    if backend:
        git(path, "config", "datalad.slurmsweep.backend", backend)
    return path


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    if path.name.endswith(".sh"):
        path.chmod(0o755)


def commit_all(path: Path, message: str) -> None:
    """Commit every change as a user would (datalad save, through the API)."""
    from datalad.api import Dataset
    Dataset(str(path)).save(message=message, result_renderer="disabled")


def remove_dataset(path: Path) -> None:
    """Stop what still runs for this dataset, then delete it."""
    stop_jobs(path)
    if path.exists():
        for sub in path.rglob("*"):  # annexed objects are read-only
            if sub.is_dir() and not sub.is_symlink():
                sub.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)


def stop_jobs(path: Path) -> None:
    """Cancel this dataset's local-backend jobs and Slurm jobs that still run."""
    jobs_dir = path / ".git" / "slurmsweep" / "local" / "jobs"
    if jobs_dir.is_dir():
        from datalad_slurmsweep.backends.local import LocalBackend
        backend = LocalBackend(jobs_dir.parent)
        for job_id, job in _local_job_files(path).items():
            if not all(t.get("state") in TERMINAL for t in job.get("tasks", [])):
                try:
                    backend.cancel(job_id)
                except Exception:  # noqa: BLE001  (best effort while cleaning up)
                    pass
    if shutil.which("squeue"):
        for job_id, _state in _squeue(path).items():
            subprocess.run(["scancel", job_id.split("_")[0]], capture_output=True)


# -- snapshots (no trace) -------------------------------------------------------

def store_path(ds: Path) -> Path:
    return ds / ".git" / "slurmsweep" / "jobs.sqlite"


def store_rows(ds: Path) -> tuple[str, ...]:
    """Every job row (token, status, job id) and reservation in the store,
    read without creating or changing it."""
    path = store_path(ds)
    if not path.exists():
        return ()
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        return (f"<store unreadable: {exc}>",)
    try:
        jobs = conn.execute("SELECT token, status, job_id FROM jobs").fetchall()
        outs = conn.execute("SELECT token, path FROM outputs").fetchall()
        subs = conn.execute("SELECT token FROM submissions").fetchall()
    except sqlite3.Error as exc:
        return (f"<store unreadable: {exc}>",)
    finally:
        conn.close()
    return tuple(sorted([f"job {t} {s} {j}" for t, s, j in jobs]
                        + [f"reservation {t} {p}" for t, p in outs]
                        + [f"submission {t}" for (t,) in subs]))


def open_job_ids(ds: Path) -> dict[str, str]:
    """Job id -> status of every job row in the store (None ids as tokens)."""
    found = {}
    for row in store_rows(ds):
        parts = row.split(" ")
        if parts[0] == "job":
            found[parts[3] if parts[3] != "None" else parts[1]] = parts[2]
        elif row.startswith("<"):
            found[row] = "unreadable"
    return found


def work_tree_files(ds: Path) -> frozenset[str]:
    found = set()
    for top, dirs, files in os.walk(ds):
        rel = os.path.relpath(top, ds)
        if rel == ".":
            dirs[:] = [d for d in dirs if d != ".git"]
        for name in dirs + files:
            found.add(os.path.normpath(os.path.join(rel, name)))
    return frozenset(found)


@dataclass(frozen=True)
class State:
    head: str
    status: str
    files: frozenset
    store: tuple
    journal: frozenset
    local_jobs: frozenset
    slurm_jobs: frozenset
    refs: frozenset
    index_files: frozenset


def snapshot(ds: Path, slurm: bool = False) -> State:
    dot = ds / ".git"
    ours = dot / "slurmsweep"
    head = git(ds, "rev-parse", "-q", "--verify", "HEAD", check=False).strip() \
        if dot.exists() else ""
    status = git(ds, "status", "--porcelain", "--untracked-files=all") if dot.exists() else ""
    refs = git(ds, "for-each-ref", "--format=%(refname)", "refs/slurmsweep/") \
        if dot.exists() else ""
    jobs_dir = ours / "local" / "jobs"
    return State(
        head=head, status=status, files=work_tree_files(ds), store=store_rows(ds),
        journal=frozenset(p.name for p in (ours / "journal").glob("*")),
        local_jobs=frozenset(p.name for p in jobs_dir.glob("*")) if jobs_dir.is_dir()
        else frozenset(),
        # As squeue lists them: sbatch refusing a job may leave a FAILED one
        # in Slurm's own records, which is Slurm's doing, not ours.
        slurm_jobs=frozenset(_squeue(ds, every_state=False)) if slurm else frozenset(),
        refs=frozenset(refs.split()),
        index_files=frozenset(p.name for p in ours.glob("index-*")))


def trace(before: State, after: State) -> list[str]:
    """What a command left behind, one sentence each."""
    found = []
    if before.head != after.head:
        found.append(f"HEAD moved {before.head[:10]} -> {after.head[:10]}")
    if before.status != after.status:
        found.append(f"git status changed: {_delta(before.status.splitlines(), after.status.splitlines())}")
    if after.files - before.files:
        found.append(f"new files in the work tree: {sorted(after.files - before.files)[:8]}")
    if before.store != after.store:
        found.append(f"job store changed: {_delta(before.store, after.store)}")
    if after.journal != before.journal:
        found.append(f"journal changed: {_delta(before.journal, after.journal)}")
    if after.local_jobs - before.local_jobs:
        found.append(f"local backend got new job files (a job was submitted): "
                     f"{sorted(after.local_jobs - before.local_jobs)[:6]}")
    if after.slurm_jobs - before.slurm_jobs:
        found.append(f"Slurm got new jobs: {sorted(after.slurm_jobs - before.slurm_jobs)}")
    if after.refs - before.refs:
        found.append(f"refs left: {sorted(after.refs - before.refs)}")
    if after.index_files - before.index_files:
        found.append(f"private index files left: {sorted(after.index_files - before.index_files)}")
    return found


def _delta(old: Iterable[str], new: Iterable[str]) -> str:
    old, new = set(old), set(new)
    parts = []
    if new - old:
        parts.append(f"+{sorted(new - old)[:6]}")
    if old - new:
        parts.append(f"-{sorted(old - new)[:6]}")
    return " ".join(parts)


# -- run records ------------------------------------------------------------------

@dataclass
class Record:
    sha: str
    subject: str
    data: dict[str, Any] | None  # None: the JSON block does not parse
    files: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """One key per job (or array task) the record records: ``123``,
        ``123_4``; for a sweep, each point's job id."""
        d = self.data or {}
        if "points" in d:
            return [str(p.get("slurm_job_id")) for p in d["points"]]
        job = str(d.get("slurm_job_id"))
        if d.get("array") and d.get("tasks"):
            return [f"{job}_{t.get('task_id')}" for t in d["tasks"]]
        return [job]

    @property
    def sweep_points(self) -> list[tuple[str, str, str, str]]:
        """(sweep root, point, case, state) of each point of a sweep record."""
        d = self.data or {}
        root = (d.get("sweep") or {}).get("root", "")
        return [(root, p.get("point"), p.get("case"), p.get("state"))
                for p in d.get("points", [])]


def run_records(ds: Path, with_files: bool = False) -> list[Record]:
    """Every ``[DATALAD SLURM RUN]`` commit reachable from HEAD, newest first."""
    out = git(ds, "log", "--format=%x02%H%x00%B%x01", *(["--name-only"] if with_files else []),
              "HEAD", check=False)
    found = []
    for chunk in out.split("\x02")[1:]:
        sha, _, rest = chunk.partition("\x00")
        message, _, names = rest.partition("\x01")
        if not message.startswith(SUBJECT):
            continue
        data = None
        if BEGIN in message and END in message:
            block = message.split(BEGIN, 1)[1].split(END, 1)[0]
            try:
                data = json.loads(block)
            except ValueError:
                data = None
        found.append(Record(sha=sha, subject=message.splitlines()[0], data=data,
                            files=[n for n in names.split("\n") if n.strip()]))
    return found


def recorded(ds: Path) -> Counter:
    """How many records each job key has in history."""
    counts: Counter = Counter()
    for rec in run_records(ds):
        counts.update(rec.keys)
    return counts


# -- what the backends ran ------------------------------------------------------------

def _local_job_files(ds: Path) -> dict[str, dict]:
    jobs_dir = ds / ".git" / "slurmsweep" / "local" / "jobs"
    found = {}
    for path in jobs_dir.glob("*.json") if jobs_dir.is_dir() else ():
        if path.name.endswith(".spec.json") or path.name.startswith("."):
            continue
        try:
            found[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            found[path.stem] = {"tasks": [], "unreadable": True}
    return found


def local_jobs(ds: Path) -> dict[str, str]:
    """Key -> state of every job (array task) the local backend was given."""
    found = {}
    for job_id, job in _local_job_files(ds).items():
        if job.get("array"):
            for task in job.get("tasks", []):
                found[f"{job_id}_{task.get('task_id')}"] = task.get("state", "?")
        else:
            tasks = job.get("tasks") or [{}]
            found[job_id] = tasks[0].get("state", "?")
    return found


def _squeue(ds: Path, every_state: bool = True) -> dict[str, str]:
    """Jobs the controller has for ``ds``: all it still remembers, or (as
    plain ``squeue`` lists them) those pending or running."""
    if not shutil.which("squeue"):
        return {}
    import getpass
    states = ["-t", "all"] if every_state else []
    proc = subprocess.run(["squeue", "-h", *states, "-u", getpass.getuser(), "-o", "%i|%T|%Z"],
                          capture_output=True, text=True)
    found = {}
    for line in proc.stdout.splitlines():
        job_id, _, rest = line.partition("|")
        state, _, workdir = rest.partition("|")
        if _inside(workdir, ds):
            found[job_id] = state
    return found


def _inside(workdir: str, ds: Path) -> bool:
    root = str(ds)
    return workdir == root or workdir.startswith(root + "/")


def slurm_jobs(ds: Path, since: float) -> dict[str, str]:
    """Key -> state of every Slurm job run from inside ``ds`` since ``since``
    (accounting, plus the controller for jobs accounting has not seen yet)."""
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since - 60))
    proc = subprocess.run(["sacct", "-X", "-n", "-P", "-S", start, "-o", "JobID,State,WorkDir"],
                          capture_output=True, text=True)
    found = {}
    for line in proc.stdout.splitlines():
        parts = line.split("|")
        if len(parts) >= 3 and _inside(parts[2], ds):
            found[parts[0]] = parts[1].split()[0]
    for job_id, state in _squeue(ds).items():
        found.setdefault(job_id, state)
    return found


# -- bookkeeping after a crash ---------------------------------------------------------

@dataclass
class Books:
    """Each job the backend ran against the records in history."""

    ran: dict[str, str]
    counts: Counter
    open: dict[str, str]

    @property
    def duplicated(self) -> dict[str, int]:
        return {k: n for k, n in self.counts.items() if n > 1}

    @property
    def lost(self) -> list[str]:
        """Jobs that ran but are neither recorded nor open: silently dropped."""
        return sorted(k for k in self.ran if self.counts[k] == 0 and not self._is_open(k))

    @property
    def phantom(self) -> list[str]:
        """Records of jobs the backend never had."""
        return sorted(k for k in self.counts if k not in self.ran)

    @property
    def still_open(self) -> list[str]:
        return sorted(self.open)

    def _is_open(self, key: str) -> bool:
        return key in self.open or key.split("_")[0] in self.open


def books(ds: Path, backend: str, since: float = 0.0) -> Books:
    ran = local_jobs(ds) if backend == "local" else slurm_jobs(ds, since)
    return Books(ran=ran, counts=recorded(ds), open=open_job_ids(ds))


def wait_for_orphaned_git(ds: Path, timeout: float = 60) -> None:
    """After a kill -9, until no git or git-annex it started still runs in
    ``ds``: an orphaned ``git fast-import`` can still write its ref after the
    command died, and a user's rerun comes after that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for proc in Path("/proc").iterdir():
            try:
                if (proc.name.isdigit() and (proc / "comm").read_text().strip()
                        in ("git", "git-annex") and Path(os.readlink(proc / "cwd")) == ds.resolve()):
                    busy = True
                    break
            except OSError:
                continue
        if not busy:
            return
        time.sleep(0.1)


def integrity(ds: Path, allow: Iterable[str] = ()) -> list[str]:
    """What a user would find wrong after the dust settled: a damaged
    repository, our refs or private index files left, anything untracked or
    staged (except paths under ``allow``)."""
    problems = []
    fsck = subprocess.run(["git", "fsck", "--no-dangling", "--no-progress"], cwd=ds,
                          capture_output=True, text=True)
    if fsck.returncode != 0 or fsck.stdout.strip():
        problems.append(f"git fsck --no-dangling: exit {fsck.returncode}: "
                        f"{_tail(fsck.stdout + fsck.stderr, 300)}")
    refs = git(ds, "for-each-ref", "--format=%(refname)", "refs/slurmsweep/").split()
    if refs:
        problems.append(f"refs left behind: {refs}")
    leftovers = sorted(p.name for p in (ds / ".git" / "slurmsweep").glob("index-*"))
    if leftovers:
        problems.append(f"private index files left in .git/slurmsweep: {leftovers}")
    litter = sorted(p.name for p in (ds / ".git").glob("slurmsweep-index-*"))
    if litter:
        problems.append(f"work copies of the user's index left in .git: {litter}")
    if (ds / ".git" / "index.lock").exists():
        problems.append(".git/index.lock left behind")
    annex = ds / ".git" / "annex"
    annex_litter = sorted(p.name for p in annex.glob("index*.slurmsweep-*"))
    if annex_litter:
        problems.append(f"work copies of git-annex's index left in .git/annex: {annex_litter}")
    allow = tuple(a.rstrip("/") for a in allow)
    status = [line for line in git(ds, "status", "--porcelain", "--untracked-files=all")
              .splitlines() if not any(line[3:] == a or line[3:].startswith(a + "/")
                                       for a in allow)]
    if status:
        problems.append(f"git status not clean: {status[:8]}")
    return problems


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cluster_problem() -> str | None:
    """Why the Slurm trials cannot run (None: the cluster answers)."""
    if shutil.which("sbatch") is None:
        return "Slurm is not installed"
    for argv in (["sinfo", "-h", "-o", "%T"], ["sacct", "-n", "-X", "-S", "now"]):
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            return f"{' '.join(argv)} failed: {proc.stderr.strip()}"
    return None


# -- datasets reused by many trials ---------------------------------------------------

def example_config() -> dict:
    import yaml
    return yaml.safe_load((MODEL / "slurm_config_setup.yaml").read_text())


def sweep_config(ds: Path, name: str, *, submission: str = "array",
                 cases: Iterable[str] = ("baseline",),
                 values: Iterable[float] = (2.0, 3.0, 4.0)) -> str:
    """A committed sweep configuration writing ``Run-Storage/<name>``; its
    dataset-relative path."""
    import yaml
    cfg = example_config()
    cfg["simulation"].update(output_name=f"../Run-Storage/{name}", submission=submission)
    cfg["simulation_cases"] = {c: {"config_file": f"simulation_config_{c}.json"} for c in cases}
    cfg["sweep_config"]["param_values"] = list(values)
    rel = f"model/{name}.yaml"
    write(ds / rel, yaml.safe_dump(cfg))
    git(ds, "add", rel)
    git(ds, "commit", "-q", "-m", f"sweep configuration {name}")
    return rel


def schedule_jobs(ds: Path, n: int, prefix: str, backend: str) -> list[str]:
    """``n`` jobs writing ``prefix/<i>``, scheduled through the Python API
    (setting a trial up is not what it tests); their job ids."""
    from datalad.api import Dataset
    dataset = Dataset(str(ds))
    ids = []
    for i in range(n):
        (res,) = dataset.slurm_schedule(
            ["sbatch", "job.sh", f"{prefix}/{i}"], outputs=[f"{prefix}/{i}"], backend=backend,
            result_renderer="disabled", on_failure="ignore", return_type="list")
        if res["status"] != "ok":
            raise RuntimeError(f"scheduling a job to set a trial up failed: {res['message']}")
        ids.append(res["slurm_job_id"])
    return ids


def run_sweep(ds: Path, config: str, backend: str) -> None:
    """Submit a sweep through the Python API."""
    from datalad.api import Dataset
    results = Dataset(str(ds)).slurm_sweep(config, backend=backend, result_renderer="disabled",
                                           on_failure="ignore", return_type="list")
    bad = [r for r in results if r["status"] not in ("ok", "notneeded")]
    if bad:
        raise RuntimeError(f"a sweep to set a trial up failed: {bad[0]['message']}")


def wait_all_ended(ds: Path, backend: str, since: float, timeout: float = 120) -> bool:
    """Wait until every job the backend has for ``ds`` has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ran = local_jobs(ds) if backend == "local" else slurm_jobs(ds, since)
        if all(state in TERMINAL for state in ran.values()):
            return True
        time.sleep(0.2)
    return False


class Bench:
    """A dataset that trials share while they leave it sound: a trial that
    fails spoils it, and the next trial gets a new one."""

    def __init__(self, workdir: Path, name: str, backend: str, *, annex: bool = True,
                 capacity: int = 10):
        self.workdir, self.name, self.backend = workdir, name, backend
        self.annex, self.capacity = annex, capacity
        self.path: Path | None = None
        self.made = 0
        self.used = 0
        self.since = 0.0
        self.serial = 0

    def get(self) -> Path:
        if self.path is not None and self.used >= self.capacity:
            self.spoil()
        if self.path is None:
            self.made += 1
            self.since = time.time()
            self.path = new_dataset(self.workdir / f"{self.name}-{self.made}", annex=self.annex,
                                    model=True, files={"job.sh": JOB}, backend=self.backend)
            self.used = 0
        self.used += 1
        self.serial += 1
        return self.path

    def spoil(self) -> None:
        if self.path is not None:
            remove_dataset(self.path)
        self.path = None

    close = spoil
