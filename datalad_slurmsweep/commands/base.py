"""What every command shares: the dataset context, result records, the
validation of option combinations, and the one place errors become results.

Commands only validate, delegate to ``jobs``/``sweep`` and turn what comes
back into DataLad result records. They catch exactly one exception type,
:class:`~datalad_slurmsweep.errors.SlurmsweepError`.

Why not datalad-next's ``ValidatedInterface``: importing datalad-next
applies its patches to DataLad core, which would change ``datalad``'s
behaviour for every user of this extension. The same idea (declared
constraints on combinations of parameters, checked before any work) takes a
few lines here: :func:`refuse`.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datalad.distribution.dataset import Dataset, require_dataset
from datalad.interface.results import get_status_dict
from datalad.support.annexrepo import AnnexRepo

from ..backends import get_backend
from ..backends.base import Backend
from ..errors import DamagedStoreError, SlurmsweepError, UsageError
from ..jobs.store import STORE_NAME, JobStore

lgr = logging.getLogger("datalad.slurmsweep")


@dataclass
class DatasetContext:
    ds: Dataset
    root: Path
    store: JobStore
    use_annex: bool
    base: Path  # where relative paths given by the user start

    def backend(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (None: the configured default)."""
        return get_backend(name, self.ds.config, self.ds.repo.dot_git)

    def get(self, paths: list[str], error: type[SlurmsweepError]) -> None:
        """Retrieve annexed content of dataset-relative ``paths`` (a no-op
        without an annex); ``error`` names what failed."""
        if not self.use_annex or not paths:
            return
        for res in self.ds.get([str(self.root / p) for p in paths], on_failure="ignore",
                               return_type="generator", result_renderer="disabled"):
            if res["status"] in ("error", "impossible"):
                raise error(f"could not get input {res.get('path')}: {res.get('message')}")

    def result(self, action: str, status: str, message: str, **extra: Any) -> dict:
        return get_status_dict(action=action, ds=self.ds, status=status,
                               message=message, **extra)


def _set_aside(dot_git: Path) -> Path:
    """Move a damaged store out of the way (kept for inspection)."""
    store = Path(dot_git) / STORE_NAME
    aside = store.with_name(f"{store.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        part = store.with_name(store.name + suffix)
        if part.exists():
            part.rename(aside.with_name(aside.name + suffix))
    return aside


def open_context(dataset: Any, purpose: str, *, set_aside_damaged: bool = False
                 ) -> DatasetContext:
    try:
        ds = require_dataset(dataset, check_installed=True, purpose=purpose)
    except ValueError as exc:  # DataLad's NoDatasetFound, InsufficientArgumentsError
        raise UsageError(str(exc)) from None
    root = Path(ds.path)
    # As `datalad run`: with an explicit dataset, paths and the command are
    # relative to its root; otherwise to the current directory.
    base = root if dataset is not None else Path(os.getcwd())
    try:
        store = JobStore.for_dataset(ds.repo.dot_git)
    except DamagedStoreError:
        if not set_aside_damaged:
            raise
        aside = _set_aside(ds.repo.dot_git)
        lgr.warning("moved the damaged job store to %s; its jobs are rebuilt from the "
                    "journal", aside)
        store = JobStore.for_dataset(ds.repo.dot_git)
    return DatasetContext(ds=ds, root=root, store=store,
                          use_annex=isinstance(ds.repo, AnnexRepo), base=base)


def refuse(*rules: tuple[bool, str]) -> None:
    """Raise UsageError naming every (violated, message) rule that holds."""
    broken = [message for violated, message in rules if violated]
    if broken:
        raise UsageError("; ".join(broken))


def as_list(value: Any, option: str) -> list[str]:
    """A list parameter given from Python: a string is refused, not split into
    characters (``cmd='sbatch job.sh'`` would otherwise submit ``s``)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        raise UsageError(f"{option} must be a list of words, e.g. ['sbatch', 'job.sh'], "
                         f"not the string {value!r}")
    return [str(v) for v in value]


def paths_list(value: Any, option: str) -> list[str]:
    """Paths given from Python: one string is one path, as in ``datalad run``."""
    if isinstance(value, (str, os.PathLike)):
        return [str(value)]
    return as_list(value, option)


def guarded(action: str, dataset: Any, body: Callable[[list], Iterator[dict]]) -> Iterator[dict]:
    """Run a command's ``body(holder)``, turning any SlurmsweepError into one
    result record. ``holder`` receives the context once the body opened it,
    so the error result names the dataset."""
    holder: list[DatasetContext] = []
    try:
        yield from body(holder)
    except SlurmsweepError as exc:
        yield failure_result(action, exc, dataset, holder[0] if holder else None)


def failure_result(action: str, exc: SlurmsweepError, dataset: Any = None,
                   ctx: DatasetContext | None = None) -> dict:
    """A result record for a refused or failed command, naming the dataset."""
    if ctx is not None:
        return ctx.result(action, exc.status, str(exc))
    path = getattr(dataset, "path", dataset) or os.getcwd()
    return dict(action=action, status=exc.status, message=str(exc),
                path=os.path.abspath(str(path)), type="dataset")
