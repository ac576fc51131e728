"""Paths across subdataset boundaries.

A YODA project keeps inputs and outputs in subdatasets, so a job's paths may
lie in nested repositories. git refuses a path inside a submodule
("Pathspec ... is in submodule"), so every git call on a path must go to the
repository that holds it. The layout is read from the ``.gitmodules`` files
of the installed datasets, never by walking the work tree, so that it costs
nothing in a dataset without subdatasets and little in one with many files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .git import dirty_paths, git
from .paths import ancestors_and_self

TOP = "."


@dataclass
class Layout:
    """The subdatasets below a dataset, dataset-relative, at any depth."""

    installed: set[str] = field(default_factory=set)
    absent: set[str] = field(default_factory=set)  # registered, not installed

    @property
    def trivial(self) -> bool:
        return not self.installed and not self.absent

    def owner(self, path: str) -> str:
        """The installed dataset holding ``path`` (a subdataset's root is held
        by the subdataset itself); ``TOP`` for the top dataset."""
        if not self.installed:
            return TOP
        return next((a for a in ancestors_and_self(path) if a in self.installed), TOP)

    def absent_holder(self, path: str) -> str | None:
        """The uninstalled subdataset ``path`` lies in (or is), if any."""
        if not self.absent:
            return None
        return next((a for a in ancestors_and_self(path) if a in self.absent), None)

    def below(self, path: str) -> list[str]:
        """Installed subdatasets strictly inside ``path``."""
        prefix = "" if path == TOP else path + "/"
        return sorted(r for r in self.installed if r.startswith(prefix) and r != path)

    def parent(self, root: str) -> str:
        """The dataset that registers the subdataset ``root``."""
        return self.owner(root.rpartition("/")[0] or TOP)


def local(path: str, root: str) -> str:
    """``path`` (top-relative) as seen from the dataset at ``root``."""
    if root == TOP:
        return path
    return path[len(root) + 1:] if path != root else TOP


def join(root: str, path: str) -> str:
    if root == TOP:
        return path
    return root if path == TOP else f"{root}/{path}"


def read_layout(top: Path) -> Layout:
    """Installed and absent subdatasets, from ``.gitmodules`` files."""
    layout = Layout()
    queue = [TOP]
    while queue:
        base = queue.pop()
        repo = top / base
        if not (repo / ".gitmodules").is_file():
            continue
        out = git(repo, "config", "-z", "-f", ".gitmodules", "--get-regexp",
                  r"^submodule\..*\.path$", check=False)
        for entry in out.split(b"\0"):
            if b"\n" not in entry:
                continue
            rel = join(base, entry.split(b"\n", 1)[1].decode(errors="surrogateescape"))
            if (top / rel / ".git").exists():
                layout.installed.add(rel)
                queue.append(rel)
            else:
                layout.absent.add(rel)
    return layout


def by_dataset(layout: Layout, paths: list[str]) -> dict[str, list[str]]:
    """``paths`` grouped by the dataset holding them, dataset-local."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        root = layout.owner(path)
        groups.setdefault(root, []).append(local(path, root))
    return groups


def depth_first(roots: set[str]) -> list[str]:
    """Deepest datasets first, the top last: a parent records its children's
    new states, so it commits after them."""
    return sorted(roots, key=lambda r: (-(0 if r == TOP else r.count("/") + 1), r))


def is_annexed(repo: Path) -> bool:
    return git(repo, "config", "--local", "--get", "annex.version", check=False).strip() != b""


def annex_each(top: Path, layout: Layout, paths: list[str], action) -> dict[str, list[str]]:
    """Call ``action(repo, local_paths)`` once per annexed dataset holding
    some of ``paths``; what was done, per dataset. A directory's installed
    subdatasets are its content too: git-annex in the dataset holding the
    directory does not descend into them, so each is asked itself."""
    done = {}
    nested = [sub for path in paths for sub in layout.below(path)]
    for root, local_paths in by_dataset(layout, sorted({*paths, *nested})).items():
        repo = top / root
        if is_annexed(repo):
            action(repo, local_paths)
            done[root] = local_paths
    return done


def dirty_nested(top: Path, layout: Layout, paths: list[str]) -> list[str]:
    """Which of ``paths`` (top-relative) differ from their dataset's HEAD or
    are untracked, asked of the dataset that holds each."""
    found = []
    for root, local_paths in by_dataset(layout, paths).items():
        found += [join(root, p) for p in dirty_paths(top / root, local_paths)]
    return found
