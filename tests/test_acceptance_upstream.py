"""Upstream's acceptance cases (upstream-converter.md §15), with upstream's exact numbers.

Each case is built the way Dynamo's own validators build it: records inline, enveloped as
`{"timestamp": ..., "event": {...}}`, converted with the importable `convert_records`. The
`convert_doc` fixture (tests/conftest.py) also runs the invariant validator on every document.

Forms:
  * RT6 (`dynamo.request.trace.v1`, session-only identity): the drop-in reference for request
    schema input (§1.1). Single process, inferred tools from finish metadata (§11).
  * AT7 (`dynamo.agent.trace.v1`, session + trajectory): one process per session (§13.2), no
    inference.
  * AT4/AT5 (`dynamo.agent.trace.v1`, workflow + program): one process per workflow.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent_trace.convert import convert_records

RS = "dynamo.request.trace.v1"
AS = "dynamo.agent.trace.v1"
ROW = "session-1:researcher"

# agent_context per form; each names the same timeline row ROW.
CONTEXTS = {
    "RT6": (RS, {"session_id": ROW}),
    "AT7": (AS, {"session_type_id": "ms_agent", "session_id": "session-1", "trajectory_id": ROW}),
    "AT5": (AS, {"workflow_type_id": "ms_agent", "workflow_id": "workflow-1", "program_id": ROW}),
}
FINISH_WEB_SEARCH = {
    "finish_reason": "tool_calls",
    "backend_finish_reason": "stop",
    "stop_reason": "END",
    "tool_calls": [{"choice_index": 0, "tool_call_index": 0, "id": "call-1", "name": "web_search"}],
    "choices": [
        {"choice_index": 0, "finish_reason": "tool_calls", "backend_finish_reason": "stop", "stop_reason": "END"}
    ],
}


# -- building records -----------------------------------------------------------------------------
def envelope(event: dict[str, Any], timestamp: int = 0) -> dict[str, Any]:
    return {"timestamp": timestamp, "event": event}


def request_end(
    form: str = "RT6",
    *,
    request: dict[str, Any],
    event_time: float | None = None,
    context: dict[str, Any] | None = None,
    source: str | None = "dynamo",
) -> dict[str, Any]:
    schema, default_ctx = CONTEXTS[form]
    event: dict[str, Any] = {"schema": schema, "event_type": "request_end"}
    if event_time is not None:
        event["event_time_unix_ms"] = event_time
    if source is not None:
        event["event_source"] = source
    ctx = default_ctx if context is None else context
    if ctx is not ...:
        event["agent_context"] = dict(ctx)
    event["request"] = request
    return envelope(event)


def simple_request(
    form: str, request_id: str, start: float, total: float, finish: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_id": request_id,
        "model": "test-model",
        "request_received_ms": start,
        "total_time_ms": total,
        **extra,
    }
    if finish is not None:
        body["finish_reason_metadata"] = finish
    return request_end(form, request=body, event_time=start + total)


def tool_event(
    form: str, kind: str, event_time: float, tool: dict[str, Any], *, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    schema, default_ctx = CONTEXTS[form]
    return envelope(
        {
            "schema": schema,
            "event_type": kind,
            "event_time_unix_ms": event_time,
            "event_source": "harness",
            "agent_context": dict(default_ctx if context is None else context),
            "tool": tool,
        }
    )


def case1_request(form: str, *, finish: bool = True) -> dict[str, Any]:
    """Check 1 exactly as the RT6/AT7 validators build it."""
    body: dict[str, Any] = {
        "request_id": "req-1",
        "x_request_id": "caller-1",
        "model": "test-model",
        "input_tokens": 100,
        "output_tokens": 10,
        "cached_tokens": 80,
        "request_received_ms": 1000,
        "prefill_wait_time_ms": 5,
        "prefill_time_ms": 7,
        "ttft_ms": 12,
        "total_time_ms": 50,
        "avg_itl_ms": 4.2,
        "kv_hit_rate": 0.8,
        "queue_depth": 2,
        "worker": {"prefill_worker_id": 1, "prefill_dp_rank": 0, "decode_worker_id": 2, "decode_dp_rank": 0},
    }
    if finish:
        body["finish_reason_metadata"] = FINISH_WEB_SEARCH
    rec = request_end(form, request=body, event_time=2000)
    rec["timestamp"] = 10
    return rec


# -- reading documents ------------------------------------------------------------------------------
def of_cat(doc: dict[str, Any], cat: str) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if e.get("cat") == cat]


def only(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(events) == 1, events
    return events[0]


def thread_names(doc: dict[str, Any]) -> list[str]:
    return [e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "thread_name"]


def process_names(doc: dict[str, Any]) -> list[tuple[int, str]]:
    return [(e["pid"], e["args"]["name"]) for e in doc["traceEvents"] if e.get("name") == "process_name"]


def thread_table(doc: dict[str, Any]) -> list[tuple[int, int, str]]:
    return [(e["pid"], e["tid"], e["args"]["name"]) for e in doc["traceEvents"] if e.get("name") == "thread_name"]


def drawn(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if e["ph"] != "M"]


# ==================================================================================================
# Case 1 / 1b: emits_request_stages_and_metadata
# ==================================================================================================
class TestCase1RequestStagesAndMetadata:
    @pytest.fixture
    def rt6(self, convert_doc):
        return convert_doc([case1_request("RT6")], include_stages=True, include_markers=True)

    def test_rt6_counts_the_terminal_inferred_tool(self, rt6):
        doc, converted = rt6
        # RT3+: the request's one tool call has no successor, so it becomes a 1 ms synthetic slice.
        assert converted == 2
        inferred = only(of_cat(doc, "dynamo.agent.tool"))
        assert inferred["name"] == "Tool: web_search"
        assert (inferred["ts"], inferred["dur"]) == (1_050_000, 1_000)
        assert inferred["args"]["duration_unknown"] is True
        assert inferred["args"]["synthetic_duration"] is True
        assert inferred["args"]["visual_duration_ms"] == 1.0
        assert "next_request_id" not in inferred["args"]
        assert "overlapping_request_id" not in inferred["args"]

    def test_without_tool_calls_only_the_request_counts(self, convert_doc):
        _, converted = convert_doc([case1_request("RT6", finish=False)], include_stages=True, include_markers=True)
        assert converted == 1

    def test_request_slice(self, rt6):
        doc, _ = rt6
        assert [e for e in doc["traceEvents"] if e["ph"] == "M"]
        request = only(of_cat(doc, "dynamo.llm"))
        assert request["name"] == "LLM request: test-model"
        assert request["ph"] == "X"
        assert (request["ts"], request["dur"]) == (1_000_000, 50_000)
        assert request["args"]["x_request_id"] == "caller-1"
        assert request["args"]["worker.decode_worker_id"] == 2

    def test_request_args_are_exactly_upstreams(self, rt6):
        doc, _ = rt6
        assert only(of_cat(doc, "dynamo.llm"))["args"] == {
            "session_id": ROW,
            "event_time_unix_ms": 2000,
            "request_id": "req-1",
            "x_request_id": "caller-1",
            "model": "test-model",
            "input_tokens": 100,
            "output_tokens": 10,
            "cached_tokens": 80,
            "request_received_ms": 1000,
            "prefill_wait_time_ms": 5,
            "prefill_time_ms": 7,
            "ttft_ms": 12,
            "total_time_ms": 50,
            "avg_itl_ms": 4.2,
            "kv_hit_rate": 0.8,
            "queue_depth": 2,
            "worker.prefill_worker_id": 1,
            "worker.prefill_dp_rank": 0,
            "worker.decode_worker_id": 2,
            "worker.decode_dp_rank": 0,
            "finish_reason_metadata": FINISH_WEB_SEARCH,
            "finish.finish_reason": "tool_calls",
            "finish.backend_finish_reason": "stop",
            "finish.stop_reason": "END",
            "finish.tool_call_count": 1,
            "finish.tool_call_names": "web_search",
            "finish.choice_count": 1,
            "finish.choice_finish_reasons": "0:tool_calls",
        }

    def test_stages_nest_on_the_request_track(self, rt6):
        doc, _ = rt6
        request = only(of_cat(doc, "dynamo.llm"))
        stages = of_cat(doc, "dynamo.llm.stage")
        assert {e["name"] for e in stages} == {"prefill wait", "prefill", "decode"}
        assert {e["tid"] for e in stages} == {request["tid"]}
        assert {(e["name"], e["ts"], e["dur"]) for e in stages} == {
            ("prefill wait", 1_000_000, 5_000),
            ("prefill", 1_005_000, 7_000),
            ("decode", 1_012_000, 38_000),
        }

    def test_stage_args(self, rt6):
        doc, _ = rt6
        args = {e["name"]: e["args"] for e in of_cat(doc, "dynamo.llm.stage")}
        common = {"request_id": "req-1", "x_request_id": "caller-1", "model": "test-model"}
        assert args["prefill wait"] == {**common, "prefill_wait_time_ms": 5}
        assert args["prefill"] == {**common, "prefill_time_ms": 7}
        assert args["decode"] == {**common, "output_tokens": 10, "avg_itl_ms": 4.2}

    def test_first_token_marker(self, rt6):
        doc, _ = rt6
        marker = only(of_cat(doc, "dynamo.llm.marker"))
        assert marker["name"] == "first token"
        assert (marker["ph"], marker["s"]) == ("i", "t")
        assert marker["ts"] == 1_012_000
        assert marker["args"] == {"ttft_ms": 12}
        assert "dur" not in marker
        assert marker["tid"] == only(of_cat(doc, "dynamo.llm"))["tid"]

    def test_1b_finish_metadata_is_flattened(self, rt6):
        doc, _ = rt6
        args = only(of_cat(doc, "dynamo.llm"))["args"]
        assert args["finish.finish_reason"] == "tool_calls"
        assert args["finish.backend_finish_reason"] == "stop"
        assert args["finish.stop_reason"] == "END"
        assert args["finish.tool_call_count"] == 1
        assert args["finish.tool_call_names"] == "web_search"
        assert args["finish.choice_count"] == 1
        assert args["finish.choice_finish_reasons"] == "0:tool_calls"

    def test_markers_off_by_default(self, convert_doc):
        doc, _ = convert_doc([case1_request("RT6")])
        assert of_cat(doc, "dynamo.llm.marker") == []
        assert len(of_cat(doc, "dynamo.llm.stage")) == 3  # stages on by default (AT2+)

    def test_no_stages_keeps_the_marker(self, convert_doc):
        doc, converted = convert_doc([case1_request("RT6")], include_stages=False, include_markers=True)
        assert converted == 2
        assert of_cat(doc, "dynamo.llm.stage") == []
        assert only(of_cat(doc, "dynamo.llm.marker"))["ts"] == 1_012_000


class TestCase1AgentSchemaAT7:
    """The AT7 validator's check 1: same request, agent schema, converted = 1 (no inference)."""

    @pytest.fixture
    def at7(self, convert_doc):
        return convert_doc([case1_request("AT7")], include_stages=True, include_markers=True)

    def test_counts_and_request(self, at7):
        doc, converted = at7
        assert converted == 1
        assert of_cat(doc, "dynamo.agent.tool") == []
        request = only(of_cat(doc, "dynamo.llm"))
        assert request["name"] == "LLM request: test-model"
        assert (request["ts"], request["dur"]) == (1_000_000, 50_000)
        assert request["args"]["x_request_id"] == "caller-1"
        assert request["args"]["worker.decode_worker_id"] == 2
        assert request["args"]["finish.choice_finish_reasons"] == "0:tool_calls"
        assert only(of_cat(doc, "dynamo.llm.marker"))["ts"] == 1_012_000

    def test_identity_args_are_the_raw_agent_context(self, at7):
        doc, _ = at7
        args = only(of_cat(doc, "dynamo.llm"))["args"]
        assert [k for k in args][:4] == ["session_type_id", "session_id", "trajectory_id", "event_time_unix_ms"]
        assert (args["session_type_id"], args["session_id"], args["trajectory_id"]) == ("ms_agent", "session-1", ROW)
        assert "parent_trajectory_id" not in args  # None is dropped

    def test_layout_is_one_process_per_session(self, at7):
        doc, _ = at7
        assert process_names(doc) == [(1, "session: session-1")]
        assert thread_table(doc) == [(1, 1, ROW)]
        request = only(of_cat(doc, "dynamo.llm"))
        assert (request["pid"], request["tid"]) == (1, 1)
        assert {e["tid"] for e in of_cat(doc, "dynamo.llm.stage")} == {1}


