"""What every command needs from a dataset: its root, its store, whether it
uses git-annex, and how to turn an outcome into a DataLad result record."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from datalad.distribution.dataset import Dataset, require_dataset
from datalad.interface.results import get_status_dict
from datalad.support.annexrepo import AnnexRepo

from .backends import get_backend
from .store import JobStore


@dataclass
class DatasetContext:
    ds: Dataset
    root: Path
    store: JobStore
    use_annex: bool
    base: Path  # where relative paths given by the user start

    def backend(self, name: str | None = None):
        """The backend called ``name`` (None: the configured default)."""
        return get_backend(name, self.ds.config, self.ds.repo.dot_git)

    def result(self, action: str, status: str, message: str, **extra) -> dict:
        return get_status_dict(action=action, ds=self.ds, status=status,
                               message=message, **extra)


def open_context(dataset, purpose: str) -> DatasetContext:
    ds = require_dataset(dataset, check_installed=True, purpose=purpose)
    root = Path(ds.path)
    # As `datalad run`: with an explicit dataset, paths and the command are
    # relative to its root; otherwise to the current directory.
    base = root if dataset is not None else Path(os.getcwd())
    return DatasetContext(ds=ds, root=root,
                          store=JobStore.for_dataset(ds.repo.dot_git),
                          use_annex=isinstance(ds.repo, AnnexRepo), base=base)


def failure_result(action: str, exc: Exception, dataset=None,
                   ctx: DatasetContext | None = None, status: str = "impossible") -> dict:
    """A result record for a refused command, naming the dataset."""
    if ctx is not None:
        return ctx.result(action, status, str(exc))
    path = getattr(dataset, "path", dataset) or os.getcwd()
    return dict(action=action, status=status, message=str(exc),
                path=os.path.abspath(str(path)), type="dataset")
