"""Issue 11's part of docs/benchmarks.md: targets and tables from the
measurements of bench/scale.py (nothing typed in)."""
from __future__ import annotations

from collections.abc import Callable

# (name, measured, met): met is None for a target this run did not measure.
Target = tuple[str, str, "bool | None"]
SCALE_LIMITS = (("check", 10), ("schedule", 180), ("finish", 240), ("list", 2))
FLAT_PHASES = ("check", "schedule", "finish")


def _one_line(text: str, limit: int) -> str:
    """A message fit for a table cell: one line, no column breaks."""
    return " ".join(text.split())[-limit:].replace("|", "\\|")


def series_label(entry: dict) -> str:
    backend = "local backend" if entry["backend"] == "local" else "Slurm"
    chunks = f"n_workers {entry['n_workers']}" if entry.get("n_workers") else "one point per task"
    return f"sweep, {backend}, {chunks}"


def _series(raw: dict) -> dict[str, list[dict]]:
    """Issue 11's sweeps per backend, in the order they ran (an error ends
    a series: the larger sizes were not tried)."""
    found: dict[str, list[dict]] = {}
    for entry in raw.get("scale", []):
        found.setdefault(entry["backend"], []).append(entry)
    return found


def plot_results(raw: dict) -> list[dict]:
    """The sweeps of issue 11 as rows of the per-job plot."""
    return [{"tool": "datalad-slurmsweep", "workload": series_label(e), **e}
            for entries in _series(raw).values() for e in entries if "check" in e]


def _floor_targets(floor: dict, add: Callable) -> None:
    what = f"{floor['n']}-point sweep"
    if floor.get("backend") == "local":
        what += " (local backend)"
    add(f"{what}: finish <= 20 s", f"{floor['finish']:.1f} s", floor["finish"] <= 20)
    ratio = floor["finish"] / floor["git_add"]
    add(f"{what}: finish within 3x of plain git add of the {floor['files']} files "
        "it commits", f"{ratio:.1f}x ({floor['git_add']:.1f} s)", ratio <= 3)
    if "link_floor" in floor:
        link = floor["finish"] / floor["link_floor"]
        add(f"{what}: finish within 3x of the file system's work for locked annexed "
            "files alone (not in the issue: see the floor table)",
            f"{link:.1f}x ({floor['link_floor']:.1f} s)", link <= 3)


def _big_targets(entries: list[dict], add: Callable) -> None:
    for entry in entries:
        if "error" in entry:
            add("finish in a dataset of many files", f"failed: {_one_line(entry['error'], 160)}", False)
            continue
        for row in entry["rows"]:
            ratio = row["big"] / row["empty"]
            add(f"finish {row['n']} job{'s' if row['n'] > 1 else ''} in a dataset of "
                f"{entry['files']} files: at most 1.2x an empty dataset",
                f"{ratio:.2f}x ({row['big']:.2f} s vs {row['empty']:.2f} s)", ratio <= 1.2)


def _scale_targets(entries: list[dict], wanted: int, add: Callable) -> None:
    label = series_label(entries[0])
    done = [e for e in entries if "check" in e]
    failed = [e for e in entries if "error" in e]
    skipped = [e for e in entries if "skipped" in e]
    if failed:
        add(f"{failed[0]['n']}-point {label}", f"failed: {_one_line(failed[0]['error'], 160)}", False)
    if skipped:
        add(f"{skipped[0]['n']}-point {label}", f"skipped: {skipped[0]['skipped']}", None)
    if not done:
        return
    big = done[-1]
    n = big["n"]
    if n < wanted and not failed and not skipped:
        add(f"{wanted}-point {label}", f"not run (this run stopped at {n})", None)
    for phase, limit in SCALE_LIMITS:
        add(f"{n}-point {label}: {phase} < {limit} s", f"{big[phase]:.2f} s", big[phase] < limit)
    add(f"{n}-point {label}: peak memory < 1 GB", f"{big['peak_mb']:.0f} MB",
        big["peak_mb"] < 1024)
    small = next((e for e in done if e["n"] == 1000), None)
    if small and n > 1000:
        for phase in FLAT_PHASES:
            before, after = small[phase] / 1000, big[phase] / n
            add(f"{label}: {phase} per point flat 1000 -> {n} (within 2x)",
                f"{before * 1000:.2f} -> {after * 1000:.2f} ms/point", after <= 2 * before)


def targets(raw: dict) -> list[Target]:
    rows: list[Target] = []

    def add(name: str, value: str, ok: bool | None) -> None:
        rows.append((name, value, None if ok is None else bool(ok)))

    if raw.get("floor"):
        _floor_targets(raw["floor"], add)
    _big_targets(raw.get("big_dataset", []), add)
    settings = raw.get("settings", {})
    wanted = settings.get("max_points", 100000)
    series = _series(raw)
    for backend, entries in series.items():
        slurm_cap = wanted if settings.get("slurm_100k") else min(wanted, 10000)
        _scale_targets(entries, wanted if backend == "local" else slurm_cap, add)
    if "slurm" in series and wanted >= 100000 and not settings.get("slurm_100k"):
        add("100000-point sweep on Slurm, n_workers 100",
            "not run (needs --slurm-100k or BENCH_SLURM_100K=1)", None)
    return rows


