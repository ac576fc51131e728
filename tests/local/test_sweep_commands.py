"""The shared slurm-sweep suite (tests/suites/sweep_commands.py) on the
local backend, chosen by this directory's backend fixture."""
from ..suites.sweep_commands import *  # noqa: F401,F403
