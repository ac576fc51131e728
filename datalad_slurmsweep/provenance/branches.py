"""Committing each plan on a branch of its own (``slurm-finish --branches``),
and optionally merging them all in one octopus merge (``--octopus``).

The steps are those of ``committing.commit_plans``, with other commits:

1. stage every plan in a private index (a plan that cannot be staged fails
   alone; so does one whose branch name is taken);
2. write one commit per plan, each on the current HEAD (not chained), and
   check that each holds exactly what was staged for its paths; with
   ``octopus``, also the merge commit of HEAD and all of them, whose tree is
   HEAD's plus every plan's paths;
3. ``before_move(shas)`` notes the commits (the store's ``committing`` state);
4. in one ``git update-ref --stdin`` transaction create every branch (each
   must not exist yet) and, with ``octopus``, move the current branch from
   HEAD to the merge (compare-and-swap: if someone committed meanwhile, it
   is all built again on the new HEAD);
5. with ``octopus``, bring the user's index up to date for our paths and
   delete the merged branches, as datalad-slurm does; without it, the
   committed paths leave the work tree (they live on their branches, as
   after datalad-slurm's checkout back), so that each branch merges cleanly.

A rerun after ``kill -9`` counts a ``committing`` job as done when its
commit is reachable from HEAD or from any local branch (:func:`reachable`,
one ``git rev-list`` for all such jobs).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ..errors import GitError
from .annex_log import LocationLogs
from .commits import PlannedCommit, entries, write_commits
from .committing import MAX_REBUILDS, CommitResult, _ours, _removed, _stage_plans, _verify
from .git import git, git_text, head_state, literal, succeeds
from .index import PrivateIndex, UserIndexLock


def reachable(repo: Path, commits: list[str]) -> set[str]:
    """Which of ``commits`` are in the history of HEAD or of a local branch,
    in three git calls whatever their number: the ones ``git rev-list
    COMMITS --not HEAD BRANCHES`` does not list, among those that exist."""
    if not commits:
        return set()
    check = git_text(repo, "cat-file", "--batch-check",
                     input="".join(c + "\n" for c in commits).encode(), check=False)
    present = {words[0] for words in map(str.split, check.splitlines())
               if words[1:2] == ["commit"]}
    tips = git_text(repo, "for-each-ref", "--format=%(objectname)", "refs/heads/").split()
    revs = [*present, *(f"^{t}" for t in [*tips, "HEAD"])]
    out = git_text(repo, "rev-list", "--stdin", input="".join(r + "\n" for r in revs).encode())
    return present - set(out.split())


def branch_exists(repo: Path, name: str) -> bool:
    return succeeds(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}")


def _merge(repo: Path, planned: list[PlannedCommit], head: str, shas: dict[str, str],
           staged: dict[str, tuple[str, str]], names: dict[str, str]) -> str:
    """The octopus merge of HEAD and every plan's commit."""
    chained = write_commits(repo, planned, head, staged)
    tree = git_text(repo, "rev-parse", f"{chained[planned[-1].key]}^{{tree}}").strip()
    listed = [names[p.key] for p in planned]
    jobs = "job" if len(planned) == 1 else "jobs"
    message = (f"Merge {len(planned)} finished Slurm {jobs}: {', '.join(listed[:20])}"
               + (f" and {len(listed) - 20} more" if len(listed) > 20 else "") + "\n\n"
               "Written by datalad slurm-finish --octopus; each merged commit holds one "
               "job's run record.\n")
    parents = [word for p in planned for word in ("-p", shas[p.key])]
    return git_text(repo, "commit-tree", tree, "-p", head, *parents,
                    input=message.encode()).strip()


