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

from ..model import LlmRequest, Records, ToolPhase
from ..options import ConvertOptions, Fix
from ..report import DrawReport
from ..timeline import (
    InferredTool,
    PlacedRequest,
    Row,
    RowMemo,
    ToolSpan,
    activity_end,
    drawable_requests,
    drawable_tools,
    stage_intervals,
    timeline_tools,
)
from .lanes import LanePacker
from .plan import (
    CAT_LLM,
    CAT_MARKER,
    CAT_STAGE,
    CAT_TOOL,
    CAT_TOOL_MARKER,
    Chunk,
    Event,
    EventKind,
    Track,
    TrackKind,
)

# Upstream compares kinds as strings: inferred_tool < request < tool < tool_instant.
_RANK_INFERRED, _RANK_REQUEST, _RANK_TOOL, _RANK_INSTANT = range(4)
# (kind, name) of each `timeline.stage_intervals` stage number
_STAGES = (None, (EventKind.STAGE_WAIT, "prefill wait"), (EventKind.STAGE_PREFILL, "prefill"),
           (EventKind.STAGE_DECODE, "decode"))

class _Tracks:
    """Creates tracks in upstream's order and names them once lane counts are known.

    Processes, pids, tids and uids run on over the whole trace; lanes, track keys and names are
    per batch (`start_batch`), whose sessions are complete."""

    def __init__(self, lanes_per_kind: bool, group_in_names: bool) -> None:
        self.lanes_per_kind = lanes_per_kind
        self.group_in_names = group_in_names
        self.single_process = True
        self.processes: dict[tuple[str | None, str | None], Track] = {}
        self.tid_counters: dict[int, int] = {}
        self.uids = 0
        self.start_batch(True)

    def start_batch(self, single_process: bool) -> None:
        self.single_process = single_process
        self.by_key: dict[tuple[Row, int, TrackKind], Track] = {}
        self.new_processes: list[Track] = []
        self.threads: list[Track] = []
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
            self.new_processes.append(proc)
        return proc

    def track(self, row: Hashable, lane: int, kind: TrackKind) -> Track:
        """`row` is a `Row` (spans keep it as an opaque key)."""
        key = (cast(Row, row), lane, kind)
        t = self.by_key.get(key)
        if t is None:
            proc = self._process(key[0])
            pid = proc.pid
            counter = 1 if self.single_process else pid
            tid = self.tid_counters.get(counter, 0) + 1
            self.tid_counters[counter] = tid
            self.uids += 1
            t = self.by_key[key] = Track(self.uids, "", kind, pid, tid, proc.uid, tid)
            self.threads.append(t)
            self.keys[t.uid] = key
        return t

    def finish_names(self) -> list[Track]:
        """Name this batch's threads; returns its new tracks, processes first."""
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
        procs = sorted(self.new_processes, key=lambda p: p.pid)
        return procs + sorted(self.threads, key=lambda t: (t.pid, t.tid or 0))


