"""Turning the benchmark's measurements into docs/benchmarks.{md,png,json}."""
from __future__ import annotations

from pathlib import Path

import report_scale

OURS, THEIRS = "datalad-slurmsweep", "datalad-slurm 0.2.8"
PHASES = ("check", "schedule", "list", "finish")


def _find(results, tool, workload, n):
    return next((r for r in results if r["tool"] == tool and r["workload"] == workload
                 and r["n"] == n), None)


def _ratio(results, workload, n, phase):
    ours, theirs = _find(results, OURS, workload, n), _find(results, THEIRS, workload, n)
    if ours and theirs and phase in ours and phase in theirs and ours[phase] > 0:
        return theirs[phase] / ours[phase]
    return None


def targets(results, api) -> list[tuple[str, str, bool]]:
    rows = []

    def target(name, value_text, ok):
        rows.append((name, value_text, bool(ok)))

    r = _ratio(results, "single jobs", 300, "finish")
    if r:
        target("finish 300 single jobs >= 20x faster", f"{r:.1f}x", r >= 20)
    r = _ratio(results, "single jobs", 300, "list")
    if r:
        target("list 300 open jobs >= 50x faster", f"{r:.1f}x", r >= 50)
    ours = [x["schedule_per_job_median"] for x in results
            if x["tool"] == OURS and x["workload"] == "single jobs" and x["n"] <= 300]
    theirs = [x["schedule_per_job_median"] for x in results
              if x["tool"] == THEIRS and x["workload"] == "single jobs"]
    if ours and theirs:
        o, t = sorted(ours)[len(ours) // 2], sorted(theirs)[len(theirs) // 2]
        target("schedule one job (CLI) no slower than datalad-slurm",
               f"{o * 1000:.0f} ms vs {t * 1000:.0f} ms", o <= t)
    if api is not None:
        target("schedule one job (Python API) <= 50 ms", f"{api * 1000:.1f} ms", api <= 0.05)
    s1k = _find(results, OURS, "sweep", 1000)
    if s1k:
        target("1000-point sweep: check < 2 s", f"{s1k['check']:.2f} s", s1k["check"] < 2)
        target("1000-point sweep: schedule < 10 s", f"{s1k['schedule']:.2f} s", s1k["schedule"] < 10)
        target("1000-point sweep: finish < 20 s", f"{s1k['finish']:.2f} s", s1k["finish"] < 20)
        s10 = _find(results, OURS, "sweep", 10)
        for phase in ("schedule", "finish") if s10 else ():
            small, large = s10[phase] / 10, s1k[phase] / 1000
            target(f"sweep {phase}: per-point cost flat 10 -> 1000 (within 2x)",
                   f"{small * 1000:.1f} -> {large * 1000:.1f} ms/point", large <= 2 * small)
    s10k = _find(results, OURS, "sweep", 10000)
    if s10k:
        where = f" ({s10k['backend']} backend)" if s10k.get("backend") == "local" else ""
        target(f"10000-point sweep{where}: finish < 120 s", f"{s10k['finish']:.1f} s", s10k["finish"] < 120)
        target(f"10000-point sweep{where}: finish peak memory < 500 MB",
               f"{s10k['finish_peak_mb']:.0f} MB", s10k["finish_peak_mb"] < 500)
    rep = _find(results, OURS, "report", 10000)
    if rep:
        target("slurm-report of a 10000-point sweep (CSV + HTML with plots) < 10 s",
               f"{rep['report']:.2f} s", rep["report"] < 10)
    return rows


def table(results) -> list[str]:
    lines = ["| tool | workload | N | phase | seconds | ms per job | datalad-slurm ÷ ours |",
             "|---|---|---:|---|---:|---:|---:|"]
    compared = [r for r in results if r["workload"] in ("single jobs", "sweep")]
    for r in sorted(compared, key=lambda r: (r["workload"], r["n"], r["tool"] != OURS)):
        for phase in PHASES:
            if phase not in r:
                continue
            ratio = _ratio(results, r["workload"], r["n"], phase) if r["tool"] == OURS else None
            per_job = r[phase] / r["n"] * 1000
            workload = r["workload"] + (" (local backend)" if r.get("backend") == "local" else "")
            lines.append(f"| {r['tool']} | {workload} | {r['n']} | {phase} | "
                         f"{r[phase]:.2f} | {per_job:.1f} | "
                         f"{f'{ratio:.1f}x' if ratio else ''} |")
    return lines


def plot(results, path: Path, runs: int = 1) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 4, figsize=(16, 5))
    series = {(OURS, "single jobs"): ("tab:blue", "-o"), (OURS, "sweep"): ("tab:green", "-o"),
              (THEIRS, "single jobs"): ("tab:red", "--s"), (THEIRS, "sweep"): ("tab:orange", "--s")}
    styles = iter([("tab:purple", ":^"), ("tab:brown", ":v"), ("tab:gray", ":D")])
    for r in results:  # issue 11's sweeps, up to 100 000 points
        if (r["tool"], r["workload"]) not in series:
            series[r["tool"], r["workload"]] = next(styles, ("black", ":x"))
    for ax, phase in zip(axes, PHASES, strict=True):
        for (tool, workload), (color, style) in series.items():
            pts = sorted((r["n"], r[phase] / r["n"] * 1000) for r in results
                         if r["tool"] == tool and r["workload"] == workload and phase in r)
            if pts:
                ax.plot(*zip(*pts, strict=True), style, color=color)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(phase)
        ax.set_xlabel("N (jobs or points)")
        ax.set_ylabel("ms per job")
        ax.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], color=c, linestyle=st[:-1], marker=st[-1])
               for c, st in series.values()]
    fig.legend(handles, [f"{t}, {w}" for t, w in series], loc="lower center", ncol=3,
               fontsize=9)
    where = "one run of make bench" if runs == 1 else f"{runs} runs (see the header)"
    fig.suptitle(f"Per-job cost against N (lower is better), {where}")
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    fig.savefig(path, dpi=110)


