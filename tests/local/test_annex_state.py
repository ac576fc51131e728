"""After slurm-finish, the repository holds what ``datalad save`` of the same
files would have made: the same files annexed (locked, same keys) or in git,
the same object permissions, content known to be here, and ``git annex
fsck`` content. Finish annexes in bulk (provenance/ingest.py), not through
``git annex add``; these tests compare the two on real git-annex."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from datalad.api import Dataset

from datalad_slurmsweep.provenance import ingest
from datalad_slurmsweep.provenance.commits import PlannedCommit
from datalad_slurmsweep.provenance.committing import commit_plans

from ..helpers import api, git

MAKE_OUTPUTS = r'''
import os, sys
out = sys.argv[1]
files = {
    "a.txt": b"hello\n", "b.bin": bytes(range(256)) * 4, "empty.txt": b"",
    ".hidden": b"dot\n", "table.csv": b"x,y\n" * 30, "sub/deep.json": b'{"a": 1}\n',
    "\u00fc-unicode.txt": "\u00fc\n".encode(), "dup1.txt": b"same\n", "dup2.txt": b"same\n",
    "with space.txt": b"s\n", "big.dat": b"0123456789" * 30000,
    "utf16.txt": "hi there".encode("utf-16"), "x.tar.gz": b"\x1f\x8b" + bytes(64),
}
for name, data in files.items():
    path = os.path.join(out, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
'''
JOB = "#!/bin/bash\nset -e\npython3 make_outputs.py out\n"


def _configure(ds: Dataset, kind: str) -> None:
    if kind == "custom":
        git(ds, "config", "annex.largefiles", "largerthan=20b and not include=*.csv")
        with open(Path(ds.path, ".gitattributes"), "a") as f:
            f.write("*.bin annex.backend=SHA256E\n")


def _pair(tmp_path: Path, kind: str) -> tuple[Dataset, Dataset]:
    ds = Dataset(tmp_path / "ours").create(
        cfg_proc=["text2git"] if kind == "text2git" else None, result_renderer="disabled")
    _configure(ds, kind)
    (tmp_path / "ours/make_outputs.py").write_text(MAKE_OUTPUTS)
    (tmp_path / "ours/job.sh").write_text(JOB)
    (tmp_path / "ours/job.sh").chmod(0o755)
    ds.save(message="job files", result_renderer="disabled")
    if kind == "addunlocked":  # after the job files: they stay locked
        git(ds, "config", "annex.addunlocked", "true")
    shutil.copytree(tmp_path / "ours", tmp_path / "saved", symlinks=True)
    return ds, Dataset(tmp_path / "saved")


def _objects(ds: Dataset, paths: list[str]) -> dict[str, tuple[int, int]]:
    """Mode of each annexed file's object and of its key directory."""
    found = {}
    for path in paths:
        full = Path(ds.path, path)
        if full.is_symlink():
            obj = full.resolve()
            found[path] = (obj.stat().st_mode, obj.parent.stat().st_mode)
    return found


@pytest.mark.parametrize("kind", ["default", "text2git", "custom", "addunlocked"])
def test_finish_leaves_what_datalad_save_would(tmp_path, kind):
    ours, saved = _pair(tmp_path, kind)
    (res,) = api(ours, "slurm_schedule", ["sbatch", "job.sh"], outputs=["out"],
                 backend="local")
    assert res["status"] == "ok", res["message"]
    (fin,) = api(ours, "slurm_finish", wait=True, wait_timeout=60)
    assert fin["status"] == "ok", fin["message"]
    subprocess.run(["python3", "make_outputs.py", "out"], cwd=saved.path, check=True)
    saved.save(path=["out"], message="saved", result_renderer="disabled")

    listing = git(ours, "ls-files", "-s", "--", "out")
    assert listing == git(saved, "ls-files", "-s", "--", "out")  # modes, keys, blobs
    assert ("120000 " in listing) == (kind != "addunlocked")  # locked annexed files
    if kind in ("text2git", "custom"):
        assert "100644 " in listing  # and some in git
    here = git(ours, "annex", "find", "--in=here", "--", "out")
    assert here and here == git(saved, "annex", "find", "--in=here", "--", "out")
    paths = [line.split("\t", 1)[1] for line in listing.splitlines()]
    assert _objects(ours, paths) == _objects(saved, paths)
    git(ours, "annex", "fsck", "--quiet", "--", "out")  # raises if anything is wrong
    assert git(ours, "status", "--porcelain") == ""


def _dataset_with_files(path: Path, count: int) -> tuple[Dataset, list[str]]:
    ds = Dataset(path).create(result_renderer="disabled")
    for i in range(count):
        target = path / "out" / f"p{i}" / "r.txt"
        target.parent.mkdir(parents=True)
        target.write_text(f"result {i}\n")
    return ds, [f"out/p{i}/r.txt" for i in range(count)]


def test_a_finish_killed_between_annexing_and_logging_completes_on_rerun(tmp_path):
    """Content placed and linked but not yet in the location log (the state
    kill -9 leaves inside ingest): the next commit logs and stages it."""
    ds, files = _dataset_with_files(tmp_path / "ds", 6)
    repo = Path(ds.path)
    cfg = ingest.settings(repo)
    large, _ = ingest.decide(repo, files[:3], cfg)
    keys = ingest._keys(repo, large)
    places = ingest._places(repo, set(keys.values()))
    placer = ingest._Placer(repo)
    for path, key in keys.items():
        placer.place(path, places[key].objectpath)
    assert all(os.path.islink(repo / f) for f in files[:3])
    for key in keys.values():  # content here, but the location log does not know it yet
        assert subprocess.run(["git", "annex", "whereis", f"--key={key}"], cwd=repo,
                              capture_output=True).returncode != 0
    result = commit_plans(repo, [PlannedCommit("job", ["out"], "outputs")], use_annex=True)
    assert not result.failed
    assert git(ds, "annex", "find", "--in=here", "--", "out").split() == files
    git(ds, "annex", "fsck", "--quiet", "--", "out")
    assert git(ds, "status", "--porcelain") == ""
