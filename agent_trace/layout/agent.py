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
the Chrome `process_sort_index`/`thread_sort_index`.

`AgentLayout` draws batches of complete root sessions (`layout.units.batches`) one after
another: each batch places its records, builds its session tree (`prepare_agent`) and draws its
roots, ordered by first activity; uids, ranks, pids, tids and flow ids run on across batches.
The global counters need every session: each batch adds its intervals and samples to compact
arrays, and the last batch draws them. Flows are linked by `layout.flows`, counters sampled by
`layout.counters`; a counter track that would have no sample is left out. Unclosed tool starts,
when drawn as instants, take no lane time beyond 1 µs and no flows; drawn as open slices
(`Fix.INFERENCE`) they end at the latest activity read when their batch is drawn (for a trace
drawn in one batch, its end).
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ..model import Records, ToolPhase
from ..options import ConvertOptions, Fix
from ..report import DrawReport
from ..timeline import (
    UNATTRIBUTED,
    InferredTool,
    PlacedRequest,
    Row,
    RowMemo,
    ToolSpan,
    activity_end,
    drawable_requests,
    drawable_tools,
    timeline_tools,
)
from . import counters as counter_series
from .flows import FlowStats, SessionEvents, link_flows
from .lanes import LanePacker
from .plan import (
    CAT_LLM,
    CAT_MARKER,
    CAT_TOOL,
    CAT_TOOL_MARKER,
    Chunk,
    CounterSeries,
    Event,
    EventKind,
    Track,
    TrackKind,
)
from .upstream import emit_stages

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


def _label(row: Row) -> str:
    group, chain, _ = row
    return f"{group} / {chain}" if group is not None else chain


def prepare_agent(
    records: Records, options: ConvertOptions, draw: DrawReport, trace_end: int | None = None
) -> tuple[list[_Session], int | None]:
    """Place `records` (complete sessions) and build their session trees: the roots, ordered by
    first activity, each session's requests and tools in time order. Also returns the latest
    activity read so far (`trace_end` and these records'): where open tool slices end
    (Fix.INFERENCE)."""
    fixes = options.fixes
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

    if Fix.INFERENCE in fixes:
        end = activity_end(placed, tools)
        if end is not None:
            trace_end = end if trace_end is None else max(trace_end, end)
    spans, inferred = timeline_tools(placed, tools, rows, fixes, trace_end)
    for sp in spans:
        session(sp.row).tools.append((sp.ts, sp.dur, _INSTANT if sp.instant else _TOOL, sp))  # type: ignore[arg-type]
    for inf in inferred:
        session(inf.row).tools.append((inf.ts, inf.dur, _INFERRED, inf))  # type: ignore[arg-type]
    for s in sessions.values():
        s.requests.sort(key=lambda p: p.ts)
        s.tools.sort(key=lambda t: (t[0], t[2]))
    return _build_tree(sessions), trace_end


def _walk(s: _Session):  # type: ignore[no-untyped-def]
    yield s
    for c in s.children:
        yield from _walk(c)


def _marker_ts(ts: int, dur: int, ttft: int, clamp: bool) -> int:
    return ts + (min(max(ttft, 0), dur - 1) if clamp else ttft)


def _counts_in_flight(kind: int, item: Any) -> bool:
    """Whether a tool-lane entry is a tool call known to run over its slice (the in-flight
    counters' tools): not an instant, synthetic or unclosed span, nor an inferred call of
    unknown duration."""
    if kind == _INFERRED:
        return not item.duration_unknown
    return not (item.instant or item.synthetic or item.unclosed)


def _intervals(root: _Session) -> tuple[list[PlacedRequest], list[tuple[int, int]]]:
    """The requests (depth-first) and in-flight tool intervals of a root session's subtree."""
    requests: list[PlacedRequest] = []
    tools: list[tuple[int, int]] = []
    for s in _walk(root):
        requests.extend(s.requests)
        tools.extend((ts, ts + dur) for ts, dur, kind, item in s.tools if _counts_in_flight(kind, item))
    return requests, tools


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


class _Totals:
    """What the global counters count, added batch by batch: µs intervals and point samples in
    compact arrays (a few bytes a request), so memory stays small over a long trace."""

    def __init__(self) -> None:
        self.req_start, self.req_end = array("q"), array("q")
        self.tool_start, self.tool_end = array("q"), array("q")
        self.queue_ts, self.kv_ts = array("q"), array("q")
        self.queue: list[Any] = []
        self.kv: list[float] = []
        self.decode_start, self.decode_end = array("q"), array("q")
        self.decode_tokens: list[int] = []

    def add(self, requests: list[PlacedRequest], tools: list[tuple[int, int]]) -> None:
        for p in requests:
            self.req_start.append(p.ts)
            self.req_end.append(p.ts + p.dur)
            r = p.request
            if r.queue_depth is not None:
                self.queue_ts.append(p.ts)
                self.queue.append(r.queue_depth)
            if r.kv_hit_rate is not None:
                self.kv_ts.append(p.ts)
                self.kv.append(float(r.kv_hit_rate))
        for start, end, tokens in _decode_windows(requests):
            self.decode_start.append(start)
            self.decode_end.append(end)
            self.decode_tokens.append(tokens)
        for start, end in tools:
            self.tool_start.append(start)
            self.tool_end.append(end)


