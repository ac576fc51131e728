"""The one place that talks to Slurm: submit, batched status, parsing.

Status is always asked for all jobs of interest at once: one ``sacct`` call
whatever their number (about 90 ms here), which also brings the resource
figures (backends/usage.py), with one ``scontrol`` call as the
fallback when accounting is disabled or lags behind. A job that neither knows
is LOST, never COMPLETED.
"""
from __future__ import annotations

import logging
import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from .. import process
from ..errors import SlurmError, SlurmUnavailableError
from .base import (
    TOKEN,
    CommentLookup,
    JobId,
    JobState,
    JobStatus,
    TaskStatus,
    assemble,
    base_ids,
)
from .comments import with_token
from .usage import USAGE_FIELDS, from_sacct, from_scontrol, step_peaks

lgr = logging.getLogger("datalad.slurmsweep.slurm")
# How long a finish waits for accounting to record a job the controller
# already knows ended (sacct lags by 1-2 s here), to get its usage figures.
SETTLE = 4.0

SACCT_FIELDS = ("JobID", "JobIDRaw", "JobName", "State", "ExitCode",
                "Start", "End", "Submit", "NodeList")


def _clean_time(value: str) -> str | None:
    return None if value in ("", "Unknown", "None", "N/A") else value


def _exit_code(value: str) -> tuple[int | None, int | None]:
    code, _, sig = value.partition(":")
    try:
        return int(code), int(sig or 0)
    except ValueError:
        return None, None


def _task_ids(spec: str) -> list[int] | None:
    """``5`` -> [5]; ``[5-7,9%2]`` -> [5, 6, 7, 9]; not a task spec -> None."""
    spec = spec.strip("[]")
    spec = re.sub(r"%\d+$", "", spec)
    ids: list[int] = []
    for part in spec.split(","):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            return None
        ids.extend(range(int(first), int(last or first) + 1))
    return ids


def _sacct_rows(text: str) -> list[dict[str, str]]:
    """Each line as a mapping; the usage columns are optional (older
    recordings and callers ask for the status columns only)."""
    rows = []
    names = SACCT_FIELDS + USAGE_FIELDS
    for line in text.splitlines():
        if not line.strip():
            continue
        cols = line.split("|")
        if len(cols) < len(SACCT_FIELDS):
            raise SlurmError(f"unexpected sacct output line: {line!r}")
        rows.append(dict(zip(names, cols, strict=False)))
    return rows


def parse_sacct(text: str) -> dict[str, list[TaskStatus]]:
    """Rows of ``sacct -n -P -o SACCT_FIELDS,USAGE_FIELDS`` grouped by
    scheduled job id; step rows (``.batch``, ``.extern``, ``.0``) are folded
    into their task's resource figures."""
    found: dict[str, list[TaskStatus]] = {}
    rows = _sacct_rows(text)
    peaks = step_peaks(rows)
    for row in rows:
        jobid = row["JobID"]
        if "." in jobid:
            continue
        base, _, task = jobid.partition("_")
        base = base.split("+", 1)[0]
        code, sig = _exit_code(row["ExitCode"])
        state = JobState.parse(row["State"])
        common = dict(state=state, exit_code=code, signal=sig,
                      start=_clean_time(row["Start"]), end=_clean_time(row["End"]),
                      node=row["NodeList"] if row["NodeList"] not in ("", "None assigned") else None,
                      name=row["JobName"])
        tasks = found.setdefault(base, [])
        if not task:
            tasks.append(TaskStatus(raw_id=row["JobIDRaw"], task_id=None,
                                    resources=from_sacct(row, peaks.get(jobid)), **common))
            continue
        ids = _task_ids(task)
        if ids is None:
            raise SlurmError(f"unexpected sacct job id: {jobid!r}")
        if len(ids) == 1 and not task.startswith("["):
            tasks.append(TaskStatus(raw_id=row["JobIDRaw"], task_id=ids[0],
                                    resources=from_sacct(row, peaks.get(jobid)), **common))
        else:
            # Tasks not yet started are one row with a range; their own raw
            # ids do not exist yet.
            tasks.extend(TaskStatus(raw_id="", task_id=i, **common) for i in ids)
    return found


_KV = re.compile(r"(\w+)=(\S*)")


