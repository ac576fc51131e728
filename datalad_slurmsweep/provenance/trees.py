"""Tree objects built bottom-up for directories one commit alone changes.

``git fast-import`` finds a path's place in a directory by a linear scan,
and grows a directory's entry list a few entries at a time: writing the
100 000 point directories of a sweep into one directory took minutes and
grew faster than quadratically (0.28 / 1.43 / 7.49 s for 10k / 20k / 40k
entries, 0.03 / 0.07 / 0.31 s spread over 100 subdirectories). For a
directory whose changes all belong to one planned commit, we build its new
tree ourselves, one ``git mktree --batch`` per depth (deepest first, so a
directory's children exist before it), starting from the parent commit's
listing of it, and hand fast-import one ``M 040000 <tree> <dir>``. The
trees are the ones git would write for the same content (``mktree`` sorts
entries as git does), so the commits are byte-identical to the per-path
ones. Directories changed by several commits of a chain stay with
fast-import: each commit must see its predecessors' changes there.
"""
from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .git import git, literal

# Fewer changes than this under a directory are cheaper as single paths
# than as a listing of the directory plus mktree calls.
MIN_CHANGES = 256
Entry = tuple[str, str]  # (mode, sha), as in the index


@dataclass
class Rebuilt:
    """What fast-import gets instead of per-path lines, per plan index."""

    trees: dict[int, dict[str, str | None]] = field(default_factory=dict)  # dir -> tree or None
    covered: dict[int, set[str]] = field(default_factory=dict)  # changed paths inside them


def _dirs_of(path: str) -> list[str]:
    """Every directory above ``path``, top first, the root ("") left out."""
    found, cut = [], path.find("/")
    while cut >= 0:
        found.append(path[:cut])
        cut = path.find("/", cut + 1)
    return found


def private_roots(changes: Mapping[int, Mapping[str, Entry | None]], blocked: set[str],
                  min_changes: int = MIN_CHANGES) -> dict[int, list[str]]:
    """Per plan, the highest directories below the root whose changes are
    all its own (none of another plan, no ``blocked`` path at or below
    them) and that hold at least ``min_changes`` of them."""
    owners: dict[str, int] = {}
    counts: dict[str, int] = {}
    for index, paths in changes.items():
        for path in paths:
            for directory in _dirs_of(path):
                if owners.setdefault(directory, index) != index:
                    owners[directory] = -1
                counts[directory] = counts.get(directory, 0) + 1
            # A file of one plan where another plan has a directory
            # makes that directory shared.
            if owners.setdefault(path, index) != index:
                owners[path] = -1
    for path in blocked:
        for directory in (*_dirs_of(path), path):
            owners[directory] = -1
    found: dict[int, list[str]] = {}
    for directory, index in owners.items():
        if index < 0 or counts.get(directory, 0) < min_changes:
            continue
        above = _dirs_of(directory)
        if all(owners[d] < 0 or counts[d] < min_changes for d in above):
            found.setdefault(index, []).append(directory)
    return found


def _fill_from_parent(repo: Path, parent: str, roots: list[str], content: dict) -> None:
    """Add to ``content``'s directories their entries in ``parent`` that the
    changes left alone, read from ``ls-tree`` of ``roots`` as it comes: a
    dict of everything below them held 30 MB at 10 000 points."""
    for start in range(0, len(roots), 2000):
        chunk = roots[start:start + 2000]
        out = git(repo, "ls-tree", "-r", "-t", "-z", "--full-tree", parent, "--",
                  *literal(chunk))
        for item in out.split(b"\0"):
            if not item:
                continue
            meta, raw = item.split(b"\t", 1)
            path = os.fsdecode(raw)
            directory, _, name = path.rpartition("/")
            entries = content.get(directory)
            if entries is not None and name not in entries:
                mode, kind, sha = meta.decode().split()
                entries[name] = (mode, kind, sha)


