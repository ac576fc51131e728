"""Deciding, as ``git annex add`` does, whether a file goes to the annex.

``annex.largefiles`` expressions (git-annex-matching-expression(1)) are
evaluated here so that finishing a sweep does not pay git-annex's per-file
``add`` path (see ``ingest.py``). Only the terms whose meaning is exact
without git-annex are evaluated: ``anything``, ``nothing``, ``include=``,
``exclude=``, ``largerthan=``, ``smallerthan=``, and ``mimetype=`` /
``mimeencoding=`` through the system's libmagic, the library git-annex asks
too. Any other term, or a size unit we do not know, raises
:class:`Unsupported`: the caller then lets ``git annex add`` decide, so an
expression we cannot read costs speed, never correctness.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")
# git-annex's Utility.DataUnits (storage units are powers of 1000, memory
# units powers of 1024); matched case-insensitively, plurals allowed.
_UNITS = {
    "": 1, "b": 1, "byte": 1,
    "kb": 10**3, "kilobyte": 10**3, "mb": 10**6, "megabyte": 10**6,
    "gb": 10**9, "gigabyte": 10**9, "tb": 10**12, "terabyte": 10**12,
    "pb": 10**15, "petabyte": 10**15,
    "kib": 2**10, "kibibyte": 2**10, "mib": 2**20, "mebibyte": 2**20,
    "gib": 2**30, "gibibyte": 2**30, "tib": 2**40, "tebibyte": 2**40,
}
_MAGIC_MIME_TYPE = 0x010
_MAGIC_MIME_ENCODING = 0x400


class Unsupported(ValueError):
    """An expression (or a part of one) only git-annex can evaluate."""


@dataclass(frozen=True)
class FileFacts:
    path: str  # relative to the top of the repository
    full: str  # absolute path, for libmagic
    size: int


Matcher = Callable[[FileFacts], bool]


def parse_size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise Unsupported(f"size {text!r}")
    unit = match.group(2).lower()
    if unit not in _UNITS and unit.endswith("s"):
        unit = unit[:-1]
    if unit not in _UNITS:
        raise Unsupported(f"size unit {match.group(2)!r}")
    return int(float(match.group(1)) * _UNITS[unit])


def _glob(pattern: str) -> re.Pattern:
    """git-annex's globs: ``*`` also matches ``/``, the whole path must match."""
    return re.compile(fnmatch.translate(pattern), re.DOTALL)


class _Magic:
    """libmagic through ctypes, opened once per flag."""

    def __init__(self, flag: int):
        name = ctypes.util.find_library("magic")
        if not name:
            raise Unsupported("mime terms need libmagic, which is not installed")
        self.lib = ctypes.CDLL(name)
        self.lib.magic_open.restype = ctypes.c_void_p
        self.lib.magic_file.restype = ctypes.c_char_p
        self.lib.magic_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.lib.magic_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.cookie = self.lib.magic_open(flag)
        if not self.cookie or self.lib.magic_load(self.cookie, None) != 0:
            raise Unsupported("libmagic has no database to load")

    def of(self, path: str) -> str:
        found = self.lib.magic_file(self.cookie, path.encode("utf-8", "surrogateescape"))
        if found is None:
            raise Unsupported(f"libmagic cannot read {path}")
        return found.decode(errors="replace")


@cache
def _magic(flag: int) -> _Magic:
    return _Magic(flag)


def _term(token: str) -> Matcher:
    if token == "anything":
        return lambda f: True
    if token == "nothing":
        return lambda f: False
    name, eq, value = token.partition("=")
    if not eq or not value:
        raise Unsupported(f"term {token!r}")
    if name in ("include", "exclude"):
        pattern = _glob(value)
        want = name == "include"
        return lambda f: bool(pattern.match(f.path)) == want
    if name in ("largerthan", "smallerthan"):
        limit = parse_size(value)
        return ((lambda f: f.size > limit) if name == "largerthan"
                else (lambda f: f.size < limit))
    if name in ("mimetype", "mimeencoding"):
        magic = _magic(_MAGIC_MIME_TYPE if name == "mimetype" else _MAGIC_MIME_ENCODING)
        pattern = _glob(value)
        return lambda f: bool(pattern.match(magic.of(f.full)))
    raise Unsupported(f"term {token!r}")


def _tokens(expression: str) -> list[str]:
    return [t for t in re.split(r"\s+|([()])", expression) if t]


class _Parser:
    """``or`` binds looser than ``and``; adjacent terms are joined by ``and``."""

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def either(self) -> Matcher:
        parts = [self.both()]
        while self.peek() == "or":
            self.take()
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else (lambda f: any(p(f) for p in parts))

    def both(self) -> Matcher:
        parts = [self.unary()]
        while self.peek() not in (None, "or", ")"):
            if self.peek() == "and":
                self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda f: all(p(f) for p in parts))

    def unary(self) -> Matcher:
        token = self.peek()
        if token is None or token in ("and", "or", ")"):
            raise Unsupported(f"expression ends or breaks at {token!r}")
        self.take()
        if token == "not":
            inner = self.unary()
            return lambda f: not inner(f)
        if token == "(":
            inner = self.either()
            if self.peek() != ")":
                raise Unsupported("unbalanced parentheses")
            self.take()
            return inner
        return _term(token)


@lru_cache(maxsize=64)
def compile_expression(expression: str) -> Matcher:
    """A predicate for ``expression``; :class:`Unsupported` if we cannot
    evaluate it exactly as git-annex would."""
    parser = _Parser(_tokens(expression))
    matcher = parser.either()
    if parser.peek() is not None:
        raise Unsupported(f"unexpected {parser.peek()!r}")
    return matcher
