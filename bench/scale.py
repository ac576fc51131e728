"""Issue 11's workloads: sweeps up to 100 000 points, the floor under a
sweep's finish (git add, git annex add, hashing the same files) and finishing
in a dataset that already holds 100 000 files.

Every function returns measurements only; bench/report_scale.py turns them
into targets and tables.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from measure import (
    ENV,
    log,
    now,
    repeat_peak,
    run_peak,
    wait_for_local,
    wait_for_slurm,
)
from workloads import create_dataset, save, single_job_files, sweep_files


def git_out(ds: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ds, env=ENV, capture_output=True, text=True,
                          check=True).stdout


def committed_outputs(ds: Path, name: str = "seen.json") -> int:
    """How many of the points' output files are committed: what a user
    checks, whatever the record looks like (it may keep the per-point table
    in a file of its own at scale)."""
    out = subprocess.run(["git", "ls-files", "-z", "--", "runs"], cwd=ds, env=ENV,
                         capture_output=True, check=True).stdout
    return sum(1 for p in out.split(b"\0") if p.endswith(b"/" + name.encode()))


def record_figures(ds: Path) -> dict:
    """What the sweep's record costs a reader of history: the commit's size,
    the point table's (when it has one), and one ``git log --grep`` over the
    records, as our readers run it."""
    commit = len(git_out(ds, "cat-file", "commit", "HEAD").encode())
    table = 0
    for line in git_out(ds, "show", "--format=", "--name-only", "HEAD").splitlines():
        if "/.records/" in line:
            table += int(git_out(ds, "cat-file", "-s", f"HEAD:{line}"))
    started = time.perf_counter()
    git_out(ds, "log", "-F", "--grep=[DATALAD SLURM RUN]", "--format=%H%x00%B")
    return {"record_kb": commit / 1024, "table_mb": table / 1024 ** 2,
            "log_s": time.perf_counter() - started}


# -- the floor under a sweep's finish ------------------------------------------------

def _hash_files(root: Path, files: list[str]) -> dict:
    found = {}
    for name in ("md5", "sha256"):
        start, size = time.perf_counter(), 0
        for f in files:
            data = (root / f).read_bytes()
            size += len(data)
            hashlib.new(name, data).hexdigest()
        found[name] = time.perf_counter() - start
        found["bytes"] = size
    return found


def _git_add(copy: Path, listing: Path) -> tuple[float, float]:
    # The files named on standard input, as ``git add`` stages each named
    # file: ``git add --pathspec-from-file`` would match every file of the
    # tree against 20 000 pathspecs, a cost of the pathspecs, not of adding.
    os.sync()
    return run_peak(["git", "update-index", "--add", "-z", "--stdin"], copy, stdin=listing)


def _link_floor(copy: Path, files: list[str]) -> float:
    """The file system's work for locked annexed files, alone: per file a key
    directory (under two hash levels), a hard link, two ``chmod``, a symlink
    and a rename, in one Python thread, with the keys computed by hashlib
    (md5, as datalad's MD5E backend) and nothing else: no git, no git-annex,
    no location log, no index. What ``datalad save`` leaves costs at least
    this."""
    os.sync()
    start = time.perf_counter()
    objects = copy / ".git" / "annex" / "floor-objects"
    made: set[str] = set()
    for f in files:
        full = copy / f
        digest = hashlib.md5(full.read_bytes()).hexdigest()
        key = f"MD5E-s{full.stat().st_size}--{digest}{full.suffix}"
        parent = objects / digest[:2] / digest[2:4]
        if str(parent) not in made:
            parent.mkdir(parents=True, exist_ok=True)
            made.add(str(parent))
        key_dir = parent / key
        try:
            key_dir.mkdir()
            os.link(full, key_dir / key)
            os.chmod(key_dir / key, 0o444)
        except FileExistsError:
            pass
        os.chmod(key_dir, 0o555)
        temporary = full.with_name(full.name + ".floor-link")
        os.symlink(os.path.relpath(key_dir / key, full.parent), temporary)
        os.replace(temporary, full)
    return time.perf_counter() - start


def finish_with_floor(ds: Path) -> dict:
    """``slurm-finish`` in ``ds``, and in copies of ``ds`` made just before
    it: ``git add`` (git alone: the annex filter off) once before the finish
    and once after it, and ``git annex add --batch`` (the staging finish
    used to do) of exactly the files the finish committed, and hashing all
    their bytes in Python. Every step starts after ``sync``, and still a
    ``git add`` right after ``git annex add``'s writes ran 5.8x slower than
    one before the finish (2.39 s against 0.41 s, 2026-11-22): the order of
    the steps decided the ratio. The target takes the faster ``git add``."""
    copies = {name: ds.with_name(f"{ds.name}-{name}")
              for name in ("git-before", "git-after", "annex-add", "link-floor")}
    for copy in copies.values():
        subprocess.run(["cp", "-a", str(ds), str(copy)], check=True)
    for name in ("git-before", "git-after"):
        # git-annex init routes every file through its filter here; without
        # it git add is git hashing and indexing the files, nothing more.
        (copies[name] / ".git" / "info" / "attributes").write_text("")
    untracked = git_out(ds, "ls-files", "-z", "--others", "--exclude-standard")
    listing = ds.with_name(ds.name + "-files")
    listing.write_bytes(untracked.encode())
    git_before, git_before_peak = _git_add(copies["git-before"], listing)
    before = git_out(ds, "rev-parse", "HEAD").strip()
    os.sync()
    finish, finish_peak = run_peak(["datalad", "slurm-finish"], ds)
    changed = git_out(ds, "diff", "--name-only", "-z", "--no-renames", before, "HEAD")
    # Files the finish itself wrote (results.csv, ...) are not in the copies.
    files = [f for f in changed.split("\0") if f and os.path.lexists(copies["git-before"] / f)]
    staged = [f for f in untracked.split("\0") if f]
    if sorted(files) != sorted(staged):
        log(f"floor: git add staged the {len(staged)} files untracked before the finish, "
            f"the finish committed {len(files)} of them")
    lines = ds.with_name(ds.name + "-files-nl")
    lines.write_bytes(b"".join(os.fsencode(f) + b"\n" for f in files))
    hashed = _hash_files(copies["annex-add"], files)
    os.sync()
    annex_add, annex_peak = run_peak(["git", "annex", "add", "--batch", "--quiet"],
                                     copies["annex-add"], stdin=lines)
    git_after, git_after_peak = _git_add(copies["git-after"], listing)
    link_floor = _link_floor(copies["link-floor"], files)
    for path in copies.values():
        subprocess.run(["chmod", "-R", "u+w", str(path / ".git" / "annex")], check=False)
        shutil.rmtree(path, ignore_errors=True)
    return {"finish": finish, "finish_peak_mb": finish_peak, "committed": len(changed.split("\0")) - 1,
            "files": len(files), "git_add": min(git_before, git_after),
            "git_add_before": git_before, "git_add_after": git_after,
            "git_add_peak_mb": max(git_before_peak, git_after_peak),
            "annex_add": annex_add, "annex_add_peak_mb": annex_peak,
            "link_floor": link_floor, **hashed}


# -- a dataset that already holds many files ---------------------------------------

def _fast_import(ds: Path, stream: bytes) -> None:
    subprocess.run(["git", "fast-import", "--quiet"], cwd=ds, env=ENV, input=stream, check=True)


def _data(text: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(text), text)


def fill_dataset(ds: Path, n_files: int) -> None:
    """Commit ``n_files`` files into ``ds``, 1 000 to a directory: every other
    one annexed (locked, content present, a location log on the git-annex
    branch), the rest in git, as a DataLad dataset holds them. Written with
    git fast-import and checked out: git annex add would take ~45 s per
    10 000 files here, and only the dataset's size matters to the workload."""
    uuid = git_out(ds, "config", "annex.uuid").strip()
    branch = git_out(ds, "symbolic-ref", "HEAD").strip()
    names = [f"data/d{i // 1000:03d}/f{i % 1000:03d}.txt" for i in range(n_files)]
    contents = {i: f"annexed file {i}\n".encode() for i in range(0, n_files, 2)}
    keys = {i: f"MD5E-s{len(c)}--{hashlib.md5(c).hexdigest()}.txt" for i, c in contents.items()}
    dirs = subprocess.run(["git", "annex", "examinekey", "--batch",
                           "--format=${hashdirmixed} ${hashdirlower}\n"], cwd=ds, env=ENV,
                          input="".join(k + "\n" for k in keys.values()), capture_output=True,
                          text=True, check=True).stdout.split("\n")
    tree, logs = [], []
    stamp = f"{int(time.time())}s 1 {uuid}\n".encode()
    for (i, key), line in zip(keys.items(), dirs, strict=False):
        mixed, lower = line.split(" ")
        obj = ds / ".git" / "annex" / "objects" / mixed / key
        obj.mkdir(parents=True)
        (obj / key).write_bytes(contents[i])
        target = f"../../.git/annex/objects/{mixed}{key}/{key}".encode()
        tree.append(b"M 120000 inline %s\n%s" % (names[i].encode(), _data(target)))
        logs.append(b"M 100644 inline %s%s.log\n%s" % (lower.encode(), key.encode(), _data(stamp)))
    for i in range(1, n_files, 2):
        tree.append(b"M 100644 inline %s\n%s" % (names[i].encode(),
                                                 _data(f"file in git {i}\n".encode())))

    def commit(ref: str, message: bytes, entries: list[bytes]) -> bytes:
        return (b"commit %s\ncommitter bench <bench@localhost> %d +0000\n%sfrom %s^0\n%s\n"
                % (ref.encode(), int(time.time()), _data(message), ref.encode(),
                   b"".join(entries)))
    _fast_import(ds, commit(branch, b"%d files" % n_files, tree)
                 + commit("refs/heads/git-annex", b"location logs", logs))
    subprocess.run(["git", "reset", "-q", "--hard"], cwd=ds, env=ENV, check=True)
    # Files written in the same second as the index are "racily clean": git
    # re-reads (and git-annex re-filters) them until the index is rewritten
    # later, which made the first git status here take 13 s instead of 0.3 s.
    time.sleep(1.1)
    subprocess.run(["git", "update-index", "-q", "--refresh"], cwd=ds, env=ENV, check=True)


def schedule_jobs(ds: Path, n: int, tag: str) -> None:
    """``n`` single jobs through the Python API, in one process (the CLI
    would spend ~0.2 s per job on start-up; scheduling is not measured here)."""
    code = ("import sys\nimport datalad.api as dl\n"
            "ds = dl.Dataset(sys.argv[1])\n"
            "for i in range(int(sys.argv[2])):\n"
            "    out = f'out/{sys.argv[3]}/{i}'\n"
            "    ds.slurm_schedule(['sbatch', 'job.sh', out], outputs=[out],"
            " result_renderer='disabled')\n")
    subprocess.run([sys.executable, "-c", code, str(ds), str(n), tag], env=ENV,
                   capture_output=True, text=True, check=True)


def _finish_jobs(ds: Path, n: int, tag: str) -> tuple[float, float]:
    since = now()
    schedule_jobs(ds, n, tag)
    wait_for_slurm(since, ds)
    return run_peak(["datalad", "slurm-finish"], ds)


def big_dataset_finish(work: Path, n_files: int, jobs: tuple[int, ...] = (1, 100),
                       repeats: int = 3) -> dict:
    """Finishing ``jobs`` single jobs in an empty dataset and in one holding
    ``n_files`` files, interleaved (the order flips every round), each
    after an unmeasured warm-up finish; medians of ``repeats``."""
    empty, big = work / "finish-empty", work / f"finish-{n_files}-files"
    start = time.perf_counter()
    for ds in (empty, big):
        create_dataset(ds, "datalad", ENV)
        single_job_files(ds)
        save(ds, "datalad", ENV, "job script")
    fill_dataset(big, n_files)
    log(f"dataset of {n_files} files built in {time.perf_counter() - start:.0f} s")
    for ds in (empty, big):
        _finish_jobs(ds, 1, "warm-up")
    runs: dict[tuple[int, Path], list[tuple[float, float]]] = {}
    for rep in range(repeats):
        for k, n in enumerate(jobs):
            order = (empty, big) if (rep + k) % 2 == 0 else (big, empty)
            for ds in order:
                runs.setdefault((n, ds), []).append(_finish_jobs(ds, n, f"r{rep}-{n}"))
    found = {"files": n_files, "repeats": repeats, "rows": []}
    for n in jobs:
        row: dict = {"n": n}
        for label, ds in (("empty", empty), ("big", big)):
            row[label] = statistics.median(s for s, _ in runs[n, ds])
            row[f"{label}_runs"] = [s for s, _ in runs[n, ds]]
            row[f"{label}_peak_mb"] = max(mb for _, mb in runs[n, ds])
        found["rows"].append(row)
    for ds in (empty, big):
        shutil.rmtree(ds, ignore_errors=True)
    return found


# -- sweeps up to 100 000 points ------------------------------------------------

def scale_sweep(n: int, work: Path, backend: str, n_workers: int | None) -> dict:
    """One sweep of ``n`` points of a trivial model (one JSON parameter
    file, one tiny output per point) on ``backend``; ``n_workers`` packs
    each case's points into that many array tasks (None: one per task).
    Every phase is one command in a fresh process: seconds and peak MB."""
    ds = work / f"scale-{backend}-{n}"
    create_dataset(ds, "datalad", ENV)
    extra = {"n_workers": n_workers} if n_workers else {}
    config = sweep_files(ds, n, component_files=1, slurm_extra=extra)
    save(ds, "datalad", ENV, "model")
    found: dict = {}
    found["check"], found["check_peak_mb"] = repeat_peak(
        ["datalad", "slurm-sweep", "--check", "--backend", backend, str(config)], ds, 3)
    since = now()
    found["schedule"], found["schedule_peak_mb"] = run_peak(
        ["datalad", "slurm-sweep", "--backend", backend, str(config)], ds)
    found["run"] = wait_for_local(ds) if backend == "local" else wait_for_slurm(since, ds)
    found["list"], found["list_peak_mb"] = repeat_peak(
        ["datalad", "slurm-finish", "--list-open-jobs"], ds, 3)
    found["finish"], found["finish_peak_mb"] = run_peak(["datalad", "slurm-finish"], ds)
    found.update(record_figures(ds))
    got = committed_outputs(ds)
    shutil.rmtree(ds, ignore_errors=True)
    if got != n:
        raise RuntimeError(f"{backend} sweep of {n}: {got} points' outputs committed")
    found["peak_mb"] = max(v for k, v in found.items() if k.endswith("_peak_mb"))
    return found