# ==================================================================================================
# Case 2: can_emit_stages_on_separate_tracks (AT2–RT4; accepted everywhere by agent_trace)
# ==================================================================================================
@pytest.mark.parametrize("form", ["RT6", "AT7"])
def test_case2_stages_on_separate_tracks(convert_doc, form):
    rec = simple_request(form, "req-1", 1000, 50, prefill_wait_time_ms=5, prefill_time_ms=7, ttft_ms=12)
    doc, converted = convert_doc([rec], include_stages=True, include_markers=True, separate_stage_tracks=True)
    assert converted == 1
    request = only(of_cat(doc, "dynamo.llm"))
    stage_tids = {e["tid"] for e in of_cat(doc, "dynamo.llm.stage")}
    assert stage_tids != {request["tid"]}
    assert len(stage_tids) == 1
    assert thread_names(doc) == [ROW, f"{ROW} stages"]
    # §9: the marker goes on the stage track when there is one.
    assert only(of_cat(doc, "dynamo.llm.marker"))["tid"] in stage_tids


# ==================================================================================================
# Case 3: clamps_stage_rounding_overlap (§8.1 worked example)
# ==================================================================================================
@pytest.mark.parametrize("form", ["RT6", "AT7"])
def test_case3_stage_clamping_worked_example(convert_doc, form):
    rec = request_end(
        form,
        event_time=49_743.776002,
        source=None,
        request={
            "request_id": "req-1",
            "model": "test-model",
            "request_received_ms": 0,
            "prefill_wait_time_ms": 230.700717,
            "prefill_time_ms": 2144.397696,
            "ttft_ms": 2375.098413,
            "total_time_ms": 49743.776002,
        },
    )
    doc, _ = convert_doc([rec], include_stages=True, include_markers=False)
    request = only(of_cat(doc, "dynamo.llm"))
    assert (request["ts"], request["dur"]) == (0, 49_743_776)
    stages = sorted(of_cat(doc, "dynamo.llm.stage"), key=lambda e: e["ts"])
    assert [e["name"] for e in stages] == ["prefill wait", "prefill", "decode"]
    assert [(e["ts"], e["dur"]) for e in stages] == [
        (0, 230_701),
        (230_701, 2_144_397),  # clamped from 2_144_398: wait + prefill is 1 µs past the TTFT
        (2_375_098, 47_368_678),
    ]
    for current, following in zip(stages, stages[1:], strict=False):
        assert current["ts"] + current["dur"] <= following["ts"]
    assert stages[1]["ts"] + stages[1]["dur"] == stages[2]["ts"]
    assert stages[2]["ts"] + stages[2]["dur"] == request["ts"] + request["dur"]
    # The raw, unclamped values stay in args.
    assert stages[1]["args"]["prefill_time_ms"] == 2144.397696


