"""Slurm's filename patterns (``--output``/``--error``): which symbols a
pattern holds and what it expands to. A ``%`` that starts no symbol is
literal, as in Slurm; ``%%`` is one literal ``%``."""
from __future__ import annotations

import re

# %% | %[width]code | %digits followed by no code (Slurm keeps the last digit).
_PATTERN = re.compile(r"%(?:(%)|([0-9]*)([AabjJxuNnst])|[0-9]*([0-9]))")
_MAX_WIDTH = 10  # Slurm pads to at most 10 digits
_NO_TASK = 4294967294  # what %a means in a job that is not an array (NO_VAL)


def pattern_codes(pattern: str) -> set[str]:
    """The replacement symbols (``j``, ``a``, ...) Slurm expands in
    ``pattern``; a ``%`` before anything else is literal, as in Slurm."""
    if "\\" in pattern:
        return set()
    return {m.group(3) for m in _PATTERN.finditer(pattern) if m.group(3)}


def expand_log_pattern(pattern: str, *, job_id: str, array_job_id: str | None,
                       task_id: int | None, job_name: str, user: str,
                       node: str | None = None) -> str:
    """A log file name from an ``--output``/``--error`` pattern.

    ``job_id`` is the (raw) id of the job or of the array task, as ``%j``
    means for Slurm. A backslash anywhere disables expansion, as in Slurm,
    which drops single backslashes and keeps one of each pair.
    """
    if "\\" in pattern:
        return re.sub(r"\\(\\?)", r"\1", pattern)
    task = _NO_TASK if task_id is None else task_id
    values = {"A": array_job_id or job_id, "a": str(task), "b": str(task % 10),
              "j": job_id, "J": job_id, "x": job_name, "u": user, "N": node or "",
              "n": "0", "s": "batch", "t": "0"}

    def substitute(match: re.Match) -> str:
        percent, width, code, digit = match.groups()
        if percent or digit:
            return percent or digit
        value = values[code]
        digits = width.lstrip("0")  # a width is a number, however many digits it has
        if digits and value.isdigit():
            value = value.zfill(_MAX_WIDTH if len(digits) > 2 else min(int(digits), _MAX_WIDTH))
        return value

    return _PATTERN.sub(substitute, pattern)
