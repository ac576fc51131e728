"""``--alt-dir``: running a job outside the dataset, in a mirror of its layout.

As in datalad-slurm, the job runs in ``ALT/<pwd>``, where ``ALT`` is an
absolute directory outside the dataset (a parallel file system, say, while
the dataset stays on a local disk). At submission the batch script and the
inputs are copied to the same relative paths below ``ALT`` (annexed files
as their content), and the log directories and the outputs' parent
directories are created there. ``slurm-finish`` moves (not copies) the
outputs and the logs back to their places in the dataset and commits them
as usual.

An output that already exists below ``ALT`` is refused at submission: it
would be moved back and committed as this job's even if the job never wrote
it. An output the job did not write is named in slurm-finish's result; the
copies of the inputs stay below ``ALT``, where later jobs may reuse them.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ScheduleError
from ..provenance.paths import ancestors_and_self
from .outputs import expand_pattern, is_glob


def check(ds_root: Path, alt_dir: str, paths: list[str], outputs: list[str]) -> str:
    """The normalised alternative directory; refused when it is relative,
    lies in the dataset, or holds one of ``outputs`` already. ``paths`` are
    every dataset-relative path the mirror will hold."""
    if not os.path.isabs(alt_dir):
        raise ScheduleError(f"--alt-dir {alt_dir!r} is relative: give an absolute directory "
                            "outside the dataset, so the record names one place")
    alt = os.path.normpath(alt_dir)
    real_ds, real_alt = os.path.realpath(ds_root), os.path.realpath(alt)
    if real_alt == real_ds or real_alt.startswith(real_ds.rstrip("/") + "/"):
        raise ScheduleError(f"--alt-dir {alt} lies inside the dataset {ds_root}: the job "
                            "would write into the dataset after all; give a directory outside it")
    for path in paths:
        mirrored = os.path.realpath(os.path.join(alt, path))
        if mirrored == real_ds or mirrored.startswith(real_ds.rstrip("/") + "/"):
            raise ScheduleError(f"--alt-dir {alt}: the mirror of {path} would be "
                                f"{mirrored}, inside the dataset; choose another directory")
    for path in outputs:
        if os.path.lexists(os.path.join(alt, path)):
            raise ScheduleError(
                f"output {path} already exists below --alt-dir {alt}: slurm-finish would "
                "move it into the dataset as this job's output even if the job did not "
                f"write it; remove {os.path.join(alt, path)} first")
    return alt


class Staging:
    """What was put below the alternative directory, so a refused submission
    can take it away again."""

    def __init__(self, alt: Path):
        self.alt = alt
        self.created: list[Path] = []  # outermost new paths, in creation order

    def _note_new(self, target: Path) -> None:
        probe, top = target, None
        while not os.path.lexists(probe) and probe != self.alt.parent:
            top, probe = probe, probe.parent
        if top is not None:
            self.created.append(top)

    def directory(self, rel: str) -> None:
        target = self.alt / rel
        self._note_new(target)
        target.mkdir(parents=True, exist_ok=True)

    def copy(self, ds_root: Path, rel: str) -> None:
        source, target = ds_root / rel, self.alt / rel
        self._note_new(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns(".git"))
            else:
                shutil.copy2(source, target)
        except OSError as exc:
            raise ScheduleError(f"could not copy {rel} to --alt-dir {self.alt}: {exc} "
                                "(is its content present? datalad get it)") from None

    def undo(self) -> None:
        for path in reversed(self.created):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                path.unlink()


def stage(ds_root: Path, alt: Path, copies: list[str], directories: list[str]) -> Staging:
    """Copy ``copies`` and create ``directories`` (dataset-relative) below ``alt``."""
    staging = Staging(alt)
    try:
        for rel in directories:
            staging.directory(rel)
        for rel in copies:
            staging.copy(ds_root, rel)
    except BaseException:
        staging.undo()
        raise
    return staging


def _move(source: Path, target: Path) -> None:
    """Move ``source`` onto ``target``, merging directories and replacing files."""
    if source.is_dir() and not source.is_symlink() and target.is_dir():
        for child in list(source.iterdir()):
            _move(child, target / child.name)
        source.rmdir()
        return
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif os.path.lexists(target):
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))


def bring_back(ds_root: Path, alt: Path, outputs: list[str], logs: list[str]) -> list[str]:
    """Move the job's outputs and logs from ``alt`` into the dataset; the
    outputs that were found in neither place (a rerun after an interrupted
    finish finds them already moved)."""
    missing = []
    for declared in outputs + logs:
        found = ([declared] if os.path.lexists(alt / declared) or not is_glob(declared)
                 else expand_pattern(alt, declared))
        for rel in found:
            if os.path.lexists(alt / rel):
                _move(alt / rel, ds_root / rel)
            elif declared in outputs and not os.path.lexists(ds_root / rel):
                missing.append(rel)
    return missing


def parents(paths: list[str]) -> list[str]:
    """The directories above ``paths`` (dataset-relative), without the root."""
    found = {a for p in paths for a in ancestors_and_self(p)[1:] if a != "."}
    return sorted(found)
