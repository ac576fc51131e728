"""The one runner for git and git-annex.

Every call goes through :func:`datalad_slurmsweep.process.run`, so a refusal
is a :class:`~datalad_slurmsweep.errors.GitError` naming the command and
quoting git's stderr. Paths given to git are always ``:(literal)`` pathspecs:
output names may contain glob characters, which git must not expand.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from .. import process
from ..errors import GitError


def git(repo: Path, *args: str, input: bytes | None = None,
        env: Mapping[str, str] | None = None, check: bool = True) -> bytes:
    """``git ARGS`` in ``repo``; its standard output."""
    return process.run(["git", *args], cwd=repo, input=input, env=env, check=check,
                       error=GitError).stdout


def git_text(repo: Path, *args: str, **kwargs) -> str:
    return git(repo, *args, **kwargs).decode(errors="replace")


def succeeds(repo: Path, *args: str) -> bool:
    """Whether ``git ARGS`` exits 0 (for questions git answers by exit code)."""
    return process.run(["git", *args], cwd=repo, check=False, error=GitError).returncode == 0


def cat_blobs(repo: Path, names: list[str],
              env: Mapping[str, str] | None = None) -> list[bytes | None]:
    """The content of each object ``names`` names (a sha, or ``rev:path``),
    in order, from one ``git cat-file --batch``; None for one that is
    missing or not a blob."""
    if not names:
        return []
    if any("\n" in name for name in names):
        raise GitError("cannot read an object whose name holds a newline: "
                       + next(n for n in names if "\n" in n))
    out = git(repo, "cat-file", "--batch", input="".join(n + "\n" for n in names).encode(),
              env=env)
    found: list[bytes | None] = []
    pos = 0
    for _ in names:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3:  # "<name> missing"
            found.append(None)
            continue
        size = int(header[2])
        found.append(out[pos:pos + size] if header[1] == b"blob" else None)
        pos += size + 1
    return found


def blob_sha(data: bytes) -> str:
    """The object id git gives ``data`` as a blob (SHA-1 repositories)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def literal(paths: Iterable[str]) -> list[str]:
    return [f":(literal){p}" for p in paths]


def head_state(repo: Path) -> tuple[str, str]:
    """(ref to move, commit it points to): the branch, or HEAD if detached."""
    ref = git_text(repo, "symbolic-ref", "-q", "HEAD", check=False).strip() or "HEAD"
    sha = git_text(repo, "rev-parse", "--verify", "HEAD^{commit}").strip()
    return ref, sha


def advance(repo: Path, ref: str, new: str, old: str) -> None:
    """Move ``ref`` from ``old`` to ``new``; fails if someone else moved it."""
    git(repo, "update-ref", "-m", "datalad slurm-finish", ref, new, old)


def is_ancestor(repo: Path, commit: str, of: str = "HEAD") -> bool:
    return succeeds(repo, "merge-base", "--is-ancestor", commit, of)


def resolve_commit(repo: Path, revision: str) -> str | None:
    """The full sha of ``revision``, None if it names no commit."""
    proc = process.run(["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
                       cwd=repo, check=False, error=GitError)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def tree_of(repo: Path, path: str, revision: str = "HEAD") -> str:
    """The object id of ``path`` in ``revision``, "" if it is not there."""
    proc = process.run(["git", "rev-parse", f"{revision}:{path}"], cwd=repo, check=False,
                       error=GitError)
    return proc.stdout.decode().strip() if proc.returncode == 0 else ""


def dirty_paths(repo: Path, paths: list[str]) -> list[str]:
    """Which of ``paths`` differ from HEAD, or are untracked."""
    if not paths:
        return []
    out = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all",
              "--ignore-submodules=none", "--", *literal(paths))
    return [entry[3:].decode() for entry in out.split(b"\0") if len(entry) > 3]


def changed_since(repo: Path, commit: str, paths: list[str]) -> list[str]:
    """Which of ``paths`` differ between ``commit`` and the work tree."""
    out = git(repo, "diff", "--name-only", "-z", commit, "--", *literal(paths))
    return [p.decode() for p in out.split(b"\0") if p]


def messages(repo: Path, *rev_args: str) -> list[tuple[str, str]]:
    """(sha, full message) of the commits ``git log REV_ARGS`` lists, in one call."""
    out = git_text(repo, "log", "--format=%H%x00%B%x01", *rev_args)
    found = []
    for entry in out.split("\x01"):
        if "\x00" in entry:
            sha, message = entry.strip().split("\x00", 1)
            found.append((sha, message))
    return found


def annex_unlock(repo: Path, paths: list[str]) -> None:
    """Unlock existing annexed outputs so a job can rewrite them: a locked
    file is a symlink into the annex, and writing through it would change
    (or, for another user, fail on) the stored content."""
    for i in range(0, len(paths), 1000):
        git(repo, "annex", "unlock", "--quiet", "--", *paths[i:i + 1000])


def annex_lock(repo: Path, paths: list[str]) -> None:
    """Undo :func:`annex_unlock`, best effort (used when a submission is undone)."""
    for i in range(0, len(paths), 1000):
        git(repo, "annex", "lock", "--quiet", "--", *paths[i:i + 1000], check=False)
