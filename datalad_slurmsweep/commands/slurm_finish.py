"""datalad slurm-finish: commit the outputs of ended jobs with run records."""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator

from datalad.distribution.dataset import EnsureDataset, datasetmethod
from datalad.interface.base import Interface, build_doc, eval_results
from datalad.interface.utils import generic_result_renderer
from datalad.support.constraints import EnsureFloat, EnsureNone, EnsureStr
from datalad.support.param import Parameter
from datalad.ui import ui

from ..backends.base import JobId, JobState
from ..jobs.advice import Advice, sweep_advice
from ..jobs.branching import Branching
from ..jobs.finish import finish
from ..jobs.folding import Folded, fold
from ..jobs.listing import sweep_summaries
from ..jobs.lock import finish_lock
from ..jobs.model import Outcome
from ..jobs.reconcile import reconcile
from ..jobs.recover import missing_submissions, recover
from ..jobs.resubmit import retry_pending
from ..jobs.wait import query_all, wait_for
from ..settings import RECORD_INLINE_POINTS
from ..sweep.notify import notify_completed_sweeps
from .base import DatasetContext, as_list, guarded, open_context, refuse

lgr = logging.getLogger("datalad.slurmsweep.finish")
ACTION = "slurm-finish"


@build_doc
class SlurmFinish(Interface):
    """Commit the outputs of ended Slurm jobs, each with a run record.

    Slurm is asked once about all jobs concerned. Every job that completed
    gets one commit holding exactly its declared outputs, its log files and
    its ``slurm-job-<id>.env.json``, with a ``[DATALAD SLURM RUN]`` record.
    Jobs still running are reported and stay open; failed jobs are reported
    and stay open unless ``--accept-failed-jobs`` or ``--close-failed-jobs``
    is given.
    """

    result_renderer = "tailored"

    _params_ = dict(
        jobids=Parameter(
            args=("jobids",), nargs="*", metavar="JOBID",
            doc="job ids to finish; default: all open jobs."),
        dataset=Parameter(
            args=("-d", "--dataset"), constraints=EnsureDataset() | EnsureNone(),
            doc="dataset whose jobs to finish."),
        list_open_jobs=Parameter(
            args=("--list-open-jobs",), action="store_true",
            doc="""list the open jobs (id, state, submit time, outputs) and commit
            nothing. The points of a sweep are summed up in one line per sweep
            and one per case, with counts per state (one result record per
            sweep, its ``counts`` and ``cases`` keys holding the numbers)."""),
        points=Parameter(
            args=("--points",), action="store_true",
            doc="""with --list-open-jobs: list every point of a sweep too, one
            result record each (slow for very large sweeps: about a second
            per 10,000 points)."""),
        accept_failed_jobs=Parameter(
            args=("--accept-failed-jobs",), action="store_true",
            doc="""commit failed jobs like successful ones; the record's subject
            names their state."""),
        close_failed_jobs=Parameter(
            args=("--close-failed-jobs",), action="store_true",
            doc="""forget failed (or lost) jobs without committing; their files stay
            in the work tree."""),
        wait=Parameter(
            args=("--wait",), action="store_true",
            doc="""wait until the jobs have ended, then finish them; retries of failed
            sweep points (a sweep's retry section) are waited for and finished too."""),
        wait_timeout=Parameter(
            args=("--wait-timeout",), metavar="SECONDS",
            constraints=EnsureFloat() | EnsureNone(),
            doc="give up waiting after this many seconds (default: 86400)."),
        message=Parameter(
            args=("-m", "--message"), metavar="MESSAGE",
            constraints=EnsureStr() | EnsureNone(),
            doc="a message to add to every run record written."),
        recover=Parameter(
            args=("--recover",), action="store_true",
            doc="""first rebuild open jobs the job store lost (a deleted, emptied or
            damaged .git/slurmsweep/jobs.sqlite) from its journal, asking Slurm
            by the token in each job's comment what became of them."""),
        branches=Parameter(
            args=("--branches",), action="store_true",
            doc="""commit each finished job (or the finished points of a sweep) on a
            branch of its own, made from the current HEAD, instead of on the
            current branch: ``slurm-job-branch-<id>`` (as datalad-slurm names
            them), ``slurm-sweep-branch-<sweep>-<first id>`` for a sweep. The
            committed files leave the work tree: they are on their branches."""),
        octopus=Parameter(
            args=("--octopus",), action="store_true",
            doc="""like --branches, then merge all those branches into the current
            branch in one octopus merge commit and delete them (as datalad-slurm
            does). Implies --branches."""),
    )

    _examples_ = [
        dict(text="Finish all open jobs", code_cmd="datalad slurm-finish",
             code_py="slurm_finish()"),
        dict(text="Finish one job", code_cmd="datalad slurm-finish 10524442",
             code_py="slurm_finish(['10524442'])"),
        dict(text="List open jobs", code_cmd="datalad slurm-finish --list-open-jobs",
             code_py="slurm_finish(list_open_jobs=True)"),
    ]

    @staticmethod
    @datasetmethod(name="slurm_finish")
    @eval_results
    def __call__(jobids=None, *, dataset=None, list_open_jobs=False, points=False,
                 accept_failed_jobs=False, close_failed_jobs=False, wait=False,
                 wait_timeout=None, message=None, recover=False, branches=False,
                 octopus=False):
        def body(holder: list) -> Iterator[dict]:
            given = [jobids] if isinstance(jobids, (str, int)) else jobids
            wanted = [JobId.parse(j) for j in as_list(given, "jobids")] or None
            refuse(
                (accept_failed_jobs and close_failed_jobs,
                 "--accept-failed-jobs (commit failed jobs) and --close-failed-jobs "
                 "(forget them) contradict each other: give one"),
                (points and not list_open_jobs, "--points goes with --list-open-jobs"),
                (wait_timeout is not None and not wait, "--wait-timeout goes with --wait"),
                (wait_timeout is not None and not 0 < wait_timeout < math.inf,
                 f"--wait-timeout must be a positive number of seconds, not {wait_timeout}"),
                (list_open_jobs and (wait or accept_failed_jobs or close_failed_jobs
                                     or message is not None),
                 "--list-open-jobs only lists: it takes no --wait, --accept-failed-jobs, "
                 "--close-failed-jobs or --message"),
                (list_open_jobs and recover, "--recover changes the store: not with "
                 "--list-open-jobs"),
                (list_open_jobs and (branches or octopus), "--list-open-jobs only lists: "
                 "it commits nothing, so takes no --branches or --octopus"))
            ctx = open_context(dataset, "finish Slurm jobs", set_aside_damaged=recover)
            holder.append(ctx)
            if list_open_jobs:
                yield from _list(ctx, wanted, points)
            else:
                branching = Branching(octopus=octopus) if branches or octopus else None
                yield from _finish(ctx, wanted, accept_failed_jobs, close_failed_jobs,
                                   wait, wait_timeout, message, recover, branching)

        yield from guarded(ACTION, dataset, body)

    @staticmethod
    def custom_result_renderer(res, **kwargs):
        if res.get("action") != "slurm-list":
            generic_result_renderer(res)
            return
        if res.get("reservation"):
            ui.message(f"{'(submitting)':<12} {res['state']:<13} {res['submitted']}  "
                       f"{', '.join(res.get('outputs') or [])}")
            return
        if res.get("sweep") and "counts" in res:
            counts = ", ".join(f"{n} {s}" for s, n in res["counts"].items())
            ui.message(f"sweep {res['sweep']}: {res['n_jobs']} jobs ({counts}), "
                       f"submitted {res['submitted']}")
            for case, by_state in (res.get("cases") or {}).items():
                counts = ", ".join(f"{n} {s}" for s, n in by_state.items())
                ui.message(f"  case {case}: {sum(by_state.values())} jobs ({counts})")
            return
        outputs = ", ".join(res.get("outputs") or [])
        indent = "  " if res.get("sweep") else ""
        ui.message(f"{indent}{res['slurm_job_id']:<12} {res['state']:<13} "
                   f"{res['submitted']}  {outputs}")


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _open_jobs(ctx: DatasetContext, wanted: list[JobId] | None) -> Iterator[dict | list]:
    """Result records for ids that are not open, then the open jobs asked
    for. An array's id (``123``) names all of its open tasks."""
    jobs = ctx.store.jobs(status="open")
    if wanted is not None:
        asked = set(wanted)
        # A packed point's array task (123_4 for 123_4.p2) names its points.
        jobs = [j for j in jobs if {j.job_id, JobId(j.job_id.base),
                                    j.job_id.scheduler_id} & asked]
        found = {i for j in jobs for i in (j.job_id, JobId(j.job_id.base),
                                           j.job_id.scheduler_id)}
        for job_id in wanted:
            if job_id not in found:
                yield ctx.result(ACTION, "impossible",
                                 f"job {job_id} is not an open job of this dataset",
                                 slurm_job_id=str(job_id))
    if not jobs and not wanted:
        yield ctx.result(ACTION, "notneeded", "no open jobs")
    yield jobs


