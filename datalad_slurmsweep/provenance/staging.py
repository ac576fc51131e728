"""Staging exactly a job's paths into a (private) index.

New and rewritten files are annexed or put in git as ``annex.largefiles``
says, annexed ones locked, as ``datalad save`` leaves them; in bulk
(``ingest.py``), with ``git annex add`` for what the bulk path does not
cover. Deletions inside declared outputs are staged too; subdatasets are
recorded as gitlinks, their files being the subdataset's to commit.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Set
from pathlib import Path

from ..errors import GitError
from . import ingest
from .annex_log import LocationLogs
from .commits import Env, chunks, entries
from .git import blob_sha, cat_blobs, git
from .paths import under_any

# DataLad runs every git-annex command with dotfiles treated like any file
# (AnnexRepo's common options); so do we, to leave what datalad save leaves.
DATALAD_ANNEX = ("-c", "annex.dotfiles=true", "annex")


# Content meant for git stays in git: the annex clean filter must not
# second-guess (annex.largefiles) what ``stage`` decided, and for such a file
# it only passes the bytes through, at 0.5 ms a file (5000 files: 2.6 s with
# it, 0.11 s without, the same blobs). Unlocked annexed files never come this
# way (``git annex add`` restages them); git's own conversions (eol) and
# other filter drivers still apply.
NO_ANNEX_FILTER = ("-c", "annex.gitaddtoannex=false", "-c", "filter.annex.process=",
                   "-c", "filter.annex.clean=", "-c", "filter.annex.smudge=")


def _special(rel: str) -> GitError:
    return GitError(f"{rel} is a named pipe, socket or device file, which git cannot "
                    "commit (only regular files and symbolic links); remove it or declare "
                    "only the regular files beside it")


def _files_under(repo: Path, paths: list[str]) -> list[str]:
    """Every file and symlink at or below ``paths`` (dataset-relative).

    ``os.scandir`` tells the kind of each entry from the directory listing,
    without a stat per file. A nested repository (a subdataset) is its own
    to commit, and a special file is refused by name: ``git annex add``
    would skip it silently, so the record would claim an output it lacks."""
    found = []
    for path in paths:
        full = repo / path
        if full.is_symlink() or not full.is_dir():
            if not full.is_symlink() and full.exists() and not full.is_file():
                raise _special(path)
            found.append(path)
            continue
        stack = [(str(full), "" if path == "." else path + "/")]
        while stack:
            directory, prefix = stack.pop()
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name == ".git":
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        if not os.path.lexists(os.path.join(entry.path, ".git")):
                            stack.append((entry.path, prefix + entry.name + "/"))
                    elif entry.is_file(follow_symlinks=False) or entry.is_symlink():
                        found.append(prefix + entry.name)
                    else:
                        raise _special(prefix + entry.name)
    return found


def _annex_pointers(repo: Path, shas: set[str], env: Env = None) -> set[str]:
    """Which blobs are git-annex pointers (the index entries of unlocked
    annexed files), read in one ``git cat-file --batch``."""
    order = sorted(shas)
    return {sha for sha, body in zip(order, cat_blobs(repo, order, env), strict=True)
            if body is not None and body.startswith(b"/annex/objects/")}


def stage(repo: Path, paths: list[str], use_annex: bool, env: Env = None,
          links: Mapping[str, str] | None = None, force_git: Set[str] = frozenset(),
          logs: LocationLogs | None = None) -> None:
    """Stage exactly ``paths``: additions, changes and deletions.

    Files are named one by one on standard input, never as pathspecs: given
    as arguments, git-annex matches each against the whole work tree, which
    made 2000 paths take 74 s instead of 9 s in a 5000-point sweep. As with
    ``datalad save``, new files and rewritten annexed (locked) files are
    annexed or put in git as annex.largefiles says, and annexed locked; this
    is done in bulk (``ingest.py``) with ``git annex add --batch`` for what
    the bulk path does not cover. Files the index holds as regular files (in
    git, or unlocked in the annex) go through ``git update-index``, whose
    clean filter keeps each where it was.
    ``env`` names the index (``GIT_INDEX_FILE``) to stage into. File names
    travel as bytes (``os.fsencode``), so names that are not UTF-8 survive.
    ``links`` are subdatasets (path -> commit) to record as gitlinks: their
    files are the subdataset's to commit, never ours. Files in
    ``force_git`` go to git whatever annex.largefiles says. The location
    logs of newly annexed content are written on ``logs`` (the caller waits
    for them before moving a branch); without it, before this returns.
    """
    if logs is not None:
        _stage(repo, paths, use_annex, env, links, force_git, logs)
        return
    logs = LocationLogs()
    try:
        _stage(repo, paths, use_annex, env, links, force_git, logs)
    finally:
        logs.wait()


def _stage(repo: Path, paths: list[str], use_annex: bool, env: Env,
           links: Mapping[str, str] | None, force_git: Set[str], logs: LocationLogs) -> None:
    links = dict(links or {})
    paths = [p for p in paths if p not in links]
    roots = set(paths)
    indexed = {p: e for p, e in entries(repo, ["ls-files", "-s"], paths, env).items()
               if under_any(p, roots)}
    files = _files_under(repo, [p for p in paths if os.path.lexists(repo / p)])
    in_git = {f for f in files if f in indexed and indexed[f][0] != "120000"}
    unlocked: list[str] = []
    if use_annex and in_git:
        pointers = _annex_pointers(repo, {indexed[f][1] for f in in_git}, env)
        unlocked = [f for f in files if f in in_git and indexed[f][1] in pointers]
        in_git.difference_update(unlocked)
    skip = in_git | set(unlocked)
    to_git = [f for f in files if f in in_git or (f in force_git and f not in skip)]
    to_annex = [f for f in files if f not in skip and f not in force_git]
    # Batch mode does not restage a modified unlocked file; named on the
    # command line, git annex add does, and locks it as datalad save would.
    for chunk in chunks(unlocked):
        git(repo, *DATALAD_ANNEX, "add", "--quiet", "--", *chunk, env=env)
    if to_annex and use_annex:
        symlinks, small, fallback = _annex(repo, to_annex, indexed, env, logs)
        to_git += small
        _stage_symlinks(repo, symlinks, env)
        if fallback:
            git(repo, *DATALAD_ANNEX, "add", "--batch", "--quiet",
                input=b"".join(os.fsencode(f) + b"\n" for f in fallback), env=env)
    elif to_annex:
        to_git += to_annex
    if to_git:
        git(repo, *NO_ANNEX_FILTER, "update-index", "--add", "-z",
            "--stdin", input=b"".join(os.fsencode(f) + b"\0" for f in to_git), env=env)
    gone = [p for p in indexed if not os.path.lexists(repo / p)]
    if gone:
        git(repo, "update-index", "--force-remove", "-z", "--stdin",
            input=b"".join(os.fsencode(p) + b"\0" for p in gone), env=env)
    if links:
        git(repo, "update-index", "--add", "-z", "--index-info",
            input=b"".join(f"160000 {sha}\t".encode() + os.fsencode(p) + b"\0"
                           for p, sha in links.items()), env=env)


def _annex(repo: Path, files: list[str], indexed: dict[str, tuple[str, str]],
           env: Env, logs: LocationLogs) -> tuple[list[str], list[str], list[str]]:
    """Annex new and rewritten files the fast way (``ingest.py``). Returns
    the symlinks to stage (new annex links among them), the files whose
    content goes to git, and those left to ``git annex add``. A symlink
    found here is staged as it is; a changed one that points at annexed
    content here is also recorded in the location log (the state a killed
    run leaves between linking and logging)."""
    links, regular = [], []
    for f in files:
        (links if os.path.islink(repo / f) else regular).append(f)
    changed = [f for f in links if indexed.get(f, ("", ""))[1]
               != blob_sha(os.readlink(os.fsencode(repo / f)))]
    cfg = ingest.settings(repo)
    done = ingest.ingest(repo, regular, cfg, env, linked=changed)
    logs.write(repo, done.to_log, cfg.uuid, cfg.log_directly, cfg.commit_message)
    return [*done.linked, *changed], done.to_git, done.fallback


def _stage_symlinks(repo: Path, paths: list[str], env: Env) -> None:
    """Stage symlinks without git opening each: no filter applies to a
    symlink and its blob is its target, so the blobs are written in one
    pack (``fast-import``) and the entries set with ``--index-info``,
    instead of a loose object file per link (``update-index --add``)."""
    if not paths:
        return
    blobs: dict[str, bytes] = {}
    lines = []
    for path in paths:
        target = os.readlink(os.fsencode(repo / path))
        sha = blob_sha(target)
        blobs[sha] = target
        lines.append(f"120000 {sha}\t".encode() + os.fsencode(path) + b"\0")
    stream = [b"blob\ndata %d\n%s\n" % (len(t), t) for t in blobs.values()]
    git(repo, "fast-import", "--quiet", "--done", input=b"".join([*stream, b"done\n"]))
    git(repo, "update-index", "-z", "--index-info", input=b"".join(lines), env=env)
