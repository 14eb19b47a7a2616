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
