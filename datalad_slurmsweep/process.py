"""The one way this package runs a subprocess.

Argument lists only, never a shell; the result is checked here, so that a
failure becomes a :class:`~datalad_slurmsweep.errors.ProcessError` (or the
subclass the caller names) carrying the command and its stderr, instead of a
``CalledProcessError`` traceback or an unchecked return code.
"""
from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .errors import ProcessError


def _describe(argv: list[str]) -> str:
    shown = shlex.join(argv[:4]) + (" ..." if len(argv) > 4 else "")
    return shown


def run(argv: list[str], *, cwd: str | Path | None = None, input: bytes | None = None,
        env: Mapping[str, str] | None = None, check: bool = True,
        error: type[ProcessError] = ProcessError,
        missing_hint: str = "") -> subprocess.CompletedProcess:
    """Run ``argv`` with captured bytes output.

    With ``check``, a non-zero exit raises ``error`` whose message names the
    command and quotes its stderr; a command that is not installed raises it
    whatever ``check`` says, with ``missing_hint`` appended.
    """
    try:
        proc = subprocess.run(argv, cwd=cwd, input=input,
                              env=dict(env) if env is not None else None,
                              capture_output=True, check=False)
    except (FileNotFoundError, PermissionError) as exc:
        raise error(f"{argv[0]} cannot be run ({exc.strerror}){missing_hint}",
                    argv=argv) from None
    if check and proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()
        raise error(f"{_describe(argv)} failed (exit {proc.returncode})"
                    + (f": {stderr}" if stderr else ""),
                    argv=argv, returncode=proc.returncode, stderr=stderr)
    return proc


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with ``pid`` exists (another user's too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def output(argv: list[str], **kwargs) -> str:
    """The decoded standard output of a checked run."""
    return run(argv, **kwargs).stdout.decode(errors="replace")
