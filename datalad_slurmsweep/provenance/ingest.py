"""Annexing many new files at the cost of hashing them.

``git annex add --batch`` costs 3-6 ms per file, growing with the size of
the dataset; hashing the same bytes costs microseconds. So the work of
``git annex add`` on a new file is done here in bulk, with git-annex's own
plumbing wherever git-annex knows something we should not guess:

1. which files are large: ``annex.largefiles`` (git config, then the
   ``.gitattributes`` of each file, then ``git annex config``) evaluated by
   ``largefiles.py``; a file it cannot decide goes to ``git annex add``;
2. the key of each large file: ``git annex calckey --batch``, with the
   backend ``git annex add`` would use (the ``annex.backend`` attribute,
   else ``git config annex.backend``, else git-annex's default);
3. where its content and its location log live: ``git annex examinekey
   --batch`` (``${objectpath}``, ``${hashdirlower}``);
4. the content is hard-linked there and made read-only (file and key
   directory, as git-annex freezes content), then the file is atomically
   replaced by the relative symlink ``git annex add`` would write;
5. the location log: one commit on the git-annex branch (``annex_log.py``),
   or, where that cannot be done as git-annex would, ``git annex
   setpresentkey --batch`` and ``git annex merge``.

The symlinks are then staged like any file (``stage`` in ``staging.py``).
Every step can be repeated: a command killed half-way finds files that are
already links to present content, and just records and stages them.

Anything this does not cover exactly (unlocked adding, shared repositories,
freeze hooks, ignored files, a ``.git`` file instead of a
directory, a cross-device work tree) falls back to ``git annex add``.
"""
from __future__ import annotations

import os
import stat
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import annex_log
from .git import git, git_text, succeeds
from .largefiles import FileFacts, Unsupported, compile_expression

DEFAULT_BACKEND = "SHA256E"
PLACING_THREADS = 4
_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


@dataclass
class Ingested:
    linked: list[str] = field(default_factory=list)  # now annex symlinks, to stage
    to_git: list[str] = field(default_factory=list)  # small files: their content to git
    fallback: list[str] = field(default_factory=list)  # for ``git annex add``
    to_log: dict[str, str] = field(default_factory=dict)  # key -> its location log


@dataclass(frozen=True)
class AnnexSettings:
    uuid: str
    objects: Path  # <top>/.git/annex/objects
    largefiles: str | None  # from git config: overrides the attributes
    default_largefiles: str  # git annex config, or "anything"
    backend: str  # when no attribute names one
    usable: bool  # False: leave everything to ``git annex add``
    log_directly: bool = False  # location logs by one branch commit (annex_log.py)
    commit_message: str = "update"  # of git-annex's commits to its branch


def _config(repo: Path) -> dict[str, str]:
    out = git(repo, "config", "-z", "--list", check=False)
    found = {}
    for item in out.split(b"\0"):
        key, _, value = item.decode(errors="replace").partition("\n")
        if key:
            found[key.lower()] = value
    return found


def _branch_config(repo: Path, names: list[str]) -> dict[str, str]:
    """``git annex config --get`` of ``names``, asked only when the
    git-annex branch has a config log at all (one ``cat-file`` in the
    common case)."""
    if not succeeds(repo, "cat-file", "-e", "git-annex:config.log"):
        return {}
    found = {name: git_text(repo, "annex", "config", "--get", name, check=False).strip()
             for name in names}
    return {name: value for name, value in found.items() if value}


def settings(repo: Path) -> AnnexSettings:
    config = _config(repo)
    top = Path(repo)
    uuid = config.get("annex.uuid", "")
    blockers = [
        not uuid, not (top / ".git").is_dir(),
        config.get("core.sharedrepository", "false").lower() not in ("false", "0", "umask"),
        "annex.freezecontent-command" in config, "annex.addunlocked" in config,
        config.get("annex.crippledfilesystem", "false").lower() == "true",
    ]
    branch = {} if any(blockers) else _branch_config(repo, ["annex.addunlocked",
                                                             "annex.largefiles"])
    backend = (config.get("annex.backend") or config.get("annex.backends", "").split(" ")[0]
               or DEFAULT_BACKEND)
    return AnnexSettings(uuid=uuid, objects=top / ".git" / "annex" / "objects",
                         largefiles=config.get("annex.largefiles"),
                         default_largefiles=branch.get("annex.largefiles", "anything"),
                         backend=backend,
                         usable=not any(blockers) and "annex.addunlocked" not in branch,
                         log_directly=annex_log.allowed(top, config),
                         commit_message=config.get("annex.commitmessage", "update"))


