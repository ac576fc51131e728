"""``slurm-reschedule --script``: the sbatch calls a replay would make, as a
bash script, instead of making them.

Every word is shell-quoted (``shlex``), each job is submitted from its
recorded directory (``cd`` relative to the dataset root, which the script
names once), and ``set -eu`` stops at the first refusal. A sweep whose
files changed since its commit gets the ``git checkout`` that would bring
them back first, so that the script submits what was recorded, never the
current configuration. Running the script submits untracked jobs:
``slurm-finish`` does not know them.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path, PurePosixPath

from ..errors import UsageError
from ..provenance.git import literal
from ..redact import redact_text
from .replay_sweep import changed, log_directories
from .reschedule import Replay


def _describe(item: Replay) -> str:
    spec = item.spec
    if spec.sweep:
        return (f"point {spec.sweep.point}, case {spec.sweep.case} of sweep "
                f"{spec.sweep.name or spec.sweep.root}")
    return f"writes {', '.join(spec.outputs[:3])}" + (" ..." if len(spec.outputs) > 3 else "")


def _dir(path: str | PurePosixPath) -> str:
    rel = str(path)
    return '"$DATASET"' if rel in (".", "") else f'"$DATASET"/{shlex.quote(rel)}'


def _restore_lines(root: Path, item: Replay, replays: list[Replay]) -> list[str]:
    paths = sorted({p for r in replays if r.run is item.run for p in r.restore or ()})
    if not changed(root, item.run.commit, paths):
        return []
    # The paths go on standard input: a large sweep's would not fit on a
    # command line. The quoted here-document delimiter keeps bash off them.
    return [f"# the sweep's files changed since {item.run.commit[:10]}: bring them back",
            "git -C \"$DATASET\" checkout --no-overlay "
            f"{shlex.quote(item.run.commit)} --pathspec-from-file=- <<'PATHS'",
            *literal(paths), "PATHS"]


def _check_replayable(item: Replay) -> None:
    """A plain sbatch line cannot do what submitting a container or --alt-dir
    job involves (a wrapper that exists only while submitting, inputs copied
    out of the dataset); a script that silently dropped them would run
    something else than the record says."""
    spec = item.spec
    what = ("--alt-dir " + spec.alt_dir if spec.alt_dir else
            f"--container {spec.container.name}" if spec.container and spec.sweep is None
            else None)
    if what:
        raise UsageError(f"--script cannot write commit {item.run.commit[:10]} as sbatch "
                         f"commands: its job ran with {what}, which a plain sbatch call "
                         "cannot reproduce; reschedule it without --script")


def render(root: Path, replays: list[Replay], invocation: list[str]) -> str:
    """The script text for ``replays`` in the dataset at ``root``."""
    lines = ["#!/bin/bash",
             f"# Written by: {redact_text(shlex.join(invocation))}",
             "# Nothing was submitted, tracked or committed. Jobs this script submits",
             "# are not tracked: datalad slurm-finish will not commit them.",
             "set -eu",
             f"DATASET={shlex.quote(str(root))}"]
    restored: set[str] = set()
    for item in replays:
        lines.append("")
        lines.append(f"# commit {item.run.commit}: {redact_text(_describe(item))}")
        if item.restore is not None and item.run.commit not in restored:
            restored.add(item.run.commit)
            lines += _restore_lines(root, item, replays)
        if item.spec.sweep:
            dirs = sorted({d.relative_to(root).as_posix()
                           for d in log_directories(root, item.spec)})
            lines.append("mkdir -p " + " ".join(_dir(d) for d in dirs))
        _check_replayable(item)
        lines.append(f"cd {_dir(item.spec.pwd)}")
        # The recorded call may hold {inputs} and the like: the script gets
        # them filled in, as a replay would submit them (sbatch knows none).
        lines.append(shlex.join(item.spec.argv_to_submit))
    return "\n".join(lines) + "\n"


def write_script(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` whole (renamed into place), executable."""
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"--script {target}: cannot write it ({exc.strerror})") from None
