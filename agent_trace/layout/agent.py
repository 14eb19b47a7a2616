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

Laying out happens in two steps: `prepare_agent` places records and builds the session tree,
`build_agent` draws it. Drawing can also be split into parts (`split_agent`): runs of consecutive
root sessions, each drawn on its own (the first part also draws the top tracks and the global
counters), so parts can be drawn and encoded in separate processes. A part's track uids and
ranks start above a bound of what the parts before it can use, and its flow ids in a range of
its own, so every part can be drawn without the others. Flows are linked by `layout.flows`, counters
sampled by `layout.counters`; a counter track that would have no sample is left out. Unclosed
tool starts, when drawn as instants, take no lane time beyond 1 µs and no flows.
"""

from __future__ import annotations

from collections import Counter
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


def _label(row: Row) -> str:
    group, chain, _ = row
    return f"{group} / {chain}" if group is not None else chain


@dataclass(slots=True, eq=False)
class AgentPrep:
    """The agent layout before drawing: the session tree (each session's requests and tools in
    time order) and what placing records cost. Drawing never changes it."""

    options: ConvertOptions
    roots: list[_Session]
    draw: DrawReport  # records placing left undrawn
    time_offset_us: int  # Fix.REBASE_TIME: the earliest event's ts, else 0


@dataclass(frozen=True, slots=True)
class AgentPart:
    """Root sessions [lo, hi) drawn as one part; part 0 also draws the top tracks and the
    global counters."""

    index: int
    lo: int
    hi: int
    uid_base: int = 0  # this part's track uids and ranks are uid_base + 1, + 2, ...


def layout_agent(records: Records, options: ConvertOptions) -> Plan:
    return build_agent(prepare_agent(records, options))


def prepare_agent(records: Records, options: ConvertOptions) -> AgentPrep:
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
    for s in sessions.values():  # sorted once here, so parts drawn anywhere see one order
        s.requests.sort(key=lambda p: p.ts)
        s.tools.sort(key=lambda t: (t[0], t[2]))

    roots = _build_tree(sessions)
    offset = _earliest_event(roots, options) if Fix.REBASE_TIME in fixes else 0
    return AgentPrep(options, roots, draw, offset)


def build_agent(prep: AgentPrep, part: AgentPart | None = None) -> Plan:
    """Draw `part` of the prepared tree (by default all of it)."""
    if part is None:
        part = AgentPart(0, 0, len(prep.roots))
    d = prep.draw
    draw = DrawReport(not_drawn=Counter(d.not_drawn)) if part.index == 0 else DrawReport()
    builder = _Builder(prep.options, draw, part.uid_base)
    builder.build(prep.roots, part)
    return builder.plan(prep, part)


def merge_part_reports(reports: list[tuple[DrawReport, dict[str, Any]]]) -> tuple[DrawReport, dict[str, Any]]:
    """One draw report and plan metadata for parts drawn apart (each part's `plan.draw` and
    `plan.metadata`): counts add up."""
    draw = DrawReport()
    flows: Counter[str] = Counter()
    for part_draw, metadata in reports:
        draw.add(part_draw)
        flows.update(metadata.get("flows", {}))
    return draw, {"layout": "agent", "flows": dict(flows)}


# Weights for splitting into parts: the cost of drawing and encoding, in units of about 2 µs
# (fitted on the large real trace, stages on): a request with its stages, a tool slice, a session
# (its tracks); and part 0's global counters, computed over every request and tool.
_REQUEST_WEIGHT = 16
_TOOL_WEIGHT = 4
_SESSION_WEIGHT = 8
_GLOBAL_REQUEST_WEIGHT = 4
_GLOBAL_TOOL_WEIGHT = 1
FLOW_ID_STRIDE = 1 << 32  # part i's flow ids start at i * FLOW_ID_STRIDE + 1


def split_agent(prep: AgentPrep, n_parts: int = 2, min_weight: int = 0) -> list[AgentPart]:
    """Two parts of consecutive roots with balanced drawing and encoding cost, or the whole as
    one part when `n_parts` < 2 or the whole weighs less than `min_weight`. Depends only on the
    tree. (More than two parts would need more cores than we target.)"""
    roots = prep.roots
    weights: list[int] = []
    bounds: list[int] = []
    global_weight = 0
    for root in roots:
        n_req = n_tools = n_sessions = 0
        for s in _walk(root):
            n_req += len(s.requests)
            n_tools += len(s.tools)
            n_sessions += 1
        weights.append(_REQUEST_WEIGHT * n_req + _TOOL_WEIGHT * n_tools + _SESSION_WEIGHT * n_sessions)
        # tracks a root can need: its process and two counters, then per session a node and
        # at most one request lane, one stage lane per request and one lane per tool
        bounds.append(3 + n_sessions + 2 * n_req + n_tools)
        global_weight += _GLOBAL_REQUEST_WEIGHT * n_req + _GLOBAL_TOOL_WEIGHT * n_tools
    total = global_weight + sum(weights)
    if n_parts < 2 or len(roots) < 2 or total < min_weight:
        return [AgentPart(0, 0, len(roots))]
    # The cut that best balances the two.
    best_k, best = 1, total
    head = global_weight
    for k in range(1, len(roots)):
        head += weights[k - 1]
        worst = max(head, total - head)
        if worst < best:
            best_k, best = k, worst
    top_tracks = 7  # the root group, "all sessions" and its five counters
    return [AgentPart(0, 0, best_k), AgentPart(1, best_k, len(roots), top_tracks + sum(bounds[:best_k]))]


def _walk(s: _Session):  # type: ignore[no-untyped-def]
    yield s
    for c in s.children:
        yield from _walk(c)


def _marker_ts(ts: int, dur: int, ttft: int, clamp: bool) -> int:
    return ts + (min(max(ttft, 0), dur - 1) if clamp else ttft)


def _earliest_event(roots: list[_Session], options: ConvertOptions) -> int:
    """The smallest ts of any event `build_agent` draws (stages start within their request)."""
    markers = options.markers
    clamp = Fix.CLEAN_STAGES in options.fixes
    earliest: int | None = None
    for root in roots:
        for s in _walk(root):
            for p in s.requests:
                ts = p.ts
                ttft = p.request.ttft_ms
                if markers and ttft is not None:
                    ts = min(ts, _marker_ts(p.ts, p.dur, int(round(ttft * 1000.0)), clamp))
                if earliest is None or ts < earliest:
                    earliest = ts
            if s.tools and (earliest is None or s.tools[0][0] < earliest):
                earliest = s.tools[0][0]
    return earliest or 0


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


class _Builder:
    """Creates tracks depth-first (so `rank` and Chrome tids follow the tree) and their events."""

    def __init__(self, options: ConvertOptions, draw: DrawReport, uid_base: int = 0) -> None:
        self.options = options
        self.draw = draw
        self.tracks: list[Track] = []
        self.events: list[Event] = []
        self.counters: list[CounterSeries] = []
        self.flow_sessions: list[SessionEvents] = []
        self.flow_of: dict[int, SessionEvents] = {}  # by id() of a _Session
        self.uid_base = uid_base
        self.rank = uid_base
        # Chrome tids: one counter over the whole trace, starting above every pid, because a
        # thread whose tid equals its pid is the process's "main thread", which viewers hoist.
        self.next_tid = 0
        self.request_names: dict[str | None, str] = {}

    def _track(self, name: str, kind: TrackKind, pid: int, parent: int | None, **kw: Any) -> Track:
        self.rank += 1
        tid = None
        if kind in (TrackKind.REQUEST, TrackKind.STAGES, TrackKind.TOOLS):
            self.next_tid += 1
            tid = self.next_tid
        t = Track(self.uid_base + len(self.tracks) + 1, name, kind, pid, tid, parent, self.rank, **kw)
        self.tracks.append(t)
        return t

    def build(self, roots: list[_Session], part: AgentPart) -> None:
        self.next_tid = len(roots) + 1 + self.uid_base  # above the largest pid (and part 0's tids)
        top_uid = 1  # part 0's first track
        global_counters = []
        if part.index == 0:
            top = self._track(ROOT_NAME, TrackKind.GROUP, 0, None)
            assert top.uid == top_uid
            glob = self._track(GLOBAL_NAME, TrackKind.PROCESS, 1, top.uid).uid
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
        # What each root's in-flight counters count; part 0's global counters count every root.
        intervals = {i: _intervals(roots[i]) for i in (range(len(roots)) if global_counters else range(part.lo, part.hi))}
        for i in range(part.lo, part.hi):
            proc = self._track(roots[i].label, TrackKind.PROCESS, 2 + i, top_uid)
            self._session(roots[i], proc, 2 + i, root_intervals=intervals[i])
        if not global_counters:
            return
        all_requests: list[PlacedRequest] = []
        all_tools: list[tuple[int, int]] = []
        for requests, tools in intervals.values():
            all_requests += requests
            all_tools += tools
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
                _emit_stages(emit, st, r, ts, dur, ttft)

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
                    prefix = "Tool error: " if sp.event.phase.value == "tool_error" else "Tool: "
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

    def plan(self, prep: AgentPrep, part: AgentPart) -> Plan:
        flows, flow_stats = link_flows(self.flow_sessions, first_id=part.index * FLOW_ID_STRIDE + 1)
        # A counter track that never got a sample (a root without tool calls) is left out.
        sampled = {id(c.track) for c in self.counters}
        self.tracks = [t for t in self.tracks if t.kind is not TrackKind.COUNTER or id(t) in sampled]
        draw = self.draw
        for e in self.events:
            draw.by_category[e.cat] += 1
        draw.tracks = sum(1 for t in self.tracks if t.tid is not None)
        draw.flows = len(flows)
        draw.counters = len(self.counters)
        fixes = prep.options.fixes
        return Plan(
            tracks=self.tracks,
            events=self.events,
            draw=draw,
            time_offset_us=prep.time_offset_us,
            big_ints_as_strings=Fix.BIG_INTS in fixes,
            sort_indices=True,
            metadata={"layout": "agent", "flows": flow_stats.to_dict()},
            flows=flows,
            counters=self.counters,
        )


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
