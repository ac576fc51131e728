"""Where jobs run: a real Slurm (``slurm.py``) or this machine (``local/``).

Both implement :class:`~datalad_slurmsweep.backends.base.Backend`; neither
imports the other. Everything they share lives in ``base.py``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UnknownBackendError
from ..settings import BACKEND, LOCAL_MAX_ARRAY_SIZE, LOCAL_WORKERS
from .base import Backend

BACKENDS = BACKEND.choices


def get_backend(name: str | None, config: Any = None, dot_git: Path | None = None) -> Backend:
    """The backend called ``name``; None means the configured default.

    ``dot_git`` is the dataset's git directory, where the local backend keeps
    its job state; ``config`` is the dataset's configuration manager.
    """
    name = name or BACKEND.read(config)
    if name == "slurm":
        from .slurm import SlurmBackend
        return SlurmBackend()
    if name == "local":
        if dot_git is None:
            raise UnknownBackendError("the local backend needs the dataset's git directory")
        from .local import LocalBackend
        return LocalBackend(Path(dot_git) / "slurmsweep" / "local",
                            workers=LOCAL_WORKERS.read(config),
                            max_array_size=LOCAL_MAX_ARRAY_SIZE.read(config))
    raise UnknownBackendError(
        f"unknown backend {name!r} (from --backend or git config "
        f"{BACKEND.key}); choose one of: {', '.join(BACKENDS)}")
