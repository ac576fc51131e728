"""datalad slurm-finish: commit the outputs of ended jobs with run records."""
from __future__ import annotations

import logging
import time
from itertools import groupby

from datalad.distribution.dataset import EnsureDataset, datasetmethod
from datalad.interface.base import Interface, build_doc, eval_results
from datalad.interface.utils import generic_result_renderer
from datalad.log import log_progress
from datalad.support.constraints import EnsureFloat, EnsureNone, EnsureStr
from datalad.support.param import Parameter
from datalad.ui import ui

from .commits import CommitError
from .context import failure_result, open_context
from .finishing import finish, reconcile
from .slurm import SlurmError
from .store import StoreError

lgr = logging.getLogger("datalad.slurmsweep.finish")


def query_all(ctx, jobs):
    """One status query per backend for all ``jobs``."""
    statuses = {}
    keyed = sorted(jobs, key=lambda j: j.backend)
    for name, group in groupby(keyed, key=lambda j: j.backend):
        group = list(group)
        backend = ctx.backend(name)
        statuses.update(backend.query([j.job_id for j in group],
                                      {j.job_id: j.array_tasks for j in group}))
    return statuses


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
            with counts per state."""),
        points=Parameter(
            args=("--points",), action="store_true",
            doc="with --list-open-jobs: list every point of a sweep too."),
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
            doc="wait until the jobs have ended, then finish them."),
        wait_timeout=Parameter(
            args=("--wait-timeout",), metavar="SECONDS",
            constraints=EnsureFloat() | EnsureNone(),
            doc="give up waiting after this many seconds (default: 86400)."),
        message=Parameter(
            args=("-m", "--message"), metavar="MESSAGE",
            constraints=EnsureStr() | EnsureNone(),
            doc="a message to add to every run record written."),
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
                 wait_timeout=None, message=None):
        action = "slurm-finish"
        ctx = None
        if isinstance(jobids, (str, int)):
            jobids = [jobids]
        wanted = [str(j) for j in jobids] if jobids else None
        try:
            ctx = open_context(dataset, "finish Slurm jobs")
            if not list_open_jobs:
                for outcome in reconcile(ctx.root, ctx.store, ctx.backend):
                    yield _outcome_result(ctx, action, outcome)
            jobs = ctx.store.jobs(status="open", job_ids=wanted)
            known = {j.job_id for j in jobs}
            for job_id in wanted or []:
                if job_id not in known:
                    yield ctx.result(action, "impossible",
                                     f"job {job_id} is not an open job of this dataset",
                                     slurm_job_id=job_id)
            if not jobs:
                if not wanted:
                    yield ctx.result(action, "notneeded", "no open jobs")
                return
            if wait and not list_open_jobs:
                statuses = _wait(ctx, jobs, wait_timeout or 86400.0)
            else:
                statuses = query_all(ctx, jobs)
            if list_open_jobs:
                yield from _listing(ctx, jobs, statuses, points)
                return
            for outcome in finish(ctx.root, ctx.store, ctx.backend(jobs[0].backend),
                                  jobs, statuses,
                                  dsid=ctx.ds.id, use_annex=ctx.use_annex,
                                  accept_failed=accept_failed_jobs,
                                  close_failed=close_failed_jobs,
                                  messages=[message] if message else None):
                yield _outcome_result(ctx, action, outcome)
            notify_completed_sweeps(ctx, jobs, statuses)
        except (SlurmError, StoreError, CommitError, TimeoutError) as exc:
            yield failure_result(action, exc, dataset, ctx, "error")

    @staticmethod
    def custom_result_renderer(res, **kwargs):
        if res.get("action") != "slurm-list":
            generic_result_renderer(res)
            return
        if res.get("sweep") and "counts" in res:
            counts = ", ".join(f"{n} {s}" for s, n in res["counts"].items())
            ui.message(f"sweep {res['sweep']}: {res['n_jobs']} jobs ({counts}), "
                       f"submitted {res['submitted']}")
            return
        outputs = ", ".join(res.get("outputs") or [])
        indent = "  " if res.get("sweep") else ""
        ui.message(f"{indent}{res['slurm_job_id']:<12} {res['state']:<13} "
                   f"{res['submitted']}  {outputs}")


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _listing(ctx, jobs, statuses, per_point: bool):
    """One line per single job; one per sweep with counts per state."""
    sweeps: dict[str, list] = {}
    for job in jobs:
        status = statuses[job.job_id]
        if job.sweep:
            sweeps.setdefault(job.sweep, []).append((job, status))
            continue
        yield ctx.result("slurm-list", "ok", status.state.value,
                         slurm_job_id=job.job_id, state=status.state.value,
                         submitted=_when(job.submitted_at), outputs=job.outputs,
                         tasks={s.value: sum(1 for t in status.tasks if t.state is s)
                                for s in {t.state for t in status.tasks}})
    for sweep, members in sweeps.items():
        states = [s.state.value for _, s in members]
        yield ctx.result("slurm-list", "ok", f"sweep {sweep}", sweep=sweep,
                         n_jobs=len(members),
                         counts={s: states.count(s) for s in sorted(set(states))},
                         submitted=_when(min(j.submitted_at for j, _ in members)))
        if per_point:
            for job, status in members:
                yield ctx.result("slurm-list", "ok", status.state.value, sweep=sweep,
                                 slurm_job_id=job.job_id, state=status.state.value,
                                 point=job.extra.get("point"), case=job.extra.get("case"),
                                 params=job.extra.get("params"),
                                 submitted=_when(job.submitted_at), outputs=job.outputs)


def notify_completed_sweeps(ctx, jobs, statuses) -> None:
    """Best effort: tell the sweep's webhook when its last point is finished."""
    from . import notify
    from .sweep_config import ConfigError, load_config
    finished = {j.sweep for j in jobs if j.sweep}
    for sweep in finished:
        if ctx.store.jobs(sweep=sweep):
            continue  # points still open
        members = [j for j in jobs if j.sweep == sweep]
        config = ctx.root / (members[0].extra.get("config") or "")
        try:
            url = notify.resolve_webhook(
                load_config(config).webhook_url if config.is_file() else None, ctx.ds.config)
        except (ConfigError, ValueError) as exc:
            lgr.warning("no completion message for sweep %s: %s", sweep, exc)
            continue
        if url:
            states = [statuses[j.job_id].state.value for j in members]
            title, text = notify.describe_completion(
                members[0].extra.get("sweep_name") or sweep,
                {s: states.count(s) for s in set(states)}, None)
            notify.send(url, title, text)


