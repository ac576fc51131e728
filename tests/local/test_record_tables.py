"""A large sweep record keeps its per-point table in a committed file
(provenance/tables.py): the commit message stays small, the table is in git
with its checksum in the record, and every reader sees the full record."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from datalad_slurmsweep.provenance.record import parse_record

from ..helpers import api, git, sweep, sweep_records
from ..helpers import sweep_config as config

ROOT = "Run-Storage/sweep_initW"
VALUES = [1.0, 2.0, 3.0, 4.0, 5.0]


def test_a_large_sweep_record_names_its_table_and_reads_whole(model_ds, monkeypatch, tmp_path):
    monkeypatch.setenv("DATALAD_SLURMSWEEP_RECORD_INLINE_POINTS", "3")
    monkeypatch.setenv("FAIL_IF_INITW", "3.0")
    path = config(model_ds, sweep_config={"param_values": VALUES})
    sweep(model_ds, path, "local", wait=True, wait_timeout=240)
    sha = git(model_ds, "rev-parse", "HEAD").strip()
    message = git(model_ds, "log", "-1", "--format=%B", sha)
    raw = parse_record(message).record
    assert not {"points", "inputs", "outputs", "slurm_outputs"} & set(raw)
    assert len(message) < 4000
    table = raw["table"]
    assert table["points"] == 4 and table["path"].startswith(f"{ROOT}/.records/")
    assert message.splitlines()[0].endswith("Sweep sweep_initW: 4 points (4 completed)")
    # In git (a regular blob, not an annex link), matching its checksum.
    mode, kind, _ = git(model_ds, "ls-tree", sha, "--", table["path"]).split("\t")[0].split()
    assert (mode, kind) == ("100644", "blob")
    content = git(model_ds, "cat-file", "blob", f"{sha}:{table['path']}").encode()
    assert hashlib.sha256(content).hexdigest() == table["sha256"]
    assert len(content.splitlines()) > 4  # one point per line
    (_, rec), = sweep_records(model_ds)
    points = {p["point"]: p for p in rec.record["points"]}
    assert sorted(points) == ["initW-1.0", "initW-2.0", "initW-4.0", "initW-5.0"]
    assert all(p["state"] == "COMPLETED" and p["outputs"] for p in points.values())
    assert sorted(rec.record["outputs"]) == sorted(o for p in points.values()
                                                   for o in p["outputs"])
    # The failed point, alone, is recorded inline.
    (acc,) = api(model_ds, "slurm_finish", accept_failed_jobs=True)
    assert acc["status"] == "ok"
    inline = parse_record(git(model_ds, "log", "-1", "--format=%B")).record
    assert "table" not in inline and [p["state"] for p in inline["points"]] == ["FAILED"]
    assert git(model_ds, "status", "--porcelain") == ""
    # The report reads both records: five rows.
    out = tmp_path / "report"
    assert all(r["status"] == "ok" for r in api(model_ds, "slurm_report", output_dir=str(out)))
    with (out / "results.csv").open() as f:
        rows = {r["point"]: r["state"] for r in csv.DictReader(f)}
    assert rows == {f"initW-{v}": "FAILED" if v == 3.0 else "COMPLETED" for v in VALUES}
    # A resumed sweep skips the points the table says completed.
    monkeypatch.delenv("FAIL_IF_INITW")
    results = api(model_ds, "slurm_sweep", str(path), backend="local", wait=True,
                  wait_timeout=240)
    finished = [r for r in results if r["action"] == "slurm-finish"]
    assert [r["status"] for r in finished] == ["ok"], results
    _, last = sweep_records(model_ds)[0]
    assert [p["point"] for p in last.record["points"]] == ["initW-3.0"]
    # Replaying the table's record replays its four points.
    assert [r["status"] for r in api(model_ds, "slurm_reschedule", sha)] == ["ok"] * 4


def test_a_table_that_does_not_match_its_checksum_is_refused(model_ds, monkeypatch):
    monkeypatch.setenv("DATALAD_SLURMSWEEP_RECORD_INLINE_POINTS", "1")
    path = config(model_ds, sweep_config={"param_values": [1.0, 2.0]})
    sweep(model_ds, path, "local", wait=True, wait_timeout=240)
    message = git(model_ds, "log", "-1", "--format=%B")
    table = parse_record(message).record["table"]
    # History rewritten by hand: the same record over an edited table.
    target = Path(model_ds.path) / table["path"]
    text = target.read_text().replace('"COMPLETED"', '"FAILED"')
    target.write_text(text)
    git(model_ds, "add", table["path"])
    git(model_ds, "commit", "--amend", "-q", "-m", message)
    results = api(model_ds, "slurm_reschedule", "HEAD", only_failed=True)
    assert [r["status"] for r in results] == ["impossible"], results
    assert "does not match the checksum" in results[0]["message"]
    assert table["path"] in results[0]["message"]
    assert json.loads(text)  # the edit kept it JSON: only the checksum tells
