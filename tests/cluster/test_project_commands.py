"""The shared project suite (tests/suites/project_commands.py) on the
real Slurm cluster, chosen by this directory's backend fixture."""
import pytest

from ..suites.project_commands import *  # noqa: F401,F403

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]