def _header(raw: dict) -> list[str]:
    machine, quick = raw["machine"], raw.get("quick", False)
    duration = raw.get("duration_s")
    ran = (f" This run took {duration / 60:.0f} min (sections: "
           f"{', '.join(raw.get('sections', []))})." if duration else "")
    if raw.get("parts"):
        ran = " Assembled from partial runs (`bench/merge_runs.py`): " + "; ".join(
            f"{', '.join(p['sections'])} on {p['date']}"
            + (f" ({p['duration_s'] / 60:.0f} min)" if p.get("duration_s") else "")
            + (f" at {p['commit'][:10]}" if p.get("commit") else "")
            + (f", Slurm with {p['slurm_cpus']} CPUs declared"
               if p.get("slurm_cpus") not in (None, raw["machine"].get("slurm_cpus")) else "")
            for p in raw["parts"]) + "."
    return ["# Benchmarks", "",
            "Generated by `make bench` (bench/run.py); do not edit by hand."
            + (" **Quick run: N = 10 and 100 side by side, sweeps capped at "
               f"{raw.get('settings', {}).get('max_points', 10000)} points.**" if quick else "")
            + ran, "",
            f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB,"
            f" {machine['os']}; Python {machine['python']}, {machine['slurm']} "
            f"(single node, {machine['slurm_cpus']} CPUs declared), {machine['git']}, "
            f"git-annex {machine['git-annex']}; {machine['date']}.", "",
            "Both tools run in the same run, interleaved, each on fresh datasets, on the "
            "same local Slurm cluster. Schedule is one CLI call per job (as a user "
            "would), or one `slurm-sweep` call for our sweeps; datalad-slurm's sweep "
            "schedule includes preparing the per-point clones and scripts with one "
            "`datalad save`. List is the median of three calls (one when a call takes "
            "over 5 s), with all N jobs open. Finish is one `slurm-finish` after Slurm "
            "reported every job done. Peak memory is the largest resident set of the "
            "processes a command waited for (`getrusage(RUSAGE_CHILDREN)` of a fresh "
            "interpreter running just that command).", "",
            "A full `make bench` takes about 1.5 h on this machine (most of it the "
            "datalad-slurm side and running the jobs of the 100 000-point sweep); "
            "`make bench BENCH_ARGS=--quick` (about 25 min) is for development; "
            "`BENCH_ARGS=--slurm-100k` (or `BENCH_SLURM_100K=1`) adds the 100 000-point "
            "sweep on the Slurm cluster (about 25 min more). `python bench/run.py --help` "
            "lists the options." + _settings(raw.get("settings")), ""]


def _settings(settings: dict | None) -> str:
    if not settings:
        return ""
    workers = settings.get("local_n_workers") or "none (one point per array task)"
    return (f" This run: issue 11's sweeps up to {settings['max_points']} points, "
            f"local backend n_workers {workers}, the 100 000-point sweep on Slurm "
            f"{'included' if settings.get('slurm_100k') else 'not included'}, "
            f"a dataset of {settings['big_files']} files.")


def write_report(docs: Path, raw: dict) -> None:
    results, api = raw["results"], raw.get("api_schedule_per_job")
    plot(results + report_scale.plot_results(raw), docs / "benchmarks.png",
         len(raw.get("parts") or [None]))
    rows = targets(results, api) + report_scale.targets(raw)
    status = {True: "yes", False: "**no**", None: "not run"}
    lines = [*_header(raw), "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {status[ok]} |" for name, value, ok in rows]
    compared = table(results)
    lines += ["", "## Measurements", "",
              *(compared if len(compared) > 2 else ["Not measured in this run."]), ""]
    if api is not None:
        lines += [f"Scheduling through the Python API: {api * 1000:.1f} ms per job "
                  "(median of 100).", ""]
    lines += ["## Issue 11: scale", "", *(report_scale.tables(raw) or ["Not measured in this run.", ""]),
              "![per-job cost against N](benchmarks.png)", ""]
    (docs / "benchmarks.md").write_text("\n".join(lines))
