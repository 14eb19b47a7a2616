"""Tool spans from tool events, and tool spans inferred from the calls an LLM asked for (pure).

Pairing follows upstream §10 by default: events sorted by time, a `tool_start` pushed per
(row, tool_call_id), a terminal event popping the most recent start (LIFO). Slice bounds take the
first rule that applies: explicit start+end, start+duration, end−duration, the paired start's
time, else a 1 ms synthetic slice. Starts never closed become instants.

`Fix.TOOL_PAIRING` pairs a terminal event with the start that has its `started_at_unix_ms`, else
the oldest open start, so retries that reuse an id pair correctly.

Inference follows upstream §11 (RT3+): each call in `finish_reason_metadata.tool_calls` without a
harness `tool_end`/`tool_error` of the same (row, id) becomes a slice from the request's end to
the row's next request, or a 1 ms `duration_unknown` slice when there is none or it overlaps.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from ..model import LlmRequest, ToolCall, ToolEvent, ToolPhase
from ..options import Fix
from ..report import DrawReport, NotDrawn
from .bounds import SYNTHETIC_US, ms_to_us, request_bounds
from .rows import RowMemo


@dataclass(slots=True, eq=False)
class ToolSpan:
    row: Hashable
    event: ToolEvent  # the terminal event, or the start for an unclosed start
    start: ToolEvent | None  # the paired start, if any
    ts: int
    dur: int  # 1 for an instant (the lane packer's view)
    synthetic: bool = False
    instant: bool = False  # an unclosed start drawn as `Tool start:` instant
    unclosed: bool = False  # an unclosed start drawn as an open slice (Fix.INFERENCE)


@dataclass(slots=True, eq=False)
class InferredTool:
    row: Hashable
    row_label: str
    request: LlmRequest
    call: ToolCall
    ts: int
    dur: int
    next_request: LlmRequest | None
    duration_unknown: bool


def _label(value: object, fallback: str) -> str:
    if value is None:
        return fallback
    text = str(value)
    return text or fallback


def pair_tools(
    tools: list[ToolEvent],
    row_of: Callable[[ToolEvent], Hashable],
    *,
    by_start_time: bool = False,
    open_until_us: int | None = None,
) -> list[ToolSpan]:
    """Pair tool events into spans, in upstream's emission order."""
    keyed = sorted(((ms_to_us(t.event_time_ms), i, t) for i, t in enumerate(tools)), key=lambda x: (x[0], x[1]))
    spans: list[ToolSpan] = []
    open_starts: dict[tuple[Hashable, str], list[tuple[int, ToolEvent]]] = {}
    for event_us, _, t in keyed:
        row = row_of(t)
        key = (row, _label(t.tool_call_id, "unknown-tool-call"))
        if t.phase is ToolPhase.START:
            open_starts.setdefault(key, []).append((event_us, t))
            continue
        stack = open_starts.get(key)
        matched: tuple[int, ToolEvent] | None = None
        if stack:
            matched = _take_start(stack, t, by_start_time)
        spans.append(_terminal_span(row, t, event_us, matched))
    for (row, _), stack in open_starts.items():
        for event_us, start in stack:
            if open_until_us is not None:
                end = max(open_until_us, event_us + 1)
                spans.append(ToolSpan(row, start, None, event_us, end - event_us, unclosed=True))
            else:
                spans.append(ToolSpan(row, start, None, event_us, 1, instant=True))
    return spans


def _take_start(
    stack: list[tuple[int, ToolEvent]], terminal: ToolEvent, by_start_time: bool
) -> tuple[int, ToolEvent]:
    if not by_start_time:
        return stack.pop()
    if terminal.started_ms is not None:
        for i, (_, start) in enumerate(stack):
            if start.started_ms == terminal.started_ms or start.event_time_ms == terminal.started_ms:
                return stack.pop(i)
    return stack.pop(0)


def _terminal_span(row: Hashable, t: ToolEvent, event_us: int, matched: tuple[int, ToolEvent] | None) -> ToolSpan:
    started = ms_to_us(t.started_ms) if t.started_ms is not None else None
    ended = ms_to_us(t.ended_ms) if t.ended_ms is not None else None
    duration = ms_to_us(t.duration_ms) if t.duration_ms is not None else None
    start_event = matched[1] if matched else None
    if started is not None and ended is not None and ended > started:
        ts, dur = started, ended - started
    elif started is not None and duration is not None and duration > 0:
        ts, dur = started, duration
    elif duration is not None and duration > 0:
        end = ended if ended is not None else event_us
        ts = max(0, end - duration)
        dur = end - ts
    elif matched is not None and event_us > matched[0]:
        ts, dur = matched[0], event_us - matched[0]
    else:
        ts = matched[0] if matched is not None else event_us
        return ToolSpan(row, t, start_event, ts, SYNTHETIC_US, synthetic=True)
    return ToolSpan(row, t, start_event, ts, max(1, dur))


