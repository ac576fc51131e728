import io
import json
import subprocess
from pathlib import Path

import pytest

from datalad_slurmsweep.errors import RecordError
from datalad_slurmsweep.provenance import tables
from datalad_slurmsweep.provenance.record import format_record, parse_record

RECORD = {"cmd": "datalad slurm-sweep s.yaml", "slurm_job_id": ["7"], "state": "COMPLETED",
          "points": [{"point": f"p{i}", "state": "COMPLETED", "outputs": [f"s/p{i}/out"],
                      "params": {"x": i, "name": "Δ\n"}} for i in range(3)],
          "outputs": ["s/p0/out", "s/p1/out", "s/p2/out"], "slurm_outputs": ["s/logs/x"],
          "missing_outputs": [], "sweep": {"root": "s"}}


def split_off(record: dict, path: str) -> tuple[dict, bytes]:
    """The record as a finish commits it, and its table's bytes."""
    buffer = io.BytesIO()
    writer = tables.TableWriter(buffer)
    for point in record["points"]:
        writer.add(point)
    return tables.referencing(record, path, writer.end(record)), buffer.getvalue()


def _repo(tmp_path: Path) -> Path:
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    git("init", "-q")
    return tmp_path


def _commit(repo: Path, record: dict, table: bytes | None, path: str) -> str:
    if table is not None:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(table)
        subprocess.run(["git", "-C", str(repo), "add", path], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@x",
                    "commit", "-q", "--allow-empty", "-m", format_record(record)], check=True)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_split_off_and_inflate_give_back_the_same_record(tmp_path):
    repo = _repo(tmp_path)
    slim, content = split_off(dict(RECORD), "s/.records/a.json")
    assert not set(tables.TABLE_KEYS) & set(slim)
    assert slim["table"]["points"] == 3 and slim["table"]["outputs"] == 3
    assert slim["table"]["inputs"] == 0
    assert json.loads(content)["points"] == RECORD["points"]
    sha = _commit(repo, slim, content, "s/.records/a.json")
    parsed = parse_record(subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%B"],
                                         capture_output=True, text=True).stdout)
    ((_, back),) = tables.inflate(repo, [(sha, parsed)])
    assert {k: back.record[k] for k in RECORD} == RECORD


def test_a_missing_or_altered_table_is_an_error_or_skipped(tmp_path):
    repo = _repo(tmp_path)
    slim, content = split_off(dict(RECORD), "s/.records/a.json")
    missing = _commit(repo, slim, None, "s/.records/a.json")
    altered = _commit(repo, slim, content.replace(b"p1", b"p9"), "s/.records/a.json")
    inline = _commit(repo, dict(RECORD), None, "")
    found = [(sha, parse_record(format_record(r))) for sha, r in
             ((missing, slim), (altered, slim), (inline, RECORD))]
    with pytest.raises(RecordError, match=f"commit {missing[:10]}.*not in the commit"):
        tables.inflate(repo, found[:1])
    with pytest.raises(RecordError, match="does not match the checksum"):
        tables.inflate(repo, found[1:2])
    kept = tables.inflate(repo, found, skip_damaged=True)
    assert [sha for sha, _ in kept] == [inline]


def test_leftover_tables_of_a_killed_finish_are_removed_committed_ones_kept(tmp_path):
    repo = _repo(tmp_path)
    _commit(repo, dict(RECORD), b"{}", "s/.records/kept.json")
    for name in ("left.json", "left.json.tmp"):
        (repo / "s/.records" / name).write_text("{}")
    scratch = tables.scratch_path(repo, repo / "s/.records/new.json")
    assert scratch.parent == repo / ".git/slurmsweep"
    scratch.write_text("{")
    tables.remove_leftovers(repo, "s")
    assert sorted(p.name for p in (repo / "s/.records").iterdir()) == ["kept.json"]
    assert not scratch.exists()
