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

from .model import LlmRequest, ToolCall, ToolEvent, ToolPhase

SYNTHETIC_US = 1_000


def ms_to_us(ms: float | int) -> int:
    """Upstream's conversion, bit for bit: round-half-even of the float product."""
    return int(round(float(ms) * 1000.0))


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