def parse_scontrol_jobs(text: str) -> dict[str, list[TaskStatus]]:
    """Output of ``scontrol -o show job`` (one job per line)."""
    found: dict[str, list[TaskStatus]] = {}
    for line in text.splitlines():
        if not line.startswith("JobId="):
            continue
        kv = dict(_KV.findall(line))
        raw = kv["JobId"]
        base = kv.get("ArrayJobId") or raw
        code, sig = _exit_code(kv.get("ExitCode", ""))
        node = kv.get("NodeList")
        common = dict(state=JobState.parse(kv.get("JobState", "FAILED")),
                      exit_code=code, signal=sig,
                      start=_clean_time(kv.get("StartTime", "")),
                      end=_clean_time(kv.get("EndTime", "")),
                      node=None if node in (None, "", "(null)") else node,
                      name=kv.get("JobName"))
        tasks = found.setdefault(base, [])
        task = kv.get("ArrayTaskId")
        if task is None:
            tasks.append(TaskStatus(raw_id=raw, task_id=None, resources=from_scontrol(kv),
                                    **common))
            continue
        ids = _task_ids(task) or []
        if len(ids) == 1:
            tasks.append(TaskStatus(raw_id=raw, task_id=ids[0], resources=from_scontrol(kv),
                                    **common))
        else:
            tasks.extend(TaskStatus(raw_id="", task_id=i, **common) for i in ids)
    return found


def parse_parsable(stdout: str) -> JobId:
    """The job id from ``sbatch --parsable`` (``123`` or ``123;cluster``)."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    if not lines:
        raise SlurmError("sbatch --parsable printed no job id")
    job_id = lines[-1].split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise SlurmError(f"sbatch --parsable printed {lines[-1]!r}, not a job id")
    return JobId(job_id)


_MISSING = ("; is this a Slurm cluster? (for a local one: 'sudo tools/local-slurm "
            "start', or use the local backend)")


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a Slurm command; its exit code is the caller's to judge, because
    Slurm's refusals are answers (sbatch's message is the user's error)."""
    proc = process.run(argv, check=False, error=SlurmUnavailableError,
                       missing_hint=_MISSING, **kwargs)
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode(errors="replace"),
                                       proc.stderr.decode(errors="replace"))


