"""The invariant validator (agent_trace.validate) catches each kind of violation and accepts what
Perfetto imports cleanly: nested slices, adjacent slices, equal slices, instants anywhere.

Every other test relies on this validator to vouch for the output, so each rule gets a document
that breaks exactly that rule, plus a near miss that must pass.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent_trace.validate import Violation, validate_chrome

PID = 1
REQ, TOOLS, OTHER = 1, 2, 3


def meta(*, threads: dict[int, str] | None = None, process: bool = True) -> list[dict[str, Any]]:
    threads = {REQ: "orchestrator", TOOLS: "orchestrator tools", OTHER: "worker:0"} if threads is None else threads
    out: list[dict[str, Any]] = []
    if process:
        out.append({"name": "process_name", "ph": "M", "pid": PID, "args": {"name": "Dynamo request trace"}})
    out += [{"name": "thread_name", "ph": "M", "pid": PID, "tid": tid, "args": {"name": n}} for tid, n in threads.items()]
    return out


def x(ts: Any, dur: Any, *, tid: int = REQ, name: str = "s", cat: str = "dynamo.llm", **args: Any) -> dict[str, Any]:
    return {"name": name, "cat": cat, "ph": "X", "pid": PID, "tid": tid, "ts": ts, "dur": dur, "args": args}


def instant(ts: int, *, tid: int = REQ, name: str = "first token", cat: str = "dynamo.llm.marker") -> dict[str, Any]:
    return {"name": name, "cat": cat, "ph": "i", "s": "t", "pid": PID, "tid": tid, "ts": ts, "args": {}}


def request(ts: int, dur: int, rid: str, *, tid: int = REQ) -> dict[str, Any]:
    return x(ts, dur, tid=tid, name="LLM request: m", cat="dynamo.llm", request_id=rid)


def stage(ts: int, dur: int, rid: str | None, name: str = "prefill", *, tid: int = REQ) -> dict[str, Any]:
    return x(ts, dur, tid=tid, name=name, cat="dynamo.llm.stage", request_id=rid)


def doc(*events: dict[str, Any], metadata: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"displayTimeUnit": "ms", "traceEvents": (meta() if metadata is None else metadata) + list(events)}


def rules(violations: list[Violation]) -> list[str]:
    return [v.rule for v in violations]


# -- what must pass ---------------------------------------------------------------------------------


def test_accepts_an_empty_trace() -> None:
    assert validate_chrome({"displayTimeUnit": "ms", "traceEvents": []}) == []


def test_accepts_nested_adjacent_and_equal_slices() -> None:
    d = doc(
        request(1_000, 100, "r1"),
        stage(1_000, 10, "r1", "prefill wait"),  # starts with its parent
        stage(1_010, 20, "r1", "prefill"),  # adjacent to the previous stage
        stage(1_030, 70, "r1", "decode"),  # ends with its parent
        request(1_100, 50, "r2"),  # adjacent to the previous request: same lane is fine
        stage(1_100, 50, "r2", "decode"),  # exactly as long as its request
        x(1_110, 10, name="deeper"),  # a third level
        x(1_112, 1, name="deepest"),
        instant(1_200),  # instants may fall anywhere, even outside every slice
        instant(0, tid=OTHER),
        x(5, 5, tid=TOOLS, name="Tool: bash", cat="dynamo.agent.tool"),
        instant(7, tid=TOOLS, name="Tool start: bash", cat="dynamo.agent.tool.marker"),
    )
    assert validate_chrome(d) == []


def test_accepts_partial_overlap_across_threads() -> None:
    assert validate_chrome(doc(x(0, 100, tid=REQ), x(50, 100, tid=OTHER))) == []


def test_accepts_a_child_longer_than_an_earlier_sibling() -> None:
    # Same start, different lengths: the longer one is the parent whatever the input order.
    assert validate_chrome(doc(x(0, 10, name="short"), x(0, 30, name="long"), x(10, 20, name="next"))) == []


def test_stage_checks_skip_stages_without_request_id() -> None:
    assert validate_chrome(doc(stage(0, 10, None))) == []


# -- what must fail ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "detail"),
    [
        ([x(0, 100, name="a"), x(50, 100, name="b")], "'b' [50, 150) crosses 'a' ending at 100"),
        ([x(0, 100, name="a"), x(10, 40, name="b"), x(40, 100, name="c")], "'c' [40, 140) crosses 'b' ending at 50"),
        ([x(0, 100, name="a"), x(10, 40, name="b"), x(60, 60, name="c")], "'c' [60, 120) crosses 'a' ending at 100"),
        ([x(50, 100, name="late"), x(0, 100, name="early")], "'late' [50, 150) crosses 'early' ending at 100"),
    ],
    ids=["siblings", "with-nested-child", "with-grandparent", "input-order-irrelevant"],
)
def test_catches_partial_overlap_on_one_thread(events: list[dict[str, Any]], detail: str) -> None:
    violations = validate_chrome(doc(*events))
    assert rules(violations) == ["overlap"]
    assert detail in violations[0].detail
    assert f"({PID}, {REQ})" in violations[0].detail


@pytest.mark.parametrize("dur", [0, -5, None, 1.5, "10"], ids=["zero", "negative", "missing", "float", "string"])
def test_catches_a_bad_duration(dur: Any) -> None:
    event = x(100, dur, name="bad")
    if dur is None:
        del event["dur"]
    violations = validate_chrome(doc(event, x(0, 1_000, name="fine")))
    assert rules(violations) == ["dur"]
    assert "(bad)" in violations[0].detail


@pytest.mark.parametrize("ts", [-1, None, 1.5, "7"], ids=["negative", "missing", "float", "string"])
def test_catches_a_bad_timestamp(ts: Any) -> None:
    for event in (x(ts, 10, name="bad"), instant(0)):
        if event["ph"] == "i":
            event["ts"] = ts
        violations = validate_chrome(doc(event))
        assert rules(violations) == ["ts"]


@pytest.mark.parametrize(
    ("stage_ts", "stage_dur"),
    [(990, 20), (1_090, 20), (900, 50), (1_200, 10), (990, 200)],
    ids=["starts-before", "ends-after", "entirely-before", "entirely-after", "encloses-request"],
)
def test_catches_a_stage_outside_its_request(stage_ts: int, stage_dur: int) -> None:
    violations = validate_chrome(doc(request(1_000, 100, "r1"), stage(stage_ts, stage_dur, "r1", tid=OTHER)))
    assert rules(violations) == ["stage"]
    assert "stage 'prefill' of request r1" in violations[0].detail


def test_a_stage_must_lie_inside_its_own_request_not_any_request() -> None:
    d = doc(request(1_000, 100, "r1"), request(2_000, 100, "r2", tid=OTHER), stage(2_010, 10, "r1", tid=OTHER))
    assert rules(validate_chrome(d)) == ["stage"]
    d = doc(request(1_000, 100, "r1"), stage(1_010, 10, "r-unknown"))
    assert rules(validate_chrome(d)) == ["stage"]


@pytest.mark.parametrize(
    "event",
    [
        x(0, 10, tid=REQ, name="Tool: bash", cat="dynamo.agent.tool"),
        instant(0, tid=OTHER, name="Tool start: bash", cat="dynamo.agent.tool.marker"),
    ],
    ids=["tool-slice", "tool-start-instant"],
)
def test_catches_a_tool_event_off_the_tools_track(event: dict[str, Any]) -> None:
    violations = validate_chrome(doc(event))
    assert rules(violations) == ["tool_track"]
    assert "not a tools track" in violations[0].detail


def test_a_tools_track_is_recognised_by_its_name_suffix() -> None:
    m = meta(threads={7: "orchestrator [lane 2] tools", 8: "tools of orchestrator"})
    ok = x(0, 10, tid=7, cat="dynamo.agent.tool")
    bad = x(0, 10, tid=8, cat="dynamo.agent.tool")
    assert validate_chrome(doc(ok, metadata=m)) == []
    assert rules(validate_chrome(doc(bad, metadata=m))) == ["tool_track"]


def test_catches_a_missing_thread_name() -> None:
    violations = validate_chrome(doc(x(0, 10, tid=99), instant(5, tid=98)))
    assert rules(violations) == ["thread_name", "thread_name"]
    assert any("(1, 99)" in v.detail for v in violations)
    assert any("(1, 98)" in v.detail for v in violations)


def test_catches_a_missing_process_name() -> None:
    violations = validate_chrome(doc(x(0, 10), metadata=meta(process=False)))
    assert rules(violations) == ["process_name"]


def test_catches_an_instant_with_a_duration_and_unknown_phases() -> None:
    bad_instant = {**instant(0), "dur": 3}
    begin = {"name": "b", "ph": "B", "pid": PID, "tid": REQ, "ts": 0}
    assert rules(validate_chrome(doc(bad_instant))) == ["instant"]
    assert rules(validate_chrome(doc(begin))) == ["phase"]


@pytest.mark.parametrize("value", [None, [], {"traceEvents": {}}, {"events": []}], ids=str)
def test_catches_a_document_of_the_wrong_shape(value: Any) -> None:
    assert rules(validate_chrome(value)) == ["shape"]


def test_reports_every_kind_at_once_and_respects_the_limit() -> None:
    d = doc(
        x(0, 100, name="a"),
        x(50, 100, name="b"),
        x(300, 0, name="zero"),
        request(1_000, 100, "r1"),
        stage(1_050, 100, "r1", tid=OTHER),
        x(2_000, 10, tid=REQ, name="Tool: bash", cat="dynamo.agent.tool"),
        x(3_000, 10, tid=42),
    )
    assert sorted(set(rules(validate_chrome(d)))) == ["dur", "overlap", "stage", "thread_name", "tool_track"]
    staircase = doc(*[x(i, 10, name=f"s{i}") for i in range(0, 400, 5)])  # each crosses the one before: 79
    assert len(validate_chrome(staircase)) == 50  # the default limit
    assert len(validate_chrome(staircase, limit=500)) == 79
    assert len(validate_chrome(staircase, limit=3)) == 3


def test_violation_prints_rule_and_detail() -> None:
    assert str(Violation("dur", "event 3 (x) has dur 0")) == "dur: event 3 (x) has dur 0"


# -- JSON flows and counters ------------------------------------------------------------------------


def flow(ph: str, ts: int, fid: int = 1, *, tid: int = REQ) -> dict[str, Any]:
    return {"name": "call", "cat": "dynamo.flow", "ph": ph, "id": fid, "pid": PID, "tid": tid, "ts": ts,
            **({"bp": "e"} if ph == "f" else {})}


def counter(ts: int, **values: Any) -> dict[str, Any]:
    return {"name": "in flight", "ph": "C", "pid": PID, "ts": ts, "args": values}


def test_json_flows_bind_to_the_enclosing_slice_on_their_thread() -> None:
    slices = [x(0, 10, name="src"), x(20, 10, tid=OTHER, name="dst")]
    assert validate_chrome(doc(*slices, flow("s", 5), flow("f", 20, tid=OTHER))) == []
    violations = validate_chrome(doc(*slices, flow("s", 5), flow("f", 30, tid=OTHER)))  # dst ends at 30
    assert rules(violations) == ["flow"] and "not inside any slice" in violations[0].detail
    assert rules(validate_chrome(doc(*slices, flow("s", 5)))) == ["flow"]  # no end
    assert rules(validate_chrome(doc(*slices, flow("s", 25, tid=OTHER), flow("f", 5)))) == ["flow"]  # back in time


def test_json_counters_are_numeric_with_one_sample_per_time_and_series() -> None:
    assert validate_chrome(doc(counter(0, value=1), counter(0, other=2.5), counter(5, value=0))) == []
    assert rules(validate_chrome(doc(counter(0, value=1), counter(0, value=2)))) == ["counter_time"]
    assert rules(validate_chrome(doc(counter(0, value="1")))) == ["counter"]
    assert rules(validate_chrome(doc(counter(0)))) == ["counter"]
    assert rules(validate_chrome(doc(counter(0, value=1), metadata=meta(process=False)))) == ["process_name"]


# -- one rule set, two formats ----------------------------------------------------------------------
#
# A scenario is written once and encoded both as Chrome JSON (one thread per track, pid 1) and as a
# Perfetto protobuf (built with the `perfetto` package's generated classes: one track per track,
# under one named group); both must give the same rules. (A protobuf cannot express a partial
# overlap: its slice ends close the innermost open slice.)

S = tuple[str, int, int | None, str, str, dict[str, Any]]  # track, ts, dur (None: instant), name, cat, args
TRACKS = {"orchestrator": 10, "orchestrator tools": 11, "worker:0": 12, "in flight": 13}


def scenario_json(slices: list[S], flows: list[tuple[int, int, int]], samples: list[tuple[int, float]],
                  unnamed: str | None) -> dict[str, Any]:
    threads = {tid: name for name, tid in TRACKS.items() if name not in ("in flight", unnamed)}
    events = []
    for track, ts, dur, name, cat, args in slices:
        e = x(ts, dur, tid=TRACKS[track], name=name, cat=cat, **args)
        if dur is None:
            e = {**instant(ts, tid=TRACKS[track], name=name, cat=cat), "args": args}
        events.append(e)
    for fid, src, dst in flows:  # at the start of the slices they join, on their threads
        events.append(flow("s", slices[src][1], fid, tid=TRACKS[slices[src][0]]))
        events.append(flow("f", slices[dst][1], fid, tid=TRACKS[slices[dst][0]]))
    events += [counter(ts, value=v) for ts, v in samples]
    return doc(*events, metadata=meta(threads=threads))


def scenario_proto(slices: list[S], flows: list[tuple[int, int, int]], samples: list[tuple[int, float]],
                   unnamed: str | None) -> bytes:
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace, TrackEvent

    t = Trace()
    t.packet.add(trusted_packet_sequence_id=1, sequence_flags=1).track_descriptor.name = "Dynamo request trace"
    root = t.packet[0].track_descriptor
    root.uuid = 1
    for name, uuid in TRACKS.items():
        td = t.packet.add(trusted_packet_sequence_id=1).track_descriptor
        td.uuid, td.parent_uuid = uuid, 1
        if name != unnamed:
            td.name = name
        if name == "in flight":
            td.counter.SetInParent()
    timed: list[tuple[int, float, Any]] = []  # (ts, order at that instant, the event)
    for n, (track, ts, dur, name, cat, args) in enumerate(slices):
        te = TrackEvent(track_uuid=TRACKS[track], name=name, categories=[cat],
                        type=TrackEvent.TYPE_INSTANT if dur is None else TrackEvent.TYPE_SLICE_BEGIN)
        for k, v in args.items():
            te.debug_annotations.add(name=k, string_value=v)
        te.flow_ids.extend(fid for fid, src, _ in flows if src == n)
        te.terminating_flow_ids.extend(fid for fid, _, dst in flows if dst == n)
        timed.append((ts, 2 * n + 1, te))
        if dur is not None:
            order = 2 * n + 1.5 if dur == 0 else 2 * n  # after its own begin, else before later begins
            timed.append((ts + dur, order, TrackEvent(track_uuid=TRACKS[track], type=TrackEvent.TYPE_SLICE_END)))
    timed += [(ts, -1, TrackEvent(track_uuid=13, type=TrackEvent.TYPE_COUNTER, double_counter_value=v))
              for ts, v in samples]
    for ts, _, te in sorted(timed, key=lambda item: item[:2]):  # ends before begins at one instant
        t.packet.add(trusted_packet_sequence_id=1, timestamp=ts * 1000).track_event.CopyFrom(te)
    return t.SerializeToString()


REQUEST: S = ("orchestrator", 1_000, 100, "LLM request: m", "dynamo.llm", {"request_id": "r1"})
SCENARIOS: dict[str, tuple[list[S], list[tuple[int, int, int]], list[tuple[int, float]], str | None, list[str]]] = {
    "clean": (
        [REQUEST,
         ("worker:0", 1_000, 10, "prefill", "dynamo.llm.stage", {"request_id": "r1"}),
         ("worker:0", 1_010, 90, "decode", "dynamo.llm.stage", {"request_id": "r1"}),
         ("orchestrator", 1_010, 10, "inner", "dynamo.llm.stage", {}),
         ("orchestrator", 1_100, None, "first token", "dynamo.llm.marker", {}),
         ("orchestrator tools", 1_100, 50, "Tool: bash", "dynamo.agent.tool", {}),
         ("orchestrator tools", 1_100, None, "Tool start: bash", "dynamo.agent.tool.marker", {})],
        [(7, 0, 5)], [(1_000, 1), (1_100, 0)], None, [],
    ),
    "stage-outside-request": (
        [REQUEST, ("worker:0", 1_050, 100, "prefill", "dynamo.llm.stage", {"request_id": "r1"})],
        [], [], None, ["stage"],
    ),
    "tool-off-tools-track": ([("worker:0", 0, 10, "Tool: bash", "dynamo.agent.tool", {})], [], [], None, ["tool_track"]),
    "zero-dur": ([REQUEST, ("worker:0", 5, 0, "empty", "dynamo.llm.stage", {})], [], [], None, ["dur"]),
    "flow-two-sources": ([REQUEST, REQUEST[:1] + (2_000,) + REQUEST[2:]], [(3, 0, 1), (3, 1, 0)], [], None, ["flow"]),
    "flow-back-in-time": ([REQUEST, ("worker:0", 500, 10, "early", "dynamo.llm", {})], [(3, 0, 1)], [], None, ["flow"]),
    "counter-twice-at-once": ([], [], [(5, 1), (5, 2)], None, ["counter_time"]),
    "unnamed-track": ([("worker:0", 0, 10, "s", "dynamo.llm", {})], [], [], "worker:0", ["<kind>_name"]),
}


@pytest.mark.parametrize("fmt", ["json", "proto"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_both_formats_break_the_same_rules(fmt: str, name: str) -> None:
    from agent_trace.validate import validate_proto

    slices, flows, samples, unnamed, expected = SCENARIOS[name]
    if fmt == "json":
        got = validate_chrome(scenario_json(slices, flows, samples, unnamed))
    else:
        got = validate_proto(scenario_proto(slices, flows, samples, unnamed))
    kind = "thread" if fmt == "json" else "track"
    assert rules(got) == [r.replace("<kind>", kind) for r in expected], got


def test_one_message_per_rule_whatever_the_format() -> None:
    from agent_trace.validate import validate_proto

    slices, flows, samples, unnamed, _ = SCENARIOS["stage-outside-request"]
    (from_json,) = validate_chrome(scenario_json(slices, flows, samples, unnamed))
    (from_proto,) = validate_proto(scenario_proto(slices, flows, samples, unnamed))
    assert from_json == from_proto == Violation("stage", "stage 'prefill' of request r1 lies outside its request")


# -- protobuf-only problems -------------------------------------------------------------------------


def proto_trace(*packets: dict[str, Any], tracks: dict[int, tuple[str | None, int | None, bool]] | None = None) -> bytes:
    """Track descriptors (uuid -> (name, parent, counter)), then the given packets' TrackEvents."""
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

    t = Trace()
    for uuid, (name, parent, is_counter) in ({1: ("row", None, False)} if tracks is None else tracks).items():
        td = t.packet.add(trusted_packet_sequence_id=1, sequence_flags=1).track_descriptor
        td.uuid = uuid
        if name is not None:
            td.name = name
        if parent is not None:
            td.parent_uuid = parent
        if is_counter:
            td.counter.SetInParent()
    for fields in packets:
        p = t.packet.add(trusted_packet_sequence_id=1, timestamp=fields.pop("ts") * 1000)
        for k, v in fields.items():
            if k == "name_iid":
                p.track_event.name_iid = v
            else:
                setattr(p.track_event, k, v)
    return t.SerializeToString()


