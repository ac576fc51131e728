"""datalad slurm-sweep: parameter sweeps with a record for every point."""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path

from datalad.distribution.dataset import EnsureDataset, datasetmethod
from datalad.interface.base import Interface, build_doc, eval_results
from datalad.support.constraints import EnsureChoice, EnsureFloat, EnsureNone, EnsureStr
from datalad.support.param import Parameter

from ..backends.base import Backend
from ..errors import ConfigError, ScheduleError, SlurmError, UsageError
from ..jobs.listing import sweep_job_ids
from ..jobs.lock import finish_lock
from ..jobs.reconcile import reconcile
from ..sweep import notify
from ..sweep.config import SweepConfig, load_config
from ..sweep.plan import SweepPlan, plan
from ..sweep.points import SweepLayout
from ..sweep.scripts import find_containers, render_script, sbatch_directives
from ..sweep.submit import run_sweep
from ..sweep.validate import validate
from .base import DatasetContext, guarded, open_context, refuse

lgr = logging.getLogger("datalad.slurmsweep.sweep")
ACTION = "slurm-sweep"


@build_doc
class SlurmSweep(Interface):
    """Run a parameter sweep on Slurm (or locally) with a record for every point.

    Reads a BMTool-style ``slurm_config_setup.yaml`` (plus grid searches),
    validates all of it against the dataset, clones the component directory
    per point with the swept JSON parameters edited, writes one batch script
    per (point, case), commits all of it in one commit, and submits (one
    array job per case by default). ``datalad slurm-finish`` then commits
    the finished points with a record naming each point's parameters.
    Running the same sweep again submits only points without a completed
    record.
    """

    _params_ = dict(
        config=Parameter(args=("config",), metavar="CONFIG.yaml",
                         doc="the sweep configuration (BMTool's slurm_config_setup.yaml schema)."),
        dataset=Parameter(args=("-d", "--dataset"),
                          constraints=EnsureDataset() | EnsureNone(),
                          doc="dataset to run the sweep in."),
        check=Parameter(args=("--check",), action="store_true",
                        doc="validate the configuration against the dataset and stop."),
        dry_run=Parameter(args=("--dry-run",), action="store_true",
                          doc="report the points, cases and batch scripts; write nothing."),
        backend=Parameter(args=("--backend",),
                          constraints=EnsureChoice("slurm", "local") | EnsureNone(),
                          doc="""where the jobs run (default: git config
                          datalad.slurmsweep.backend, else slurm)."""),
        env=Parameter(args=("--env",), metavar="NAME", constraints=EnsureStr() | EnsureNone(),
                      doc="use the slurm.NAME section instead of simulation.environment."),
        wait=Parameter(args=("--wait",), action="store_true",
                       doc="""wait until every point has ended, then finish the sweep
                       (and the retries of its failed points, if it has a retry section)."""),
        wait_timeout=Parameter(args=("--wait-timeout",), metavar="SECONDS",
                               constraints=EnsureFloat() | EnsureNone(),
                               doc="give up waiting after this many seconds (default: 86400)."),
        no_skip=Parameter(args=("--no-skip",), action="store_true",
                          doc="also submit points that already have a completed record."),
    )

    _examples_ = [
        dict(text="Check a sweep, then run it on the local backend",
             code_cmd="datalad slurm-sweep --check sweep.yaml && "
                      "datalad slurm-sweep --backend local --wait sweep.yaml",
             code_py="slurm_sweep('sweep.yaml', backend='local', wait=True)"),
    ]

    @staticmethod
    @datasetmethod(name="slurm_sweep")
    @eval_results
    def __call__(config, *, dataset=None, check=False, dry_run=False, backend=None,
                 env=None, wait=False, wait_timeout=None, no_skip=False):
        def body(holder: list) -> Iterator[dict]:
            refuse((not isinstance(config, (str, Path)),
                    f"config must be the path of a sweep configuration, not {config!r}"),
                   (check and dry_run, "--check (validate only) and --dry-run (validate "
                    "and show the scripts) are alternatives: give one"),
                   ((check or dry_run) and wait, "--wait needs a sweep that is submitted: "
                    "not with --check or --dry-run"),
                   (wait_timeout is not None and not wait, "--wait-timeout goes with --wait"),
                   (wait_timeout is not None and not 0 < wait_timeout < math.inf,
                    f"--wait-timeout must be a positive number of seconds, not {wait_timeout}"))
            ctx = open_context(dataset, "run a parameter sweep")
            holder.append(ctx)
            yield from _sweep(ctx, Path(config), check=check, dry_run=dry_run,
                              backend=backend, env=env, wait=wait, wait_timeout=wait_timeout,
                              no_skip=no_skip)

        yield from guarded(ACTION, dataset, body)