class UpstreamLayout:
    """Draws batches of complete sessions (`layout.units.batches`) one after another.

    Within a batch everything is upstream's: the work list, lanes, track order and names. A
    batch draws one process for request-schema input (`Dynamo request trace`) and one per run
    for input that is entirely agent-schema, as upstream does for the whole file; across
    batches, processes are shared and pids and tids run on. Unclosed tool starts drawn as open
    slices (`Fix.INFERENCE`) end at the latest activity read when their batch is drawn (for a
    trace drawn in one batch, its end, as upstream's whole-file view has it).
    """

    def __init__(self, options: ConvertOptions) -> None:
        self.options = options
        fixes = options.fixes
        self.draw = DrawReport()
        self.tracks = _Tracks(Fix.LANES_PER_KIND in fixes, Fix.GROUP_IN_NAMES in fixes)
        self.trace_end: int | None = None  # Fix.INFERENCE: where open tool slices end, µs

    def header(self) -> Chunk:
        return Chunk()

    def draw_batch(self, records: Records, *, last: bool = False) -> Chunk:
        fixes = self.options.fixes
        draw = self.draw
        rows = RowMemo()
        placed = drawable_requests(records.requests, rows, fixes, draw)
        tools = drawable_tools(records.tools, fixes, draw)
        single = not all(p.request.agent_schema for p in placed) or not all(t.agent_schema for t in tools)
        if not placed and not tools:
            single = True
        self.tracks.start_batch(single)

        open_until = None
        if Fix.INFERENCE in fixes:
            end = activity_end(placed, tools)
            if end is not None:
                self.trace_end = end if self.trace_end is None else max(self.trace_end, end)
            open_until = self.trace_end
        spans, inferred = timeline_tools(placed, tools, rows, fixes, open_until)

        # Upstream's work list: requests (input order), inferred tools, tool spans; then a stable sort.
        work: list[tuple[int, int, Any]] = [(p.ts, _RANK_REQUEST, p) for p in placed]
        work += [(i.ts, _RANK_INFERRED, i) for i in inferred]
        work += [(sp.ts, _RANK_INSTANT if sp.instant else _RANK_TOOL, sp) for sp in spans]
        work.sort(key=lambda w: (w[0], w[1]))
        events = self._draw_work(work)
        tracks = self.tracks.finish_names()
        draw.tracks += len(self.tracks.threads)
        return Chunk(tracks, events)

    def _draw_work(self, work: list[tuple[int, int, Any]]) -> list[Event]:
        options = self.options
        tracks = self.tracks
        draw = self.draw
        events: list[Event] = []
        emit = events.append
        stages, markers, separate = options.stages, options.markers, options.separate_stage_tracks
        clamp_marker = Fix.CLEAN_STAGES in options.fixes
        for ts, rank, item in work:
            if rank == _RANK_REQUEST:
                p: PlacedRequest = item
                dur = p.dur
                lane = tracks.packer(p.row, TrackKind.REQUEST).place(ts, ts + dur)
                req_track = tracks.track(p.row, lane, TrackKind.REQUEST)
                stage_track = tracks.track(p.row, lane, TrackKind.STAGES) if stages and separate else req_track
                r = p.request
                emit(Event(req_track, ts, dur, f"LLM request: {r.model or 'unknown-model'}", CAT_LLM,
                           EventKind.REQUEST, r))
                draw.converted += 1
                ttft = int(round(r.ttft_ms * 1000.0)) if r.ttft_ms is not None else None  # ms_to_us, inlined
                if markers and ttft is not None:
                    at = ts + (min(max(ttft, 0), dur - 1) if clamp_marker else ttft)
                    emit(Event(stage_track, at, None, "first token", CAT_MARKER, EventKind.FIRST_TOKEN, r))
                if stages:
                    emit_stages(emit, stage_track, r, ts, dur, ttft)
            elif rank == _RANK_INFERRED:
                i: InferredTool = item
                lane = tracks.packer(i.row, TrackKind.TOOLS).place(ts, ts + i.dur)
                track = tracks.track(i.row, lane, TrackKind.TOOLS)
                emit(Event(track, ts, i.dur, f"Tool: {i.call.name or 'unknown-tool'}", CAT_TOOL,
                           EventKind.INFERRED_TOOL, i))
                draw.converted += 1
            else:
                s: ToolSpan = item
                lane = tracks.packer(s.row, TrackKind.TOOLS).place(ts, ts + s.dur)
                track = tracks.track(s.row, lane, TrackKind.TOOLS)
                cls = s.event.tool_class or "unknown-tool"
                if s.instant:
                    emit(Event(track, ts, None, f"Tool start: {cls}", CAT_TOOL_MARKER, EventKind.TOOL_START_INSTANT, s))
                else:
                    prefix = "Tool error: " if s.event.phase is ToolPhase.ERROR else "Tool: "
                    emit(Event(track, ts, s.dur, prefix + cls, CAT_TOOL, EventKind.TOOL, s))
                draw.converted += 1
        for e in events:
            draw.by_category[e.cat] += 1
        return events


def emit_stages(emit: Any, track: Track, r: LlmRequest, ts: int, dur: int, ttft: int | None) -> None:
    """The stage slices of request `r` (`timeline.stage_intervals`) on `track`."""
    for stage, start, d in stage_intervals(r, ts, dur, ttft):
        kind, name = _STAGES[stage]  # type: ignore[misc]
        emit(Event(track, start, d, name, CAT_STAGE, kind, r))
