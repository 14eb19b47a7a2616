"""Perfetto protobuf (TrackEvent) output, written chunk by chunk (`ProtoWriter`) to a binary file.

The file is a `perfetto.protos.Trace`: a stream of `TracePacket`s, hand-encoded by `protowire`
(building them through the generated classes is about half as fast; tests decode our bytes with
those classes and compare). Contract:

* each sequence starts with `TracePacketDefaults` (timestamps on clock 64) and a `ClockSnapshot`
  that makes clock 64 count µs from the sequence's first instant (`PacketSequence.base`), so a
  timestamp takes 3 to 5 bytes instead of 9.
* one `TrackDescriptor` per plan track: `uuid` = `Track.uid`, `parent_uuid` = `Track.parent`,
  `sibling_order_rank` from `Track.rank` (processes and groups order their children
  EXPLICITly), a `CounterDescriptor` on counter tracks. Lanes of one logical track share a name
  (`Track.shared_name`), and Perfetto merges same-named siblings into one track.
* a slice is a `TYPE_SLICE_BEGIN` and a `TYPE_SLICE_END` on its track; an instant is
  `TYPE_INSTANT`. A counter sample is a `TYPE_COUNTER` event (`counter_value`, or
  `double_counter_value` on a series with a float in it). Flows: `flow_ids` on the source's
  begin, `terminating_flow_ids` on the target's begin.
* event names, categories, debug-annotation names and string values are interned per sequence
  (`InternedData`; `sequence_flags` 3 on a sequence's first packet, 2 on packets that use
  interned data).
* args are `ArgsBuilder`'s, as debug annotations (`proto_args.PacketSequence.annotations`), with
  the same keys as the JSON output's (`debug.worker.decode_worker_id` here,
  `args.worker.decode_worker_id` there).
* `Compression.DEFLATE` wraps the packet stream in zlib `compressed_packets` chunks.

Packets are written track by track, each track in time order, then the counter series (see
"Packet order" below): Perfetto sorts packets by timestamp and keeps the file's order between
equal ones, so on one track at one instant ends come first (innermost first, as
`TYPE_SLICE_END` closes the most recently begun slice), then begins (outermost first); and a
flow's target that begins at the same instant as its source is written after the source.
Writing no global time order saves sorting 750k packets on the large real trace.

Chunks are written as they come (one per batch of complete sessions), each track's packets and
flows inside its chunk; see `ProtoWriter` for sequences and where the summary goes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from enum import StrEnum
from itertools import chain
from typing import Any, BinaryIO

import orjson

from ..layout.plan import Chunk, CounterSeries, Event, Flow, Plan, Track, TrackKind
from .proto_args import PacketSequence, framed, utf8
from .protowire import (
    _CONT14,
    _SMALL,
    MASK64,
    SMALL_LIMIT,
    len_field,
    pack_double,
    pack_fixed64,
    varint,
    varint_field,
)

SEQUENCE_CLOCK_ID = 64  # the first sequence-scoped clock id
BOOTTIME = 6

TYPE_SLICE_BEGIN, TYPE_SLICE_END, TYPE_INSTANT, TYPE_COUNTER = 1, 2, 3, 4
SEQ_INCREMENTAL_STATE_CLEARED, SEQ_NEEDS_INCREMENTAL_STATE = 1, 2
CHILD_ORDERING_EXPLICIT = 3


# Pre-encoded tags (field number << 3 | wire type).
_T_PACKET = b"\x0a"  # Trace.packet = 1, LEN
_T_TIMESTAMP = b"\x40"  # TracePacket.timestamp = 8
_T_TRACK_EVENT = b"\x5a"  # TracePacket.track_event = 11, LEN
_T_INTERNED = b"\x62"  # TracePacket.interned_data = 12, LEN
_T_COMPRESSED = b"\x92\x03"  # TracePacket.compressed_packets = 50, LEN
_FLAGS_NEEDS = b"\x68\x02"  # TracePacket.sequence_flags = 13: SEQ_NEEDS_INCREMENTAL_STATE
_TE_BEGIN = b"\x48\x01"  # TrackEvent.type = 9
_TE_END = b"\x48\x02"
_TE_INSTANT = b"\x48\x03"
_TE_COUNTER = b"\x48\x04"
_T_COUNTER_INT = b"\xf0\x01"  # TrackEvent.counter_value = 30, varint
_T_COUNTER_DOUBLE = b"\xe1\x02"  # TrackEvent.double_counter_value = 44, fixed64
_T_FLOW = b"\xf9\x02"  # TrackEvent.flow_ids = 47, fixed64
_T_FLOW_END = b"\x81\x03"  # TrackEvent.terminating_flow_ids = 48, fixed64



def _fixed_fields(
    seq: PacketSequence, e: Event, begins: dict[str, tuple[bytes, bytes, str]], instants: dict[str, tuple[bytes, bytes, str]]
) -> tuple[bytes, bytes, str]:
    cat = seq.cats.get(e.cat) or seq.cat_field(e.cat)
    name = seq.names.get(e.name) or seq.name_field(e.name)
    if e.dur is None:
        fixed = instants[e.name] = (cat, _TE_INSTANT + name, e.cat)
    else:
        fixed = begins[e.name] = (cat, _TE_BEGIN + name, e.cat)
    return fixed


# ---------------------------------------------------------------------------------------------
# Packet order. Perfetto sorts packets by timestamp, and packets with equal timestamps keep their
# order in the file. So packets are written track by track, each track in time order, with
# timestamps on a plain (not incremental) clock; only two orders matter and both are kept:
#   * on one track at one instant: ends (innermost first), then begins (outermost first);
#   * a flow's source before its target when both begin at the same instant: the target's track
#     at that instant (a "late group") is written after everything else, by rank (below).
# ---------------------------------------------------------------------------------------------


def _flow_fields(flows: list[Flow]) -> tuple[dict[int, bytes], dict[int, bytes]]:
    """The encoded flow_ids leaving, and terminating_flow_ids entering, each event (by id())."""
    outgoing: dict[int, bytes] = {}
    incoming: dict[int, bytes] = {}
    for f in flows:
        src, dst = id(f.source), id(f.target)
        outgoing[src] = outgoing.get(src, b"") + _T_FLOW + pack_fixed64(f.id)
        incoming[dst] = incoming.get(dst, b"") + _T_FLOW_END + pack_fixed64(f.id)
    return outgoing, incoming


_MAX_LATE_RANK = 16  # same-instant flow chains deeper than this are not ordered (never seen)


def _late_groups(flows: list[Flow]) -> dict[int, dict[int, int]]:
    """For the target of each flow whose source begins at the same instant: track id -> {ts: rank},
    rank >= 1 + the rank of the source's own (track, ts) group (0 when it has none)."""
    same = [(f.source, f.target) for f in flows if f.source.ts == f.target.ts]
    rank: dict[tuple[int, int], int] = {}
    for _ in range(_MAX_LATE_RANK):
        changed = False
        for src, dst in same:
            want = min(rank.get((id(src.track), src.ts), 0) + 1, _MAX_LATE_RANK)
            key = (id(dst.track), dst.ts)
            if rank.get(key, 0) < want:
                rank[key] = want
                changed = True
        if not changed:
            break
    late: dict[int, dict[int, int]] = {}
    for (track, ts), r in rank.items():
        late.setdefault(track, {})[ts] = r
    return late




