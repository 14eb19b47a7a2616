"""`convert_to_perfetto.py`: a drop-in for Dynamo's own converter script.

Same positional inputs and flags as every upstream version (upstream-converter.md §2.1), same exit
codes and messages (§2.2), plus our options. Unlike upstream, `-o` is optional.
"""

from __future__ import annotations

import sys

import click

from .convert_cmd import run_convert
from .options import conversion_options


@click.command(
    name="convert_to_perfetto.py",
    help="Convert Dynamo request/agent trace JSONL(.gz) files, directories or globs to Perfetto JSON.",
)
@conversion_options
def command(**params: object) -> None:
    sys.exit(run_convert(params, dropin=True))


def main() -> None:
    command(prog_name="convert_to_perfetto.py")
