"""The shared container and --alt-dir suite (tests/suites/runenv_commands.py)
on the local backend, chosen by this directory's backend fixture."""
from ..suites.runenv_commands import *  # noqa: F401,F403