# ==================================================================================================
# Case 4: splits_overlapping_<row>_requests_into_lanes (§12 example)
# ==================================================================================================
def lane_requests(form: str) -> list[dict[str, Any]]:
    return [
        simple_request(form, "req-1", 1000, 100, ttft_ms=10),
        simple_request(form, "req-2", 1050, 100, ttft_ms=10),
    ]


@pytest.mark.parametrize("form", ["RT6", "AT7", "AT5"])
def test_case4_overlapping_requests_take_two_lanes(convert_doc, form):
    doc, converted = convert_doc(lane_requests(form), include_stages=False, include_markers=False)
    assert converted == 2
    assert of_cat(doc, "dynamo.llm.marker") == []
    assert thread_names(doc) == [f"{ROW} [lane 1]", f"{ROW} [lane 2]"]
    tids = {e["args"]["request_id"]: e["tid"] for e in of_cat(doc, "dynamo.llm")}
    assert tids["req-1"] != tids["req-2"]
    spans = {e["args"]["request_id"]: (e["ts"], e["dur"]) for e in of_cat(doc, "dynamo.llm")}
    assert spans == {"req-1": (1_000_000, 100_000), "req-2": (1_050_000, 100_000)}


def test_case4_agent_schema_lanes_keep_one_process(convert_doc):
    doc, _ = convert_doc(lane_requests("AT7"), include_stages=False)
    assert process_names(doc) == [(1, "session: session-1")]
    assert thread_table(doc) == [(1, 1, f"{ROW} [lane 1]"), (1, 2, f"{ROW} [lane 2]")]


def test_adjacent_requests_reuse_a_lane(convert_doc):
    """end == start frees the lane (§12), so no [lane N] suffix appears."""
    recs = [simple_request("RT6", "req-1", 1000, 100), simple_request("RT6", "req-2", 1100, 100)]
    doc, _ = convert_doc(recs, include_stages=False)
    assert thread_names(doc) == [ROW]
    assert {e["tid"] for e in of_cat(doc, "dynamo.llm")} == {1}


def test_a_tool_inside_its_request_pushes_the_tools_track_to_lane_2(convert_doc):
    """§12: requests and tools of one row share the lane pool; every track is then renamed."""
    recs = [
        simple_request("RT6", "req-1", 1000, 100),
        tool_event("RT6", "tool_end", 1080, {"tool_call_id": "c1", "tool_class": "grep",
                                             "started_at_unix_ms": 1050, "ended_at_unix_ms": 1080}),
    ]
    doc, converted = convert_doc(recs, include_stages=False)
    assert converted == 2
    assert thread_names(doc) == [f"{ROW} [lane 1]", f"{ROW} [lane 2] tools"]


