"""A private index, so that our staging never touches the user's.

A user's ``git add``/``git commit``/``datalad save`` while we commit must
neither sweep our outputs into their commit nor lose what they staged. We
stage into a copy of their index (``GIT_INDEX_FILE``; git-annex honours it
too), build our commits from it, and once the branch has moved, write just
our paths' entries into the user's index so that ``git status`` agrees with
the new HEAD. The copy keeps the stat information of the user's index, so
nothing outside our paths is hashed again.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from ..errors import GitError
from ..process import pid_alive
from .commits import covering, index_pathspecs
from .git import git, git_text, literal


class PrivateIndex:
    """``with PrivateIndex(repo) as index:`` stage with ``env=index.env``.

    Given ``paths``, the index holds only the user's entries at or below
    them: staging and reading it then cost what the job's paths cost, not
    what the dataset's 100 000 files cost (every ``update-index`` reads and
    rewrites the whole index file). Nothing outside them is read from it:
    commits are built from the parent tree plus these entries."""

    def __init__(self, repo: Path, paths: list[str] | None = None):
        self.repo = Path(repo)
        self.paths = paths
        self.user_index = Path(self.repo, git_text(self.repo, "rev-parse", "--git-path",
                                                   "index").strip())
        work = Path(self.repo, git_text(self.repo, "rev-parse", "--git-path",
                                        "slurmsweep").strip())
        work.mkdir(parents=True, exist_ok=True)
        self.path = work / f"index-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.env = dict(os.environ, GIT_INDEX_FILE=str(self.path))

    def __enter__(self) -> PrivateIndex:
        if not self.user_index.exists():
            return self
        if self.paths is None:
            shutil.copyfile(self.user_index, self.path)
            return self
        # The user's own entries: the stage numbers of a conflict included.
        out = git(self.repo, "ls-files", "-s", "-z", "--",
                  *index_pathspecs(self.repo, covering(self.paths)))
        if out:
            git(self.repo, "update-index", "-z", "--index-info", input=out, env=self.env)
        return self

    def __exit__(self, *exc) -> None:
        for leftover in (self.path, self.path.with_name(self.path.name + ".lock")):
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass


def remove_stale_indexes(repo: Path) -> None:
    """Private indexes of processes that died (kill -9) are litter: remove
    them; and repair what one killed holding the user's index lock left."""
    recover_user_index(repo)
    work = Path(repo, git_text(repo, "rev-parse", "--git-path", "slurmsweep").strip())
    for path in work.glob("index-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not pid_alive(int(pid)):
            path.unlink(missing_ok=True)


class UserIndexLock:
    """The user's ``index.lock``, held while the branch moves and our entries
    enter their index: a concurrent ``git commit`` (which holds the same
    lock from start to end) then either ran entirely before us, and our
    compare-and-swap sees it, or starts after, on a HEAD and index that
    agree. Without it, a commit between our branch move and the index update
    would record our outputs as deleted."""

    def __init__(self, repo: Path, timeout: float = 30.0, paths: list[str] = ()):
        self.repo = Path(repo)
        self.paths = list(paths)
        self.index = Path(repo, git_text(repo, "rev-parse", "--git-path", "index").strip())
        self.lock = self.index.with_name(self.index.name + ".lock")
        self.timeout = timeout
        self.fd: int | None = None
        notes = Path(repo, git_text(repo, "rev-parse", "--git-path", "slurmsweep").strip())
        notes.mkdir(parents=True, exist_ok=True)
        self.owner = notes / f"index-lock-{os.getpid()}"
        self.paths_note = notes / f"index-paths-{os.getpid()}"

    def _note(self, st: os.stat_result) -> None:
        """Say which index.lock file is ours (inode and time): if we die
        holding it, the next command may remove exactly that file."""
        self.owner.write_text(f"{st.st_ino} {st.st_mtime_ns}")

    def _stale_lock_of_ours(self) -> bool:
        """Remove index.lock if it is the very file a dead process of ours held."""
        try:
            st = os.stat(self.lock)
        except FileNotFoundError:
            return True
        for note in self.owner.parent.glob("index-lock-*"):
            pid = note.name.rpartition("-")[2]
            if note == self.owner or not pid.isdigit() or pid_alive(int(pid)):
                continue
            if note.read_text().strip() == f"{st.st_ino} {st.st_mtime_ns}":
                self.lock.unlink(missing_ok=True)
                note.unlink(missing_ok=True)
                return True
            note.unlink(missing_ok=True)  # a note about a lock long gone
        return False

    def __enter__(self) -> UserIndexLock:
        deadline = time.monotonic() + self.timeout
        delay = 0.02
        while True:
            try:
                self.fd = os.open(self.lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                self._note(os.fstat(self.fd))
                # If we die from here on, the branch may have moved while the
                # user's index still lacks our entries: these are the paths
                # the next command brings up to date (recover_user_index).
                self.paths_note.write_bytes(b"".join(os.fsencode(p) + b"\0"
                                                     for p in self.paths))
                return self
            except FileExistsError:
                if self._stale_lock_of_ours():
                    continue
                if time.monotonic() > deadline:
                    raise GitError(f"{self.lock} exists for over {self.timeout:.0f} s: "
                                   "another git process is running (or died: then "
                                   "remove that file)") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def install(self, staged: dict[str, tuple[str, str]], removed: list[str]) -> None:
        """Make the user's index their current one plus our entries."""
        lines = [f"{mode} {sha}\t".encode() + os.fsencode(path) + b"\0"
                 for path, (mode, sha) in sorted(staged.items())]
        lines += [b"0 " + b"0" * 40 + b"\t" + os.fsencode(path) + b"\0" for path in removed]
        work = self.lock.with_name(f"slurmsweep-index-{os.getpid()}")
        try:
            if self.index.exists():
                shutil.copyfile(self.index, work)
            if lines:
                git(self.repo, "update-index", "-z", "--index-info", input=b"".join(lines),
                    env=dict(os.environ, GIT_INDEX_FILE=str(work)))
            self._note(os.stat(work))
            os.replace(work, self.lock)
            os.close(self.fd)
            self.fd = None
            os.replace(self.lock, self.index)
        finally:
            work.unlink(missing_ok=True)

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self.lock.unlink(missing_ok=True)
        self.owner.unlink(missing_ok=True)
        self.paths_note.unlink(missing_ok=True)


def recover_user_index(repo: Path) -> None:
    """Undo what a command of ours killed while holding the user's
    ``index.lock`` left: the lock itself (only the very file it held), its
    work copy of the index, and an index lagging the branch it had moved
    (``git status`` would show our new files as deleted and untracked). The
    lagging entries are those of the paths it noted, set from HEAD, as it
    would have set them."""
    notes = Path(repo, git_text(repo, "rev-parse", "--git-path", "slurmsweep").strip())
    lock = Path(repo, git_text(repo, "rev-parse", "--git-path", "index.lock").strip())
    for note in notes.glob("index-lock-*"):
        pid = note.name.rpartition("-")[2]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        try:
            st = os.stat(lock)
            if note.read_text().strip() == f"{st.st_ino} {st.st_mtime_ns}":
                lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        lock.with_name(f"slurmsweep-index-{pid}").unlink(missing_ok=True)
        paths_note = notes / f"index-paths-{pid}"
        if paths_note.exists():
            paths = [os.fsdecode(p) for p in paths_note.read_bytes().split(b"\0") if p]
            for i in range(0, len(paths), 1000):
                # Fails while someone else holds the lock: then the notes stay.
                git(repo, "reset", "-q", "--", *literal(paths[i:i + 1000]))
            paths_note.unlink(missing_ok=True)
        note.unlink(missing_ok=True)
