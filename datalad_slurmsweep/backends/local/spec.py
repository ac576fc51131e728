"""What a local job asks for: an sbatch command line, checked as sbatch would
check it, turned into the :class:`LocalJobSpec` that the runner follows."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ...errors import SbatchArgumentError, SlurmError
from .. import sbatch as sa
from ..base import JobId
from ..usage import parse_size
from .state import LocalJob

_DEPENDENCY_KINDS = ("after", "afterany", "afterok", "afternotok")
_REFUSED = {"hold": "--hold", "wait": "--wait", "input": "--input", "i": "-i"}
_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")


def parse_time_limit(text: str) -> int | None:
    """Seconds of a Slurm ``--time`` value; None means no limit."""
    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "-1"):
        return None
    match = _TIME.fullmatch(text)
    if not match:
        raise SlurmError(
            f"sbatch: error: Invalid --time specification {text!r}: use MM, MM:SS, "
            "HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED")
    days, *rest = match.groups()
    parts = [int(p) for p in rest if p is not None]
    # Without days, one number is minutes and two are MM:SS; else HH[:MM[:SS]].
    units = (3600, 60, 1) if days or len(parts) == 3 else (60, 1)
    seconds = int(days or 0) * 86400 + sum(p * u for p, u in zip(parts, units, strict=False))
    return seconds or None  # as in Slurm, zero means no limit


def parse_dependency(text: str) -> list[tuple[str, str]]:
    """``afterok:1:2,afterany:3_4`` -> [(kind, job id), ...]."""
    deps = []
    for item in text.split(","):
        kind, _, ids = item.partition(":")
        words = ids.split(":")
        if kind not in _DEPENDENCY_KINDS or not all(re.fullmatch(r"\d+(_\d+)?", w) for w in words):
            raise SlurmError(
                f"sbatch: error: --dependency={text}: the local backend understands "
                f"{', '.join(_DEPENDENCY_KINDS)} with job ids (ID or ID_TASK), "
                "separated by ':' and ','")
        deps.extend((kind, w) for w in words)
    return deps


# The runner inherits the submission environment; this variable carries the
# job's own PYTHONPATH past the entry the runner needs to import this package.
ORIGINAL_PYTHONPATH = "DATALAD_SLURMSWEEP_RUNNER_PYTHONPATH"
NO_PYTHONPATH = "<unset by datalad-slurmsweep>"

@dataclass
class LocalJobSpec:
    """A validated submission: everything the runner needs but the script.

    ``env`` is the submission environment; the runner removes it from the
    file on disk as soon as it has read it.
    """

    cwd: str
    workdir: str
    name: str
    comment: str | None
    args: list[str]
    shebang: str
    tasks: list[int] | None  # None: not an array
    throttle: int | None
    time_limit: int | None  # seconds
    dependency: list[tuple[str, str]]  # (kind, job id as text)
    output: str
    error: str | None
    open_mode: str
    ntasks: int
    cpus_per_task: int | None
    partition: str
    workers: int
    env: dict[str, str] | None
    mem_bytes: int | None = None  # --mem, for the resource figures only

    @property
    def task_ids(self) -> list[int | None]:
        return list(self.tasks) if self.tasks is not None else [None]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LocalJobSpec:
        data: dict[str, Any] = json.loads(text)
        data["dependency"] = [(kind, dep) for kind, dep in data["dependency"]]
        return cls(**data)


class Submission(NamedTuple):
    spec: LocalJobSpec
    script: str  # the text to run, copied at submission as Slurm does
    test_only: bool


@dataclass
class _Call:
    """An sbatch command line and its script, read but not yet judged."""

    call: sa.SbatchCall
    script: str
    opts: dict[str, str | None]
    tasks: list[int] | None


def _read_call(argv: list[str], cwd: Path) -> _Call:
    try:
        call = sa.parse_sbatch_argv(argv)
        if call.wrap is not None:
            if call.script is not None:
                raise SbatchArgumentError("Script arguments not permitted with --wrap option")
            text = f"#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{call.wrap}\n"
        else:
            try:
                text = (cwd / call.script).read_text(errors="replace")
            except OSError:
                raise SbatchArgumentError(f"Unable to open file {call.script}") from None
            if not text.startswith("#!"):
                raise SbatchArgumentError(
                    f"{call.script} does not look like a batch script: its first line "
                    "must start with #! followed by the path to an interpreter")
        opts = sa.effective_options(call, None if call.wrap is not None else text)
        tasks = sa.parse_array_spec(opts["array"]) if opts.get("array") is not None else None
    except SbatchArgumentError as exc:
        raise SlurmError(f"sbatch: error: {exc}") from None
    return _Call(call, text, opts, tasks)


def _throttle(opts: Mapping[str, str | None], tasks: list[int] | None,
              max_array_size: int) -> int | None:
    if tasks is None:
        return None
    array = opts["array"] or ""
    match = re.search(r"%(\d+)$", array.strip())
    throttle = int(match.group(1)) if match else None
    if throttle == 0 or tasks[-1] >= max_array_size:
        raise SlurmError(
            f"sbatch: error: Batch job submission failed: Invalid job array "
            f"specification --array={array} (task ids must be below "
            f"{max_array_size}, a throttle above 0)")
    return throttle


def _requested_memory(opts: Mapping[str, str | None], cpus: int) -> int | None:
    """--mem or --mem-per-cpu in bytes; a bare number is MB, as for sbatch."""
    for key, factor in (("mem", 1), ("mem-per-cpu", cpus)):
        text = (opts.get(key) or "").strip()
        size = parse_size(text + "M" if text.isdigit() else text)
        if size is not None:
            return size * factor
    return None


def _count(opts: Mapping[str, str | None], key: str) -> int | None:
    value = opts.get(key)
    if value is not None and (not value.isdigit() or int(value) < 1):
        raise SlurmError(f"sbatch: error: invalid --{key}={value}")
    return int(value) if value else None


def _dependencies(text: str | None,
                  read: Callable[[str], LocalJob | None]) -> list[tuple[str, str]]:
    deps = parse_dependency(text) if text else []
    for _, dep in deps:
        wanted = JobId.parse(dep)
        job = read(wanted.base)
        if job is None or (wanted.task is not None
                           and wanted.task not in [t.task_id for t in job.tasks]):
            raise SlurmError("sbatch: error: Batch job submission failed: "
                             f"Job dependency problem (no job {dep})")
    return deps


def validate_submission(sbatch_argv: list[str], cwd: Path, env: Mapping[str, str] | None,
                        comment: str | None, *, workers: int, max_array_size: int,
                        read: Callable[[str], LocalJob | None]) -> Submission:
    """Check ``sbatch ...`` as sbatch would; nothing is recorded and nothing runs.

    ``read`` looks up an existing job by id, to check dependencies.
    """
    if not sbatch_argv or sbatch_argv[0] != "sbatch":
        raise SlurmError("the command must start with 'sbatch'")
    cwd = Path(cwd).absolute()
    parsed = _read_call(sbatch_argv[1:], cwd)
    call, opts, tasks = parsed.call, parsed.opts, parsed.tasks
    for key, shown in _REFUSED.items():
        if key in opts:
            raise SlurmError(f"sbatch: error: {shown} is not supported by the local backend")
    if (opts.get("export") or "ALL").upper() != "ALL":
        raise SlurmError("sbatch: error: the local backend supports only --export=ALL")
    throttle = _throttle(opts, tasks, max_array_size)
    ntasks, cpus_per_task = _count(opts, "ntasks"), _count(opts, "cpus-per-task")
    open_mode = opts.get("open-mode") or "truncate"
    if open_mode not in ("truncate", "append"):
        raise SlurmError(f"sbatch: error: invalid --open-mode={open_mode}")
    deps = _dependencies(opts.get("dependency"), read)
    time_limit = parse_time_limit(opts["time"]) if opts.get("time") else None
    spec = LocalJobSpec(
        cwd=str(cwd), workdir=str(cwd / (opts.get("chdir") or ".")),
        name=opts.get("job-name") or (Path(call.script).name if call.script else "wrap"),
        comment=" ".join(c for c in (opts.get("comment"), comment) if c) or None,
        args=call.script_args,
        shebang=parsed.script.splitlines()[0], tasks=tasks, throttle=throttle,
        time_limit=time_limit, dependency=deps,
        output=opts.get("output") or (sa.DEFAULT_ARRAY_OUTPUT if tasks else sa.DEFAULT_OUTPUT),
        error=opts.get("error"), open_mode=open_mode, ntasks=ntasks or 1,
        cpus_per_task=cpus_per_task, partition=opts.get("partition") or "local",
        workers=workers, env=dict(os.environ if env is None else env),
        mem_bytes=_requested_memory(opts, (ntasks or 1) * (cpus_per_task or 1)))
    return Submission(spec, parsed.script, "test-only" in opts)