# ==================================================================================================
# Case 5: emits_tool_duration_slices
# ==================================================================================================
def test_case5_at4_form_duration_before_event_time(convert_doc):
    rec = tool_event(
        "AT5", "tool_end", 1250,
        {"tool_call_id": "call-1", "tool_class": "web_search", "status": "succeeded",
         "duration_ms": 250, "output_bytes": 2048},
    )
    doc, converted = convert_doc([rec], include_stages=True, include_markers=False)
    assert converted == 1
    tool = only(of_cat(doc, "dynamo.agent.tool"))
    assert tool["name"] == "Tool: web_search"
    assert (tool["ts"], tool["dur"]) == (1_000_000, 250_000)
    assert tool["args"]["tool_call_id"] == "call-1"
    assert tool["args"]["output_bytes"] == 2048
    assert thread_names(doc) == [f"{ROW} tools"]
    assert process_names(doc) == [(1, "workflow: workflow-1")]


@pytest.mark.parametrize("form", ["RT6", "AT7"])
def test_case5_at7_form_explicit_start_and_end(convert_doc, form):
    rec = tool_event(
        form, "tool_end", 1300,
        {"tool_call_id": "call-1", "tool_class": "web_search", "status": "succeeded",
         "started_at_unix_ms": 1000, "ended_at_unix_ms": 1250, "duration_ms": 250, "output_bytes": 2048},
    )
    doc, converted = convert_doc([rec], include_stages=True, include_markers=False)
    assert converted == 1
    tool = only(of_cat(doc, "dynamo.agent.tool"))
    assert tool["name"] == "Tool: web_search"
    assert tool["ph"] == "X"
    assert (tool["ts"], tool["dur"]) == (1_000_000, 250_000)
    assert tool["args"]["tool_call_id"] == "call-1"
    assert tool["args"]["started_at_unix_ms"] == 1000
    assert tool["args"]["ended_at_unix_ms"] == 1250
    assert tool["args"]["output_bytes"] == 2048
    assert thread_names(doc) == [f"{ROW} tools"]


def test_case5_tool_args_are_exactly_upstreams(convert_doc):
    rec = tool_event(
        "RT6", "tool_end", 1300,
        {"tool_call_id": "call-1", "tool_class": "web_search", "status": "succeeded",
         "started_at_unix_ms": 1000, "ended_at_unix_ms": 1250, "duration_ms": 250, "output_bytes": 2048,
         "not_a_tool_key": 1},
    )
    doc, _ = convert_doc([rec])
    assert only(of_cat(doc, "dynamo.agent.tool"))["args"] == {
        "session_id": ROW,
        "event_type": "tool_end",
        "event_source": "harness",
        "event_time_unix_ms": 1300,
        "tool_call_id": "call-1",
        "tool_class": "web_search",
        "started_at_unix_ms": 1000,
        "ended_at_unix_ms": 1250,
        "status": "succeeded",
        "duration_ms": 250,
        "output_bytes": 2048,
    }


def test_case5_agent_schema_layout(convert_doc):
    """AT7: the tool row is a thread of its session's process."""
    rec = tool_event(
        "AT7", "tool_end", 1300,
        {"tool_call_id": "call-1", "tool_class": "web_search", "started_at_unix_ms": 1000, "ended_at_unix_ms": 1250},
    )
    doc, _ = convert_doc([rec])
    assert process_names(doc) == [(1, "session: session-1")]
    assert thread_table(doc) == [(1, 1, f"{ROW} tools")]
    tool = only(of_cat(doc, "dynamo.agent.tool"))
    assert tool["args"]["session_type_id"] == "ms_agent"
    assert tool["args"]["trajectory_id"] == ROW


# ==================================================================================================
# Case 6 and 7: start/end pairing and zero-length tools
# ==================================================================================================
@pytest.mark.parametrize("form", ["RT6", "AT7", "AT5"])
def test_case6_pairs_start_and_end_without_duration(convert_doc, form):
    recs = [
        tool_event(form, "tool_start", 1000, {"tool_call_id": "call-1", "tool_class": "web_search", "status": "running"}),
        tool_event(form, "tool_end", 1250, {"tool_call_id": "call-1", "tool_class": "web_search", "status": "succeeded"}),
    ]
    doc, converted = convert_doc(recs, include_stages=True, include_markers=False)
    assert converted == 1
    assert of_cat(doc, "dynamo.agent.tool.marker") == []
    tool = only(of_cat(doc, "dynamo.agent.tool"))
    assert (tool["ts"], tool["dur"]) == (1_000_000, 250_000)
    assert tool["args"]["event_type"] == "tool_end"
    assert tool["args"]["event_time_unix_ms"] == 1250


@pytest.mark.parametrize("form", ["RT6", "AT7", "AT5"])
def test_case7_zero_duration_tool_is_a_synthetic_1ms_span(convert_doc, form):
    recs = [
        tool_event(form, "tool_start", 1000, {"tool_call_id": "call-1", "tool_class": "file_system", "status": "running"}),
        tool_event(form, "tool_end", 1000,
                   {"tool_call_id": "call-1", "tool_class": "file_system", "status": "succeeded", "duration_ms": 0.0}),
    ]
    doc, converted = convert_doc(recs, include_stages=True, include_markers=False)
    assert converted == 1
    assert of_cat(doc, "dynamo.agent.tool.marker") == []
    tool = only(of_cat(doc, "dynamo.agent.tool"))
    assert tool["name"] == "Tool: file_system"
    assert (tool["ts"], tool["dur"]) == (1_000_000, 1_000)
    assert tool["args"]["duration_ms"] == 0.0
    assert tool["args"]["synthetic_duration"] is True
    assert tool["args"]["visual_duration_ms"] == 1.0


