"""slurm-reschedule --only-failed with more resources: the next attempt of
a recorded failed point, grown as a sweep's retry policy would grow it
(``retry.py``), from what the record says the failed attempt asked for."""
from __future__ import annotations

from ..backends.base import JobState, Resources, TaskStatus
from ..backends.sbatch import script_directives
from ..errors import RescheduleError, SlurmsweepError
from .retry import Attempt, Request, Retrying, RetryPolicy, grown


def _first_request(script_text: str, where: str) -> Request:
    """What the point's committed batch script asks for (``where``: its
    ``commit:path``, for messages)."""
    try:
        options = script_directives(script_text, where)
    except SlurmsweepError as exc:
        raise RescheduleError(f"cannot read {where}: {exc}") from None
    ntasks = int(options.get("ntasks") or 1) if str(options.get("ntasks") or 1).isdigit() else 1
    per_cpu = options.get("mem-per-cpu") or ""
    mem = (int(per_cpu.rstrip("M")) * ntasks / 1024
           if per_cpu.endswith("M") and per_cpu[:-1].isdigit() else None)
    return Request(time=options.get("time"), mem=mem, ntasks=ntasks)


def _task(point: dict) -> TaskStatus:
    used = point.get("resources") or {}
    return TaskStatus(raw_id=str(point.get("raw_id") or ""), task_id=point.get("task_id"),
                      state=JobState.parse(str(point.get("state") or "UNKNOWN")),
                      node=point.get("node"),
                      resources=Resources(time_limit_s=used.get("time_limit_s"),
                                          req_mem_bytes=used.get("req_mem_bytes")))


def next_attempt(commit: str, point: dict, script_text: str,
                 policy: RetryPolicy) -> tuple[list[str], Retrying] | str:
    """The sbatch options and retry state of a recorded failed point's next
    attempt, or why it cannot get more than it had. ``script_text``: the
    point's batch script as ``commit`` holds it."""
    first = _first_request(script_text, f"{commit[:10]}:{point['script']}")
    history = [Attempt(**a) for a in point.get("attempts") or []]
    if history:
        last = history[-1]
        now = Request(last.time, last.mem, first.ntasks, list(last.exclude))
    else:
        now = first
        used = point.get("resources") or {}
        history = [Attempt(slurm_job_id=str(point.get("slurm_job_id")),
                           state=str(point.get("state")), time=now.time, mem=now.mem,
                           exclude=[], elapsed_s=used.get("elapsed_s"),
                           max_rss_bytes=used.get("max_rss_bytes"), node=point.get("node"))]
    request, why = grown(policy, now, _task(point))
    if why:
        return why
    # One more attempt, by hand: no automatic retry follows it.
    once = RetryPolicy(**{**policy.__dict__, "attempts": len(history) + 1})
    return request.sbatch_options(), Retrying(once, request, history)
