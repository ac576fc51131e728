"""The package's layout rules, checked on its source (docs/design.rst).

Imports point downwards only: commands -> report -> sweep -> jobs -> provenance |
backends -> the base modules. The two backends never import each other,
and nothing but ``process.py`` starts a subprocess with ``subprocess.run``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent.parent / "datalad_slurmsweep"
LAYERS = {"commands": 5, "report": 4, "sweep": 3, "jobs": 2, "provenance": 1, "backends": 1,
          "crashpoints": -1, "settings": -2, "process": -2, "redact": -2, "errors": -3}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def room(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def imported_rooms(path: Path) -> set[tuple[str, str]]:
    """(room, module path) of every package-internal import in ``path``."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("datalad_slurmsweep"):
                target = node.module.split(".")
            else:
                continue
            names = [target + [a.name] for a in node.names] if len(target) == 1 else [target]
            for name in names:
                if len(name) > 1:
                    found.add((name[1], ".".join(name)))
    return found


def level(name: str) -> int:
    return LAYERS.get(name, 0)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downwards(path):
    here = room(path)
    for target, module in imported_rooms(path):
        if target == here:
            continue
        assert level(target) < level(here), f"{path.name} imports {module}: an upward arrow"
        assert {here, target} != {"provenance", "backends"}, f"{path.name} imports {module}"


def test_backends_do_not_import_each_other():
    for path in (PACKAGE / "backends").rglob("*.py"):
        modules_used = {m for _, m in imported_rooms(path)}
        if "local" in path.parts:
            assert not any(m.endswith("backends.slurm") for m in modules_used), path
        if path.name == "slurm.py":
            assert not any(".local" in m for m in modules_used), path


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_sizes(path):
    assert len(path.read_text().splitlines()) <= 400, f"{path.name} is over 400 lines"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            size = node.end_lineno - node.lineno + 1
            limit = 250 if isinstance(node, ast.ClassDef) else 60
            assert size <= limit, f"{path.name}: {node.name} has {size} lines"


def test_subprocesses_run_through_the_one_helper():
    for path in modules():
        text = path.read_text()
        if path.name != "process.py":
            assert "subprocess.run(" not in text, f"{path.name} calls subprocess.run"
            assert "shell=True" not in text, path.name


def test_commands_catch_only_the_base_error():
    for path in (PACKAGE / "commands").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = ast.unparse(node.type)
                # DamagedStoreError: open_context sets a damaged store
                # aside for --recover; the others become ConfigErrors.
                assert caught in ("SlurmsweepError", "ValueError", "UsageError",
                                  "SlurmError", "DamagedStoreError"), \
                    f"{path.name} catches {caught}"
