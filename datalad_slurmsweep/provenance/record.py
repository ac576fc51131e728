"""The ``[DATALAD SLURM RUN]`` run record: writing and reading it.

The format is datalad-slurm's, so both tools read each other's histories:
a subject line, free-form messages, then a JSON block between the two marker
lines. We write every key datalad-slurm writes and add ours (see
docs/design.rst for the full list).
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from ..errors import RecordError
from ..redact import redact_text

SUBJECT_TAG = "[DATALAD SLURM RUN]"
BEGIN = "=== Do not change lines below ==="
END = "^^^ Do not change lines above ^^^"
RECORD_VERSION = 3  # 2: placeholders in sbatch_argv, missing_outputs, commit_id; 3: table

_RECORD = re.compile(
    r"^\[DATALAD SLURM RUN\] (?P<subject>[^\n]*)\n(?P<body>.*?)(?<=\n)"
    + re.escape(BEGIN) + r"\n(?P<json>.*)\n" + re.escape(END),
    re.DOTALL)
_SUBJECT = re.compile(r"Slurm job (?P<id>\S+): (?P<state>.+)$")


def state_word(state: str) -> str:
    """``COMPLETED`` -> ``Completed``, as datalad-slurm writes it."""
    return state.replace("_", " ").title().replace(" ", "_")


def format_record(record: dict[str, Any], messages: list[str] | None = None) -> str:
    subject = f"{SUBJECT_TAG} Slurm job {record['slurm_job_id']}: {state_word(record['state'])}"
    parts = [subject, ""]
    for msg in messages or []:
        parts.extend([_defuse(redact_text(msg.strip())), ""])
    parts.append(BEGIN)
    parts.append(json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False))
    parts.append(END)
    return "\n".join(parts) + "\n"


def _defuse(message: str) -> str:
    """A user's message may not hold our marker lines: the record after it
    would no longer parse. Such a line gets a leading ``> ``."""
    return "\n".join(f"> {line}" if line.strip() in (BEGIN, END) or BEGIN in line
                     or END in line else line for line in message.split("\n"))


@dataclass
class ParsedRecord:
    """A run record read back from a commit, ours or datalad-slurm's."""

    record: dict[str, Any]
    subject: str
    message: str

    @property
    def job_id(self) -> str:
        return str(self.record.get("slurm_job_id"))

    @property
    def state(self) -> str:
        if "state" in self.record:
            return str(self.record["state"]).upper()
        match = _SUBJECT.search(self.subject)
        return match.group("state").strip().upper().replace(" ", "_") if match else "COMPLETED"

    @property
    def succeeded(self) -> bool:
        return self.state == "COMPLETED"

    @property
    def argv(self) -> list[str]:
        """The sbatch command line. datalad-slurm stores only a string."""
        if isinstance(self.record.get("sbatch_argv"), list):
            return list(self.record["sbatch_argv"])
        cmd = self.record.get("cmd")
        if isinstance(cmd, list):
            return list(cmd)
        return shlex.split(cmd or "")

    @property
    def declared_outputs(self) -> list[str]:
        """Outputs the user declared, without the logs datalad-slurm adds."""
        if "declared_outputs" in self.record:
            return list(self.record["declared_outputs"])
        logs = set(self.record.get("slurm_outputs") or [])
        return [p for p in self.record.get("outputs") or [] if p not in logs]


def parse_record(message: str) -> ParsedRecord | None:
    """The run record in ``message``, or None if it has none."""
    match = _RECORD.match(message)
    if not match:
        return None
    try:
        record = json.loads(match.group("json"))
    except json.JSONDecodeError as exc:
        raise RecordError(f"the run record's JSON block is invalid: {exc}") from exc
    if not isinstance(record, dict) or "cmd" not in record:
        raise RecordError("the run record's JSON block has no 'cmd'")
    return ParsedRecord(record=record, subject=match.group("subject"),
                        message=match.group("body").strip())
