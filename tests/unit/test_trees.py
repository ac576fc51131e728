"""Trees built with mktree give the same commits as fast-import's per-path lines."""
import os

import pytest

from datalad_slurmsweep.provenance.commits import PlannedCommit, entries, write_commits
from datalad_slurmsweep.provenance.git import head_state
from datalad_slurmsweep.provenance.trees import private_roots

from ..helpers import git, make_dataset

EXISTING = {"pts/p1/old.txt": "old", "pts/p1/gone.txt": "g", "pts/p2/keep.txt": "k",
            "pts/flip/a.txt": "dir that becomes a file", "shared/s.txt": "s", "top.txt": "t"}


def _scene(root):
    """Changes inside pts/ (one plan), a shared directory, special names."""
    (root / "pts/p1/old.txt").write_text("changed")
    (root / "pts/p1/gone.txt").unlink()
    (root / "pts/flip/a.txt").unlink()
    (root / "pts/flip").rmdir()
    (root / "pts/flip").write_text("now a file")
    for i in range(12):
        point = root / f"pts/new {i}" / "sub"
        point.mkdir(parents=True)
        (point / 'we"ird\\name.txt').write_text(str(i))
        (point / "run.sh").write_text("#!/bin/sh\n")
        (point / "run.sh").chmod(0o755)
        os.symlink("../../p2", point / "link")
    (root / "pts/new 0/caf\u00e9.json").write_text("{}")
    (root / "shared/a.txt").write_text("a")
    (root / "shared/b.txt").write_text("b")
    (root / "other").mkdir()
    (root / "other/x.txt").write_text("x")


@pytest.mark.parametrize("chained", [True, False])
def test_mktree_path_gives_byte_identical_trees(tmp_path, chained):
    ds = make_dataset(tmp_path / "ds", annex=False, files=EXISTING)
    root = tmp_path / "ds"
    _scene(root)
    git(ds, "add", "-A")
    staged = entries(root, ["ls-files", "-s"], ["."])
    planned = [PlannedCommit("A", ["pts", "shared/a.txt"], "points\n"),
               PlannedCommit("B", ["shared/b.txt", "other"], "rest\n")]
    head = head_state(root)[1]
    old = write_commits(root, planned, head, staged, chained=chained, min_tree_changes=10**9)
    new = write_commits(root, planned, head, staged, chained=chained, min_tree_changes=1)
    for key in ("A", "B"):
        trees = [git(ds, "rev-parse", f"{sha[key]}^{{tree}}").strip() for sha in (old, new)]
        assert trees[0] == trees[1], key
    listing = git(ds, "ls-tree", "-r", "--name-only", new["B" if chained else "A"])
    assert "pts/flip" in listing.split("\n") and "pts/p1/gone.txt" not in listing
    assert "pts/new 3/sub/run.sh" in listing


def test_private_roots_are_the_highest_directories_of_one_plan():
    changes = {0: {"a/b/1": ("100644", "x"), "a/b/2": ("100644", "x"), "s/1": None},
               1: {"s/2": ("100644", "x"), "c/d/e/1": ("100644", "x")}}
    assert private_roots(changes, set(), 1) == {0: ["a"], 1: ["c"]}
    # A gitlink inside a directory keeps it with fast-import.
    assert private_roots(changes, {"a/b/link"}, 1) == {1: ["c"]}
    assert private_roots(changes, set(), 2) == {0: ["a"]}
    # A file of one plan where another has a directory: neither owns it.
    clash = {0: {"d/x/1": ("100644", "x"), "d/y": None}, 1: {"d/x": ("100644", "x")}}
    assert private_roots(clash, set(), 1) == {}
