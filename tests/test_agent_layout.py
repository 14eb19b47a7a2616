"""The agent layout (agent_trace.layout.agent): session tree, lanes, flows and counters.

Hand-built 1.6.1-style records, one behaviour per test. Every plan is also encoded to Chrome JSON
and checked by the invariant validator, so layout bugs that break the output fail here too.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent_trace.args import ArgsBuilder
from agent_trace.convert import Layout, build_plan, records_from_objects
from agent_trace.encode.chrome_json import write_chrome_json
from agent_trace.ingest.reader import collect, read_files
from agent_trace.layout.agent import GLOBAL_NAME, ROOT_NAME, AgentLayout
from agent_trace.layout.plan import EventKind, FlowKind, Plan, Track, TrackKind
from agent_trace.layout.units import FlushPolicy, batches
from agent_trace.options import ConvertOptions, Fix
from agent_trace.report import DrawReport
from agent_trace.validate import validate_chrome

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "fixtures/real/small/dynamo-request-trace.jsonl"
T0 = 1_795_476_000_000  # epoch ms


def req(
    session: str,
    rid: str,
    start: int,
    total: float,
    *,
    parent: str | None = None,
    trigger: str | None = "tool_result",
    calls: tuple[tuple[str, str], ...] = (),
    ttft: float = 10.0,
    tokens: int = 20,
    queue: int = 0,
    kv: float = 0.5,
) -> dict[str, Any]:
    """A 1.6.1 request_end; `start` is ms after T0."""
    ctx: dict[str, Any] = {"session_id": session}
    if parent:
        ctx["parent_session_id"] = parent
    if trigger:
        ctx["input_trigger"] = trigger
    finish: dict[str, Any] = {"finish_reason": "tool_calls" if calls else "stop", "backend_finish_reason": "stop"}
    if calls:
        finish["tool_calls"] = [
            {"choice_index": 0, "tool_call_index": i, "id": cid, "name": name} for i, (cid, name) in enumerate(calls)
        ]
    return {"timestamp": 0, "event": {
        "schema": "dynamo.request.trace.v1", "event_type": "request_end",
        "event_time_unix_ms": T0 + start + round(total), "event_source": "dynamo", "agent_context": ctx,
        "request": {
            "request_id": rid, "x_request_id": f"x-{rid}", "model": "m", "request_received_ms": T0 + start,
            "prefill_wait_time_ms": 1.0, "prefill_time_ms": ttft - 1.0, "ttft_ms": ttft, "total_time_ms": total,
            "output_tokens": tokens, "queue_depth": queue, "kv_hit_rate": kv,
            "worker": {"decode_worker_id": 12837849614274314029, "prefill_worker_id": 1172434761562710802},
            "finish_reason_metadata": finish,
        },
    }}


def tool(session: str, cid: str, name: str, start: int, end: int | None, *, parent: str | None = None) -> dict[str, Any]:
    """A tool_end (or, with end=None, a tool_start that is never closed)."""
    ctx: dict[str, Any] = {"session_id": session}
    if parent:
        ctx["parent_session_id"] = parent
    body: dict[str, Any] = {"tool_call_id": cid, "tool_class": name, "started_at_unix_ms": T0 + start}
    if end is not None:
        body.update(ended_at_unix_ms=T0 + end, status="succeeded")
    return {"timestamp": 0, "event": {
        "schema": "dynamo.request.trace.v1", "event_type": "tool_end" if end is not None else "tool_start",
        "event_time_unix_ms": T0 + (end if end is not None else start), "event_source": "harness",
        "agent_context": ctx, "tool": body,
    }}


def plan_of(rows: list[dict[str, Any]], **options: Any) -> Plan:
    records, _ = records_from_objects(rows)
    plan = build_plan(records, ConvertOptions(**options), Layout.AGENT)
    buf = io.BytesIO()
    write_chrome_json(plan, buf, ArgsBuilder())
    violations = validate_chrome(orjson.loads(buf.getvalue()))
    assert not violations, "\n".join(map(str, violations))
    return plan


def tree(plan: Plan) -> list[tuple[int, str, str]]:
    """(depth, kind, name) depth-first, siblings by rank: what a viewer shows."""
    kids: dict[int | None, list[Track]] = {}
    for t in plan.tracks:
        kids.setdefault(t.parent, []).append(t)
    out: list[tuple[int, str, str]] = []

    def walk(parent: int | None, depth: int) -> None:
        for t in sorted(kids.get(parent, []), key=lambda t: t.rank):
            out.append((depth, t.kind.value, t.shared_name or t.name))
            walk(t.uid, depth + 1)

    walk(None, 0)
    return out


def by_name(plan: Plan, name: str) -> Track:
    (t,) = [t for t in plan.tracks if t.name == name]
    return t


# -- the track tree ------------------------------------------------------------------------------


def subagent_rows() -> list[dict[str, Any]]:
    return [
        req("root", "r1", 0, 100, trigger="user_message", calls=(("c1", "agent"), ("c2", "agent"))),
        tool("root", "c1", "agent", 101, 600),
        tool("root", "c2", "agent", 101, 420),
        req("sub-b", "s1", 110, 50, parent="root", trigger="user_message", calls=(("cb", "grep"),)),
        req("sub-a", "a1", 105, 50, parent="root", trigger="user_message", calls=(("ca", "bash"),)),
        tool("sub-a", "ca", "bash", 156, 200, parent="root"),
        req("sub-a", "a2", 201, 30, parent="root"),
        tool("sub-b", "cb", "grep", 161, 400, parent="root"),
        req("sub-b", "s2", 401, 15, parent="root"),
        req("grand", "g1", 170, 20, parent="sub-b", trigger="user_message"),
        req("root", "r2", 601, 50),
        req("other", "o1", 50, 10, trigger="user_message"),
    ]


def test_sessions_nest_under_their_parent_in_start_order() -> None:
    plan = plan_of(subagent_rows())
    assert tree(plan) == [
        (0, "group", ROOT_NAME),
        (1, "process", GLOBAL_NAME),
        (2, "counter", "requests in flight"),
        (2, "counter", "tools in flight"),
        (2, "counter", "queue depth"),
        (2, "counter", "KV hit rate"),
        (2, "counter", "output tokens/s"),
        (1, "process", "root"),
        (2, "request", "root requests"),
        (2, "counter", "root requests in flight"),
        (2, "stages", "root stages"),
        (2, "tools", "root tools"),
        (2, "tools", "root tools"),
        (2, "counter", "root tools in flight"),
        (2, "group", "sub-a"),  # first activity at 105
        (3, "request", "sub-a requests"),
        (3, "stages", "sub-a stages"),
        (3, "tools", "sub-a tools"),
        (2, "group", "sub-b"),  # at 110
        (3, "request", "sub-b requests"),
        (3, "stages", "sub-b stages"),
        (3, "tools", "sub-b tools"),
        (3, "group", "grand"),
        (4, "request", "grand requests"),
        (4, "stages", "grand stages"),
        (1, "process", "other"),  # a second root, starting at 50: after "root" (at 0)
        (2, "request", "other requests"),
        (2, "counter", "other requests in flight"),
        (2, "stages", "other stages"),
    ]


def test_a_subtree_is_one_chrome_process_with_threads_in_tree_order() -> None:
    plan = plan_of(subagent_rows())
    root = by_name(plan, "root")
    threads = sorted((t for t in plan.tracks if t.pid == root.pid and t.tid is not None), key=lambda t: t.tid)
    assert [t.name for t in threads] == [
        "root requests", "root stages", "root tools", "root [lane 2] tools",
        "sub-a requests", "sub-a stages", "sub-a tools",
        "sub-b requests", "sub-b stages", "sub-b tools",
        "grand requests", "grand stages",
    ]
    assert [t.rank for t in threads] == sorted(t.rank for t in threads)
    procs = sorted((t for t in plan.tracks if t.kind is TrackKind.PROCESS), key=lambda t: t.pid)
    assert [p.name for p in procs] == [GLOBAL_NAME, "root", "other"]
    assert plan.sort_indices


def test_a_parent_without_rows_of_its_own_still_groups_its_children() -> None:
    plan = plan_of([req("kid", "k1", 0, 10, parent="ghost", trigger="user_message")])
    names = tree(plan)
    assert (1, "process", "ghost") in names
    assert (2, "group", "kid") in names


def test_a_parent_cycle_leaves_the_sessions_as_roots() -> None:
    plan = plan_of([
        req("a", "a1", 0, 10, parent="b", trigger="user_message"),
        req("b", "b1", 5, 10, parent="a", trigger="user_message"),
    ])
    tops = [name for depth, kind, name in tree(plan) if depth == 1]
    assert GLOBAL_NAME in tops and ("a" in tops or "b" in tops)
    assert len([t for t in plan.tracks if t.kind is TrackKind.REQUEST]) == 2


# -- lanes ---------------------------------------------------------------------------------------


def test_overlapping_requests_get_lanes_that_share_one_name() -> None:
    plan = plan_of([
        req("s", "a", 0, 100, trigger="user_message"),
        req("s", "b", 50, 100, trigger="user_message"),
        req("s", "c", 200, 10, trigger="user_message"),
    ])
    lanes = [t for t in plan.tracks if t.kind is TrackKind.REQUEST]
    assert [t.name for t in lanes] == ["s requests", "s [lane 2] requests"]
    assert {t.shared_name for t in lanes} == {"s requests"}
    stages = [t for t in plan.tracks if t.kind is TrackKind.STAGES]
    assert [t.name for t in stages] == ["s stages", "s [lane 2] stages"]
    # Stages of a request are on the stage lane of the request's lane.
    lane_of = {e.subject.request_id: e.track.lane for e in plan.events if e.kind is EventKind.REQUEST}
    for e in plan.events:
        if e.cat == "dynamo.llm.stage":
            assert e.track.lane == lane_of[e.subject.request_id]
    assert lane_of == {"a": 0, "b": 1, "c": 0}


def test_adjacent_requests_share_a_lane() -> None:
    plan = plan_of([req("s", "a", 0, 100, trigger="user_message"), req("s", "b", 100, 10)])
    assert [t.name for t in plan.tracks if t.kind is TrackKind.REQUEST] == ["s requests"]


def test_slices_are_upstreams_slices() -> None:
    """Names, categories and bounds are exactly the upstream layout's; only placement differs."""
    records, _ = read_files([str(SMALL)])
    for options in (ConvertOptions(), ConvertOptions(markers=True, fixes=frozenset({Fix.INFERENCE}))):
        upstream = build_plan(records, options, Layout.UPSTREAM)
        agent = build_plan(records, options, Layout.AGENT)

        def key(plan: Plan) -> Counter[tuple[Any, ...]]:
            return Counter((e.name, e.cat, e.ts, e.dur, e.kind) for e in plan.events)

        assert key(agent) == key(upstream)
        assert agent.draw.converted == upstream.draw.converted
        assert agent.draw.by_category == upstream.draw.by_category


