"""Named points where the crash-safety tests kill a command with SIGKILL.

Set ``DATALAD_SLURMSWEEP_KILL_AT=<name>``; the process then dies at that point
exactly as ``kill -9`` would. Costs one environment lookup otherwise.
"""
from __future__ import annotations

import os
import signal

from .settings import KILL_AT


def crashpoint(name: str) -> None:
    if os.environ.get(KILL_AT.env) == name:
        os.kill(os.getpid(), signal.SIGKILL)
