"""datalad slurm-schedule: submit a job and remember it."""
from __future__ import annotations

import logging
from argparse import REMAINDER
from collections.abc import Iterator
from dataclasses import dataclass

from datalad.distribution.dataset import EnsureDataset, datasetmethod
from datalad.interface.base import Interface, build_doc, eval_results
from datalad.support.constraints import EnsureChoice, EnsureNone, EnsureStr
from datalad.support.param import Parameter

from ..jobs.content import get_inputs, get_paths, install_subdatasets, prepare_getting_script
from ..jobs.placeholders import EXPAND_CHOICES
from ..jobs.prepare import check_conflicts
from ..jobs.runenv import configure, inputs_to_get, record_keys
from ..jobs.submit import submit_job
from .base import DatasetContext, as_list, guarded, open_context, paths_list, refuse

lgr = logging.getLogger("datalad.slurmsweep.schedule")


@build_doc
class SlurmSchedule(Interface):
    """Submit a Slurm job with declared inputs and outputs, and remember it.

    The job is submitted with ``sbatch --parsable`` and recorded as an open
    job in the dataset's job store; nothing is committed. Once the job has
    ended, ``datalad slurm-finish`` commits its declared outputs, its Slurm
    log files and a machine-readable run record.

    The batch script and the inputs must be committed (otherwise no record
    could reproduce the job). Outputs must not overlap the outputs of any
    open job. Annexed inputs are retrieved and existing annexed outputs are
    unlocked before submission.
    """

    _params_ = dict(
        cmd=Parameter(
            args=("cmd",), nargs=REMAINDER, metavar="SBATCH ...",
            doc="""the sbatch call: ``sbatch [SBATCH OPTIONS] SCRIPT [ARGS]``
            (or ``sbatch --wrap=COMMAND``)."""),
        dataset=Parameter(
            args=("-d", "--dataset"), constraints=EnsureDataset() | EnsureNone(),
            doc="""dataset to record the job in. If given, the job is
            submitted from its root and relative paths are relative to it;
            otherwise both are relative to the current directory."""),
        inputs=Parameter(
            args=("-i", "--input"), dest="inputs", action="append",
            metavar="PATH", constraints=EnsureStr() | EnsureNone(),
            doc="""a file, directory or glob (``'data/*.csv'``) the job reads;
            globs are expanded now. Subdatasets it lies in are installed and
            its content is retrieved before submission; it must have no
            uncommitted changes. Can be given more than once."""),
        outputs=Parameter(
            args=("-o", "--output"), dest="outputs", action="append",
            metavar="PATH", constraints=EnsureStr() | EnsureNone(),
            doc="""a file, directory or glob (``'res/*.csv'``, expanded at
            finish against what the job wrote) the job writes, also inside a
            subdataset; only these paths (and the job's logs) are committed by
            slurm-finish, and declared paths the job did not write are
            reported. Can be given more than once; at least one is required.
            The sbatch call may use ``{inputs}``, ``{outputs}``, ``{pwd}`` and
            ``{dspath}`` as ``datalad run`` does (``{{``/``}}`` for braces)."""),
        message=Parameter(
            args=("-m", "--message"), metavar="MESSAGE",
            constraints=EnsureStr() | EnsureNone(),
            doc="a message to put into the run record's commit message."),
        dry_run=Parameter(
            args=("--dry-run",), action="store_true",
            doc="validate everything and report the job, but submit nothing."),
        expand=Parameter(
            args=("--expand",), constraints=EnsureChoice(*EXPAND_CHOICES) | EnsureNone(),
            doc="""record the expanded lists of input globs (``inputs``), of
            output globs as the job matched them (``outputs``), or both, instead
            of the patterns, as with ``datalad run --expand``."""),
        backend=Parameter(
            args=("--backend",), constraints=EnsureChoice("slurm", "local") | EnsureNone(),
            doc="""where the job runs: slurm, or local (the same batch script on
            this machine). Default: git config datalad.slurmsweep.backend, else
            slurm."""),
        container=Parameter(
            args=("--container",), metavar="NAME",
            constraints=EnsureStr() | EnsureNone(),
            doc="""run the batch script inside the container NAME, registered
            with ``datalad containers-add`` (needs datalad-container). The
            script's ``#SBATCH`` lines still apply; its payload runs through
            the container's cmdexec. The image is retrieved before submission
            and recorded as an extra input; slurm-reschedule uses the same
            container."""),
        alt_dir=Parameter(
            args=("--alt-dir",), metavar="PATH",
            constraints=EnsureStr() | EnsureNone(),
            doc="""run the job below PATH, an absolute directory outside the
            dataset, in a mirror of the dataset's layout: the batch script and
            the inputs are copied there at submission, and slurm-finish moves
            the outputs and logs back into the dataset before committing them.
            An output that already exists below PATH is refused."""),
    )

    _examples_ = [
        dict(text="Submit a job writing into out/",
             code_cmd="datalad slurm-schedule -o out/ sbatch job.sh",
             code_py="slurm_schedule(['sbatch', 'job.sh'], outputs=['out/'])"),
        dict(text="Submit an array job reading data/",
             code_cmd="datalad slurm-schedule -i data/ -o results/ sbatch --array=0-9%2 job.sh",
             code_py="slurm_schedule(['sbatch', '--array=0-9%2', 'job.sh'], "
                     "inputs=['data/'], outputs=['results/'])"),
    ]

    @staticmethod
    @datasetmethod(name="slurm_schedule")
    @eval_results
    def __call__(cmd=None, *, dataset=None, inputs=None, outputs=None,
                 message=None, dry_run=False, expand=None, backend=None, container=None,
                 alt_dir=None):
        def body(holder: list) -> Iterator[dict]:
            argv = as_list(cmd, "cmd")
            ins, outs = paths_list(inputs, "inputs"), paths_list(outputs, "outputs")
            refuse((not argv, "give the sbatch call to submit, e.g. 'sbatch job.sh'"))
            ctx = open_context(dataset, "schedule a Slurm job")
            holder.append(ctx)
            env = RunEnv(container=container, alt_dir=alt_dir)
            yield from _schedule(ctx, argv, ins, outs, message, dry_run, expand, backend, env)

        yield from guarded(ACTION, dataset, body)


