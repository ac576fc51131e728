"""Running a job's payload inside a container registered with datalad-container.

The container is found with datalad-container's own lookup
(``find_container``), so names of containers in subdatasets
(``sub/name``) work as in ``datalad containers-run``. Its ``cmdexec`` is
formatted with the placeholders ``containers-run`` knows (``{img}``,
``{cmd}``, ``{img_dspath}``, ``{img_dirpath}``, ``{python}``).

sbatch must still read the job's ``#SBATCH`` directives, and the job must
keep its name (``%x`` in log names). So what is submitted is a generated
wrapper script named like the original, in a temporary directory: its
header is the original's directive lines, copied verbatim (Slurm reads them
exactly as it would have in the original), and its body runs the container's
``cmdexec`` with the original script, through the interpreter of its ``#!``
line, as ``{cmd}``. The script's arguments reach it as ``"$@"``, so they are
never written into a file. For ``sbatch --wrap=COMMAND`` the wrapper is
named ``wrap``, as sbatch names such a job, and ``{cmd}`` is
``/bin/sh -c COMMAND``, as sbatch would run it. sbatch copies the script at submission; the
wrapper is removed once sbatch has returned.
"""
from __future__ import annotations

import os
import shlex
import string
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.sbatch import parse_sbatch_argv
from ..errors import SbatchArgumentError, ScheduleError

INSTALL_HINT = ("install datalad-container to run jobs in containers: "
                "pip install 'datalad-slurmsweep[containers]' (or pip install datalad-container)")
PLACEHOLDERS = ("img", "cmd", "img_dspath", "img_dirpath", "python")
_MAGIC = ("#SBATCH", "#SLURM")


@dataclass
class ContainerRun:
    """A registered container, as a job uses it. Paths are dataset-relative."""

    name: str
    image: str
    dspath: str = "."  # the (sub)dataset that registers it
    cmdexec: str | None = None
    extra_inputs: list[str] = field(default_factory=list)

    def inputs(self) -> list[str]:
        """What the job reads of the container: its image and extra inputs."""
        return [self.image] + [p for p in self.extra_inputs if p != self.image]


def _relative(path: str, ds_root: Path) -> str:
    return Path(os.path.relpath(path, ds_root)).as_posix()


def find(ds_root: Path, name: str) -> ContainerRun:
    """The container ``name`` of the dataset at ``ds_root``; a clear error when
    datalad-container is missing or does not know the name."""
    try:
        from datalad.distribution.dataset import Dataset
        from datalad_container.find_container import find_container
    except ImportError:
        raise ScheduleError(f"--container {name}: {INSTALL_HINT}") from None
    try:
        found = find_container(Dataset(str(ds_root)), name)
    except (ValueError, RuntimeError) as exc:
        raise ScheduleError(f"--container {name}: {exc} (datalad containers-add "
                            "registers one, datalad containers-list shows them)") from None
    image = _relative(found["path"], ds_root)
    dspath = _relative(found.get("parentds") or str(ds_root), ds_root)
    if image.startswith("../") or dspath.startswith("../"):
        raise ScheduleError(f"--container {name}: its image {found['path']} lies outside "
                            "the dataset, so no record could name it")
    extra = found.get("extra-input") or []
    extra = [extra] if isinstance(extra, str) else list(extra)
    dirpath = os.path.dirname(image) or "."
    extra = sorted({Path(os.path.normpath(e.format(img_dspath=dspath, img_dirpath=dirpath)))
                    .as_posix() for e in extra})
    container = ContainerRun(name=name, image=image, dspath=dspath,
                             cmdexec=found.get("cmdexec"), extra_inputs=extra)
    check_cmdexec(container)
    return container


def check_cmdexec(container: ContainerRun) -> None:
    if container.cmdexec is None:
        return
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(container.cmdexec) if f]
    except ValueError as exc:
        raise ScheduleError(f"container {container.name}: cannot read its cmdexec "
                            f"{container.cmdexec!r}: {exc}") from None
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        raise ScheduleError(
            f"container {container.name}: its cmdexec {container.cmdexec!r} uses the unknown "
            f"placeholder(s) {', '.join(unknown)}; known are {', '.join(PLACEHOLDERS)} "
            f"(git config datalad.containers.{container.name}.cmdexec)")


def check_script(script_text: str | None, source: str) -> None:
    """A containerised script needs an interpreter line (None: ``--wrap``)."""
    if script_text is not None and not script_text.startswith("#!"):
        raise ScheduleError(f"batch script {source} has no '#!' line, which sbatch requires "
                            "and which says how to run it inside the container")


