"""Fixtures shared by every test directory.

``tests/unit`` needs neither Slurm nor the local backend's runners,
``tests/local`` runs jobs on the local backend, and ``tests/cluster`` on the
real single-node Slurm cluster (marked ``slurm``). DataLad's own session
fixture gives every test run a temporary HOME and git identity.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from datalad.conftest import setup_package  # noqa: F401  (autouse, session)

from datalad_slurmsweep.backends.slurm import SlurmBackend

from .helpers import make_dataset, model_dataset

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


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "ds")


@pytest.fixture
def model_ds(tmp_path):
    return model_dataset(tmp_path / "ds")


def pytest_collection_modifyitems(config, items):
    """Tests that restart the shared cluster run last, so that a restart
    never lands in the middle of another test's jobs."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_cluster") is not None)
