"""datalad slurm-report: results.csv and report.html of a sweep or of jobs."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from datalad.distribution.dataset import EnsureDataset, datasetmethod
from datalad.interface.base import Interface, build_doc, eval_results
from datalad.support.constraints import EnsureNone, EnsureStr
from datalad.support.param import Parameter

from ..report.build import build_report
from .base import guarded, open_context, refuse

ACTION = "slurm-report"


@build_doc
class SlurmReport(Interface):
    """Write a results table and an HTML report of a sweep's or jobs' runs.

    ``results.csv`` has one row per (point, case): the parameters, the end
    state, exit code, attempts, the resource figures (elapsed, CPU and memory
    efficiency, MaxRSS against the request) and every metric the point wrote
    into its OUTPUT_DIR (``metrics.json`` unless ``simulation.results`` in the
    sweep configuration names another file or keys). ``report.html`` opens
    without network access and shows each metric against the swept
    parameters (heat maps for 2-D grids), the points per state, runtime and
    MaxRSS against the requested limits, a timeline of tasks per node, the
    points that failed with their log tails, advice for the next run and the
    provenance. Both are built from committed run records and files only, so
    they can be rebuilt at any later commit; the table says which commit it
    describes. Plots need matplotlib (``pip install
    'datalad-slurmsweep[report]'``); without it the page has no plots.
    """

    _params_ = dict(
        target=Parameter(
            args=("target",), nargs="?", metavar="TARGET",
            constraints=EnsureStr() | EnsureNone(),
            doc="""a sweep directory or its configuration file, or a commit
            holding a run record. Default: the last sweep committed."""),
        dataset=Parameter(
            args=("-d", "--dataset"), constraints=EnsureDataset() | EnsureNone(),
            doc="dataset to report on."),
        since=Parameter(
            args=("--since",), metavar="REV", constraints=EnsureStr() | EnsureNone(),
            doc="""report the single jobs (not sweeps) recorded after REV
            (an empty string: from the first commit)."""),
        output_dir=Parameter(
            args=("-o", "--output-dir"), metavar="DIR",
            constraints=EnsureStr() | EnsureNone(),
            doc="""where to write results.csv and report.html (default:
            .git/slurmsweep-report, which git never commits)."""),
    )

    _examples_ = [
        dict(text="Report on the last sweep",
             code_cmd="datalad slurm-report", code_py="slurm_report()"),
        dict(text="Report on one sweep into a directory of your choice",
             code_cmd="datalad slurm-report Run-Storage/sweep_initW -o report",
             code_py="slurm_report('Run-Storage/sweep_initW', output_dir='report')"),
    ]

    @staticmethod
    @datasetmethod(name="slurm_report")
    @eval_results
    def __call__(target=None, *, dataset=None, since=None, output_dir=None):
        def body(holder: list) -> Iterator[dict]:
            refuse((target is not None and since is not None,
                    "TARGET (a sweep or a record) and --since (single jobs) contradict "
                    "each other: give one"))
            ctx = open_context(dataset, "report on Slurm runs")
            holder.append(ctx)
            out = (Path(ctx.base, output_dir) if output_dir
                   else Path(ctx.ds.repo.dot_git) / "slurmsweep-report").absolute()
            report = build_report(ctx.root, target, since, ctx.base, out)
            for advice in report.advice:
                yield ctx.result(ACTION, "ok", f"advice: {advice}", type="file",
                                 path=str(report.html), advice=advice.option)
            yield ctx.result(ACTION, "ok", f"results table of {len(report.table.rows)} rows "
                             f"({report.table.title}) at commit {report.table.commit[:10]}",
                             type="file", path=str(report.csv), rows=len(report.table.rows),
                             commit=report.table.commit)
            note = "; ".join(report.notes)
            yield ctx.result(ACTION, "ok", f"report with {report.plots} plots: {report.html}"
                             + (f" ({note})" if note else ""), type="file",
                             path=str(report.html), plots=report.plots)

        yield from guarded(ACTION, dataset, body)