ACTION = "slurm-schedule"


@dataclass
class RunEnv:
    """Where the job runs: --container and --alt-dir, as given."""

    container: str | None = None
    alt_dir: str | None = None


def _schedule(ctx: DatasetContext, argv: list[str], inputs: list[str], outputs: list[str],
              message: str | None, dry_run: bool, expand: str | None,
              backend: str | None, env: RunEnv) -> Iterator[dict]:
    runner = ctx.backend(backend)

    def validated():
        spec = prepare_getting_script(ctx.root, argv, fetch=not dry_run, outputs=outputs,
                                      inputs=inputs, base=ctx.base, message=message,
                                      expand=expand)
        configure(ctx.root, spec, container_name=env.container, alt_dir=env.alt_dir)
        check_conflicts(ctx.store, spec.reserved_paths)
        return spec

    spec = validated()
    if dry_run:
        yield ctx.result(ACTION, "ok", "would submit (dry run)",
                         cmd=spec.sbatch_argv, pwd=spec.pwd,
                         outputs=spec.outputs, inputs=spec.inputs,
                         array_tasks=spec.array_tasks, **record_keys(spec))
        return
    if install_subdatasets(ctx.root, spec):
        spec = validated()  # now the paths in them can be checked, and globbed
    get_inputs(ctx.root, spec)
    if inputs_to_get(spec):
        get_paths(ctx.root, inputs_to_get(spec))  # the container's image
    job = submit_job(ctx.root, ctx.store, runner, spec, use_annex=ctx.use_annex)
    yield ctx.result(ACTION, "ok", f"submitted job {job.job_id}",
                     slurm_job_id=str(job.job_id), backend=job.backend,
                     outputs=[str(ctx.root / p) for p in job.outputs],
                     array_tasks=spec.array_tasks)
