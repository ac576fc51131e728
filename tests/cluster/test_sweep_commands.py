"""The shared slurm-sweep suite (tests/suites/sweep_commands.py) on the
cluster backend, chosen by this directory's backend fixture."""
import pytest  # noqa: E402

from ..suites.sweep_commands import *  # noqa: F401,F403

pytestmark = pytest.mark.slurm
