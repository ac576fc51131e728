"""datalad slurm-sweep: parameter sweeps with a record for every point."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from datalad.distribution.dataset import EnsureDataset, datasetmethod
from datalad.interface.base import Interface, build_doc, eval_results
from datalad.support.constraints import EnsureChoice, EnsureFloat, EnsureNone, EnsureStr
from datalad.support.param import Parameter

from . import notify
from .backends import UnknownBackendError
from .commits import CommitError
from .context import failure_result, open_context
from .finishing import reconcile
from .scheduling import annex_unlock
from .slurm import SlurmError
from .store import StoreError
from .sweep_config import ConfigError, load_config
from .sweep_plan import render_script, sbatch_directives
from .sweeping import (
    commit_generated,
    generate,
    plan,
    reserve,
    submit_all,
    validate,
)

lgr = logging.getLogger("datalad.slurmsweep.sweep")


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
                       doc="wait until every point has ended, then finish the sweep."),
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
        action = "slurm-sweep"
        ctx = None
        try:
            ctx = open_context(dataset, "run a parameter sweep")
            cfg_path = Path(config)
            if not cfg_path.is_absolute():
                cfg_path = ctx.base / cfg_path
            cfg = load_config(cfg_path, environment=env)
            runner = ctx.backend(backend)
            lay = validate(ctx.root, cfg)
            try:
                webhook = notify.resolve_webhook(
                    cfg.webhook_url, ctx.ds.config,
                    config_source=f"simulation.webhook_url in {cfg.path}")
            except ValueError as exc:
                raise ConfigError(cfg.path, [str(exc)]) from None
            if runner.name == "slurm":
                try:
                    runner.test_resources(sbatch_directives(cfg), ctx.root)
                except SlurmError as exc:
                    raise ConfigError(cfg.path, [f"slurm.{cfg.environment}: Slurm refuses "
                                                 f"these resources: {exc}"]) from None
            if not (check or dry_run):
                # Jobs an interrupted run submitted are adopted before
                # deciding what is left to submit.
                for outcome in reconcile(ctx.root, ctx.store, ctx.backend):
                    yield ctx.result(action, outcome.status, outcome.message,
                                     slurm_job_id=outcome.job.job_id)
            p = plan(ctx.root, ctx.store, cfg, lay, skip=not no_skip)
            summary = (f"{len(lay.tasks)} jobs ({len({t.point.name for t in lay.tasks})} points"
                       f" x {len(cfg.cases)} cases): {len(p.todo)} to submit, "
                       f"{len(p.completed)} completed, {len(p.running)} open")
            if check:
                yield ctx.result(action, "ok", f"configuration {cfg.path} is valid; {summary}",
                                 sweep=lay.root)
                return
            if dry_run:
                for task in p.todo:
                    yield ctx.result(action, "ok", f"would submit {task.script}",
                                     point=task.point.name, params=task.point.params,
                                     case=task.case.name, script=task.script,
                                     script_text=render_script(task, cfg, lay, array=p.array))
                yield ctx.result(action, "ok", f"dry run: {summary}", sweep=lay.root)
                return
            if not p.todo:
                yield ctx.result(action, "ok", f"nothing to submit: {summary}",
                                 sweep=lay.root)
            else:
                yield from _run(ctx, runner, p, cfg, webhook)
            if wait:
                jobs = [j.job_id for j in ctx.store.jobs(sweep=lay.root) if j.job_id]
                if jobs:
                    yield from ctx.ds.slurm_finish(
                        jobs, wait=True, wait_timeout=wait_timeout, return_type="generator",
                        result_renderer="disabled", on_failure="ignore")
        except ConfigError as exc:
            yield failure_result(action, exc, dataset, ctx)
        except (SlurmError, StoreError, CommitError, UnknownBackendError) as exc:
            yield failure_result(action, exc, dataset, ctx, "error")


def _run(ctx, runner, p, cfg, webhook):
    action = "slurm-sweep"
    paths, submissions = generate(ctx.root, p, runner.max_array_size())
    sha = commit_generated(ctx.root, paths,
                           f"[DATALAD SLURM SWEEP] {cfg.name}: {len(p.todo)} jobs to submit\n\n"
                           f"Generated by datalad slurm-sweep from {p.config_rel}.\n")
    yield ctx.result(action, "ok", f"committed the sweep's generated files as {sha[:10]}",
                     commit=sha, sweep=p.layout.root)
    environment = dict(os.environ)
    rows = reserve(ctx.store, p, submissions, runner.name, environment)
    existing = [t.output_dir for t in p.todo if os.path.lexists(ctx.root / t.output_dir)]
    if ctx.use_annex and existing:
        annex_unlock(ctx.root, existing)
    submitted = 0
    for job_rows, outcome in submit_all(ctx.root, ctx.store, runner, submissions, rows,
                                        environment):
        if isinstance(outcome, Exception):
            yield ctx.result(action, "error",
                             f"submission refused after {submitted} of {len(p.todo)} jobs: "
                             f"{outcome}; run the sweep again to submit the rest",
                             sweep=p.layout.root)
            break
        submitted += len(job_rows)
        yield ctx.result(action, "ok", f"submitted {len(job_rows)} jobs as {outcome}",
                         slurm_job_id=outcome, sweep=p.layout.root,
                         points=[r.extra["point"] for r in job_rows])
    if webhook and submitted:
        title, text = notify.describe_submission(cfg.name, submitted, len(submissions),
                                                 runner.name)
        notify.send(webhook, title, text)
