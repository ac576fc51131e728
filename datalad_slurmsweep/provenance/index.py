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
from .git import git, git_text


class PrivateIndex:
    """``with PrivateIndex(repo) as index:`` stage with ``env=index.env``."""

    def __init__(self, repo: Path):
        self.repo = Path(repo)
        self.user_index = Path(self.repo, git_text(self.repo, "rev-parse", "--git-path",
                                                   "index").strip())
        work = Path(self.repo, git_text(self.repo, "rev-parse", "--git-path",
                                        "slurmsweep").strip())
        work.mkdir(parents=True, exist_ok=True)
        self.path = work / f"index-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.env = dict(os.environ, GIT_INDEX_FILE=str(self.path))

    def __enter__(self) -> PrivateIndex:
        if self.user_index.exists():
            shutil.copyfile(self.user_index, self.path)
        return self

    def __exit__(self, *exc) -> None:
        for leftover in (self.path, self.path.with_name(self.path.name + ".lock")):
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass


def remove_stale_indexes(repo: Path) -> None:
    """Private indexes of processes that died (kill -9) are litter: remove them."""
    work = Path(repo, git_text(repo, "rev-parse", "--git-path", "slurmsweep").strip())
    for path in work.glob("index-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not pid_alive(int(pid)):
            path.unlink(missing_ok=True)


def sync_user_index(repo: Path, staged: dict[str, tuple[str, str]], removed: list[str],
                    timeout: float = 30.0) -> None:
    """Write our paths' entries into the user's index, so it matches the
    commits we made. Waits for a concurrent git (``index.lock``) instead of
    failing: the commits are made already, only the user's view lags."""
    lines = [f"{mode} {sha}\t".encode() + os.fsencode(path) + b"\0"
             for path, (mode, sha) in sorted(staged.items())]
    lines += [b"0 " + b"0" * 40 + b"\t" + os.fsencode(path) + b"\0" for path in removed]
    if not lines:
        return
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            git(repo, "update-index", "-z", "--index-info", input=b"".join(lines))
            return
        except GitError as exc:
            if "index.lock" not in exc.stderr or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