# -- flows ---------------------------------------------------------------------------------------


def flows_of(plan: Plan) -> list[tuple[str, str, str]]:
    def label(e: Any) -> str:
        if e.kind is EventKind.REQUEST:
            return e.subject.request_id
        if e.kind is EventKind.INFERRED_TOOL:
            return f"inferred {e.subject.call.id}"
        return f"tool {e.subject.event.tool_call_id}"

    return [(f.kind.value, label(f.source), label(f.target)) for f in plan.flows]


def test_request_to_tool_to_consuming_request() -> None:
    plan = plan_of([
        req("s", "r1", 0, 100, trigger="user_message", calls=(("c1", "bash"), ("c2", "grep"))),
        tool("s", "c1", "bash", 100, 150),
        tool("s", "c2", "grep", 100, 180),
        req("s", "side", 160, 10, trigger="other"),  # not a consumer: input_trigger says so
        req("s", "r2", 185, 20),
    ])
    assert sorted(flows_of(plan)) == sorted([
        ("tool call", "r1", "tool c1"),
        ("tool call", "r1", "tool c2"),
        ("tool result", "tool c1", "r2"),
        ("tool result", "tool c2", "r2"),
    ])
    for f in plan.flows:
        assert f.target.ts >= f.source.ts
    assert len({f.id for f in plan.flows}) == len(plan.flows)


