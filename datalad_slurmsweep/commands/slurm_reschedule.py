"""datalad slurm-reschedule: submit again what a run record describes."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

from datalad.distribution.dataset import EnsureDataset, datasetmethod
from datalad.interface.base import Interface, build_doc, eval_results
from datalad.interface.utils import generic_result_renderer
from datalad.support.constraints import EnsureFloat, EnsureNone, EnsureStr
from datalad.support.param import Parameter

from ..errors import RescheduleError, UsageError
from ..jobs.reschedule import ReplayEvent, find_records, make_present, plan_replays, replay
from ..jobs.retry import RetryPolicy, factor_problem, mem_problem, time_problem
from ..jobs.runenv import inputs_to_get
from ..jobs.script_out import render, write_script
from .base import DatasetContext, guarded, open_context, refuse

ACTION = "slurm-reschedule"


@build_doc
class SlurmReschedule(Interface):
    """Submit again the job that a ``[DATALAD SLURM RUN]`` record describes.

    The same sbatch command is submitted from the same directory with the
    same inputs and outputs, and tracked like any scheduled job; the record
    written when it is finished lists the rescheduled commit in its
    ``chain``. Records written by datalad-slurm 0.2.x are understood too.
    Like ``datalad rerun``, the job runs on the current work tree.

    A ``[DATALAD SLURM SWEEP]`` commit (the one ``slurm-sweep`` makes before
    submitting) replays that whole sweep: every point and case of its
    manifest, from the batch scripts and clones as committed there (restored
    and committed first if they changed since), never from the sweep
    configuration in the work tree. In a ``--since`` range, each output is
    replayed once, from the oldest commit that produces it.
    """

    result_renderer = "tailored"

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
        script=Parameter(
            args=("--script",), metavar="FILE", constraints=EnsureStr() | EnsureNone(),
            doc="""write the sbatch commands to FILE (``-``: standard output) as a
            bash script, each preceded by a ``cd`` to the job's directory, instead
            of submitting them: nothing is submitted, tracked, restored or
            committed. Jobs the script submits are not tracked."""),
        scale_time=Parameter(
            args=("--scale-time",), metavar="FACTOR", constraints=EnsureFloat() | EnsureNone(),
            doc="""with --only-failed: give points that ended TIMEOUT FACTOR times the
            time limit they had (rounded up to a minute), as a sweep's
            ``retry.scale.time`` does."""),
        scale_mem=Parameter(
            args=("--scale-mem",), metavar="FACTOR", constraints=EnsureFloat() | EnsureNone(),
            doc="""with --only-failed: give points that ended OUT_OF_MEMORY FACTOR times
            the memory they had, as a sweep's ``retry.scale.mem`` does."""),
        max_time=Parameter(
            args=("--max-time",), metavar="TIME", constraints=EnsureStr() | EnsureNone(),
            doc="""with --scale-time: at most this time limit (a Slurm time such as
            1-00:00:00). A point already there is not replayed."""),
        max_mem=Parameter(
            args=("--max-mem",), metavar="GB", constraints=EnsureFloat() | EnsureNone(),
            doc="""with --scale-mem: at most this much memory, in GB for the whole job
            (the unit of a sweep's ``mem``). A point already there is not replayed."""),
        exclude_failed_nodes=Parameter(
            args=("--exclude-failed-nodes",), action="store_true",
            doc="""with --only-failed: submit points that ended NODE_FAIL with
            ``--exclude`` of the node they failed on."""),
    )

    _examples_ = [
        dict(text="Reschedule the job recorded in the last commit",
             code_cmd="datalad slurm-reschedule", code_py="slurm_reschedule()"),
        dict(text="Reschedule every job recorded since a tag",
             code_cmd="datalad slurm-reschedule --since v1.0",
             code_py="slurm_reschedule(since='v1.0')"),
        dict(text="Write the sbatch commands of a sweep's commit to a script",
             code_cmd="datalad slurm-reschedule --script replay.sh 1a2b3c4",
             code_py="slurm_reschedule('1a2b3c4', script='replay.sh')"),
    ]

    @staticmethod
    @datasetmethod(name="slurm_reschedule")
    @eval_results
    def __call__(revision=None, *, dataset=None, since=None, with_failed_jobs=False,
                 only_failed=False, report=False, message=None, script=None,
                 scale_time=None, scale_mem=None, max_time=None, max_mem=None,
                 exclude_failed_nodes=False):
        def body(holder: list) -> Iterator[dict]:
            grow = _growth(only_failed, scale_time, scale_mem, max_time, max_mem,
                           exclude_failed_nodes)
            refuse((only_failed and with_failed_jobs,
                    "--only-failed (only the points that failed) and --with-failed-jobs "
                    "(failed ones too) contradict each other: give one"),
                   (script is not None and report,
                    "--script (write the commands) and --report (list them) are "
                    "alternatives: give one"),
                   (script is not None and not str(script).strip(),
                    "--script needs a file name, or - for standard output"))
            ctx = open_context(dataset, "reschedule a Slurm job")
            holder.append(ctx)
            target = _script_target(ctx.base, script)
            runs = find_records(ctx.root, revision, since)
            def plan() -> tuple:
                return plan_replays(ctx.root, ctx.store, ctx.ds.id, runs,
                                    with_failed=with_failed_jobs, only_failed=only_failed,
                                    message=message, use_annex=ctx.use_annex,
                                    fetch=not report and script is None, grow=grow)

            replays, skipped = plan()
            if not report and script is None and make_present(ctx.root, replays):
                replays, skipped = plan()  # paths in new subdatasets: checked, globbed
            if not report:  # the containers' images, as slurm-schedule gets them
                ctx.get(sorted({p for r in replays for p in inputs_to_get(r.spec)}),
                        RescheduleError)
            for event in skipped:
                yield _event_result(ctx, event)
            if script is not None:
                yield _write_script(ctx, target, render(ctx.root, replays, _invocation(
                    revision, since, script)), len(replays))
                return
            for event in replay(ctx.root, ctx.store, ctx.backend, replays,
                                use_annex=ctx.use_annex, report=report):
                yield _event_result(ctx, event)

        yield from guarded(ACTION, dataset, body)

    @staticmethod
    def custom_result_renderer(res, **kwargs):
        # --script - wrote the script to standard output: a result line
        # there would make it invalid bash.
        if res.get("script") == "-" and res.get("status") == "ok":
            return
        generic_result_renderer(res)


