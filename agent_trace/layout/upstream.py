"""The upstream-compatible layout (upstream-converter.md §5-§13), with opt-in fixes.

Rows are timelines (one chain: session, trajectory or program). Work items (requests, inferred
tools, tool slices, tool instants) are sorted by (start, kind) and packed into lanes per row;
each (row, lane, kind) is one Chrome thread. Request-schema input gets one process (pid 1,
"Dynamo request trace", as RT2+); input that is entirely agent-schema gets one process per run
(`session: <id>` / `workflow: <id>`, as AT1-AT7).

Stages are clamped inside their request so that slices on one track nest (§8.1); zero-length
stages are never emitted.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, cast

from ..model import Era, LlmRequest, Records, ToolEvent
from ..options import ConvertOptions, Fix
from ..report import DrawReport, NotDrawn
from ..spans import InferredTool, PlacedRequest, ToolSpan, infer_tools, ms_to_us, pair_tools
from .lanes import LanePacker
from .plan import (
    CAT_LLM,
    CAT_MARKER,
    CAT_STAGE,
    CAT_TOOL,
    CAT_TOOL_MARKER,
    Event,
    EventKind,
    Plan,
    Track,
    TrackKind,
)

# Upstream compares kinds as strings: inferred_tool < request < tool < tool_instant.
_RANK_INFERRED, _RANK_REQUEST, _RANK_TOOL, _RANK_INSTANT = range(4)
UNATTRIBUTED = "unattributed"

Row = tuple[str | None, str, str | None]  # (group label, chain label, process prefix)


def _row(ident_era: Era, group: str | None, chain: str | None, agent_schema: bool, is_request: bool) -> Row:
    """The row a record is drawn on, with upstream's per-version default labels (§5)."""
    if ident_era is Era.WORKFLOW:
        return (group or "unknown-workflow", chain or "unknown-program", "workflow")
    if agent_schema:
        return (group or "unknown-session", chain or "unknown-trajectory", "session")
    if ident_era is Era.SESSION_TRAJECTORY:
        if is_request:
            return (group or "request-trace", chain or "request-only", None)
        return (group or "unknown-session", chain or "unknown-trajectory", None)
    if ident_era is Era.TRAJECTORY:
        return (None, chain or ("request-only" if is_request else "unknown-trajectory"), None)
    return (None, chain or ("request-only" if is_request else "unknown-session"), None)


def request_row(r: LlmRequest) -> Row:
    i = r.identity
    return _row(i.era, i.group, i.chain, r.agent_schema, True)


def tool_row(t: ToolEvent) -> Row:
    if not t.has_context:
        return (None, UNATTRIBUTED, None)
    i = t.identity
    return _row(i.era, i.group, i.chain, t.agent_schema, False)


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


def timeline_tools(
    placed: list[PlacedRequest], tools: list[ToolEvent], rows: RowMemo, fixes: frozenset[Fix]
) -> tuple[list[ToolSpan], list[InferredTool]]:
    """The tool spans (paired) and inferred calls a layout draws, under `fixes` (both layouts)."""
    open_until = None
    if Fix.INFERENCE in fixes:  # open starts run to the end of the trace
        ends = [p.ts + p.dur for p in placed] + [ms_to_us(t.event_time_ms) for t in tools]
        open_until = max(ends) if ends else None
    spans = pair_tools(tools, rows.tool, by_start_time=Fix.TOOL_PAIRING in fixes, open_until_us=open_until)
    # Inference exists only in the request-schema converter (RT2+); AT7 never inferred.
    inferable = [p for p in placed if not p.request.agent_schema]
    inferred = infer_tools(inferable, tools, rows.tool, any_harness_row_suppresses=Fix.INFERENCE in fixes)
    return spans, inferred