@dataclass(slots=True)
class PlacedRequest:
    """A request with its upstream-computed µs bounds and its row."""

    request: LlmRequest
    row: Hashable
    row_label: str
    ts: int
    dur: int
    start_estimated: bool = False


def infer_tools(
    placed: list[PlacedRequest],
    tools: list[ToolEvent],
    tool_row_of: Callable[[ToolEvent], Hashable],
    *,
    any_harness_row_suppresses: bool = False,
) -> list[InferredTool]:
    """Inferred tool slices in upstream's emission order (rows by first appearance, then by start)."""
    suppress_phases = {ToolPhase.END, ToolPhase.ERROR}
    if any_harness_row_suppresses:
        suppress_phases.add(ToolPhase.START)
    real = {(tool_row_of(t), t.tool_call_id) for t in tools if t.phase in suppress_phases and t.tool_call_id}
    by_row: dict[Hashable, list[PlacedRequest]] = {}
    for p in placed:
        by_row.setdefault(p.row, []).append(p)
    out: list[InferredTool] = []
    for row, reqs in by_row.items():
        reqs.sort(key=lambda p: p.ts)
        for i, p in enumerate(reqs):
            if not p.request.tool_calls:
                continue
            nxt = reqs[i + 1] if i + 1 < len(reqs) else None
            start = p.ts + p.dur
            end = nxt.ts if nxt is not None else start
            unknown = nxt is None or end <= start
            for call in p.request.tool_calls:
                if (row, _label(call.id, "")) in real:
                    continue
                out.append(
                    InferredTool(
                        row, p.row_label, p.request, call, start,
                        SYNTHETIC_US if unknown else end - start,
                        nxt.request if nxt is not None else None,
                        unknown,
                    )
                )
    return out


def drawable_requests(
    requests: list[LlmRequest], rows: RowMemo, fixes: frozenset[Fix], draw: DrawReport
) -> list[PlacedRequest]:
    """Requests a layout draws, placed on their rows and in time; agent-schema rows without
    agent_context are counted as not drawn (upstream skips them)."""
    placed: list[PlacedRequest] = []
    fix_start = Fix.REQUEST_START in fixes
    for r in requests:
        if r.agent_schema and not r.has_context:
            draw.not_drawn[NotDrawn.AGENT_SCHEMA_WITHOUT_CONTEXT.value] += 1
            continue
        bounds = request_bounds(r, fix_start)
        if bounds is None:  # the parser already rejects these; kept for direct callers
            continue
        row = rows.request(r)
        placed.append(PlacedRequest(r, row, row[1], bounds[0], bounds[1], bounds[2]))
    return placed


def drawable_tools(tools: list[ToolEvent], fixes: frozenset[Fix], draw: DrawReport) -> list[ToolEvent]:
    """Tool rows a layout draws; rows without agent_context are counted as not drawn (upstream
    skips them) unless `Fix.UNATTRIBUTED` puts them on one `unattributed` row."""
    out: list[ToolEvent] = []
    for t in tools:
        if not t.has_context and Fix.UNATTRIBUTED not in fixes:
            reason = NotDrawn.AGENT_SCHEMA_WITHOUT_CONTEXT if t.agent_schema else NotDrawn.TOOL_WITHOUT_CONTEXT
            draw.not_drawn[reason.value] += 1
            continue
        out.append(t)
    return out


def activity_end(placed: list[PlacedRequest], tools: list[ToolEvent]) -> int | None:
    """The latest request end or tool event, µs: where open tool slices end (Fix.INFERENCE)."""
    ends = [p.ts + p.dur for p in placed] + [ms_to_us(t.event_time_ms) for t in tools]
    return max(ends) if ends else None


def timeline_tools(
    placed: list[PlacedRequest],
    tools: list[ToolEvent],
    rows: RowMemo,
    fixes: frozenset[Fix],
    open_until: int | None = None,
) -> tuple[list[ToolSpan], list[InferredTool]]:
    """The tool spans (paired) and inferred calls a layout draws, under `fixes` (both layouts).
    With Fix.INFERENCE, unclosed starts are open slices up to `open_until` (by default the end
    of these records' activity)."""
    if Fix.INFERENCE in fixes:
        if open_until is None:
            open_until = activity_end(placed, tools)
    else:
        open_until = None
    spans = pair_tools(tools, rows.tool, by_start_time=Fix.TOOL_PAIRING in fixes, open_until_us=open_until)
    # Inference exists only in the request-schema converter (RT2+); AT7 never inferred.
    inferable = [p for p in placed if not p.request.agent_schema]
    inferred = infer_tools(inferable, tools, rows.tool, any_harness_row_suppresses=Fix.INFERENCE in fixes)
    return spans, inferred