def _growth(only_failed: bool, scale_time: float | None, scale_mem: float | None,
            max_time: str | None, max_mem: float | None,
            exclude_nodes: bool) -> RetryPolicy | None:
    """The options giving failed points more, as a retry policy; refused
    unless they make sense together."""
    given = [name for name, value in (("--scale-time", scale_time), ("--scale-mem", scale_mem),
                                      ("--max-time", max_time), ("--max-mem", max_mem),
                                      ("--exclude-failed-nodes", exclude_nodes or None))
             if value is not None]
    if not given:
        return None
    refuse((not only_failed, f"{', '.join(given)} give failed points more of what they ran "
            "out of: they go with --only-failed"),
           (max_time is not None and scale_time is None, "--max-time caps --scale-time, "
            "which is not given"),
           (max_mem is not None and scale_mem is None, "--max-mem caps --scale-mem, which is "
            "not given"),
           *((problem is not None, problem) for problem in (
               scale_time is not None and factor_problem(scale_time, "--scale-time") or None,
               scale_mem is not None and factor_problem(scale_mem, "--scale-mem") or None,
               max_time is not None and time_problem(max_time, "--max-time") or None,
               max_mem is not None and mem_problem(max_mem, "--max-mem") or None)))
    return RetryPolicy(attempts=1, scale_time=scale_time or 1.0, scale_mem=scale_mem or 1.0,
                       max_time=max_time, max_mem=max_mem, exclude_failed_nodes=exclude_nodes)


def _script_target(base: Path, script: str | None) -> Path | None:
    """Where --script writes (None: standard output), refused if unusable."""
    if script is None or script.strip() == "-":
        return None
    target = Path(script) if os.path.isabs(script) else base / script
    if target.is_dir():
        raise UsageError(f"--script {script}: {target} is a directory")
    if not target.parent.is_dir():
        raise UsageError(f"--script {script}: directory {target.parent} does not exist")
    return target


def _invocation(revision: str | None, since: str | None, script: str) -> list[str]:
    return (["datalad", "slurm-reschedule", f"--script={script}"]
            + ([f"--since={since}"] if since is not None else []) + [revision or "HEAD"])


def _write_script(ctx: DatasetContext, target: Path | None, text: str, count: int) -> dict:
    if target is None:
        # "-" asks for the script itself on standard output, as with datalad rerun.
        sys.stdout.write(text)
        sys.stdout.flush()
        return ctx.result(ACTION, "ok", f"wrote {count} sbatch commands to standard output",
                          script="-")
    write_script(target, text)
    return ctx.result(ACTION, "ok", f"wrote {count} sbatch commands to {target}",
                      script=str(target))


def _event_result(ctx: DatasetContext, event: ReplayEvent) -> dict:
    if event.kind == "skipped":
        return ctx.result(ACTION, "notneeded", event.message, commit=event.run.commit)
    if event.kind == "restored":
        return ctx.result(ACTION, "ok", event.message, commit=event.commit)
    if event.kind == "would-submit":
        spec = event.spec
        return ctx.result(ACTION, "ok", event.message, commit=event.run.commit,
                          cmd=spec.sbatch_argv, pwd=spec.pwd, outputs=spec.outputs,
                          inputs=spec.inputs)
    return ctx.result(ACTION, "ok", event.message, commit=event.run.commit,
                      slurm_job_id=str(event.job.job_id))