class RowMemo:
    """`request_row`/`tool_row`, memoised per interned identity (a run has few, and many records).

    Keys use id(): the identities are owned by the records, which outlive the memo.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[int, bool, int], Row] = {}

    def request(self, r: LlmRequest) -> Row:
        key = (id(r.identity), r.agent_schema, 1)
        row = self._memo.get(key)
        if row is None:
            row = self._memo[key] = request_row(r)
        return row

    def tool(self, t: ToolEvent) -> Row:
        key = (id(t.identity), t.agent_schema, 2 if t.has_context else 3)
        row = self._memo.get(key)
        if row is None:
            row = self._memo[key] = tool_row(t)
        return row


def request_bounds(r: LlmRequest, fix_start: bool) -> tuple[int, int, bool] | None:
    """(ts, dur, start_estimated) in µs, upstream's arithmetic (§6); None if it has no time."""
    start = r.received_ms
    estimated = False
    if start is None:
        if r.event_time_ms is None:
            return None
        start = r.event_time_ms
        if fix_start and r.total_ms is not None and r.total_ms >= 0:
            start = r.event_time_ms - r.total_ms  # Q4: the request ended, it did not start, then
        estimated = True
    if r.total_ms is not None and r.total_ms >= 0:
        dur_ms = r.total_ms
    elif r.event_time_ms is not None and r.event_time_ms >= start:
        dur_ms = r.event_time_ms - start
    else:
        dur_ms = 0.001
    return ms_to_us(start), max(1, ms_to_us(dur_ms)), estimated


class _Tracks:
    """Creates tracks in upstream's order and names them once lane counts are known."""

    def __init__(self, single_process: bool, lanes_per_kind: bool, group_in_names: bool) -> None:
        self.single_process = single_process
        self.lanes_per_kind = lanes_per_kind
        self.group_in_names = group_in_names
        self.by_key: dict[tuple[Row, int, TrackKind], Track] = {}
        self.processes: dict[tuple[str | None, str | None], Track] = {}
        self.threads: list[Track] = []
        self.tid_counters: dict[int, int] = {}
        self.packers: dict[Any, LanePacker] = {}
        self.keys: dict[int, tuple[Row, int, TrackKind]] = {}

    def packer(self, row: Hashable, kind: TrackKind) -> LanePacker:
        key: Any = (row, kind is TrackKind.TOOLS) if self.lanes_per_kind else row
        p = self.packers.get(key)
        if p is None:
            p = self.packers[key] = LanePacker()
        return p

    def _process(self, row: Row) -> Track:
        pkey = (None, None) if self.single_process else (row[2], row[0])
        proc = self.processes.get(pkey)
        if proc is None:
            pid = len(self.processes) + 1
            name = "Dynamo request trace" if self.single_process else f"{row[2]}: {row[0]}"
            proc = self.processes[pkey] = Track(-pid, name, TrackKind.PROCESS, pid, None, None, pid)
        return proc

    def track(self, row: Hashable, lane: int, kind: TrackKind) -> Track:
        """`row` is a `Row` (spans keep it as an opaque key)."""
        key = (cast(Row, row), lane, kind)
        t = self.by_key.get(key)
        if t is None:
            proc = self._process(key[0])
            pid = proc.pid
            tid = self.tid_counters.get(pid if not self.single_process else 1, 0) + 1
            self.tid_counters[pid if not self.single_process else 1] = tid
            t = self.by_key[key] = Track(
                len(self.by_key) + 1, "", kind, pid, tid, proc.uid, tid
            )
            self.threads.append(t)
            self.keys[t.uid] = key
        return t

    def finish_names(self) -> list[Track]:
        for t in self.threads:
            row, lane, kind = self.keys[t.uid]
            group, chain, _ = row
            base = f"{group} / {chain}" if self.group_in_names and group is not None else chain
            if self.lanes_per_kind:
                lanes = self.packers[(row, kind is TrackKind.TOOLS)].lanes
            else:
                lanes = self.packers[row].lanes
            name = f"{base} [lane {lane + 1}]" if lanes > 1 else base
            t.name = name if kind is TrackKind.REQUEST else f"{name} {kind.value}"
        procs = sorted(self.processes.values(), key=lambda p: p.pid)
        return procs + sorted(self.threads, key=lambda t: (t.pid, t.tid or 0))


