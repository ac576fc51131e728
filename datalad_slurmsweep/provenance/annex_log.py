"""Location logs written to the git-annex branch in one commit.

``git annex setpresentkey --batch`` and the ``git annex merge`` that
commits its journal cost about 0.8 ms per key (8 s of a 10 000-point
finish), and the commit rewrites git-annex's whole index however few keys
changed. This writes the same log lines as one commit on the branch:

- under git-annex's own journal lock (``.git/annex/journal.lck``, a POSIX
  lock as git-annex takes it), so no git-annex process changes the branch,
  its index or the journal meanwhile;
- only when the repository is in the state whose protocol we know: the
  branch exists, git-annex's index is at the branch's commit
  (``.git/annex/index.lck`` names it), and the journal is empty (no change
  of another process waits there, which would later overwrite ours);
- each key's log keeps the lines of other repositories and gets one line
  for ours, dated as git-annex's vector clock dates it (what its
  compaction leaves);
- the blobs go in one pack (``fast-import``), git-annex's index gets the
  changed entries (``update-index --index-info``), and the commit moves the
  branch only if nobody else moved it (``update-ref`` with the old value);
  then ``index.lck`` is set as git-annex sets it.

Anything else (no branch, a journal with changes, a stale index, a private
or tuned repository, hooks git-annex would run, SHA-256 git, a lock held
too long) returns False and the caller uses git-annex's plumbing. A run
killed after the commit but before ``index.lck`` leaves an index git-annex
brings up to date itself (it merges a branch that moved under it).
"""
from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from .. import process
from ..crashpoints import crashpoint
from ..errors import GitError
from .commits import BUILD_REF_PREFIX, fast_import, quote_path
from .git import blob_sha, cat_blobs, git, git_text

BRANCH = "refs/heads/git-annex"
REFLOG_MESSAGE = "datalad slurm-finish: location logs"
# Keys per branch commit: bounds the memory of a 100 000-point finish's logs
# (its thread runs beside the finish's own peak), at one commit per batch.
BATCH = 20000
LOCK_WAIT = 30.0  # seconds: git-annex holds the lock for a commit, not longer
# Configuration under which git-annex would write elsewhere, or run a hook
# around a branch commit: git-annex's own plumbing handles those.
_UNSUPPORTED = ("annex.private", "annex.pidlock", "annex.commitmessage-command",
                "annex.post-update-command", "extensions.objectformat")


def key_from_file(name: str) -> str:
    """A key from its object file name (git-annex's ``fileKey``): ``%`` is
    ``/``, and ``&c``, ``&s``, ``&a`` are ``:``, ``%``, ``&``."""
    escapes = {"c": ":", "s": "%", "a": "&"}
    parts = []
    for segment in name.split("%"):
        first, *rest = segment.split("&")
        parts.append(first + "".join(escapes.get(r[:1], r[:1]) + r[1:] for r in rest))
    return "/".join(parts)


def allowed(repo: Path, config: Mapping[str, str]) -> bool:
    """Whether git-annex would write the location log as we do, given the
    repository's git config (lower-case keys)."""
    if any(key in config for key in _UNSUPPORTED):
        return False
    if any(key.startswith("annex.tune.") for key in config):
        return False
    hooks = Path(repo) / os.path.expanduser(config.get("core.hookspath", ".git/hooks"))
    return not any((hooks / h).exists() for h in ("post-update-annex", "commitmessage"))


def _journal_empty(annex_dir: Path) -> bool:
    for name in ("journal", "journal-private"):
        try:
            with os.scandir(annex_dir / name) as entries:
                if any(True for _ in entries):
                    return False
        except FileNotFoundError:
            pass
    return not (annex_dir / "index.lock").exists()


