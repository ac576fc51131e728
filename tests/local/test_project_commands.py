"""The shared project suite (tests/suites/project_commands.py) on the
local backend, chosen by this directory's backend fixture."""
from ..suites.project_commands import *  # noqa: F401,F403
