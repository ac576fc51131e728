"""Location logs written to the git-annex branch in one commit
(provenance/annex_log.py), against real git-annex: what git-annex itself
reads afterwards, with other git-annex processes, stale journals and
indexes, a held lock, and kill -9 in the middle."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from datalad.api import Dataset

from datalad_slurmsweep.provenance import annex_log
from datalad_slurmsweep.provenance.commits import PlannedCommit
from datalad_slurmsweep.provenance.committing import commit_plans

from ..helpers import api, git, records
from ..robustness.sandbox import wait_for_orphaned_git

OTHER = "11111111-2222-3333-4444-555555555555"


def _dataset(path: Path, count: int, start: int = 0) -> tuple[Dataset, list[str]]:
    ds = Dataset(path)
    if not ds.is_installed():
        ds.create(result_renderer="disabled")
    files = []
    for i in range(start, start + count):
        target = path / "out" / f"p{i}" / "r.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"result {i}\n")
        files.append(f"out/p{i}/r.txt")
    return ds, sorted(files)


def _commit(ds: Dataset, root: str = "out") -> None:
    result = commit_plans(Path(ds.path), [PlannedCommit("job", [root], "outputs")],
                          use_annex=True)
    assert not result.failed


def _direct(ds: Dataset) -> bool:
    """Whether the newest move of the git-annex branch was ours."""
    newest = git(ds, "reflog", "-1", "--format=%gs", "refs/heads/git-annex").strip()
    return newest == annex_log.REFLOG_MESSAGE


def _here(ds: Dataset, root: str = "out") -> list[str]:
    return sorted(git(ds, "annex", "find", "--in=here", "--", root).split())


def _annex_state_sound(ds: Dataset) -> None:
    """git-annex's index holds the branch it says it holds, nothing waits
    in the journal, and fsck (which checks the logs against the objects)
    passes."""
    annex = Path(ds.path, ".git", "annex")
    branch = git(ds, "rev-parse", "refs/heads/git-annex").strip()
    assert (annex / "index.lck").read_text().strip() == branch
    env = dict(os.environ, GIT_INDEX_FILE=str(annex / "index"))
    diff = subprocess.run(["git", "diff-index", "--cached", "--name-only", branch],
                          cwd=ds.path, env=env, capture_output=True, text=True, check=True)
    assert diff.stdout == ""
    assert not list((annex / "journal").iterdir())
    assert not list(annex.glob("index*.slurmsweep-*"))
    git(ds, "annex", "fsck", "--fast", "--quiet", "--all")


def _key(ds: Dataset, path: str) -> str:
    return os.path.basename(os.readlink(Path(ds.path, path)))


def _log(ds: Dataset, key: str) -> list[str]:
    where = git(ds, "annex", "examinekey", "--format=${hashdirlower}", key).strip()
    return git(ds, "show", f"refs/heads/git-annex:{where}{key}.log").splitlines()


def test_one_branch_commit_that_git_annex_and_a_clone_build_on(tmp_path):
    ds, files = _dataset(tmp_path / "ds", 40)
    before = int(git(ds, "rev-list", "--count", "refs/heads/git-annex"))
    _commit(ds)
    assert _direct(ds)
    assert int(git(ds, "rev-list", "--count", "refs/heads/git-annex")) == before + 1
    assert _here(ds) == files
    _annex_state_sound(ds)
    # git-annex's next commit to its branch keeps our logs (its index has them)
    (Path(ds.path) / "later.dat").write_text("added by git annex add\n")
    git(ds, "annex", "add", "--quiet", "later.dat")
    git(ds, "commit", "-q", "-m", "later")
    assert not _direct(ds)
    assert _here(ds) == files
    assert _here(ds, "later.dat") == ["later.dat"]
    _annex_state_sound(ds)
    # a clone learns where the content is, and gets it
    clone = Dataset(tmp_path / "clone")
    subprocess.run(["git", "clone", "-q", ds.path, clone.path], check=True)
    git(clone, "annex", "init", "-q")
    git(clone, "annex", "get", "-q", "--", files[0])
    assert Path(clone.path, files[0]).read_text() == "result 0\n"
    uuid = git(ds, "config", "annex.uuid").strip()
    assert uuid in git(clone, "annex", "whereis", "--", files[1])


def test_lines_of_other_repositories_are_kept_and_ours_is_newest(tmp_path):
    """As git-annex's vector clock: our line is dated after our own earlier
    line, even one from a clock far ahead; other repositories' lines stay."""
    ds, files = _dataset(tmp_path / "ds", 2)
    backend = git(ds, "check-attr", "annex.backend", "--", files[0]).split(": ")[-1].strip()
    key = git(ds, "annex", "calckey", f"--backend={backend}", "--", files[0]).strip()
    uuid = git(ds, "config", "annex.uuid").strip()
    # Another repository has the content; ours was dropped, at a time ahead
    # of this clock (a skewed clock elsewhere): ours must still win.
    future = dict(os.environ, GIT_ANNEX_VECTOR_CLOCK="4000000000")
    for who, status in ((OTHER, "1"), (uuid, "0")):
        subprocess.run(["git", "annex", "setpresentkey", key, who, status], cwd=ds.path,
                       env=future, check=True)
    git(ds, "annex", "merge", "--quiet")
    _commit(ds)
    assert _direct(ds)
    lines = _log(ds, key)
    assert any(line.endswith(f" 1 {OTHER}") for line in lines)
    ours = [line for line in lines if line.endswith(uuid)]
    assert len(ours) == 1 and ours[0].endswith(f" 1 {uuid}")
    assert float(ours[0].split("s ", 1)[0]) > 4000000000
    assert _key(ds, files[0]) == key
    assert _here(ds) == files
    assert "2 copies" in git(ds, "annex", "whereis", "--", files[0])
    _annex_state_sound(ds)


