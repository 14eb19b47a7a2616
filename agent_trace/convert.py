"""The conversion pipeline: inputs -> records -> plan -> encoded trace.

`build_plan` is pure (records in, plan out). `convert_files` is the IO edge used by the CLIs:
it expands inputs, reads, lays out and writes, and returns the reports for display.

Two layouts (`Layout`): `upstream` reproduces Dynamo's converter; `agent` draws the session tree
with flows and counters. Two formats (`OutputFormat`): Chrome JSON and Perfetto protobuf, both
encoded from the same plan. The format defaults from the output's extension, the layout from
the format (JSON: upstream, protobuf: agent).
"""

from __future__ import annotations

import gc
import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from . import __version__
from .args import ArgsBuilder
from .encode.chrome_json import write_chrome_json
from .layout.agent import layout_agent
from .layout.plan import EventKind, Plan
from .layout.upstream import layout_upstream
from .model import Records
from .options import ConvertOptions, Fix
from .parse import RecordParser
from .reader import read_files
from .report import DrawReport, ReadReport
from .sources import STDIN


class OutputFormat(StrEnum):
    JSON = "json"  # Chrome trace-event JSON (Perfetto's legacy importer)
    PROTO = "proto"  # Perfetto protobuf (TrackEvent)


class Layout(StrEnum):
    UPSTREAM = "upstream"  # Dynamo's converter: one thread per (row, lane, kind)
    AGENT = "agent"  # session tree, subagents nested, flows and counters


PROTO_SUFFIXES = (".perfetto-trace", ".pftrace", ".pb")
JSON_SUFFIXES = (".json", ".json.gz")


def format_for_path(path: str | Path) -> OutputFormat | None:
    """The format an output name asks for, or None when its extension says nothing."""
    name = str(path).lower()
    if name.endswith(PROTO_SUFFIXES):
        return OutputFormat.PROTO
    if name.endswith(JSON_SUFFIXES):
        return OutputFormat.JSON
    return None


def default_layout(fmt: OutputFormat) -> Layout:
    return Layout.AGENT if fmt is OutputFormat.PROTO else Layout.UPSTREAM


def build_plan(records: Records, options: ConvertOptions, layout: Layout = Layout.UPSTREAM) -> Plan:
    if layout is Layout.AGENT:
        return layout_agent(records, options)
    return layout_upstream(records, options)


def summary_dict(
    read: ReadReport, draw: DrawReport, options: ConvertOptions, plan: Plan | None = None
) -> dict[str, Any]:
    """What we embed in outputs: deterministic (no clock, no host), so same input gives same bytes."""
    out: dict[str, Any] = {
        "tool": f"agent_trace {__version__}",
        "options": {
            "stages": options.stages,
            "markers": options.markers,
            "separate_stage_tracks": options.separate_stage_tracks,
            "fixes": sorted(f.value for f in options.fixes),
        },
        "input": read.to_dict(),
        "output": draw.to_dict(),
    }
    if plan is not None and plan.time_offset_us:
        # Fix.REBASE_TIME: every ts had this subtracted; add it back for epoch µs.
        out["time_offset_us"] = plan.time_offset_us
    if plan is not None and plan.metadata.get("layout") == Layout.AGENT.value:
        out["layout"] = Layout.AGENT.value
        out["links"] = plan.metadata.get("flows", {})
    return out


@contextmanager
def gc_paused(*, freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic collector while building large acyclic structures.

    Records, plans and arg dicts hold no reference cycles, but each of their hundreds of thousands
    of allocations counts towards the collector's thresholds, and every full collection rescans
    them all: on the large real trace that doubled conversion time. Reference counting still frees
    everything as usual.

    Whatever is still alive on the way out sits in the youngest generation, so the first
    allocation after re-enabling walks all of it (0.45 s for a kept model of the large real
    trace): free it inside the block, or `freeze` it out of the collector's reach (`gc.freeze`:
    everything alive then is never scanned again; right for acyclic data in a short process).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()


@dataclass
class ConversionResult:
    files: list[str]
    read: ReadReport
    draw: DrawReport
    events_written: int
    output: str
    format: OutputFormat = OutputFormat.JSON
    layout: Layout = Layout.UPSTREAM
    # What was read and drawn, with `keep_model=True` (None otherwise, so their memory goes as
    # soon as the conversion ends): for callers that want more from them, and for the CLI, which
    # keeps them until it exits rather than free them object by object (see cli.convert_cmd).
    records: Records | None = field(default=None, repr=False)
    plan: Plan | None = field(default=None, repr=False)