def _outcome_result(ctx, action, outcome) -> dict:
    extra = dict(slurm_job_id=outcome.job.job_id)
    if outcome.state is not None:
        extra["state"] = outcome.state.value
    if outcome.commit:
        extra["commit"] = outcome.commit
    return ctx.result(action, outcome.status, outcome.message, **extra)


def _wait(ctx, jobs, timeout: float):
    """Poll with backoff until every job has ended; the last statuses."""
    deadline = time.monotonic() + timeout
    delay = 1.0
    pid = f"slurm-finish-wait-{id(jobs)}"
    log_progress(lgr.info, pid, "Waiting for %d jobs", len(jobs),
                 total=len(jobs), label="Waiting", unit=" jobs")
    try:
        while True:
            statuses = query_all(ctx, jobs)
            done = sum(1 for s in statuses.values() if s.state.is_terminal)
            log_progress(lgr.info, pid, "%d of %d jobs ended", done, len(jobs),
                         update=done, total=len(jobs))
            if done == len(jobs):
                return statuses
            if time.monotonic() + delay > deadline:
                raise TimeoutError(
                    f"{len(jobs) - done} jobs still running after {timeout:.0f} s "
                    "(--wait-timeout); they stay open")
            time.sleep(delay)
            delay = min(delay * 1.5, 30.0)
    finally:
        log_progress(lgr.info, pid, "Done waiting")
