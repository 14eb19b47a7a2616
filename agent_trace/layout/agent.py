"""The agent layout: one track group per root session, subagents nested under their parent (pure).

Slices, names, categories and args are upstream's (`layout.upstream` computes the same request
bounds, stage clamping, tool pairing and inference, and honours the same `Fix`es); only where
things are drawn differs, plus flows and counters. The track tree, in explicit order:

    Dynamo agent trace                          (GROUP; the protobuf root, absent from JSON)
      all sessions                              (PROCESS, pid 1)
        requests in flight, tools in flight,    (COUNTER, over every session)
        queue depth, KV hit rate, output tokens/s
      <root session>                            (PROCESS, pid 2.., roots ordered by first activity)
        <root> requests                         (REQUEST, one track per lane)
        <root> requests in flight               (COUNTER: this session and its subagents)
        <root> stages                           (STAGES, one track per request lane)
        <root> tools                            (TOOLS, one track per lane)
        <root> tools in flight                  (COUNTER: this session and its subagents)
        <child session>                         (GROUP, children ordered by first activity)
          <child> requests / stages / tools     (same pid as the root: threads of its process)
          <grandchild> ...

Lanes: slices on one track must nest, and requests (or tools) of one session overlap, so each
kind is packed into lanes per session (`LanePacker`); stages use their request's lane. Every lane
of a kind shares `shared_name` (`<session> requests`): the protobuf encoder names all lanes so and
Perfetto draws them as one merged track. Chrome JSON threads cannot merge, so lanes after the
first are named `<session> [lane N] requests` (upstream's spelling); a lane's name never depends
on later lanes.

`rank` increases depth-first over the whole tree, so it orders siblings (protobuf) and is also
the Chrome `process_sort_index`/`thread_sort_index`. Flows are linked by `layout.flows`, counters
sampled by `layout.counters`; a counter track that would have no sample is left out. Unclosed
tool starts, when drawn as instants, take no lane time beyond 1 µs and no flows.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, cast

from ..model import Records
from ..options import ConvertOptions, Fix
from ..report import DrawReport, NotDrawn
from ..spans import InferredTool, PlacedRequest, ToolSpan
from . import counters as counter_series
from .flows import SessionEvents, link_flows
from .lanes import LanePacker
from .plan import (
    CAT_LLM,
    CAT_MARKER,
    CAT_TOOL,
    CAT_TOOL_MARKER,
    CounterSeries,
    Event,
    EventKind,
    Plan,
    Track,
    TrackKind,
)
from .upstream import (
    UNATTRIBUTED,
    Row,
    RowMemo,
    _emit_stages,
    drawable_requests,
    drawable_tools,
    timeline_tools,
)

ROOT_NAME = "Dynamo agent trace"
GLOBAL_NAME = "all sessions"

REQUEST = EventKind.REQUEST

# Within a session's tool lanes, upstream's kind order at equal start: inferred < tool < instant.
_INFERRED, _TOOL, _INSTANT = range(3)


@dataclass(slots=True, eq=False)
class _Session:
    row: Row
    label: str
    parent_label: str | None = None
    requests: list[PlacedRequest] = field(default_factory=list)
    tools: list[tuple[int, int, int, Any]] = field(default_factory=list)  # (ts, dur, kind, span)
    children: list[_Session] = field(default_factory=list)
    parent: _Session | None = None
    start: int = 0
    end: int = 0
    flow: SessionEvents = field(default_factory=SessionEvents)


def _label(row: Row) -> str:
    group, chain, _ = row
    return f"{group} / {chain}" if group is not None else chain


def layout_agent(records: Records, options: ConvertOptions) -> Plan:
    fixes = options.fixes
    draw = DrawReport()
    draw.not_drawn[NotDrawn.PAYLOAD_ROW.value] += len(records.payloads)
    rows = RowMemo()
    sessions: dict[Hashable, _Session] = {}

    def session(row: Row) -> _Session:
        s = sessions.get(row)
        if s is None:
            s = sessions[row] = _Session(row, _label(row))
        return s

    placed = drawable_requests(records.requests, rows, fixes, draw)
    for p in placed:
        row = cast(Row, p.row)
        s = session(row)
        s.requests.append(p)
        parent = p.request.identity.parent
        if s.parent_label is None and parent is not None and row[1] != UNATTRIBUTED:
            s.parent_label = parent

    tools = drawable_tools(records.tools, fixes, draw)
    for t in tools:
        if t.has_context and t.identity.parent is not None:
            s = session(rows.tool(t))
            if s.parent_label is None:
                s.parent_label = t.identity.parent

    spans, inferred = timeline_tools(placed, tools, rows, fixes)
    for sp in spans:
        session(sp.row).tools.append((sp.ts, sp.dur, _INSTANT if sp.instant else _TOOL, sp))  # type: ignore[arg-type]
    for inf in inferred:
        session(inf.row).tools.append((inf.ts, inf.dur, _INFERRED, inf))  # type: ignore[arg-type]

    roots = _build_tree(sessions)
    builder = _Builder(options, draw)
    builder.build(roots)
    plan = builder.plan(fixes)
    return plan


def _build_tree(sessions: dict[Hashable, _Session]) -> list[_Session]:
    """Link children to parents (creating empty parents that only children name) and order them."""
    for s in list(sessions.values()):
        if s.parent_label is None:
            continue
        group, _, prefix = s.row
        prow = (group, s.parent_label, prefix)
        if prow == s.row:
            continue
        parent = sessions.get(prow)
        if parent is None:
            parent = sessions[prow] = _Session(prow, _label(prow))
        # Refuse a link that would close a cycle: the child then stays a root.
        p: _Session | None = parent
        while p is not None and p is not s:
            p = p.parent
        if p is s:
            continue
        s.parent = parent
        parent.children.append(s)

    def span(s: _Session) -> tuple[int, int]:
        starts = [p.ts for p in s.requests] + [t[0] for t in s.tools]
        ends = [p.ts + p.dur for p in s.requests] + [t[0] + t[1] for t in s.tools]
        for c in s.children:
            cs, ce = span(c)
            starts.append(cs)
            ends.append(ce)
        s.start = min(starts) if starts else 0
        s.end = max(ends) if ends else 0
        s.children.sort(key=lambda c: (c.start, c.label))
        return s.start, s.end

    roots = [s for s in sessions.values() if s.parent is None]
    for s in roots:
        span(s)
    roots.sort(key=lambda s: (s.start, s.label))
    return roots


class _Builder:
    """Creates tracks depth-first (so `rank` and Chrome tids follow the tree) and their events."""

    def __init__(self, options: ConvertOptions, draw: DrawReport) -> None:
        self.options = options
        self.draw = draw
        self.tracks: list[Track] = []
        self.events: list[Event] = []
        self.counters: list[CounterSeries] = []
        self.flow_sessions: list[SessionEvents] = []
        self.rank = 0
        # Chrome tids: one counter over the whole trace, starting above every pid, because a
        # thread whose tid equals its pid is the process's "main thread", which viewers hoist.
        self.next_tid = 0
        self.request_names: dict[str | None, str] = {}

    def _track(self, name: str, kind: TrackKind, pid: int, parent: Track | None, **kw: Any) -> Track:
        self.rank += 1
        tid = None
        if kind in (TrackKind.REQUEST, TrackKind.STAGES, TrackKind.TOOLS):
            self.next_tid += 1
            tid = self.next_tid
        t = Track(len(self.tracks) + 1, name, kind, pid, tid, parent.uid if parent else None, self.rank, **kw)
        self.tracks.append(t)
        return t

    def build(self, roots: list[_Session]) -> None:
        self.next_tid = len(roots) + 1  # the largest pid
        top = self._track(ROOT_NAME, TrackKind.GROUP, 0, None)
        glob = self._track(GLOBAL_NAME, TrackKind.PROCESS, 1, top)
        global_counters = [
            (self._track("requests in flight", TrackKind.COUNTER, 1, glob,
                         description="LLM requests in flight, all sessions"), "requests"),
            (self._track("tools in flight", TrackKind.COUNTER, 1, glob,
                         description="tool calls in flight, all sessions"), "tools"),
            (self._track("queue depth", TrackKind.COUNTER, 1, glob,
                         description="router queue depth reported by each LLM request, at its start"), "queue"),
            (self._track("KV hit rate", TrackKind.COUNTER, 1, glob,
                         description="KV cache hit rate reported by each LLM request, at its start"), "kv"),
            (self._track("output tokens/s", TrackKind.COUNTER, 1, glob,
                         description="sum over decoding requests of output_tokens / decode time"), "rate"),
        ]
        all_requests: list[PlacedRequest] = []
        all_tools: list[tuple[int, int]] = []
        for pid, root in enumerate(roots, start=2):
            proc = self._track(root.label, TrackKind.PROCESS, pid, top)
            req_iv: list[tuple[int, int]] = []
            tool_iv: list[tuple[int, int]] = []
            self._session(root, proc, pid, req_iv, tool_iv, root_counters=True)
            all_requests.extend(p for p in _walk_requests(root))
            all_tools.extend(tool_iv)
        by_name = dict((k, t) for t, k in global_counters)
        self._counter(by_name["requests"], *counter_series.in_flight((p.ts, p.ts + p.dur) for p in all_requests))
        self._counter(by_name["tools"], *counter_series.in_flight(all_tools))
        self._counter(by_name["queue"], *counter_series.sampled(
            (p.ts, p.request.queue_depth) for p in all_requests if p.request.queue_depth is not None))
        self._counter(by_name["kv"], *counter_series.sampled(
            (p.ts, float(p.request.kv_hit_rate)) for p in all_requests if p.request.kv_hit_rate is not None))
        self._counter(by_name["rate"], *counter_series.summed_rates(_decode_windows(all_requests)))

    def _counter(self, track: Track, ts: list[int], values: list[Any]) -> None:
        if ts:
            self.counters.append(CounterSeries(track, ts, values))

    def _session(
        self,
        s: _Session,
        node: Track,
        pid: int,
        req_iv: list[tuple[int, int]],
        tool_iv: list[tuple[int, int]],
        *,
        root_counters: bool = False,
    ) -> None:
        options = self.options
        label = s.label
        fe = s.flow
        self.flow_sessions.append(fe)
        if s.parent is not None:
            fe.parent = s.parent.flow

        # Lanes first, so tracks can be created in their explicit order.
        s.requests.sort(key=lambda p: p.ts)
        packer = LanePacker()
        req_lanes = [packer.place(p.ts, p.ts + p.dur) for p in s.requests]
        n_req = packer.lanes
        s.tools.sort(key=lambda t: (t[0], t[2]))
        packer = LanePacker()
        tool_lanes = [packer.place(ts, ts + dur) for ts, dur, _, _ in s.tools]
        n_tool = packer.lanes

        req_tracks = [self._lane(label, "requests", lane, TrackKind.REQUEST, pid, node) for lane in range(n_req)]
        if root_counters:
            inflight_req = self._track(f"{label} requests in flight", TrackKind.COUNTER, pid, node,
                                       description="LLM requests in flight, this session and its subagents")
        stage_tracks = req_tracks
        if n_req and (options.stages or options.markers):
            stage_tracks = [self._lane(label, "stages", lane, TrackKind.STAGES, pid, node) for lane in range(n_req)]
        tool_tracks = [self._lane(label, "tools", lane, TrackKind.TOOLS, pid, node) for lane in range(n_tool)]
        if root_counters:
            inflight_tool = self._track(f"{label} tools in flight", TrackKind.COUNTER, pid, node,
                                        description="tool calls in flight, this session and its subagents")

        emit = self.events.append
        draw = self.draw
        request_names = self.request_names
        markers, stages = options.markers, options.stages
        clamp_marker = Fix.CLEAN_STAGES in options.fixes
        for p, lane in zip(s.requests, req_lanes, strict=True):
            r = p.request
            ts, dur = p.ts, p.dur
            name = request_names.get(r.model)
            if name is None:
                name = request_names[r.model] = f"LLM request: {r.model or 'unknown-model'}"
            ev = Event(req_tracks[lane], ts, dur, name, CAT_LLM, REQUEST, r)
            emit(ev)
            fe.requests.append(ev)
            req_iv.append((ts, ts + dur))
            draw.converted += 1
            ttft = int(round(r.ttft_ms * 1000.0)) if r.ttft_ms is not None else None  # ms_to_us, inlined
            st = stage_tracks[lane]
            if markers and ttft is not None:
                at = ts + (min(max(ttft, 0), dur - 1) if clamp_marker else ttft)
                emit(Event(st, at, None, "first token", CAT_MARKER, EventKind.FIRST_TOKEN, r))
            if stages:
                _emit_stages(emit, st, r, ts, dur, ttft)

        for (ts, dur, kind, item), lane in zip(s.tools, tool_lanes, strict=True):
            track = tool_tracks[lane]
            if kind == _INFERRED:
                inf: InferredTool = item
                ev = Event(track, ts, dur, f"Tool: {inf.call.name or 'unknown-tool'}", CAT_TOOL,
                           EventKind.INFERRED_TOOL, inf)
                if not inf.duration_unknown:
                    tool_iv.append((ts, ts + dur))
            else:
                sp: ToolSpan = item
                cls = sp.event.tool_class or "unknown-tool"
                if sp.instant:
                    ev = Event(track, ts, None, f"Tool start: {cls}", CAT_TOOL_MARKER, EventKind.TOOL_START_INSTANT, sp)
                else:
                    prefix = "Tool error: " if sp.event.phase.value == "tool_error" else "Tool: "
                    ev = Event(track, ts, dur, prefix + cls, CAT_TOOL, EventKind.TOOL, sp)
                    if not sp.synthetic and not sp.unclosed:
                        tool_iv.append((ts, ts + dur))
            emit(ev)
            fe.tools.append(ev)
            draw.converted += 1

        # For subagent linking: where this session's own activity starts and ends.
        own = fe.requests + fe.tools
        slices = [e for e in fe.tools if e.dur is not None]
        fe.start_event = fe.requests[0] if fe.requests else (min(slices, key=lambda e: e.ts) if slices else None)
        fe.end = max(e.ts + (e.dur or 0) for e in own) if own else s.end

        for child in s.children:
            group = self._track(child.label, TrackKind.GROUP, pid, node)
            self._session(child, group, pid, req_iv, tool_iv)

        if root_counters:
            self._counter(inflight_req, *counter_series.in_flight(req_iv))
            self._counter(inflight_tool, *counter_series.in_flight(tool_iv))

    def _lane(self, label: str, what: str, lane: int, kind: TrackKind, pid: int, node: Track) -> Track:
        shared = f"{label} {what}"
        # upstream's lane spelling (§13.1): the kind stays last, so tool tracks end in "tools"
        name = shared if lane == 0 else f"{label} [lane {lane + 1}] {what}"
        return self._track(name, kind, pid, node, lane=lane, shared_name=shared)

    def plan(self, fixes: frozenset[Fix]) -> Plan:
        flows, flow_stats = link_flows(self.flow_sessions)
        # A counter track that never got a sample (a root without tool calls) is left out.
        sampled = {id(c.track) for c in self.counters}
        self.tracks = [t for t in self.tracks if t.kind is not TrackKind.COUNTER or id(t) in sampled]
        draw = self.draw
        for e in self.events:
            draw.by_category[e.cat] += 1
        draw.tracks = sum(1 for t in self.tracks if t.tid is not None)
        draw.flows = len(flows)
        draw.counters = len(self.counters)
        offset = 0
        if Fix.REBASE_TIME in fixes and self.events:
            offset = min(e.ts for e in self.events)
        return Plan(
            tracks=self.tracks,
            events=self.events,
            draw=draw,
            time_offset_us=offset,
            big_ints_as_strings=Fix.BIG_INTS in fixes,
            sort_indices=True,
            metadata={"layout": "agent", "flows": flow_stats.to_dict()},
            flows=flows,
            counters=self.counters,
        )


def _walk_requests(s: _Session):  # type: ignore[no-untyped-def]
    yield from s.requests
    for c in s.children:
        yield from _walk_requests(c)


def _decode_windows(requests: list[PlacedRequest]) -> list[tuple[int, int, int]]:
    """(start, end, output tokens) of each request's decode phase (the whole request without ttft)."""
    out = []
    for p in requests:
        tokens = p.request.output_tokens
        if not tokens or tokens < 0:
            continue
        start, end = p.ts, p.ts + p.dur
        ttft = p.request.ttft_ms
        if ttft is not None:
            start = min(max(start, start + int(round(ttft * 1000.0))), end)
        if end > start:
            out.append((start, end, int(tokens)))
    return out
