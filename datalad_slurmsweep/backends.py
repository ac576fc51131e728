"""Choosing where jobs run."""
from __future__ import annotations

BACKENDS = ("slurm",)
DEFAULT_BACKEND_CONFIG = "datalad.slurmsweep.backend"


class UnknownBackendError(ValueError):
    pass


def get_backend(name: str | None, config=None):
    """The backend called ``name``; None means the configured default."""
    if name is None and config is not None:
        name = config.get(DEFAULT_BACKEND_CONFIG, None)
    name = name or "slurm"
    if name == "slurm":
        from .slurm import SlurmBackend
        return SlurmBackend()
    raise UnknownBackendError(
        f"unknown backend {name!r} (from --backend or git config "
        f"{DEFAULT_BACKEND_CONFIG}); choose one of: {', '.join(BACKENDS)}")