def _lost_store(ctx: DatasetContext) -> Iterator[dict]:
    lost = missing_submissions(ctx.store)
    if lost:
        yield ctx.result(ACTION, "impossible", f"the job store lacks {len(lost)} submission(s) "
                         "its journal holds (was .git/slurmsweep/jobs.sqlite deleted, emptied "
                         "or damaged?); rebuild them with: datalad slurm-finish --recover")


def _finish(ctx: DatasetContext, wanted: list[JobId] | None, accept_failed: bool,
            close_failed: bool, wait: bool, wait_timeout: float | None,
            message: str | None, recover_jobs: bool = False,
            branching: Branching | None = None) -> Iterator[dict]:
    """Finish once; with ``wait``, also wait for and finish the retries of
    failed sweep points submitted meanwhile, until none is left (or the
    time is up)."""
    deadline = time.monotonic() + (wait_timeout or 86400.0)
    while True:
        retries: list[JobId] = []
        yield from _finish_once(ctx, wanted, accept_failed, close_failed, wait,
                                max(1.0, deadline - time.monotonic()), message, retries,
                                recover_jobs, branching)
        if not (wait and retries):
            return
        # Asked for some jobs: their retries are the ones to wait for now.
        wanted, recover_jobs = (retries if wanted is not None else None), False


