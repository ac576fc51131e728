"""datalad slurm-reschedule: submit again what a run record describes."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

from datalad.distribution.dataset import EnsureDataset, datasetmethod
from datalad.interface.base import Interface, build_doc, eval_results
from datalad.interface.utils import generic_result_renderer
from datalad.support.constraints import EnsureNone, EnsureStr
from datalad.support.param import Parameter

from ..errors import RescheduleError, UsageError
from ..jobs.reschedule import ReplayEvent, find_records, make_present, plan_replays, replay
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
                 only_failed=False, report=False, message=None, script=None):
        def body(holder: list) -> Iterator[dict]:
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
                                    fetch=not report and script is None)

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
