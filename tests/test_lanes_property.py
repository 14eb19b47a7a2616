"""Property tests: the lane packer, and the whole conversion pipeline on random valid traces.

The lane packer is upstream's greedy interval colouring (upstream-converter.md §12). Fed intervals
in start order, greedy colouring is optimal for interval graphs, so the number of lanes must equal
the largest number of intervals open at one instant (half-open: one ending at t and one starting at
t are not both open).

The pipeline properties hold for any mix of sessions, overlapping requests, parallel tools, unclosed
starts, orphan ends, inferred tools, shuffled file order and any options: the output passes the
invariant validator, is byte-identical across runs, and the converted count is exactly
requests + tool slices + inferred slices + `Tool start:` instants (upstream-converter.md §14.3).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_trace.args import ArgsBuilder
from agent_trace.convert import build_plan, convert_records, records_from_objects
from agent_trace.encode.chrome_json import write_chrome_json
from agent_trace.layout.lanes import LanePacker
from agent_trace.options import ALL_FIXES, ConvertOptions, Fix
from agent_trace.validate import validate_chrome

# -- the lane packer --------------------------------------------------------------------------------

intervals = st.lists(
    st.tuples(st.integers(0, 300), st.integers(1, 60)), max_size=80
).map(lambda xs: sorted(((s, s + d) for s, d in xs), key=lambda iv: iv[0]))


def pack(ivs: list[tuple[int, int]]) -> tuple[LanePacker, list[int]]:
    packer = LanePacker()
    return packer, [packer.place(s, e) for s, e in ivs]


def max_open(ivs: list[tuple[int, int]]) -> int:
    """Largest number of half-open intervals [s, e) containing one point (ends sort before starts)."""
    points = sorted([(s, 1) for s, _ in ivs] + [(e, -1) for _, e in ivs])
    best = depth = 0
    for _, delta in points:
        depth += delta
        best = max(best, depth)
    return best


@given(intervals)
def test_intervals_in_one_lane_never_overlap(ivs: list[tuple[int, int]]) -> None:
    _, lanes = pack(ivs)
    by_lane: dict[int, list[tuple[int, int]]] = {}
    for iv, lane in zip(ivs, lanes, strict=True):
        by_lane.setdefault(lane, []).append(iv)
    for members in by_lane.values():
        for (_, end), (start, _) in zip(members, members[1:], strict=False):
            assert end <= start


@given(intervals)
def test_lane_count_is_the_maximum_overlap(ivs: list[tuple[int, int]]) -> None:
    packer, lanes = pack(ivs)
    assert packer.lanes == max_open(ivs)
    assert packer.lanes == (max(lanes) + 1 if lanes else 0)


@given(intervals)
def test_each_interval_takes_the_smallest_free_lane(ivs: list[tuple[int, int]]) -> None:
    _, lanes = pack(ivs)
    for i, ((start, _), lane) in enumerate(zip(ivs, lanes, strict=True)):
        busy = {lanes[j] for j in range(i) if ivs[j][1] > start}
        assert lane not in busy
        assert all(lower in busy for lower in range(lane))


@given(st.integers(0, 10**15), st.lists(st.integers(1, 10**6), min_size=1, max_size=50))
def test_adjacent_intervals_share_a_lane(start: int, durations: list[int]) -> None:
    packer = LanePacker()
    for dur in durations:
        assert packer.place(start, start + dur) == 0  # starts exactly where the previous one ended
        start += dur
    assert packer.lanes == 1


@given(intervals, st.integers(1, 10**6))
def test_an_interval_after_everything_reuses_lane_zero(ivs: list[tuple[int, int]], gap: int) -> None:
    packer, _ = pack(ivs)
    last_end = max((e for _, e in ivs), default=0)
    assert packer.place(last_end + gap - 1, last_end + gap) == 0


def reference_lanes(ivs: list[tuple[int, int]]) -> list[int]:
    """Brute force: each item takes the smallest lane no earlier item still holds (end > start)."""
    placed: list[tuple[int, int]] = []  # (end, lane) of every earlier item
    out = []
    for start, end in ivs:
        held = {lane for e, lane in placed if e > start}
        lane = min(set(range(len(held) + 1)) - held)
        placed.append((end, lane))
        out.append(lane)
    return out


@st.composite
def crowded_intervals(draw: st.DrawFn) -> list[tuple[int, int]]:
    """Up to 1000 intervals in start order: hundreds in flight when durations dwarf the start span,
    many equal starts when the span is small, zero-length (end == start), instants (end == start
    + 1), and adjacent ones (starting exactly where an earlier one ends). Hypothesis picks the
    shape; a seeded generator fills in the items (too many to draw one by one)."""
    size = draw(st.sampled_from([20, 200, 1000]))
    span = draw(st.sampled_from([0, 3, 40, 500, 10**4]))
    longest = draw(st.sampled_from([1, 30, 2_000, 10**6]))
    p_short = draw(st.sampled_from([0.1, 0.5, 0.9]))  # zero-length or instant
    p_adjacent = draw(st.sampled_from([0.0, 0.2, 0.6]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    ivs: list[tuple[int, int]] = []
    for _ in range(rng.randint(size // 2, size)):
        start = rng.choice(ivs)[1] if ivs and rng.random() < p_adjacent else rng.randint(0, span)
        dur = rng.choice((0, 1)) if rng.random() < p_short else rng.randint(0, longest)
        ivs.append((start, start + dur))
    return sorted(ivs, key=lambda iv: iv[0])


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(intervals, crowded_intervals()))
def test_lanes_match_the_brute_force_reference(ivs: list[tuple[int, int]]) -> None:
    packer, lanes = pack(ivs)
    expected = reference_lanes(ivs)
    assert lanes == expected
    assert packer.lanes == (max(expected) + 1 if expected else 0)


# -- the pipeline --------------------------------------------------------------------------------

SCHEMA = "dynamo.request.trace.v1"
T0 = 1_795_476_000_000  # epoch ms of the real 1.6.1 captures
SESSIONS = ["orchestrator", "worker:0", "worker:1"]
CALL_IDS = [f"call_{i}" for i in range(6)]
ms_offsets = st.integers(0, 4_000)
durations_ms = st.one_of(st.integers(1, 800), st.floats(0.001, 800, allow_nan=False, allow_infinity=False))
maybe_ms = st.one_of(st.none(), st.floats(-5, 900, allow_nan=False, allow_infinity=False), st.integers(0, 900))


TOOL_SHAPES = ("start_only", "end_only", "error_only", "start_end", "start_error")


@dataclass
class Expect:
    requests: int = 0
    tool_slices: int = 0  # terminal rows drawn as slices
    unclosed: int = 0  # starts no terminal row closes
    inferred: int = 0
    unattributed: int = 0  # terminal rows without agent_context (drawn only with Fix.UNATTRIBUTED)


@st.composite
def requests_strategy(draw: st.DrawFn, i: int) -> dict[str, Any]:
    session = draw(st.sampled_from([*SESSIONS, None]))
    start = T0 + draw(ms_offsets)
    total = draw(durations_ms)
    req: dict[str, Any] = {"request_id": f"req-{i}", "model": draw(st.sampled_from(["tiny-agent", "m2"]))}
    if draw(st.integers(0, 4)):  # mostly present; else the start falls back (upstream §6, Q4)
        req["request_received_ms"] = start
    if draw(st.integers(0, 9)):  # mostly present
        req["total_time_ms"] = total
    for key in ("prefill_wait_time_ms", "prefill_time_ms", "ttft_ms", "avg_itl_ms"):
        value = draw(maybe_ms)
        if value is not None:
            req[key] = value
    if draw(st.booleans()):
        req["worker"] = {"decode_worker_id": draw(st.integers(0, 2**64 - 1)), "decode_dp_rank": 0}
    calls = draw(
        st.lists(
            st.fixed_dictionaries(
                {"choice_index": st.just(0), "tool_call_index": st.integers(0, 3)},
                optional={"id": st.sampled_from(CALL_IDS), "name": st.sampled_from(["bash", "agent", "grep"])},
            ),
            max_size=3,
        )
    )
    if calls:
        req["finish_reason_metadata"] = {"finish_reason": "tool_calls", "tool_calls": calls}
    event: dict[str, Any] = {
        "schema": SCHEMA,
        "event_type": "request_end",
        "event_time_unix_ms": int(start + round(total)),
        "request": req,
    }
    if session is not None:
        event["agent_context"] = {"session_id": session, "input_trigger": "tool_result"}
    return {"timestamp": i, "event": event} if draw(st.booleans()) else event


@st.composite
def tool_call_strategy(
    draw: st.DrawFn, session: str | None, call_id: str, shapes: tuple[str, ...] = TOOL_SHAPES
) -> list[dict[str, Any]]:
    """The rows one harness tool call leaves: start only, terminal only, or both (terminal later)."""
    shape = draw(st.sampled_from(shapes))
    start = T0 + draw(ms_offsets)
    dur = draw(st.integers(1, 1_500))
    ctx = {"session_id": session} if session is not None else None
    rows = []

    def row(event_type: str, at: int, tool: dict[str, Any]) -> dict[str, Any]:
        event = {"schema": SCHEMA, "event_type": event_type, "event_time_unix_ms": at, "event_source": "harness",
                 "tool": {"tool_call_id": call_id, "tool_class": draw(st.sampled_from(["bash", "grep"])), **tool}}
        if ctx is not None:
            event["agent_context"] = ctx
        return event

    if shape.startswith("start"):
        rows.append(row("tool_start", start, {"status": "running", "started_at_unix_ms": start}))
    if shape != "start_only":
        end = start + dur
        tool: dict[str, Any] = {"status": "error" if "error" in shape else draw(st.sampled_from(["succeeded", "ok"]))}
        if draw(st.booleans()):
            tool["started_at_unix_ms"] = start
        if draw(st.booleans()):
            tool["ended_at_unix_ms"] = end
        if draw(st.booleans()):
            tool["duration_ms"] = draw(st.sampled_from([float(dur), 0.0, dur / 3]))
        rows.append(row("tool_error" if "error" in shape else "tool_end", end, tool))
    return rows


@st.composite
def traces(draw: st.DrawFn) -> tuple[list[Any], Expect, ConvertOptions]:
    fixes = frozenset(draw(st.sets(st.sampled_from(sorted(ALL_FIXES)))))
    n_requests = draw(st.integers(0, 12))
    requests = [draw(requests_strategy(i)) for i in range(n_requests)]
    rows: list[Any] = list(requests)
    terminal: set[tuple[str, str]] = set()  # (row, id) with a tool_end / tool_error
    started: set[tuple[str, str]] = set()
    expect = Expect(requests=n_requests)
    for session in SESSIONS:
        for call_id in draw(st.lists(st.sampled_from(CALL_IDS), unique=True, max_size=4)):
            call_rows = draw(tool_call_strategy(session, call_id))
            rows += call_rows
            types = [r["event_type"] for r in call_rows]
            if "tool_start" in types:
                started.add((session, call_id))
            if types[-1] != "tool_start":
                terminal.add((session, call_id))
                expect.tool_slices += 1
            else:
                expect.unclosed += 1
    for k in range(draw(st.integers(0, 2))):  # orphan terminal rows with no agent_context
        rows += draw(tool_call_strategy(None, f"orphan_{k}", ("end_only", "error_only")))
        expect.unattributed += 1
    suppressing = terminal | (started if Fix.INFERENCE in fixes else set())
    for r in requests:
        event = r.get("event", r)
        row = event.get("agent_context", {}).get("session_id", "request-only")
        for call in event["request"].get("finish_reason_metadata", {}).get("tool_calls", []):
            if (row, call.get("id")) not in suppressing:
                expect.inferred += 1
    rows = draw(st.permutations(rows))  # file order is not time order (trace-format.md §11)
    options = ConvertOptions(
        stages=draw(st.booleans()),
        markers=draw(st.booleans()),
        separate_stage_tracks=draw(st.booleans()),
        fixes=fixes,
        embed_summary=False,
    )
    return rows, expect, options


def encode(objects: list[Any], options: ConvertOptions, *, pretty: bool = False) -> tuple[bytes, Any]:
    records, report = records_from_objects(objects)
    assert report.balanced()
    plan = build_plan(records, options)
    buf = io.BytesIO()
    write_chrome_json(plan, buf, ArgsBuilder.for_options(options), pretty=pretty)
    return buf.getvalue(), plan.draw


PIPELINE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PIPELINE
@given(traces())
def test_output_always_passes_the_validator(trace: tuple[list[Any], Expect, ConvertOptions]) -> None:
    rows, _, options = trace
    data, _ = encode(rows, options)
    doc = orjson.loads(data)
    assert validate_chrome(doc) == []
    # And the same through the public importable API.
    api_doc, _ = convert_records(
        rows, include_stages=options.stages, include_markers=options.markers,
        separate_stage_tracks=options.separate_stage_tracks, fixes=options.fixes,
    )
    assert validate_chrome(api_doc) == []
    assert api_doc == doc


@PIPELINE
@given(traces(), st.booleans())
def test_output_is_byte_identical_across_runs(trace: tuple[list[Any], Expect, ConvertOptions], pretty: bool) -> None:
    rows, _, options = trace
    first, _ = encode(rows, options, pretty=pretty)
    second, _ = encode(rows, options, pretty=pretty)
    assert first == second


@PIPELINE
@given(traces())
def test_converted_count_is_requests_plus_tools_plus_inferred_plus_instants(
    trace: tuple[list[Any], Expect, ConvertOptions],
) -> None:
    rows, expect, options = trace
    data, draw = encode(rows, options)
    events = orjson.loads(data)["traceEvents"]
    unattributed = expect.unattributed if Fix.UNATTRIBUTED in options.fixes else 0
    open_as_slices = Fix.INFERENCE in options.fixes  # unclosed starts drawn as open slices, not instants

    assert draw.converted == (
        expect.requests + expect.tool_slices + unattributed + expect.inferred + expect.unclosed
    )
    by_cat: dict[str, int] = {}
    for e in events:
        if e["ph"] != "M":
            by_cat[e["cat"]] = by_cat.get(e["cat"], 0) + 1
    assert by_cat == {k: v for k, v in draw.by_category.items() if v}
    assert by_cat.get("dynamo.llm", 0) == expect.requests
    inferred = [e for e in events if e.get("cat") == "dynamo.agent.tool" and e["args"].get("inferred") is True]
    assert len(inferred) == expect.inferred
    starts = [e for e in events if e.get("cat") == "dynamo.agent.tool.marker"]
    assert len(starts) == (0 if open_as_slices else expect.unclosed)
    assert all(e["ph"] == "i" and e["name"].startswith("Tool start: ") for e in starts)
    assert by_cat.get("dynamo.agent.tool", 0) == (
        expect.tool_slices + unattributed + expect.inferred + (expect.unclosed if open_as_slices else 0)
    )
    stages = by_cat.get("dynamo.llm.stage", 0)
    assert (stages > 0) <= options.stages
    markers = by_cat.get("dynamo.llm.marker", 0)
    assert (markers > 0) <= options.markers
    # Converted excludes stages, markers and metadata (upstream-converter.md §14.3).
    assert draw.converted == len(events) - stages - markers - sum(e["ph"] == "M" for e in events)