class _Part:
    """What one chunk writes: the events of each slice track, counter series and flows."""

    __slots__ = ("tracks", "counters", "flows", "offset")

    def __init__(self, offset: int = 0) -> None:
        self.tracks: list[list[Event]] = []  # events of each slice track
        self.counters: list[CounterSeries] = []
        self.flows: list[Flow] = []
        self.offset = offset  # Plan.time_offset_us


def _events_by_track(events: list[Event]) -> Iterator[list[Event]]:
    """The events of each track, tracks in order of their first event."""
    by_track: dict[int, list[Event]] = {}
    for e in events:
        lst = by_track.get(id(e.track))
        if lst is None:
            by_track[id(e.track)] = [e]
        else:
            lst.append(e)
    return iter(by_track.values())


# ---------------------------------------------------------------------------------------------
# Packets
# ---------------------------------------------------------------------------------------------


def _packet(body: bytes) -> bytes:
    return framed(_T_PACKET, body)


def _sequence_start(seq: PacketSequence) -> bytes:
    """Defaults (timestamps on clock 64) and the snapshot that defines that clock: µs since
    `seq.base` µs on the boot clock."""
    defaults = len_field(59, varint_field(58, SEQUENCE_CLOCK_ID))
    first = seq.seq + varint_field(13, SEQ_INCREMENTAL_STATE_CLEARED | SEQ_NEEDS_INCREMENTAL_STATE) + defaults
    first = _packet(first)
    clock = varint_field(1, SEQUENCE_CLOCK_ID) + varint_field(2, 0) + varint_field(4, 1000)
    boot = varint_field(1, BOOTTIME) + varint_field(2, seq.base * 1000)
    snapshot = len_field(6, len_field(1, clock) + len_field(1, boot))
    return first + _packet(snapshot + seq.seq)