# ==================================================================================================
# Case 8, 9, 10: request schema
# ==================================================================================================
def test_case8_enriched_request_trace_schema(convert_doc):
    recs = [
        request_end("RT6", event_time=1050, request={
            "request_id": "req-1", "model": "test-model", "request_received_ms": 1000,
            "total_time_ms": 50, "output_tokens": 4}),
        tool_event("RT6", "tool_end", 1100, {"tool_call_id": "call-1", "tool_class": "shell",
                                             "started_at_unix_ms": 1060, "ended_at_unix_ms": 1100,
                                             "status": "succeeded"}),
    ]
    for rec in recs:
        del rec["timestamp"]  # the validator passes {"event": ...} only
    doc, converted = convert_doc(recs, include_stages=False, include_markers=False)
    assert converted == 2
    categories = {e.get("cat") for e in doc["traceEvents"]}
    assert {"dynamo.llm", "dynamo.agent.tool"} <= categories
    tool = only(of_cat(doc, "dynamo.agent.tool"))
    assert (tool["ts"], tool["dur"]) == (1_060_000, 40_000)


def test_case9_context_free_request(convert_doc):
    rec = request_end("RT6", context=..., source=None, event_time=1050, request={
        "request_id": "req-plain", "model": "test-model", "request_received_ms": 1000,
        "total_time_ms": 50, "output_tokens": 4})
    doc, converted = convert_doc([rec], include_stages=False, include_markers=False)
    assert converted == 1
    request = only(of_cat(doc, "dynamo.llm"))
    assert request["name"] == "LLM request: test-model"
    assert request["args"]["request_id"] == "req-plain"
    assert "session_id" not in request["args"]
    assert thread_names(doc) == ["request-only"]
    assert process_names(doc) == [(1, "Dynamo request trace")]


def test_case9_compact_row_without_model(convert_doc):
    """A 1.6.1 compact row: no context, no event_source, no model."""
    rec = request_end("RT6", context=..., source=None, event_time=1075, request={
        "request_id": "req-plain", "output_tokens": 9, "request_received_ms": 1000, "total_time_ms": 75})
    doc, converted = convert_doc([rec])
    assert converted == 1
    assert only(of_cat(doc, "dynamo.llm"))["name"] == "LLM request: unknown-model"


def test_case10_one_process_for_all_sessions(convert_doc):
    recs = [
        request_end("RT6", context={"session_id": sid}, event_time=1050, source=None, request={
            "request_id": sid, "model": "test-model", "request_received_ms": 1000, "total_time_ms": 50})
        for sid in ("session-1", "session-2")
    ]
    doc, converted = convert_doc(recs, include_stages=False, include_markers=False)
    assert converted == 2
    assert {e["pid"] for e in of_cat(doc, "dynamo.llm")} == {1}
    assert process_names(doc) == [(1, "Dynamo request trace")]
    assert thread_table(doc) == [(1, 1, "session-1"), (1, 2, "session-2")]


# ==================================================================================================
# Case 11: infers_tool_slices_between_requests (RT2+; RT3+ for c and d)
# ==================================================================================================
CODEX = {"session_id": "codex-session", "parent_session_id": "parent-session"}
EXEC = {
    "finish_reason": "tool_calls",
    "tool_calls": [{"choice_index": 0, "tool_call_index": 0, "id": "call-1", "name": "exec_command"}],
}
EXEC_NO_INDEX = {"finish_reason": "tool_calls", "tool_calls": [{"id": "call-1", "name": "exec_command"}]}


def codex_request(request_id: str, start: int, total: int, finish: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"request_id": request_id, "model": "test-model",
                            "request_received_ms": start, "total_time_ms": total}
    if finish:
        body["finish_reason_metadata"] = finish
    return request_end("RT6", context=CODEX, event_time=start + total, request=body)


def test_case11a_basic_inference(convert_doc):
    recs = [codex_request("req-tool-call", 1000, 50, EXEC), codex_request("req-after-tool", 1200, 40)]
    doc, converted = convert_doc(recs, include_stages=False, include_markers=False)
    assert converted == 3
    tool = only(of_cat(doc, "dynamo.agent.tool"))
    assert tool["name"] == "Tool: exec_command"
    assert (tool["ts"], tool["dur"]) == (1_050_000, 150_000)
    assert tool["args"] == {
        "session_id": "codex-session",
        "parent_session_id": "parent-session",
        "event_type": "inferred_tool_call",
        "event_source": "dynamo",
        "source": "request.finish_reason_metadata.tool_calls",
        "inferred": True,
        "host_execution": False,
        "source_request_id": "req-tool-call",
        "tool_call_id": "call-1",
        "tool_call_index": 0,
        "choice_index": 0,
        "tool_class": "exec_command",
        "started_at_unix_ms": 1050.0,
        "next_request_id": "req-after-tool",
        "ended_at_unix_ms": 1200.0,
        "duration_ms": 150.0,
    }
    assert thread_names(doc) == ["codex-session", "codex-session tools"]


def test_case11b_a_real_tool_end_replaces_the_inferred_slice(convert_doc):
    recs = [
        codex_request("req-tool-call", 1000, 50, EXEC_NO_INDEX),
        codex_request("req-after-tool", 1200, 40),
        tool_event("RT6", "tool_end", 1175, {"tool_call_id": "call-1", "tool_class": "exec_command",
                                             "started_at_unix_ms": 1060, "ended_at_unix_ms": 1175},
                   context={"session_id": "codex-session"}),
    ]
    doc, converted = convert_doc(recs, include_stages=False, include_markers=False)
    assert converted == 3
    tool = only(of_cat(doc, "dynamo.agent.tool"))
    assert "inferred" not in tool["args"]
    assert (tool["ts"], tool["dur"]) == (1_060_000, 115_000)


def test_case11c_overlapping_successor_gives_a_synthetic_slice(convert_doc):
    recs = [
        codex_request("req-tool-call", 1000, 100, EXEC_NO_INDEX),
        codex_request("req-overlap", 1050, 40),
        codex_request("req-later", 1200, 40),
    ]
    doc, converted = convert_doc(recs, include_stages=False, include_markers=False)
    assert converted == 4
    tool = only(of_cat(doc, "dynamo.agent.tool"))
    assert (tool["ts"], tool["dur"]) == (1_100_000, 1_000)
    args = tool["args"]
    assert args["duration_unknown"] is True
    assert args["synthetic_duration"] is True
    assert args["visual_duration_ms"] == 1.0
    assert args["overlapping_request_id"] == "req-overlap"
    for absent in ("next_request_id", "ended_at_unix_ms", "duration_ms", "tool_call_index", "choice_index"):
        assert absent not in args


