"""The report as rich renderables for a terminal: the same sections as the markdown.

Returns renderables; the CLI's Console prints them (and drops colour when not a terminal).
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..report import Report
from ..settings import Status
from .text import (
    ROW_HEADERS,
    STATUS_LABEL,
    counts_line,
    row_cells,
    rule_sentence,
    settings_rows,
    sides_line,
    title,
)

_STYLE = {
    Status.REGRESSED: "bold red",
    Status.IMPROVED: "green",
    Status.UNCHANGED: "",
    Status.INSUFFICIENT_DATA: "yellow",
    Status.ADDED: "cyan",
    Status.REMOVED: "magenta",
}
_RIGHT = {"baseline", "candidate", "Δ", "Δ%", "p", "n (base / cand)"}


_COMPACT = ("metric", "stat", "group", "baseline", "candidate", "Δ", "Δ%", "p")


def _rows_table(report: Report, statuses: tuple[Status, ...], caption: str, *, compact: bool) -> Table | None:
    """Changes get every column; the rest drop the interval and counts for a `why` that fits a terminal."""
    frame = report.ordered(statuses)
    if not frame.height:
        return None
    headers = _COMPACT if compact else ROW_HEADERS
    table = Table(title=caption, title_justify="left")
    table.add_column("status", no_wrap=True)
    for h in headers:
        table.add_column(h, justify="right" if h in _RIGHT else "left", no_wrap=True)
    if compact:
        table.add_column("why", ratio=1, min_width=20)
    for r in frame.iter_rows(named=True):
        status = Status(r["status"])
        cells = dict(zip(ROW_HEADERS, row_cells(r), strict=True))
        row = [Text(STATUS_LABEL[status], style=_STYLE[status]), *(Text(cells[h]) for h in headers)]
        if compact:
            row.append(Text(r["reason"]))
        table.add_row(*row)
    return table


def render_table(report: Report) -> RenderableType:
    failed = report.summary.failed
    parts: list[RenderableType] = [
        Text(f"agent-trace compare — {title(report)}", style="bold red" if failed else "bold green"),
        Text(counts_line(report)),
        Text(sides_line(report)),
        Text(rule_sentence(report.settings), style="dim"),
    ]
    for statuses, caption, compact in (
        ((Status.REGRESSED, Status.IMPROVED), "Regressions and improvements", False),
        ((Status.UNCHANGED, Status.INSUFFICIENT_DATA, Status.ADDED, Status.REMOVED), "Everything else", True),
    ):
        table = _rows_table(report, statuses, caption, compact=compact)
        if table is not None:
            parts.append(table)
    settings = Table(title="Settings", title_justify="left", show_header=False)
    settings.add_column("setting")
    settings.add_column("value")
    for name, value in settings_rows(report.settings):
        settings.add_row(name, value)
    parts.append(settings)
    return Group(*parts)
