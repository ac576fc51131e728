import pytest


@pytest.fixture
def backend(slurm_cluster):
    """The backend the shared command suites run on in this directory."""
    return "slurm"