def test_case11d_terminal_request(convert_doc):
    doc, converted = convert_doc([codex_request("req-terminal-tool-call", 1000, 100, EXEC_NO_INDEX)],
                                 include_stages=False, include_markers=False)
    assert converted == 2
    tool = only(of_cat(doc, "dynamo.agent.tool"))
    assert (tool["ts"], tool["dur"]) == (1_100_000, 1_000)
    assert tool["args"]["duration_unknown"] is True
    assert tool["args"]["synthetic_duration"] is True
    assert "next_request_id" not in tool["args"]
    assert "overlapping_request_id" not in tool["args"]
    assert tool["args"]["started_at_unix_ms"] == 1100.0


def test_case11_agent_schema_never_infers(convert_doc):
    """AT7 has no inference: the same two requests in agent schema convert to 2."""
    recs = [simple_request("AT7", "req-tool-call", 1000, 50, EXEC), simple_request("AT7", "req-after-tool", 1200, 40)]
    doc, converted = convert_doc(recs, include_stages=False)
    assert converted == 2
    assert of_cat(doc, "dynamo.agent.tool") == []


def test_inferred_calls_without_id_are_always_inferred(convert_doc):
    """§11.1: a call with no id can never match a harness row."""
    finish = {"tool_calls": [{"name": "exec_command"}, {"id": "call-2"}]}
    recs = [
        codex_request("req-1", 1000, 50, finish),
        codex_request("req-2", 1200, 40),
        tool_event("RT6", "tool_end", 1100, {"tool_class": "exec_command", "duration_ms": 10},
                   context={"session_id": "codex-session"}),
    ]
    doc, converted = convert_doc(recs, include_stages=False)
    inferred = [e for e in of_cat(doc, "dynamo.agent.tool") if e["args"].get("inferred")]
    assert sorted(e["name"] for e in inferred) == ["Tool: exec_command", "Tool: unknown-tool"]
    assert converted == 2 + 2 + 1


# ==================================================================================================
# Agent-era layout (§13.2) and the W era (AT5)
# ==================================================================================================
def test_agent_layout_pids_follow_first_seen_work_order(convert_doc):
    """One process per session, numbered in the order the work items are processed (by time)."""
    recs = [
        simple_request("AT7", "late", 2000, 10),
        request_end("AT7", event_time=1010, request={"request_id": "early", "request_received_ms": 1000,
                                                    "total_time_ms": 10},
                    context={"session_id": "run-B", "trajectory_id": "run-B:main"}),
        request_end("AT7", event_time=1510, request={"request_id": "sub", "request_received_ms": 1500,
                                                    "total_time_ms": 10},
                    context={"session_id": "run-B", "trajectory_id": "run-B:sub",
                             "parent_trajectory_id": "run-B:main"}),
    ]
    doc, converted = convert_doc(recs, include_stages=False)
    assert converted == 3
    assert process_names(doc) == [(1, "session: run-B"), (2, "session: session-1")]
    assert thread_table(doc) == [(1, 1, "run-B:main"), (1, 2, "run-B:sub"), (2, 1, ROW)]
    by_id = {e["args"]["request_id"]: (e["pid"], e["tid"]) for e in of_cat(doc, "dynamo.llm")}
    assert by_id == {"early": (1, 1), "sub": (1, 2), "late": (2, 1)}
    assert only([e for e in of_cat(doc, "dynamo.llm") if e["args"]["request_id"] == "sub"])["args"][
        "parent_trajectory_id"] == "run-B:main"


def test_agent_layout_default_labels(convert_doc):
    """AT6–AT7 defaults: unknown-session / unknown-trajectory."""
    rec = request_end("AT7", context={}, event_time=1010,
                      request={"request_id": "r", "request_received_ms": 1000, "total_time_ms": 10})
    doc, converted = convert_doc([rec])
    assert converted == 1
    assert process_names(doc) == [(1, "session: unknown-session")]
    assert thread_names(doc) == ["unknown-trajectory"]


def test_agent_schema_without_agent_context_is_not_drawn(convert_doc):
    rec = request_end("AT7", context=..., event_time=1010,
                      request={"request_id": "r", "request_received_ms": 1000, "total_time_ms": 10})
    doc, converted = convert_doc([rec])
    assert converted == 0
    assert doc == {"displayTimeUnit": "ms", "traceEvents": []}


def test_w_era_workflow_processes_and_program_rows(convert_doc):
    """AT1–AT5: `workflow: <id>` processes, program_id rows, per-pid tid counters."""
    wf1 = {"workflow_type_id": "ms_agent", "workflow_id": "wf-1", "program_id": "wf-1:planner"}
    wf1_child = {"workflow_type_id": "ms_agent", "workflow_id": "wf-1", "program_id": "wf-1:coder",
                 "parent_program_id": "wf-1:planner"}
    wf2 = {"workflow_id": "wf-2", "program_id": "wf-2:main"}
    body = {"model": "test-model", "total_time_ms": 100}
    recs = [
        request_end("AT5", context=wf1, event_time=1100, request={**body, "request_id": "a", "request_received_ms": 1000}),
        request_end("AT5", context=wf2, event_time=1150, request={**body, "request_id": "b", "request_received_ms": 1050}),
        request_end("AT5", context=wf1_child, event_time=1300,
                    request={**body, "request_id": "c", "request_received_ms": 1200}),
        tool_event("AT5", "tool_end", 1150, {"tool_call_id": "t1", "tool_class": "grep", "duration_ms": 40},
                   context=wf1),
    ]
    doc, converted = convert_doc(recs, include_stages=False)
    assert converted == 4
    assert process_names(doc) == [(1, "workflow: wf-1"), (2, "workflow: wf-2")]
    assert thread_table(doc) == [
        (1, 1, "wf-1:planner"),
        (1, 2, "wf-1:planner tools"),
        (1, 3, "wf-1:coder"),
        (2, 1, "wf-2:main"),
    ]
    args = {e["args"]["request_id"]: e["args"] for e in of_cat(doc, "dynamo.llm")}
    assert [k for k in args["c"]][:4] == ["workflow_type_id", "workflow_id", "program_id", "parent_program_id"]
    assert args["c"]["parent_program_id"] == "wf-1:planner"
    assert "workflow_type_id" not in args["b"]
    tool = only(of_cat(doc, "dynamo.agent.tool"))
    assert (tool["pid"], tool["tid"], tool["ts"], tool["dur"]) == (1, 2, 1_110_000, 40_000)
    assert tool["args"]["workflow_id"] == "wf-1"
    assert tool["args"]["program_id"] == "wf-1:planner"