def command(container: ContainerRun, place: Callable[[str], str], payload: str) -> str:
    """The container's cmdexec around ``payload`` (shell code). ``place``
    turns a dataset-relative path into a shell word: an absolute quoted path
    for slurm-schedule, one below ``"$SWEEP_ROOT"`` in a sweep's scripts."""
    image = place(container.image)
    if container.cmdexec is None:
        return f"{image} {payload}"  # as datalad-container: prepend the image
    values = dict(img=image, cmd=payload, img_dspath=place(container.dspath),
                  img_dirpath=place(os.path.dirname(container.image) or "."),
                  python=shlex.quote(sys.executable))
    return container.cmdexec.format(**values)


def absolute(root: Path) -> Callable[[str], str]:
    return lambda rel: shlex.quote(os.path.normpath(root / rel))


def _interpreter(script_text: str) -> list[str]:
    """The ``#!`` line as the kernel reads it: a program and at most one argument."""
    line = script_text.split("\n", 1)[0][2:].strip()
    program, _, argument = line.partition(" ")
    return [program] + ([argument.strip()] if argument.strip() else [])


def _directives(script_text: str) -> list[str]:
    """The script's ``#SBATCH`` lines, exactly those Slurm reads."""
    found = []
    for line in script_text.split("\n")[1:]:
        if line.startswith(_MAGIC):
            found.append(line)
        elif line.strip() and not line.lstrip().startswith("#"):
            break  # Slurm reads no directive after the first command
    return found


def _wrapper(container: ContainerRun, root: Path, directives: list[str], payload: str,
             what: str) -> str:
    return "\n".join(["#!/bin/bash", *directives,
                      f"# Generated by datalad-slurmsweep: runs {what} in the container "
                      f"{container.name!r} (datalad-container's cmdexec).",
                      f"export DATALAD_CONTAINER_NAME={shlex.quote(container.name)}",
                      command(container, absolute(root), payload), ""])


def wrapper_text(container: ContainerRun, root: Path, script_text: str,
                 script_path: Path) -> str:
    """The batch script submitted in place of the original (see the module doc)."""
    payload = shlex.join(_interpreter(script_text) + [str(script_path)]) + ' "$@"'
    return _wrapper(container, root, _directives(script_text), payload, script_path.name)


def without_wrap(words: list[str]) -> list[str]:
    """The sbatch options ``words`` without their ``--wrap`` (however spelt:
    ``--wrap=C``, ``--wrap C``, an abbreviation): the words whose removal
    leaves every other option as it was."""
    options = {k: v for k, v in parse_sbatch_argv(words).options.items() if k != "wrap"}
    for index in range(len(words)):
        for count in (1, 2):
            rest = words[:index] + words[index + count:]
            try:
                again = parse_sbatch_argv(rest + ["SCRIPT"])
            except SbatchArgumentError:
                continue
            if again.options == options and not again.script_args:
                return rest
    raise ScheduleError(f"cannot tell the --wrap option apart in {shlex.join(words)}; "
                        "give it once, as --wrap=COMMAND")


@contextmanager
def wrapped_argv(sbatch_argv: list[str], container: ContainerRun, root: Path,
                 script_dir: Path) -> Iterator[list[str]]:
    """``sbatch_argv`` with its script (or ``--wrap``) replaced by the wrapper,
    for as long as the context lasts. ``root`` holds the image and
    ``script_dir`` the script (the dataset and the job's directory, or their
    mirror below --alt-dir)."""
    call = parse_sbatch_argv(list(sbatch_argv[1:]))
    with tempfile.TemporaryDirectory(prefix="dlss-container-") as tmp:
        # Named like the original (sbatch calls a --wrap job "wrap"), so that
        # Slurm names the job as before.
        wrapper = Path(tmp) / (Path(call.script).name if call.script else "wrap")
        if call.script is None:
            payload = shlex.join(["/bin/sh", "-c", call.wrap])  # as sbatch --wrap runs it
            wrapper.write_text(_wrapper(container, root, [], payload, "the --wrap command"))
            argv = sbatch_argv[:1] + without_wrap(list(sbatch_argv[1:])) + [str(wrapper)]
        else:
            index = len(sbatch_argv) - len(call.script_args) - 1
            script_path = script_dir / call.script
            text = script_path.read_text(errors="replace")
            wrapper.write_text(wrapper_text(container, root, text, script_path))
            argv = sbatch_argv[:index] + [str(wrapper)] + sbatch_argv[index + 1:]
        wrapper.chmod(0o700)
        yield argv
