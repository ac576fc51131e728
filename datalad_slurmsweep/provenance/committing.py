"""Committing planned paths safely next to a user who also uses git.

1. Stage every plan's paths in a private index (``index.py``). When that
   fails, stage plan by plan: a plan that cannot be staged (a path git or
   git-annex refuses) is reported as failed, and the others still commit.
2. Write the commits on the current HEAD (``commits.write_commits``) and
   check that the last one holds exactly what was staged for our paths.
3. ``before_move(shas)`` lets the caller note the commits (the job store's
   ``committing`` state) before the branch can reach them.
4. Move the branch by compare-and-swap. If someone committed meanwhile,
   write the commits again on the new HEAD instead of failing.
5. Bring the user's index up to date for our paths, holding their
   ``index.lock`` from before the branch moves (``index.UserIndexLock``).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GitError
from .annex_log import LocationLogs
from .commits import PlannedCommit, entries, write_commits
from .git import advance, head_state
from .index import PrivateIndex, UserIndexLock
from .paths import under_any
from .staging import stage

MAX_REBUILDS = 10


@dataclass
class CommitResult:
    shas: dict[str, str] = field(default_factory=dict)  # plan key -> commit
    failed: dict[str, str] = field(default_factory=dict)  # plan key -> reason


def _stage_plans(repo: Path, planned: list[PlannedCommit], use_annex: bool,
                 env: dict[str, str], logs: LocationLogs) -> dict[str, str]:
    """Stage all plans; on failure, plan by plan. Returns the failed plans."""
    links = {p: sha for plan in planned for p, sha in plan.links.items()}
    to_git = {p for plan in planned for p in plan.to_git}
    try:
        stage(repo, sorted({p for plan in planned for p in plan.paths}), use_annex, env,
              links=links, force_git=to_git, logs=logs)
        return {}
    except (GitError, OSError, UnicodeError):
        pass
    failed = {}
    for plan in planned:
        try:
            stage(repo, sorted(set(plan.paths)), use_annex, env, links=plan.links,
                  force_git=set(plan.to_git), logs=logs)
        except (GitError, OSError, UnicodeError) as exc:
            failed[plan.key] = explain(str(exc)) or type(exc).__name__
    return failed


def explain(error: str, limit: int = 3) -> str:
    """git's or git-annex's complaint in a few plain lines: repeated lines
    once, and no Haskell backtrace."""
    kept: list[str] = []
    for line in error.splitlines():
        if line.strip().startswith(("HasCallStack backtrace", "CallStack (from")):
            break
        line = line.strip()
        if line and line not in kept:
            kept.append(line)
    text = "; ".join(kept[:limit])
    return text + (f" (and {len(kept) - limit} more lines)" if len(kept) > limit else "")


def _unchanged(plan: PlannedCommit, staged: dict[str, tuple[str, str]],
               committed: dict[str, tuple[str, str]]) -> bool:
    paths = plan.all_paths
    return ({p: staged[p] for p in _ours(paths, set(staged))}
            == {p: committed[p] for p in _ours(paths, set(committed))})


def _ours(paths: list[str], candidates: set[str]) -> set[str]:
    roots = set(paths)
    return {p for p in candidates if under_any(p, roots)}


def _verify(repo: Path, commit: str, paths: list[str],
            staged: dict[str, tuple[str, str]]) -> None:
    """The commit holds exactly the staged entries at or below ``paths``."""
    tree = entries(repo, ["ls-tree", "-r", "--full-tree", commit], paths)
    want = staged  # already only the entries at or below ``paths``
    have = {p: tree[p] for p in _ours(paths, set(tree))}
    if want != have:
        wrong = sorted(set(want.items()) ^ set(have.items()))[:3]
        raise GitError(f"commit {commit[:10]} does not hold what was staged for its "
                       f"paths (first differences: {wrong}); nothing was moved")


def _removed(repo: Path, parent: str, paths: list[str],
             staged: dict[str, tuple[str, str]]) -> list[str]:
    """Our paths the parent had and our commits deleted."""
    before = entries(repo, ["ls-tree", "-r", "--full-tree", parent], paths)
    return [p for p in sorted(_ours(paths, set(before)) - set(staged))
            if not os.path.lexists(Path(repo, p))]


def commit_plans(repo: Path, planned: list[PlannedCommit], use_annex: bool, *,
                 before_move: Callable[[dict[str, str]], None] | None = None,
                 skip_unchanged: bool = False) -> CommitResult:
    """Stage, write, verify and move the branch (see the module doc). With
    ``skip_unchanged``, a plan whose paths already hold what HEAD holds gets
    no commit (its result is HEAD): a rerun after an interruption must not
    record the same content twice. The location logs of newly annexed
    content are written meanwhile, and complete before the branch moves."""
    paths = sorted({p for plan in planned for p in plan.all_paths})
    with PrivateIndex(repo, paths) as index:
        logs = LocationLogs()
        done = False
        try:
            result = _commit_plans(repo, planned, use_annex, index.env, logs,
                                   before_move, skip_unchanged)
            done = True
            return result
        finally:
            logs.wait(raise_errors=done)


def _commit_plans(repo: Path, planned: list[PlannedCommit], use_annex: bool,
                  env: dict[str, str], logs: LocationLogs,
                  before_move: Callable[[dict[str, str]], None] | None,
                  skip_unchanged: bool) -> CommitResult:
    failed = _stage_plans(repo, planned, use_annex, env, logs)
    planned = [p for p in planned if p.key not in failed]
    if not planned:
        return CommitResult(failed=failed)
    paths = sorted({p for plan in planned for p in plan.all_paths})
    in_index = entries(repo, ["ls-files", "-s"], paths, env)
    staged = {p: in_index[p] for p in _ours(paths, set(in_index))}
    unchanged: dict[str, str] = {}
    if skip_unchanged:
        head = head_state(repo)[1]
        committed = entries(repo, ["ls-tree", "-r", "--full-tree", head], paths)
        unchanged = {p.key: head for p in planned if _unchanged(p, staged, committed)}
        planned = [p for p in planned if p.key not in unchanged]
        if not planned:
            logs.wait()
            # Staging may have relocked a rewritten annexed file: the
            # user's index must learn the entry the work tree now has.
            with UserIndexLock(repo, paths=paths) as user_index:
                user_index.install(staged, [])
            return CommitResult(shas=unchanged, failed=failed)
    for _ in range(MAX_REBUILDS):
        ref, head = head_state(repo)
        shas = write_commits(repo, planned, head, staged)
        _verify(repo, shas[planned[-1].key], paths, staged)
        logs.wait()  # no commit naming a file may land before its location log
        if before_move:
            before_move(shas)
        with UserIndexLock(repo, paths=paths) as user_index:
            try:
                advance(repo, ref, shas[planned[-1].key], head)
            except GitError:
                if head_state(repo) == (ref, head):
                    raise  # not a moved branch: a real failure
                continue
            user_index.install(staged, _removed(repo, head, paths, staged))
        break
    else:
        raise GitError(f"the branch kept moving while committing ({MAX_REBUILDS} "
                       "attempts); run the command again")
    return CommitResult(shas={**unchanged, **shas}, failed=failed)