def _finish_once(ctx: DatasetContext, wanted: list[JobId] | None, accept_failed: bool,
                 close_failed: bool, wait: bool, wait_timeout: float, message: str | None,
                 retries: list[JobId], recover_jobs: bool = False,
                 branching: Branching | None = None) -> Iterator[dict]:
    lock = ctx.ds.repo.dot_git
    waited: dict = {}
    inline_points = RECORD_INLINE_POINTS.read(ctx.ds.config)  # a bad value: before any work

    def settle() -> Iterator[dict]:
        if recover_jobs:
            for outcome in recover(ctx.root, ctx.store, ctx.backend):
                yield _outcome_result(ctx, outcome)
        for outcome in reconcile(ctx.root, ctx.store, ctx.backend, drop_unknown=close_failed):
            yield _outcome_result(ctx, outcome)
        for outcome in retry_pending(ctx.root, ctx.store, ctx.backend,
                                     use_annex=ctx.use_annex, close_failed=close_failed):
            if outcome.resubmitted:
                retries.append(outcome.job.job_id)
            yield _outcome_result(ctx, outcome)
        yield from _lost_store(ctx)

    if wait:
        # Waiting holds no lock: another finish may commit some of these
        # jobs meanwhile, and the locked pass below sees what is left.
        with finish_lock(lock, "slurm-finish"):
            yield from settle()
        *_, jobs = _open_jobs(ctx, wanted)
        if jobs:
            waited = wait_for(ctx.backend, jobs, wait_timeout)
    with finish_lock(lock, "slurm-finish"):
        if not wait:
            yield from settle()
        *results, jobs = _open_jobs(ctx, wanted)
        yield from results
        if not jobs:
            return
        statuses = query_all(ctx.backend, jobs)
        # An end seen while waiting stays the end: accounting that lags for
        # a moment must not turn a finished job back into a running or lost one.
        for job_id, seen in (waited.items() if wait else ()):
            now = statuses.get(job_id)
            if now and seen.state.is_terminal and seen.state is not JobState.LOST and (
                    now.state.is_active or now.state is JobState.LOST):
                statuses[job_id] = seen
        outcomes = list(finish(ctx.root, ctx.store, ctx.backend(jobs[0].backend), jobs,
                               statuses, dsid=ctx.ds.id, use_annex=ctx.use_annex,
                               accept_failed=accept_failed, close_failed=close_failed,
                               named=set(wanted or ()),
                               messages=[message] if message else None,
                               branching=branching,
                               inline_points=inline_points))
        advice = sweep_advice(outcomes, statuses)
        retries.extend(o.job.job_id for o in outcomes if o.resubmitted)
        for item in fold(outcomes):
            if isinstance(item, Folded):
                said = [a for o in item.outcomes for a in advice.get(id(o), [])]
                yield _folded_result(ctx, item, said)
            else:
                yield _outcome_result(ctx, item, advice.get(id(item), []))
    notify_completed_sweeps(ctx.root, ctx.store, ctx.ds.config, jobs, statuses)


