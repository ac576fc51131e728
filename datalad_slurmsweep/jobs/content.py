"""Making a job's paths present before it is submitted, as ``datalad run``
does: the subdatasets its inputs and outputs lie in are installed, and its
inputs' content is got (a YODA input subdataset often has its content
dropped). A batch job cannot fetch anything itself: on a cluster the compute
node may not even reach the dataset's remotes.
"""
from __future__ import annotations

import posixpath
from pathlib import Path

from datalad.distribution.dataset import Dataset

from ..errors import AbsentContentError, ScheduleError
from ..provenance.datasets import TOP, read_layout
from .model import JobSpec
from .placeholders import expand_inputs
from .prepare import prepare

_MAX_DEPTH = 16


def _get(ds_root: Path, paths: list[str], get_data: bool) -> None:
    ds = Dataset(str(ds_root))
    for res in ds.get([str(ds_root / p) for p in paths], get_data=get_data,
                      on_failure="ignore", return_type="generator",
                      result_renderer="disabled"):
        if res.get("status") in ("error", "impossible"):
            what = "input" if get_data else "subdataset"
            raise ScheduleError(f"could not get {what} {res.get('path')}: {_text(res)}")


def _text(res: dict) -> str:
    """A DataLad result's message, which may be a (format, *args) tuple."""
    message = res.get("message") or res.get("status")
    if isinstance(message, tuple) and message:
        try:
            message = message[0] % message[1:]
        except (TypeError, ValueError):
            message = " ".join(map(str, message))
    return " ".join(str(message).split())


def get_paths(ds_root: Path, paths: list[str]) -> None:
    _get(ds_root, paths, get_data=True)


def install_subdatasets(ds_root: Path, spec: JobSpec) -> bool:
    """Install the subdatasets (at any depth) holding the job's paths;
    whether any was installed."""
    return install_holders(ds_root, [*spec.inputs, *spec.extra_inputs, *spec.outputs])


def install_holders(ds_root: Path, paths: list[str]) -> bool:
    """Install the subdatasets (at any depth) holding ``paths``; whether any
    was installed."""
    installed = False
    for _ in range(_MAX_DEPTH):
        layout = read_layout(ds_root)
        holders = sorted({h for p in paths if (h := layout.absent_holder(p))})
        if not holders:
            return installed
        _get(ds_root, holders, get_data=False)
        installed = True
    raise ScheduleError(f"subdatasets nested over {_MAX_DEPTH} levels deep")


def get_sweep_models(ds_root: Path, configs: list[str]) -> None:
    """For a sweep replay: the directory of each sweep's configuration (the
    model, whose module commands the generated scripts run) when it lies in
    a subdataset: installed, and its content got, as a fresh clone lacks
    both. A model in the dataset itself is the user's to get."""
    install_holders(ds_root, configs)
    layout = read_layout(ds_root)
    models = sorted({d for c in configs
                     if layout.owner(d := (posixpath.dirname(c) or ".")) != TOP})
    if models:
        _get(ds_root, models, get_data=True)


def get_inputs(ds_root: Path, spec: JobSpec) -> None:
    """Get the content of the job's (expanded) inputs, in whichever dataset
    holds them."""
    layout = read_layout(ds_root)
    found = expand_inputs(ds_root, layout, [*spec.inputs, *spec.extra_inputs])
    if found:
        _get(ds_root, found, get_data=True)


def prepare_getting_script(ds_root: Path, sbatch_argv: list[str], *, fetch: bool,
                           **kwargs) -> JobSpec:
    """:func:`prepare`, getting an annexed batch script's content first when
    it is absent (a fresh clone), as ``datalad run`` gets its inputs."""
    try:
        return prepare(ds_root, sbatch_argv, **kwargs)
    except AbsentContentError as exc:
        if not fetch:
            raise
        get_paths(ds_root, [exc.path])
    return prepare(ds_root, sbatch_argv, **kwargs)