def _load(ctx: DatasetContext, config: Path, env: str | None,
          runner: Backend) -> tuple[SweepConfig, SweepLayout, str | None]:
    """The validated configuration, its layout, and the webhook to notify."""
    cfg = load_config(config if config.is_absolute() else ctx.base / config, environment=env)
    lay = validate(ctx.root, cfg)
    cfg.containers = find_containers(ctx.root, cfg)
    try:
        webhook = notify.resolve_webhook(cfg.webhook_url, ctx.ds.config,
                                         config_source=f"simulation.webhook_url in {cfg.path}")
    except UsageError as exc:
        raise ConfigError(cfg.path, [str(exc)]) from None
    try:
        runner.check_resources(sbatch_directives(cfg), ctx.root)
    except SlurmError as exc:
        raise ConfigError(cfg.path, [f"slurm.{cfg.environment}: {runner.name} refuses "
                                     f"these resources: {exc}"]) from None
    return cfg, lay, webhook


def _summary(p: SweepPlan) -> str:
    lay = p.layout
    return (f"{len(lay.tasks)} jobs ({len({t.point.name for t in lay.tasks})} points"
            f" x {len(p.cfg.cases)} cases): {len(p.todo)} to submit, "
            f"{len(p.completed)} completed, {len(p.running)} open")


def _sweep(ctx: DatasetContext, config: Path, *, check: bool, dry_run: bool,
           backend: str | None, env: str | None, wait: bool, wait_timeout: float | None,
           no_skip: bool) -> Iterator[dict]:
    runner = ctx.backend(backend)
    cfg, lay, webhook = _load(ctx, config, env, runner)
    if not (check or dry_run):
        # Jobs an interrupted run submitted are adopted before deciding
        # what is left to submit.
        with finish_lock(ctx.ds.repo.dot_git, "slurm-sweep"):
            outcomes = list(reconcile(ctx.root, ctx.store, ctx.backend))
        for outcome in outcomes:
            job_id = outcome.job.job_id
            yield ctx.result(ACTION, outcome.status, outcome.message,
                             slurm_job_id=str(job_id) if job_id is not None else None)
    p = plan(ctx.root, ctx.store, cfg, lay, skip=not no_skip)
    if check:
        yield ctx.result(ACTION, "ok", f"configuration {cfg.path} is valid; {_summary(p)}",
                         sweep=lay.root)
        return
    if dry_run:
        for task in p.todo:
            yield ctx.result(ACTION, "ok", f"would submit {task.script}",
                             point=task.point.name, params=task.point.params,
                             case=task.case.name, script=task.script,
                             script_text=render_script(task, cfg, lay, array=p.array))
        yield ctx.result(ACTION, "ok", f"dry run: {_summary(p)}", sweep=lay.root)
        return
    if not p.todo:
        yield ctx.result(ACTION, "ok", f"nothing to submit: {_summary(p)}", sweep=lay.root)
    else:  # the containers' images, before any job can start
        ctx.get(sorted({i for c in cfg.containers.values() for i in c.inputs()}), ScheduleError)
    for event in (run_sweep(ctx.root, ctx.store, runner, p, use_annex=ctx.use_annex,
                            webhook=webhook) if p.todo else ()):
        extra = dict(commit=event.commit) if event.commit else {}
        if event.job_id is not None:
            extra.update(slurm_job_id=str(event.job_id), points=event.points)
        yield ctx.result(ACTION, "error" if event.kind == "refused" else "ok",
                         event.message, sweep=lay.root, **extra)
    if wait:
        jobs = sweep_job_ids(ctx.store, lay.root)
        if jobs:
            yield from ctx.ds.slurm_finish(
                jobs, wait=True, wait_timeout=wait_timeout, return_type="generator",
                result_renderer="disabled", on_failure="ignore")
