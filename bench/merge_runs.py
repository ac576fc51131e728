#!/usr/bin/env python3
"""Assemble docs/benchmarks.* from partial runs (``run.py --sections ...
--out DIR``), when one full ``make bench`` does not fit the time at hand.

Each part keeps its own date, commit, sections and duration in the merged
file (``parts``), and the table's header lists them, so no figure loses
where it came from. A measurement (tool, workload, N) present in several
parts is taken from the first part naming it: list the newest run first.
Issue 11's sweeps are merged row by row (backend, n_workers, N), so one
series may come from several runs.

    python bench/merge_runs.py --out docs /tmp/b-sweeps /tmp/b-local docs-old
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

LISTS = ("results", "big_dataset", "scale")


def merge(parts: list[tuple[str, dict]]) -> dict:
    merged: dict = {"results": [], "big_dataset": [], "scale": [], "parts": []}
    seen: set[tuple] = set()
    for name, raw in parts:
        merged["parts"].append({"from": name, "date": raw["machine"]["date"],
                                "sections": raw.get("sections") or ["compare", "sweeps"],
                                "duration_s": raw.get("duration_s"),
                                "commit": raw.get("commit"),
                                "slurm_cpus": raw["machine"].get("slurm_cpus")})
        for row in raw.get("results", []):
            key = (row["tool"], row["workload"], row["n"])
            if key not in seen:
                seen.add(key)
                merged["results"].append(row)
        if not merged["big_dataset"]:
            merged["big_dataset"] = list(raw.get("big_dataset") or [])
        for row in raw.get("scale") or []:
            key = ("scale", row["backend"], row.get("n_workers"), row["n"])
            if key not in seen:
                seen.add(key)
                merged["scale"].append(row)
        for key, value in raw.items():
            if key not in LISTS and key not in merged and value is not None:
                merged[key] = value
    # A series in the order it grows, whichever part measured which size.
    backends = list(dict.fromkeys(row["backend"] for row in merged["scale"]))
    merged["scale"].sort(key=lambda row: (backends.index(row["backend"]), row["n"]))
    # What the parts ran together: the Slurm 100 000-point sweep if any did.
    merged["settings"] = {**merged.get("settings", {}), "slurm_100k": any(
        (raw.get("settings") or {}).get("slurm_100k") for _, raw in parts)}
    merged.pop("duration_s", None)
    merged["sections"] = sorted({s for p in merged["parts"] for s in p["sections"]})
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("parts", type=Path, nargs="+",
                        help="directories holding a benchmarks.json, newest first")
    args = parser.parse_args()
    parts = [(str(p), json.loads((p / "benchmarks.json").read_text())) for p in args.parts]
    merged = merge(parts)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks.json").write_text(json.dumps(merged, indent=1) + "\n")
    from report import write_report
    write_report(args.out, merged)


if __name__ == "__main__":
    main()