def _leave_work_tree(repo: Path, roots: list[str], files: list[str], head: str) -> None:
    """Make the work tree agree with HEAD at and below the plans' ``roots``
    (committed elsewhere): what HEAD has is checked out (changed or deleted
    by a job), the other committed ``files`` are removed."""
    in_head = entries(repo, ["ls-tree", "-r", "--full-tree", head], roots)
    tracked = sorted(_ours(roots, set(in_head)))
    for i in range(0, len(tracked), 1000):
        git(repo, "checkout", head, "--", *literal(tracked[i:i + 1000]))
    dirs = set()
    for path in sorted(set(files) - set(tracked)):
        full = Path(repo, path)
        if full.is_symlink() or full.is_file():
            full.unlink()
            dirs.update(full.parents)
    for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        if directory != Path(repo) and Path(repo) in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                pass  # not empty: something else lives there


def _transaction(repo: Path, creates: dict[str, str], move: tuple[str, str, str] | None
                 ) -> None:
    lines = [f"create refs/heads/{name} {sha}\n" for name, sha in creates.items()]
    if move:
        lines.append(f"update {move[0]} {move[1]} {move[2]}\n")
    git(repo, "update-ref", "-m", "datalad slurm-finish", "--stdin",
        input="".join(lines).encode())


def commit_on_branches(repo: Path, planned: list[PlannedCommit], names: dict[str, str],
                       use_annex: bool, *, octopus: bool,
                       before_move: Callable[[dict[str, str]], None] | None = None,
                       ) -> tuple[CommitResult, str | None]:
    """Commit each plan on branch ``names[plan.key]`` (see the module doc).
    Returns the commits and failures, and the merge commit (``octopus``)."""
    failed = {p.key: f"branch {names[p.key]} already exists; delete or rename it"
              for p in planned if branch_exists(repo, names[p.key])}
    planned = [p for p in planned if p.key not in failed]
    if not planned:
        return CommitResult(failed=failed), None
    with PrivateIndex(repo, sorted({p for plan in planned for p in plan.all_paths})) as index:
        logs = LocationLogs()
        try:
            failed.update(_stage_plans(repo, planned, use_annex, index.env, logs))
        finally:
            logs.wait()  # before any commit naming the files exists
        planned = [p for p in planned if p.key not in failed]
        if not planned:
            return CommitResult(failed=failed), None
        paths = sorted({p for plan in planned for p in plan.paths})
        in_index = entries(repo, ["ls-files", "-s"], paths, index.env)
        staged = {p: in_index[p] for p in _ours(paths, set(in_index))}
        for _ in range(MAX_REBUILDS):
            ref, head = head_state(repo)
            shas = write_commits(repo, planned, head, staged, chained=False)
            for plan in planned:
                _verify(repo, shas[plan.key], plan.paths,
                        {p: staged[p] for p in _ours(plan.paths, set(staged))})
            merge = _merge(repo, planned, head, shas, staged, names) if octopus else None
            if merge:
                _verify(repo, merge, paths, staged)
            if before_move:
                before_move(shas)
            creates = {names[p.key]: shas[p.key] for p in planned}
            if not octopus:
                _transaction(repo, creates, None)
                _leave_work_tree(repo, paths, sorted(staged), head)
                return CommitResult(shas=shas, failed=failed), None
            with UserIndexLock(repo, paths=paths) as user_index:
                try:
                    _transaction(repo, creates, (ref, merge, head))
                except GitError:
                    if head_state(repo) == (ref, head):
                        raise  # not a moved branch: a real failure
                    continue
                user_index.install(staged, _removed(repo, head, paths, staged))
            for name, sha in creates.items():
                git(repo, "update-ref", "-d", f"refs/heads/{name}", sha, check=False)
            return CommitResult(shas=shas, failed=failed), merge
    raise GitError(f"the branch kept moving while committing ({MAX_REBUILDS} "
                   "attempts); run the command again")


def safe_branch_name(text: str) -> str:
    """``text`` as a part of a branch name: ASCII letters, digits, ``_`` and
    ``-`` only, so no rule of git check-ref-format (``..``, ``.lock``, ``@{``,
    control characters) can be broken."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"
