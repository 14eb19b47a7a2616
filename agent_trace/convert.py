"""The conversion pipeline, one stream from input to output:

    ingest.iter_records      paths -> typed records, counted in a ReadReport
    layout.units.batches     records -> batches of complete sessions
    layout (draw_batch)      each batch -> a Chunk: tracks, events, flows, counters
    encode (write)           each chunk -> bytes, as soon as it is drawn

so memory follows the sessions active at once, not the length of the trace. `build_plan` is the
same layout over a whole set of records at once (pure: records in, plan out). `convert_files`
is the IO edge used by the CLIs.

Two layouts (`Layout`): `upstream` reproduces Dynamo's converter; `agent` draws the session tree
with flows and counters. Two formats (`OutputFormat`): Chrome JSON and Perfetto protobuf, both
encoded from the same chunks. The format defaults from the output's extension, the layout from
the format (JSON: upstream, protobuf: agent).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import orjson

from . import __version__
from .args import ArgsBuilder
from .encode.chrome_json import ChromeJsonWriter, write_chrome_json
from .encode.proto import Compression, ProtoWriter
from .ingest.reader import collect, iter_records, records_from_objects
from .layout.agent import AgentLayout
from .layout.plan import Chunk, Plan
from .layout.units import DEFAULT_POLICY, FlushPolicy, batches
from .layout.upstream import UpstreamLayout
from .model import Record, Records
from .options import ConvertOptions, Fix
from .report import DrawReport, NotDrawn, ReadReport


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


LayoutDrawer = UpstreamLayout | AgentLayout


def new_layout(layout: Layout, options: ConvertOptions) -> LayoutDrawer:
    return AgentLayout(options) if layout is Layout.AGENT else UpstreamLayout(options)


def _metadata(drawer: LayoutDrawer) -> dict[str, Any]:
    return drawer.metadata if isinstance(drawer, AgentLayout) else {}


def _sort_indices(layout: Layout, options: ConvertOptions) -> bool:
    return layout is Layout.AGENT or Fix.SORT_INDEX in options.fixes


def build_plan(records: Records, options: ConvertOptions, layout: Layout = Layout.UPSTREAM) -> Plan:
    """The whole of `records` laid out as one batch (pure)."""
    drawer = new_layout(layout, options)
    if records.payloads:
        drawer.draw.not_drawn[NotDrawn.PAYLOAD_ROW.value] += len(records.payloads)
    chunk = drawer.header()
    chunk.extend(drawer.draw_batch(records, last=True))
    return Plan(
        tracks=chunk.tracks,
        events=chunk.events,
        draw=drawer.draw,
        time_offset_us=_offset(chunk, options),
        big_ints_as_strings=Fix.BIG_INTS in options.fixes,
        sort_indices=_sort_indices(layout, options),
        metadata=_metadata(drawer),
        flows=chunk.flows,
        counters=chunk.counters,
    )


def _offset(first: Chunk, options: ConvertOptions) -> int:
    """Fix.REBASE_TIME: the earliest event of the first chunk written (see `rebase_policy`)."""
    if Fix.REBASE_TIME not in options.fixes or not first.events:
        return 0
    return min(e.ts for e in first.events)


def summary_dict(
    read: ReadReport,
    draw: DrawReport,
    options: ConvertOptions,
    plan: Plan | None = None,
    *,
    time_offset_us: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What we embed in outputs: deterministic (no clock, no host), so same input gives same bytes.
    The time offset and layout metadata come from `plan`, or are given (a plan drawn in parts)."""
    if plan is not None:
        time_offset_us, metadata = plan.time_offset_us, plan.metadata
    metadata = metadata or {}
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
    if time_offset_us:
        # Fix.REBASE_TIME: every ts had this subtracted; add it back for epoch µs.
        out["time_offset_us"] = time_offset_us
    if metadata.get("layout") == Layout.AGENT.value:
        out["layout"] = Layout.AGENT.value
        out["links"] = metadata.get("flows", {})
    return out