def _lock(path: Path) -> int | None:
    """The journal lock, waiting up to LOCK_WAIT; None if not had."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def _stamp(line: bytes) -> float:
    try:
        return float(line.split(b" ", 1)[0].rstrip(b"s"))
    except ValueError:
        return 0.0


def _new_log(old: bytes | None, uuid: bytes, now: float) -> bytes:
    """``old`` with our line replaced by one saying the content is here,
    dated as git-annex's vector clock dates it: now, or just after our own
    newest line if that is not older (a clock that went back). Other
    repositories' lines are kept as they are."""
    lines = [line for line in (old or b"").splitlines() if line.strip()]
    ours = [line for line in lines if line.split(b" ")[2:3] == [uuid]]
    newest = max((_stamp(line) for line in ours), default=0.0)
    stamp = now if now > newest else newest + 1
    kept = [line for line in lines if line not in ours]
    return b"".join(line + b"\n" for line in kept) + b"%ds 1 %s\n" % (stamp, uuid)


def _clock() -> float:
    """Now, or git-annex's fixed clock when a test or user set one."""
    fixed = os.environ.get("GIT_ANNEX_VECTOR_CLOCK")
    return float(fixed) if fixed else float(int(time.time()))


def _fast_import_commit(repo: Path, logs: dict[str, bytes], old: str, message: str) -> str:
    """The commit of ``logs`` on ``old``, written in one pack: ``write-tree``
    would write each changed tree as a loose object, and 10 000 keys change
    about 13 000 trees of the branch (6 s on this machine's disk)."""
    ident = git_text(repo, "var", "GIT_COMMITTER_IDENT").strip()
    marks: dict[bytes, int] = {}
    stream = []
    for data in logs.values():
        if data not in marks:
            marks[data] = len(marks) + 1
            stream.append(b"blob\nmark :%d\ndata %d\n%s\n" % (marks[data], len(data), data))
    ref = f"{BUILD_REF_PREFIX}annex-{os.getpid()}"
    commit_mark, text = len(marks) + 1, message.encode()
    stream.append(b"commit %s\nmark :%d\ncommitter %s\ndata %d\n%s\nfrom %s\n"
                  % (ref.encode(), commit_mark, ident.encode(), len(text), text, old.encode()))
    stream.extend(b"M 100644 :%d %s\n" % (marks[data], os.fsencode(quote_path(path)))
                  for path, data in logs.items())
    stream.append(b"\ndone\n")
    return fast_import(repo, ref, stream)[f":{commit_mark}"]


def _commit(repo: Path, annex_dir: Path, logs: dict[str, bytes], old: str,
            message: str) -> None:
    """The logs committed on ``old`` and the branch moved there if nobody
    else moved it; git-annex's index, updated in a copy, replaces the index
    and ``index.lck`` names the commit. A failure before the branch moves
    leaves git-annex's files as they were (and unreferenced objects)."""
    new = _fast_import_commit(repo, logs, old, message)
    crashpoint("annex-log-built")
    index = annex_dir / f"index.slurmsweep-{os.getpid()}"
    try:
        shutil.copyfile(annex_dir / "index", index)
        git(repo, "update-index", "-z", "--index-info",
            env={**os.environ, "GIT_INDEX_FILE": str(index)},
            input=b"".join(f"100644 {blob_sha(d)}\t".encode() + os.fsencode(p) + b"\0"
                           for p, d in logs.items()))
        git(repo, "update-ref", "-m", REFLOG_MESSAGE, BRANCH, new, old)
        crashpoint("annex-log-moved")
        os.replace(index, annex_dir / "index")
    finally:
        index.unlink(missing_ok=True)
    status = annex_dir / f"index.lck.slurmsweep-{os.getpid()}"
    status.write_text(new + "\n")
    os.replace(status, annex_dir / "index.lck")


