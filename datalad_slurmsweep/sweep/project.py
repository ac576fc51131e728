"""The files of the project ``slurm-init`` creates, shipped as package data
under ``templates/init``: a small model, a job script, a commented sweep
configuration and a README."""
from __future__ import annotations

import os
import stat
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from ..errors import ReportError


def _walk(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        rel = f"{prefix}{child.name}"
        found += _walk(child, rel + "/") if child.is_dir() else [(rel, child)]
    return found


def template_files() -> list[tuple[str, Traversable]]:
    """(relative path, source) of every file of the project."""
    return _walk(resources.files("datalad_slurmsweep").joinpath("templates", "init"))


def check_free(target: Path) -> None:
    """Refuse before writing anything when a project file exists already;
    create PATH, the first thing written, or refuse when that fails."""
    taken = [rel for rel, _ in template_files() if os.path.lexists(target / rel)]
    if taken:
        raise ReportError(f"{target} already has {', '.join(taken)}: slurm-init never "
                          "overwrites files; choose another PATH or move them away")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create the project directory {target}: "
                          f"{exc.strerror}") from None


def write_project(target: Path) -> list[Path]:
    """Copy the project into ``target``; the paths written."""
    written = []
    for rel, source in template_files():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(source.read_bytes())
        if rel.endswith((".sh", ".py")):
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(path)
    return written
