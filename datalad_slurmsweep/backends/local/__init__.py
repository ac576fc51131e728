"""The local backend: sbatch batch scripts run on this machine, with Slurm's
semantics (see ``backend.py`` for where it deliberately differs).

``backend`` implements the :class:`~datalad_slurmsweep.backends.base.Backend`
interface; ``spec`` checks a submission; ``state`` keeps the job files;
``runner`` is the detached process that runs one job. Only ``backend``
starts runners, and nothing here imports the runner, so that
``python -m datalad_slurmsweep.backends.local.runner`` runs a single copy of it.
"""
from __future__ import annotations

from .backend import LocalBackend
from .spec import LocalJobSpec, parse_dependency, parse_time_limit
from .state import LocalJob, LocalTask

__all__ = ["LocalBackend", "LocalJob", "LocalJobSpec", "LocalTask", "parse_dependency",
           "parse_time_limit"]
