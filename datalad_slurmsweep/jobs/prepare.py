"""Validating one job before anything is written or submitted.

Everything that can be checked is checked here, so that a refused job
leaves no trace: the command is an sbatch call, the paths lie in the
dataset, the script and inputs exist and are committed, the sbatch options
and ``#SBATCH`` directives are understood, and the log directories can be
known before submission.
"""
from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path

from ..backends.sbatch import (
    effective_options,
    expand_log_pattern,
    log_spec,
    parse_array_spec,
    parse_sbatch_argv,
    pattern_codes,
)
from ..errors import AbsentContentError, OutputConflictError, PathOutsideDatasetError, ScheduleError
from ..provenance.datasets import dirty_nested, read_layout
from ..provenance.paths import to_dataset_relative
from ..redact import secret_findings
from .model import JobSpec, SweepMember, current_user
from .placeholders import expand_inputs, fill
from .store import JobStore

lgr = logging.getLogger("datalad.slurmsweep.schedule")


def _rel(path: str, ds_root: Path, base: Path, what: str) -> str:
    try:
        return to_dataset_relative(path, ds_root, base)
    except PathOutsideDatasetError as exc:
        raise ScheduleError(f"{what} {exc}") from None


def _check_argv(sbatch_argv: list[str]) -> None:
    if not sbatch_argv or Path(sbatch_argv[0]).name != "sbatch":
        raise ScheduleError(
            "the command must be an sbatch call, e.g. 'sbatch job.sh' "
            f"(got {shlex.join(list(sbatch_argv)) or 'nothing'})")
    if sbatch_argv[0] != "sbatch":
        # The record must replay on another machine: the sbatch on PATH.
        raise ScheduleError(f"give the command as plain 'sbatch' (the one on PATH), not "
                            f"{sbatch_argv[0]!r}")


def uncommittable(ds_root: Path, path: str) -> str | None:
    """Why git could never commit ``path`` (dataset-relative), or None."""
    parts = path.split("/")
    if ".git" in parts:
        return "it lies inside .git, which git never commits"
    if any(c in path for c in "\n\r") or any(ord(c) < 32 for c in path):
        return "its name holds a control character (a newline, say)"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    probe = Path(ds_root)
    for part in parts[:-1]:
        probe = probe / part
        if probe.is_symlink():
            return (f"it lies beyond the symbolic link {probe.relative_to(ds_root)}; "
                    "declare the path the link points to")
    return None


def _script(ds_root: Path, pwd: str, script: str | None) -> tuple[str | None, str | None]:
    """The batch script, dataset-relative, and its text (None for --wrap)."""
    if script is None:
        return None, None
    script_path = ds_root / pwd / script
    script_rel = _rel(str(script_path), ds_root, ds_root, "batch script")
    if script_path.is_symlink() and not script_path.exists():
        raise AbsentContentError(f"the content of batch script {script_path} is not "
                                 "here (datalad get it)", script_rel)
    if not script_path.is_file():
        raise ScheduleError(f"batch script {script_path} does not exist")
    script_text = script_path.read_text(errors="replace")
    for line, what in secret_findings(script_text):
        lgr.warning("%s line %d holds %s: the script is committed, so the secret is in "
                    "history; pass secrets through the environment (it is redacted)",
                    script_path, line, what)
    return script_rel, script_text


def _paths(ds_root: Path, base: Path, outputs, inputs, extra_inputs):
    if not outputs:
        raise ScheduleError(
            "declare the job's outputs with -o/--output: only declared paths "
            "are committed when the job finishes")
    out = sorted({_rel(p, ds_root, base, "output") for p in outputs})
    if "." in out:
        raise ScheduleError(
            "the dataset root cannot be an output: declare the files or "
            "directories the job writes")
    for path in out:
        reason = uncommittable(ds_root, path)
        if reason:
            raise ScheduleError(f"output {path!r} could never be committed: {reason}")
    ins = sorted({_rel(p, ds_root, base, "input") for p in inputs})
    extra_ins = sorted({_rel(p, ds_root, base, "input") for p in extra_inputs})
    return out, ins, extra_ins