def begin(ts: int, track: int = 1, name: str = "s") -> dict[str, Any]:
    return {"ts": ts, "type": 1, "track_uuid": track, "name": name}


def end(ts: int, track: int = 1) -> dict[str, Any]:
    return {"ts": ts, "type": 2, "track_uuid": track}


def test_protobuf_decode_problems_and_track_tree_rules() -> None:
    from agent_trace.validate import validate_proto

    assert validate_proto(proto_trace(begin(0), end(10))) == []
    assert rules(validate_proto(proto_trace(begin(0)))) == ["slice_open", "dur"]  # closed at dur 0
    assert rules(validate_proto(proto_trace(end(10)))) == ["slice_end"]
    assert rules(validate_proto(proto_trace({"ts": 0, "type": 3, "track_uuid": 1, "name_iid": 9}))) == ["interning"]
    assert rules(validate_proto(proto_trace(begin(0, track=2), end(10, track=2)))) == ["track"]
    counter_track = {1: ("row", None, False), 2: ("n", 1, True)}
    assert rules(validate_proto(proto_trace(begin(0, track=2), end(10, track=2), tracks=counter_track))) == ["counter_track"]
    samples_on_row = proto_trace({"ts": 0, "type": 4, "track_uuid": 1, "counter_value": 3})
    assert rules(validate_proto(samples_on_row)) == ["counter_track"]
    assert rules(validate_proto(proto_trace(tracks={1: ("a", 5, False)}))) == ["track_parent"]
    cycle = {1: ("a", 2, False), 2: ("b", 1, False)}
    assert rules(validate_proto(proto_trace(tracks=cycle))) == ["track_cycle", "track_cycle"]
    assert rules(validate_proto(b"\xff\xff\xff")) == ["shape"]