def _list(ctx: DatasetContext, wanted: list[JobId] | None, per_point: bool) -> Iterator[dict]:
    """One line per single job; one per sweep and per case with counts per
    state. Named jobs and ``--points`` list every job (slow at 100 000)."""
    yield from _lost_store(ctx)
    if wanted is not None or per_point:
        yield from _list_jobs(ctx, wanted, per_point)
        return
    for job in ctx.store.jobs(status="submitting", plain=True):
        yield ctx.result("slurm-list", "ok", "SUBMITTING", slurm_job_id="(none yet)",
                         state="SUBMITTING", submitted=_when(job.submitted_at),
                         outputs=job.outputs, sweep=None, reservation=True)
    jobs = ctx.store.jobs(status="open", plain=True)
    summaries = sweep_summaries(ctx.store, ctx.backend)
    if not jobs and not summaries:
        yield ctx.result(ACTION, "notneeded", "no open jobs")
        return
    yield from _job_lines(ctx, jobs)
    for summary in summaries:
        yield ctx.result("slurm-list", "ok", f"sweep {summary.sweep}", sweep=summary.sweep,
                         n_jobs=summary.n_jobs, counts=dict(sorted(summary.counts.items())),
                         cases={c: dict(sorted(n.items())) for c, n in summary.cases.items()},
                         submitted=_when(summary.submitted_at))


def _job_lines(ctx: DatasetContext, jobs: list) -> Iterator[dict]:
    statuses = query_all(ctx.backend, jobs) if jobs else {}
    for job in jobs:
        status = statuses[job.job_id]
        yield ctx.result("slurm-list", "ok", status.state.value,
                         slurm_job_id=str(job.job_id), state=status.state.value,
                         submitted=_when(job.submitted_at), outputs=job.outputs,
                         tasks={s.value: sum(1 for t in status.tasks if t.state is s)
                                for s in {t.state for t in status.tasks}})


def _list_jobs(ctx: DatasetContext, wanted: list[JobId] | None,
               per_point: bool) -> Iterator[dict]:
    """The named jobs, or (``--points``) every job with a sweep's points one
    by one: a result record per job."""
    if wanted is None:
        for job in ctx.store.jobs(status="submitting"):
            yield ctx.result("slurm-list", "ok", "SUBMITTING", slurm_job_id="(none yet)",
                             state="SUBMITTING", submitted=_when(job.submitted_at),
                             outputs=job.outputs, sweep=job.sweep.root if job.sweep else None,
                             reservation=True)
    *results, jobs = _open_jobs(ctx, wanted)
    yield from results
    if not jobs:
        return
    yield from _job_lines(ctx, [j for j in jobs if not j.sweep])
    members = [j for j in jobs if j.sweep]
    statuses = query_all(ctx.backend, members) if members else {}
    sweeps: dict[str, list] = {}
    for job in members:
        sweeps.setdefault(job.sweep.root, []).append((job, statuses[job.job_id]))
    for sweep, pairs in sweeps.items():
        states = [s.state.value for _, s in pairs]
        yield ctx.result("slurm-list", "ok", f"sweep {sweep}", sweep=sweep,
                         n_jobs=len(pairs),
                         counts={s: states.count(s) for s in sorted(set(states))},
                         submitted=_when(min(j.submitted_at for j, _ in pairs)))
        if per_point:
            for job, status in pairs:
                yield ctx.result("slurm-list", "ok", status.state.value, sweep=sweep,
                                 slurm_job_id=str(job.job_id), state=status.state.value,
                                 point=job.sweep.point, case=job.sweep.case,
                                 params=job.sweep.params,
                                 submitted=_when(job.submitted_at), outputs=job.outputs)


def _folded_result(ctx: DatasetContext, folded: Folded, advice: list[Advice]) -> dict:
    message = folded.message + "".join(f"; sweep {folded.sweep}: {a}" for a in advice)
    return ctx.result(ACTION, folded.status, message, sweep=folded.sweep,
                      n_points=len(folded.outcomes), counts=folded.counts,
                      slurm_job_ids=folded.job_ids, commit=folded.commit,
                      advice=[a.option for a in advice] or None)


def _outcome_result(ctx: DatasetContext, outcome: Outcome,
                    advice: list[Advice] | None = None) -> dict:
    job_id = outcome.job.job_id
    extra = dict(slurm_job_id=str(job_id) if job_id is not None else None)
    if advice:
        extra["advice"] = [a.option for a in advice]
        outcome.message += "".join(f"; sweep {outcome.job.sweep.root}: {a}" for a in advice)
    if outcome.state is not None:
        extra["state"] = outcome.state.value
    if outcome.commit:
        extra["commit"] = outcome.commit
    if outcome.branch:
        extra["branch"] = outcome.branch
    return ctx.result(ACTION, outcome.status, outcome.message, **extra)
