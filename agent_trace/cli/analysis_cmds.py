"""`agent-trace summary` and `agent-trace export`: thin commands over `agent_trace.analysis`.

Tables and data go to stdout (or `-o`); the read report and messages go to stderr. Exit codes:
0 ok, 2 usage or input error.

polars and the analysis package are imported when a command runs, not when the CLI starts, so
`agent-trace convert` does not pay for them.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson
from rich.console import Console
from rich.table import Table

from ..errors import InputError
from .render import show_report, stderr

if TYPE_CHECKING:
    import polars as pl

    from ..analysis import Trace

# Mirrors agent_trace.analysis.summary (a test pins them equal) so `--help` needs no polars.
BY_CHOICES = ("model", "session", "tool")
STATS = ("count", "avg", "min", "max", "std", "p50", "p90", "p95", "p99")
FORMATS = ("table", "json", "csv", "parquet")
SCOPE_TITLES = {"request": "requests", "session": "sessions", "tool": "tools"}


def _load(inputs: tuple[str, ...], *, strict: bool, quiet: bool) -> Trace:
    """Load or exit 2 with the reader's message; show the read report when something was skipped."""
    from ..analysis import load

    try:
        trace = load(list(inputs), strict=strict)
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if not quiet and trace.report.problem_count:
        show_report(trace.report)
    return trace


def _fmt(v: float | int | None) -> str:
    """Compact but exact enough: 1,595 · 49.3 · 0.905."""
    if v is None:
        return "-"
    if isinstance(v, int) or v.is_integer():
        return f"{int(v):,}"
    size = abs(v)
    if size >= 1000:
        return f"{v:,.0f}"
    return f"{v:.1f}" if size >= 10 else f"{v:.3f}"


def summary_tables(frame: pl.DataFrame) -> list[Table]:
    """One rich table per scope, AIPerf's layout: a row per (group, metric), a column per statistic."""
    import polars as pl

    tables = []
    for scope in SCOPE_TITLES:
        part = frame.filter(pl.col("scope") == scope)
        if part.height == 0:
            continue
        metrics = part["metric"].unique(maintain_order=True).to_list()
        single = len(metrics) == 1
        title = SCOPE_TITLES[scope] + (f": {metrics[0]}" if single else "")
        table = Table(title=title, title_justify="left")
        table.add_column("group", no_wrap=True)
        if not single:
            table.add_column("metric", no_wrap=True)
        for stat in STATS:
            table.add_column(stat, justify="right", no_wrap=True)
        previous = None
        for row in part.iter_rows(named=True):
            group = row["group"] if row["group"] != previous else ""
            previous = row["group"]
            head = [group] if single else [group, row["metric"]]
            table.add_row(*head, *(_fmt(row[s]) for s in STATS))
        tables.append(table)
    return tables


@click.command("summary", help="AIPerf-style statistics of requests, sessions and tools.")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--by", type=click.Choice(BY_CHOICES), help="Group requests by model or session, or tools by class and status.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--include-cancelled", is_flag=True, help="Count client-cancelled requests in request metrics.")
@click.option("--strict", is_flag=True, help="Fail (exit 2) on the first skipped line or damaged input.")
@click.option("-q", "--quiet", is_flag=True, help="No report of skipped input on stderr.")
def summary_command(
    inputs: tuple[str, ...], by: str | None, fmt: str, output: str | None, include_cancelled: bool,
    strict: bool, quiet: bool,
) -> None:
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs -o/--output")
    from ..analysis import summary

    trace = _load(inputs, strict=strict, quiet=quiet)
    frame = summary(trace, by, include_cancelled=include_cancelled)  # type: ignore[arg-type]
    if frame.height == 0 and not quiet:
        stderr.print("no requests, sessions or tools to summarise", markup=False)
    if fmt == "parquet":
        assert output is not None
        frame.write_parquet(output)
        return
    if fmt == "json":
        data = orjson.dumps(frame.to_dicts(), option=orjson.OPT_INDENT_2) + b"\n"
    elif fmt == "csv":
        data = frame.write_csv().encode()
    else:
        # A terminal gets rich's colours at its width; a pipe or a file plain text, 160 wide.
        buf = io.StringIO()
        console = Console(highlight=False)
        if output is not None or not console.is_terminal:
            console = Console(file=buf, width=160, highlight=False, color_system=None)
        for table in summary_tables(frame):
            console.print(table)
        if console.file is not buf:
            return
        data = buf.getvalue().encode()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        Path(output).write_bytes(data)


@click.command("export", help="Write the analysis tables as Parquet files (one per table) into a directory.")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--critical-path/--no-critical-path", default=True, show_default=True,
              help="Also write critical_path.parquet.")
@click.option("--strict", is_flag=True, help="Fail (exit 2) on the first skipped line or damaged input.")
@click.option("-q", "--quiet", is_flag=True, help="No report of skipped input, no summary line.")
def export_command(inputs: tuple[str, ...], out_dir: str, critical_path: bool, strict: bool, quiet: bool) -> None:
    trace = _load(inputs, strict=strict, quiet=quiet)
    tables = export_tables(trace, Path(out_dir), with_critical_path=critical_path)
    if not quiet:
        stderr.print(
            f"wrote {len(tables)} tables to {out_dir}: "
            + ", ".join(f"{name} ({rows:,} rows)" for name, rows in tables.items()),
            markup=False,
        )


def export_tables(trace: Trace, directory: Path, *, with_critical_path: bool = True) -> dict[str, int]:
    """Write `<name>.parquet` per table and `read_report.json`; returns rows written per table."""
    from ..analysis import critical_path as _critical_path

    directory.mkdir(parents=True, exist_ok=True)
    frames = {
        "requests": trace.requests,
        "tools": trace.tools,
        "sessions": trace.sessions,
        "stages": trace.stages,
    }
    if with_critical_path:
        frames["critical_path"] = _critical_path(trace)
    for name, frame in frames.items():
        frame.write_parquet(directory / f"{name}.parquet")
    report = orjson.dumps(trace.report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
    (directory / "read_report.json").write_bytes(report)
    return {name: frame.height for name, frame in frames.items()}
