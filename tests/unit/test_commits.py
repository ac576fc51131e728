"""The commit builder against real git and git-annex."""
import os
import subprocess

from datalad_slurmsweep.provenance.commits import PlannedCommit, entries, write_commits
from datalad_slurmsweep.provenance.committing import commit_plans
from datalad_slurmsweep.provenance.git import advance, head_state

from ..helpers import git, make_dataset


def test_one_commit_per_plan_with_only_its_paths(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    root = tmp_path / "ds"
    for name in ("a/one.txt", "b/two.txt", "c/unrelated.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name * 1000)
    result = commit_plans(root, [PlannedCommit("A", ["a"], "first\n"),
                                 PlannedCommit("B", ["b"], "second\n")], True)
    shas = result.shas
    assert git(ds, "rev-parse", "HEAD").strip() == shas["B"]
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
    commit_plans(root, [PlannedCommit("A", ["out"], "m\n")], False)
    assert git(ds, "ls-tree", "-r", "--name-only", "HEAD").split() == [
        ".datalad/config", ".noannex", "keep.txt", "out/new.txt"]
    assert git(ds, "status", "--porcelain") == ""


def test_advance_refuses_when_the_branch_moved(tmp_path):
    ds = make_dataset(tmp_path / "ds", annex=False)
    root = tmp_path / "ds"
    (root / "f").write_text("1")
    ref, head = head_state(root)
    git(ds, "add", "f")
    staged = entries(root, ["ls-files", "-s"], ["f"])
    shas = write_commits(root, [PlannedCommit("A", ["f"], "m\n")], head, staged)
    subprocess.run(["git", "commit", "--allow-empty", "-qm", "other"], cwd=root, check=True)
    try:
        advance(root, ref, shas["A"], head)
    except Exception as exc:  # noqa: BLE001
        assert "update-ref" in str(exc)
    else:
        raise AssertionError("advance moved a branch that had moved")
    assert git(ds, "log", "-1", "--format=%s").strip() == "other"


def test_a_moved_branch_is_rebuilt_on_not_lost(tmp_path):
    """A user's commit between our build and our branch move survives, and
    our commit is written again on top of it."""
    ds = make_dataset(tmp_path / "ds", annex=False)
    root = tmp_path / "ds"
    (root / "out").mkdir()
    (root / "out/r.txt").write_text("result")
    (root / "user.txt").write_text("mine")
    calls = []

    def user_commits_once(shas):
        calls.append(shas)
        if len(calls) == 1:
            git(ds, "add", "user.txt")
            git(ds, "commit", "-qm", "the user's commit")

    result = commit_plans(root, [PlannedCommit("A", ["out"], "ours\n")], False,
                          before_move=user_commits_once)
    assert len(calls) == 2 and calls[0]["A"] != calls[1]["A"]
    assert git(ds, "log", "--format=%s", "-2").split("\n")[:2] == ["ours", "the user's commit"]
    assert git(ds, "show", "--name-only", "--format=", result.shas["A"]).split() == ["out/r.txt"]
    assert git(ds, "status", "--porcelain") == ""


def test_the_users_staged_changes_are_neither_committed_nor_disturbed(tmp_path):
    ds = make_dataset(tmp_path / "ds", files={"tracked.txt": "v1"})
    root = tmp_path / "ds"
    (root / "staged.txt").write_text("staged by the user")
    git(ds, "add", "staged.txt")
    (root / "out").mkdir()
    (root / "out/r.txt").write_text("result")
    result = commit_plans(root, [PlannedCommit("A", ["out"], "ours\n")], True)
    assert git(ds, "show", "--name-only", "--format=", result.shas["A"]).split() == ["out/r.txt"]
    assert git(ds, "status", "--porcelain").splitlines() == ["A  staged.txt"]


def test_a_plan_that_cannot_be_staged_fails_alone(tmp_path):
    ds = make_dataset(tmp_path / "ds", annex=False)
    root = tmp_path / "ds"
    (root / "real").mkdir()
    (root / "real/x.txt").write_text("x")
    os.symlink("real", root / "lnk")
    git(ds, "add", "lnk")
    git(ds, "commit", "-qm", "a link")
    (root / "good").mkdir()
    (root / "good/g.txt").write_text("g")
    result = commit_plans(root, [PlannedCommit("bad", ["lnk/x.txt"], "bad\n"),
                                 PlannedCommit("good", ["good"], "good\n")], False)
    assert list(result.failed) == ["bad"] and "symbolic link" in result.failed["bad"]
    assert git(ds, "show", "--name-only", "--format=%s", result.shas["good"]).split() == [
        "good", "good/g.txt"]


def test_an_index_lock_left_by_a_killed_command_of_ours_is_removed(tmp_path):
    """kill -9 while we hold the user's index.lock must not block every later
    git command: the next commit removes exactly that lock file."""
    import sys
    ds = make_dataset(tmp_path / "ds", annex=False)
    root = tmp_path / "ds"
    code = ("import os, sys; from datalad_slurmsweep.provenance.index import UserIndexLock; "
            "UserIndexLock(sys.argv[1]).__enter__(); os.kill(os.getpid(), 9)")
    assert subprocess.run([sys.executable, "-c", code, str(root)]).returncode == -9
    assert (root / ".git" / "index.lock").exists()
    (root / "out").mkdir()
    (root / "out/r.txt").write_text("r")
    result = commit_plans(root, [PlannedCommit("A", ["out"], "ours\n")], False)
    assert "A" in result.shas and not (root / ".git" / "index.lock").exists()
    assert git(ds, "status", "--porcelain") == ""


def test_a_real_git_index_lock_is_never_taken_away(tmp_path):
    ds = make_dataset(tmp_path / "ds", annex=False)
    root = tmp_path / "ds"
    (root / ".git" / "index.lock").write_text("a running git's")
    (root / "out").mkdir()
    (root / "out/r.txt").write_text("r")
    from datalad_slurmsweep.provenance.index import UserIndexLock
    lock = UserIndexLock(root, timeout=1.0)
    try:
        lock.__enter__()
    except Exception as exc:  # noqa: BLE001
        assert "index.lock exists" in str(exc)
    else:
        raise AssertionError("took a lock that another git holds")
    assert (root / ".git" / "index.lock").read_text() == "a running git's"
    del ds


def test_many_top_level_logs_never_list_the_whole_dataset(tmp_path):
    """Single jobs keep their logs at the top: with more of them than the
    pathspec limit, the entries read are still only those of the jobs'
    paths (and the top level), never every file of the dataset."""
    from datalad_slurmsweep.provenance.commits import covering
    make_dataset(tmp_path / "ds", annex=False,
                      files={**{f"data/d{i}/f.txt": "x\n" for i in range(50)},
                             **{f"slurm-{i}.out": "log\n" for i in range(100)},
                             "out/1/r.txt": "r\n"})
    paths = [f"slurm-{i}.out" for i in range(100)] + ["out/1", "out/2"]
    assert "." not in covering(paths)
    for args in (["ls-files", "-s"], ["ls-tree", "-r", "--full-tree", "HEAD"]):
        found = entries(tmp_path / "ds", args, paths)
        assert "out/1/r.txt" in found and "slurm-99.out" in found
        assert not any(p.startswith("data/") for p in found), args