def convert_files(
    files: Sequence[str],
    output: str | Path,
    options: ConvertOptions,
    *,
    strict: bool = False,
    pretty: bool = False,
    progress: Callable[[int], None] | None = None,
    format: OutputFormat | None = None,
    layout: Layout | None = None,
    keep_model: bool = False,
) -> ConversionResult:
    """Read `files` (already expanded), write the trace to `output` ('-' for stdout).

    `keep_model` keeps the records and plan on the result, frozen out of the cyclic collector
    (see `gc_paused`): neither freeing nor scanning them then costs anything, which suits a
    process that ends soon after (the CLI). Otherwise they are freed before returning.

    `format` defaults from the output's extension (JSON when it says nothing), `layout` from the
    format.
    """
    fmt = format or format_for_path(output) or OutputFormat.JSON
    lay = layout or default_layout(fmt)
    with gc_paused(freeze=keep_model):
        result = _convert(
            files, output, options, strict=strict, pretty=pretty, progress=progress, fmt=fmt, layout=lay
        )
        if not keep_model:
            result.records = result.plan = None  # freed now, while the collector is paused
    return result


def _convert(
    files: Sequence[str],
    output: str | Path,
    options: ConvertOptions,
    *,
    strict: bool,
    pretty: bool,
    progress: Callable[[int], None] | None,
    fmt: OutputFormat = OutputFormat.JSON,
    layout: Layout = Layout.UPSTREAM,
) -> ConversionResult:
    args_of = ArgsBuilder.for_options(options)
    with _writer(fmt, options, args_of, pretty, files) as (write, file_done):
        records, read = read_files(files, strict=strict, progress=progress, file_done=file_done)
        plan = build_plan(records, options, layout)
        summary: dict[str, Any] | None
        if options.embed_summary:
            summary = summary_dict(read, plan.draw, options, plan)
        else:  # no report, but never drop what it takes to read the timestamps
            summary = {"time_offset_us": plan.time_offset_us} if plan.time_offset_us else None
        if str(output) == "-":
            written = write(plan, sys.stdout.buffer, summary=summary)
        else:
            path = Path(output)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb", buffering=1 << 20) as fh:
                written = write(plan, fh, summary=summary)
    return ConversionResult(list(files), read, plan.draw, written, str(output), fmt, layout, records, plan)


def request_kinds(options: ConvertOptions) -> tuple[EventKind, ...]:
    """The kinds of request-drawn events a layout can emit with `options`."""
    kinds = [EventKind.REQUEST]
    if options.stages:
        kinds += (EventKind.STAGE_WAIT, EventKind.STAGE_PREFILL, EventKind.STAGE_DECODE)
    if options.markers:
        kinds.append(EventKind.FIRST_TOKEN)
    return tuple(kinds)


@contextmanager
def _writer(
    fmt: OutputFormat, options: ConvertOptions, args_of: ArgsBuilder, pretty: bool, files: Sequence[str]
) -> Iterator[tuple[Callable[..., int], Callable[[Records], None] | None]]:
    """`write(plan, fh, summary=...)` for `fmt`, and what to call after each input file is read;
    entered before anything is read.

    For protobuf, the slices' debug annotations are encoded from the records as they are read, on
    the second core while the caller reads on and lays out (see `proto_args.AheadEncoder`);
    `write` waits for them. Leaving early stops that work.
    """
    if fmt is not OutputFormat.PROTO:
        yield partial(write_chrome_json, args_of=args_of, pretty=pretty, parallel=True), None
        return
    from .encode.proto import Compression, write_perfetto_proto
    from .encode.proto_args import AheadEncoder

    ahead = AheadEncoder(request_kinds(options), args_of, [_size(f) for f in files])

    def write(plan: Plan, fh: BinaryIO, *, summary: dict[str, Any] | None) -> int:
        return write_perfetto_proto(
            plan, fh, args_of, summary=summary, parallel=True, compression=Compression.DEFLATE,
            ahead=ahead.result(),
        )

    try:
        yield write, ahead.records_read
    finally:
        ahead.cancel()


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path) if path != STDIN else None
    except OSError:
        return None


def records_from_objects(objects: Iterable[Any], *, strict: bool = False) -> tuple[Records, ReadReport]:
    """Parse already-decoded JSON objects (enveloped or bare), as the reader would."""
    records = Records(files=["<objects>"], requests=[], tools=[], payloads=[])
    report = ReadReport()
    parser = RecordParser(records, report, strict=strict)
    parser.path = "<objects>"
    for line, obj in enumerate(objects, start=1):
        parser.line = line
        report.lines += 1
        parser.parse(obj)
    return records, report


def convert_records(
    objects: Iterable[Any],
    *,
    include_stages: bool = True,
    include_markers: bool = False,
    separate_stage_tracks: bool = False,
    fixes: Iterable[Fix] = (),
) -> tuple[dict[str, Any], int]:
    """Upstream's importable API: records in, `(trace_document, converted_count)` out.

    The document is exactly what the CLI writes, without the embedded summary.
    """
    records, _ = records_from_objects(objects)
    options = ConvertOptions(
        stages=include_stages,
        markers=include_markers,
        separate_stage_tracks=separate_stage_tracks,
        fixes=frozenset(fixes),
        embed_summary=False,
    )
    plan = build_plan(records, options)
    buf = io.BytesIO()
    write_chrome_json(plan, buf, ArgsBuilder.for_options(options))
    return orjson.loads(buf.getvalue()), plan.draw.converted