def test_another_repositorys_clock_does_not_date_our_line(tmp_path):
    """Only our own earlier lines move our date (git-annex's genLine): a
    line of another repository dated far ahead leaves ours at now, so a
    later drop here, dated now, still wins over it."""
    ds, files = _dataset(tmp_path / "ds", 1)
    backend = git(ds, "check-attr", "annex.backend", "--", files[0]).split(": ")[-1].strip()
    key = git(ds, "annex", "calckey", f"--backend={backend}", "--", files[0]).strip()
    uuid = git(ds, "config", "annex.uuid").strip()
    subprocess.run(["git", "annex", "setpresentkey", key, OTHER, "1"], cwd=ds.path,
                   env=dict(os.environ, GIT_ANNEX_VECTOR_CLOCK="4000000000"), check=True)
    git(ds, "annex", "merge", "--quiet")
    _commit(ds)
    assert _direct(ds)
    (ours,) = [line for line in _log(ds, key) if line.endswith(uuid)]
    assert float(ours.split("s ", 1)[0]) < 4000000000
    git(ds, "annex", "drop", "--force", "--quiet", "--", files[0])
    assert _here(ds) == []
    _annex_state_sound(ds)


def test_a_journal_another_git_annex_left_is_committed_first(tmp_path):
    ds, files = _dataset(tmp_path / "ds", 5)
    # annex.alwayscommit=false leaves the change in the journal, uncommitted
    subprocess.run(["git", "-c", "annex.alwayscommit=false", "annex", "setpresentkey",
                    "MD5E-s5--0123456789abcdef0123456789abcdef.txt", OTHER, "1"],
                   cwd=ds.path, check=True)
    assert list(Path(ds.path, ".git", "annex", "journal").iterdir())
    _commit(ds)
    assert _direct(ds)
    assert _here(ds) == files
    assert OTHER in git(ds, "annex", "whereis", "--key",
                        "MD5E-s5--0123456789abcdef0123456789abcdef.txt")
    _annex_state_sound(ds)


