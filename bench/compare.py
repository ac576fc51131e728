#!/usr/bin/env python3
"""Compare two revisions of datalad-slurmsweep on the same workloads, in one
run, interleaved: ``bench/compare.py BASE_DIR [NEW_DIR]``.

Each directory is a checkout of the package (``git worktree add DIR REV``);
the commands run with ``PYTHONPATH`` pointing at it, so the CLI, the Python
API and the local backend's runners all use that copy. Prints a Markdown
table of median seconds per phase and the ratio new/base; exits 1 when a
phase is more than ``--tolerance`` slower.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import run as bench  # bench/run.py: the workloads of make bench

ROOT = Path(__file__).resolve().parent.parent


def measure(src: Path, work: Path, singles: int, sweeps: list[int], rep: int) -> dict:
    bench.ENV["PYTHONPATH"] = str(src)
    found = {}
    phases = bench.single_jobs(bench.OURS, "datalad", singles, work / f"{src.name}-{rep}")
    found.update({f"single N={singles} {k}": v for k, v in phases.items()})
    for n in sweeps:
        phases = bench.sweep_ours(n, work / f"{src.name}-{rep}-sweep")
        found.update({f"sweep N={n} {k}": v for k, v in phases.items()})
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base", type=Path)
    parser.add_argument("new", type=Path, nargs="?", default=ROOT)
    parser.add_argument("--singles", type=int, default=100)
    parser.add_argument("--sweeps", type=int, nargs="*", default=[300, 1000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=0.10)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"base": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="slurmsweep-compare-") as tmp:
        for rep in range(args.repeats):
            for label, src in (("base", args.base), ("new", args.new)):
                bench.log(f"{label} ({src}), repeat {rep + 1}")
                (Path(tmp) / label).mkdir(exist_ok=True)
                runs[label].append(measure(src.resolve(), Path(tmp) / label, args.singles,
                                           args.sweeps, rep))
    slower = []
    print("| phase | base | new | new/base |\n|---|---|---|---|")
    for phase in runs["base"][0]:
        base = statistics.median(r[phase] for r in runs["base"])
        new = statistics.median(r[phase] for r in runs["new"])
        ratio = new / base if base else float("nan")
        unit = "MB" if phase.endswith("_mb") else "s"
        print(f"| {phase} | {base:.3f} {unit} | {new:.3f} {unit} | {ratio:.2f} |")
        if ratio > 1 + args.tolerance:
            slower.append(phase)
    if slower:
        print(f"\nslower than base by more than {args.tolerance:.0%}: {', '.join(slower)}")
    return 1 if slower else 0


if __name__ == "__main__":
    sys.exit(main())
