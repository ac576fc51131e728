"""One test per defect found by the hostile trials of issues 9 and 10 that
no other test module covers; each failed before its fix."""
from __future__ import annotations

import subprocess
from pathlib import Path

from ..helpers import api, git, make_dataset, records


def nested_ds(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    ds.config.set("datalad.slurmsweep.backend", "local", scope="local")
    sub = ds.create("sub", result_renderer="disabled")
    sub.create("deep", result_renderer="disabled")
    for rel in ("sub/g.txt", "sub/deep/f.txt"):
        (Path(ds.path) / rel).write_text("old\n")
    ds.save(recursive=True, message="content", result_renderer="disabled")
    return ds


def test_an_output_holding_a_subdataset_has_its_annexed_files_unlocked(tmp_path):
    # An output without "/" skipped reading the subdataset layout, so nothing
    # below "sub" was unlocked: the job wrote through the annex symlinks into
    # the stored objects (as root) or failed on them (as anyone else).
    ds = nested_ds(tmp_path)
    root = Path(ds.path)
    assert (root / "sub/deep/f.txt").is_symlink()
    (res,) = api(ds, "slurm_schedule", ["sbatch", "--wrap=echo new > sub/deep/f.txt; "
                                        "echo new > sub/g.txt"], outputs=["sub"])
    assert res["status"] == "ok", res
    for rel in ("sub/g.txt", "sub/deep/f.txt"):
        assert not (root / rel).is_symlink(), rel
    (fin,) = api(ds, "slurm_finish", wait=True, wait_timeout=60)
    assert fin["status"] == "ok", fin
    assert [r.record["outputs"] for _, r in records(ds)] == [["sub"]]
    for rel in ("sub/g.txt", "sub/deep/f.txt"):
        assert (root / rel).read_text() == "new\n"
    assert git(ds, "status", "--porcelain", "--ignore-submodules=none") == ""
    # The stored content is intact: nothing wrote through a symlink.
    subprocess.run(["git", "annex", "fsck", "-q"], cwd=root / "sub/deep", check=True)
