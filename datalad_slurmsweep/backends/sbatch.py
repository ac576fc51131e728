"""Understanding an ``sbatch`` command line and a batch script's directives.

We never run the script ourselves; we only need to know what Slurm will do
with it: where the script is, whether it is an array (and which tasks), what
the job is called, where it runs, and which log files it writes. Every failure
is an :class:`SbatchArgumentError`, whatever the input.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SbatchArgumentError
from . import sbatch_options as table
from .log_patterns import expand_log_pattern, pattern_codes  # noqa: F401 (re-exported)

DEFAULT_OUTPUT = "slurm-%j.out"
DEFAULT_ARRAY_OUTPUT = "slurm-%A_%a.out"

# Slurm's largest possible MaxArraySize: task ids run from 0 to 4000000.
ABSOLUTE_MAX_ARRAY_SIZE = 4_000_001

_HETJOB = ("heterogeneous jobs (components separated by ':' on the command line "
           "or by '#SBATCH hetjob') are not supported")

Where = Callable[[int], str]  # index of a word -> "file: line N: " or ""


@dataclass
class SbatchCall:
    """What we know about one sbatch invocation before submitting it."""

    options: dict[str, str | None] = field(default_factory=dict)
    script: str | None = None
    script_args: list[str] = field(default_factory=list)

    @property
    def wrap(self) -> str | None:
        return self.options.get("wrap")


def _resolve_long(name: str, where: str) -> table.OptionSpec:
    """The option ``--name`` means: an exact name, else an unambiguous prefix (getopt_long)."""
    if name in table.LONG:
        return table.LONG[name]
    matches = {spec.name: spec for long, spec in table.LONG.items() if long.startswith(name)}
    if len(matches) == 1:
        return next(iter(matches.values()))
    if matches:
        shown = _show(", ".join(f"--{n}" for n in sorted(matches)))
        raise SbatchArgumentError(f"{where}ambiguous sbatch option --{_show(name)}: could be {shown}")
    raise _unknown(f"--{_show(name)}", name in table.OTHER_COMMANDS_LONG, where)


def _unknown(option: str, elsewhere: bool, where: str) -> SbatchArgumentError:
    # srun options are the usual mistake: say so.
    hint = " (an srun/salloc option)" if elsewhere else ""
    return SbatchArgumentError(f"{where}unknown sbatch option {option}{hint}")


def _value(words: list[str], i: int, shown: str, where: Where) -> str:
    """The word after ``words[i]``, the value of a required argument."""
    if i + 1 >= len(words):
        raise SbatchArgumentError(f"{where(i)}sbatch option {shown} needs a value")
    return words[i + 1]


def _take_long(words: list[str], i: int, options: dict, where: Where) -> int:
    """Parse the long option at ``words[i]``; the index of the next word."""
    name, eq, value = words[i][2:].partition("=")
    spec = _resolve_long(name, where(i))
    if eq:
        if spec.arity == table.NONE:
            raise SbatchArgumentError(
                f"{where(i)}sbatch option --{spec.name} takes no value (got {_show(words[i])})")
        options[spec.name] = value
        return i + 1
    if spec.arity != table.REQUIRED:
        # An optional value is only ever attached with '=': the next word is
        # the script or another option (``--nice job.sh``).
        options[spec.name] = None
        return i + 1
    options[spec.name] = _value(words, i, f"--{spec.name}", where)
    return i + 2


def _take_short(words: list[str], i: int, options: dict, where: Where) -> int:
    """Parse the bundle of short options at ``words[i]`` (``-vv``, ``-o%j.out``,
    ``-vJ name``): the first letter that takes a value takes the rest of the
    word, or the next word if nothing is left and the value is required."""
    word = words[i]
    for pos in range(1, len(word)):
        letter, rest = word[pos], word[pos + 1:]
        spec = table.SHORT.get(letter)
        if spec is None:
            within = f" (in {_show(word)})" if len(word) > 2 else ""
            raise _unknown(f"-{letter}{within}", letter in table.OTHER_COMMANDS_SHORT, where(i))
        if spec.arity == table.NONE:
            options[spec.name] = None
            continue
        if rest or spec.arity == table.OPTIONAL:
            options[spec.name] = rest or None
            return i + 1
        options[spec.name] = _value(words, i, f"-{letter} (--{spec.name})", where)
        return i + 2
    return i + 1


def _parse_options(words: list[str], where: Where) -> tuple[dict[str, str | None], int]:
    """Options keyed by long name, and the index of the first word that is not
    one. Like sbatch's getopt_long ('+' mode): options stop at the first
    non-option word or after '--'; a lone '-' is not an option."""
    options: dict[str, str | None] = {}
    i = 0
    while i < len(words) and words[i].startswith("-") and words[i] != "-":
        if words[i] == "--":
            return options, i + 1
        take = _take_long if words[i].startswith("--") else _take_short
        i = take(words, i, options, where)
    return options, i


def parse_sbatch_argv(argv: list[str]) -> SbatchCall:
    """Parse ``sbatch [OPTIONS] [SCRIPT [ARGS]]`` (without the word sbatch)."""
    words = list(argv)
    if ":" in words:  # sbatch drops every lone ':' before parsing, wherever it is
        raise SbatchArgumentError(_HETJOB)
    options, used = _parse_options(words, lambda _: "")
    call = SbatchCall(options=options)
    if used < len(words):
        call.script, call.script_args = words[used], words[used + 1:]
    if call.wrap is not None and call.script is not None:
        raise SbatchArgumentError("Script arguments not permitted with --wrap option")
    if call.script is None and call.wrap is None:
        raise SbatchArgumentError(
            "no batch script given: use 'sbatch [OPTIONS] SCRIPT [ARGS]' "
            "or 'sbatch --wrap=COMMAND'")
    return call


# -- #SBATCH lines --------------------------------------------------------------

_SPACE = " \t\n\v\f\r"  # C's isspace(), which Slurm uses; not str.isspace()
_MAGIC = ("#SBATCH", "#SLURM")  # #SLURM is deprecated, but sbatch still reads it
_SEPARATOR = re.compile(r"(hetjob|packjob)(?=[ \t\n\v\f\r]|$)", re.IGNORECASE | re.ASCII)


def _place(source: str | None, lineno: int) -> str:
    return f"{source or 'batch script'}: line {lineno}: "


def _directive_lines(text: str):
    """(line number, text after the magic word) of each directive. As in Slurm, the
    magic word starts the line, and a line neither blank nor a comment ends them."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        magic = next((m for m in _MAGIC if line.startswith(m)), None)
        if magic:
            yield lineno, line[len(magic):]
        elif line.strip(_SPACE) and not line.lstrip(_SPACE).startswith("#"):
            return


