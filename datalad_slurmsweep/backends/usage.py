"""Resource figures from sacct and scontrol: elapsed time, CPU time, peak
memory against what the job requested (``seff``'s figures).

sacct prints MaxRSS only on the step rows (``.batch``, ``.extern``,
numbered steps), and only once accounting sampled the step: a job shorter
than JobAcctGatherFrequency may have none. The steps are folded into their
task, and a figure nobody printed is left None and named in ``unknown``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from .base import Resources

# The resource columns requested after the status columns, in one sacct call.
USAGE_FIELDS = ("ElapsedRaw", "TotalCPU", "MaxRSS", "ReqMem", "AllocCPUS", "TimelimitRaw")

_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4, "P": 1024 ** 5}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([KMGTP]?)([nc]?)", re.I)
_DURATION = re.compile(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)")


def parse_size(text: str, cpus: int | None = None) -> int | None:
    """``200M`` -> bytes; ``4000Mc`` (older Slurm: per CPU) times ``cpus``;
    empty or ``0`` (no limit) -> None."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        return None
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if match.group(3).lower() == "c":
        if not cpus:
            return None
        value *= cpus
    return int(value) or None


def parse_duration(text: str) -> float | None:
    """sacct's ``[DD-][HH:]MM:SS[.mmm]`` and scontrol's ``[DD-]HH:MM:SS`` in seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        return None
    days, hours, minutes, seconds = match.groups()
    return round(int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes) * 60
                 + float(seconds), 3)


def _int(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def step_peaks(rows: list[Mapping[str, str]]) -> dict[str, int]:
    """The largest MaxRSS of each allocation's steps, keyed by the allocation's JobID."""
    peaks: dict[str, int] = {}
    for row in rows:
        allocation, dot, _ = row["JobID"].partition(".")
        rss = parse_size(row.get("MaxRSS", "")) if dot else None
        if rss is not None:
            peaks[allocation] = max(rss, peaks.get(allocation, 0))
    return peaks


def from_sacct(row: Mapping[str, str], peak: int | None) -> Resources:
    """The figures of one allocation row; ``peak`` is its steps' MaxRSS."""
    if "ElapsedRaw" not in row:
        return Resources().completed()
    cpus = _int(row["AllocCPUS"])
    limit = _int(row["TimelimitRaw"])  # minutes, or UNLIMITED
    elapsed = _int(row["ElapsedRaw"])
    own_rss = parse_size(row["MaxRSS"])
    return Resources(
        elapsed_s=float(elapsed) if elapsed is not None else None,
        total_cpu_s=parse_duration(row["TotalCPU"]),
        max_rss_bytes=max(filter(None, (own_rss, peak)), default=None),
        req_mem_bytes=parse_size(row["ReqMem"], cpus), alloc_cpus=cpus,
        time_limit_s=limit * 60 if limit is not None else None).completed()


def from_scontrol(kv: Mapping[str, str]) -> Resources:
    """What the controller knows: the request and the run time, never the use."""
    cpus = _int(kv.get("NumCPUs", ""))
    tres = dict(part.partition("=")[::2] for part in kv.get("TRES", "").split(",") if part)
    return Resources(
        elapsed_s=parse_duration(kv.get("RunTime", "")),
        req_mem_bytes=parse_size(tres.get("mem", "")), alloc_cpus=cpus,
        time_limit_s=_limit_seconds(kv.get("TimeLimit", ""))).completed()


def _limit_seconds(text: str) -> int | None:
    seconds = parse_duration(text)
    return int(seconds) if seconds is not None else None
