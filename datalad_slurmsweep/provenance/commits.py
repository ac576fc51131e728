"""Building many commits, each holding exactly the paths of one job.

``datalad save`` per job costs a second and grows with the dataset, because
it asks for the status of the whole work tree. A job's outputs are known, so
we stage just those paths (with git-annex where the dataset uses it, which
honours ``annex.largefiles`` as ``datalad save`` does), then write the chain
of commits with a single ``git fast-import`` process: every commit starts
from its predecessor's tree and replaces only its own paths. The branch is
moved once, with a compare-and-swap, so a concurrent commit is never lost.
Files of other running jobs are never staged, so never swept in.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..process import pid_alive
from .git import git, literal
from .paths import ancestors_and_self
from .trees import MIN_CHANGES, rebuild

_CHUNK = 2000
Env = Mapping[str, str] | None
BUILD_REF_PREFIX = "refs/slurmsweep/build-"


@dataclass
class PlannedCommit:
    key: str
    paths: list[str]  # dataset-relative, files or directories
    message: str
    # Subdatasets whose new state this commit records: path -> commit.
    links: dict[str, str] = field(default_factory=dict)
    # Files committed in git whatever annex.largefiles says (point tables).
    to_git: list[str] = field(default_factory=list)

    @property
    def all_paths(self) -> list[str]:
        return [*self.paths, *self.links]


def chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


def covering(paths: list[str], limit: int = 64) -> list[str]:
    """Few pathspecs that contain all ``paths``: git matches every entry
    against every pathspec, so tens of thousands of them cost more than
    listing their common parents. Nested paths are folded into parent
    directories until at most ``limit`` remain, but never into the top of
    the dataset: that would list every file of it, and make a finish cost
    grow with the dataset instead of with its jobs."""
    current = sorted(set(paths))
    while len(current) > limit:
        parents = sorted({p.rpartition("/")[0] or p for p in current})
        if parents == current:
            break
        current = parents
    if "." in current:
        return ["."]
    # Drop paths inside another of the set (by ancestors: linear, not n x n).
    roots = set(current)
    return [p for p in current if not any(a in roots for a in ancestors_and_self(p)[1:])]


def index_pathspecs(repo: Path, spec: list[str], limit: int = 64) -> list[str]:
    """Pathspecs for ``ls-files``, which matches each of the index's entries
    against each pathspec: many top-level names (every single job's log
    sits at the top) become one ``:(glob)*`` (top-level files only, ``*``
    does not cross ``/``) plus those names that are directories."""
    tops = [p for p in spec if "/" not in p]
    if len(tops) <= limit:
        return literal(spec)
    in_head = {os.fsdecode(line.split(b"\t", 1)[1]) for line in git(
        repo, "ls-tree", "-z", "HEAD", check=False).split(b"\0")
        if line.startswith(b"040000 ") or line.startswith(b"160000 ")}
    kept = [p for p in spec if "/" in p or p in in_head or os.path.isdir(repo / p)]
    return [":(glob)*", *literal(kept)]


def entries(repo: Path, args: list[str], paths: list[str],
            env: Env = None) -> dict[str, tuple[str, str]]:
    """path -> (mode, sha) from ``ls-files -s`` or ``ls-tree -r``, for the
    entries at or below ``covering(paths)``: a superset, filtered later."""
    found: dict[str, tuple[str, str]] = {}
    spec = covering(paths)
    if spec == ["."]:
        specs = [[]]
    elif args[0] == "ls-files":
        specs = [["--", *index_pathspecs(repo, spec)]]
    else:  # ls-tree walks trees, skipping those no pathspec names: cheap
        specs = [["--", *literal(chunk)] for chunk in chunks(spec)]
    for pathspec in specs:
        out = git(repo, *args, "-z", *pathspec, env=env)
        for item in out.split(b"\0"):
            if not item:
                continue
            meta, path = item.split(b"\t", 1)
            words = meta.decode().split()
            if args[0] == "ls-files":  # mode sha stage
                mode, sha = words[0], words[1]
            else:  # mode type sha
                mode, sha = words[0], words[2]
            found[os.fsdecode(path)] = (mode, sha)
    return found


def quote_path(path: str) -> str:
    if any(c in path for c in '"\n\\') or path.startswith(" "):
        return '"' + path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return path


def _assign(planned: list[PlannedCommit], paths: set[str]) -> dict[int, list[str]]:
    """Which plan each path belongs to: the first plan naming it or a parent
    directory of it. Linear in the number of paths, not paths x plans."""
    roots: dict[str, int] = {}
    for index, plan in enumerate(planned):
        for root in plan.paths:
            roots.setdefault(root, index)
    owner: dict[int, list[str]] = {}
    for path in sorted(paths):
        for candidate in ancestors_and_self(path):
            if candidate in roots:
                owner.setdefault(roots[candidate], []).append(path)
                break
    return owner


def _changes(owner: dict[int, list[str]], staged: dict[str, tuple[str, str]],
             committed: dict[str, tuple[str, str]]) -> dict[int, dict[str, tuple[str, str] | None]]:
    """Per plan index: path -> its new entry, None for a deletion."""
    found: dict[int, dict[str, tuple[str, str] | None]] = {}
    for index, paths in owner.items():
        mine = found.setdefault(index, {})
        for path in paths:
            if path not in staged:
                mine[path] = None
            elif committed.get(path) != staged[path]:
                mine[path] = staged[path]
    return found


def _tree_lines(changes: dict[str, tuple[str, str] | None], trees: dict[str, str | None],
                covered: set[str]) -> list[bytes]:
    """fast-import's file lines of one commit: whole directories first (a
    file may take the place of a directory emptied there), then the paths
    outside them."""
    lines = [b"D " + os.fsencode(quote_path(d)) + b"\n" if sha is None else
             f"M 040000 {sha} ".encode() + os.fsencode(quote_path(d)) + b"\n"
             for d, sha in sorted(trees.items())]
    for path, entry in changes.items():
        if path in covered:
            continue
        if entry is None:
            lines.append(b"D " + os.fsencode(quote_path(path)) + b"\n")
        else:
            lines.append(f"M {entry[0]} {entry[1]} ".encode() + os.fsencode(quote_path(path))
                         + b"\n")
    return lines


def write_commits(repo: Path, planned: list[PlannedCommit], parent: str,
                  staged: dict[str, tuple[str, str]], *, chained: bool = True,
                  min_tree_changes: int = MIN_CHANGES) -> dict[str, str]:
    """One commit per plan, chained on ``parent`` (or, not ``chained``, each
    on ``parent``: one branch per job), holding the ``staged`` entries
    (path -> (mode, sha)) of the plan's paths; one ``git fast-import``.
    Directories holding at least ``min_tree_changes`` changes of one plan
    alone get their trees from ``trees.rebuild``. Returns key -> commit
    sha; no branch is moved."""
    all_paths = sorted({p for plan in planned for p in plan.all_paths})
    committed = entries(repo, ["ls-tree", "-r", "--full-tree", parent], all_paths)
    ident = {
        kind: git(repo, "var", f"GIT_{kind.upper()}_IDENT").decode().strip()
        for kind in ("author", "committer")}
    # Each commit records the subdataset state its own job left, so
    # gitlinks are written per plan, not by the first plan naming them.
    linked = {p for plan in planned for p in plan.links}
    current = {p: committed.get(p) for p in linked}
    changes = _changes(_assign(planned, (set(staged) | set(committed)) - linked), staged,
                       committed)
    rebuilt = rebuild(repo, parent, changes, linked, min_tree_changes)
    ref = f"{BUILD_REF_PREFIX}{os.getpid()}"
    stream: list[bytes] = []
    for mark, plan in enumerate(planned, start=1):
        msg = plan.message.encode(errors="backslashreplace")
        stream.append(f"commit {ref}\nmark :{mark}\n"
                      f"author {ident['author']}\ncommitter {ident['committer']}\n"
                      f"data {len(msg)}\n".encode() + msg + b"\n")
        stream.append(f"from {parent}\n".encode() if mark == 1 or not chained
                      else f"from :{mark - 1}\n".encode())
        stream += _tree_lines(changes.get(mark - 1, {}), rebuilt.trees.get(mark - 1, {}),
                              rebuilt.covered.get(mark - 1, set()))
        for path, sha in plan.links.items():
            before = current[path] if chained else committed.get(path)
            if before != ("160000", sha):
                current[path] = ("160000", sha)
                stream.append(f"M 160000 {sha} ".encode() + os.fsencode(quote_path(path))
                              + b"\n")
        stream.append(b"\n")
    stream.append(b"done\n")
    shas = fast_import(repo, ref, stream)
    return {plan.key: shas[f":{i}"] for i, plan in enumerate(planned, start=1)}


def fast_import(repo: Path, ref: str, stream: list[bytes]) -> dict[str, str]:
    """Run ``stream`` through ``git fast-import``, whose commits go on the
    temporary ``ref`` (removed afterwards); the object id of each mark
    (``":1"`` -> sha)."""
    with tempfile.NamedTemporaryFile(prefix="slurmsweep-marks-", delete=False) as marks:
        marks_path = marks.name
    try:
        git(repo, "fast-import", "--quiet", "--done", f"--export-marks={marks_path}",
            input=b"".join(stream))
        shas = dict(line.split() for line in Path(marks_path).read_text().splitlines())
    finally:
        os.unlink(marks_path)
        git(repo, "update-ref", "-d", ref, check=False)
    return shas


def remove_stale_build_refs(repo: Path) -> None:
    """Drop the temporary refs of builds whose process died (kill -9 during
    ``git fast-import``), so ``git log --all`` does not show their commits."""
    out = git(repo, "for-each-ref", "--format=%(refname)", "refs/slurmsweep/",
              check=False).decode()
    for ref in out.split():
        if not ref.startswith(BUILD_REF_PREFIX):
            continue
        pid = ref.rpartition("-")[2]
        if pid.isdigit() and not pid_alive(int(pid)):
            git(repo, "update-ref", "-d", ref, check=False)


