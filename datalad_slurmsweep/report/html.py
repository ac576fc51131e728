"""``report.html``: one self-contained page (inline SVG and CSS, no script,
nothing fetched) that opens offline and can be mailed to a colleague."""
from __future__ import annotations

import html
from pathlib import Path

from ..backends.base import JobState
from ..jobs.advice import Advice, advise
from .plots import Plot
from .table import Table

MAX_FAILED_SHOWN = 200

_CSS = """
body{font-family:sans-serif;margin:1.5em auto;max-width:72em;color:#222;background:#fff}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
.plots{display:flex;flex-wrap:wrap;gap:1em}
figure.plot{margin:0;border:1px solid #ddd;padding:.4em;background:#fff}
figure.plot svg{display:block;max-width:100%;height:auto}
figcaption{font-size:.9em;color:#555}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.2em .5em;
vertical-align:top;text-align:left}pre{background:#f6f6f6;padding:.5em;overflow:auto;white-space:pre-wrap;
max-height:20em;margin:0}.advice li{margin:.3em 0}.note{color:#a04000}
.state-FAILED,.state-TIMEOUT,.state-OUT_OF_MEMORY{color:#c0392b;font-weight:bold}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def table_advice(table: Table) -> list[Advice]:
    tasks = []
    for row in table.rows:
        try:
            state = JobState(row.state)
        except ValueError:
            state = JobState.FAILED
        tasks.append((state, row.resources))
    return advise(tasks)


def render(table: Table, plots: list[Plot], plots_note: str | None, csv_name: str) -> str:
    counts: dict[str, int] = {}
    for row in table.rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Report: {_e(table.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Report: {_e(table.title)}</h1>",
        f"<p>{len(table.rows)} rows at commit <code>{_e(table.commit)}</code>: "
        + ", ".join(f'<span class="state-{_e(s)}">{n} {_e(s)}</span>'
                    for s, n in sorted(counts.items()))
        + f'. The table: <a href="{_e(csv_name)}">{_e(csv_name)}</a>.</p>',
    ]
    parts += [f'<p class="note">{_e(n)}</p>' for n in table.notes]
    parts += _advice_section(table_advice(table))
    parts.append("<h2>Plots</h2>")
    if plots_note:
        parts.append(f'<p class="note">{_e(plots_note)}</p>')
    parts.append('<div class="plots">')
    for plot in plots:
        parts.append(f'<figure class="plot">{plot.svg}<figcaption>{_e(plot.title)}'
                     "</figcaption></figure>")
    parts.append("</div>")
    parts += _failed_section(table)
    parts += _provenance_section(table)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _advice_section(found: list[Advice]) -> list[str]:
    if not found:
        return []
    items = "".join(f"<li>{_e(a)}</li>" for a in found)
    return ['<h2>Advice for the next run</h2><ul class="advice">', items, "</ul>"]


def _failed_section(table: Table) -> list[str]:
    failed = [r for r in table.rows if r.state != "COMPLETED"]
    parts = [f"<h2>Points that did not complete ({len(failed)})</h2>"]
    if not failed:
        return parts + ["<p>None.</p>"]
    params = table.params
    parts.append("<table id=\"failed\"><tr><th>point</th><th>case</th>"
                 + "".join(f"<th>{_e(p)}</th>" for p in params)
                 + "<th>state</th><th>exit code</th><th>attempts</th><th>log tail</th></tr>")
    for row in failed[:MAX_FAILED_SHOWN]:
        parts.append(
            f"<tr><td>{_e(row.point)}</td><td>{_e(row.case)}</td>"
            + "".join(f"<td>{_e(row.params.get(p))}</td>" for p in params)
            + f'<td class="state-{_e(row.state)}">{_e(row.state)}</td>'
            f"<td>{_e(row.exit_code)}</td><td>{row.attempts}</td>"
            f"<td><pre>{_e(row.log_tail or '(no log committed)')}</pre></td></tr>")
    parts.append("</table>")
    if len(failed) > MAX_FAILED_SHOWN:
        parts.append(f"<p>… and {len(failed) - MAX_FAILED_SHOWN} more in the CSV.</p>")
    return parts


def _provenance_section(table: Table) -> list[str]:
    rows = [("dataset id", table.dsid), ("dataset commit", table.commit),
            ("run record commits", " ".join(c[:10] for c in table.record_commits[-20:]))]
    rows += [(f"{tool} version", v) for tool, v in sorted(table.versions.items())]
    flag = "--only-failed " if table.kind == "sweep" else ""
    replay = [f"datalad slurm-reschedule {flag}{c}" for c in table.record_commits[-1:]]
    if table.config_path:
        replay.insert(0, f"git checkout {table.commit} && datalad slurm-sweep --no-skip "
                         f"{table.config_path}")
    parts = ["<h2>Provenance</h2><table>"]
    parts += [f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in rows]
    parts.append("<tr><th>replay</th><td>"
                 + "<br>".join(f"<code>{_e(c)}</code>" for c in replay) + "</td></tr></table>")
    if table.config_text:
        parts.append(f"<h3>Configuration ({_e(table.config_path)})</h3>"
                     f"<pre>{_e(table.config_text)}</pre>")
    return parts


def write_html(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
