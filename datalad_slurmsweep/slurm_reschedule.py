"""datalad slurm-reschedule: submit again what a run record describes."""
from __future__ import annotations

from datalad.distribution.dataset import EnsureDataset, datasetmethod
from datalad.interface.base import Interface, build_doc, eval_results
from datalad.support.constraints import EnsureNone, EnsureStr
from datalad.support.param import Parameter

from .backends import UnknownBackendError
from .context import failure_result, open_context
from .rescheduling import RescheduleError, find_records, restore_inputs, sweep_points
from .scheduling import ScheduleError, check_conflicts, prepare, submit
from .slurm import SlurmError
from .store import StoreError


@build_doc
class SlurmReschedule(Interface):
    """Submit again the job that a ``[DATALAD SLURM RUN]`` record describes.

    The same sbatch command is submitted from the same directory with the
    same inputs and outputs, and tracked like any scheduled job; the record
    written when it is finished lists the rescheduled commit in its
    ``chain``. Records written by datalad-slurm 0.2.x are understood too.
    Like ``datalad rerun``, the job runs on the current work tree.
    """

    _params_ = dict(
        revision=Parameter(
            args=("revision",), nargs="?", metavar="REVISION",
            constraints=EnsureStr() | EnsureNone(),
            doc="commit holding the run record (default: HEAD)."),
        dataset=Parameter(
            args=("-d", "--dataset"), constraints=EnsureDataset() | EnsureNone(),
            doc="dataset to reschedule in."),
        since=Parameter(
            args=("--since",), metavar="REV", constraints=EnsureStr() | EnsureNone(),
            doc="""reschedule every run record after REV up to REVISION
            (an empty string: from the first commit)."""),
        with_failed_jobs=Parameter(
            args=("--with-failed-jobs",), action="store_true",
            doc="also reschedule records of jobs that had failed (accepted with --accept-failed-jobs)."),
        only_failed=Parameter(
            args=("--only-failed",), action="store_true",
            doc="for a sweep's record: replay only the points that did not complete."),
        report=Parameter(
            args=("--report",), action="store_true",
            doc="report what would be rescheduled, and submit nothing."),
        message=Parameter(
            args=("-m", "--message"), constraints=EnsureStr() | EnsureNone(),
            doc="message for the new run record (default: the original's)."),
    )

    _examples_ = [
        dict(text="Reschedule the job recorded in the last commit",
             code_cmd="datalad slurm-reschedule", code_py="slurm_reschedule()"),
        dict(text="Reschedule every job recorded since a tag",
             code_cmd="datalad slurm-reschedule --since v1.0",
             code_py="slurm_reschedule(since='v1.0')"),
    ]

    @staticmethod
    @datasetmethod(name="slurm_reschedule")
    @eval_results
    def __call__(revision=None, *, dataset=None, since=None, with_failed_jobs=False,
                 only_failed=False, report=False, message=None):
        action = "slurm-reschedule"
        ctx = None
        try:
            ctx = open_context(dataset, "reschedule a Slurm job")
            runs = find_records(ctx.root, revision, since)
            plans = []
            for run in runs:
                rec = run.parsed
                dsid = rec.record.get("dsid")
                if dsid and dsid != ctx.ds.id:
                    raise RescheduleError(
                        f"commit {run.commit[:10]} records a job of another dataset "
                        f"(dsid {dsid}, this one is {ctx.ds.id}); reschedule it there")
                if "points" in rec.record:
                    plans.extend(_sweep_specs(ctx, run, only_failed, with_failed_jobs, message))
                    continue
                if not rec.succeeded and not with_failed_jobs:
                    yield ctx.result(action, "notneeded",
                                     f"commit {run.commit[:10]}: job {rec.job_id} ended "
                                     f"{rec.state}; use --with-failed-jobs to reschedule it",
                                     commit=run.commit)
                    continue
                pwd = rec.record.get("pwd") or "."
                spec = prepare(
                    ctx.root, rec.argv, pwd=pwd,
                    outputs=run.ds_relative(rec.declared_outputs),
                    inputs=run.ds_relative(rec.record.get("inputs") or []),
                    extra_inputs=run.ds_relative(rec.record.get("extra_inputs") or []),
                    base=ctx.root, message=message or rec.message or None,
                    chain=list(rec.record.get("chain") or []) + [run.commit])
                # prepare() took the paths as dataset-relative via base=root.
                check_conflicts(ctx.store, spec)
                plans.append((run, spec))
            restored: set[str] = set()
            for run, spec in plans:
                if spec.sweep and not report and run.commit not in restored:
                    paths = sorted({p for r, sp in plans if r is run
                                    for p in [sp.sbatch_argv[-1], *sp.inputs]})
                    sha = restore_inputs(ctx.root, run.commit, paths, ctx.use_annex)
                    restored.add(run.commit)
                    if sha:
                        yield ctx.result(action, "ok", "restored the sweep's inputs from "
                                         f"{run.commit[:10]} in commit {sha[:10]}", commit=sha)
                if report:
                    yield ctx.result(action, "ok",
                                     f"would reschedule job of commit {run.commit[:10]}",
                                     commit=run.commit, cmd=spec.sbatch_argv, pwd=spec.pwd,
                                     outputs=spec.outputs, inputs=spec.inputs)
                    continue
                backend = ctx.backend(run.parsed.record.get("backend"))
                job = submit(ctx.root, ctx.store, backend, spec, use_annex=ctx.use_annex)
                yield ctx.result(action, "ok",
                                 f"submitted job {job.job_id} again from commit {run.commit[:10]}",
                                 commit=run.commit, slurm_job_id=job.job_id)
        except (RescheduleError, ScheduleError, SlurmError, StoreError,
                UnknownBackendError) as exc:
            yield failure_result(action, exc, dataset, ctx)


def _sweep_specs(ctx, run, only_failed: bool, with_failed: bool, message):
    """One job per recorded point, submitted on its own (not as an array)."""
    sweep = run.parsed.record["sweep"]
    specs = []
    for point in sweep_points(run, only_failed=only_failed, with_failed=with_failed):
        extra = {k: point.get(k) for k in ("point", "case", "params")}
        extra.update(config=sweep.get("config"), sweep_name=sweep.get("name"))
        spec = prepare(ctx.root, ["sbatch", point["script"]], pwd=".",
                       outputs=point["outputs"], inputs=[], base=ctx.root,
                       message=message, chain=list(run.parsed.record.get("chain") or [])
                       + [run.commit], sweep=sweep["root"], extra=extra,
                       check_dirty=False)
        spec.inputs = [i for i in point.get("inputs", []) if i != point["script"]]
        check_conflicts(ctx.store, spec)
        specs.append((run, spec))
    return specs
