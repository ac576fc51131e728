"""Resource figures from recorded sacct/scontrol output, and the advice."""
from __future__ import annotations

from pathlib import Path

from datalad_slurmsweep.backends.base import JobState, Resources
from datalad_slurmsweep.backends.slurm import parse_sacct, parse_scontrol_jobs
from datalad_slurmsweep.backends.usage import parse_duration, parse_size
from datalad_slurmsweep.jobs.advice import advise, mem_text, time_text

DATA = Path(__file__).resolve().parent.parent / "data" / "slurm"
MIB = 1024 ** 2


def test_steps_fold_into_their_task():
    rows = parse_sacct((DATA / "sacct_usage.txt").read_text())
    assert sorted(rows) == ["12300", "12301", "12303", "12304"]
    (long,) = rows["12303"]
    r = long.resources
    assert (r.elapsed_s, r.total_cpu_s, r.max_rss_bytes) == (36.0, 36.128, 96940 * 1024)
    assert (r.req_mem_bytes, r.alloc_cpus, r.time_limit_s) == (300 * MIB, 1, 120)
    assert r.cpu_efficiency == round(36.128 / 36, 4)
    assert r.mem_efficiency == round(96940 * 1024 / (300 * MIB), 4)
    assert r.unknown == []


def test_empty_maxrss_is_unknown_not_zero():
    rows = parse_sacct((DATA / "sacct_usage.txt").read_text())
    (short,) = rows["12300"]
    assert short.resources.max_rss_bytes is None
    assert short.resources.unknown == ["max_rss_bytes", "mem_efficiency"]
    assert short.resources.cpu_efficiency is not None
    tasks = {t.task_id: t for t in rows["12301"]}
    assert tasks[1].state is JobState.FAILED and tasks[1].resources.req_mem_bytes == 100 * MIB


def test_old_recordings_without_usage_columns_still_parse():
    rows = parse_sacct((DATA / "sacct_mixed_with_steps.txt").read_text())
    (ok,) = rows["6"]
    assert ok.state is JobState.COMPLETED
    assert "elapsed_s" in ok.resources.unknown


def test_scontrol_says_what_it_cannot_know():
    rows = parse_scontrol_jobs((DATA / "scontrol_usage_oneline.txt").read_text())
    r = rows["12303"][0].resources
    assert (r.req_mem_bytes, r.alloc_cpus, r.time_limit_s) == (300 * MIB, 1, 120)
    assert {"total_cpu_s", "max_rss_bytes", "cpu_efficiency", "mem_efficiency"} <= set(r.unknown)


def test_sizes_and_durations():
    assert parse_size("96940K") == 96940 * 1024
    assert parse_size("4000Mc", cpus=2) == 8000 * MIB
    assert parse_size("") is None and parse_size("0") is None
    assert parse_duration("1-02:03:04") == 93784
    assert parse_duration("00:02.072") == 2.072
    assert mem_text(1536 * MIB) == "1536M" and mem_text(2048 * MIB) == "2G"
    assert time_text(90) == "00:02:00" and time_text(86400 + 60) == "1-00:01:00"


def _used(**kw) -> Resources:
    return Resources(**kw).completed()


def test_advice_like_seff():
    low = _used(elapsed_s=60, total_cpu_s=60, max_rss_bytes=100 * MIB,
                req_mem_bytes=4096 * MIB, alloc_cpus=1, time_limit_s=3600)
    found = {a.figure: a for a in advise([(JobState.COMPLETED, low)])}
    assert found["memory"].option == "--mem=150M"
    assert found["time"].option == "--time=00:02:00"
    oom = _used(max_rss_bytes=4096 * MIB, req_mem_bytes=4096 * MIB, time_limit_s=3600)
    found = {a.figure: a for a in advise([(JobState.OUT_OF_MEMORY, oom)])}
    assert found["memory"].option == "--mem=8G" and "ran out of memory" in found["memory"].reason
    timeout = _used(elapsed_s=3600, time_limit_s=3600)
    (a,) = advise([(JobState.TIMEOUT, timeout)])
    assert a.option == "--time=02:00:00"
    fine = _used(elapsed_s=3000, max_rss_bytes=3000 * MIB, req_mem_bytes=4096 * MIB,
                 time_limit_s=3600)
    assert advise([(JobState.COMPLETED, fine)]) == []
    assert advise([(JobState.COMPLETED, None)]) == []


def test_metrics_are_the_scalars_or_the_keys_named():
    from datalad_slurmsweep.report.table import metric_values
    blob = b'{"rate": 2.5, "name": "x", "nested": {"loss": 0.1}, "trace": [1, 2]}'
    assert metric_values(blob, []) == {"rate": 2.5, "name": "x"}
    assert metric_values(blob, ["nested.loss", "missing"]) == {"nested.loss": 0.1}
    assert metric_values(b"[1, 2]", []) == {} and metric_values(b"not json", []) == {}


def test_csv_never_repeats_a_column(tmp_path):
    import csv

    from datalad_slurmsweep.report.table import Row, Table, write_csv
    row = Row(point="p", case="baseline", params={"state": 1.0, "gain": 2.0},
              state="COMPLETED", exit_code=0, resources=Resources().completed(),
              record_commit="abc", metrics={"case": "x", "gain": 3.0, "rate": 4.0})
    write_csv(Table(title="t", kind="sweep", commit="def", rows=[row]), tmp_path / "r.csv")
    header, values = list(csv.reader(open(tmp_path / "r.csv")))
    assert len(header) == len(set(header))
    got = dict(zip(header, values, strict=True))
    assert (got["case"], got["metric.case"], got["param.state"], got["state"]) == (
        "baseline", "x", "1.0", "COMPLETED")
    assert (got["gain"], got["metric.gain"], got["dataset_commit"]) == ("2.0", "3.0", "def")
