"""Understanding an ``sbatch`` command line and a batch script's directives.

We never run the script ourselves; we only need to know what Slurm will do
with it: where the script is, whether it is an array (and which tasks), what
the job is called, where it runs, and which log files it writes.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SbatchArgumentError

# Long options that never take a separate argument (they are flags, or take
# an optional value only in the ``--opt=value`` form). Every other long
# option consumes the next word when given without ``=``.
_LONG_FLAGS = frozenset({
    "contiguous", "exclusive", "get-user-env", "help", "hold", "ignore-pbs",
    "no-kill", "no-requeue", "nokill", "overcommit", "oversubscribe",
    "parsable", "quiet", "reboot", "requeue", "spread-job", "test-only",
    "usage", "use-min-nodes", "verbose", "version", "wait", "immediate",
    "propagate", "export-file-none",
})
_SHORT_FLAGS = frozenset("hHIkOQsvVW")
_SHORT_WITH_ARG = frozenset("AabcDdeFGiJLMmNnopqStwx")
_SHORT_TO_LONG = {
    "a": "array", "D": "chdir", "e": "error", "J": "job-name", "o": "output",
    "t": "time", "p": "partition", "A": "account", "n": "ntasks",
    "N": "nodes", "c": "cpus-per-task", "d": "dependency", "q": "qos",
    "W": "wait", "H": "hold",
}

DEFAULT_OUTPUT = "slurm-%j.out"
DEFAULT_ARRAY_OUTPUT = "slurm-%A_%a.out"


@dataclass
class SbatchCall:
    """What we know about one sbatch invocation before submitting it."""

    options: dict[str, str | None] = field(default_factory=dict)
    script: str | None = None
    script_args: list[str] = field(default_factory=list)

    @property
    def wrap(self) -> str | None:
        return self.options.get("wrap")


def parse_sbatch_argv(argv: list[str]) -> SbatchCall:
    """Parse ``sbatch [OPTIONS] [SCRIPT [ARGS]]`` (without the word sbatch)."""
    call = SbatchCall()
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            i += 1
            break
        if word.startswith("--") and len(word) > 2:
            name, eq, value = word[2:].partition("=")
            if eq:
                call.options[name] = value
            elif name in _LONG_FLAGS:
                call.options[name] = None
            else:
                if i + 1 >= len(argv):
                    raise SbatchArgumentError(
                        f"sbatch option --{name} needs a value")
                call.options[name] = argv[i + 1]
                i += 1
            i += 1
            continue
        if word.startswith("-") and len(word) > 1:
            letter = word[1]
            long = _SHORT_TO_LONG.get(letter, letter)
            if letter in _SHORT_FLAGS:
                # Flags may be bundled (-vv); none of them matter to us.
                call.options[long] = None
            elif letter in _SHORT_WITH_ARG:
                if len(word) > 2:
                    call.options[long] = word[2:]
                else:
                    if i + 1 >= len(argv):
                        raise SbatchArgumentError(
                            f"sbatch option {word} needs a value")
                    call.options[long] = argv[i + 1]
                    i += 1
            else:
                raise SbatchArgumentError(f"unknown sbatch option {word}")
            i += 1
            continue
        break
    rest = argv[i:]
    if rest:
        call.script, call.script_args = rest[0], rest[1:]
    if call.script is None and call.wrap is None:
        raise SbatchArgumentError(
            "no batch script given: use 'sbatch [OPTIONS] SCRIPT [ARGS]' "
            "or 'sbatch --wrap=COMMAND'")
    return call


def script_directives(text: str) -> dict[str, str | None]:
    """The options of a script's ``#SBATCH`` lines.

    Slurm stops reading directives at the first line that is neither blank
    nor a comment, and so do we.
    """
    words: list[str] = []
    for line in text.splitlines()[1:] if text.startswith("#!") else text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        if stripped.startswith("#SBATCH"):
            words.extend(shlex.split(stripped[len("#SBATCH"):], comments=True))
    if not words:
        return {}
    # A script's directives are options only: reuse the command-line parser
    # with a placeholder script so it does not complain.
    return parse_sbatch_argv(words + ["placeholder"]).options


def effective_options(call: SbatchCall, script_text: str | None) -> dict[str, str | None]:
    """Options in force: the command line overrides the script."""
    merged = dict(script_directives(script_text)) if script_text else {}
    merged.update(call.options)
    return merged


_ARRAY_THROTTLE = re.compile(r"%(\d+)$")


def parse_array_spec(spec: str) -> list[int]:
    """Task ids of ``--array`` (``0-15:4,20,30-31%2``)."""
    body = _ARRAY_THROTTLE.sub("", spec.strip())
    tasks: list[int] = []
    try:
        for part in body.split(","):
            rng, _, step = part.partition(":")
            first, dash, last = rng.partition("-")
            start = int(first)
            stop = int(last) if dash else start
            stride = int(step) if step else 1
            if stop < start or stride < 1:
                raise ValueError(part)
            tasks.extend(range(start, stop + 1, stride))
    except ValueError:
        raise SbatchArgumentError(
            f"cannot understand --array={spec!r}: expected a list of "
            "task ids or ranges such as 0-9, 1,3,5 or 0-15:4%2") from None
    return sorted(set(tasks))


_PATTERN = re.compile(r"%(\d*)([%AajJxuNnst])")


def expand_log_pattern(pattern: str, *, job_id: str, array_job_id: str | None,
                       task_id: int | None, job_name: str, user: str,
                       node: str | None = None) -> str:
    """A log file name from an ``--output``/``--error`` pattern.

    ``job_id`` is the (raw) id of the job or of the array task, as ``%j``
    means for Slurm. A backslash anywhere disables expansion, as in Slurm.
    """
    if "\\" in pattern:
        return pattern.replace("\\", "")

    def substitute(match: re.Match) -> str:
        width, code = match.groups()
        if code == "%":
            return "%"
        value = {
            "A": array_job_id or job_id,
            "a": str(task_id) if task_id is not None else "4294967294",
            "j": job_id,
            "J": job_id,
            "x": job_name,
            "u": user,
            "N": node or "",
            "n": "0",
            "s": "batch",
            "t": "0",
        }[code]
        if width and value.isdigit():
            value = value.zfill(int(width))
        return value

    return _PATTERN.sub(substitute, pattern)


@dataclass
class LogSpec:
    """Where a job's logs go: patterns, relative to the job's directory."""

    output: str
    error: str | None
    workdir: str  # relative to the dataset root, POSIX, "." for the root
    job_name: str

    def patterns(self) -> list[str]:
        found = [self.output]
        if self.error and self.error != self.output:
            found.append(self.error)
        return found


def log_spec(options: dict[str, str | None], script: str | None, pwd: str) -> LogSpec:
    """The log patterns of a job submitted from ``pwd`` (dataset-relative)."""
    is_array = options.get("array") is not None
    output = options.get("output") or (
        DEFAULT_ARRAY_OUTPUT if is_array else DEFAULT_OUTPUT)
    error = options.get("error")
    chdir = options.get("chdir")
    workdir = pwd
    if chdir:
        if Path(chdir).is_absolute():
            raise SbatchArgumentError(
                f"--chdir={chdir} is absolute: give it relative to the "
                "submission directory so the record can be replayed elsewhere")
        workdir = str(Path(pwd, chdir).as_posix())
    name = options.get("job-name") or (Path(script).name if script else "wrap")
    return LogSpec(output=output, error=error, workdir=workdir, job_name=name)
