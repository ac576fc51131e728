"""The commit builder against real git and git-annex."""
import subprocess

from datalad_slurmsweep.provenance.commits import PlannedCommit, build_commits
from datalad_slurmsweep.provenance.git import advance, head_state

from ..helpers import git, make_dataset


def test_one_commit_per_plan_with_only_its_paths(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    root = tmp_path / "ds"
    for name in ("a/one.txt", "b/two.txt", "c/unrelated.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name * 1000)
    ref, head = head_state(root)
    shas = build_commits(root, [PlannedCommit("A", ["a"], "first\n"),
                                PlannedCommit("B", ["b"], "second\n")], head, True)
    advance(root, ref, shas["B"], head)
    assert git(ds, "show", "--name-only", "--format=%s", shas["A"]).split() == ["first", "a/one.txt"]
    assert git(ds, "show", "--name-only", "--format=%s", shas["B"]).split() == ["second", "b/two.txt"]
    # The unrelated file is neither committed nor staged, and the index agrees with HEAD.
    assert git(ds, "status", "--porcelain").strip() == "?? c/"
    # Annexed content went to the annex (datalad's default largefiles rule).
    assert (root / "a/one.txt").is_symlink()


def test_deletions_inside_a_declared_output_are_committed(tmp_path):
    ds = make_dataset(tmp_path / "ds", annex=False, files={"out/old.txt": "x", "keep.txt": "k"})
    root = tmp_path / "ds"
    (root / "out/old.txt").unlink()
    (root / "out/new.txt").write_text("n")
    ref, head = head_state(root)
    shas = build_commits(root, [PlannedCommit("A", ["out"], "m\n")], head, False)
    advance(root, ref, shas["A"], head)
    assert git(ds, "ls-tree", "-r", "--name-only", "HEAD").split() == [
        ".datalad/config", ".noannex", "keep.txt", "out/new.txt"]
    assert git(ds, "status", "--porcelain") == ""


def test_advance_refuses_when_the_branch_moved(tmp_path):
    ds = make_dataset(tmp_path / "ds", annex=False)
    root = tmp_path / "ds"
    (root / "f").write_text("1")
    ref, head = head_state(root)
    shas = build_commits(root, [PlannedCommit("A", ["f"], "m\n")], head, False)
    subprocess.run(["git", "commit", "--allow-empty", "-qm", "other"], cwd=root, check=True)
    try:
        advance(root, ref, shas["A"], head)
    except Exception as exc:  # noqa: BLE001
        assert "update-ref" in str(exc)
    else:
        raise AssertionError("advance moved a branch that had moved")
    assert git(ds, "log", "-1", "--format=%s").strip() == "other"