def test_w_era_default_labels(convert_doc):
    rec = request_end("AT5", context={"workflow_type_id": "ms_agent"}, event_time=1010,
                      request={"request_id": "r", "request_received_ms": 1000, "total_time_ms": 10})
    doc, _ = convert_doc([rec])
    assert process_names(doc) == [(1, "workflow: unknown-workflow")]
    assert thread_names(doc) == ["unknown-program"]


# ==================================================================================================
# §6 numbers and time, §7 args, §10 tool bounds, §14 document shape and ordering
# ==================================================================================================
@pytest.mark.parametrize(
    ("received", "total", "ts", "dur"),
    [
        (1000, 50, 1_000_000, 50_000),  # the §6 example
        (1000.0005, 50, 1_000_000, 50_000),  # 1_000_000.5 rounds half to even
        (1000, 0.0025, 1_000_000, 2),  # 2.5 µs -> 2
        (1000, 0.0035, 1_000_000, 4),  # 3.5 µs -> 4
        (1000, 0.0005, 1_000_000, 1),  # 0.5 µs -> 0, then dur >= 1
    ],
)
def test_ms_to_us_rounds_half_to_even(convert_doc, received, total, ts, dur):
    doc, _ = convert_doc([simple_request("RT6", "r", received, total)], include_stages=False)
    request = only(of_cat(doc, "dynamo.llm"))
    assert (request["ts"], request["dur"]) == (ts, dur)


def test_request_start_falls_back_to_the_end_time(convert_doc):
    """§6 quirk (Q4): without request_received_ms the slice starts at event_time_unix_ms."""
    rec = request_end("RT6", event_time=1050, request={"request_id": "r", "total_time_ms": 50})
    doc, converted = convert_doc([rec])
    assert converted == 1
    assert (only(of_cat(doc, "dynamo.llm"))["ts"], only(of_cat(doc, "dynamo.llm"))["dur"]) == (1_050_000, 50_000)


def test_request_duration_fallbacks(convert_doc):
    recs = [
        # no total_time_ms: event_time - start
        request_end("RT6", event_time=1080, context={"session_id": "a"},
                    request={"request_id": "a", "request_received_ms": 1000}),
        # negative total and an end before the start: 0.001 ms -> 1 µs
        request_end("RT6", event_time=900, context={"session_id": "b"},
                    request={"request_id": "b", "request_received_ms": 1000, "total_time_ms": -5}),
    ]
    doc, _ = convert_doc(recs)
    spans = {e["args"]["request_id"]: (e["ts"], e["dur"]) for e in of_cat(doc, "dynamo.llm")}
    assert spans == {"a": (1_000_000, 80_000), "b": (1_000_000, 1)}


def test_request_without_any_time_is_skipped(convert_doc):
    rec = request_end("RT6", request={"request_id": "r", "total_time_ms": 50})
    doc, converted = convert_doc([rec])
    assert converted == 0
    assert doc["traceEvents"] == []


def test_request_args_leave_out_what_upstream_does_not_copy(convert_doc):
    ctx = {"session_id": "s", "parent_session_id": "p", "session_final": True, "kv_hints": {"evict_session": True},
           "agent_headers": {"x-claude-code-session-id": ["p"]}, "input_trigger": "tool_result"}
    rec = request_end("RT6", context=ctx, event_time=1050, request={
        "request_id": "r", "request_received_ms": 1000, "total_time_ms": 50, "x_request_id": None,
        "unknown_request_key": 1, "io_text": {"input": "a", "output": "b"},
        "replay": {"trace_block_size": 64, "input_length": 3, "input_sequence_hashes": [1, 2]}})
    doc, _ = convert_doc([rec])
    assert only(of_cat(doc, "dynamo.llm"))["args"] == {
        "session_id": "s",
        "parent_session_id": "p",
        "event_time_unix_ms": 1050,
        "request_id": "r",
        "request_received_ms": 1000,
        "total_time_ms": 50,
    }


@pytest.mark.parametrize(
    ("tool", "event_time", "ts", "dur"),
    [
        # rule 1: explicit start and end win over a duration
        ({"started_at_unix_ms": 1000, "ended_at_unix_ms": 1100, "duration_ms": 500}, 2000, 1_000_000, 100_000),
        # rule 2: start + duration
        ({"started_at_unix_ms": 1000, "duration_ms": 50}, 2000, 1_000_000, 50_000),
        # rule 3: duration back from ended_at
        ({"ended_at_unix_ms": 1900, "duration_ms": 100}, 2500, 1_800_000, 100_000),
        # rule 3: duration back from the event time; the start is clamped to >= 0
        ({"duration_ms": 3000}, 2000, 0, 2_000_000),
        # rule 5: nothing usable and no start: a synthetic slice at the event time
        ({"started_at_unix_ms": 1000, "ended_at_unix_ms": 1000}, 2000, 2_000_000, 1_000),
    ],
)
def test_tool_slice_bounds_rules(convert_doc, tool, event_time, ts, dur):
    rec = tool_event("RT6", "tool_end", event_time, {"tool_call_id": "c", "tool_class": "grep", **tool})
    doc, converted = convert_doc([rec])
    assert converted == 1
    slice_ = only(of_cat(doc, "dynamo.agent.tool"))
    assert (slice_["ts"], slice_["dur"]) == (ts, dur)
    assert ("synthetic_duration" in slice_["args"]) is (dur == 1_000)


