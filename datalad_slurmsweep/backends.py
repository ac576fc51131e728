"""Choosing where jobs run.

A backend is anything with this interface (see ``slurm.SlurmBackend``):

``name``
    stored with each job, so that finishing asks the right backend.
``submit(sbatch_argv, cwd, env=None, comment=None) -> job id``
    ``sbatch_argv`` starts with ``"sbatch"``; raises ``SlurmError`` with the
    backend's own message when the submission is refused.
``query(job_ids, expected_tasks=None) -> {job id: JobStatus}``
    one call for all jobs. An id may name a whole job (``"123"``) or one
    task of an array (``"123_4"``). Unknown jobs are LOST.
``find_by_comments(comments) -> {comment: [job id]}``
    one look-up for all reservations an interrupted run left behind.
``version() -> str``, ``max_array_size() -> int``
"""
from __future__ import annotations

from pathlib import Path

BACKENDS = ("slurm", "local")
DEFAULT_BACKEND_CONFIG = "datalad.slurmsweep.backend"


class UnknownBackendError(ValueError):
    pass


def get_backend(name: str | None, config=None, dot_git: Path | None = None):
    """The backend called ``name``; None means the configured default.

    ``dot_git`` is the dataset's git directory, where the local backend keeps
    its job state.
    """
    if name is None and config is not None:
        name = config.get(DEFAULT_BACKEND_CONFIG, None)
    name = name or "slurm"
    if name == "slurm":
        from .slurm import SlurmBackend
        return SlurmBackend()
    if name == "local":
        if dot_git is None:
            raise ValueError("the local backend needs the dataset's git directory")
        from .local_backend import LocalBackend
        return LocalBackend(Path(dot_git) / "slurmsweep" / "local")
    raise UnknownBackendError(
        f"unknown backend {name!r} (from --backend or git config "
        f"{DEFAULT_BACKEND_CONFIG}); choose one of: {', '.join(BACKENDS)}")
