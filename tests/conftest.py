"""Test fixtures. DataLad's own session fixture gives every test run a
temporary HOME and git identity."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from datalad.api import Dataset
from datalad.conftest import setup_package  # noqa: F401  (autouse, session)

from datalad_slurmsweep.slurm import SlurmBackend

IN_CI = os.environ.get("CI", "").lower() == "true"


def _cluster_problem() -> str | None:
    if shutil.which("sbatch") is None:
        return "Slurm is not installed (run: make cluster)"
    for argv in (["sinfo", "-h", "-o", "%T"], ["sacctmgr", "-n", "list", "cluster"]):
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            return f"{' '.join(argv)} failed: {proc.stderr.strip()} (run: make cluster)"
    return None


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local Slurm cluster. Skips when absent, but fails under CI."""
    problem = _cluster_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"the Slurm cluster is required under CI: {problem}")
        pytest.skip(problem)
    return SlurmBackend()


def make_dataset(path: Path, annex: bool = True, files: dict[str, str] | None = None) -> Dataset:
    ds = Dataset(path).create(annex=annex, result_renderer="disabled")
    for name, text in (files or {}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        if name.endswith(".sh"):
            target.chmod(0o755)
    if files:
        ds.save(message="add job files", result_renderer="disabled")
    return ds


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "ds")


def wait_terminal(job_ids: list[str], tasks: dict | None = None, timeout: float = 120,
                  backend=None, interval: float = 0.5) -> dict:
    """Poll the backend (default: the real cluster) until every job has ended."""
    backend = backend or SlurmBackend()
    deadline = time.monotonic() + timeout
    while True:
        statuses = backend.query(job_ids, tasks or {})
        if all(s.state.is_terminal for s in statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs still running after {timeout}s: "
                                 f"{ {j: s.state for j, s in statuses.items()} }")
        time.sleep(interval)


def git(ds: Dataset, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ds.path, capture_output=True,
                          text=True, check=True).stdout


def commit_count(ds: Dataset) -> int:
    return int(git(ds, "rev-list", "--count", "HEAD").strip())


def api(ds: Dataset, name: str, *args, **kwargs) -> list[dict]:
    """Call a command through the Python API and return all its results."""
    kwargs.setdefault("result_renderer", "disabled")
    kwargs.setdefault("on_failure", "ignore")
    kwargs.setdefault("return_type", "list")
    return getattr(ds, name)(*args, **kwargs)


def records(ds: Dataset) -> list:
    """(commit, parsed run record) of every record in history, newest first."""
    from datalad_slurmsweep.record import parse_record
    found = []
    for entry in git(ds, "log", "--format=%H%x00%B%x01").split("\x01"):
        if "\x00" in entry:
            sha, msg = entry.strip().split("\x00", 1)
            rec = parse_record(msg)
            if rec:
                found.append((sha, rec))
    return found
