"""Validating and submitting one job, shared by slurm-schedule,
slurm-reschedule and slurm-sweep.

Everything that can be checked is checked before anything is written:
a failed validation leaves no trace. Submission then follows a fixed order so
that no job is ever submitted without being tracked: reserve the outputs
(atomically with the conflict check), prepare the work tree, submit, record
the job id. If sbatch fails, the reservation and the preparation are undone.
"""
from __future__ import annotations

import getpass
import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .crashpoints import crashpoint
from .paths import PathOutsideDatasetError, to_dataset_relative
from .redact import redact_environment
from .sbatch_args import (
    LogSpec,
    SbatchArgumentError,
    effective_options,
    log_spec,
    parse_array_spec,
    parse_sbatch_argv,
)
from .slurm import SlurmError
from .store import Job, JobStore, OutputConflictError, new_token, owner_tag


class ScheduleError(ValueError):
    """The job cannot be scheduled; nothing was written or submitted."""


@dataclass
class JobSpec:
    """A validated job, ready to submit. Paths are dataset-relative."""

    sbatch_argv: list[str]
    pwd: str
    outputs: list[str]
    inputs: list[str] = field(default_factory=list)
    extra_inputs: list[str] = field(default_factory=list)
    logs: LogSpec | None = None
    array_tasks: list[int] | None = None
    message: str | None = None
    chain: list[str] = field(default_factory=list)
    sweep: str | None = None
    extra: dict = field(default_factory=dict)


def _rel(path: str, ds_root: Path, base: Path, what: str) -> str:
    try:
        return to_dataset_relative(path, ds_root, base)
    except PathOutsideDatasetError as exc:
        raise ScheduleError(f"{what} {exc}") from None


def dirty_paths(ds_root: Path, paths: list[str]) -> list[str]:
    """Which of ``paths`` differ from HEAD, or are untracked."""
    if not paths:
        return []
    proc = subprocess.run(
        ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all",
         "--ignore-submodules=none", "--", *[f":(literal){p}" for p in paths]],
        cwd=ds_root, capture_output=True, check=True)
    found = []
    for entry in proc.stdout.split(b"\0"):
        if len(entry) > 3:
            found.append(entry[3:].decode())
    return found


def prepare(ds_root: Path, sbatch_argv: list[str], *, outputs: list[str],
            inputs: list[str] = (), extra_inputs: list[str] = (),
            base: Path | None = None, message: str | None = None,
            chain: list[str] = (), pwd: str | None = None,
            sweep: str | None = None, extra: dict | None = None,
            check_dirty: bool = True) -> JobSpec:
    """Validate a job. ``base`` is where relative paths are taken from (the
    user's working directory), and sbatch runs there too unless ``pwd``
    (dataset-relative) names another directory, as when replaying a record."""
    ds_root = Path(ds_root)
    if not sbatch_argv or Path(sbatch_argv[0]).name != "sbatch":
        raise ScheduleError(
            "the command must be an sbatch call, e.g. 'sbatch job.sh' "
            f"(got {shlex.join(list(sbatch_argv)) or 'nothing'})")
    base = Path(base or ds_root)
    if pwd is None:
        pwd = _rel(str(base), ds_root, ds_root, "the working directory")
    if not outputs:
        raise ScheduleError(
            "declare the job's outputs with -o/--output: only declared paths "
            "are committed when the job finishes")
    out = sorted({_rel(p, ds_root, base, "output") for p in outputs})
    if "." in out:
        raise ScheduleError(
            "the dataset root cannot be an output: declare the files or "
            "directories the job writes")
    ins = sorted({_rel(p, ds_root, base, "input") for p in inputs})
    extra_ins = sorted({_rel(p, ds_root, base, "input") for p in extra_inputs})
    try:
        call = parse_sbatch_argv(list(sbatch_argv[1:]))
    except SbatchArgumentError as exc:
        raise ScheduleError(str(exc)) from None
    script_text = None
    tracked = ins + extra_ins
    if call.script is not None:
        script_path = ds_root / pwd / call.script
        script_rel = _rel(str(script_path), ds_root, ds_root, "batch script")
        if not script_path.is_file():
            raise ScheduleError(f"batch script {script_path} does not exist")
        script_text = script_path.read_text(errors="replace")
        tracked = [script_rel] + tracked
    for path in ins + extra_ins:
        if not os.path.lexists(ds_root / path):
            raise ScheduleError(f"input {ds_root / path} does not exist")
    # A replay restores (and commits) its inputs after validation.
    dirty = dirty_paths(ds_root, tracked) if check_dirty else []
    if dirty:
        raise ScheduleError(
            "the batch script or inputs have uncommitted changes, so no record "
            f"could reproduce the job: {', '.join(sorted(dirty))}; save them "
            "first (datalad save)")
    try:
        options = effective_options(call, script_text)
        logs = log_spec(options, call.script, pwd)
        tasks = parse_array_spec(options["array"]) if options.get("array") else None
    except SbatchArgumentError as exc:
        raise ScheduleError(str(exc)) from None
    for pattern in logs.patterns():
        if Path(pattern).is_absolute():
            raise ScheduleError(
                f"log file {pattern} (--output/--error) is an absolute path; "
                "give it relative to the job's directory so it can be committed")
        _rel(str(ds_root / logs.workdir / pattern), ds_root, ds_root, "log file")
    spec = JobSpec(sbatch_argv=list(sbatch_argv), pwd=pwd, outputs=out,
                   inputs=ins, extra_inputs=extra_ins, logs=logs,
                   array_tasks=tasks, message=message, chain=list(chain),
                   sweep=sweep, extra=dict(extra or {}))
    log_dirs(ds_root, spec, getpass.getuser())
    return spec


