import pytest


@pytest.fixture
def backend():
    """The backend the shared command suites run on in this directory."""
    return "local"
