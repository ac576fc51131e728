"""Which declared paths a job really wrote, and which are missing.

Outputs may be globs, as with ``datalad run``: ``-o 'res/*.csv'`` is recorded
as the pattern and expanded at finish against what the job wrote. A path
that exists is taken literally even if its name holds glob characters (a
sweep's ``..._+25%[1]`` directory, say). A declared file or pattern that
matches nothing, or a directory left empty, is a missing output: it is
named in the result and in the record, never silently passed over.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

_MAGIC = re.compile(r"[*?[]")


def is_glob(path: str) -> bool:
    return bool(_MAGIC.search(path))


@dataclass
class Expanded:
    """A job's declared outputs against the work tree."""

    present: list[str] = field(default_factory=list)  # dataset-relative, expanded
    missing: list[str] = field(default_factory=list)  # declared paths or patterns

    @property
    def none_written(self) -> bool:
        return not self.present and bool(self.missing)


def _written(full: Path) -> bool:
    if full.is_symlink() or not full.is_dir():
        return True
    with os.scandir(full) as entries:
        return any(True for _ in entries)


def expand_pattern(ds_root: Path, pattern: str) -> list[str]:
    """Dataset-relative matches of a glob (``**`` spans directories), sorted;
    nothing inside a ``.git`` directory."""
    root = os.path.join(glob.escape(str(ds_root)), "")
    found = []
    for match in glob.glob(root + pattern, recursive=True):
        rel = Path(match).relative_to(ds_root).as_posix()
        if ".git" not in rel.split("/"):
            found.append(rel)
    return sorted(found)


def expand_outputs(ds_root: Path, outputs: list[str]) -> Expanded:
    result = Expanded()
    for out in outputs:
        full = ds_root / out
        if os.path.lexists(full):
            (result.present if _written(full) else result.missing).append(out)
            continue
        matches = expand_pattern(ds_root, out) if is_glob(out) else []
        if matches:
            result.present.extend(matches)
        else:
            result.missing.append(out)
    result.present = sorted(set(result.present))
    return result


def reserved(outputs: list[str], literal: bool = False) -> list[str]:
    """The paths to reserve against other open jobs: a glob reserves the
    directory before its first pattern component (which paths it will match
    is known only at finish). ``literal`` outputs (a sweep's) never glob."""
    if literal:
        return outputs
    found = []
    for path in outputs:
        fixed = []
        for part in path.split("/"):
            if is_glob(part):
                break
            fixed.append(part)
        found.append("/".join(fixed) or ".")
    return sorted(set(found))
