"""Our hand encoder (encode.proto / encode.protowire) against the `perfetto` package's generated classes.

The generated `perfetto_trace_pb2` messages are the reference: a hand-built plan encoded by us must
equal, message for message and byte for byte, the same packets built through the generated classes;
and every trace we write must decode and re-serialize to the identical bytes (so the encoding is
canonical, field order and varint forms included).
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import Any

import pytest
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import (
    DebugAnnotation,
    Trace,
    TracePacket,
    TrackDescriptor,
    TrackEvent,
)

from agent_trace.args import ArgsBuilder
from agent_trace.convert import Layout, build_plan, convert_files
from agent_trace.encode import protowire
from agent_trace.encode.proto import write_perfetto_proto
from agent_trace.ingest.reader import read_files
from agent_trace.layout.plan import CounterSeries, Event, EventKind, Flow, FlowKind, Plan, Track, TrackKind
from agent_trace.options import ConvertOptions
from agent_trace.report import DrawReport
from agent_trace.validate import decode_trace, validate_proto
from tests.support.perfetto_tp import ERROR_STATS_SQL

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "fixtures/real/small/dynamo-request-trace.jsonl"


@pytest.mark.parametrize(
    "n", [0, 1, 127, 128, 300, 16383, 16384, (1 << 21) - 1, 1 << 28, 1_795_476_183_772, (1 << 42) + 5, (1 << 63) - 1,
          (1 << 64) - 1],
)
def test_varints_match_the_generated_encoding(n: int) -> None:
    assert TracePacket(timestamp=n).SerializeToString() == b"\x40" + protowire.varint(n)


@pytest.mark.parametrize("n", [-1, -3, -(1 << 63)])
def test_negative_int64_is_ten_byte_twos_complement(n: int) -> None:
    assert TrackEvent(counter_value=n).SerializeToString() == b"\xf0\x01" + protowire.varint(n)


def test_field_helpers_match_the_generated_encoding() -> None:
    assert DebugAnnotation(double_value=0.1).SerializeToString() == protowire.double_field(5, 0.1)
    assert TrackEvent(flow_ids=[7]).SerializeToString() == protowire.fixed64_field(47, 7)
    assert TrackDescriptor(name="tools").SerializeToString() == protowire.len_field(2, b"tools")
    assert TrackDescriptor(uuid=300).SerializeToString() == protowire.varint_field(1, 300)


# -- a hand-built plan against the same packets built with the generated classes ------------------

ARGS: dict[str, dict[str, Any]] = {
    "A": {
        "request_id": "r1", "n": 5, "big": (1 << 64) - 1, "neg": -3, "f": 0.5, "ok": True, "none": None,
        "worker.a": 1, "worker.b": "x", "nested": {"k": [1, "y", {"z": 2.5}], "gone": None},
    },
    "B": {"request_id": "r1"},
    "C": {"request_id": "r2"},
    "D": {},
}


def hand_plan() -> Plan:
    root = Track(1, "root", TrackKind.GROUP, 0, None)
    lane1 = Track(2, "s requests", TrackKind.REQUEST, 1, 1, 1, 1, 0, "s requests")
    lane2 = Track(3, "s [lane 2] requests", TrackKind.REQUEST, 1, 2, 1, 2, 1, "s requests")
    inflight = Track(4, "s in flight", TrackKind.COUNTER, 1, None, 1, 3)
    rate = Track(5, "rate", TrackKind.COUNTER, 1, None, 1, 4)
    a = Event(lane1, 1000, 100, "LLM request: m", "dynamo.llm", EventKind.REQUEST, "A")
    b = Event(lane1, 1000, 40, "prefill", "dynamo.llm.stage", EventKind.STAGE_PREFILL, "B")
    c = Event(lane2, 1050, 100, "LLM request: m", "dynamo.llm", EventKind.REQUEST, "C")
    d = Event(lane1, 1100, None, "first token", "dynamo.llm.marker", EventKind.FIRST_TOKEN, "D")
    return Plan(
        tracks=[root, lane1, lane2, inflight, rate],
        events=[a, b, c, d],
        draw=DrawReport(),
        flows=[Flow(1, FlowKind.CALL, a, c)],
        counters=[CounterSeries(inflight, [1000, 1150], [1, 0]), CounterSeries(rate, [1000], [0.5])],
    )


def expected_trace() -> Trace:
    """The packets `hand_plan` must produce, spelled out with the generated classes."""
    t = Trace()

    def packet(**fields: Any) -> TracePacket:
        p = t.packet.add(trusted_packet_sequence_id=1, **fields)
        return p

    p = packet(sequence_flags=3)
    p.trace_packet_defaults.timestamp_clock_id = 64
    p = packet()
    p.clock_snapshot.clocks.add(clock_id=64, timestamp=0, unit_multiplier_ns=1000)  # µs since 1000 µs
    p.clock_snapshot.clocks.add(clock_id=6, timestamp=1_000_000)
    # the first track is described last, where the summary (known only then) goes
    packet(track_descriptor=TrackDescriptor(uuid=2, name="s requests", parent_uuid=1, sibling_order_rank=1))
    packet(track_descriptor=TrackDescriptor(uuid=3, name="s requests", parent_uuid=1, sibling_order_rank=2))
    for uuid, name, rank in ((4, "s in flight", 3), (5, "rate", 4)):
        p = packet(track_descriptor=TrackDescriptor(uuid=uuid, name=name, parent_uuid=1, sibling_order_rank=rank))
        p.track_descriptor.counter.SetInParent()

    COUNTER, BEGIN, END, INSTANT = TrackEvent.TYPE_COUNTER, TrackEvent.TYPE_SLICE_BEGIN, TrackEvent.TYPE_SLICE_END, TrackEvent.TYPE_INSTANT
    # Track by track, each in time order: lane 1 (A before its same-start child B, B's end before
    # A's, both before the instant at A's end), lane 2, then the counter series.
    p = packet(timestamp=0, sequence_flags=2)
    e = p.track_event
    e.category_iids.append(1)
    e.debug_annotations.add(name_iid=1, string_value_iid=1)
    e.debug_annotations.add(name_iid=2, int_value=5)
    e.debug_annotations.add(name_iid=3, string_value_iid=2)  # above int64: a string
    e.debug_annotations.add(name_iid=4, int_value=-3)
    e.debug_annotations.add(name_iid=5, double_value=0.5)
    e.debug_annotations.add(name_iid=6, bool_value=True)
    w = e.debug_annotations.add(name_iid=8)  # "worker.a", "worker.b" -> dict "worker"
    w.dict_entries.add(name_iid=7, int_value=1)
    w.dict_entries.add(name_iid=9, string_value_iid=3)
    n = e.debug_annotations.add(name_iid=10)
    k = n.dict_entries.add(name_iid=11)
    k.array_values.add(int_value=1)
    k.array_values.add(string_value_iid=4)
    k.array_values.add().dict_entries.add(name_iid=12, double_value=2.5)
    e.type = BEGIN
    e.name_iid = 1
    e.track_uuid = 2
    e.flow_ids.append(1)
    d = p.interned_data
    d.event_categories.add(iid=1, name="dynamo.llm")
    d.event_names.add(iid=1, name="LLM request: m")
    for iid, name in enumerate(["request_id", "n", "big", "neg", "f", "ok", "a", "worker", "b", "nested", "k", "z"], 1):
        d.debug_annotation_names.add(iid=iid, name=name)
    for iid, s in enumerate(["r1", str((1 << 64) - 1), "x", "y"], 1):
        d.debug_annotation_string_values.add(iid=iid, str=s.encode())
    p = packet(timestamp=0, sequence_flags=2)
    p.track_event.category_iids.append(2)
    p.track_event.debug_annotations.add(name_iid=1, string_value_iid=1)
    p.track_event.type = BEGIN
    p.track_event.name_iid = 2
    p.track_event.track_uuid = 2
    p.interned_data.event_categories.add(iid=2, name="dynamo.llm.stage")
    p.interned_data.event_names.add(iid=2, name="prefill")
    packet(timestamp=40, track_event=TrackEvent(type=END, track_uuid=2))  # B ends at 1040
    packet(timestamp=100, track_event=TrackEvent(type=END, track_uuid=2))  # A ends at 1100 ...
    p = packet(timestamp=100, sequence_flags=2)  # ... before the instant at 1100
    p.track_event.category_iids.append(3)
    p.track_event.type = INSTANT
    p.track_event.name_iid = 3
    p.track_event.track_uuid = 2
    p.interned_data.event_categories.add(iid=3, name="dynamo.llm.marker")
    p.interned_data.event_names.add(iid=3, name="first token")
    p = packet(timestamp=50, sequence_flags=2)  # C at 1050, the flow's target
    p.track_event.category_iids.append(1)
    p.track_event.debug_annotations.add(name_iid=1, string_value_iid=5)
    p.track_event.type = BEGIN
    p.track_event.name_iid = 1
    p.track_event.track_uuid = 3
    p.track_event.terminating_flow_ids.append(1)
    p.interned_data.debug_annotation_string_values.add(iid=5, str=b"r2")
    packet(timestamp=150, track_event=TrackEvent(type=END, track_uuid=3))  # C ends at 1150
    packet(timestamp=0, track_event=TrackEvent(type=COUNTER, track_uuid=4, counter_value=1))
    packet(timestamp=150, track_event=TrackEvent(type=COUNTER, track_uuid=4, counter_value=0))
    packet(timestamp=0, track_event=TrackEvent(type=COUNTER, track_uuid=5, double_counter_value=0.5))
    packet(track_descriptor=TrackDescriptor(uuid=1, name="root", child_ordering=TrackDescriptor.EXPLICIT))
    return t


def test_hand_built_plan_equals_the_generated_classes_message_and_bytes() -> None:
    buf = io.BytesIO()
    written = write_perfetto_proto(hand_plan(), buf, lambda e: ARGS[e.subject])
    ours = buf.getvalue()
    expected = expected_trace()
    decoded = Trace.FromString(ours)
    assert len(decoded.packet) == len(expected.packet)
    for i, (got, want) in enumerate(zip(decoded.packet, expected.packet, strict=True)):
        assert got == want, f"packet {i} differs:\n{got}\n--- expected ---\n{want}"
    assert ours == expected.SerializeToString()
    assert written == 10  # track events: 4 begins/instants, 3 ends, 3 counter samples


def test_a_trace_we_write_reserializes_to_the_same_bytes(tmp_path: Path) -> None:
    records, _ = read_files([str(SMALL)])
    for layout in Layout:
        plan = build_plan(records, ConvertOptions(markers=True), layout)
        buf = io.BytesIO()
        write_perfetto_proto(plan, buf, ArgsBuilder(), summary={"tool": "test"})
        data = buf.getvalue()
        assert Trace.FromString(data).SerializeToString() == data


@pytest.mark.slow
def test_the_large_trace_streamed_reserializes_to_the_same_bytes(tmp_path: Path) -> None:
    """Written batch by batch (several sequences: long sessions laid out after shorter, later ones
    start a new clock), every packet is one the generated classes write back byte for byte."""
    out = tmp_path / "large.pftrace"
    convert_files(sorted(str(p) for p in (ROOT / "fixtures/real/large").glob("*.jsonl.gz")), out, ConvertOptions())
    data = out.read_bytes()
    trace = Trace.FromString(data)
    assert trace.SerializeToString() == data
    packets = [Trace.FromString(zlib.decompress(p.compressed_packets)).packet for p in trace.packet]
    assert sum(len(ps) for ps in packets) > 700_000
    assert len({p.trusted_packet_sequence_id for ps in packets for p in ps}) >= 1


def test_deflated_output_holds_the_same_packets() -> None:
    """Compression.DEFLATE (the CLI's default) wraps the same packet stream in compressed chunks."""
    from agent_trace.encode.proto import Compression

    records, _ = read_files([str(SMALL)])
    plan = build_plan(records, ConvertOptions(markers=True), Layout.AGENT)
    plain, deflated = io.BytesIO(), io.BytesIO()
    write_perfetto_proto(plan, plain, ArgsBuilder())
    write_perfetto_proto(plan, deflated, ArgsBuilder(), compression=Compression.DEFLATE)
    chunks = Trace.FromString(deflated.getvalue()).packet
    assert chunks and all(p.HasField("compressed_packets") for p in chunks)
    inner = b"".join(zlib.decompress(p.compressed_packets) for p in chunks)
    assert inner == plain.getvalue()
    assert len(deflated.getvalue()) < len(plain.getvalue()) / 2


def same_instant_flows_plan() -> Plan:
    """Flows z -> q -> p whose ends all begin at t=100, with p's track written first (it is the
    heaviest subtree) and z's last: the file order must still put each source first."""
    root = Track(1, "root", TrackKind.GROUP, 0, None)
    x = Track(2, "x", TrackKind.REQUEST, 1, 1, 1, 1)
    y = Track(3, "y tools", TrackKind.TOOLS, 2, 2, 1, 2)
    z = Track(4, "z", TrackKind.REQUEST, 3, 3, 1, 3)
    events = [
        Event(x, 10, 5, "r1", "dynamo.llm", EventKind.REQUEST, "D"),
        Event(x, 20, 5, "r2", "dynamo.llm", EventKind.REQUEST, "D"),
        Event(x, 90, 10, "r3", "dynamo.llm", EventKind.REQUEST, "D"),  # ends at 100, where p begins
        Event(x, 100, 50, "p", "dynamo.llm", EventKind.REQUEST, "D"),
        Event(y, 100, 40, "q", "dynamo.agent.tool", EventKind.TOOL, "D"),
        Event(y, 30, 5, "q0", "dynamo.agent.tool", EventKind.TOOL, "D"),
        Event(z, 100, 10, "z", "dynamo.llm", EventKind.REQUEST, "D"),
    ]
    p, q, zz = events[3], events[4], events[6]
    return Plan(tracks=[root, x, y, z], events=events, draw=DrawReport(),
                flows=[Flow(1, FlowKind.CALL, q, p), Flow(2, FlowKind.SPAWN, zz, q)])


def test_flows_between_slices_beginning_at_one_instant_keep_source_before_target(perfetto_tp) -> None:
    buf = io.BytesIO()
    write_perfetto_proto(same_instant_flows_plan(), buf, lambda e: ARGS[e.subject])
    data = buf.getvalue()
    iid_names: dict[int, str] = {}
    names = []  # slice names in file order
    for packet in Trace.FromString(data).packet:
        iid_names.update((n.iid, n.name) for n in packet.interned_data.event_names)
        if packet.track_event.name_iid:
            names.append(iid_names[packet.track_event.name_iid])
    assert names.index("z") < names.index("q") < names.index("p")  # written in flow order ...
    assert names.index("r1") < names.index("q0") < names.index("z")  # ... the rest track by track
    trace = decode_trace(data)
    assert validate_proto(trace) == []
    by_name = {s.name: s for s in trace.slices}
    assert (by_name["r3"].ts, by_name["r3"].dur, by_name["p"].ts, by_name["p"].dur) == (90, 10, 100, 50)
    assert by_name["z"].flow_out == [2] and by_name["q"].flow_in == [2] and by_name["q"].flow_out == [1]

    perfetto_tp.load_bytes(data)
    assert perfetto_tp.query(ERROR_STATS_SQL) == []
    flows = perfetto_tp.query(
        "select so.name src, si.name dst from flow f join slice so on f.slice_out = so.id "
        "join slice si on f.slice_in = si.id order by src")
    assert flows == [{"src": "q", "dst": "p"}, {"src": "z", "dst": "q"}]
    assert perfetto_tp.query("select max(depth) d from slice")[0]["d"] == 0