def _floor_table(floor: dict) -> list[str]:
    git_add = floor["git_add"]
    rows = [("`datalad slurm-finish` (this tree)", floor["finish"], floor["finish_peak_mb"]),
            ("`git annex add --batch` (finish's staging before issue 11)", floor["annex_add"],
             floor["annex_add_peak_mb"]),
            ("`git add` of those files (`update-index --add --stdin`: git alone, the annex "
             "filter off), the faster of the two below", git_add, floor["git_add_peak_mb"])]
    if "git_add_before" in floor:
        rows += [("`git add`, measured before the finish", floor["git_add_before"], None),
                 ("`git add`, measured after the finish and `git annex add`",
                  floor["git_add_after"], None)]
    if "link_floor" in floor:
        rows.append(("the file system's work for locked annexed files alone (md5, key "
                     "directory, hard link, 2 chmod, symlink, rename per file; one Python "
                     "thread, no git)", floor["link_floor"], None))
    rows += [("md5 of every byte (Python hashlib)", floor["md5"], None),
             ("sha256 of every byte (Python hashlib)", floor["sha256"], None)]
    lines = [f"### Finish of a {floor['n']}-point sweep against its floor", "",
             f"The finish committed {floor['committed']} files; the floor rows handle the "
             f"{floor['files']} of them the jobs wrote ({floor['bytes'] / 2**20:.2f} MB), "
             "in copies of the dataset made just before the finish. Nothing is committed "
             "in the copies. Each step starts after `sync`; the two `git add` rows show how "
             "much slower a step right after a burst of writes runs on this machine, so "
             "the target takes the faster.", "",
             "| step | seconds | peak MB | ÷ git add |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {s:.2f} | {'' if mb is None else f'{mb:.0f}'} | {s / git_add:.1f}x |"
              for name, s, mb in rows]
    return lines + [""]


def _big_table(entry: dict) -> list[str]:
    lines = [f"### Finishing in a dataset of {entry['files']} files", "",
             f"Medians of {entry['repeats']} finishes each, the two datasets interleaved "
             "(the order flips every round); single jobs on the cluster.", "",
             "| jobs | empty dataset | "
             f"{entry['files']} files | ratio | peak MB (empty / big) | all runs (empty; big) |",
             "|---:|---:|---:|---:|---:|---|"]
    for r in entry["rows"]:
        runs = (", ".join(f"{s:.2f}" for s in r["empty_runs"]) + "; "
                + ", ".join(f"{s:.2f}" for s in r["big_runs"]))
        lines.append(f"| {r['n']} | {r['empty']:.2f} s | {r['big']:.2f} s | "
                     f"{r['big'] / r['empty']:.2f}x | {r['empty_peak_mb']:.0f} / "
                     f"{r['big_peak_mb']:.0f} | {runs} |")
    return lines + [""]


def _record(e: dict) -> str:
    if "record_kb" not in e:
        return "not measured"
    table = f", table {e['table_mb']:.1f} MB" if e["table_mb"] else ""
    return f"commit {e['record_kb']:.0f} KB{table}; git log {e['log_s']:.2f} s"


def _scale_table(series: dict[str, list[dict]]) -> list[str]:
    lines = ["### Sweeps up to 100 000 points", "",
             "Check and list: median of three calls; schedule and finish: one call. "
             "Peak MB is the largest of the four commands' peaks. Run is the time the "
             "jobs took (not a target).", "",
             "Record: the size of the finish's commit (message included), of its point "
             "table file, and one `git log --grep` of the records.", "",
             "| sweep | N | check | schedule | list | finish | run | peak MB "
             "| ms/point check / schedule / finish | record |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for entries in series.values():
        for e in entries:
            if "check" not in e:
                why = "failed" if "error" in e else "skipped"
                lines.append(f"| {series_label(e)} | {e['n']} | {why} | | | | | | | |")
                continue
            per = " / ".join(f"{e[p] / e['n'] * 1000:.2f}" for p in FLAT_PHASES)
            lines.append(f"| {series_label(e)} | {e['n']} | {e['check']:.2f} s | "
                         f"{e['schedule']:.1f} s | {e['list']:.2f} s | {e['finish']:.1f} s | "
                         f"{e['run']:.0f} s | {e['peak_mb']:.0f} | {per} | {_record(e)} |")
    return lines + [""]


def tables(raw: dict) -> list[str]:
    lines: list[str] = []
    if raw.get("floor"):
        lines += _floor_table(raw["floor"])
    for entry in raw.get("big_dataset", []):
        if "error" not in entry:
            lines += _big_table(entry)
    series = _series(raw)
    if series:
        lines += _scale_table(series)
    failures = [e for e in raw.get("scale", []) + raw.get("big_dataset", []) if "error" in e]
    for e in failures:
        lines += [f"Failure ({e.get('backend', 'big dataset')}, N={e.get('n', '')}):", "",
                  "```", e["error"], "```", ""]
    return lines
