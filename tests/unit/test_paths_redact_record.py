import json

import pytest

from datalad_slurmsweep.provenance.paths import (
    PathOutsideDatasetError,
    ancestors_and_self,
    overlaps,
    to_dataset_relative,
)
from datalad_slurmsweep.provenance.record import format_record, parse_record
from datalad_slurmsweep.redact import REDACTED, redact_environment, redact_tree
from tests.helpers import DATA


def test_path_spellings_normalise_to_one(tmp_path):
    root = tmp_path / "ds"
    spellings = ["./a/b", "a/b", "a/b/", str(root / "a" / "b"), "a/./c/../b"]
    assert {to_dataset_relative(p, root, root) for p in spellings} == {"a/b"}
    assert to_dataset_relative("../b", root, root / "a" / "x") == "a/b"
    with pytest.raises(PathOutsideDatasetError):
        to_dataset_relative("../../elsewhere", root, root / "a")


def test_overlap_is_prefix_at_directory_boundaries():
    assert overlaps("a/b", "a") and overlaps("a", "a/b/c") and overlaps("a", "a")
    assert not overlaps("a/b", "a/bc")
    assert ancestors_and_self("a/b") == ["a/b", "a", "."]


def test_secrets_are_redacted_by_name_and_by_url():
    env = {"API_TOKEN": "abc", "DB_PASSWORD": "pw", "AWS_SECRET_ACCESS_KEY": "k",
           "MY_WEBHOOK_URL": "https://x", "HOME": "/root", "PWD": "/w",
           "SLACK": "https://hooks.slack.com/services/T/B/X",
           "MIRROR": "https://user:pass@example.org/repo"}
    out = redact_environment(env)
    for name in ("API_TOKEN", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "MY_WEBHOOK_URL", "SLACK"):
        assert out[name] == REDACTED
    assert out["HOME"] == "/root" and out["PWD"] == "/w"
    assert "pass" not in out["MIRROR"] and out["MIRROR"].endswith("example.org/repo")
    assert "pw" not in json.dumps(redact_tree({"nested": {"password": "pw"}}))


def test_record_roundtrip_and_datalad_slurm_compat():
    rec = {"cmd": "sbatch job.sh", "slurm_job_id": 7, "state": "OUT_OF_MEMORY",
           "outputs": ["out"], "slurm_outputs": ["slurm-7.out"], "pwd": "."}
    msg = format_record(rec, ["my note"])
    assert msg.startswith("[DATALAD SLURM RUN] Slurm job 7: Out_Of_Memory\n")
    parsed = parse_record(msg)
    assert parsed.record == rec and parsed.message == "my note"
    assert not parsed.succeeded
    # A record exactly as datalad-slurm 0.2.x writes it (from its documentation).
    theirs = DATA / "datalad_slurm_record.txt"
    parsed = parse_record(theirs.read_text())
    assert parsed.succeeded and parsed.job_id == "10524535"
    assert parsed.argv == ["sbatch", "submit_silver.slurm"]
    assert parsed.declared_outputs == ["models/abrupt/silver"]
    assert parse_record("an ordinary commit") is None


@pytest.mark.parametrize("path", ["a", "a/b", "b", "b/c", "b/c/d", "b/cd", "x/y", "x/y/z/w",
                                  "q", ".", "ab/c"])
def test_under_any_agrees_with_ancestors(path):
    from datalad_slurmsweep.provenance.paths import ancestors_and_self, under_any
    roots = {"a", "b/c", "x/y/z"}
    assert under_any(path, roots) == any(a in roots for a in ancestors_and_self(path))
    assert under_any(path, {"."})