def test_a_branch_moved_under_git_annexs_index_is_brought_in_by_git_annex_first(tmp_path):
    """index.lck naming another commit than the branch (a push into it):
    git-annex merges it into its index, then we write on top of it."""
    ds, files = _dataset(tmp_path / "ds", 5)
    tree = git(ds, "rev-parse", "refs/heads/git-annex^{tree}").strip()
    moved = git(ds, "commit-tree", tree, "-p", "refs/heads/git-annex", "-m", "pushed").strip()
    git(ds, "update-ref", "refs/heads/git-annex", moved)
    _commit(ds)
    assert _direct(ds)
    git(ds, "merge-base", "--is-ancestor", moved, "refs/heads/git-annex")
    assert _here(ds) == files
    _annex_state_sound(ds)


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.mark.parametrize("wait,direct", [(30.0, True), (0.3, False)])
def test_git_annexs_journal_lock_is_respected(tmp_path, monkeypatch, wait, direct):
    """While another process holds the journal lock we wait; past LOCK_WAIT
    git-annex's own plumbing (which waits for it as long as it takes) logs."""
    ds, files = _dataset(tmp_path / "ds", 5)
    monkeypatch.setattr(annex_log, "LOCK_WAIT", wait)
    holder = subprocess.Popen([sys.executable, "-c", HOLD,
                               str(Path(ds.path, ".git", "annex", "journal.lck")), "2"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    _commit(ds)
    assert holder.poll() is not None  # we could not write before it let go
    holder.wait()
    assert _direct(ds) is direct
    assert _here(ds) == files
    _annex_state_sound(ds)


def test_concurrent_git_annex_writers_lose_nothing(tmp_path):
    ds, files = _dataset(tmp_path / "ds", 600)
    theirs = [f"MD5E-s{i}--{i:032x}.dat" for i in range(1, 41)]
    failures = []

    def other_writer():
        for key in theirs:
            proc = subprocess.run(["git", "annex", "setpresentkey", key, OTHER, "1"],
                                  cwd=ds.path, capture_output=True, text=True)
            if proc.returncode:
                failures.append(proc.stderr)

    thread = threading.Thread(target=other_writer)
    thread.start()
    for start in range(0, 600, 100):  # six commits while it writes
        result = commit_plans(Path(ds.path), [PlannedCommit(
            "job", [f"out/p{i}" for i in range(start, start + 100)], "outputs")],
            use_annex=True)
        assert not result.failed
    thread.join()
    assert not failures
    assert _here(ds) == files
    out = subprocess.run(["git", "annex", "whereis", "--batch-keys"], cwd=ds.path,
                         input="".join(k + "\n" for k in theirs), capture_output=True,
                         text=True, check=True).stdout
    assert out.count(OTHER) == len(theirs)
    _annex_state_sound(ds)


def test_key_file_names_map_back_to_keys(tmp_path):
    ds, _ = _dataset(tmp_path / "ds", 0)
    keys = ["MD5E-s3--0123456789abcdef0123456789abcdef.a&b",
            "WORM-s3-m17--a%b:c&d", "URL--http&c//x.org/y%z", "SHA256E-s1--00.tar.gz"]
    for key in keys:
        objectpath = git(ds, "annex", "examinekey", "--format=${objectpath}", key).strip()
        assert annex_log.key_from_file(os.path.basename(objectpath)) == key


@pytest.mark.parametrize("point", ["annex-log-built", "annex-log-moved"])
def test_a_finish_killed_while_writing_logs_completes_on_rerun(tmp_path, point):
    ds, _ = _dataset(tmp_path / "ds", 0)
    job = Path(ds.path, "job.sh")
    job.write_text("#!/bin/bash\nset -e\nmkdir -p out\n"
                   "for i in 1 2 3; do echo $i > out/r$i.txt; done\n")
    job.chmod(0o755)
    ds.save(message="job", result_renderer="disabled")
    (res,) = api(ds, "slurm_schedule", ["sbatch", "job.sh"], outputs=["out"],
                 backend="local")
    assert res["status"] == "ok", res["message"]
    env = dict(os.environ, DATALAD_SLURMSWEEP_KILL_AT=point)
    killed = subprocess.run(["datalad", "slurm-finish", "--wait", "--wait-timeout", "60"],
                            cwd=ds.path, env=env, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    # The kill came from the log thread: a git the main thread had started
    # (fast-import of our commits) outlives it and may still write its ref,
    # as after any kill -9; a user's rerun comes after it has ended.
    wait_for_orphaned_git(Path(ds.path))
    results = api(ds, "slurm_finish")
    assert results and all(r["status"] == "ok" for r in results), results
    assert len(records(ds)) == 1
    assert _here(ds) == ["out/r1.txt", "out/r2.txt", "out/r3.txt"]
    git(ds, "annex", "merge", "--quiet")  # what any git-annex command does first
    _annex_state_sound(ds)
    assert git(ds, "for-each-ref", "refs/slurmsweep/") == ""
    assert git(ds, "status", "--porcelain") == ""


def test_a_post_update_annex_hook_is_left_to_git_annex_to_run(tmp_path):
    ds, files = _dataset(tmp_path / "ds", 3)
    hook = Path(ds.path, ".git", "hooks", "post-update-annex")
    marker = tmp_path / "hook-ran"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    _commit(ds)
    assert not _direct(ds)
    assert marker.exists()
    assert _here(ds) == files
    _annex_state_sound(ds)


def test_many_keys_go_in_batches_of_commits(tmp_path, monkeypatch):
    ds, files = _dataset(tmp_path / "ds", 20)
    monkeypatch.setattr(annex_log, "BATCH", 7)
    before = int(git(ds, "rev-list", "--count", "refs/heads/git-annex"))
    _commit(ds)
    assert int(git(ds, "rev-list", "--count", "refs/heads/git-annex")) == before + 3
    assert _here(ds) == files
    _annex_state_sound(ds)