def test_requests_without_input_trigger_consume_results() -> None:
    plan = plan_of([
        req("s", "r1", 0, 100, trigger=None, calls=(("c1", "bash"),)),
        tool("s", "c1", "bash", 100, 150),
        req("s", "r2", 151, 20, trigger=None),
    ])
    assert ("tool result", "tool c1", "r2") in flows_of(plan)


def test_reused_tool_call_ids_link_to_the_latest_request_before_the_tool() -> None:
    plan = plan_of([
        req("s", "r1", 0, 100, trigger="user_message", calls=(("call_0", "bash"),)),
        tool("s", "call_0", "bash", 100, 150),
        req("s", "r2", 151, 100, calls=(("call_0", "bash"),)),
        tool("s", "call_0", "bash", 251, 300),
        req("s", "r3", 301, 10),
    ])
    calls = [(src, dst) for kind, src, dst in flows_of(plan) if kind == "tool call"]
    tools_by_start = sorted((e.ts, e) for e in plan.events if e.kind is EventKind.TOOL)
    first, second = (e for _, e in tools_by_start)
    by_target = {id(f.target): f.source.subject.request_id for f in plan.flows if f.kind is FlowKind.CALL}
    assert by_target[id(first)] == "r1" and by_target[id(second)] == "r2"
    assert len(calls) == 2


