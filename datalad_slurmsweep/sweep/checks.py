"""The checks behind ``sweep.config.load_config`` that go beyond types.

How the YAML is written (duplicate keys, keys that are not strings), text
that ends up in a batch script line or a path, files that must stay inside
the component directory, values JSON can hold, command templates, and the
``slurm`` and ``module_commands`` sections. (Checks of the points, such as
two points with identical parameters, are in ``sweep/points.py``.) Each
check returns or collects problems that name the key instead of raising, so
that every mistake is reported at once. Nothing here touches the dataset.
"""
from __future__ import annotations

import difflib
import math
import posixpath
import re
import string
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

# What a command template may use besides every parameter whose name is an
# identifier; sweep/scripts.py: command_fields provides exactly these (a
# unit test keeps the two in step).
COMMAND_FIELDS = frozenset({"config_file", "case", "point", "output_dir",
                            "component_path", "use_coreneuron"})
# Beyond this, expanding the points and writing a directory per point takes
# hours and fills the disk; a typo (iterations: 1000000) is likelier.
MAX_POINTS = 1_000_000
# Aliases can share one subtree many times over; the configuration is
# copied and written out as a tree, so it is counted expanded.
MAX_NODES = 1_000_000
_STR, _MERGE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"
# array_parallelism (%N), n_workers and points_in_parallel (sweep/chunking.py): ours
SLURM_KNOWN = {"time", "partition", "nodes", "ntasks", "mem", "account",
               "array_parallelism", "n_workers", "points_in_parallel"}
