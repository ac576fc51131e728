"""The shared container and --alt-dir suite (tests/suites/runenv_commands.py)
on the cluster backend, chosen by this directory's backend fixture."""
import pytest  # noqa: E402

from ..suites.runenv_commands import *  # noqa: F401,F403

pytestmark = pytest.mark.slurm
