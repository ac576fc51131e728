"""annex.largefiles expressions, evaluated as git-annex does: checked against
``git annex matchexpression`` itself for the terms we evaluate."""
from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from datalad_slurmsweep.provenance.largefiles import (
    FileFacts,
    Unsupported,
    compile_expression,
    parse_size,
)

EXPRESSIONS = [
    "anything", "nothing", "largerthan=20b", "smallerthan=1kb",
    "largerthan=20b and not include=*.csv", "include=*.txt or include=data/*",
    "not (include=*.txt or exclude=*/x/*)", "include=foo", "include=*/foo",
    "(largerthan=0)and(include=*.json)", "largerthan=1KiB or include=a?c.txt",
    "include=[ab]*.txt", "exclude=*.bin largerthan=10",
]
FILES = [("a.txt", 10), ("data/b.csv", 5000), ("foo", 1), ("sub/foo", 30),
         ("abc.txt", 2000), ("sub/x/y.bin", 0), ("c.json", 0), ("d.json", 9)]


def _git_annex_says(tmp_path, expression: str, path: str, size: int) -> bool:
    proc = subprocess.run(["git", "annex", "matchexpression", "--largefiles", expression,
                           "--file", path, "--size", str(size)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


@pytest.fixture(scope="module")
def annex_repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("repo")
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run(["git", "annex", "init", "-q"], cwd=path, check=True)
    return path


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_expressions_match_what_git_annex_decides(annex_repo, expression):
    matcher = compile_expression(expression)
    with ThreadPoolExecutor(4) as pool:  # a git-annex process per question
        theirs = list(pool.map(lambda f: _git_annex_says(annex_repo, expression, *f), FILES))
    for (path, size), says in zip(FILES, theirs, strict=True):
        assert matcher(FileFacts(path, "/nonexistent", size)) == says, (expression, path)


@pytest.mark.parametrize("expression", [
    "copies=2", "metadata=tag=x", "largerthan=5 zettabytes", "(include=*.c",
    "include=*.c or", "and include=*.c", "largerthan(500kb)"])
def test_what_we_cannot_evaluate_exactly_is_left_to_git_annex(expression):
    with pytest.raises(Unsupported):
        compile_expression(expression)


def test_sizes_use_git_annex_units():
    assert parse_size("100kb") == 100_000
    assert parse_size("0.5 gb") == 500_000_000
    assert parse_size("2KiB") == 2048
    assert parse_size("3 megabytes") == 3_000_000
    assert parse_size("7") == 7
