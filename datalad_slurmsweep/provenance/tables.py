"""A large sweep record's per-point table, kept in a committed file.

A sweep record holds about 1 KB per point: 100 000 points make a 110 MB
commit message, which every ``git log --grep`` reads in full and some git
front ends refuse to show. Past ``datalad.slurmsweep.record-inline-points``
points, the record's bulky keys (:data:`TABLE_KEYS`) go into
``<sweep root>/.records/<stamp>-<first job id>.json``, committed in git (not
the annex, so every clone reads it without ``get``) in the same commit as
the outputs, and the record names it under ``table`` with its SHA-256:

    "table": {"path": "runs/s/.records/20261122T090000-4711.json",
              "sha256": "…", "points": 100000, "inputs": 100000, ...}

Readers put the table back (:func:`inflate`) before looking at a record,
so a record reads the same whichever way it was stored; a table whose
checksum does not match is a :class:`RecordError` naming the commit.

The file is JSON, one point per line, so ``git grep`` and ``git diff`` work
on it line by line.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import GitError, RecordError
from .git import cat_blobs, git
from .record import ParsedRecord

TABLE_KEYS = ("points", "inputs", "extra_inputs", "outputs", "slurm_outputs",
              "missing_outputs")
TABLE_FORMAT = "datalad-slurmsweep point table 1"
DIRECTORY = ".records"


class TableWriter:
    """Writes a point table to ``stream`` as its points come, so that a
    finish of 100 000 points never holds them all as objects: the file and
    its SHA-256 grow together. Points first, then the other lists."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.hash = hashlib.sha256()
        self.count = 0
        self._write(f'{{"format": {json.dumps(TABLE_FORMAT)},\n "points": [\n')

    def _write(self, text: str) -> None:
        data = text.encode()
        self.hash.update(data)
        self.stream.write(data)

    def add(self, point: dict[str, Any]) -> None:
        self._write(("",  ",\n")[self.count > 0]
                    + json.dumps(point, sort_keys=True, ensure_ascii=False))
        self.count += 1

    def end(self, lists: dict[str, list]) -> dict[str, Any]:
        """Write the other lists; the record's ``table`` entry but its path."""
        self._write("\n]" + "".join(f",\n {json.dumps(key)}: "
                                    f"{json.dumps(lists.get(key) or [], ensure_ascii=False)}"
                                    for key in TABLE_KEYS[1:]) + "}\n")
        return {"sha256": self.hash.hexdigest(), "points": self.count,
                **{key: len(lists.get(key) or []) for key in TABLE_KEYS[1:]}}


def referencing(record: dict[str, Any], path: str, written: dict[str, Any]) -> dict[str, Any]:
    """``record`` without the lists its table at ``path`` holds, naming it
    (``written``: what :meth:`TableWriter.end` returned)."""
    slim = {k: v for k, v in record.items() if k not in TABLE_KEYS}
    slim["table"] = {"path": path, **written}
    return slim


def attach(record: dict[str, Any], content: bytes, where: str) -> None:
    """Put the table ``content`` back into ``record`` (in place)."""
    ref = record["table"]
    if hashlib.sha256(content).hexdigest() != ref.get("sha256"):
        raise RecordError(f"{where}: the point table {ref.get('path')} does not match the "
                          "checksum its run record gives (was it edited?)")
    try:
        table = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{where}: the point table {ref.get('path')} is not JSON: "
                          f"{exc}") from None
    if not isinstance(table, dict) or table.get("format") != TABLE_FORMAT:
        raise RecordError(f"{where}: {ref.get('path')} is not a point table this "
                          "datalad-slurmsweep reads: upgrade datalad-slurmsweep")
    record.update({key: table.get(key) or [] for key in TABLE_KEYS})


def inflate(root: Path, found: Iterable[tuple[str, ParsedRecord]],
            skip_damaged: bool = False) -> list[tuple[str, ParsedRecord]]:
    """The records of ``found`` (commit, record) with their tables put back,
    read with one ``git cat-file --batch``. A missing or damaged table is a
    RecordError, or with ``skip_damaged`` leaves its record out."""
    found = list(found)
    wanted = [(sha, parsed) for sha, parsed in found
              if isinstance(parsed.record.get("table"), dict)]
    if not wanted:
        return found
    names = [f"{sha}:{parsed.record['table'].get('path')}" for sha, parsed in wanted]
    try:
        contents = cat_blobs(root, names)
    except GitError as exc:
        raise RecordError(f"cannot read point tables: {exc}") from None
    damaged: set[str] = set()
    for (sha, parsed), content in zip(wanted, contents, strict=True):
        where = f"commit {sha[:10]}"
        try:
            if content is None:
                raise RecordError(f"{where}: its point table {parsed.record['table'].get('path')}"
                                  " is not in the commit")
            attach(parsed.record, content, where)
        except RecordError:
            if not skip_damaged:
                raise
            damaged.add(sha)
    return [(sha, parsed) for sha, parsed in found if sha not in damaged]


def scratch_path(ds_root: Path, target: Path) -> Path:
    """Where to write ``target`` before renaming it into place: in the git
    directory, where a user's ``datalad save`` during the finish cannot
    commit a half-written table; beside it when that is another device."""
    git_dir = ds_root / ".git"
    try:
        if git_dir.is_dir() and os.stat(git_dir).st_dev == os.stat(target.parent).st_dev:
            (git_dir / "slurmsweep").mkdir(exist_ok=True)
            return git_dir / "slurmsweep" / f"table-{os.getpid()}.tmp"
    except OSError:
        pass
    return target.with_name(target.name + ".tmp")


def remove_leftovers(ds_root: Path, sweep_root: str) -> None:
    """Delete tables a killed finish wrote but never committed: the next
    finish writes its own, and only committed ones are referenced. (One
    finish at a time holds the dataset, so no other is writing one.)"""
    scratch = ds_root / ".git" / "slurmsweep"
    if scratch.is_dir():
        for entry in os.scandir(scratch):
            if entry.name.startswith("table-") and entry.name.endswith(".tmp"):
                os.unlink(entry.path)
    directory = ds_root / sweep_root / DIRECTORY
    if not directory.is_dir():
        return
    rel = f"{sweep_root}/{DIRECTORY}"
    tracked = set(git(ds_root, "ls-files", "-z", "--", f":(literal){rel}")
                  .decode(errors="surrogateescape").split("\0"))
    for entry in os.scandir(directory):
        if entry.name.endswith((".json", ".json.tmp")) and f"{rel}/{entry.name}" not in tracked:
            os.unlink(entry.path)
