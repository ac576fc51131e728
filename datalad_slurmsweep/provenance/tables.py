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
from typing import Any

from ..errors import GitError, RecordError
from .git import git
from .record import ParsedRecord

TABLE_KEYS = ("points", "inputs", "extra_inputs", "outputs", "slurm_outputs",
              "missing_outputs")
TABLE_FORMAT = "datalad-slurmsweep point table 1"
DIRECTORY = ".records"


def table_bytes(record: dict[str, Any]) -> bytes:
    head = [f'{{"format": {json.dumps(TABLE_FORMAT)},']
    head += [f" {json.dumps(key)}: {json.dumps(record.get(key) or [], ensure_ascii=False)},"
             for key in TABLE_KEYS[1:]]
    points = ",\n".join(json.dumps(p, sort_keys=True, ensure_ascii=False)
                        for p in record["points"])
    return ("\n".join(head) + '\n "points": [\n' + points + "\n]}\n").encode()


def split_off(record: dict[str, Any], path: str) -> tuple[dict[str, Any], bytes]:
    """The record without its table, naming ``path``, and the table's bytes."""
    content = table_bytes(record)
    slim = {k: v for k, v in record.items() if k not in TABLE_KEYS}
    slim["table"] = {"path": path, "sha256": hashlib.sha256(content).hexdigest(),
                     **{key: len(record.get(key) or []) for key in TABLE_KEYS}}
    return slim, content


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
    if any("\n" in name for name in names):
        raise RecordError("a run record names a point table whose path holds a newline")
    try:
        out = git(root, "cat-file", "--batch", input="".join(n + "\n" for n in names).encode())
    except GitError as exc:
        raise RecordError(f"cannot read point tables: {exc}") from None
    damaged: set[str] = set()
    pos = 0
    for sha, parsed in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        where = f"commit {sha[:10]}"
        try:
            if len(header) != 3 or header[1] != b"blob":
                raise RecordError(f"{where}: its point table {parsed.record['table'].get('path')}"
                                  " is not in the commit")
            size = int(header[2])
            content, pos = out[pos:pos + size], pos + size + 1
            attach(parsed.record, content, where)
        except RecordError:
            if not skip_damaged:
                raise
            damaged.add(sha)
    return [(sha, parsed) for sha, parsed in found if sha not in damaged]


def in_subdataset(ds_root: Path, path: str) -> bool:
    """Whether ``path`` lies in a subdataset (a directory with its own
    ``.git`` on the way down), where the top commit could not name it."""
    parts = Path(path).parts
    return any(os.path.lexists(ds_root.joinpath(*parts[:i], ".git"))
               for i in range(1, len(parts) + 1))


def remove_leftovers(ds_root: Path, sweep_root: str) -> None:
    """Delete tables a killed finish wrote but never committed: the next
    finish writes its own, and only committed ones are referenced."""
    directory = ds_root / sweep_root / DIRECTORY
    if not directory.is_dir():
        return
    rel = f"{sweep_root}/{DIRECTORY}"
    tracked = set(git(ds_root, "ls-files", "-z", "--", f":(literal){rel}")
                  .decode(errors="surrogateescape").split("\0"))
    for entry in os.scandir(directory):
        if entry.name.endswith((".json", ".json.tmp")) and f"{rel}/{entry.name}" not in tracked:
            os.unlink(entry.path)
