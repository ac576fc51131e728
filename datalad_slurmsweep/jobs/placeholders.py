"""Input globs and the placeholders of ``datalad run`` in the sbatch call.

``{inputs}``, ``{outputs}``, ``{pwd}``, ``{dspath}`` and the dataset's
``datalad.run.substitutions.*`` are filled in by DataLad's own
``format_command``; ``{{`` and ``}}`` are literal braces. The record keeps
the call as given, so a replay expands the placeholders anew, as
``datalad rerun`` does.

An argument that is exactly ``{inputs}`` or ``{outputs}`` becomes one
argument per path (``sbatch job.sh {inputs}`` passes each input to the
script). In any other argument (``--wrap='wc -l {inputs}'``, say) the paths
are written shell-quoted into that one string, as in ``datalad run``'s
command string.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

from ..errors import ScheduleError
from ..provenance.datasets import Layout
from .outputs import expand_pattern, is_glob, reserved

_SPLIT = ("{inputs}", "{outputs}")
EXPAND_CHOICES = ("inputs", "outputs", "both")


def expand_inputs(ds_root: Path, layout: Layout, patterns: list[str]) -> list[str]:
    """The existing paths ``patterns`` name, dataset-relative. A path in a
    subdataset that is not installed yet is kept as given (the schedule
    installs it and looks again); anything else that matches nothing is an
    error naming it."""
    found: list[str] = []
    for pattern in patterns:
        if os.path.lexists(ds_root / pattern):
            found.append(pattern)
            continue
        matches = expand_pattern(ds_root, pattern) if is_glob(pattern) else []
        if matches:
            found.extend(matches)
        elif layout.absent_holder(reserved([pattern])[0]):
            found.append(pattern)
        elif is_glob(pattern):
            raise ScheduleError(f"input pattern {pattern!r} matches no file in the dataset")
        else:
            raise ScheduleError(f"input {ds_root / pattern} does not exist")
    return sorted(set(found))


def has_placeholders(argv: list[str]) -> bool:
    return any("{" in word or "}" in word for word in argv)


def fill(ds_root: Path, argv: list[str], *, pwd: str, inputs: list[str],
         outputs: list[str]) -> list[str]:
    """``argv`` with its placeholders filled in; paths are dataset-relative
    and appear relative to ``pwd``, as ``datalad run`` writes them."""
    if not has_placeholders(argv):
        return list(argv)
    # Imported here: datalad.core.local.run costs ~40 ms at every command's
    # start, and only a call holding braces needs it.
    from datalad.core.local.run import format_command
    from datalad.distribution.dataset import Dataset

    ds = Dataset(str(ds_root))
    workdir = os.path.normpath(ds_root / pwd)
    values = dict(pwd=workdir, dspath=str(ds_root),
                  inputs=[os.path.relpath(ds_root / p, workdir) for p in inputs],
                  outputs=[os.path.relpath(ds_root / p, workdir) for p in outputs])
    filled: list[str] = []
    for word in argv:
        try:
            text = format_command(ds, word, **{k: list(v) if isinstance(v, list) else v
                                               for k, v in values.items()})
        except KeyError as exc:
            raise ScheduleError(
                f"sbatch argument {word!r}: {{{exc.args[0]}}} is not a placeholder (known: "
                "{inputs}, {outputs}, {pwd}, {dspath} and datalad.run.substitutions.*); "
                "write {{ and }} for literal braces, e.g. ${{HOME}}") from None
        except (IndexError, ValueError) as exc:
            raise ScheduleError(f"sbatch argument {word!r}: {exc}; write {{{{ and }}}} for "
                                "literal braces") from None
        filled.extend(shlex.split(text) if word in _SPLIT else [text])
    return filled