def test_tool_error_and_unknown_class_names(convert_doc):
    recs = [
        tool_event("RT6", "tool_error", 1100, {"tool_call_id": "a", "tool_class": "bash", "duration_ms": 10,
                                               "status": "error", "error_type": "exit_code_1"}),
        tool_event("RT6", "tool_end", 1300, {"tool_call_id": "b", "duration_ms": 10}),
    ]
    doc, converted = convert_doc(recs)
    assert converted == 2
    assert [e["name"] for e in of_cat(doc, "dynamo.agent.tool")] == ["Tool error: bash", "Tool: unknown-tool"]
    assert of_cat(doc, "dynamo.agent.tool")[0]["args"]["error_type"] == "exit_code_1"


def test_unclosed_start_is_an_instant_on_the_tools_track(convert_doc):
    rec = tool_event("RT6", "tool_start", 1000, {"tool_call_id": "c", "tool_class": "grep", "status": "running"})
    doc, converted = convert_doc([rec])
    assert converted == 1  # instants count (§10.3)
    marker = only(of_cat(doc, "dynamo.agent.tool.marker"))
    assert marker["name"] == "Tool start: grep"
    assert (marker["ph"], marker["s"], marker["ts"]) == ("i", "t", 1_000_000)
    assert "dur" not in marker
    assert thread_names(doc) == [f"{ROW} tools"]


def test_tool_rows_without_agent_context_are_skipped(convert_doc):
    """§5.2: request-era tool rows need a dict agent_context (upstream drops the rest silently)."""
    rec = tool_event("RT6", "tool_end", 1100, {"tool_call_id": "c", "tool_class": "grep", "duration_ms": 10})
    del rec["event"]["agent_context"]
    doc, converted = convert_doc([rec])
    assert converted == 0
    assert doc["traceEvents"] == []


def test_request_era_default_labels_differ_for_requests_and_tools(convert_doc):
    """RT6: an empty context gives `request-only` for requests and `unknown-session` for tools."""
    recs = [
        request_end("RT6", context={}, event_time=1050,
                    request={"request_id": "r", "request_received_ms": 1000, "total_time_ms": 50}),
        tool_event("RT6", "tool_end", 1100, {"tool_call_id": "c", "tool_class": "grep", "duration_ms": 10},
                   context={}),
    ]
    doc, _ = convert_doc(recs)
    assert thread_names(doc) == ["request-only", "unknown-session tools"]


def test_document_shape_and_ordering(convert_doc):
    recs = [
        simple_request("RT6", "r2", 3000, 50),
        request_end("RT6", context={"session_id": "other"}, event_time=1050,
                    request={"request_id": "r1", "model": "test-model", "request_received_ms": 1000,
                             "total_time_ms": 50, "prefill_wait_time_ms": 5, "ttft_ms": 10}),
        tool_event("RT6", "tool_end", 2000, {"tool_call_id": "c", "tool_class": "grep", "duration_ms": 10}),
    ]
    doc, converted = convert_doc(recs, include_markers=True)
    assert converted == 3
    assert list(doc) == ["displayTimeUnit", "traceEvents"]
    assert doc["displayTimeUnit"] == "ms"
    events = doc["traceEvents"]
    kinds = [e["ph"] == "M" for e in events]
    assert kinds == sorted(kinds, reverse=True)  # all metadata first
    meta = [e for e in events if e["ph"] == "M"]
    assert [e["name"] for e in meta] == ["process_name", "thread_name", "thread_name", "thread_name"]
    assert [(e["pid"], e["tid"]) for e in meta[1:]] == [(1, 1), (1, 2), (1, 3)]
    assert not any(e["name"].endswith("sort_index") for e in meta)  # Q13: upstream emits none
    body = drawn(doc)
    assert [(e["ts"], e["pid"], e["tid"]) for e in body] == sorted((e["ts"], e["pid"], e["tid"]) for e in body)
    # a request precedes its stages and marker at the same ts
    assert [e["name"] for e in body[:2]] == ["LLM request: test-model", "prefill wait"]
    for e in body:
        keys = {"name", "cat", "ph", "pid", "tid", "ts", "args"}
        assert set(e) == (keys | {"dur"} if e["ph"] == "X" else keys | {"s"})


def test_converted_count_excludes_stages_markers_and_metadata(convert_doc):
    doc, converted = convert_doc([case1_request("RT6", finish=False)], include_markers=True)
    assert converted == 1
    assert len(drawn(doc)) == 1 + 3 + 1


def test_empty_input_gives_an_empty_document(convert_doc):
    doc, converted = convert_doc([])
    assert converted == 0
    assert doc == {"displayTimeUnit": "ms", "traceEvents": []}


def test_other_schemas_and_event_types_are_ignored(convert_doc):
    recs = [
        envelope({"schema": "dynamo.other.v9", "event_type": "request_end", "event_time_unix_ms": 1,
                  "request": {"request_id": "x"}}),
        envelope({"schema": RS, "event_type": "request_payload", "event_time_unix_ms": 1,
                  "payload": {"request_id": "x", "endpoint": "e", "model": "m", "request": {},
                              "payload_complete": True}}),
        envelope({"schema": RS, "event_type": "something_else", "event_time_unix_ms": 1}),
        "not an object",
        [1, 2],
    ]
    doc, converted = convert_doc(recs)
    assert converted == 0
    assert doc["traceEvents"] == []


def test_importable_api_matches_upstream_signature():
    """§2.2: `convert_records(records, include_stages=, include_markers=)` -> (document, converted)."""
    doc, converted = convert_records([case1_request("RT6")], include_stages=False, include_markers=False)
    assert isinstance(doc, dict)
    assert converted == 2