def track_descriptor(t: Track, description: str | None = None) -> bytes:
    """TracePacket.track_descriptor for `t`: its uuid is its uid. Processes and groups order
    their children explicitly (by `rank`)."""
    body = varint_field(1, t.uid)
    body += len_field(2, utf8(t.shared_name or t.name))
    if t.parent is not None:
        body += varint_field(5, t.parent)
    if t.kind is TrackKind.COUNTER:
        body += len_field(8, b"")
    if t.kind is TrackKind.PROCESS or t.kind is TrackKind.GROUP:
        body += varint_field(11, CHILD_ORDERING_EXPLICIT)
    if t.parent is not None:
        body += varint_field(12, t.rank & MASK64)
    desc = description if description is not None else t.description
    if desc:
        body += len_field(14, utf8(desc))
    return len_field(60, body)


def _ts_field(d: int) -> bytes:
    """The varint of a timestamp (µs since the sequence's origin): three table lookups up to 2^42."""
    if d < SMALL_LIMIT:
        return _SMALL[d]
    if d < 1 << 28:
        return _CONT14[d & 0x3FFF] + _SMALL[d >> 14]
    if d < 1 << 42:
        return _CONT14[d & 0x3FFF] + _CONT14[(d >> 14) & 0x3FFF] + _SMALL[d >> 28]
    return varint(d)


class _Drain:
    ts = float("inf")  # later than any slice end


_DRAIN_EVENT: Any = _Drain()
_DRAIN = (_DRAIN_EVENT,)


def _nesting_order(e: Event) -> tuple[int, int]:
    return e.ts, -(e.dur or 0)  # a parent before its same-start child


