"""Click options shared by `agent-trace convert` and the drop-in `convert_to_perfetto.py`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..options import ALL_FIXES, ConvertOptions, Fix

FIX_HELP = "; ".join(f.value for f in Fix)


def conversion_options(func: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.argument("inputs", nargs=-1, required=True),
        click.option("-o", "--output", help="Output path ('-' for stdout). Default: next to the first input."),
        click.option("--include-markers", is_flag=True, help="Emit first-token instant markers."),
        click.option("--include-stages", is_flag=True, help="Accepted for compatibility; stages are on by default."),
        click.option("--no-stages", is_flag=True, help="Emit only whole-request slices."),
        click.option(
            "--separate-stage-tracks", is_flag=True, help="Put stages and markers on a `stages` track per lane."
        ),
        click.option("--pretty", is_flag=True, help="Indented JSON with sorted keys."),
        click.option("--strict", is_flag=True, help="Fail (exit 2) on the first skipped line or damaged input."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar and no report table."),
        click.option(
            "--fix",
            "fixes",
            multiple=True,
            metavar="NAME",
            help=f"Correct an upstream quirk (repeatable; 'all' for every one): {FIX_HELP}.",
        ),
        click.option("--no-summary", is_flag=True, help="Do not embed the read/draw report under `metadata`."),
        click.option(
            "--format",
            "output_format",
            type=click.Choice(["json", "proto"]),
            default=None,
            help="Output format: Chrome JSON or Perfetto protobuf. Default: from the output's extension "
            "(.perfetto-trace, .pftrace, .pb: proto; otherwise json).",
        ),
        click.option(
            "--layout",
            type=click.Choice(["upstream", "agent"]),
            default=None,
            help="Track layout: upstream (Dynamo's converter) or agent (session tree, subagents nested, "
            "flows, counters). Default: upstream for json, agent for proto.",
        ),
    ]
    for deco in reversed(decorators):
        func = deco(func)
    return func


def parse_fixes(values: tuple[str, ...]) -> frozenset[Fix]:
    out: set[Fix] = set()
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name == "all":
                out |= ALL_FIXES
                continue
            try:
                out.add(Fix(name))
            except ValueError:
                raise click.BadParameter(f"unknown fix {name!r}; choose from: all, {FIX_HELP}", param_hint="--fix") from None
    return frozenset(out)


def build_options(
    *, include_markers: bool, no_stages: bool, separate_stage_tracks: bool, fixes: tuple[str, ...], no_summary: bool
) -> ConvertOptions:
    return ConvertOptions(
        stages=not no_stages,
        markers=include_markers,
        separate_stage_tracks=separate_stage_tracks,
        fixes=parse_fixes(fixes),
        embed_summary=not no_summary,
    )
