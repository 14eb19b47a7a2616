"""Decode and check a Perfetto protobuf trace we emitted (the protobuf half of `agent-trace validate`).

`decode_trace` reads the bytes with the `perfetto` package's generated `Trace` class (the
reference for the messages, not our encoder) and resolves everything a reader has to: zlib
`compressed_packets`, per-sequence interning (`InternedData`, cleared by `sequence_flags`),
`TracePacketDefaults` and clock snapshots (incremental or not), and, like Perfetto, events ordered
by timestamp with equal timestamps in file order, `TYPE_SLICE_END` closing the most recent open
slice of its track in that order. The result is plain data: tracks, slices (with args), counter samples, flows.

`validate_proto` checks what Perfetto needs and what our layouts promise, like `validate_chrome`:
  * every interned id an event uses was defined earlier on its sequence;
  * track uuids are unique, parents exist, the tree has no cycle; events reference known tracks,
    counter samples only counter tracks and slices only non-counter tracks;
  * every slice end closes an open slice, no slice stays open, dur >= 1 µs, ts >= 0;
  * each flow id leaves exactly one event and terminates at exactly one, not earlier in time;
  * counter samples on one track are strictly increasing in time;
  * stage slices lie inside a request slice with the same request_id; tool slices and markers
    sit on a track whose name ends in "tools".

Timestamps are returned in µs (Perfetto stores ns; our writer only emits whole µs).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .validate import TOOL_CATEGORIES, Violation

SEQ_INCREMENTAL_STATE_CLEARED = 1
TYPE_SLICE_BEGIN, TYPE_SLICE_END, TYPE_INSTANT, TYPE_COUNTER = 1, 2, 3, 4
_MAX_PROBLEMS = 50


class DecodeError(ValueError):
    """The bytes are not a Perfetto trace we can read."""


@dataclass
class PTrack:
    uuid: int
    name: str
    parent: int | None
    rank: int | None
    ordering: int
    counter: bool
    description: str = ""


@dataclass
class PSlice:
    track: int
    ts: int  # µs
    dur: int | None  # µs; None for an instant
    name: str
    category: str
    args: dict[str, Any]
    flow_out: list[int] = field(default_factory=list)
    flow_in: list[int] = field(default_factory=list)
    sequence: int = 0


@dataclass
class DecodedTrace:
    tracks: dict[int, PTrack]
    slices: list[PSlice]
    counters: dict[int, list[tuple[int, float]]]  # track uuid -> [(ts µs, value)]
    packets: int = 0
    problems: list[Violation] = field(default_factory=list)

    def children(self, uuid: int | None) -> list[PTrack]:
        """Tracks under `uuid` (None: top level), in display order (rank where ordered, else uuid)."""
        kids = [t for t in self.tracks.values() if t.parent == uuid]
        return sorted(kids, key=lambda t: (t.rank if t.rank is not None else 0, t.uuid))


class _SeqState:
    def __init__(self) -> None:
        self.clear()
        self.seen_clear = False

    def clear(self) -> None:
        self.names: dict[int, str] = {}
        self.cats: dict[int, str] = {}
        self.ann_names: dict[int, str] = {}
        self.strings: dict[int, str] = {}
        self.clock_id: int | None = None
        self.incremental: dict[int, list[int]] = {}  # clock id -> [last value, unit ns]
        self.clock_base: dict[int, int] = {}  # clock id -> ns of the clock's 0, from the snapshot
        self.clock_unit: dict[int, int] = {}  # clock id -> ns per tick


def _packets(data: bytes) -> list[Any]:
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

    trace = Trace()
    try:
        trace.ParseFromString(data)
    except Exception as exc:  # the generated class raises DecodeError (a protobuf type)
        raise DecodeError(f"not a Perfetto protobuf trace: {exc}") from exc
    out: list[Any] = []
    for p in trace.packet:
        if p.HasField("compressed_packets"):
            out.extend(_packets(zlib.decompress(p.compressed_packets)))
        else:
            out.append(p)
    return out


def decode_trace(data: bytes) -> DecodedTrace:
    """Decode `data` (the bytes of a .pftrace) into tracks, slices, counters and flows."""
    packets = _packets(data)
    result = DecodedTrace({}, [], defaultdict(list), len(packets))
    problems = result.problems

    def bad(rule: str, detail: str) -> None:
        if len(problems) < _MAX_PROBLEMS:
            problems.append(Violation(rule, detail))

    states: dict[int, _SeqState] = defaultdict(_SeqState)
    open_slices: dict[int, list[PSlice]] = defaultdict(list)
    events: list[tuple[int, int, int, int, Any]] = []  # (ts µs, packet index, type, track uuid, payload)
    for index, p in enumerate(packets):
        seq_id = p.trusted_packet_sequence_id
        st = states[seq_id]
        if p.sequence_flags & SEQ_INCREMENTAL_STATE_CLEARED:
            st.clear()
            st.seen_clear = True
        if p.HasField("trace_packet_defaults"):
            st.clock_id = p.trace_packet_defaults.timestamp_clock_id or None
        if p.HasField("clock_snapshot"):
            boot = [c.timestamp for c in p.clock_snapshot.clocks if c.clock_id == 6]
            for c in p.clock_snapshot.clocks:
                if c.clock_id == 6:
                    continue
                unit = c.unit_multiplier_ns or 1
                st.clock_unit[c.clock_id] = unit
                st.clock_base[c.clock_id] = (boot[0] if boot else 0) - c.timestamp * unit
                if c.is_incremental:
                    st.incremental[c.clock_id] = [c.timestamp, unit]
        if p.HasField("interned_data"):
            if not st.seen_clear:
                bad("interning", f"packet {index}: interned data before the sequence's state was cleared")
            d = p.interned_data
            for e in d.event_names:
                st.names[e.iid] = e.name
            for e in d.event_categories:
                st.cats[e.iid] = e.name
            for e in d.debug_annotation_names:
                st.ann_names[e.iid] = e.name
            for e in d.debug_annotation_string_values:
                st.strings[e.iid] = e.str.decode("utf-8", "replace")
        if p.HasField("track_descriptor"):
            td = p.track_descriptor
            if td.uuid in result.tracks:
                bad("track", f"track uuid {td.uuid} described twice")
            result.tracks[td.uuid] = PTrack(
                td.uuid,
                td.name,
                td.parent_uuid if td.HasField("parent_uuid") else None,
                td.sibling_order_rank if td.HasField("sibling_order_rank") else None,
                td.child_ordering,
                td.HasField("counter"),
                td.description,
            )
            continue
        if not p.HasField("track_event"):
            continue
        te = p.track_event
        ts_ns = _timestamp(p, st)
        if ts_ns % 1000:
            bad("ts", f"packet {index}: timestamp {ts_ns} ns is not a whole µs")
        ts = ts_ns // 1000
        uuid = te.track_uuid
        if uuid not in result.tracks:
            bad("track", f"packet {index}: event on undescribed track {uuid}")
        for u, v in zip(te.extra_counter_track_uuids, te.extra_counter_values, strict=False):
            events.append((ts, index, TYPE_COUNTER, u, v))
        for u, v in zip(te.extra_double_counter_track_uuids, te.extra_double_counter_values, strict=False):
            events.append((ts, index, TYPE_COUNTER, u, v))
        if len(te.extra_counter_track_uuids) != len(te.extra_counter_values) or len(
            te.extra_double_counter_track_uuids
        ) != len(te.extra_double_counter_values):
            bad("counter", f"packet {index}: extra counter tracks and values differ in number")
        if te.type == TYPE_COUNTER:
            value = te.double_counter_value if te.HasField("double_counter_value") else te.counter_value
            events.append((ts, index, TYPE_COUNTER, uuid, value))
            continue
        if te.type == TYPE_SLICE_END:
            events.append((ts, index, TYPE_SLICE_END, uuid, None))
            continue
        name = st.names.get(te.name_iid) if te.HasField("name_iid") else te.name
        if name is None:
            bad("interning", f"packet {index}: event name iid {te.name_iid} is not interned")
            name = ""
        cats = []
        for iid in te.category_iids:
            cat = st.cats.get(iid)
            if cat is None:
                bad("interning", f"packet {index}: category iid {iid} is not interned")
            else:
                cats.append(cat)
        cats.extend(te.categories)
        args: dict[str, Any] = {}
        for a in te.debug_annotations:
            args[_ann_name(a, st, bad, index)] = _value(a, st, bad, index)
        s = PSlice(uuid, ts, None, name, ",".join(cats), args, list(te.flow_ids), list(te.terminating_flow_ids), seq_id)
        if te.type not in (TYPE_SLICE_BEGIN, TYPE_INSTANT):
            bad("type", f"packet {index}: unsupported TrackEvent type {te.type}")
            continue
        events.append((ts, index, te.type, uuid, s))
    # Perfetto's order: by timestamp, equal timestamps in file order. Ends pair with begins in it.
    events.sort(key=lambda ev: (ev[0], ev[1]))
    for ts, index, kind, uuid, payload in events:
        if kind == TYPE_COUNTER:
            result.counters[uuid].append((ts, payload))
        elif kind == TYPE_SLICE_END:
            stack = open_slices[uuid]
            if not stack:
                bad("slice_end", f"packet {index}: end on track {uuid} with no open slice")
                continue
            s = stack.pop()
            s.dur = ts - s.ts
        else:
            result.slices.append(payload)
            if kind == TYPE_SLICE_BEGIN:
                open_slices[uuid].append(payload)
    for uuid, stack in open_slices.items():
        for s in stack:
            bad("slice_open", f"slice '{s.name}' on track {uuid} at {s.ts} is never closed")
            s.dur = 0
    result.counters = dict(result.counters)
    return result


def _timestamp(p: Any, st: _SeqState) -> int:
    clock = p.timestamp_clock_id if p.HasField("timestamp_clock_id") else st.clock_id
    if clock is not None and clock in st.incremental:
        inc = st.incremental[clock]
        inc[0] += p.timestamp
        return st.clock_base[clock] + inc[0] * inc[1]
    if clock is not None and clock in st.clock_base:
        return st.clock_base[clock] + p.timestamp * st.clock_unit[clock]
    return p.timestamp


def _ann_name(a: Any, st: _SeqState, bad: Any, index: int) -> str:
    if a.HasField("name_iid"):
        name = st.ann_names.get(a.name_iid)
        if name is None:
            bad("interning", f"packet {index}: annotation name iid {a.name_iid} is not interned")
            return f"<iid {a.name_iid}>"
        return name
    return a.name


def _value(a: Any, st: _SeqState, bad: Any, index: int) -> Any:
    which = a.WhichOneof("value")
    if which == "string_value_iid":
        v = st.strings.get(a.string_value_iid)
        if v is None:
            bad("interning", f"packet {index}: string value iid {a.string_value_iid} is not interned")
        return v
    if which is None:
        if a.dict_entries:
            return {_ann_name(e, st, bad, index): _value(e, st, bad, index) for e in a.dict_entries}
        if a.array_values:
            return [_value(e, st, bad, index) for e in a.array_values]
        return None
    return getattr(a, which)


def args_as_written(args: dict[str, Any]) -> dict[str, Any]:
    """Undo our grouping of dotted keys: {"worker": {"a": 1}} -> {"worker.a": 1} for known groups."""
    out: dict[str, Any] = {}
    for k, v in args.items():
        if k in _DOTTED_GROUPS and isinstance(v, dict):
            for kk, vv in v.items():
                out[f"{k}.{kk}"] = vv
        else:
            out[k] = v
    return out


# The prefixes our args use for flattened keys (`worker.decode_worker_id`, `finish.finish_reason`);
# everything else that decodes to a dict is a nested value.
_DOTTED_GROUPS = frozenset({"worker", "finish"})


def validate_proto(data: bytes | DecodedTrace, *, limit: int = _MAX_PROBLEMS) -> list[Violation]:
    try:
        trace = data if isinstance(data, DecodedTrace) else decode_trace(data)
    except (DecodeError, zlib.error) as exc:
        return [Violation("shape", str(exc))]
    out: list[Violation] = list(trace.problems)

    def bad(rule: str, detail: str) -> None:
        if len(out) < limit:
            out.append(Violation(rule, detail))

    tracks = trace.tracks
    for t in tracks.values():
        if t.parent is not None and t.parent not in tracks:
            bad("track_parent", f"track {t.uuid} '{t.name}' has unknown parent {t.parent}")
        seen = {t.uuid}
        p = t.parent
        while p is not None and p in tracks:
            if p in seen:
                bad("track_cycle", f"track {t.uuid} '{t.name}' is in a parent cycle")
                break
            seen.add(p)
            p = tracks[p].parent

    flow_src: dict[int, list[PSlice]] = defaultdict(list)
    flow_dst: dict[int, list[PSlice]] = defaultdict(list)
    requests: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    stages: list[PSlice] = []
    for s in trace.slices:
        track = tracks.get(s.track)
        if track is not None and track.counter:
            bad("counter_track", f"slice '{s.name}' at {s.ts} is on counter track '{track.name}'")
        if s.ts < 0:
            bad("ts", f"slice '{s.name}' has ts {s.ts}")
        if s.dur is not None and s.dur < 1:
            bad("dur", f"slice '{s.name}' at {s.ts} on track {s.track} has dur {s.dur} µs")
        for f in s.flow_out:
            flow_src[f].append(s)
        for f in s.flow_in:
            flow_dst[f].append(s)
        if s.category == "dynamo.llm" and s.dur is not None:
            requests[s.args.get("request_id")].append((s.ts, s.ts + s.dur))
        elif s.category == "dynamo.llm.stage":
            stages.append(s)
        if s.category in TOOL_CATEGORIES:
            name = track.name if track is not None else ""
            if not name.endswith("tools"):
                bad("tool_track", f"tool event '{s.name}' at {s.ts} is on track '{name}', not a tools track")

    for fid in sorted(set(flow_src) | set(flow_dst)):
        src, dst = flow_src.get(fid, []), flow_dst.get(fid, [])
        if len(src) != 1 or len(dst) != 1:
            bad("flow", f"flow {fid} leaves {len(src)} event(s) and ends at {len(dst)}; expected 1 and 1")
            continue
        if dst[0].ts < src[0].ts:
            bad("flow", f"flow {fid} goes back in time: '{src[0].name}' at {src[0].ts} -> '{dst[0].name}' at {dst[0].ts}")

    for s in stages:
        rid = s.args.get("request_id")
        if rid is None or s.dur is None:
            continue
        end = s.ts + s.dur
        if not any(a <= s.ts and end <= b for a, b in requests.get(rid, ())):
            bad("stage", f"stage '{s.name}' of request {rid} lies outside its request")

    for uuid, samples in trace.counters.items():
        ctrack = tracks.get(uuid)
        if ctrack is not None and not ctrack.counter:
            bad("counter_track", f"counter samples on track '{ctrack.name}', which is not a counter track")
        for (a, _), (b, _) in zip(samples, samples[1:], strict=False):
            if b <= a:
                bad("counter_time", f"counter track {uuid} goes from {a} to {b}: not increasing")
                break
    return out[:limit]


def looks_like_json(data: bytes) -> bool:
    return data.lstrip()[:1] in (b"{", b"[")