def test_inferred_tool_calls_are_linked_both_ways() -> None:
    plan = plan_of([
        req("s", "r1", 0, 100, trigger="user_message", calls=(("c1", "exec"),)),
        req("s", "r2", 300, 20),
    ])
    assert sorted(flows_of(plan)) == [("tool call", "r1", "inferred c1"), ("tool result", "inferred c1", "r2")]


def test_unclosed_tool_starts_take_no_result_flow() -> None:
    rows = [
        req("s", "r1", 0, 100, trigger="user_message", calls=(("c1", "bash"),)),
        tool("s", "c1", "bash", 100, None),
        req("s", "r2", 300, 20),
    ]
    # Upstream: the start is a `Tool start:` instant (no flows: nothing to bind to), and the call
    # is also inferred (quirk Q10), which is linked both ways.
    plan = plan_of(rows)
    instant = [e for e in plan.events if e.kind is EventKind.TOOL_START_INSTANT]
    assert len(instant) == 1
    assert all(instant[0] not in (f.source, f.target) for f in plan.flows)
    assert sorted(flows_of(plan)) == [("tool call", "r1", "inferred c1"), ("tool result", "inferred c1", "r2")]
    # Fix.INFERENCE: the start is an open slice; it is called, but its result is never consumed.
    plan = plan_of(rows, fixes=frozenset({Fix.INFERENCE}))
    assert flows_of(plan) == [("tool call", "r1", "tool c1")]


def test_subagents_link_from_the_spawning_call_whose_end_matches() -> None:
    plan = plan_of(subagent_rows())
    spawns = {dst: src for kind, src, dst in flows_of(plan) if kind == "subagent"}
    # c1 runs 101-600, c2 101-420; sub-b's last activity ends at 416 (c2), sub-a's at 231 (c2 is
    # closer, but taken by sub-b, the better match): sub-a gets c1.
    assert spawns == {"s1": "tool c2", "a1": "tool c1", "g1": "tool cb"}
    assert plan.metadata["flows"]["subagents"] == 3
    assert plan.metadata["flows"]["subagents_linked"] == 3


def test_a_subagent_without_a_running_parent_call_is_not_linked() -> None:
    plan = plan_of([
        req("root", "r1", 0, 100, trigger="user_message"),
        req("kid", "k1", 500, 10, parent="root", trigger="user_message"),
    ])
    assert [f for f in plan.flows if f.kind is FlowKind.SPAWN] == []
    assert plan.metadata["flows"]["subagents"] == 1
    assert plan.metadata["flows"]["subagents_linked"] == 0


# -- counters ------------------------------------------------------------------------------------


def series(plan: Plan, name: str) -> list[tuple[int, Any]]:
    (c,) = [c for c in plan.counters if c.track.name == name]
    return list(zip(c.ts, c.values, strict=True))


def us(ms: int) -> int:
    return (T0 + ms) * 1000


def test_in_flight_requests_per_root_include_subagents_and_globally() -> None:
    plan = plan_of([
        req("root", "r1", 0, 100, trigger="user_message"),
        req("kid", "k1", 50, 100, parent="root", trigger="user_message"),
        req("root", "r2", 100, 10),  # starts as r1 ends: no spike to 3
        req("other", "o1", 120, 10, trigger="user_message"),
    ])
    assert series(plan, "root requests in flight") == [(us(0), 1), (us(50), 2), (us(110), 1), (us(150), 0)]
    assert series(plan, "requests in flight") == [
        (us(0), 1), (us(50), 2), (us(110), 1), (us(120), 2), (us(130), 1), (us(150), 0),
    ]
    assert series(plan, "other requests in flight") == [(us(120), 1), (us(130), 0)]


