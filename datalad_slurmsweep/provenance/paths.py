"""Dataset-relative path spellings, so that ``./a/b``, ``a/b``, an absolute
path and a path given from a subdirectory are recognised as the same."""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..errors import PathOutsideDatasetError


def to_dataset_relative(path: str | os.PathLike, ds_root: Path, base: Path) -> str:
    """``path`` as a normalised POSIX path relative to ``ds_root``.

    Relative paths are taken relative to ``base`` (the directory the user
    works in, or the dataset root when the dataset was named explicitly, as
    DataLad does). ``..`` is resolved lexically: outputs often do not exist
    yet, so the filesystem cannot be asked.
    """
    p = Path(path)
    if not p.is_absolute():
        p = base / p
    p = Path(os.path.normpath(p))
    root = Path(os.path.normpath(ds_root))
    try:
        rel = p.relative_to(root)
    except ValueError:
        # The dataset may be reached through a symlink (e.g. /tmp on macOS).
        try:
            rel = Path(os.path.realpath(p)).relative_to(os.path.realpath(root))
        except ValueError:
            raise PathOutsideDatasetError(
                f"{path} is outside the dataset {ds_root}") from None
    posix = rel.as_posix()
    return posix if posix else "."


def ancestors_and_self(rel: str) -> list[str]:
    """``a/b/c`` -> ``['a/b/c', 'a/b', 'a', '.']``: the paths that contain it."""
    # String slicing, not PurePosixPath: this runs for every staged file.
    if rel == ".":
        return ["."]
    found = [rel]
    cut = rel.rfind("/")
    while cut > 0:
        rel = rel[:cut]
        found.append(rel)
        cut = rel.rfind("/")
    found.append(".")
    return found


def overlaps(a: str, b: str) -> bool:
    """Whether one path is, contains or lies inside the other."""
    if a == "." or b == ".":
        return True
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def pwd_relative(path: str, pwd: str) -> str:
    """A dataset-relative path as run records store it: relative to pwd."""
    if pwd == ".":
        return path
    return PurePosixPath(os.path.relpath(path, pwd)).as_posix()


def normalise_recorded(path: str) -> str:
    """A recorded dataset-relative path, normalised; ``..`` escapes refused."""
    norm = os.path.normpath(path)
    if norm.startswith(".."):
        raise PathOutsideDatasetError(f"recorded path {path} points outside the dataset")
    return PurePosixPath(norm).as_posix()


def under_any(rel: str, roots: set[str]) -> bool:
    """Whether ``rel`` is one of ``roots`` or inside one: as ``any(a in
    roots for a in ancestors_and_self(rel))``, without building the list
    (this runs for every staged file, several times per finish)."""
    if rel in roots or "." in roots:
        return True
    cut = rel.rfind("/")
    while cut > 0:
        rel = rel[:cut]
        if rel in roots:
            return True
        cut = rel.rfind("/")
    return False