class SlurmBackend:
    """Slurm through its command-line tools."""

    name = "slurm"

    def submit(self, sbatch_argv: list[str], cwd: Path, env: Mapping[str, str] | None = None,
               comment: str | None = None) -> JobId:
        """Submit ``sbatch OPTIONS...`` and return the job id.

        ``comment`` (our recovery token) is appended to the job's comment as
        a word of its own, after the user's comment from the command line or
        the script's ``#SBATCH`` lines, so that an interrupted submission
        can be found again whatever the user set.
        """
        if not sbatch_argv or sbatch_argv[0] != "sbatch":
            raise SlurmError("the command must start with 'sbatch'")
        argv = with_token(sbatch_argv, cwd, comment) if comment else list(sbatch_argv)
        proc = _run(["sbatch", "--parsable", *argv[1:]], cwd=cwd,
                    env=dict(env) if env is not None else None)
        if proc.returncode != 0:
            raise SlurmError(proc.stderr.strip() or proc.stdout.strip()
                             or f"sbatch exited with {proc.returncode}")
        return parse_parsable(proc.stdout)

    def query(self, job_ids: list[JobId],
              expected_tasks: Mapping[JobId, list[int] | None] | None = None
              ) -> dict[JobId, JobStatus]:
        """The status of every job in ``job_ids``, in one sacct call."""
        expected_tasks = expected_tasks or {}
        if not job_ids:
            return {}
        proc = self._sacct(job_ids)
        if proc.returncode == 0:
            rows = parse_sacct(proc.stdout)
            statuses = assemble(job_ids, rows, expected_tasks, "sacct")
            # Accounting lags behind the controller by a moment after
            # submission: ask the controller about jobs sacct does not know.
            missing = [j for j, s in statuses.items()
                       if any(t.state is JobState.LOST for t in s.tasks)]
            if missing:
                statuses.update(self._query_controller(missing, expected_tasks, rows))
                self._settle(statuses, expected_tasks)
            return statuses
        if "accounting storage is disabled" in proc.stderr.lower() or \
                "slurmdbd" in proc.stderr.lower():
            lgr.debug("sacct unavailable (%s), asking scontrol", proc.stderr.strip())
            return self._query_controller(job_ids, expected_tasks, {})
        raise SlurmError(f"sacct failed: {proc.stderr.strip()}")

    def _sacct(self, job_ids: list[JobId]) -> subprocess.CompletedProcess:
        # Without -X: MaxRSS is only on the step rows, folded in by parse_sacct.
        return _run(["sacct", "-n", "-P", "--delimiter=|",
                     "-o", ",".join(SACCT_FIELDS + USAGE_FIELDS),
                     "-j", ",".join(base_ids(job_ids))])

    def _settle(self, statuses: dict[JobId, JobStatus], expected_tasks) -> None:
        """Jobs that ended so recently that only the controller knows it
        would be recorded without their usage (scontrol has none): give
        accounting up to SETTLE seconds to catch up, then take its rows."""
        ended = [j for j, s in statuses.items() if s.source == "scontrol" and
                 s.state.is_terminal and s.state is not JobState.LOST]
        deadline = time.monotonic() + SETTLE
        while ended and time.monotonic() < deadline:
            time.sleep(0.5)
            proc = self._sacct(ended)
            if proc.returncode != 0:
                return
            settled = assemble(ended, parse_sacct(proc.stdout), expected_tasks, "sacct")
            for job_id, status in settled.items():
                if all(t.state.is_terminal and t.state is not JobState.LOST
                       for t in status.tasks):
                    statuses[job_id] = status
            ended = [j for j in ended if statuses[j].source == "scontrol"]

    def _query_controller(self, job_ids: list[JobId], expected_tasks,
                          known_rows) -> dict[JobId, JobStatus]:
        proc = _run(["scontrol", "-o", "show", "job"])
        if proc.returncode != 0:
            raise SlurmError(f"scontrol show job failed: {proc.stderr.strip()}")
        rows = parse_scontrol_jobs(proc.stdout)
        merged = {}
        for j in base_ids(job_ids):
            by_task = {t.task_id: t for t in known_rows.get(j, [])}
            by_task.update({t.task_id: t for t in rows.get(j, [])})
            merged[j] = list(by_task.values())
        return assemble(job_ids, merged, expected_tasks, "scontrol")

    def find_by_comments(self, comments: Mapping[str, float]) -> CommentLookup:
        """Job ids per recovery token, from the controller and then from
        accounting (which still knows jobs the controller purged after
        MinJobAge). ``comments`` maps each token to when it was reserved."""
        proc = _run(["scontrol", "-o", "show", "job"])
        if proc.returncode != 0:
            raise SlurmError(f"scontrol show job failed: {proc.stderr.strip()}")
        found: dict[str, set[str]] = {}
        for line in proc.stdout.splitlines():
            for token in set(TOKEN.findall(line)) & set(comments):
                kv = dict(_KV.findall(line))
                found.setdefault(token, set()).add(kv.get("ArrayJobId") or kv["JobId"])
        missing = {t: at for t, at in comments.items() if t not in found}
        unknown: set[str] = set()
        if missing:
            self._find_in_accounting(missing, found)
            unknown = self._undecidable({t: at for t, at in missing.items() if t not in found})
        return CommentLookup({c: sorted(ids, key=lambda j: (len(j), j))
                              for c, ids in found.items()}, unknown)

    def _find_in_accounting(self, missing: Mapping[str, float],
                            found: dict[str, set[str]]) -> None:
        start = time.strftime("%Y-%m-%dT%H:%M:%S",
                              time.localtime(min(missing.values()) - 3600))
        proc = _run(["sacct", "-X", "-n", "-P", "--delimiter=|", "-o", "JobID,Comment",
                     "-S", start])
        if proc.returncode != 0:
            raise SlurmError(f"sacct failed: {proc.stderr.strip()}")
        for line in proc.stdout.splitlines():
            job_id, _, text = line.partition("|")
            for token in set(TOKEN.findall(text)) & set(missing):
                found.setdefault(token, set()).add(job_id.split("_", 1)[0])

    def _undecidable(self, missing: Mapping[str, float]) -> set[str]:
        """Tokens whose absence proves nothing: the controller forgets jobs
        after MinJobAge, and accounting keeps comments only with
        AccountingStoreFlags=job_comment."""
        if not missing:
            return set()
        config = _run(["scontrol", "show", "config"]).stdout
        if re.search(r"^AccountingStoreFlags\s*=.*job_comment", config, re.M | re.I):
            return set()
        match = re.search(r"^MinJobAge\s*=\s*(\d+)", config, re.M)
        min_age = int(match.group(1)) if match else 300
        now = time.time()
        return {t for t, at in missing.items() if now - at > min_age / 2}

    def check_resources(self, options: list[str], cwd: Path) -> None:
        """Ask Slurm whether a job with ``options`` could run, submitting nothing."""
        proc = _run(["sbatch", "--test-only", *options, "--wrap=true"], cwd=cwd)
        if proc.returncode != 0:
            raise SlurmError(proc.stderr.strip() or "sbatch --test-only failed")

    def version(self) -> str:
        proc = _run(["sbatch", "--version"])
        return proc.stdout.strip() or "unknown"

    def max_array_size(self) -> int:
        proc = _run(["scontrol", "show", "config"])
        match = re.search(r"^MaxArraySize\s*=\s*(\d+)", proc.stdout, re.M)
        return int(match.group(1)) if match else 1001