def _one_argument(body: str, pos: int, where: str) -> tuple[str, int, bool]:
    """One word of a directive, as Slurm's get_argument reads it: ' and " group
    alike, a backslash makes the next character literal (inside quotes too), and
    an unquoted # ends the line. Not shell quoting: shlex splits differently."""
    chars: list[str] = []
    quote, quoted = "", False
    while pos < len(body):
        char = body[pos]
        if char == "\\":
            following = body[pos + 1:pos + 2]
            if following and (quote or following == " " or following not in _SPACE):
                chars.append(following)
                pos += 2
            else:
                pos += 1  # Slurm drops it; a tab or the line's end follows
        elif quote:
            if char == quote:
                quote = ""
            else:
                chars.append(char)
            pos += 1
        elif char in _SPACE or char == "#":
            break
        elif char in "\"'":
            quote, quoted = char, True
            pos += 1
        else:
            chars.append(char)
            pos += 1
    if quote:
        raise SbatchArgumentError(f"{where}unmatched {quote} in #SBATCH directive")
    return "".join(chars), pos, quoted


def _line_words(body: str, where: str) -> list[str]:
    """The words of one directive line (the text after ``#SBATCH``)."""
    words: list[str] = []
    pos = 0
    while True:
        while pos < len(body) and body[pos] in _SPACE:
            pos += 1
        if pos >= len(body) or body[pos] == "#":
            return words
        if _SEPARATOR.match(body, pos):
            raise SbatchArgumentError(where + _HETJOB)
        if body[pos] == ":":
            raise SbatchArgumentError(f"{where}unexpected ':' in #SBATCH directive")
        word, pos, quoted = _one_argument(body, pos, where)
        if word:
            words.append(word)
        elif quoted:  # Slurm would silently drop it and the rest of the line
            raise SbatchArgumentError(f"{where}empty quoted word in #SBATCH directive "
                                      "(sbatch would ignore the rest of the line)")
        else:
            return words  # a backslash before a tab: Slurm stops reading here