def _attributes(repo: Path, files: list[str], env: Mapping[str, str] | None
                ) -> dict[str, dict[str, str]]:
    out = git(repo, "check-attr", "-z", "--stdin", "annex.largefiles", "annex.backend",
              input=b"".join(os.fsencode(f) + b"\0" for f in files), env=env)
    words = out.split(b"\0")
    found: dict[str, dict[str, str]] = {}
    for i in range(0, len(words) - 2, 3):
        path, attr, value = (os.fsdecode(w) for w in words[i:i + 3])
        found.setdefault(path, {})[attr] = value
    return found


def _ignored(repo: Path, files: list[str], env: Mapping[str, str] | None) -> set[str]:
    out = git(repo, "check-ignore", "-z", "--stdin", "--no-index",
              input=b"".join(os.fsencode(f) + b"\0" for f in files), env=env, check=False)
    return {os.fsdecode(p) for p in out.split(b"\0") if p}


def decide(repo: Path, files: list[str], cfg: AnnexSettings,
           env: Mapping[str, str] | None = None) -> tuple[dict[str, str], Ingested]:
    """Large files with their backend, and the rest sorted into to_git/fallback."""
    result = Ingested()
    if not files:
        return {}, result
    ignored = _ignored(repo, files, env)
    attrs = _attributes(repo, files, env)
    large: dict[str, str] = {}
    for path in files:
        if path in ignored:
            result.fallback.append(path)
            continue
        given = attrs.get(path, {})
        expression = cfg.largefiles
        if expression is None:
            value = given.get("annex.largefiles", "unspecified")
            expression = cfg.default_largefiles if value == "unspecified" else value
        backend = given.get("annex.backend", "unspecified")
        try:
            if _unset(expression) or _unset(backend):
                raise Unsupported("an unset attribute")
            full = os.path.join(repo, path)
            is_large = compile_expression(expression)(
                FileFacts(path, full, os.lstat(full).st_size))
        except (Unsupported, OSError):
            result.fallback.append(path)
            continue
        if is_large:
            large[path] = cfg.backend if backend == "unspecified" else backend
        else:
            result.to_git.append(path)
    return large, result


def _unset(value: str) -> bool:
    return value in ("unset", "set")


def _keys(repo: Path, large: dict[str, str]) -> dict[str, str]:
    by_backend: dict[str, list[str]] = {}
    for path, backend in large.items():
        by_backend.setdefault(backend, []).append(path)
    keys: dict[str, str] = {}
    for backend, paths in by_backend.items():
        out = git(repo, "annex", "calckey", "--batch", "-z", f"--backend={backend}",
                  input=b"".join(os.fsencode(p) + b"\0" for p in paths))
        # One key per line, an empty line for a file it could not read.
        found = out.decode(errors="surrogateescape").split("\n")[:len(paths)]
        for path, key in zip(paths, found, strict=False):
            keys[path] = key.strip()
    return keys


@dataclass(frozen=True)
class KeyPlace:
    objectpath: str  # relative to the top of the repository
    log: str  # its location log on the git-annex branch


def _places(repo: Path, keys: set[str]) -> dict[str, KeyPlace]:
    if not keys:  # no git-annex process for a finish that annexes nothing
        return {}
    order = sorted(keys)
    # ${hashdirlower} is always "abc/def/", so no separator is needed
    out = git(repo, "annex", "examinekey", "--batch",
              "--format=${hashdirlower}${objectpath}\n",
              input="".join(k + "\n" for k in order).encode())
    found = {}
    for key, line in zip(order, out.decode(errors="surrogateescape").splitlines(),
                         strict=False):
        hashdir, objectpath = line[:8], line[8:]
        found[key] = KeyPlace(objectpath, f"{hashdir}{os.path.basename(objectpath)}.log")
    return found


