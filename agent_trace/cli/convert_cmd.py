"""The conversion command body, shared by `agent-trace convert` and `convert_to_perfetto.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..convert import Layout, OutputFormat, convert_files, format_for_path
from ..errors import InputError, MissingInputError, NoInputError
from ..ingest.sources import STDIN, default_output_path, expand_inputs
from .options import build_options
from .render import byte_progress, show_report, stderr


def run_convert(params: dict, *, dropin: bool) -> int:
    """Returns the exit code. Messages for missing inputs match upstream's exactly."""
    options = build_options(
        include_markers=params["include_markers"],
        no_stages=params["no_stages"],
        separate_stage_tracks=params["separate_stage_tracks"],
        fixes=params["fixes"],
        no_summary=params["no_summary"],
    )
    try:
        files = expand_inputs(params["inputs"])
    except (MissingInputError, NoInputError) as exc:
        click.echo(f"error: {exc.detail}", err=True)
        return 2
    output = params["output"]
    fmt = params.get("output_format")
    layout = params.get("layout")
    if output is None:
        if files[0] == STDIN:
            click.echo("error: reading stdin needs -o/--output", err=True)
            return 2
        suffix = ".perfetto-trace" if fmt == OutputFormat.PROTO.value else ".perfetto.json"
        output = str(default_output_path(files[0], suffix))
    out_format = OutputFormat(fmt) if fmt else (format_for_path(output) or OutputFormat.JSON)
    if out_format is OutputFormat.PROTO and params.get("pretty"):
        click.echo("error: --pretty applies to JSON output only", err=True)
        return 2
    quiet = params["quiet"]
    try:
        with byte_progress(files, quiet=quiet) as progress:
            result = convert_files(
                files,
                output,
                options,
                strict=params["strict"],
                pretty=params["pretty"],
                progress=progress,
                format=out_format,
                layout=Layout(layout) if layout else None,
            )
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    show_report(result.read, result.draw, quiet=quiet)
    where = "stdout" if output == "-" else Path(output)  # upstream prints the Path: './o.json' -> 'o.json'
    # Upstream's exact success line, which scripts grep for.
    print(f"wrote {result.draw.converted} trace events from {len(files)} input file(s) to {where}", file=sys.stderr)
    if not quiet and result.read.problem_count:
        stderr.print(
            f"[yellow]{result.read.problem_count:,} problem(s) in the input were skipped and counted "
            "(see the table above; --strict makes them fatal)[/]"
        )
    return 0
