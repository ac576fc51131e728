#!/usr/bin/env python3
"""slurm-report on a 10 000-point sweep: a 100 x 100 grid whose record and
metrics files are synthesised into a plain git repository (no cluster, no
jobs), then ``build_report`` timed. Part of make bench; runs alone as
``python bench/report_bench.py [N_SIDE]``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datalad_slurmsweep.jobs.recording import format_sweep_record  # noqa: E402
from datalad_slurmsweep.report.build import build_report  # noqa: E402

ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}
CONFIG = """simulation: {output_name: runs/big, environment: local, seed_sweep: none,
  results: {file: metrics.json}}
"""


def _point(i: int, j: int, side: int) -> dict:
    name = f"a-{i}_b-{j}"
    state = "FAILED" if (i * side + j) % 997 == 0 else "COMPLETED"
    return {"point": name, "case": "baseline", "params": {"a": float(i), "b": float(j)},
            "slurm_job_id": f"{100 + i}_{j}", "task_id": j, "raw_id": str(i * side + j),
            "state": state, "exit_code": 0 if state == "COMPLETED" else 1, "signal": 0,
            "start": f"2026-01-01T00:{i % 60:02d}:{j % 60:02d}",
            "end": f"2026-01-01T01:{i % 60:02d}:{j % 60:02d}", "node": f"node{j % 4}",
            "outputs": [f"runs/big/{name}/baseline"], "script": "x.sh", "inputs": [],
            "logs": [f"runs/big/logs/{name}.out"],
            "resources": {"elapsed_s": 3600.0, "total_cpu_s": 3000.0, "max_rss_bytes": 10 ** 8,
                          "req_mem_bytes": 4 * 10 ** 9, "alloc_cpus": 1, "time_limit_s": 7200,
                          "cpu_efficiency": 0.83, "mem_efficiency": 0.025, "unknown": []}}


def make_dataset(repo: Path, side: int) -> None:
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=ENV)
    points = [_point(i, j, side) for i in range(side) for j in range(side)]
    (repo / "runs/big/logs").mkdir(parents=True)
    (repo / "runs/big/sweep.yaml").write_text(CONFIG)
    for p in points:
        out = repo / p["outputs"][0]
        out.mkdir(parents=True)
        a, b = p["params"]["a"], p["params"]["b"]
        (out / "metrics.json").write_text(json.dumps({"rate": a * b, "loss": a - b}))
        (repo / p["logs"][0]).write_text("line\n" * 30)
    states = [p["state"] for p in points]
    record = {"cmd": "datalad slurm-sweep runs/big/sweep.yaml", "chain": [], "commit_id": None,
              "dsid": None, "inputs": [], "extra_inputs": [], "outputs": [], "pwd": ".",
              "slurm_job_id": [], "slurm_outputs": [], "state": "FAILED", "exit_code": 1,
              "sweep": {"name": "big", "root": "runs/big", "config": "runs/big/sweep.yaml",
                        "manifest": "runs/big/manifest.json",
                        "counts": {s: states.count(s) for s in sorted(set(states))}},
              "points": points, "backend": "local", "versions": {}, "record_version": 1,
              "tool": "datalad-slurmsweep"}
    subprocess.run(["git", "add", "."], cwd=repo, check=True, env=ENV)
    subprocess.run(["git", "commit", "-q", "-F", "-"], cwd=repo, check=True, env=ENV,
                   input=format_sweep_record(record, None).encode())


def measure(work: Path, side: int = 100) -> dict:
    repo = work / "report-bench"
    make_dataset(repo, side)
    start = time.perf_counter()
    report = build_report(repo, None, None, repo, work / "report-bench-out")
    seconds = time.perf_counter() - start
    return {"report": seconds, "rows": len(report.table.rows), "plots": report.plots,
            "html_bytes": report.html.stat().st_size}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="slurmsweep-report-bench-") as tmp:
        print(json.dumps(measure(Path(tmp), int(sys.argv[1]) if len(sys.argv) > 1 else 100)))