def layout_upstream(records: Records, options: ConvertOptions) -> Plan:
    fixes = options.fixes
    draw = DrawReport()
    draw.not_drawn[NotDrawn.PAYLOAD_ROW.value] += len(records.payloads)

    rows = RowMemo()
    placed = drawable_requests(records.requests, rows, fixes, draw)
    tools = drawable_tools(records.tools, fixes, draw)

    single_process = not all(p.request.agent_schema for p in placed) or not all(t.agent_schema for t in tools)
    if not placed and not tools:
        single_process = True

    spans, inferred = timeline_tools(placed, tools, rows, fixes)

    # Upstream's work list: requests (input order), inferred tools, tool spans; then a stable sort.
    work: list[tuple[int, int, Any]] = [(p.ts, _RANK_REQUEST, p) for p in placed]
    work += [(i.ts, _RANK_INFERRED, i) for i in inferred]
    work += [(s.ts, _RANK_INSTANT if s.instant else _RANK_TOOL, s) for s in spans]
    work.sort(key=lambda w: (w[0], w[1]))

    tracks = _Tracks(single_process, Fix.LANES_PER_KIND in fixes, Fix.GROUP_IN_NAMES in fixes)
    events: list[Event] = []
    emit = events.append
    stages, markers, separate = options.stages, options.markers, options.separate_stage_tracks
    clamp_marker = Fix.CLEAN_STAGES in fixes
    for ts, rank, item in work:
        if rank == _RANK_REQUEST:
            p: PlacedRequest = item
            dur = p.dur
            lane = tracks.packer(p.row, TrackKind.REQUEST).place(ts, ts + dur)
            req_track = tracks.track(p.row, lane, TrackKind.REQUEST)
            stage_track = tracks.track(p.row, lane, TrackKind.STAGES) if stages and separate else req_track
            r = p.request
            emit(Event(req_track, ts, dur, f"LLM request: {r.model or 'unknown-model'}", CAT_LLM, EventKind.REQUEST, r))
            draw.converted += 1
            ttft = int(round(r.ttft_ms * 1000.0)) if r.ttft_ms is not None else None  # ms_to_us, inlined
            if markers and ttft is not None:
                at = ts + (min(max(ttft, 0), dur - 1) if clamp_marker else ttft)
                emit(Event(stage_track, at, None, "first token", CAT_MARKER, EventKind.FIRST_TOKEN, r))
            if stages:
                _emit_stages(emit, stage_track, r, ts, dur, ttft)
        elif rank == _RANK_INFERRED:
            i: InferredTool = item
            lane = tracks.packer(i.row, TrackKind.TOOLS).place(ts, ts + i.dur)
            track = tracks.track(i.row, lane, TrackKind.TOOLS)
            emit(Event(track, ts, i.dur, f"Tool: {i.call.name or 'unknown-tool'}", CAT_TOOL, EventKind.INFERRED_TOOL, i))
            draw.converted += 1
        else:
            s: ToolSpan = item
            lane = tracks.packer(s.row, TrackKind.TOOLS).place(ts, ts + s.dur)
            track = tracks.track(s.row, lane, TrackKind.TOOLS)
            cls = s.event.tool_class or "unknown-tool"
            if s.instant:
                emit(Event(track, ts, None, f"Tool start: {cls}", CAT_TOOL_MARKER, EventKind.TOOL_START_INSTANT, s))
            else:
                prefix = "Tool error: " if s.event.phase.value == "tool_error" else "Tool: "
                emit(Event(track, ts, s.dur, prefix + cls, CAT_TOOL, EventKind.TOOL, s))
            draw.converted += 1

    ordered_tracks = tracks.finish_names()
    for e in events:
        draw.by_category[e.cat] += 1
    draw.tracks = len(tracks.threads)
    offset = 0
    if Fix.REBASE_TIME in fixes and events:
        offset = min(e.ts for e in events)
    return Plan(
        tracks=ordered_tracks,
        events=events,
        draw=draw,
        time_offset_us=offset,
        big_ints_as_strings=Fix.BIG_INTS in fixes,
        sort_indices=Fix.SORT_INDEX in fixes,
    )


def _emit_stages(emit: Any, track: Track, r: LlmRequest, ts: int, dur: int, ttft: int | None) -> None:
    """prefill wait -> prefill -> decode, clamped to [0, ttft] and [ttft, dur] (§8.1)."""
    boundary = dur if ttft is None else min(max(0, ttft), dur)
    cursor = 0
    # ms_to_us inlined below: this runs for every request.
    if r.prefill_wait_ms is not None:
        wait = int(round(r.prefill_wait_ms * 1000.0))
        if wait > 0 and cursor < boundary:
            d = min(wait, boundary - cursor)
            emit(Event(track, ts, d, "prefill wait", CAT_STAGE, EventKind.STAGE_WAIT, r))
            cursor += d
    if r.prefill_ms is not None:
        pre = int(round(r.prefill_ms * 1000.0))
        if pre > 0 and cursor < boundary:
            d = min(pre, boundary - cursor)
            emit(Event(track, ts + cursor, d, "prefill", CAT_STAGE, EventKind.STAGE_PREFILL, r))
            cursor += d
    if ttft is not None and dur > boundary:
        emit(Event(track, ts + boundary, dur - boundary, "decode", CAT_STAGE, EventKind.STAGE_DECODE, r))