def check_conflicts(store: JobStore, spec: JobSpec) -> None:
    clashes = store.conflicts(spec.outputs)
    if clashes:
        raise ScheduleError(describe_conflicts(clashes))


def describe_conflicts(clashes) -> str:
    lines = [f"{new} overlaps {held} of open job {job_id or '(being submitted)'}"
             for new, held, job_id in clashes[:5]]
    more = f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else ""
    return ("outputs overlap those of open jobs: " + "; ".join(lines) + more
            + ". Finish or close those jobs first (datalad slurm-finish)")


def log_dirs(ds_root: Path, spec: JobSpec, user: str) -> list[Path]:
    """Directories the logs go to. Only the job name, the user and ``%%`` can
    be known before submission; a directory that needs more cannot be
    created in advance, and Slurm would silently lose the log."""
    dirs = []
    for pattern in spec.logs.patterns():
        parent = str(Path(pattern).parent)
        known = parent.replace("%%", "\0").replace("%x", spec.logs.job_name)
        known = known.replace("%u", user)
        if "%" in known:
            raise ScheduleError(
                f"the log directory of {pattern!r} (--output/--error) depends on "
                "values known only after submission; Slurm cannot create it and "
                "would lose the log. Use a fixed directory (placeholders are "
                "fine in the file name)")
        dirs.append(ds_root / spec.logs.workdir / known.replace("\0", "%"))
    return dirs


def annex_unlock(ds_root: Path, paths: list[str]) -> None:
    """Unlock existing annexed outputs so a job can rewrite them: a locked
    file is a symlink into the annex, and writing through it would change
    (or, for another user, fail on) the stored content."""
    for i in range(0, len(paths), 1000):
        subprocess.run(["git", "annex", "unlock", "--quiet", "--", *paths[i:i + 1000]],
                       cwd=ds_root, capture_output=True, check=True)


def submit(ds_root: Path, store: JobStore, backend, spec: JobSpec, *,
           use_annex: bool, environment: Mapping[str, str] | None = None) -> Job:
    """Reserve, prepare, submit and record one job (see the module doc)."""
    env = dict(os.environ if environment is None else environment)
    job = Job(token=new_token(), cmd=spec.sbatch_argv, pwd=spec.pwd,
              outputs=spec.outputs, inputs=spec.inputs,
              extra_inputs=spec.extra_inputs, backend=backend.name,
              message=spec.message, chain=spec.chain,
              log_output=spec.logs.output, log_error=spec.logs.error,
              workdir=spec.logs.workdir, job_name=spec.logs.job_name,
              array_tasks=spec.array_tasks,
              environment=redact_environment(env),
              sweep=spec.sweep, extra=spec.extra, owner=owner_tag())
    job.extra.setdefault("user", getpass.getuser())
    try:
        store.reserve(job)
    except OutputConflictError as exc:
        raise ScheduleError(describe_conflicts(exc.args[0])) from None
    unlocked: list[str] = []
    created: list[Path] = []

    def undo() -> None:
        store.remove([job.token])
        for directory in reversed(created):
            try:
                directory.rmdir()
            except OSError:
                pass
        if unlocked:
            subprocess.run(["git", "annex", "lock", "--quiet", "--", *unlocked],
                           cwd=ds_root, capture_output=True)

    try:
        existing = [p for p in spec.outputs if os.path.lexists(ds_root / p)]
        if use_annex and existing:
            annex_unlock(ds_root, existing)
            unlocked = existing
        for directory in log_dirs(ds_root, spec, job.extra["user"]):
            probe, missing = directory, []
            while not probe.exists():
                missing.append(probe)
                probe = probe.parent
            directory.mkdir(parents=True, exist_ok=True)
            created.extend(reversed(missing))
    except BaseException:
        undo()
        raise
    try:
        job_id = backend.submit(spec.sbatch_argv, cwd=ds_root / spec.pwd,
                                env=env, comment=job.token)
    except SlurmError:
        # sbatch said no: nothing was submitted, so nothing may remain.
        undo()
        raise
    # Any other interruption leaves the reservation in 'submitting': the next
    # slurm-finish finds the job by its comment (the token) or drops it.
    crashpoint("submitted")
    store.mark_submitted(job.token, job_id)
    job.job_id, job.status = job_id, "open"
    return job
