"""`agent-trace`: the command-line front door. Each command is a few lines over the public API."""

from __future__ import annotations

import sys

import click
import orjson

from .. import __version__
from ..validate import DecodeError, decode_trace, looks_like_json, validate_chrome, validate_proto
from .analysis_cmds import export_command, summary_command
from .compare_cmd import compare_command
from .convert_cmd import run_convert
from .options import conversion_options


@click.group(help="NVIDIA Dynamo agent/request traces as Perfetto timelines, tables and CI reports.")
@click.version_option(__version__, prog_name="agent-trace")
def cli() -> None:
    pass


@cli.command(help="Convert traces (files, directories, globs, '-') to a Perfetto trace.")
@conversion_options
def convert(**params: object) -> None:
    sys.exit(run_convert(params, dropin=False))


@cli.command(help="Check an emitted trace against the layout invariants (exit 1 on violations).")
@click.argument("trace", type=click.Path(exists=True, dir_okay=False))
def validate(trace: str) -> None:
    with open(trace, "rb") as fh:
        data = fh.read()
    if not looks_like_json(data):  # Perfetto protobuf (.pftrace / .perfetto-trace)
        try:
            decoded = decode_trace(data)
        except DecodeError as exc:
            click.echo(f"error: {trace}: neither JSON nor a Perfetto protobuf trace: {exc}", err=True)
            sys.exit(2)
        _report(trace, validate_proto(decoded), f"{decoded.packets} packets, {len(decoded.slices)} slices, protobuf")
        return
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        click.echo(f"error: {trace}: not JSON: {exc}", err=True)
        sys.exit(2)
    _report(trace, validate_chrome(doc), f"{len(doc.get('traceEvents', []))} events")


def _report(trace: str, violations: list, summary: str) -> None:
    """Print each violation; exit 1 if there are any, else say ok."""
    for v in violations:
        click.echo(f"{trace}: {v}")
    if violations:
        sys.exit(1)
    click.echo(f"{trace}: ok ({summary})")


cli.add_command(summary_command)
cli.add_command(export_command)
cli.add_command(compare_command)


def main() -> None:
    cli(prog_name="agent-trace")
