"""A job's run environment: a container (``--container``) and an alternative
directory (``--alt-dir``), for slurm-schedule and slurm-reschedule alike.

``configure`` validates both before anything is written and puts them into
the job's spec; ``launch`` stages the alternative directory and the
container's wrapper around one submission and undoes the staging if the
submission fails; ``record_keys`` says what the run record keeps of them,
so that slurm-reschedule can do the same again.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..backends.sbatch import parse_sbatch_argv
from ..errors import ScheduleError
from ..provenance.datasets import read_layout
from . import altdir, container
from .model import JobSpec, current_user
from .placeholders import expand_inputs
from .prepare import log_dirs


def script_path(spec: JobSpec) -> str | None:
    """The batch script, dataset-relative; None for ``sbatch --wrap``."""
    script = parse_sbatch_argv(list(spec.argv_to_submit[1:])).script
    if script is None:
        return None
    return PurePosixPath(os.path.normpath(os.path.join(spec.pwd, script))).as_posix()


def _add_container(ds_root: Path, spec: JobSpec, name: str) -> None:
    script = script_path(spec)
    text = (ds_root / script).read_text(errors="replace") if script else None
    container.check_script(text, str(ds_root / script) if script else "")
    found = container.find(ds_root, name)
    for path in found.inputs():
        if not os.path.lexists(ds_root / path):
            raise ScheduleError(f"container {name}: its image or input {ds_root / path} "
                                "does not exist")
        if path not in spec.extra_inputs:
            spec.extra_inputs.append(path)
    spec.container = found


def _log_dirs(ds_root: Path, spec: JobSpec) -> list[str]:
    return [d.relative_to(ds_root).as_posix() or "."
            for d in log_dirs(ds_root, spec, current_user())]


def _mirrored(ds_root: Path, spec: JobSpec) -> list[str]:
    script = script_path(spec)
    return sorted({spec.pwd, *([script] if script else []), *spec.inputs,
                   *spec.extra_inputs, *_log_dirs(ds_root, spec)})


def configure(ds_root: Path, spec: JobSpec, *, container_name: str | None = None,
              alt_dir: str | None = None) -> JobSpec:
    """Validate the run environment and set it in ``spec`` (nothing is written)."""
    if container_name:
        _add_container(ds_root, spec, container_name)
    if alt_dir:
        spec.alt_dir = altdir.check(ds_root, alt_dir, _mirrored(ds_root, spec) + spec.outputs,
                                    spec.outputs)
    return spec


def work_root(ds_root: Path, spec: JobSpec) -> Path:
    """Where the job's relative layout starts: the dataset, or --alt-dir."""
    return Path(spec.alt_dir) if spec.alt_dir else Path(ds_root)


def inputs_to_get(spec: JobSpec) -> list[str]:
    """The container's image (and extra inputs), retrieved before submission."""
    return spec.container.inputs() if spec.container else []


@contextmanager
def launch(ds_root: Path, spec: JobSpec) -> Iterator[list[str]]:
    """The sbatch command line to submit for ``spec``, with the alternative
    directory staged and the container's wrapper written while it lasts."""
    root = work_root(ds_root, spec)
    staging = None
    if spec.alt_dir:
        script = script_path(spec)
        inputs = expand_inputs(ds_root, read_layout(ds_root), spec.inputs + spec.extra_inputs)
        copies = ([script] if script else []) + inputs
        dirs = [spec.pwd, *_log_dirs(ds_root, spec), *altdir.parents(spec.outputs)]
        staging = altdir.stage(ds_root, root, sorted(set(copies)),
                               sorted({d for d in dirs if d != "."}))
    try:
        # A sweep's generated scripts call the container themselves.
        if spec.container and spec.sweep is None:
            with container.wrapped_argv(spec.argv_to_submit, spec.container, root,
                                        root / spec.pwd) as argv:
                yield argv
        else:
            yield list(spec.argv_to_submit)
    except BaseException:
        if staging:
            staging.undo()
        raise


def bring_back(ds_root: Path, spec: JobSpec, logs: list[str]) -> None:
    """For an --alt-dir job: move its outputs and logs into the dataset.
    What it did not write is found and named by the finish's output check."""
    if spec.alt_dir:
        altdir.bring_back(ds_root, Path(spec.alt_dir), spec.outputs, logs)


def record_keys(spec: JobSpec) -> dict:
    """The run record's keys for the run environment (absent when unused)."""
    keys: dict = {}
    if spec.container:
        keys["container"] = spec.container.name
    if spec.alt_dir:
        keys["alt_dir"] = spec.alt_dir
    return keys
