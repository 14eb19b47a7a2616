"""Everything the CLI shows a person: the read/draw report table and the progress bar (stderr)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..report import DrawReport, ReadReport

stderr = Console(stderr=True, highlight=False)


def report_table(read: ReadReport, draw: DrawReport | None = None) -> Table:
    table = Table(title="agent_trace: what happened to every input line", show_lines=False, title_justify="left")
    table.add_column("outcome")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("read", f"{len(read.files)} file(s)", f"{read.lines:,} lines")
    for kind, n in sorted(read.accepted.items()):
        table.add_row("accepted", kind, f"{n:,}")
    if read.blank:
        table.add_row("ignored", "blank line", f"{read.blank:,}")
    for reason, n in sorted(read.skipped.items()):
        table.add_row("[yellow]skipped[/]", reason, f"{n:,}")
    for detail, n in sorted(read.skipped_detail.items()):
        table.add_row("", f"  {detail}", f"{n:,}")
    for issue, n in sorted(read.file_issues.items()):
        table.add_row("[red]damaged[/]", issue, f"{n:,}")
    for issue, n in sorted(read.field_issues.items()):
        table.add_row("[yellow]field dropped[/]", issue, f"{n:,}")
    if draw is not None:
        for reason, n in sorted(draw.not_drawn.items()):
            if n:
                table.add_row("not drawn", reason, f"{n:,}")
        for cat, n in sorted(draw.by_category.items()):
            table.add_row("[green]drawn[/]", cat, f"{n:,}")
        if draw.late_records:
            table.add_row("[yellow]drawn apart[/]", "records that came after their session was written",
                          f"{draw.late_records:,}")
    return table


def show_report(read: ReadReport, draw: DrawReport | None = None, *, quiet: bool = False) -> None:
    if quiet:
        return
    stderr.print(report_table(read, draw))
    if read.examples:
        stderr.print("[bold]first problems:[/]")
        for p in read.examples[:8]:
            stderr.print(f"  {p.location()}: {p.kind}: {p.detail}", markup=False)


@contextmanager
def byte_progress(files: list[str], *, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """A progress bar over input bytes, shown only on a terminal and when not quiet."""
    if quiet or not stderr.is_terminal:
        yield None
        return
    total = 0
    for f in files:
        with suppress(OSError):  # stdin, or a file that vanished: the bar just runs short
            total += os.path.getsize(f)
    columns = (TextColumn("reading"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task("read", total=total or None)
        yield lambda n: progress.advance(task, n)
