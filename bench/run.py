#!/usr/bin/env python3
"""make bench: datalad-slurmsweep and datalad-slurm 0.2.8, side by side, on the
local Slurm cluster, in one run, interleaved, on fresh datasets; then issue
11's scale workloads (bench/scale.py): sweeps up to 100 000 points, a finish
against its floor, finishing in a dataset of 100 000 files.

Writes docs/benchmarks.md (table, targets, machine), docs/benchmarks.png
(per-job cost against N) and docs/benchmarks.json (every measurement).
Nothing in those files is typed in: run this to regenerate them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import ENV, log, now, repeat, run, run_peak, wait_for_local, wait_for_slurm
from scale import big_dataset_finish, committed_outputs, finish_with_floor, scale_sweep
from workloads import (
    create_dataset,
    manual_sweep_files,
    save,
    single_job_files,
    sweep_files,
)

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench" / "venv-datalad-slurm"
OURS, THEIRS = "datalad-slurmsweep", "datalad-slurm 0.2.8"


def ensure_datalad_slurm() -> str:
    exe = VENV / "bin" / "datalad"
    if not exe.exists():
        log("installing datalad-slurm 0.2.8 into " + str(VENV))
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet",
                        "--disable-pip-version-check", "datalad==1.7.1", "datalad-slurm==0.2.8"],
                       check=True)
    return str(exe)


def records(ds: Path) -> int:
    out = subprocess.run(["git", "log", "--format=%s"], cwd=ds, capture_output=True,
                         text=True, check=True).stdout
    return sum(1 for s in out.splitlines() if s.startswith("[DATALAD SLURM RUN]"))


def single_jobs(tool: str, datalad: str, n: int, work: Path) -> dict:
    ds = work / f"single-{'ours' if tool == OURS else 'theirs'}-{n}"
    create_dataset(ds, datalad, ENV)
    single_job_files(ds)
    save(ds, datalad, ENV, "job script")
    since = now()
    per_job = [run([datalad, "slurm-schedule", "-o", f"out/{i}", "sbatch", "job.sh",
                    f"out/{i}"], ds) for i in range(n)]
    first = run([datalad, "slurm-finish", "--list-open-jobs"], ds)
    listing = statistics.median([first] + [run([datalad, "slurm-finish", "--list-open-jobs"], ds)
                                           for _ in range(2 if first < 5 else 0)])
    wait_for_slurm(since, ds)
    finish, peak = run_peak([datalad, "slurm-finish"], ds)
    got = records(ds)
    if got != n:
        raise RuntimeError(f"{tool}: {got} records for {n} jobs in {ds}")
    return {"schedule": sum(per_job), "schedule_per_job_median": statistics.median(per_job),
            "list": listing, "finish": finish, "finish_peak_mb": peak}


def api_schedule(n: int, work: Path) -> float:
    """Median seconds per job of slurm_schedule through the Python API."""
    ds = work / "api"
    create_dataset(ds, "datalad", ENV)
    single_job_files(ds)
    save(ds, "datalad", ENV, "job script")
    code = ("import json, statistics, sys, time\nimport datalad.api as dl\n"
            "ds = dl.Dataset(sys.argv[1]); times = []\n"
            f"for i in range({n}):\n"
            "    t = time.perf_counter()\n"
            "    ds.slurm_schedule(['sbatch', 'job.sh', f'out/{i}'], outputs=[f'out/{i}'],"
            " result_renderer='disabled')\n"
            "    times.append(time.perf_counter() - t)\n"
            "print(json.dumps(statistics.median(times)))\n")
    since = now()
    out = subprocess.run([sys.executable, "-c", code, str(ds)], env=ENV, capture_output=True,
                         text=True, check=True).stdout
    wait_for_slurm(since, ds)
    return json.loads(out.splitlines()[-1])


def sweep_ours(n: int, work: Path, floor: dict | None = None, backend: str = "slurm") -> dict:
    """Our sweep of ``n`` points, one point per array task, on ``backend``;
    with ``floor`` (a dict to fill), the floor under its finish is measured
    too (scale.finish_with_floor)."""
    ds = work / f"sweep-ours-{n}"
    create_dataset(ds, "datalad", ENV)
    config = sweep_files(ds, n)
    save(ds, "datalad", ENV, "model")
    check = repeat(["datalad", "slurm-sweep", "--check", "--backend", backend, str(config)],
                   ds, 3)
    since = now()
    schedule, schedule_peak = run_peak(
        ["datalad", "slurm-sweep", "--backend", backend, str(config)], ds)
    if backend == "local":
        wait_for_local(ds)
    else:
        wait_for_slurm(since, ds)
    if floor is None:
        finish, peak = run_peak(["datalad", "slurm-finish"], ds)
    else:
        floor.update(finish_with_floor(ds))
        finish, peak = floor["finish"], floor["finish_peak_mb"]
    got = committed_outputs(ds)
    if got != n:
        raise RuntimeError(f"sweep of {n}: {got} points' outputs committed ({ds})")
    return {"check": check, "schedule": schedule, "schedule_peak_mb": schedule_peak,
            "finish": finish, "finish_peak_mb": peak}


def sweep_theirs(datalad: str, n: int, work: Path) -> dict:
    ds = work / f"sweep-theirs-{n}"
    create_dataset(ds, datalad, ENV)
    start = time.perf_counter()
    jobs = manual_sweep_files(ds, n)
    save(ds, datalad, ENV, "clones and scripts")
    prepare = time.perf_counter() - start
    since = now()
    submit = sum(run([datalad, "slurm-schedule", "-o", out, "sbatch", f"{point}/job.sh",
                      out, f"{point}/components"], ds) for point, out in jobs)
    wait_for_slurm(since, ds)
    finish, peak = run_peak([datalad, "slurm-finish"], ds)
    got = records(ds)
    if got != n:
        raise RuntimeError(f"datalad-slurm sweep: {got} records for {n} points ({ds})")
    return {"schedule": prepare + submit, "prepare": prepare, "finish": finish,
            "finish_peak_mb": peak}


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
               if ln.startswith("MemTotal"))

    def first(argv):
        return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(int(mem) / 2**20, 1),
            "os": first(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
            "python": platform.python_version(), "slurm": first(["sbatch", "--version"]),
            "git": first(["git", "--version"]), "git-annex": first(["git", "annex", "version", "--raw"]),
            "slurm_cpus": first(["sinfo", "-h", "-o", "%c"]),
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}


SECTIONS = ("compare", "sweeps", "report", "big", "local", "slurm")


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a development run: N = 10 and 100 side by side, our sweeps "
                        "and issue 11's series capped at 10 000 points, a dataset of 10 000 "
                        "files (about 25 min); targets need the full run")
    parser.add_argument("--max-points", type=int, default=None,
                        help="cap issue 11's sweep series (default 100000; 10000 with --quick)")
    parser.add_argument("--min-points", type=int, default=0,
                        help="skip issue 11's sweeps smaller than this (to run the largest "
                        "alone, then merge parts with bench/merge_runs.py)")
    parser.add_argument("--big-files", type=int, default=None,
                        help="files in the big dataset (default 100000; 10000 with --quick)")
    parser.add_argument("--slurm-100k", action="store_true",
                        default=os.environ.get("BENCH_SLURM_100K", "") not in ("", "0"),
                        help="also run the 100 000-point sweep on the Slurm cluster, chunked "
                        "into n_workers: 100 array tasks (about 25 min more; env BENCH_SLURM_100K=1)")
    parser.add_argument("--local-n-workers", type=int, default=100,
                        help="n_workers of issue 11's sweeps on the local backend (default "
                        "100; 0: one point per array task, ~10x longer to run the jobs)")
    parser.add_argument("--job-budget", type=float, default=3600,
                        help="skip a sweep of issue 11's series whose jobs would run longer "
                        "than this many seconds, judged by the previous size (default 3600)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "docs",
                        help="where benchmarks.md/.png/.json go (default docs/)")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the table and plot from OUT/benchmarks.json")
    args = parser.parse_args()
    args.sections = [x for x in args.sections.split(",") if x]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"--sections: unknown {', '.join(sorted(unknown))}")
    if args.max_points is None:
        args.max_points = 10000 if args.quick else 100000
    if args.big_files is None:
        args.big_files = 10000 if args.quick else 100000
    return args


class Run:
    """The measurements of one run, kept on disk as they come: a failure
    late in a long run loses nothing."""

    def __init__(self) -> None:
        self.raw: dict = {"results": [], "api_schedule_per_job": None}
        self.partial = ROOT / ".bench" / "partial.json"
        self.partial.parent.mkdir(exist_ok=True)

    def keep(self) -> None:
        self.partial.write_text(json.dumps(self.raw, indent=1))

    def add(self, tool: str, workload: str, n: int, phases: dict) -> None:
        self.raw["results"].append({"tool": tool, "workload": workload, "n": n, **phases})
        self.keep()
        log(f"{tool:22} {workload:12} N={n:<6} " + ", ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in phases.items()))


def compare(run_: Run, args, work: Path) -> None:
    sizes_both = [10, 100] if args.quick else [10, 100, 300]
    theirs = ensure_datalad_slurm()
    run_.raw["api_schedule_per_job"] = api_schedule(100, work)
    for index, n in enumerate(sizes_both):
        order = [(OURS, "datalad"), (THEIRS, theirs)]
        for tool, exe in (order if index % 2 == 0 else order[::-1]):
            run_.add(tool, "single jobs", n, single_jobs(tool, exe, n, work))
    for n in [] if args.quick else [1000]:
        run_.add(OURS, "single jobs", n, single_jobs(OURS, "datalad", n, work))
    for index, n in enumerate(sizes_both):
        pair = [lambda n=n: run_.add(OURS, "sweep", n, sweep_ours(n, work)),
                lambda n=n: run_.add(THEIRS, "sweep", n, sweep_theirs(theirs, n, work))]
        for step in (pair if index % 2 == 0 else pair[::-1]):
            step()


def sweeps(run_: Run, args, work: Path) -> None:
    """Our sweeps beyond datalad-slurm's reach; the largest one's finish is
    measured against its floor (issue 11)."""
    sizes = [1000] if args.quick else [1000, 10000]
    for n in sizes:
        # 10 000 array tasks do not fit under MaxJobCount 10 000 (the array
        # records and the last minutes' jobs count too): unchunked, that
        # sweep runs on the local backend, as issue 11 measured its floor.
        backend = "local" if n > 5000 else "slurm"
        floor: dict | None = {"n": n, "backend": backend} if n == sizes[-1] else None
        run_.add(OURS, "sweep", n, {**sweep_ours(n, work, floor, backend), "backend": backend})
        if floor:
            run_.raw["floor"] = floor
            run_.keep()


def attempt(run_: Run, key: str, what: str, measure, context: dict | None = None) -> bool:
    """Issue 11's workloads may fail on a tree that cannot do them yet: the
    failure is kept for the table (a target not met), the run goes on."""
    try:
        entry = measure()
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        detail = getattr(e, "stderr", None) or str(e)
        entry = {**(context or {}), "error": str(detail).strip()[-600:]}
        log(f"{what} FAILED: {entry['error']}")
    run_.raw.setdefault(key, []).append(entry)
    run_.keep()
    if "error" not in entry:
        log(f"{what}: {entry}")
    return "error" not in entry


def _too_long(run_: Run, args, context: dict) -> bool:
    """Whether the jobs of the next sweep of a series would run longer than
    --job-budget, judged by the last one (a tree that ignores n_workers runs
    one point per task: hours at 100 000 points on the local backend)."""
    done = [e for e in run_.raw.get("scale", [])
            if e.get("backend") == context["backend"] and "run" in e]
    if not done:
        return False
    last = done[-1]
    guess = last["run"] / last["n"] * context["n"]
    if guess <= args.job_budget:
        return False
    run_.raw["scale"].append({**context, "skipped": (
        f"its jobs would run ~{guess / 60:.0f} min ({last['run'] / last['n'] * 1000:.1f} "
        f"ms per point at N={last['n']}), over --job-budget {args.job_budget / 60:.0f} min")})
    run_.keep()
    log(f"{context['backend']} sweep of {context['n']} skipped: {run_.raw['scale'][-1]['skipped']}")
    return True


def scale_series(run_: Run, args, work: Path) -> None:
    local = [n for n in (1000, 10000, 100000) if args.min_points <= n <= args.max_points]
    slurm = [n for n in (1000, 10000) if args.min_points <= n <= args.max_points]
    if args.slurm_100k and args.max_points >= 100000:
        slurm.append(100000)
    series = [("local", args.local_n_workers or None, local, "local" in args.sections),
              ("slurm", 100, slurm, "slurm" in args.sections)]
    for backend, workers, sizes, wanted in series:
        for n in sizes if wanted else []:
            context = {"backend": backend, "n_workers": workers, "n": n}
            if _too_long(run_, args, context):
                break

            def one(n=n, backend=backend, workers=workers, context=context):
                return {**context, **scale_sweep(n, work, backend, workers)}
            if not attempt(run_, "scale", f"{backend} sweep of {n}", one, context):
                break  # a larger one would fail the same way, only later


def main() -> None:
    args = options()
    if args.report_only:
        report(json.loads((args.out / "benchmarks.json").read_text()), args.out)
        return
    run_ = Run()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="slurmsweep-bench-") as tmp:
        work = Path(tmp)
        if "compare" in args.sections:
            compare(run_, args, work)
        if "sweeps" in args.sections:
            sweeps(run_, args, work)
        if "report" in args.sections and not args.quick:
            from report_bench import measure
            run_.add(OURS, "report", 10000, measure(work, 100))
        for path in work.iterdir():
            shutil.rmtree(path, ignore_errors=True)
        if "big" in args.sections:
            attempt(run_, "big_dataset", f"finish in a dataset of {args.big_files} files",
                    lambda: big_dataset_finish(work, args.big_files))
        scale_series(run_, args, work)
        for path in work.iterdir():
            shutil.rmtree(path, ignore_errors=True)
    run_.raw.update(machine=machine(), quick=args.quick, sections=args.sections,
                    duration_s=time.perf_counter() - started,
                    settings={"max_points": args.max_points, "big_files": args.big_files,
                              "slurm_100k": args.slurm_100k,
                              "local_n_workers": args.local_n_workers,
                              "job_budget": args.job_budget})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks.json").write_text(json.dumps(run_.raw, indent=1) + "\n")
    report(run_.raw, args.out)


def report(raw: dict, out: Path) -> None:
    from report import write_report
    write_report(out, raw)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
