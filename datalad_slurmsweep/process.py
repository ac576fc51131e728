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
import tempfile
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


class Feed:
    """A long-running command fed lines while we work (``--batch`` modes),
    so that it runs on the other core instead of after us. Its standard
    error goes to a file, not a pipe: a chatty command must not block on
    output we read only at the end. Leaving the ``with`` block closes its
    input, waits, and raises ``error`` if it failed."""

    def __init__(self, argv: list[str], *, cwd: str | Path,
                 env: Mapping[str, str] | None = None,
                 error: type[ProcessError] = ProcessError):
        self.argv = argv
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.error = error
        self.proc: subprocess.Popen | None = None
        self.stderr = tempfile.TemporaryFile()

    def __enter__(self) -> Feed:
        try:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env,
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=self.stderr)
        except (FileNotFoundError, PermissionError) as exc:
            raise self.error(f"{self.argv[0]} cannot be run ({exc.strerror})",
                             argv=self.argv) from None
        return self

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)

    def __exit__(self, *exc) -> None:
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        returncode = self.proc.wait()
        self.stderr.seek(0)
        stderr = self.stderr.read().decode(errors="replace").strip()
        self.stderr.close()
        if returncode != 0 and exc[0] is None:
            raise self.error(f"{_describe(self.argv)} failed (exit {returncode})"
                             + (f": {stderr}" if stderr else ""),
                             argv=self.argv, returncode=returncode, stderr=stderr)
