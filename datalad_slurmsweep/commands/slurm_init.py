"""datalad slurm-init: a ready-to-run sweep project, committed."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from datalad.distribution.dataset import Dataset
from datalad.interface.base import Interface, build_doc, eval_results
from datalad.support.constraints import EnsureChoice, EnsureNone, EnsureStr
from datalad.support.param import Parameter

from ..errors import ReportError
from ..sweep.project import check_free, write_project
from .base import guarded

ACTION = "slurm-init"
BACKEND_KEY = "datalad.slurmsweep.backend"


@build_doc
class SlurmInit(Interface):
    """Create a ready-to-run sweep project, as MultiscaleRun's ``init`` does.

    PATH becomes a dataset (or an existing one is filled in) holding a small
    model with a component directory of JSON parameters (``model/``), a
    sample batch script (``job.sh``), a commented sweep configuration in
    BMTool's schema with our additions (``sweep.yaml``, a 4 x 3 grid), and a
    README; all of it is committed. Then ``datalad slurm-sweep --check
    sweep.yaml``, ``datalad slurm-sweep --wait sweep.yaml`` and ``datalad
    slurm-report`` run end to end. Existing files are never overwritten.
    """

    _params_ = dict(
        path=Parameter(
            args=("path",), nargs="?", metavar="PATH",
            constraints=EnsureStr() | EnsureNone(),
            doc="where to create the project (default: the current directory)."),
        backend=Parameter(
            args=("--backend",), constraints=EnsureChoice("local", "slurm"),
            doc="""where the project's jobs run, saved in the dataset's
            .datalad/config as datalad.slurmsweep.backend: local (this
            machine, no cluster needed) or slurm."""),
    )

    _examples_ = [
        dict(text="Create a project and run it on this machine",
             code_cmd="datalad slurm-init my-sweep && cd my-sweep && "
                      "datalad slurm-sweep --wait sweep.yaml && datalad slurm-report",
             code_py="slurm_init('my-sweep')"),
    ]

    @staticmethod
    @eval_results
    def __call__(path=None, *, backend="local"):
        def body(holder: list) -> Iterator[dict]:
            target = Path(path or ".").absolute()
            if target.exists() and not target.is_dir():
                raise ReportError(f"{target} exists and is not a directory")
            check_free(target)
            ds = Dataset(target)
            if not ds.is_installed():
                # text2git: the code, the configuration and the small
                # metrics files stay readable in git; large outputs go to the annex.
                ds.create(force=True, cfg_proc="text2git", result_renderer="disabled")
            written = write_project(target)
            ds.config.set(BACKEND_KEY, backend, scope="branch")
            ds.save(path=[str(p) for p in written] + [str(target / ".datalad" / "config")],
                    message="[DATALAD SLURM INIT] A ready-to-run sweep project\n\n"
                            "Created by datalad slurm-init: a model, a job script, "
                            "sweep.yaml and a README.", result_renderer="disabled")
            yield dict(action=ACTION, status="ok", type="dataset", path=str(target),
                       message=f"created a sweep project in {target} (backend {backend}); "
                               "next: datalad slurm-sweep --check sweep.yaml, then "
                               "datalad slurm-sweep --wait sweep.yaml and datalad slurm-report")

        yield from guarded(ACTION, path, body)
