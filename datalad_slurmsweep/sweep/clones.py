"""Per-point clones of the component directory, at the cost of a few links.

The component directory is copied once per sweep into a read-only snapshot
(``O/.components/<tree>``); each point's clone holds real copies only of
the JSON files it edits, and symlinks into the snapshot for everything else.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from .json_edit import apply_edits
from .points import Point, SweepLayout, Task


def _foreign_annex(ds_root: Path, src: Path) -> bool:
    """Whether ``src`` is an annexed file of another repository (a component
    directory in a subdataset) whose content is here."""
    target = os.path.realpath(src)
    return ("/annex/objects/" in target and os.path.isfile(target)
            and not target.startswith(os.path.realpath(ds_root / ".git") + os.sep))


def _relink(src: Path, dst: Path) -> None:
    """Copy a symlink so that it still points at the same place."""
    target = os.readlink(src)
    if not os.path.isabs(target):
        absolute = os.path.normpath(os.path.join(os.path.dirname(src), target))
        target = os.path.relpath(absolute, os.path.dirname(dst))
    os.symlink(target, dst)


def write_snapshot(ds_root: Path, lay: SweepLayout) -> list[str]:
    """Copy the component directory once; return the created top path (or none)."""
    snap = ds_root / lay.snapshot
    if snap.exists():
        return []
    tmp = snap.with_name(snap.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    src_root = ds_root / lay.component_dir
    for dirpath, dirnames, filenames in os.walk(src_root):
        rel = Path(dirpath).relative_to(src_root)
        (tmp / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            src, dst = Path(dirpath) / name, tmp / rel / name
            # A link into a subdataset's annex would be committed here as a
            # key this dataset never has: a clone could not get it, nor
            # replay the sweep. The content is copied, and so annexed here.
            if src.is_symlink() and not _foreign_annex(ds_root, src):
                _relink(src, dst)
            else:
                shutil.copy2(src, dst)
                # Shared by every point: a job writing into its clone in
                # place must fail, not change the other points' inputs.
                dst.chmod(dst.stat().st_mode & ~0o222)
    os.replace(tmp, snap)
    return [lay.snapshot]


def clone_template(snapshot: Path, edited: frozenset[str]) -> tuple[list[str], list[str]]:
    """(directories to create, entries to link) for a clone whose ``edited``
    files are real. Only the directories leading to an edited file exist in
    the clone; every other entry, whole directories included, is one symlink
    into the snapshot, so a clone costs a handful of entries, not one per
    file of the component directory."""
    keep = {"."}
    for rel in edited:
        parts = PurePosixPath(rel).parts[:-1]
        keep.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    links = []
    for directory in sorted(keep):
        for entry in sorted(os.listdir(snapshot / directory)):
            rel = entry if directory == "." else f"{directory}/{entry}"
            if rel not in keep and rel not in edited:
                links.append(rel)
    return sorted(keep), links


def write_clone(ds_root: Path, lay: SweepLayout, task: Task, edited: dict[str, str],
                templates: dict) -> None:
    """The point's component clone: links into the snapshot, edited files real."""
    clone = ds_root / task.clone
    if os.path.lexists(clone):
        shutil.rmtree(clone)
    snap = ds_root / lay.snapshot
    key = frozenset(edited)
    if key not in templates:
        templates[key] = clone_template(snap, key)
    directories, links = templates[key]
    for directory in directories:
        (clone / directory).mkdir(parents=True, exist_ok=True)
    for rel in links:
        dst = clone / rel
        os.symlink(os.path.relpath(snap / rel, dst.parent), dst)
    for rel, text in edited.items():
        (clone / rel).write_text(text)


def edited_files(ds_root: Path, lay: SweepLayout, point: Point,
                 cache: dict[str, str]) -> dict[str, str]:
    """file (relative to the component dir) -> new text, for one point."""
    by_file: dict[str, list] = {}
    for edit in point.edits:
        by_file.setdefault(str(PurePosixPath(edit.file)), []).append((edit.key, edit.value))
    out = {}
    for rel, edits in by_file.items():
        if rel not in cache:
            cache[rel] = (ds_root / lay.component_dir / rel).read_text()
        out[rel] = apply_edits(cache[rel], edits)
    return out