def script_directives(text: str, source: str | None = None) -> dict[str, str | None]:
    """The options of a script's ``#SBATCH`` lines.

    Slurm stops reading directives at the first line that is neither blank
    nor a comment, and so do we. All directives form one argument list, so an
    option's value may be on the next ``#SBATCH`` line, as in Slurm.
    ``source`` (the script's path) is named in error messages.
    """
    words: list[str] = []
    places: list[str] = []  # where each word is, for messages
    for lineno, body in _directive_lines(text):
        found = _line_words(body, _place(source, lineno))
        words += found
        places += [_place(source, lineno)] * len(found)
    options, used = _parse_options(words, lambda i: places[i])
    if used < len(words):
        raise SbatchArgumentError(
            f"{places[used]}invalid #SBATCH directive {_show(words[used])}: "
            "only sbatch options may follow #SBATCH")
    # sbatch reads these on the command line only and ignores them here.
    return {k: v for k, v in options.items() if k not in table.COMMAND_LINE_ONLY}


def effective_options(call: SbatchCall, script_text: str | None,
                      source: str | None = None) -> dict[str, str | None]:
    """Options in force: the command line overrides the script."""
    merged = dict(script_directives(script_text, source)) if script_text else {}
    merged.update(call.options)
    return merged


# -- --array ----------------------------------------------------------------------

_ARRAY_PART = re.compile(r"([0-9]+)(?:-([0-9]+)(?::([0-9]+))?)?")
_ARRAY_HELP = "expected task ids or ranges such as 0-9, 1,3,5 or 0-15:4%2"


def _array_parts(spec: str) -> list[tuple[int, int, int]]:
    """(first, last, step) of each comma-separated part, checked but not expanded."""
    body, percent, throttle = spec.strip().partition("%")

    def bad(problem: str) -> SbatchArgumentError:
        return SbatchArgumentError(
            f"cannot understand --array={_show(spec)}: {problem}; {_ARRAY_HELP}")

    if percent and not (throttle.isascii() and throttle.isdigit()):
        raise bad("the throttle after % must be a number")
    if percent and not throttle.strip("0"):
        raise bad("a throttle of %0 would never run a task")
    parts = []
    for part in body.split(","):
        if not part:
            raise bad("an empty part")
        if part.startswith("-"):
            raise bad(f"{_show(part)} is negative")
        match = _ARRAY_PART.fullmatch(part)
        if not match:
            raise bad(f"{_show(part)} is not a task id or range")
        if any(len(n.lstrip("0")) > 12 for n in match.groups() if n):
            # Far beyond any MaxArraySize; and int() refuses thousands of digits.
            raise bad(f"{_show(part)} has a number far too large")
        first, last, step = (int(n.lstrip("0") or "0") if n else None for n in match.groups())
        last = first if last is None else last
        step = 1 if step is None else step
        if last < first:
            raise bad(f"{_show(part)} ends before it starts")
        if step == 0:
            raise bad(f"{_show(part)} has a step of 0")
        parts.append((first, last, step))
    return parts


def parse_array_spec(spec: str, limit: int | None = None) -> list[int]:
    """Task ids of ``--array`` (``0-15:4,20,30-31%2``), sorted and distinct.

    ``limit`` is the cluster's MaxArraySize: every task id must be below it.
    Without one, Slurm's largest possible MaxArraySize applies. Both are
    checked before anything is expanded.
    """
    parts = _array_parts(spec)
    ceiling = ABSOLUTE_MAX_ARRAY_SIZE if limit is None else min(limit, ABSOLUTE_MAX_ARRAY_SIZE)
    top = max(first + (last - first) // step * step for first, last, step in parts)
    biggest_step = max(step for _, _, step in parts)
    # Distinct ids below the ceiling are at most `ceiling` tasks, so checking
    # the largest id bounds the task count as well.
    if top >= ceiling or biggest_step >= ceiling:
        shown = f"task id {top}" if top >= ceiling else f"step {biggest_step}"
        what = "Slurm's largest possible" if limit is None else "the cluster's"
        raise SbatchArgumentError(
            f"--array={_show(spec)} asks for {shown}, but task ids and steps must be "
            f"below {ceiling} ({what} MaxArraySize), so at most {ceiling} tasks")
    # A bitmap, as Slurm keeps: overlapping parts cost no memory.
    bits = bytearray(top + 1)
    for first, last, step in set(parts):
        count = (last - first) // step + 1
        bits[first:first + (count - 1) * step + 1:step] = b"\x01" * count
    return list(itertools.compress(range(top + 1), bits))


# -- log files --------------------------------------------------------------------

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


def _show(text: str) -> str:
    """``text`` for a message: whole if short, so huge input makes no huge error."""
    return text if len(text) <= 80 else text[:77] + "..."
