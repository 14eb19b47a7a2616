"""Perfetto protobuf bytes -> `DecodedTrace` (the protobuf decoder of the validator).

`decode_trace` reads the bytes with the `perfetto` package's generated `Trace` class: the
reference for the messages, independent of our hand encoder (`encode.protowire`), so a bug in
our wire encoding cannot be mirrored by the decoder that checks it. It resolves everything a
reader has to: zlib `compressed_packets`, per-sequence interning (`InternedData`, cleared by
`sequence_flags`), `TracePacketDefaults` and clock snapshots (incremental or not), and, like
Perfetto, events ordered by timestamp with equal timestamps in file order, `TYPE_SLICE_END`
closing the most recent open slice of its track in that order.

Contract: bytes that are not a Perfetto trace raise `DecodeError` (a `ValueError`); anything
else the decoder cannot resolve is a problem on the result (at most `max_problems`):
`interning` (an iid used before it is defined, interned data before the sequence was cleared),
`track` (a uuid described twice), `ts` (not a whole µs), `counter` (extra counter tracks and
values differ in number), `type` (an unsupported TrackEvent type), `slice_end` (an end with no
open slice), `slice_open` (a slice never closed; it is given dur 0).

Timestamps are returned in µs (Perfetto stores ns; our writer only emits whole µs). Tracks are
TRACK or COUNTER tracks keyed by uuid; slices carry their flow ids, and each flow id is also a
`FlowEnd` attached to its slice.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from typing import Any

from ..execution import gc_paused
from .model import Bad, DecodedTrace, FlowEnd, Problems, Slice, Track, TrackId, TrackKind

SEQ_INCREMENTAL_STATE_CLEARED = 1
TYPE_SLICE_BEGIN, TYPE_SLICE_END, TYPE_INSTANT, TYPE_COUNTER = 1, 2, 3, 4
BOOTTIME = 6
MAX_PROBLEMS = 50


class DecodeError(ValueError):
    """The bytes are not a Perfetto trace we can read."""


class _SeqState:
    """Per-sequence incremental state: interning tables and clocks."""

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
    """The trace's packets, `compressed_packets` inflated in place; DecodeError if unreadable."""
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

    trace = Trace()
    try:
        trace.ParseFromString(data)
    except Exception as exc:  # the generated class raises DecodeError (a protobuf type)
        raise DecodeError(f"not a Perfetto protobuf trace: {exc}") from exc
    out: list[Any] = []
    for p in trace.packet:
        if p.HasField("compressed_packets"):
            try:
                inner = zlib.decompress(p.compressed_packets)
            except zlib.error as exc:
                raise DecodeError(f"compressed packets do not inflate: {exc}") from exc
            out.extend(_packets(inner))
        else:
            out.append(p)
    return out


# An open slice while events are paired: [track, ts, name, category, args, index, out, in, sequence].
_Pending = list[Any]


def decode_trace(data: bytes, *, max_problems: int = MAX_PROBLEMS) -> DecodedTrace:
    """Decode `data` (the bytes of a .pftrace) into the validator's shape (module docstring)."""
    with gc_paused():
        return _decode(_packets(data), Problems(max_problems))


def _decode(packets: list[Any], problems: Problems) -> DecodedTrace:
    bad = problems.add
    tracks: dict[Any, Track] = {}
    states: dict[int, _SeqState] = defaultdict(_SeqState)
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
            _clocks(p.clock_snapshot, st)
        if p.HasField("interned_data"):
            if not st.seen_clear:
                bad("interning", f"packet {index}: interned data before the sequence's state was cleared")
            _intern(p.interned_data, st)
        if p.HasField("track_descriptor"):
            td = p.track_descriptor
            if td.uuid in tracks:
                bad("track", f"track uuid {td.uuid} described twice")
            tracks[td.uuid] = _track(td)
            continue
        if p.HasField("track_event"):
            _event(p, index, seq_id, st, events, bad)
    trace = DecodedTrace(tracks, [], {}, problems=problems.items, unit="packet", inputs=len(packets))
    _pair(events, trace, bad)
    return trace


def _track(td: Any) -> Track:
    which = td.WhichOneof("static_or_dynamic_name")
    name = getattr(td, which) if which else None
    kind = TrackKind.COUNTER if td.HasField("counter") else TrackKind.TRACK
    parent = td.parent_uuid if td.HasField("parent_uuid") else None
    rank = td.sibling_order_rank if td.HasField("sibling_order_rank") else None
    label = f"track {td.uuid} '{name}'" if name is not None else f"track {td.uuid}"
    return Track(td.uuid, name, parent, kind, label, rank, td.child_ordering, td.description)