def prepare(ds_root: Path, sbatch_argv: list[str], *, outputs: list[str],
            inputs: list[str] = (), extra_inputs: list[str] = (),
            base: Path | None = None, message: str | None = None,
            chain: list[str] = (), pwd: str | None = None,
            sweep: SweepMember | None = None, check_dirty: bool = True,
            expand: str | None = None, fill_placeholders: bool = True) -> JobSpec:
    """Validate a job. ``base`` is where relative paths are taken from (the
    user's working directory), and sbatch runs there too unless ``pwd``
    (dataset-relative) names another directory, as when replaying a record.
    Inputs may be globs (expanded here; recorded as given unless ``expand``
    says ``inputs`` or ``both``), and the call may hold ``datalad run``'s
    placeholders (``placeholders.py``)."""
    ds_root = Path(ds_root)
    _check_argv(sbatch_argv)
    base = Path(base or ds_root)
    if pwd is None:
        pwd = _rel(str(base), ds_root, ds_root, "the working directory")
    out, ins, extra_ins = _paths(ds_root, base, outputs, inputs, extra_inputs)
    layout = read_layout(ds_root)
    found_ins = expand_inputs(ds_root, layout, ins + extra_ins)
    if expand in ("inputs", "both"):
        ins = expand_inputs(ds_root, layout, ins)
    submit_argv = list(sbatch_argv)
    if fill_placeholders and sweep is None:
        # As in datalad run, extra inputs (an image) are never in {inputs}.
        named = expand_inputs(ds_root, layout, ins) if extra_ins else found_ins
        submit_argv = fill(ds_root, sbatch_argv, pwd=pwd, inputs=named, outputs=out)
        _check_argv(submit_argv)
    call = parse_sbatch_argv(list(submit_argv[1:]))
    for option in ("help", "usage", "version", "test-only"):
        if option in call.options:
            raise ScheduleError(f"sbatch --{option} submits no job, so there is nothing to "
                                "track: give the options of the job itself")
    tracked = [p for p in found_ins if layout.absent_holder(p) is None]
    script_rel, script_text = _script(ds_root, pwd, call.script)
    if script_rel is not None:
        tracked = [script_rel] + tracked
    # A replay restores (and commits) its inputs after validation.
    dirty = dirty_nested(ds_root, layout, tracked) if check_dirty else []
    if dirty:
        raise ScheduleError(
            "the batch script or inputs have uncommitted changes, so no record "
            f"could reproduce the job: {', '.join(sorted(dirty))}; save them "
            "first (datalad save)")
    options = effective_options(call, script_text, source=str(ds_root / script_rel)
                                if script_rel is not None else None)
    logs = log_spec(options, call.script, pwd)
    tasks = parse_array_spec(options["array"]) if options.get("array") else None
    for pattern in logs.patterns():
        if Path(pattern).is_absolute():
            raise ScheduleError(
                f"log file {pattern} (--output/--error) is an absolute path; "
                "give it relative to the job's directory so it can be committed")
        _rel(str(ds_root / logs.workdir / pattern), ds_root, ds_root, "log file")
    spec = JobSpec(sbatch_argv=list(sbatch_argv), pwd=pwd, outputs=out, logs=logs,
                   inputs=ins, extra_inputs=extra_ins, array_tasks=tasks,
                   message=message, chain=list(chain), sweep=sweep, expand=expand,
                   submit_argv=submit_argv if submit_argv != list(sbatch_argv) else None)
    log_dirs(ds_root, spec, current_user())
    return spec


def check_conflicts(store: JobStore, outputs: list[str]) -> None:
    """Refuse outputs that overlap an open job's (the reservation re-checks
    atomically; this names the conflict before anything else is done)."""
    clashes = store.conflicts(outputs)
    if clashes:
        raise OutputConflictError(clashes)


def log_dirs(ds_root: Path, spec: JobSpec, user: str) -> list[Path]:
    """Directories the logs go to. Only the job name and the user can be
    known before submission; a directory that needs more cannot be created
    in advance, and Slurm would silently lose the log. A ``%`` that starts
    no replacement symbol (``..._+25%/``) is literal, as it is for Slurm."""
    dirs = []
    for pattern in spec.logs.patterns():
        parent = str(Path(pattern).parent)
        late = pattern_codes(parent) - {"x", "u"}
        if late:
            raise ScheduleError(
                f"the log directory of {pattern!r} (--output/--error) depends on "
                f"values known only after submission (%{', %'.join(sorted(late))}); "
                "Slurm cannot create it and would lose the log. Use a fixed directory "
                "(placeholders are fine in the file name; %% is a literal %)")
        known = expand_log_pattern(parent, job_id="", array_job_id=None, task_id=None,
                                   job_name=spec.logs.job_name, user=user)
        dirs.append(ds_root / spec.logs.workdir / known)
    return dirs


def fixed_log_files(spec: JobSpec, user: str) -> list[str]:
    """Dataset-relative log files whose names are known before submission
    (``--output=log.txt``, ``%x.log``): a rerun writes the same file again."""
    files = []
    for pattern in spec.logs.patterns():
        if pattern_codes(pattern) - {"x", "u"}:
            continue
        name = expand_log_pattern(pattern, job_id="", array_job_id=None, task_id=None,
                                  job_name=spec.logs.job_name, user=user)
        files.append(Path(os.path.normpath(os.path.join(spec.logs.workdir, name))).as_posix())
    return files