def _encode_part(
    part: _Part,
    seq: PacketSequence,
    t0: int,
    pre: Callable[[Event], bytes | None],
    args_of: Callable[[Event], dict[str, Any]],
    batch: int = 24_576,
) -> Iterator[bytes]:
    """The packets of one part, in batches of bytes: its slice tracks, its counters, then any
    late groups. Timestamps are µs since `t0`."""
    outgoing, incoming = _flow_fields(part.flows)
    late = _late_groups(part.flows)
    small = _SMALL
    ts_field = _ts_field
    seq_field = seq.seq
    seq_te = seq_field + _T_TRACK_EVENT
    seq_te_len = len(seq_te)
    # A fixed packet is 0x0a len | 0x40 timestamp | tail; `heads[n]` is everything before a
    # timestamp of n bytes, shared by all tails of one length.
    heads_by_len: dict[int, list[bytes]] = {}

    def heads_for(tail_len: int) -> list[bytes]:
        heads = heads_by_len.get(tail_len)
        if heads is None:
            heads = heads_by_len[tail_len] = [_T_PACKET + varint(1 + n + tail_len) + _T_TIMESTAMP for n in range(11)]
        return heads

    begins: dict[str, tuple[bytes, bytes, str]] = {}
    instants: dict[str, tuple[bytes, bytes, str]] = {}
    annotations = seq.annotations

    out: list[bytes] = []
    append = out.append

    def begin(e: Event, tsb: bytes, tail: bytes, ann: bytes | None) -> None:
        """Append a slice begin (or instant) packet, in pieces: lengths add up, bytes are not copied."""
        # (category field, type + name fields) per event name and kind, interned on first use
        fixed = (begins if e.dur is not None else instants).get(e.name)
        if fixed is None or (fixed[2] is not e.cat and fixed[2] != e.cat):
            fixed = _fixed_fields(seq, e, begins, instants)
        if ann is None:
            ann = annotations(args_of(e))
        tl = len(fixed[0]) + len(ann) + len(fixed[1]) + len(tail)
        tlb = small[tl] if tl < SMALL_LIMIT else varint(tl)
        interned = seq.take_interned() if seq.dirty else b""
        bl = 1 + len(tsb) + seq_te_len + len(tlb) + tl + len(interned) + 2
        append(_T_PACKET)
        append(small[bl] if bl < SMALL_LIMIT else varint(bl))
        append(_T_TIMESTAMP)
        append(tsb)
        append(seq_te)
        append(tlb)
        append(fixed[0])
        append(ann)
        append(fixed[1])
        append(tail)
        append(interned)
        append(_FLAGS_NEEDS)

    deferred: list[tuple[int, int, Any]] = []  # (rank, order, end packet bytes or `begin` args)
    for evs in part.tracks:
        track = evs[0].track
        track_field = _track_field(track)
        end_tail = seq_field + framed(_T_TRACK_EVENT, _TE_END + track_field)
        end_heads = heads_for(len(end_tail))
        late_ts = late.get(id(track))
        evs.sort(key=_nesting_order)
        stack: list[int] = []
        for e in chain(evs, _DRAIN):  # the sentinel ends every slice still open
            ts = e.ts
            while stack and stack[-1] <= ts:
                end = stack.pop()
                tsb = ts_field(end - t0)
                if late_ts is not None and end in late_ts:
                    deferred.append((late_ts[end], len(deferred), end_heads[len(tsb)] + tsb + end_tail))
                    continue
                append(end_heads[len(tsb)])
                append(tsb)
                append(end_tail)
            if e is _DRAIN_EVENT:
                break
            eid = id(e)
            fl = outgoing.get(eid)
            fin = incoming.get(eid)
            tail = track_field + fl + fin if fl and fin else track_field + fl if fl else \
                track_field + fin if fin else track_field
            if late_ts is not None and ts in late_ts:
                deferred.append((late_ts[ts], len(deferred), (e, ts_field(ts - t0), tail, pre(e))))
            else:
                begin(e, ts_field(ts - t0), tail, pre(e))
            if e.dur is not None:
                stack.append(ts + e.dur)
        if len(out) >= batch:
            yield b"".join(out)
            out.clear()

    # A counter sample is one packet; a long series (a global counter of a long trace has millions
    # of samples) is yielded in batches.
    for c in part.counters:
        head = _TE_COUNTER + _track_field(c.track)  # type, track_uuid
        doubles = any(type(v) is float for v in c.values)
        if doubles:
            prefix = seq_te + small[len(head) + 10] + head + _T_COUNTER_DOUBLE
            heads = heads_for(len(prefix) + 8)
        else:
            prefix = seq_te + small[len(head) + 3] + head + _T_COUNTER_INT
            heads = heads_for(len(prefix) + 1)
        for ts, v in zip(c.ts, c.values, strict=True):
            tsb = ts_field(ts - t0)
            if doubles:
                append(heads[len(tsb)])
                append(tsb)
                append(prefix + pack_double(float(v)))
            elif 0 <= v < 128:  # one varint byte
                append(heads[len(tsb)])
                append(tsb)
                append(prefix + small[v])
            else:
                tail = seq_field + framed(_T_TRACK_EVENT, head + _T_COUNTER_INT + varint(v))
                append(heads_for(len(tail))[len(tsb)])
                append(tsb)
                append(tail)
            if len(out) >= batch:
                yield b"".join(out)
                out.clear()

    deferred.sort(key=lambda d: (d[0], d[1]))
    for _, _, item in deferred:
        if type(item) is bytes:
            append(item)
        else:
            begin(*item)
    yield b"".join(out)


class Compression(StrEnum):
    """How packets are stored: plain, or zlib-deflated in `TracePacket.compressed_packets` chunks
    (what Perfetto's own tracing service writes with `compression_type: DEFLATE`; the UI and trace
    processor inflate them transparently)."""

    NONE = "none"
    DEFLATE = "deflate"