class AgentLayout:
    """Creates tracks depth-first (so `rank` and Chrome tids follow the tree) and their events,
    batch by batch."""

    def __init__(self, options: ConvertOptions) -> None:
        self.options = options
        self.draw = DrawReport()
        self.tracks: list[Track] = []  # this batch's
        self.events: list[Event] = []
        self.counters: list[CounterSeries] = []
        self.flow_sessions: list[SessionEvents] = []
        self.flow_of: dict[int, SessionEvents] = {}  # by id() of a _Session
        self.flow_stats = FlowStats()
        self.next_flow = 1
        self.uids = 0
        self.rank = 0
        self.next_pid = 2
        # Chrome tids: one counter over the whole trace; a thread whose tid equals its pid is
        # the process's "main thread", which viewers hoist, so that value is skipped.
        self.next_tid = 0
        self.request_names: dict[str | None, str] = {}
        self.totals = _Totals()
        self.trace_end: int | None = None  # Fix.INFERENCE: where open tool slices end
        self.global_counters: list[tuple[Track, str]] = []

    def _track(self, name: str, kind: TrackKind, pid: int, parent: int | None, **kw: Any) -> Track:
        self.rank += 1
        tid = None
        if kind in (TrackKind.REQUEST, TrackKind.STAGES, TrackKind.TOOLS):
            self.next_tid += 1
            if self.next_tid == pid:
                self.next_tid += 1
            tid = self.next_tid
        self.uids += 1
        t = Track(self.uids, name, kind, pid, tid, parent, self.rank, **kw)
        self.tracks.append(t)
        return t

    def header(self) -> Chunk:
        """The top tracks: the trace's root group and `all sessions`, whose counters the last
        batch draws."""
        top = self._track(ROOT_NAME, TrackKind.GROUP, 0, None)
        glob = self._track(GLOBAL_NAME, TrackKind.PROCESS, 1, top.uid).uid
        self.global_counters = [
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
        # the counter tracks go out with their samples, in the last batch
        return Chunk(tracks=self.tracks[:2])

    def draw_batch(self, records: Records, *, last: bool = False) -> Chunk:
        self.tracks, self.events, self.counters, self.flow_sessions, self.flow_of = [], [], [], [], {}
        roots, self.trace_end = prepare_agent(records, self.options, self.draw, self.trace_end)
        top_uid = 1
        for root in roots:
            intervals = _intervals(root)
            self.totals.add(*intervals)
            pid = self.next_pid
            self.next_pid += 1
            proc = self._track(root.label, TrackKind.PROCESS, pid, top_uid)
            self._session(root, proc, pid, root_intervals=intervals)
        if last:
            self._global_counters()
        return self._chunk()

    def _global_counters(self) -> None:
        t = self.totals
        by_name = {k: track for track, k in self.global_counters}
        self.tracks += [track for track, _ in self.global_counters]
        self._counter(by_name["requests"], *counter_series.in_flight_arrays(t.req_start, t.req_end))
        self._counter(by_name["tools"], *counter_series.in_flight_arrays(t.tool_start, t.tool_end))
        self._counter(by_name["queue"], *counter_series.sampled_arrays(t.queue_ts, t.queue))
        self._counter(by_name["kv"], *counter_series.sampled_arrays(t.kv_ts, t.kv))
        self._counter(by_name["rate"], *counter_series.summed_rates_arrays(t.decode_start, t.decode_end,
                                                                           t.decode_tokens))

    def _counter(self, track: Track, ts: Sequence[int], values: Sequence[Any]) -> None:
        if ts:
            self.counters.append(CounterSeries(track, ts, values))

    def _session(
        self,
        s: _Session,
        node: Track,
        pid: int,
        *,
        root_intervals: tuple[list[PlacedRequest], list[tuple[int, int]]] | None = None,
    ) -> None:
        """Tracks and events of session `s` and its subagents under `node`; a root (with the
        `_intervals` of its subtree) also gets its in-flight counters."""
        root_counters = root_intervals is not None
        options = self.options
        label = s.label
        fe = self.flow_of[id(s)] = SessionEvents()  # here, not on `s`: drawing never changes the tree
        self.flow_sessions.append(fe)
        if s.parent is not None:
            fe.parent = self.flow_of[id(s.parent)]  # drawn before `s`, in the same part

        # Lanes first, so tracks can be created in their explicit order.
        packer = LanePacker()
        req_lanes = [packer.place(p.ts, p.ts + p.dur) for p in s.requests]
        n_req = packer.lanes
        packer = LanePacker()
        tool_lanes = [packer.place(ts, ts + dur) for ts, dur, _, _ in s.tools]
        n_tool = packer.lanes

        req_tracks = [self._lane(label, "requests", lane, TrackKind.REQUEST, pid, node) for lane in range(n_req)]
        if root_counters:
            inflight_req = self._track(f"{label} requests in flight", TrackKind.COUNTER, pid, node.uid,
                                       description="LLM requests in flight, this session and its subagents")
        stage_tracks = req_tracks
        if n_req and (options.stages or options.markers):
            stage_tracks = [self._lane(label, "stages", lane, TrackKind.STAGES, pid, node) for lane in range(n_req)]
        tool_tracks = [self._lane(label, "tools", lane, TrackKind.TOOLS, pid, node) for lane in range(n_tool)]
        if root_counters:
            inflight_tool = self._track(f"{label} tools in flight", TrackKind.COUNTER, pid, node.uid,
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
            draw.converted += 1
            ttft = int(round(r.ttft_ms * 1000.0)) if r.ttft_ms is not None else None  # ms_to_us, inlined
            st = stage_tracks[lane]
            if markers and ttft is not None:
                at = _marker_ts(ts, dur, ttft, clamp_marker)
                emit(Event(st, at, None, "first token", CAT_MARKER, EventKind.FIRST_TOKEN, r))
            if stages:
                emit_stages(emit, st, r, ts, dur, ttft)

        for (ts, dur, kind, item), lane in zip(s.tools, tool_lanes, strict=True):
            track = tool_tracks[lane]
            if kind == _INFERRED:
                inf: InferredTool = item
                ev = Event(track, ts, dur, f"Tool: {inf.call.name or 'unknown-tool'}", CAT_TOOL,
                           EventKind.INFERRED_TOOL, inf)
            else:
                sp: ToolSpan = item
                cls = sp.event.tool_class or "unknown-tool"
                if sp.instant:
                    ev = Event(track, ts, None, f"Tool start: {cls}", CAT_TOOL_MARKER, EventKind.TOOL_START_INSTANT, sp)
                else:
                    prefix = "Tool error: " if sp.event.phase is ToolPhase.ERROR else "Tool: "
                    ev = Event(track, ts, dur, prefix + cls, CAT_TOOL, EventKind.TOOL, sp)
            emit(ev)
            fe.tools.append(ev)
            draw.converted += 1

        # For subagent linking: where this session's own activity starts and ends.
        own = fe.requests + fe.tools
        slices = [e for e in fe.tools if e.dur is not None]
        fe.start_event = fe.requests[0] if fe.requests else (min(slices, key=lambda e: e.ts) if slices else None)
        fe.end = max(e.ts + (e.dur or 0) for e in own) if own else s.end

        for child in s.children:
            group = self._track(child.label, TrackKind.GROUP, pid, node.uid)
            self._session(child, group, pid)

        if root_intervals is not None:
            requests, tools = root_intervals
            self._counter(inflight_req, *counter_series.in_flight((p.ts, p.ts + p.dur) for p in requests))
            self._counter(inflight_tool, *counter_series.in_flight(tools))

    def _lane(self, label: str, what: str, lane: int, kind: TrackKind, pid: int, node: Track) -> Track:
        shared = f"{label} {what}"
        # upstream's lane spelling (§13.1): the kind stays last, so tool tracks end in "tools"
        name = shared if lane == 0 else f"{label} [lane {lane + 1}] {what}"
        return self._track(name, kind, pid, node.uid, lane=lane, shared_name=shared)

    def _chunk(self) -> Chunk:
        flows, stats = link_flows(self.flow_sessions, first_id=self.next_flow)
        self.next_flow += len(flows)
        self.flow_stats.add(stats)
        # A counter track that never got a sample (a root without tool calls) is left out.
        sampled = {id(c.track) for c in self.counters}
        tracks = [t for t in self.tracks if t.kind is not TrackKind.COUNTER or id(t) in sampled]
        draw = self.draw
        for e in self.events:
            draw.by_category[e.cat] += 1
        draw.tracks += sum(1 for t in tracks if t.tid is not None)
        draw.flows += len(flows)
        draw.counters += len(self.counters)
        return Chunk(tracks, self.events, flows, self.counters)

    @property
    def metadata(self) -> dict[str, Any]:
        return {"layout": "agent", "flows": self.flow_stats.to_dict()}


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