class _Placer:
    """Content into the annex (a hard link, made read-only with its key
    directory, as git-annex freezes content), then the file replaced by its
    symlink in one rename, so the path never disappears. Hash directories
    made once are remembered: this is the loop a 100 000-file finish runs."""

    def __init__(self, repo: Path):
        self.repo = str(repo)
        self.made: set[str] = set()
        umask = os.umask(0o022)
        os.umask(umask)
        self.frozen_dir = 0o777 & ~umask & ~_WRITE

    def _key_dir(self, key_dir: str) -> None:
        parent = os.path.dirname(key_dir)
        if parent not in self.made:
            os.makedirs(parent, exist_ok=True)
            self.made.add(parent)
        try:
            os.mkdir(key_dir)
        except FileExistsError:  # dropped or partial content once: writable again
            os.chmod(key_dir, 0o755)

    def place(self, path: str, obj: str) -> None:
        """``obj`` is relative to the top of the repository."""
        full = os.path.join(self.repo, path)
        obj_full = os.path.join(self.repo, obj)
        key_dir = os.path.dirname(obj_full)
        st = os.lstat(full)
        if st.st_nlink > 1:
            # Another name would share the annexed inode: git annex add
            # knows what annex.thin and friends want done with such a file.
            raise OSError("has other hard links")
        try:
            self._key_dir(key_dir)
            os.link(full, obj_full)
            os.chmod(obj_full, st.st_mode & ~_WRITE & 0o7777)
        except FileExistsError:
            pass  # the same content is annexed already
        os.chmod(key_dir, self.frozen_dir)
        target = "../" * path.count("/") + obj
        temporary = f"{full}.slurmsweep-link-{os.getpid()}"
        os.symlink(target, temporary)
        os.replace(temporary, full)


def annex_link_key(repo: Path, path: str, cfg: AnnexSettings) -> str | None:
    """The key of an annex symlink whose content is here, else None (its
    object file's name is the key, escaped as git-annex escapes it)."""
    full = os.path.join(repo, path)
    target = os.readlink(full)
    resolved = os.path.normpath(os.path.join(os.path.dirname(full), target))
    if not resolved.startswith(str(cfg.objects) + os.sep) or not os.path.exists(resolved):
        return None
    return annex_log.key_from_file(os.path.basename(resolved))


def _place_all(placer: _Placer, work: list[tuple[str, str, str]]) -> list[bool]:
    """Place each (path, key, object path); whether each was placed. On
    several threads for many files: the system calls release the GIL, and
    with 2 threads 10 000 files took 0.9-1.0 s instead of 1.8 s here. Files
    of one key go to one thread, so no two threads link the same object;
    each thread writes only its own items of ``placed``."""
    placed = [False] * len(work)

    def place(items: list[int]) -> None:
        for i in items:
            path, _, objectpath = work[i]
            try:
                placer.place(path, objectpath)
                placed[i] = True
            except OSError:
                pass

    threads = min(PLACING_THREADS, os.cpu_count() or 1) if len(work) >= 256 else 1
    shares: list[list[int]] = [[] for _ in range(threads)]
    for i, (_, key, _) in enumerate(work):
        shares[zlib.crc32(key.encode()) % threads].append(i)
    if threads == 1:
        place(shares[0])
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(place, shares))
    return placed


def ingest(repo: Path, files: list[str], cfg: AnnexSettings,
           env: Mapping[str, str] | None = None, linked: list[str] = ()) -> Ingested:
    """Annex the large ones of ``files`` (new or rewritten regular files).
    ``linked`` are annex symlinks found in place (a killed run linked them
    but may not have logged them): their content is logged too. The
    location logs to write are in ``to_log``: the caller writes them
    (``annex_log.LocationLogs``) before any commit names the files."""
    if not cfg.usable:
        return Ingested(fallback=list(files))
    large, result = decide(repo, files, cfg, env)
    keys = _keys(repo, large)
    present = {k for f in linked if (k := annex_link_key(repo, f, cfg))}
    places = _places(repo, set(keys.values()) | present)
    work = []
    for path, key in keys.items():
        place = places.get(key)
        if not key or not place or not place.objectpath:
            result.fallback.append(path)
        else:
            work.append((path, key, place.objectpath))
    for (path, key, _), placed in zip(work, _place_all(_Placer(repo), work), strict=True):
        if placed:
            result.linked.append(path)
            present.add(key)
        else:
            result.fallback.append(path)
    # A key is logged only once its content is in place.
    result.to_log = {k: places[k].log for k in present if k in places}
    return result