def _deflated(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        if chunk:
            # level 1: about 3x smaller at a fraction of the encoding cost; higher levels gain ~10%
            yield _packet(framed(_T_COMPRESSED, zlib.compress(chunk, 1)))


def _track_field(t: Track) -> bytes:
    return b"\x58" + varint(t.uid)  # TrackEvent.track_uuid = 11


class ProtoWriter:
    """Writes a trace chunk by chunk (`layout.plan.Chunk`) to a binary file object.

    Packets go out on one sequence, whose clock starts at the first chunk's earliest timestamp;
    a chunk with an earlier one (a long session laid out after shorter ones that started later),
    or one that comes when the interning state has grown past `SEQUENCE_STATE_LIMIT`, starts a
    new sequence with its own clock and interning. The trace's first track descriptor
    is written last, with the summary (known only at the end) as its description: the trace
    processor reads every descriptor before it places any event, so order does not matter.
    """

    def __init__(
        self,
        out: BinaryIO,
        args_of: Callable[[Event], dict[str, Any]],
        *,
        offset: int = 0,
        compression: Compression = Compression.NONE,
    ) -> None:
        self.out = out
        self.args_of = args_of
        self.offset = offset
        self.compression = compression
        self.seq: PacketSequence | None = None
        self.seq_count = 0
        self.events = 0
        self.first_track: Track | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0

    def _emit(self, data: bytes) -> None:
        if self.compression is Compression.NONE:
            self.out.write(data)
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= DEFLATE_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self.out.write(_packet(framed(_T_COMPRESSED, zlib.compress(b"".join(self._pending), 1))))
            self._pending = []
            self._pending_size = 0

    def write(self, chunk: Chunk) -> None:
        starts = [c.ts[0] for c in chunk.counters if c.ts] + [e.ts for e in chunk.events]
        if starts:
            t0 = min(starts)
            if (self.seq is None or t0 - self.offset < self.seq.base
                    or self.seq.state_size() > SEQUENCE_STATE_LIMIT):
                self.seq_count += 1
                self.seq = PacketSequence(self.seq_count, max(0, t0 - self.offset))
                self._emit(_sequence_start(self.seq))
        seq = self.seq
        descriptors = chunk.tracks
        if self.first_track is None and descriptors:
            self.first_track, descriptors = descriptors[0], descriptors[1:]
        seq_field = seq.seq if seq is not None else b""
        self._emit(b"".join(_packet(seq_field + track_descriptor(t)) for t in descriptors))
        if seq is None:
            return  # tracks only (a layout's header)
        part = _Part(self.offset)
        part.tracks = list(_events_by_track(chunk.events))
        part.counters = chunk.counters
        part.flows = chunk.flows
        for data in _encode_part(part, seq, seq.base + self.offset, _none, self.args_of):
            self._emit(data)
        self.events += sum(2 * len(evs) - sum(1 for e in evs if e.dur is None) for evs in part.tracks) + sum(
            len(c.ts) for c in part.counters
        )

    def close(self, summary: dict[str, Any] | None = None) -> int:
        """Write what is left (the first track, with `summary`); returns the track events written."""
        if self.first_track is not None:
            desc = orjson.dumps({"agent_trace": summary}).decode() if summary is not None else None
            seq_field = self.seq.seq if self.seq is not None else b""
            self._emit(_packet(seq_field + track_descriptor(self.first_track, desc)))
        self._flush()
        return self.events


# A sequence's interning tables and value caches grow with the distinct values met; past this many
# entries the next chunk starts a fresh sequence, so a long trace's memory stays bounded.
SEQUENCE_STATE_LIMIT = 200_000
# Packets are deflated in chunks of about this many bytes.
DEFLATE_CHUNK = 1 << 20


def write_perfetto_proto(
    plan: Plan,
    out: BinaryIO,
    args_of: Callable[[Event], dict[str, Any]],
    *,
    summary: dict[str, Any] | None = None,
    compression: Compression = Compression.NONE,
) -> int:
    """Write a whole plan; returns the number of track events (slice begins, ends, instants and
    counter samples) written."""
    writer = ProtoWriter(out, args_of, offset=plan.time_offset_us, compression=compression)
    writer.write(Chunk(plan.tracks, plan.events, plan.flows, plan.counters))
    return writer.close(summary)


def _none(_: Event) -> None:
    return None