def test_in_flight_tools_skip_synthetic_and_open_calls() -> None:
    plan = plan_of([
        req("s", "r1", 0, 10, trigger="user_message", calls=(("a", "bash"), ("b", "grep"), ("c", "x"))),
        tool("s", "a", "bash", 10, 50),
        tool("s", "b", "grep", 20, 60),
        tool("s", "c", "x", 30, None),
    ])
    assert series(plan, "s tools in flight") == [(us(10), 1), (us(20), 2), (us(50), 1), (us(60), 0)]
    assert series(plan, "tools in flight") == series(plan, "s tools in flight")


def test_reported_values_are_sampled_at_request_start() -> None:
    plan = plan_of([
        req("s", "a", 0, 10, trigger="user_message", queue=0, kv=0.0),
        req("s", "b", 20, 10, queue=3, kv=0.5),
        req("s", "c", 40, 10, queue=3, kv=0.75),  # same queue depth: no new sample
    ])
    assert series(plan, "queue depth") == [(us(0), 0), (us(20), 3)]
    assert series(plan, "KV hit rate") == [(us(0), 0.0), (us(20), 0.5), (us(40), 0.75)]


def test_output_tokens_per_second_spreads_tokens_over_decode() -> None:
    plan = plan_of([
        req("s", "a", 0, 110, trigger="user_message", ttft=10.0, tokens=50),  # decode 10..110: 500 tok/s
        req("s", "b", 60, 110, trigger="user_message", ttft=10.0, tokens=25),  # decode 70..170: 250 tok/s
    ])
    assert series(plan, "output tokens/s") == [(us(10), 500.0), (us(70), 750.0), (us(110), 250.0), (us(170), 0.0)]


def test_counter_series_are_strictly_increasing_and_change_every_sample() -> None:
    records, _ = read_files([str(SMALL)])
    plan = build_plan(records, ConvertOptions(), Layout.AGENT)
    assert plan.counters
    for c in plan.counters:
        assert all(a < b for a, b in zip(c.ts, c.ts[1:], strict=False)), c.track.name
        assert all(a != b for a, b in zip(c.values, c.values[1:], strict=False)), c.track.name
        assert c.track.kind is TrackKind.COUNTER


@pytest.mark.parametrize("name", ["requests in flight", "tools in flight"])
def test_global_in_flight_never_goes_negative_on_the_small_trace(name: str) -> None:
    records, _ = read_files([str(SMALL)])
    plan = build_plan(records, ConvertOptions(), Layout.AGENT)
    values = [v for _, v in series(plan, name)]
    assert min(values) == 0 and values[-1] == 0


# -- drawing in parts ----------------------------------------------------------------------------


def path_of(tracks: dict[int, Track], uid: int | None) -> tuple[str, ...]:
    """A track by the names from the top down to it: what stays when uids change."""
    out: list[str] = []
    while uid is not None:
        t = tracks[uid]
        out.append(t.name)
        uid = t.parent
    return tuple(reversed(out))


def drawn(plans: list[Plan]) -> dict[str, Any]:
    """Everything the plans draw, keyed by track paths instead of uids, flow ids or ranks."""
    tracks = {t.uid: t for p in plans for t in p.tracks}
    assert len(tracks) == sum(len(p.tracks) for p in plans), "track uids are unique across parts"

    def event(e: Any) -> tuple[Any, ...]:
        return (path_of(tracks, e.track.uid), e.ts, e.dur, e.name, e.cat, e.kind.value)

    def order(uid: int | None) -> list[tuple[str, ...]]:
        return [path_of(tracks, t.uid) for t in sorted(tracks.values(), key=lambda t: t.rank) if t.parent == uid]

    return {
        "tracks": sorted((path_of(tracks, t.uid), t.kind.value, t.shared_name, t.pid) for t in tracks.values()),
        "siblings": {path_of(tracks, uid) if uid else (): order(uid) for uid in {None, *tracks}},
        "events": Counter(event(e) for p in plans for e in p.events),
        "flows": Counter((f.kind.value, event(f.source), event(f.target)) for p in plans for f in p.flows),
        "counters": {path_of(tracks, c.track.uid): (list(c.ts), list(c.values)) for p in plans for c in p.counters},
        "offset": {p.time_offset_us for p in plans},
    }


