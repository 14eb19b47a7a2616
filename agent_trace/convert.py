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
from .layout.agent import AgentPart, build_agent, layout_agent, merge_part_reports, prepare_agent, split_agent
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
    # `plan` is None when the layout was drawn in parts (protobuf, agent layout, large inputs);
    # `layout_state` holds what was drawn here then.
    records: Records | None = field(default=None, repr=False)
    plan: Plan | None = field(default=None, repr=False)
    layout_state: list[Any] = field(default_factory=list, repr=False)  # kept with the model


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
            result.layout_state = []
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
    ahead = None
    if fmt is OutputFormat.PROTO:
        # The slices' debug annotations are encoded from the records as they are read, on the
        # second core while this process reads on and lays out (see `proto_args.AheadEncoder`).
        from .encode.proto_args import AheadEncoder

        ahead = AheadEncoder(request_kinds(options), args_of, [_size(f) for f in files])
    try:
        records, read = read_files(files, strict=strict, progress=progress,
                                   file_done=ahead.records_read if ahead is not None else None)
        with _opened(output) as fh:
            if ahead is not None and layout is Layout.AGENT:
                written, draw, whole, kept = _write_agent_proto(records, read, options, args_of, ahead, fh)
                return ConversionResult(list(files), read, draw, written, str(output), fmt, layout, records,
                                        whole, kept)
            plan = build_plan(records, options, layout)
            summary = _embedded_summary(read, plan.draw, options, plan.time_offset_us, plan.metadata)
            if ahead is not None:
                from .encode.proto import Compression, write_perfetto_proto

                written = write_perfetto_proto(plan, fh, args_of, summary=summary, parallel=True,
                                               compression=Compression.DEFLATE, ahead=ahead.result())
            else:
                written = write_chrome_json(plan, fh, args_of, pretty=pretty, summary=summary, parallel=True)
    finally:
        if ahead is not None:
            ahead.cancel()  # stops work nobody will wait for (an error on the way)
    return ConversionResult(list(files), read, plan.draw, written, str(output), fmt, layout, records, plan)


# Below this weight (`layout.agent.split_agent`: a unit is about 2 µs of drawing and encoding)
# a protobuf agent layout is drawn in one piece: a second process would cost more than it saves.
AGENT_PARALLEL_MIN_WEIGHT = 50_000


def _write_agent_proto(
    records: Records, read: ReadReport, options: ConvertOptions, args_of: ArgsBuilder, ahead: Any, fh: BinaryIO
) -> tuple[int, DrawReport, Plan | None, list[Any]]:
    """Lay out and write the agent layout as protobuf, drawn in parts: the second part is drawn
    and encoded in a forked child while this process does the first (`split_agent`). Returns
    the track events written, the draw report, the plan if it was drawn whole, and what was
    drawn here (to keep with the model)."""
    from .encode.proto import Compression, write_perfetto_proto_parts

    prep = prepare_agent(records, options)
    ahead.finish(records)  # before any fork: the parts wait for what it encodes
    kept: list[Any] = [prep]

    def draw_part(part: AgentPart) -> Plan:
        plan = build_agent(prep, part)
        kept.append(plan)  # (in this process) freed with the rest of the model
        return plan

    def summary_of(reports: list[tuple[DrawReport, dict[str, Any]]]) -> dict[str, Any] | None:
        draw, metadata = merge_part_reports(reports)
        return _embedded_summary(read, draw, options, prep.time_offset_us, metadata)

    parts = split_agent(prep, 2, AGENT_PARALLEL_MIN_WEIGHT)
    written, reports = write_perfetto_proto_parts(
        [partial(draw_part, part) for part in parts], fh, args_of, summary_of=summary_of,
        compression=Compression.DEFLATE, ahead=ahead.result,
    )
    whole = kept[1] if len(parts) == 1 else None
    return written, merge_part_reports(reports)[0], whole, kept


def request_kinds(options: ConvertOptions) -> tuple[EventKind, ...]:
    """The kinds of request-drawn events a layout can emit with `options`."""
    kinds = [EventKind.REQUEST]
    if options.stages:
        kinds += (EventKind.STAGE_WAIT, EventKind.STAGE_PREFILL, EventKind.STAGE_DECODE)
    if options.markers:
        kinds.append(EventKind.FIRST_TOKEN)
    return tuple(kinds)


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