def _embedded_summary(
    read: ReadReport, draw: DrawReport, options: ConvertOptions, time_offset_us: int, metadata: dict[str, Any]
) -> dict[str, Any] | None:
    if options.embed_summary:
        return summary_dict(read, draw, options, time_offset_us=time_offset_us, metadata=metadata)
    # no report, but never drop what it takes to read the timestamps
    return {"time_offset_us": time_offset_us} if time_offset_us else None


@dataclass
class ConversionResult:
    files: list[str]
    read: ReadReport
    draw: DrawReport
    events_written: int
    output: str
    format: OutputFormat = OutputFormat.JSON
    layout: Layout = Layout.UPSTREAM


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
    policy: FlushPolicy | None = None,
) -> ConversionResult:
    """Read `files` (already expanded), write the trace to `output` ('-' for stdout).

    `format` defaults from the output's extension (JSON when it says nothing), `layout` from the
    format; `policy` says when sessions are complete (`layout.units`).
    """
    fmt = format or format_for_path(output) or OutputFormat.JSON
    lay = layout or default_layout(fmt)
    read = ReadReport()
    records = iter_records(files, read, strict=strict, progress=progress)
    with _opened(output) as fh:
        draw, written = convert_stream(records, read, fh, options, fmt, lay, pretty=pretty,
                                       policy=policy or default_policy(options))
    return ConversionResult(list(files), read, draw, written, str(output), fmt, lay)


def default_policy(options: ConvertOptions) -> FlushPolicy:
    """Sessions complete as `layout.units` says; with Fix.REBASE_TIME the first batch waits one
    idle window, so the offset (read off it) is the trace's start."""
    policy = DEFAULT_POLICY
    if Fix.REBASE_TIME in options.fixes:
        policy = replace(policy, hold_first_ms=policy.idle_ms)
    return policy


def convert_stream(
    records: Iterable[Record],
    read: ReadReport,
    out: BinaryIO,
    options: ConvertOptions,
    fmt: OutputFormat,
    layout: Layout,
    *,
    pretty: bool = False,
    policy: FlushPolicy = DEFAULT_POLICY,
) -> tuple[DrawReport, int]:
    """Lay out and write `records` batch by batch; returns the draw report and the number of
    trace events written. `read` is filled as `records` is consumed, and summarised at the end."""
    drawer = new_layout(layout, options)
    args_of = ArgsBuilder.for_options(options)
    header = drawer.header()
    writer: ChromeJsonWriter | ProtoWriter | None = None
    offset = 0
    for batch, last in _with_last(batches(records, drawer.draw, policy)):
        chunk = drawer.draw_batch(collect(batch, []), last=last)
        if writer is None:
            offset = _offset(chunk, options)
            writer = _writer(fmt, out, args_of, offset, layout, options, pretty)
            writer.write(header)
        writer.write(chunk)
    if writer is None:  # nothing to draw
        writer = _writer(fmt, out, args_of, 0, layout, options, pretty)
        writer.write(header)
    summary = _embedded_summary(read, drawer.draw, options, offset, _metadata(drawer))
    return drawer.draw, writer.close(summary)


def _writer(
    fmt: OutputFormat, out: BinaryIO, args_of: ArgsBuilder, offset: int, layout: Layout, options: ConvertOptions,
    pretty: bool,
) -> ChromeJsonWriter | ProtoWriter:
    if fmt is OutputFormat.PROTO:
        return ProtoWriter(out, args_of, offset=offset, compression=Compression.DEFLATE)
    return ChromeJsonWriter(out, args_of, offset=offset, big_ints=Fix.BIG_INTS in options.fixes,
                            sort_indices=_sort_indices(layout, options), pretty=pretty)


T = TypeVar("T")


def _with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Each item with whether it is the last."""
    it = iter(items)
    try:
        prev = next(it)
    except StopIteration:
        return
    for item in it:
        yield prev, False
        prev = item
    yield prev, True


@contextmanager
def _opened(output: str | Path) -> Iterator[BinaryIO]:
    """The output as a binary file ('-': stdout)."""
    if str(output) == "-":
        yield sys.stdout.buffer
        return
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb", buffering=1 << 20) as fh:
        yield fh


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
