"""How the benchmark times commands and waits for jobs; shared by run.py,
scale.py and compare.py."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from workloads import git_identity_env

ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "COMPLETING", "CONFIGURING"}
# One dict, mutated by compare.py (PYTHONPATH), read by every run below.
ENV = git_identity_env(os.environ)

# Runs argv and reports its wall time and the peak resident memory of the
# largest process it waited for (RUSAGE_CHILDREN of a fresh interpreter, so
# nothing measured before leaks in).
_PEAK_WRAPPER = ("import resource, subprocess, sys, time\n"
                 "t = time.perf_counter(); rc = subprocess.run(sys.argv[1:]).returncode\n"
                 "t = time.perf_counter() - t\n"
                 "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
                 "sys.stderr.write(f'BENCH {t} {peak}\\n'); sys.exit(rc)\n")


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def _failed(argv: list[str], proc: subprocess.CompletedProcess) -> RuntimeError:
    return RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n"
                        f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def run(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise _failed(argv, proc)
    return elapsed


def run_peak(argv: list[str], cwd: Path, stdin: Path | None = None) -> tuple[float, float]:
    """Seconds and peak resident memory (MB) of the largest process of the run."""
    with open(stdin or os.devnull, "rb") as feed:
        proc = subprocess.run([sys.executable, "-c", _PEAK_WRAPPER, *argv], cwd=cwd, env=ENV,
                              stdin=feed, capture_output=True, text=True)
    if proc.returncode != 0:
        proc.stderr = "\n".join(ln for ln in proc.stderr.splitlines() if not ln.startswith("BENCH "))
        raise _failed(argv, proc)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("BENCH ")][-1]
    _, seconds, peak_kb = line.split()
    return float(seconds), int(peak_kb) / 1024


def repeat(argv: list[str], cwd: Path, times: int) -> float:
    return statistics.median(run(argv, cwd) for _ in range(times))


def repeat_peak(argv: list[str], cwd: Path, times: int) -> tuple[float, float]:
    """Median seconds and largest peak memory (MB) of ``times`` runs."""
    runs = [run_peak(argv, cwd) for _ in range(times)]
    return statistics.median(s for s, _ in runs), max(mb for _, mb in runs)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 2))


def _ours(workdir: str, under: Path | None) -> bool:
    return under is None or workdir == str(under) or workdir.startswith(f"{under}/")


def wait_for_slurm(since: str, under: Path | None = None, timeout: float = 3 * 3600) -> float:
    """Until every job submitted since ``since`` (from a directory ``under``,
    when given: the cluster is shared with other users' jobs) has ended, as
    sacct and squeue see it."""
    start = time.perf_counter()
    while True:
        acct = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "State,WorkDir", "-S", since],
                              capture_output=True, text=True, check=True).stdout
        states = [s.split("|")[0].split(" ")[0] for s in acct.splitlines()
                  if "|" in s and _ours(s.split("|", 1)[1], under)]
        queued = subprocess.run(["squeue", "-h", "-o", "%Z"], capture_output=True,
                                text=True).stdout.split()
        if not any(_ours(w, under) for w in queued) and not ACTIVE.intersection(states):
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            raise RuntimeError("jobs did not end in time")
        time.sleep(1)


def _cmdlines() -> list[bytes]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                found.append(Path(entry.path, "cmdline").read_bytes())
            except OSError:  # ended meanwhile
                continue
    return found


def wait_for_local(ds: Path, timeout: float = 3 * 3600) -> float:
    """Until the local backend's runners of ``ds`` have exited: a runner
    ends once its job's every task has ended and its state is written (its
    command line names the state directory; no file format is relied on)."""
    marker = os.fsencode(ds / ".git" / "slurmsweep" / "local")
    start = time.perf_counter()
    while any(marker in line for line in _cmdlines()):
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"local jobs of {ds} did not end in time")
        time.sleep(1)
    return time.perf_counter() - start
