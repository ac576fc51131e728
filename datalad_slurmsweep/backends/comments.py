"""Carrying our recovery token in a job's Slurm comment.

The token must reach Slurm whatever the user wrote: their ``--comment`` on
the command line or in an ``#SBATCH`` line is kept, and the token is added
as a word of its own. sbatch lets the last of repeated options win and the
command line win over the script, so one ``--comment`` placed right before
the script carries both.
"""
from __future__ import annotations

from pathlib import Path

from .sbatch import effective_options, parse_sbatch_argv


def user_comment(sbatch_argv: list[str], cwd: Path) -> str | None:
    """The comment the user gave the job, on the command line or in the script."""
    call = parse_sbatch_argv(list(sbatch_argv[1:]))
    text, source = None, None
    if call.script is not None:
        source = str(Path(cwd) / call.script)
        try:
            text = Path(source).read_text(errors="replace")
        except OSError:
            text = None  # sbatch will say that the script is missing
    return effective_options(call, text, source=source).get("comment") or None


def with_token(sbatch_argv: list[str], cwd: Path, token: str) -> list[str]:
    """``sbatch_argv`` with a ``--comment`` holding the user's comment and ``token``."""
    user = user_comment(sbatch_argv, cwd)
    option = f"--comment={user} {token}" if user else f"--comment={token}"
    call = parse_sbatch_argv(list(sbatch_argv[1:]))
    if call.script is None:
        return [*sbatch_argv, option]
    position = len(sbatch_argv) - len(call.script_args) - 1
    if sbatch_argv[position - 1] == "--":
        position -= 1
    return [*sbatch_argv[:position], option, *sbatch_argv[position:]]
