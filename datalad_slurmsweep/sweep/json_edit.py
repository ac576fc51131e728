"""Editing parameters in JSON files without disturbing them.

A model's JSON files are read by people too: an edit keeps the key order,
the indentation and the final newline, and changes nothing but the value.
A key that does not exist is an error (a typo would otherwise add a
parameter the model silently ignores), and so is a value of another kind
than the one it replaces (a number for a string, say).
"""
from __future__ import annotations

import json
import re
from typing import Any

from ..errors import JsonEditError


def _indent_of(text: str) -> int | str | None:
    match = re.search(r"\n([ \t]+)\S", text)
    if not match:
        return None
    indent = match.group(1)
    return indent if "\t" in indent else len(indent)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "list" if isinstance(value, list) else "object"


def _show(key: tuple[str, ...]) -> str:
    return ".".join(key)


def locate(doc: Any, key: tuple[str, ...]) -> tuple[Any, str | int]:
    """The container holding ``key`` and the last step into it."""
    node = doc
    for depth, step in enumerate(key):
        last = depth == len(key) - 1
        if isinstance(node, list):
            if not step.isdigit() or int(step) >= len(node):
                raise JsonEditError(f"key '{_show(key)}': no item {step} in a list "
                                    f"of {len(node)}")
            index: str | int = int(step)
        elif isinstance(node, dict):
            if step not in node:
                close = [k for k in node if k.lower() == step.lower()]
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise JsonEditError(f"key '{_show(key)}' does not exist: no '{step}'"
                                    f" in {sorted(node)[:8]}{hint}")
            index = step
        else:
            raise JsonEditError(f"key '{_show(key)}': '{step}' is inside a {_kind(node)}")
        if last:
            return node, index
        node = node[index]
    raise JsonEditError("an empty key names no value")


def check_edit(doc: Any, key: tuple[str, ...], value: Any) -> None:
    container, index = locate(doc, key)
    old = container[index]
    if old is not None and _kind(old) != _kind(value):
        raise JsonEditError(f"key '{_show(key)}' holds a {_kind(old)} ({old!r}); "
                            f"refusing to write the {_kind(value)} {value!r}")


def apply_edits(text: str, edits: list[tuple[tuple[str, ...], Any]]) -> str:
    """``text`` with every (key, value) set; formatting kept as far as JSON allows."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonEditError(f"not valid JSON: {exc}") from None
    for key, value in edits:
        check_edit(doc, key, value)
        container, index = locate(doc, key)
        container[index] = value
    indent = _indent_of(text)
    separators = None if indent is not None or ", " in text or ": " in text else (",", ":")
    out = json.dumps(doc, indent=indent, ensure_ascii=False, separators=separators)
    return out + ("\n" if text.endswith("\n") else "")