def _kind(mode: str) -> str:
    return {"040000": "tree", "160000": "commit"}.get(mode, "blob")


def rebuild(repo: Path, parent: str, changes: Mapping[int, Mapping[str, Entry | None]],
            blocked: set[str], min_changes: int = MIN_CHANGES) -> Rebuilt:
    """The new trees of every plan's private directories (``private_roots``)
    as they are in ``parent`` with the plan's ``changes`` applied (path ->
    new entry, None: deleted). A directory left empty maps to None."""
    roots = private_roots(changes, blocked, min_changes)
    result = Rebuilt()
    if not roots:
        return result
    # directory -> name -> (mode, kind, sha) for every directory to write
    content: dict[str, dict[str, tuple[str, str, str] | None]] = {}
    for index, dirs in roots.items():
        mine = set(dirs)
        covered = result.covered.setdefault(index, set())
        for path, entry in changes[index].items():
            chain = _dirs_of(path)
            top = next((i for i, d in enumerate(chain) if d in mine), None)
            if top is None:
                continue
            covered.add(path)
            for above, directory in zip([None, *chain[top:]], chain[top:], strict=False):
                if directory not in content:
                    content[directory] = {}
                    if above is not None:  # its new tree, once written, goes here
                        content[above].setdefault(directory.rpartition("/")[2],
                                                  ("040000", "tree", ""))
            name = path.rpartition("/")[2]
            content[chain[-1]][name] = (
                None if entry is None else (entry[0], _kind(entry[0]), entry[1]))
    # Untouched entries of the directories we write come from the parent.
    _fill_from_parent(repo, parent, sorted(d for ds in roots.values() for d in ds), content)
    written = _write_trees(repo, content)
    for index, dirs in roots.items():
        result.trees[index] = {d: written.get(d) for d in dirs}
    return result


def _tree_body(entries: dict[str, tuple[str, str, str] | None], written: dict[str, str],
               directory: str, content: dict) -> bytes:
    """A tree object's content: entries sorted as git sorts them (a
    directory as if its name ended in "/"), each ``mode name\\0sha``."""
    items = []
    for name, entry in entries.items():
        child = f"{directory}/{name}"
        if child in written:  # rewritten below
            entry = ("040000", "tree", written[child])
        elif child in content and entry is not None and entry[1] == "tree":
            entry = None  # left empty; a file of the same name may replace it
        if entry is None:
            continue
        raw = os.fsencode(name)
        is_tree = entry[0] == "040000"
        items.append((raw + b"/" if is_tree else raw,
                      (b"40000" if is_tree else entry[0].encode()) + b" " + raw + b"\0"
                      + bytes.fromhex(entry[2])))
    return b"".join(item for _, item in sorted(items))


def _write_trees(repo: Path, content: dict[str, dict[str, tuple[str, str, str] | None]]
                 ) -> dict[str, str]:
    """Tree shas of ``content``'s directories, deepest first, written as
    one pack (``git index-pack``): mktree or write-tree would write a loose
    object file per tree, 65 us each. An empty directory gets none (git
    keeps no empty trees)."""
    written: dict[str, str] = {}
    objects: list[bytes] = []
    for directory in sorted(content, key=lambda d: d.count("/"), reverse=True):
        body = _tree_body(content[directory], written, directory, content)
        if body:
            written[directory] = hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()
            objects.append(_pack_entry(body))
    if objects:
        pack = b"PACK" + struct.pack(">II", 2, len(objects)) + b"".join(objects)
        git(repo, "index-pack", "--stdin", input=pack + hashlib.sha1(pack).digest())
    return written


def _pack_entry(body: bytes) -> bytes:
    """One tree in pack format: type 2 and the size in a varint, then zlib."""
    size = len(body)
    header = bytearray([0x20 | (size & 0x0F)])
    size >>= 4
    while size:
        header[-1] |= 0x80
        header.append(size & 0x7F)
        size >>= 7
    return bytes(header) + zlib.compress(body, 1)