def _clocks(snapshot: Any, st: _SeqState) -> None:
    boot = [c.timestamp for c in snapshot.clocks if c.clock_id == BOOTTIME]
    for c in snapshot.clocks:
        if c.clock_id == BOOTTIME:
            continue
        unit = c.unit_multiplier_ns or 1
        st.clock_unit[c.clock_id] = unit
        st.clock_base[c.clock_id] = (boot[0] if boot else 0) - c.timestamp * unit
        if c.is_incremental:
            st.incremental[c.clock_id] = [c.timestamp, unit]


def _intern(d: Any, st: _SeqState) -> None:
    for e in d.event_names:
        st.names[e.iid] = e.name
    for e in d.event_categories:
        st.cats[e.iid] = e.name
    for e in d.debug_annotation_names:
        st.ann_names[e.iid] = e.name
    for e in d.debug_annotation_string_values:
        st.strings[e.iid] = e.str.decode("utf-8", "replace")


def _event(p: Any, index: int, seq_id: int, st: _SeqState, events: list[Any], bad: Bad) -> None:
    """Queue the TrackEvent of packet `p` (and its extra counter values) for pairing."""
    te = p.track_event
    ts_ns = _timestamp(p, st)
    if ts_ns % 1000:
        bad("ts", f"packet {index}: timestamp {ts_ns} ns is not a whole µs")
    ts = ts_ns // 1000
    uuid = te.track_uuid
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
        return
    if te.type == TYPE_SLICE_END:
        events.append((ts, index, TYPE_SLICE_END, uuid, None))
        return
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
    if te.type not in (TYPE_SLICE_BEGIN, TYPE_INSTANT):
        bad("type", f"packet {index}: unsupported TrackEvent type {te.type}")
        return
    pending: _Pending = [uuid, ts, name, ",".join(cats), args, index, list(te.flow_ids), list(te.terminating_flow_ids), seq_id]
    events.append((ts, index, te.type, uuid, pending))


def _pair(events: list[tuple[int, int, int, int, Any]], trace: DecodedTrace, bad: Bad) -> None:
    """Perfetto's order (by timestamp, equal timestamps in file order): counter samples, and
    slices whose ends close the most recent open slice of their track."""
    events.sort(key=lambda ev: (ev[0], ev[1]))
    counters: dict[TrackId, list[tuple[int, float]]] = defaultdict(list)
    begun: list[_Pending] = []
    durs: list[int | None] = []
    open_slices: dict[int, list[int]] = defaultdict(list)  # track -> positions in `begun`
    for ts, index, kind, uuid, payload in events:
        if kind == TYPE_COUNTER:
            counters[uuid].append((ts, payload))
        elif kind == TYPE_SLICE_END:
            stack = open_slices[uuid]
            if not stack:
                bad("slice_end", f"packet {index}: end on track {uuid} with no open slice")
                continue
            at = stack.pop()
            durs[at] = ts - begun[at][1]
        else:
            if kind == TYPE_SLICE_BEGIN:
                open_slices[uuid].append(len(begun))
                durs.append(0)
            else:
                durs.append(None)
            begun.append(payload)
    for uuid, stack in open_slices.items():
        for at in stack:
            bad("slice_open", f"slice '{begun[at][2]}' on track {uuid} at {begun[at][1]} is never closed")
    for at, (track, ts, name, cat, args, index, out, into, seq) in enumerate(begun):
        trace.slices.append(Slice(track, ts, durs[at], name, cat, args, index, out, into, seq))
        trace.flows.extend(FlowEnd(f, True, track, ts, index, at) for f in out)
        trace.flows.extend(FlowEnd(f, False, track, ts, index, at) for f in into)
    trace.counters = dict(counters)


def _timestamp(p: Any, st: _SeqState) -> int:
    clock = p.timestamp_clock_id if p.HasField("timestamp_clock_id") else st.clock_id
    if clock is not None and clock in st.incremental:
        inc = st.incremental[clock]
        inc[0] += p.timestamp
        return st.clock_base[clock] + inc[0] * inc[1]
    if clock is not None and clock in st.clock_base:
        return st.clock_base[clock] + p.timestamp * st.clock_unit[clock]
    return int(p.timestamp)


def _ann_name(a: Any, st: _SeqState, bad: Bad, index: int) -> str:
    if a.HasField("name_iid"):
        name = st.ann_names.get(a.name_iid)
        if name is None:
            bad("interning", f"packet {index}: annotation name iid {a.name_iid} is not interned")
            return f"<iid {a.name_iid}>"
        return name
    return str(a.name)


def _value(a: Any, st: _SeqState, bad: Bad, index: int) -> Any:
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


def looks_like_json(data: bytes) -> bool:
    """Whether `data` starts (after whitespace) like a JSON document rather than protobuf."""
    return data.lstrip()[:1] in (b"{", b"[")
