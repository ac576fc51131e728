"""slurm-report's work: the table, results.csv, the plots, report.html."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ReportError
from ..jobs.advice import Advice
from . import plots as plotting
from .html import render, table_advice, write_html
from .table import Table, select, write_csv

NO_PLOTS = ("plots need matplotlib, which is not installed: "
            "pip install 'datalad-slurmsweep[report]' and run slurm-report again")


@dataclass
class Report:
    table: Table
    csv: Path
    html: Path
    plots: int
    advice: list[Advice] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def build_report(root: Path, target: str | None, since: str | None, base: Path,
                 out_dir: Path) -> Report:
    """Select the records, then write ``results.csv`` and ``report.html`` into ``out_dir``."""
    table = select(root, target, since, base)
    csv_path, html_path = out_dir / "results.csv", out_dir / "report.html"
    notes = list(table.notes)
    if plotting.available():
        drawn, missing = plotting.all_plots(table), None
    else:
        drawn, missing = [], NO_PLOTS
        notes.append(NO_PLOTS)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_csv(table, csv_path)
        write_html(html_path, render(table, drawn, missing, csv_path.name))
    except OSError as exc:
        raise ReportError(f"--output-dir {out_dir}: cannot write the report there "
                          f"({exc.strerror}: {exc.filename})") from None
    return Report(table=table, csv=csv_path, html=html_path, plots=len(drawn),
                  advice=table_advice(table), notes=notes)