def log_present(repo: Path, logs: set[str], uuid: str, message: str = "update") -> bool:
    """Record in the location logs ``logs`` (``aaa/bbb/<key file>.log`` on
    the branch) that repository ``uuid`` has the content; the caller has
    checked :func:`allowed`. False, with nothing written, when this cannot
    be done here as git-annex would do it."""
    annex_dir = Path(repo).absolute() / ".git" / "annex"  # GIT_INDEX_FILE is read in repo
    if not logs or not (annex_dir / "index").exists():
        return False
    fd = _lock(annex_dir / "journal.lck")
    if fd is None:
        return False
    try:
        old = git_text(repo, "rev-parse", "--verify", "--quiet", BRANCH, check=False).strip()
        try:
            indexed = (annex_dir / "index.lck").read_text().split("\n", 1)[0].strip()
        except OSError:
            indexed = ""
        if not old or indexed != old or not _journal_empty(annex_dir):
            return False
        for leftover in annex_dir.glob("index*.slurmsweep-*"):  # of a killed run
            leftover.unlink(missing_ok=True)
        paths = sorted(logs)
        current = cat_blobs(repo, [f"{old}:{p}" for p in paths])
        now = _clock()
        fresh = _new_log(None, uuid.encode(), now)  # one object for every new key
        contents = {p: fresh if body is None else _new_log(body, uuid.encode(), now)
                    for p, body in zip(paths, current, strict=True)}
        try:
            _commit(repo, annex_dir, contents, old, message)
        except (GitError, OSError):
            return False
        return True
    finally:
        os.close(fd)


def record_present(repo: Path, logs: Mapping[str, str], uuid: str, direct: bool,
                   message: str = "update") -> None:
    """Record that repository ``uuid`` has the content of ``logs`` (key ->
    its log file): by a branch commit per BATCH keys when ``direct`` and
    the repository allows it, else by git-annex's plumbing."""
    items = sorted(logs.items())
    for start in range(0, len(items), BATCH):
        _record_batch(repo, dict(items[start:start + BATCH]), uuid, direct, message)


def _record_batch(repo: Path, logs: Mapping[str, str], uuid: str, direct: bool,
                  message: str) -> None:
    if direct:
        if log_present(repo, set(logs.values()), uuid, message):
            return
        # Most often a journal another git-annex left uncommitted: commit it, retry.
        git(repo, "annex", "merge", "--quiet")
        if log_present(repo, set(logs.values()), uuid, message):
            return
    with process.Feed(["git", "annex", "setpresentkey", "--batch"], cwd=repo,
                      error=GitError) as feed:
        feed.write("".join(f"{k} {uuid} 1\n" for k in sorted(logs)).encode())
    # setpresentkey is plumbing that leaves its changes in git-annex's
    # journal; ``git annex merge`` commits them to the git-annex branch, as
    # ``git annex add`` does at its end. Without it a clone made now would
    # not know that the content is here.
    git(repo, "annex", "merge", "--quiet")


class LocationLogs:
    """Location logs written on another thread while the caller goes on
    staging and building commits (the log commit is mostly git's work, so
    it overlaps ours on the other core). ``wait`` before anything names the
    files in a commit that can reach the branch: a kill must never leave a
    committed file whose content is here but not logged."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def write(self, repo: Path, logs: Mapping[str, str], uuid: str, direct: bool,
              message: str) -> None:
        if not logs:
            return

        def run() -> None:
            try:
                record_present(repo, logs, uuid, direct, message)
            except BaseException as exc:  # re-raised by wait, in the caller's thread
                self._errors.append(exc)

        previous = self._threads[-1] if self._threads else None

        def in_order() -> None:  # batches of one finish are logged one after another
            if previous is not None:
                previous.join()
            run()

        thread = threading.Thread(target=in_order, name="slurmsweep-location-logs")
        thread.start()
        self._threads.append(thread)

    def wait(self, raise_errors: bool = True) -> None:
        """Until every batch is logged; then the first failure is raised
        (unless another error is already on its way up)."""
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        errors, self._errors = self._errors, []
        if errors and raise_errors:
            raise errors[0]
