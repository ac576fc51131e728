#!/usr/bin/env python3
"""make bench: datalad-slurmsweep and datalad-slurm 0.2.8, side by side, on the
local Slurm cluster, in one run, interleaved, on fresh datasets.

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

from workloads import (
    create_dataset,
    git_identity_env,
    manual_sweep_files,
    save,
    single_job_files,
    sweep_files,
)

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench" / "venv-datalad-slurm"
OURS, THEIRS = "datalad-slurmsweep", "datalad-slurm 0.2.8"
ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "COMPLETING", "CONFIGURING"}
ENV = git_identity_env(os.environ)


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def ensure_datalad_slurm() -> str:
    exe = VENV / "bin" / "datalad"
    if not exe.exists():
        log("installing datalad-slurm 0.2.8 into " + str(VENV))
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet",
                        "--disable-pip-version-check", "datalad==1.7.1", "datalad-slurm==0.2.8"],
                       check=True)
    return str(exe)


def run(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def run_peak(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Seconds and peak resident memory (MB) of the largest process of the run."""
    wrapper = ("import resource, subprocess, sys, time\n"
               "t = time.perf_counter(); rc = subprocess.run(sys.argv[1:]).returncode\n"
               "t = time.perf_counter() - t\n"
               "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
               "sys.stderr.write(f'BENCH {t} {peak}\\n'); sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper, *argv], cwd=cwd, env=ENV,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("BENCH ")][-1]
    _, seconds, peak_kb = line.split()
    return float(seconds), int(peak_kb) / 1024


def wait_for_slurm(since: str, timeout: float = 3600) -> float:
    """Until every job submitted since ``since`` has ended, as sacct sees it."""
    start = time.perf_counter()
    while True:
        proc = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "State", "-S", since],
                              capture_output=True, text=True, check=True)
        states = [s.split(" ")[0] for s in proc.stdout.split()]
        queued = subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip()
        if not queued and not ACTIVE.intersection(states):
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            raise RuntimeError("jobs did not end in time")
        time.sleep(1)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 2))


def records(ds: Path) -> int:
    out = subprocess.run(["git", "log", "--format=%s"], cwd=ds, capture_output=True,
                         text=True, check=True).stdout
    return sum(1 for s in out.splitlines() if s.startswith("[DATALAD SLURM RUN]"))


def repeat(argv, cwd, times: int) -> float:
    return statistics.median(run(argv, cwd) for _ in range(times))


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
    wait_for_slurm(since)
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
    wait_for_slurm(since)
    return json.loads(out.splitlines()[-1])


def sweep_ours(n: int, work: Path) -> dict:
    ds = work / f"sweep-ours-{n}"
    create_dataset(ds, "datalad", ENV)
    config = sweep_files(ds, n)
    save(ds, "datalad", ENV, "model")
    check = repeat(["datalad", "slurm-sweep", "--check", str(config)], ds, 3)
    since = now()
    schedule, schedule_peak = run_peak(["datalad", "slurm-sweep", str(config)], ds)
    wait_for_slurm(since)
    finish, peak = run_peak(["datalad", "slurm-finish"], ds)
    last = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=ds, capture_output=True,
                          text=True, check=True).stdout
    got = last.count('"point":')
    if got != n:
        raise RuntimeError(f"sweep of {n}: the record holds {got} points ({ds})")
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
    wait_for_slurm(since)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="N = 10 and 100 only (a smoke run; targets need the full run)")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the table and plot from docs/benchmarks.json")
    args = parser.parse_args()
    if args.report_only:
        report(json.loads((ROOT / "docs" / "benchmarks.json").read_text()))
        return
    sizes_both = [10, 100] if args.quick else [10, 100, 300]
    sizes_ours = [] if args.quick else [1000]
    sweep_ours_only = [] if args.quick else [1000, 10000]
    theirs = ensure_datalad_slurm()
    results: list[dict] = []

    partial = ROOT / ".bench" / "partial.json"

    def add(tool, workload, n, phases):
        results.append({"tool": tool, "workload": workload, "n": n, **phases})
        # Kept as we go: a failure late in a long run loses nothing.
        partial.write_text(json.dumps(results, indent=1))
        log(f"{tool:22} {workload:12} N={n:<6} " + ", ".join(
            f"{k}={v:.3f}" for k, v in phases.items()))

    with tempfile.TemporaryDirectory(prefix="slurmsweep-bench-") as tmp:
        work = Path(tmp)
        api = api_schedule(100, work)
        for index, n in enumerate(sizes_both):
            order = [(OURS, "datalad"), (THEIRS, theirs)]
            for tool, exe in (order if index % 2 == 0 else order[::-1]):
                add(tool, "single jobs", n, single_jobs(tool, exe, n, work))
        for n in sizes_ours:
            add(OURS, "single jobs", n, single_jobs(OURS, "datalad", n, work))
        for index, n in enumerate(sizes_both):
            pair = [lambda n=n: add(OURS, "sweep", n, sweep_ours(n, work)),
                    lambda n=n: add(THEIRS, "sweep", n, sweep_theirs(theirs, n, work))]
            for step in (pair if index % 2 == 0 else pair[::-1]):
                step()
        for n in sweep_ours_only:
            add(OURS, "sweep", n, sweep_ours(n, work))
        if not args.quick:
            from report_bench import measure
            add(OURS, "report", 10000, measure(work, 100))
        for path in work.iterdir():
            shutil.rmtree(path, ignore_errors=True)
    raw = {"machine": machine(), "api_schedule_per_job": api, "results": results,
           "quick": args.quick}
    (ROOT / "docs" / "benchmarks.json").write_text(json.dumps(raw, indent=1) + "\n")
    report(raw)


def report(raw: dict) -> None:
    from report import write_report
    write_report(ROOT / "docs", raw["results"], raw["api_schedule_per_job"], raw["machine"],
                 quick=raw.get("quick", False))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
