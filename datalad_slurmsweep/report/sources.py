"""Reading what a report describes from git alone: the run records in the
history and the files of one commit.

Nothing here looks at the work tree's state or the job store: a report
rebuilt at a later commit from the same records shows the same table. A
file's content comes from its committed blob; for a git-annex file the
blob names a key, whose content is read from the annex when it is present
there (the key is the content's hash, so it is the committed content too).
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from ..errors import ReportError, SlurmsweepError
from ..provenance.git import cat_blobs, git, git_text, messages, resolve_commit
from ..provenance.record import SUBJECT_TAG, ParsedRecord, parse_record
from ..provenance.tables import inflate


@dataclass
class FoundRecord:
    commit: str
    record: ParsedRecord


def records_in(root: Path, *rev_args: str) -> list[FoundRecord]:
    """Every run record ``git log REV_ARGS`` lists, oldest first."""
    found = []
    for sha, message in messages(root, "-F", f"--grep={SUBJECT_TAG}", *rev_args):
        try:
            parsed = parse_record(message)
        except SlurmsweepError:
            continue  # a damaged record is not a result
        if parsed is not None:
            found.append((sha, parsed))
    return [FoundRecord(sha, parsed)
            for sha, parsed in reversed(inflate(root, found, skip_damaged=True))]


def commit_of(root: Path, revision: str, what: str) -> str:
    sha = resolve_commit(root, revision)
    if sha is None:
        raise ReportError(f"{what} {revision!r} is not a commit of this dataset")
    return sha


def _blob_ids(root: Path, commit: str, paths: list[str]) -> dict[str, str]:
    """path -> blob id, from one ``git ls-tree -r`` of the paths' common
    directory. (``cat-file`` on ``commit:path`` walks the tree once per
    path, which is quadratic in a sweep directory of 10 000 points.)"""
    common = posixpath.commonpath(paths) if len(paths) > 1 else posixpath.dirname(paths[0])
    spec = ["--", f":(literal){common}"] if common else []
    out = git(root, "ls-tree", "-r", "-z", "--full-tree", commit, *spec)
    wanted = set(paths)
    found = {}
    for entry in out.split(b"\0"):
        meta, _, name = entry.partition(b"\t")
        path = name.decode(errors="surrogateescape")
        if path in wanted and meta.split(b" ")[1:2] == [b"blob"]:
            found[path] = meta.split(b" ")[2].decode()
    return found


def read_blobs(root: Path, commit: str, paths: list[str]) -> dict[str, bytes]:
    """The committed content of ``paths`` at ``commit`` (absent ones left
    out), with one ``ls-tree`` and one ``cat-file --batch`` however many."""
    if not paths:
        return {}
    ids = _blob_ids(root, commit, paths)
    order = [p for p in paths if p in ids]
    if not order:
        return {}
    blobs = {path: blob for path, blob in zip(order, cat_blobs(root, [ids[p] for p in order]),
                                              strict=True) if blob is not None}
    return _annexed_content(root, blobs)


def _annex_key(blob: bytes) -> str | None:
    """The annex key a committed symlink or pointer file names, else None."""
    if len(blob) > 1024 or b"annex/objects/" not in blob:
        return None
    text = blob.decode(errors="replace").strip()
    return posixpath.basename(text) if "\n" not in text else None


def _annexed_content(root: Path, blobs: dict[str, bytes]) -> dict[str, bytes]:
    keys = {p: k for p, b in blobs.items() if (k := _annex_key(b))}
    if not keys:
        return blobs
    wanted = sorted(set(keys.values()))
    try:
        out = git_text(root, "annex", "contentlocation", "--batch",
                       input="".join(k + "\n" for k in wanted).encode())
    except SlurmsweepError:
        out = ""
    where = dict(zip(wanted, out.split("\n"), strict=False))
    for path, key in keys.items():
        location = where.get(key)
        try:
            blobs[path] = (root / location).read_bytes() if location else b""
        except OSError:
            blobs[path] = b""
        if not blobs[path]:
            del blobs[path]  # content not here: ``datalad get`` it first
    return blobs


def head(root: Path) -> str:
    sha = resolve_commit(root, "HEAD")
    if sha is None:
        raise ReportError("the dataset has no commit yet: there is nothing to report")
    return sha