_SLURM_OPTION = re.compile(r"[a-z][a-z0-9_-]*")
_TIME = re.compile(r"(\d+-)?\d+(:\d+){0,2}|UNLIMITED|INFINITE")
# Options every sweep script sets itself: one given again would fight ours.
_SLURM_OWN = {"array", "output", "job-name", "dependency", "wrap"}


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), sorted(map(str, choices)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


class Checker:
    """Collects problems; every helper names the key it checks."""

    def __init__(self):
        self.problems: list[str] = []

    def add(self, msg: str | None) -> None:
        if msg:
            self.problems.append(msg)

    def unknown(self, mapping: dict, allowed: set, where: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.add(f"unknown key '{where}{key}'{suggest(key, allowed)}")

    def mapping(self, value, where: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(f"'{where}' must be a mapping, not {type(value).__name__}")
            return {}
        return value

    def typed(self, mapping: dict, key: str, types, where: str, required: bool = False,
              default: Any = None) -> Any:
        if key not in mapping or mapping[key] is None:
            if required:
                self.add(f"'{where}{key}' is required")
            return default
        value = mapping[key]
        # YAML's booleans are ints to Python; never accept one for a number.
        if (isinstance(value, bool) and bool not in _as_tuple(types)) or \
                not isinstance(value, types):
            names = " or ".join(t.__name__ for t in _as_tuple(types))
            self.add(f"'{where}{key}' must be {names}, not {value!r}")
            return default
        return value

    def text(self, mapping: dict, key: str, where: str, required: bool = False,
             default: Any = None, allow: str = "") -> Any:
        """A string that goes into a script line or a path: one line, no
        control characters (but those in ``allow``)."""
        value = self.typed(mapping, key, str, where, required=required, default=default)
        if isinstance(value, str) and key in mapping:
            self.add(control_problem(value, where + key, allow))
        return value


# -- the YAML document --------------------------------------------------------

class _YamlProblems(yaml.YAMLError):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing what ``safe_load`` lets through: a
    duplicate key (YAML keeps the last one, silently dropping the other), a
    key that is not a string, a value its tag cannot be read as, a recursive
    alias, and a document that aliases blow up beyond MAX_NODES."""

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        problems = _NodeCheck(self).run(node)
        if problems:
            raise _YamlProblems(problems)
        return self.construct_document(node)


def _line(node) -> int:
    return node.start_mark.line + 1


class _NodeCheck:
    def __init__(self, loader: StrictLoader):
        self.loader = loader
        self.problems: list[str] = []
        self.sizes: dict[int, int] = {}
        self.open: set[int] = set()

    def run(self, node) -> list[str]:
        if self.walk(node, "") > MAX_NODES:
            self.problems.append(f"the document holds more than {MAX_NODES} values once "
                                 "its aliases are expanded")
        return self.problems

    def walk(self, node, where: str) -> int:
        """Check ``node`` and below once; its size with aliases expanded."""
        if id(node) in self.sizes:
            return self.sizes[id(node)]
        if id(node) in self.open:
            self.problems.append(f"'{where}' (line {_line(node)}) is an alias of a node "
                                 "that contains it: a recursive structure")
            return 1
        self.open.add(id(node))
        size = 1 + sum(self.walk(child, w) for child, w in self.children(node, where))
        self.open.discard(id(node))
        self.sizes[id(node)] = size
        return size

    def children(self, node, where: str) -> list:
        name = where or "the document"
        if node.tag not in self.loader.yaml_constructors:
            self.problems.append(f"'{name}' (line {_line(node)}): unknown tag {node.tag}")
            return []
        if isinstance(node, yaml.ScalarNode):
            self.scalar(node, name)
            return []
        if isinstance(node, yaml.SequenceNode):
            return [(child, f"{where}[{i}]") for i, child in enumerate(node.value)]
        found, seen = [], {}
        for key, value in node.value:
            if key.tag == _MERGE:  # '<<: *base': explicit keys override merged ones
                found.append((value, where))
                continue
            if not isinstance(key, yaml.ScalarNode) or key.tag != _STR:
                text = key.value if isinstance(key, yaml.ScalarNode) else "a collection"
                kind = key.tag.rsplit(":", 1)[-1]
                self.problems.append(f"key {text} at line {_line(key)} in '{name}' is read "
                                     f"as {kind}, not a string: quote it ('{text}')")
                continue
            path = f"{where}.{key.value}" if where else key.value
            self.scalar(key, path)
            if key.value in seen:
                self.problems.append(f"duplicate key '{path}' at line {_line(key)} (first at "
                                     f"line {seen[key.value]}): YAML would keep only the last")
            seen.setdefault(key.value, _line(key))
            found.append((value, path))
        return found

    def scalar(self, node, name: str) -> None:
        try:
            node.value.encode("utf-8")
            if node.tag != _STR:
                self.loader.construct_object(node)
        except UnicodeEncodeError:
            self.problems.append(f"'{name}' (line {_line(node)}) is not valid Unicode "
                                 "(a lone surrogate escape such as \\ud800)")
        except (ValueError, TypeError, KeyError, yaml.YAMLError) as exc:
            kind = node.tag.rsplit(":", 1)[-1]
            self.problems.append(f"'{name}' (line {_line(node)}): {node.value!r} cannot be "
                                 f"read as {kind} ({exc})")


def load_yaml(path: Path) -> Any:
    """The document in ``path``; any failure is a ConfigError naming the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror or exc}"]) from None
    except ValueError as exc:  # a NUL in the path
        raise ConfigError(path, [f"cannot read the file: {exc}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text: byte {data[exc.start]:#04x} at offset "
                                 f"{exc.start}; save the file as UTF-8"]) from None
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader)
    except _YamlProblems as exc:
        raise ConfigError(path, exc.problems) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from None
    except RecursionError:
        raise ConfigError(path, ["not valid YAML here: nested too deeply"]) from None


# -- text in script lines and paths -------------------------------------------

def control_problem(value: str, key: str, allow: str = "") -> str | None:
    """A control character in a value that becomes part of one script line
    or a path: a newline there starts a new line of the batch script (an
    injected command, or an #SBATCH line cut in two)."""
    for ch in value:
        if (ord(ch) < 32 or 127 <= ord(ch) < 160) and ch not in allow:
            what = "a newline" if ch == "\n" else f"the control character {ch!r}"
            rule = ("only newlines and tabs may be used" if "\n" in allow
                    else "it must be a single line of text")
            return f"'{key}' holds {what} ({value!r}); {rule}"
    return None


def slurm_pattern_problem(value: str, key: str) -> str | None:
    """A backslash anywhere in an --output pattern turns off Slurm's
    expansion of ``%A_%a``, so all tasks would write one log file. A ``%``
    is fine: the generated scripts write it as ``%%`` (sweep/scripts.py)."""
    if "\\" in value:
        return (f"'{key}' must not contain a backslash ({value!r}): in a log file name "
                "(sbatch --output) it turns off Slurm's %A/%a expansion, and every task "
                "would write the same log file")
    return None


def component_file_problem(value: str, key: str) -> str | None:
    """A file named relative to the component directory must stay inside
    it: the edited copy is written into each point's clone of it."""
    norm = posixpath.normpath(value) if value.strip() else "."
    if posixpath.isabs(value):
        return (f"'{key}' {value!r} must be relative to simulation.component_path, "
                "not absolute")
    if norm == ".":
        return f"'{key}' must name a file inside simulation.component_path, not {value!r}"
    if norm == ".." or norm.startswith("../"):
        return f"'{key}' {value!r} leaves simulation.component_path through '..'"
    return control_problem(value, key)


def key_path_problem(text: str, key: str) -> str | None:
    """A key path (``a.b.c`` or ``/a/b/c``) whose every step names something."""
    if not text:
        return f"'{key}' must not be empty: it names the JSON key to set"
    steps = text[1:].split("/") if text.startswith("/") else text.split(".")
    if "" in steps:
        return f"'{key}' {text!r} has an empty step (as in 'a..b', '.a' or 'a.')"
    return control_problem(text, key)


# -- values written into JSON --------------------------------------------------

def is_finite_number(value: Any) -> bool:
    """A number JSON can hold: no NaN or infinity, and no integer too large
    for the float a model's JSON reader turns it into."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= sys.float_info.max if isinstance(value, int) else math.isfinite(value)


def value_problem(value: Any, key: str, depth: int = 0) -> str | None:
    """Whether ``value`` can be written into a JSON file as it is."""
    if depth > 50:
        return f"'{key}' nests too deeply (or contains itself)"
    if value is None or isinstance(value, (bool, str)):
        return None if not isinstance(value, str) else control_problem(value, key, "\n\t")
    if isinstance(value, (int, float)):
        return None if is_finite_number(value) else (
            f"'{key}' holds {value!r}: JSON has no NaN or infinity (nor numbers that large)")
    if isinstance(value, list):
        return next(filter(None, (value_problem(v, key, depth + 1) for v in value)), None)
    if isinstance(value, dict):
        return next(filter(None, (value_problem(v, key, depth + 1) for v in value.values())),
                    None)
    return f"'{key}' holds {value!r}, a {type(value).__name__}, which JSON cannot hold"


# -- command templates ----------------------------------------------------------

def template_fields(template: str) -> list[tuple[str, str, str | None]]:
    """(name, format spec, conversion) of every field; ValueError if malformed."""
    return [(name, spec or "", conv) for _, name, spec, conv in string.Formatter().parse(template)
            if name is not None]


def command_problems(template: str, key: str, fields: set[str]) -> list[str]:
    """Fields the template uses that the batch script cannot fill in."""
    hint = "write '{{' and '}}' for literal braces (${{HOME}} for ${HOME})"
    try:
        used = template_fields(template)
    except ValueError as exc:
        return [f"'{key}' is not a valid template ({exc}); {hint}"]
    problems = []
    for name, spec, conv in used:
        if name == "" or name.isdigit():
            problems.append(f"'{key}' has a positional field '{{{name}}}'; fields are "
                            f"named: {', '.join(sorted(fields))}")
        elif name not in fields:
            problems.append(f"'{key}' uses the unknown field '{{{name}}}'"
                            f"{suggest(name, fields)}; known: {', '.join(sorted(fields))}; "
                            + hint)
        if conv not in (None, "r", "s", "a"):
            problems.append(f"'{key}': '{{{name}!{conv}}}' is not a conversion (!r, !s, !a)")
        if "{" in spec or "}" in spec:
            problems.append(f"'{key}': the format spec of '{{{name}}}' may not hold fields")
    return problems


# -- the slurm and module_commands sections ----------------------------------

def check_slurm(c: Checker, section: dict, where: str) -> dict:
    """Every value here becomes part of an ``#SBATCH`` line: one line each."""
    out = dict(section)
    time = c.text(section, "time", where)
    if time and not _TIME.fullmatch(time):
        c.add(f"'{where}time' must look like HH:MM:SS or D-HH:MM:SS, not {time!r}")
    for key in ("nodes", "ntasks", "array_parallelism"):
        value = c.typed(section, key, int, where)
        if value is not None and value < 1:
            c.add(f"'{where}{key}' must be at least 1, not {value}")
        elif value is not None and value >= 2 ** 31:  # Slurm keeps 32-bit counts
            c.add(f"'{where}{key}' {value} is more than Slurm can count")
    mem = c.typed(section, "mem", (int, float), where)
    # mem * 1024 / ntasks becomes --mem-per-cpu in MB: it must stay finite.
    if mem is not None and not (is_finite_number(mem) and 0 < mem <= sys.float_info.max / 1024):
        c.add(f"'{where}mem' (GB for the whole job) must be positive, not {mem}")
    for key in ("partition", "account"):
        c.text(section, key, where)
    options: dict[str, str] = {}
    for key, value in section.items():
        option = str(key).replace("_", "-")
        if option in options:
            c.add(f"'{where}{options[option]}' and '{where}{key}' are both --{option}")
        options.setdefault(option, key)
        if key in SLURM_KNOWN:
            continue
        if not _SLURM_OPTION.fullmatch(key):
            c.add(f"'{where}{key}' is not a valid sbatch option name")
        elif option in _SLURM_OWN or (option == "mem-per-cpu" and mem is not None):
            c.add(f"'{where}{key}': the sweep sets --{option} itself")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            c.add(None if is_finite_number(value) else
                  f"'{where}{key}' must be a finite number, not {value!r}")
        elif isinstance(value, str):
            c.add(control_problem(value, where + key))
        elif not isinstance(value, bool):
            c.add(f"'{where}{key}' must be a single value to pass as --{option}=VALUE "
                  "(or true for a flag)")
    return out


def check_modules(c: Checker, raw: dict, env: str) -> list[str]:
    """Each entry is one line of every batch script."""
    modules_all = c.mapping(raw.get("module_commands"), "module_commands")
    modules = modules_all.get(env) or []
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        c.add(f"'module_commands.{env}' must be a list of strings")
        return []
    for i, line in enumerate(modules):
        problem = control_problem(line, f"module_commands.{env}[{i}]", allow="\t")
        c.add(problem and problem + "; give each line its own entry")
    return list(modules)
