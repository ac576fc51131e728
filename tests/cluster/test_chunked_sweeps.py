"""The shared chunked-sweep suite (tests/suites/chunked_sweeps.py) on the
cluster backend, chosen by this directory's backend fixture."""
import pytest  # noqa: E402

from ..suites.chunked_sweeps import *  # noqa: F401,F403

pytestmark = pytest.mark.slurm
