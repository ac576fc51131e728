"""The shared chunked-sweep suite (tests/suites/chunked_sweeps.py) on the
local backend, chosen by this directory's backend fixture."""
from ..suites.chunked_sweeps import *  # noqa: F401,F403
