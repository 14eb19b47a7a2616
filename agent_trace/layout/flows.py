"""Flow links between slices of the agent layout (pure). Which fields establish each link:

CALL    LLM request -> tool call. The request's `finish_reason_metadata.tool_calls[].id` equals the
        tool row's `tool.tool_call_id`, joined within one session (trace-format §5.5). When an id
        is listed by several requests of the session (ids reused), the tool call belongs to the
        latest of them that started at or before the tool call. An inferred tool call is linked to
        the request it was inferred from.
RESULT  tool call -> the LLM request that consumed its result: the first request of the same
        session that starts at or after the tool call ended and whose `agent_context.input_trigger`
        is `tool_result` (requests without `input_trigger`, from older Dynamo, qualify too). Tool
        calls whose end is unknown (unclosed starts, inferred calls of unknown duration) have none.
SPAWN   spawning tool call -> a subagent's first request. Dynamo records no id for this link; it
        is established from `parent_session_id` (or the era's parent field) plus time: among the
        parent session's tool calls that were running when the subagent's first request (or first
        tool event) started, the one whose end is closest to the subagent's last activity. Two
        subagents never share a spawning call while another candidate is free.

A flow never points backwards in time (target.ts >= source.ts); candidates that would are dropped.
Link counts, including what could not be linked, are returned for the draw report.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .plan import Event, EventKind, Flow, FlowKind

INFERRED, CALL, RESULT = EventKind.INFERRED_TOOL, FlowKind.CALL, FlowKind.RESULT

# How many later requests RESULT looks at for one with a qualifying input_trigger.
_RESULT_LOOKAHEAD = 64
_CONSUMING_TRIGGERS = (None, "tool_result")


@dataclass(slots=True, eq=False)
class SessionEvents:
    """What flows need of one session: its events, and its parent's `SessionEvents` if any."""

    requests: list[Event] = field(default_factory=list)  # request slices, ordered by ts
    tools: list[Event] = field(default_factory=list)  # harness tool slices and instants, and inferred tools
    parent: Any = None  # SessionEvents | None
    start_event: Event | None = None  # the subagent's first request (else first tool slice)
    end: int = 0  # the session's last activity (µs)


@dataclass
class FlowStats:
    tool_calls: int = 0  # tool slices and instants drawn
    calls_linked: int = 0
    results_linked: int = 0
    subagents: int = 0  # sessions with a parent that have events
    subagents_linked: int = 0
    dropped_backwards: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "tool_calls": self.tool_calls,
            "request_to_tool_linked": self.calls_linked,
            "tool_to_next_request_linked": self.results_linked,
            "subagents": self.subagents,
            "subagents_linked": self.subagents_linked,
            "dropped_backwards": self.dropped_backwards,
        }

    def add(self, other: FlowStats) -> None:
        """Count `other` in too (flows are linked batch by batch)."""
        self.tool_calls += other.tool_calls
        self.calls_linked += other.calls_linked
        self.results_linked += other.results_linked
        self.subagents += other.subagents
        self.subagents_linked += other.subagents_linked
        self.dropped_backwards += other.dropped_backwards


def _known_end(e: Event) -> int | None:
    """When the tool call really ended, or None if unknown."""
    s = e.subject
    if e.kind is EventKind.INFERRED_TOOL:
        return None if s.duration_unknown else e.ts + (e.dur or 0)
    if s.instant or s.unclosed:
        return None
    if s.synthetic:  # a zero-length tool drawn 1 ms wide: it ended where it started
        return e.ts
    return e.ts + (e.dur or 0)


def link_flows(sessions: Sequence[SessionEvents], first_id: int = 1) -> tuple[list[Flow], FlowStats]:
    """Flows with ids `first_id`, `first_id + 1`, ... (in link order), and the link counts."""
    stats = FlowStats()
    flows: list[Flow] = []

    def add(kind: FlowKind, source: Event, target: Event) -> bool:
        if target.ts < source.ts:
            stats.dropped_backwards += 1
            return False
        flows.append(Flow(first_id + len(flows), kind, source, target))
        return True

    for s in sessions:
        stats.tool_calls += len(s.tools)
        # Instants (tool starts never closed, drawn as `Tool start:` markers) take no flows: a
        # Chrome JSON flow binds to a slice that encloses it, and an instant encloses nothing.
        by_call: dict[str, list[Event]] = {}
        for req in s.requests:
            for call in req.subject.tool_calls:
                if call.id:
                    by_call.setdefault(call.id, []).append(req)
        requests = s.requests
        starts = [r.ts for r in requests]
        event_of = {id(r.subject): r for r in requests} if requests else {}
        n = len(starts)
        for tool in s.tools:
            if tool.dur is None:
                continue
            source = None
            if tool.kind is INFERRED:
                source = event_of.get(id(tool.subject.request))
            else:
                cid = tool.subject.event.tool_call_id
                candidates = by_call.get(cid) if cid else None
                if candidates:
                    if len(candidates) == 1:
                        source = candidates[0]
                    else:
                        at = bisect_right([c.ts for c in candidates], tool.ts)
                        source = candidates[at - 1] if at else candidates[0]
            if source is not None:
                if tool.ts < source.ts:
                    stats.dropped_backwards += 1
                else:
                    flows.append(Flow(first_id + len(flows), CALL, source, tool))
                    stats.calls_linked += 1
            end = _known_end(tool)
            if end is None:
                continue
            i = bisect_left(starts, end)
            for j in range(i, min(i + _RESULT_LOOKAHEAD, n)):
                req = requests[j]
                if req.subject.input_trigger in _CONSUMING_TRIGGERS:
                    flows.append(Flow(first_id + len(flows), RESULT, tool, req))  # req.ts >= end >= tool.ts
                    stats.results_linked += 1
                    break

    _link_subagents(sessions, add, stats)
    return flows, stats


def _link_subagents(sessions: Sequence[SessionEvents], add: Any, stats: FlowStats) -> None:
    children: dict[int, list[SessionEvents]] = {}
    parents: dict[int, SessionEvents] = {}
    for s in sessions:
        if s.parent is not None and s.start_event is not None:
            stats.subagents += 1
            children.setdefault(id(s.parent), []).append(s)
            parents[id(s.parent)] = s.parent
    for key, kids in children.items():
        parent = parents[key]
        spans: list[tuple[Event, int]] = []
        for t in parent.tools:
            end = _known_end(t) if t.dur is not None else None
            if end is not None:
                spans.append((t, end))
        pairs: list[tuple[int, int, int]] = []  # (score, child index, span index)
        best: dict[int, tuple[int, int]] = {}
        for ci, child in enumerate(kids):
            start = child.start_event.ts  # type: ignore[union-attr]
            for si, (t, end) in enumerate(spans):
                if t.ts <= start <= end:
                    score = abs(end - child.end)
                    pairs.append((score, ci, si))
                    if ci not in best or (score, si) < best[ci]:
                        best[ci] = (score, si)
        pairs.sort()
        taken_child: set[int] = set()
        taken_span: set[int] = set()
        chosen: dict[int, int] = {}
        for _, ci, si in pairs:
            if ci in taken_child or si in taken_span:
                continue
            chosen[ci] = si
            taken_child.add(ci)
            taken_span.add(si)
        for ci, (_, si) in best.items():
            chosen.setdefault(ci, si)
        for ci in sorted(chosen):
            if add(FlowKind.SPAWN, spans[chosen[ci]][0], kids[ci].start_event):
                stats.subagents_linked += 1