def batched_of(
    rows_or_records: Any, options: ConvertOptions, policy: FlushPolicy | None = None
) -> tuple[Plan, list[Plan], AgentLayout]:
    """The whole plan, and the plans of the chunks the streaming layout draws batch by batch when
    every session is flushed as soon as it can be."""
    policy = policy or FlushPolicy(reorder_ms=0, idle_ms=float("inf"), sweep_every=1)
    records = rows_or_records if not isinstance(rows_or_records, list) else records_from_objects(rows_or_records)[0]
    whole = build_plan(records, options, Layout.AGENT)
    everything = sorted([*records.requests, *records.tools, *records.payloads], key=lambda r: (r.file, r.line))
    layout = AgentLayout(options)
    chunks = [layout.header()]
    found = list(batches(everything, layout.draw, policy))
    for i, batch in enumerate(found):
        chunks.append(layout.draw_batch(collect(batch, []), last=i == len(found) - 1))
    plans = [Plan(c.tracks, c.events, DrawReport(), whole.time_offset_us, flows=c.flows, counters=c.counters)
             for c in chunks]
    return whole, plans, layout


def same_drawing(plans: list[Plan]) -> dict[str, Any]:
    """`drawn`, but for what batches change: root sessions come in the order their batches were
    drawn (not first activity), so their pids differ too."""
    out = drawn(plans)
    out["tracks"] = sorted((path, kind, shared) for path, kind, shared, _ in out["tracks"])
    out["siblings"][(ROOT_NAME,)] = sorted(out["siblings"][(ROOT_NAME,)])
    return out


# Fix.INFERENCE draws an unclosed start as an open slice up to the latest activity read when its
# batch is drawn: in batches, that is earlier than the trace's end.
ALL_BUT_INFERENCE = frozenset(Fix) - {Fix.INFERENCE}


@pytest.mark.parametrize("options", [ConvertOptions(), ConvertOptions(markers=True, fixes=ALL_BUT_INFERENCE)],
                         ids=["default", "markers-all-fixes-but-inference"])
def test_batches_drawn_apart_draw_what_the_whole_draws(options: ConvertOptions) -> None:
    records, _ = read_files([str(SMALL)])
    whole, plans, layout = batched_of(records, options)
    assert len([p for p in plans if p.events]) >= 2  # really drawn in batches
    assert same_drawing(plans) == same_drawing([whole])
    assert layout.draw.to_dict() == whole.draw.to_dict()
    assert layout.metadata == whole.metadata
    # uids and flow ids run on across batches, and the global counters come with the last one
    uids = [t.uid for p in plans for t in p.tracks]
    assert len(uids) == len(set(uids))
    flow_ids = [f.id for p in plans for f in p.flows]
    assert len(flow_ids) == len(set(flow_ids))
    assert all(c.track.pid != 1 for p in plans[:-1] for c in p.counters)
    assert any(c.track.pid == 1 for c in plans[-1].counters)


def test_batches_with_subagents_keep_their_flows_and_counters() -> None:
    rows = subagent_rows() + [req(f"later{i}", f"l{i}", 700 + 10 * i, 5, trigger="user_message") for i in range(4)]
    # no final flags in these rows: sessions complete when idle
    whole, plans, _ = batched_of(rows, ConvertOptions(), FlushPolicy(reorder_ms=0, idle_ms=50, sweep_every=1))
    assert len([p for p in plans if p.events]) >= 2
    assert same_drawing(plans) == same_drawing([whole])
    assert {f.kind for f in whole.flows} == {FlowKind.CALL, FlowKind.RESULT, FlowKind.SPAWN}


def test_rebase_offset_is_the_earliest_event_even_a_marker_before_its_request() -> None:
    # r1's first-token marker (ttft -30 ms: bad data) lands at 70 ms, before the tool at 80 ms.
    rows = [req("s", "r1", 100, 50, ttft=-30.0), tool("s", "c", "bash", 80, 90), req("s", "r2", 300, 20)]
    rebase = frozenset({Fix.REBASE_TIME})
    cases = [
        (dict(markers=True, fixes=rebase), 70),
        (dict(markers=True, fixes=rebase | {Fix.CLEAN_STAGES}), 80),  # the marker is clamped into r1
        (dict(fixes=rebase), 80),
    ]
    for options, earliest_ms in cases:
        records, _ = records_from_objects(rows)
        plan = build_plan(records, ConvertOptions(**options), Layout.AGENT)
        assert plan.time_offset_us == min(e.ts for e in plan.events) == us(earliest_ms)
