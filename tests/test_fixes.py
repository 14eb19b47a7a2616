"""Each `agent_trace.options.Fix` corrects one upstream quirk (upstream-converter.md §16).

For every fix: a small input that shows the quirk, the default output (upstream's behaviour,
pinned exactly) and the fixed output. Every document goes through the invariant validator via
the `convert_doc` fixture.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_trace.convert import ConvertOptions, build_plan, convert_files, records_from_objects
from agent_trace.options import ALL_FIXES, Fix
from agent_trace.report import NotDrawn
from agent_trace.validate import decode_trace

RS = "dynamo.request.trace.v1"
ROW = "sess"


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": 0, "event": event}


def request(
    request_id: str,
    start: float | None,
    total: float | None,
    *,
    context: dict[str, Any] | None = None,
    end: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"request_id": request_id, "model": "m", **extra}
    if start is not None:
        body["request_received_ms"] = start
    if total is not None:
        body["total_time_ms"] = total
    if end is None:
        end = (start or 0) + (total or 0)
    return envelope({
        "schema": RS, "event_type": "request_end", "event_time_unix_ms": end, "event_source": "dynamo",
        "agent_context": {"session_id": ROW} if context is None else context, "request": body,
    })


def tool(kind: str, event_time: float, call_id: str | None, *, context: Any = ..., **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "schema": RS, "event_type": kind, "event_time_unix_ms": event_time, "event_source": "harness",
        "tool": {"tool_class": "grep", **fields},
    }
    if call_id is not None:
        event["tool"]["tool_call_id"] = call_id
    if context is ...:
        event["agent_context"] = {"session_id": ROW}
    elif context is not None:
        event["agent_context"] = context
    return envelope(event)


def of_cat(doc: dict[str, Any], cat: str) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if e.get("cat") == cat]


def spans(doc: dict[str, Any], cat: str) -> list[tuple[str, int, int | None]]:
    return [(e["name"], e["ts"], e.get("dur")) for e in of_cat(doc, cat)]


def thread_names(doc: dict[str, Any]) -> list[str]:
    return [e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "thread_name"]


def drawn(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if e["ph"] != "M"]


# ==================================================================================================
# Q4 REQUEST_START: start = end − total_time_ms when request_received_ms is missing
# ==================================================================================================
class TestRequestStart:
    records = [request("r", None, 50, end=1050)]

    def test_default_starts_where_the_request_ended(self, convert_doc):
        doc, _ = convert_doc(self.records)
        assert spans(doc, "dynamo.llm") == [("LLM request: m", 1_050_000, 50_000)]

    def test_fixed_starts_at_end_minus_total(self, convert_doc):
        doc, _ = convert_doc(self.records, fixes=[Fix.REQUEST_START])
        assert spans(doc, "dynamo.llm") == [("LLM request: m", 1_000_000, 50_000)]

    def test_fixed_changes_nothing_when_the_start_is_known(self, convert_doc):
        recs = [request("r", 990, 50, end=1050)]
        assert convert_doc(recs, fixes=[Fix.REQUEST_START]) == convert_doc(recs)

    def test_fixed_flags_the_estimate_and_the_default_stays_upstreams(self, convert_doc):
        recs = [*self.records, request("known", 990, 50, end=1050)]
        fixed, _ = convert_doc(recs, fixes=[Fix.REQUEST_START])
        default, _ = convert_doc(recs)
        flags = {e["args"]["request_id"]: e["args"].get("start_estimated") for e in of_cat(fixed, "dynamo.llm")}
        assert flags == {"r": True, "known": None}
        assert all("start_estimated" not in e["args"] for e in of_cat(default, "dynamo.llm"))
        # only the request slice says so; its stages keep their args
        assert all("start_estimated" not in e["args"] for e in of_cat(fixed, "dynamo.llm.stage"))

    def test_the_flag_reaches_protobuf(self, tmp_path):
        src = tmp_path / "in.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in self.records), encoding="utf-8")
        out = tmp_path / "out.pftrace"
        convert_files([str(src)], out, ConvertOptions(fixes=frozenset({Fix.REQUEST_START})))
        (req,) = [s for s in decode_trace(out.read_bytes()).slices if s.category == "dynamo.llm"]
        assert req.args["start_estimated"] is True and req.ts == 1_000_000

    def test_fixed_keeps_the_end_time_start_without_a_total(self, convert_doc):
        doc, _ = convert_doc([request("r", None, None, end=1050)], fixes=[Fix.REQUEST_START])
        assert spans(doc, "dynamo.llm") == [("LLM request: m", 1_050_000, 1)]

    def test_fixed_moves_the_inferred_gap_too(self, convert_doc):
        recs = [
            request("r1", None, 50, end=1050, finish_reason_metadata={"tool_calls": [{"id": "c", "name": "grep"}]}),
            request("r2", None, 40, end=1240),
        ]
        default, _ = convert_doc(recs)
        fixed, _ = convert_doc(recs, fixes=[Fix.REQUEST_START])
        # default: r1 is drawn [1050, 1100], r2 [1240, 1280]; fixed: [1000, 1050] and [1200, 1240]
        assert spans(default, "dynamo.agent.tool") == [("Tool: grep", 1_100_000, 140_000)]
        assert spans(fixed, "dynamo.agent.tool") == [("Tool: grep", 1_050_000, 150_000)]


# ==================================================================================================
# Q5 LANES_PER_KIND: requests and tools get separate lane pools and stable names
# ==================================================================================================
class TestLanesPerKind:
    records = [
        request("r1", 1000, 100),
        tool("tool_end", 1080, "c1", started_at_unix_ms=1050, ended_at_unix_ms=1080),
    ]

    def test_default_shares_one_pool_and_renames_every_track(self, convert_doc):
        doc, _ = convert_doc(self.records)
        assert thread_names(doc) == [f"{ROW} [lane 1]", f"{ROW} [lane 2] tools"]

    def test_fixed_keeps_the_tool_on_lane_1(self, convert_doc):
        doc, converted = convert_doc(self.records, fixes=[Fix.LANES_PER_KIND])
        assert converted == 2
        assert thread_names(doc) == [ROW, f"{ROW} tools"]

    def test_fixed_still_splits_overlapping_requests(self, convert_doc):
        recs = [*self.records, request("r2", 1050, 100)]
        default, _ = convert_doc(recs)
        fixed, _ = convert_doc(recs, fixes=[Fix.LANES_PER_KIND])
        assert thread_names(default) == [f"{ROW} [lane 1]", f"{ROW} [lane 2]", f"{ROW} [lane 3] tools"]
        assert thread_names(fixed) == [f"{ROW} [lane 1]", f"{ROW} [lane 2]", f"{ROW} tools"]


# ==================================================================================================
# Q6 GROUP_IN_NAMES: track names include the run (group) when the era has one
# ==================================================================================================
class TestGroupInNames:
    @staticmethod
    def st(request_id: str, session: str) -> dict[str, Any]:
        return request(request_id, 1000, 10, context={"session_type_id": "codex", "session_id": session,
                                                      "trajectory_id": "main"})

    def test_default_shows_only_the_trajectory(self, convert_doc):
        doc, _ = convert_doc([self.st("a", "run-1"), self.st("b", "run-2")])
        assert thread_names(doc) == ["main", "main"]  # two different rows, identical names

    def test_fixed_names_the_group(self, convert_doc):
        doc, _ = convert_doc([self.st("a", "run-1"), self.st("b", "run-2")], fixes=[Fix.GROUP_IN_NAMES])
        assert thread_names(doc) == ["run-1 / main", "run-2 / main"]

    def test_fixed_changes_nothing_without_a_group(self, convert_doc):
        recs = [request("a", 1000, 10), tool("tool_end", 1100, "c", duration_ms=10)]
        doc, _ = convert_doc(recs, fixes=[Fix.GROUP_IN_NAMES])
        assert thread_names(doc) == [ROW, f"{ROW} tools"]


# ==================================================================================================
# Q7 REBASE_TIME: timestamps start at 0; the epoch offset goes into metadata
# ==================================================================================================
class TestRebaseTime:
    records = [
        request("r1", 1782300000000, 50, prefill_wait_time_ms=5, ttft_ms=10),
        tool("tool_end", 1782300000200, "c", duration_ms=100),
    ]

    def test_default_keeps_absolute_epoch_microseconds(self, convert_doc):
        doc, _ = convert_doc(self.records)
        assert min(e["ts"] for e in drawn(doc)) == 1_782_300_000_000_000

    def test_fixed_starts_at_zero_and_keeps_distances(self, convert_doc):
        default, _ = convert_doc(self.records, include_markers=True)
        fixed, _ = convert_doc(self.records, include_markers=True, fixes=[Fix.REBASE_TIME])
        offset = 1_782_300_000_000_000
        assert [(e["name"], e["ts"]) for e in drawn(fixed)] == [(e["name"], e["ts"] - offset) for e in drawn(default)]
        assert [e.get("dur") for e in drawn(fixed)] == [e.get("dur") for e in drawn(default)]
        assert spans(fixed, "dynamo.llm") == [("LLM request: m", 0, 50_000)]
        assert spans(fixed, "dynamo.agent.tool") == [("Tool: grep", 100_000, 100_000)]
        # args keep the raw epoch values
        assert of_cat(fixed, "dynamo.llm")[0]["args"]["request_received_ms"] == 1782300000000

    def test_plan_records_the_offset(self):
        records, _ = records_from_objects(self.records)
        plan = build_plan(records, ConvertOptions(fixes=frozenset({Fix.REBASE_TIME})))
        assert plan.time_offset_us == 1_782_300_000_000_000
        assert build_plan(records, ConvertOptions()).time_offset_us == 0

    def test_fixed_keeps_the_epoch_offset_in_metadata(self, tmp_path):
        src = tmp_path / "in.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in self.records), encoding="utf-8")
        out = tmp_path / "out.json"
        convert_files([str(src)], out, ConvertOptions(fixes=frozenset({Fix.REBASE_TIME})))
        doc = json.loads(out.read_text(encoding="utf-8"))
        assert min(e["ts"] for e in drawn(doc)) == 0

        def numbers(value: Any) -> list[Any]:
            if isinstance(value, dict):
                return [n for v in value.values() for n in numbers(v)]
            if isinstance(value, list):
                return [n for v in value for n in numbers(v)]
            return [value]

        assert 1_782_300_000_000_000 in numbers(doc.get("metadata", {}))
        assert doc["metadata"]["agent_trace"]["time_offset_us"] == 1_782_300_000_000_000

    @pytest.mark.parametrize("name", ["out.json", "out.pftrace"])
    def test_the_offset_survives_no_summary_and_reaches_protobuf(self, tmp_path, name):
        src = tmp_path / "in.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in self.records), encoding="utf-8")
        out = tmp_path / name
        convert_files([str(src)], out, ConvertOptions(fixes=frozenset({Fix.REBASE_TIME}), embed_summary=False))
        if name.endswith(".json"):
            meta = json.loads(out.read_text(encoding="utf-8"))["metadata"]
        else:
            trace = decode_trace(out.read_bytes())
            assert min(s.ts for s in trace.slices) == 0
            meta = json.loads(trace.tracks[1].description)
        assert meta == {"agent_trace": {"time_offset_us": 1_782_300_000_000_000}}


# ==================================================================================================
# Q8 CLEAN_STAGES: no null stage args; the first-token marker clamped into its request
# ==================================================================================================
class TestCleanStages:
    # no x_request_id, and a TTFT past the end of the request (50 ms)
    records = [request("r", 1000, 50, prefill_wait_time_ms=5, ttft_ms=80)]

    def test_default_writes_nulls_and_a_marker_outside_the_request(self, convert_doc):
        doc, _ = convert_doc(self.records, include_markers=True)
        (wait,) = of_cat(doc, "dynamo.llm.stage")
        assert wait["args"] == {"request_id": "r", "x_request_id": None, "model": "m", "prefill_wait_time_ms": 5}
        (marker,) = of_cat(doc, "dynamo.llm.marker")
        assert marker["ts"] == 1_080_000  # 30 ms after the request ended

    def test_fixed_drops_nulls_and_clamps_the_marker(self, convert_doc):
        doc, _ = convert_doc(self.records, include_markers=True, fixes=[Fix.CLEAN_STAGES])
        (wait,) = of_cat(doc, "dynamo.llm.stage")
        assert wait["args"] == {"request_id": "r", "model": "m", "prefill_wait_time_ms": 5}
        (marker,) = of_cat(doc, "dynamo.llm.marker")
        (req,) = of_cat(doc, "dynamo.llm")
        assert req["ts"] <= marker["ts"] < req["ts"] + req["dur"]
        assert marker["ts"] == 1_049_999
        assert marker["args"] == {"ttft_ms": 80}  # the raw value stays

    def test_decode_nulls(self, convert_doc):
        recs = [request("r", 1000, 50, ttft_ms=10)]
        default, _ = convert_doc(recs)
        fixed, _ = convert_doc(recs, fixes=[Fix.CLEAN_STAGES])
        assert of_cat(default, "dynamo.llm.stage")[0]["args"] == {
            "request_id": "r", "x_request_id": None, "model": "m", "output_tokens": None, "avg_itl_ms": None}
        assert of_cat(fixed, "dynamo.llm.stage")[0]["args"] == {"request_id": "r", "model": "m"}

    def test_zero_length_stages_are_never_emitted(self, convert_doc):
        """§8.1 agent_trace: a stage whose rounded length is 0 is dropped, fix or not."""
        recs = [request("r", 1000, 50, prefill_wait_time_ms=0.0004, prefill_time_ms=5, ttft_ms=5)]
        doc, _ = convert_doc(recs)
        assert spans(doc, "dynamo.llm.stage") == [("prefill", 1_000_000, 5_000), ("decode", 1_005_000, 45_000)]


# ==================================================================================================
# Q9 TOOL_PAIRING: pair by explicit start time, else the oldest open start (not LIFO)
# ==================================================================================================
class TestToolPairing:
    # a retry that reuses one id: start1, start2, end1, end2
    retry = [
        tool("tool_start", 1000, "c"),
        tool("tool_start", 1100, "c"),
        tool("tool_end", 1200, "c"),
        tool("tool_end", 1300, "c"),
    ]

    def test_default_pairs_lifo(self, convert_doc):
        doc, converted = convert_doc(self.retry)
        assert converted == 2
        # end1 pops start2 and end2 pops start1: a long and a short slice
        assert sorted(spans(doc, "dynamo.agent.tool")) == [("Tool: grep", 1_000_000, 300_000),
                                                           ("Tool: grep", 1_100_000, 100_000)]

    def test_fixed_pairs_in_time_order(self, convert_doc):
        doc, converted = convert_doc(self.retry, fixes=[Fix.TOOL_PAIRING])
        assert converted == 2
        assert sorted(spans(doc, "dynamo.agent.tool")) == [("Tool: grep", 1_000_000, 200_000),
                                                           ("Tool: grep", 1_100_000, 200_000)]

    def test_fixed_prefers_the_explicit_start_time(self, convert_doc):
        # The ends name their starts (started_at), but carry no end time or duration, so the slice
        # start comes from the paired start row (rule 4).
        recs = [
            tool("tool_start", 1000, "c", started_at_unix_ms=1000),
            tool("tool_start", 1100, "c", started_at_unix_ms=1100),
            tool("tool_end", 1250, "c", started_at_unix_ms=1100),
            tool("tool_end", 1300, "c", started_at_unix_ms=1000),
        ]
        default, _ = convert_doc(recs)
        fixed, _ = convert_doc(recs, fixes=[Fix.TOOL_PAIRING])
        # LIFO happens to be right for the first end, then hands the second the remaining start.
        assert sorted(spans(default, "dynamo.agent.tool")) == [("Tool: grep", 1_000_000, 300_000),
                                                               ("Tool: grep", 1_100_000, 150_000)]
        assert sorted(spans(fixed, "dynamo.agent.tool")) == sorted(spans(default, "dynamo.agent.tool"))

        swapped = [recs[0], recs[1], tool("tool_end", 1250, "c", started_at_unix_ms=1000),
                   tool("tool_end", 1300, "c", started_at_unix_ms=1100)]
        default, _ = convert_doc(swapped)
        fixed, _ = convert_doc(swapped, fixes=[Fix.TOOL_PAIRING])
        assert sorted(spans(default, "dynamo.agent.tool")) == [("Tool: grep", 1_000_000, 300_000),
                                                               ("Tool: grep", 1_100_000, 150_000)]
        assert sorted(spans(fixed, "dynamo.agent.tool")) == [("Tool: grep", 1_000_000, 250_000),
                                                             ("Tool: grep", 1_100_000, 200_000)]

    def test_leftover_starts_are_still_instants(self, convert_doc):
        recs = [*self.retry[:3]]
        default, _ = convert_doc(recs)
        fixed, _ = convert_doc(recs, fixes=[Fix.TOOL_PAIRING])
        # LIFO leaves the first start open; time order leaves the second
        assert spans(default, "dynamo.agent.tool.marker") == [("Tool start: grep", 1_000_000, None)]
        assert spans(fixed, "dynamo.agent.tool.marker") == [("Tool start: grep", 1_100_000, None)]


# ==================================================================================================
# Q10 INFERENCE: any harness row suppresses inference; unclosed starts drawn as open slices
# ==================================================================================================
class TestInference:
    records = [
        request("r1", 1000, 50, finish_reason_metadata={"tool_calls": [{"id": "c1", "name": "grep"}]}),
        tool("tool_start", 1060, "c1", status="running"),
        request("r2", 1200, 40),
    ]

    def test_default_infers_despite_the_unclosed_start(self, convert_doc):
        doc, converted = convert_doc(self.records)
        assert converted == 4  # 2 requests + 1 inferred slice + 1 start instant: the call twice
        assert spans(doc, "dynamo.agent.tool") == [("Tool: grep", 1_050_000, 150_000)]
        assert of_cat(doc, "dynamo.agent.tool")[0]["args"]["inferred"] is True
        assert spans(doc, "dynamo.agent.tool.marker") == [("Tool start: grep", 1_060_000, None)]

    def test_fixed_draws_the_open_start_and_infers_nothing(self, convert_doc):
        doc, converted = convert_doc(self.records, fixes=[Fix.INFERENCE])
        assert converted == 3
        assert of_cat(doc, "dynamo.agent.tool.marker") == []
        (open_slice,) = of_cat(doc, "dynamo.agent.tool")
        # open until the end of the trace (r2 ends at 1240 ms)
        assert (open_slice["name"], open_slice["ts"], open_slice["dur"]) == ("Tool: grep", 1_060_000, 180_000)
        assert open_slice["args"]["unclosed"] is True
        assert "inferred" not in open_slice["args"]
        assert open_slice["args"]["event_type"] == "tool_start"

    def test_fixed_still_infers_calls_nobody_reported(self, convert_doc):
        recs = [self.records[0], self.records[2]]
        default, _ = convert_doc(recs)
        fixed, _ = convert_doc(recs, fixes=[Fix.INFERENCE])
        assert fixed == default
        assert spans(fixed, "dynamo.agent.tool") == [("Tool: grep", 1_050_000, 150_000)]


# ==================================================================================================
# Q13 SORT_INDEX: process/thread sort indices
# ==================================================================================================
class TestSortIndex:
    records = [request("r", 1000, 50), tool("tool_end", 1100, "c", duration_ms=10),
               request("r2", 1000, 50, context={"session_id": "other"})]

    def test_default_emits_no_sort_index(self, convert_doc):
        doc, _ = convert_doc(self.records)
        names = [e["name"] for e in doc["traceEvents"] if e["ph"] == "M"]
        assert names == ["process_name", "thread_name", "thread_name", "thread_name"]

    def test_fixed_emits_one_index_per_process_and_thread(self, convert_doc):
        doc, _ = convert_doc(self.records, fixes=[Fix.SORT_INDEX])
        meta = [e for e in doc["traceEvents"] if e["ph"] == "M"]
        assert all(e["ph"] == "M" for e in doc["traceEvents"][: len(meta)])  # still all first
        process_idx = [e for e in meta if e["name"] == "process_sort_index"]
        thread_idx = [e for e in meta if e["name"] == "thread_sort_index"]
        assert [(e["pid"], type(e["args"]["sort_index"])) for e in process_idx] == [(1, int)]
        assert sorted((e["pid"], e["tid"]) for e in thread_idx) == [(1, 1), (1, 2), (1, 3)]
        assert len({e["args"]["sort_index"] for e in thread_idx}) == 3
        # everything else is unchanged
        plain, _ = convert_doc(self.records)
        assert [e for e in meta if not e["name"].endswith("sort_index")] == [
            e for e in plain["traceEvents"] if e["ph"] == "M"]
        assert drawn(doc) == drawn(plain)


# ==================================================================================================
# Q15 BIG_INTS: integers above 2^53 written as strings
# ==================================================================================================
class TestBigInts:
    SAFE = 2**53 - 1
    records = [request("r", 1000, 50, worker={"decode_worker_id": 2**53 + 1, "prefill_worker_id": 2**64 - 1,
                                              "decode_dp_rank": 3, "safe_id": 2**53 - 1})]

    def test_default_writes_exact_integers(self, convert_doc):
        doc, _ = convert_doc(self.records)
        args = of_cat(doc, "dynamo.llm")[0]["args"]
        assert args["worker.decode_worker_id"] == 2**53 + 1
        assert args["worker.prefill_worker_id"] == 2**64 - 1
        assert type(args["worker.decode_worker_id"]) is int

    def test_fixed_writes_strings_above_2_53(self, convert_doc):
        doc, _ = convert_doc(self.records, fixes=[Fix.BIG_INTS])
        args = of_cat(doc, "dynamo.llm")[0]["args"]
        assert args["worker.decode_worker_id"] == str(2**53 + 1)
        assert args["worker.prefill_worker_id"] == "18446744073709551615"
        assert args["worker.safe_id"] == self.SAFE
        assert args["worker.decode_dp_rank"] == 3
        # timestamps (~1.8e15 µs) are below 2^53 and stay numbers
        assert all(type(e["ts"]) is int for e in drawn(doc))

    def test_fixed_reaches_nested_finish_metadata(self, convert_doc):
        recs = [request("r", 1000, 50, finish_reason_metadata={"finish_reason": "stop", "big": [2**60]})]
        doc, _ = convert_doc(recs, fixes=[Fix.BIG_INTS])
        assert of_cat(doc, "dynamo.llm")[0]["args"]["finish_reason_metadata"]["big"] == [str(2**60)]


# ==================================================================================================
# Q17 UNATTRIBUTED: tool rows without agent_context drawn on one `unattributed` row
# ==================================================================================================
class TestUnattributed:
    records = [
        request("r", 1000, 50),
        tool("tool_end", 1300, "c1", context=None, started_at_unix_ms=1000, ended_at_unix_ms=1250),
        tool("tool_start", 1400, "c2", context=None),
    ]

    def test_default_skips_and_counts_them(self, convert_doc):
        doc, converted = convert_doc(self.records)
        assert converted == 1
        assert thread_names(doc) == [ROW]
        records, _ = records_from_objects(self.records)
        draw = build_plan(records, ConvertOptions()).draw
        assert draw.not_drawn[NotDrawn.TOOL_WITHOUT_CONTEXT.value] == 2
        assert draw.converted == 1

    def test_fixed_draws_them_on_one_row(self, convert_doc):
        doc, converted = convert_doc(self.records, fixes=[Fix.UNATTRIBUTED])
        assert converted == 3
        assert thread_names(doc) == [ROW, "unattributed tools"]
        assert spans(doc, "dynamo.agent.tool") == [("Tool: grep", 1_000_000, 250_000)]
        assert spans(doc, "dynamo.agent.tool.marker") == [("Tool start: grep", 1_400_000, None)]
        assert "session_id" not in of_cat(doc, "dynamo.agent.tool")[0]["args"]
        records, _ = records_from_objects(self.records)
        draw = build_plan(records, ConvertOptions(fixes=frozenset({Fix.UNATTRIBUTED}))).draw
        assert draw.not_drawn[NotDrawn.TOOL_WITHOUT_CONTEXT.value] == 0


# ==================================================================================================
# All fixes together
# ==================================================================================================
def test_every_fix_has_a_test_class():
    tested = {Fix.REQUEST_START, Fix.LANES_PER_KIND, Fix.GROUP_IN_NAMES, Fix.REBASE_TIME, Fix.CLEAN_STAGES,
              Fix.TOOL_PAIRING, Fix.INFERENCE, Fix.SORT_INDEX, Fix.BIG_INTS, Fix.UNATTRIBUTED}
    assert tested == set(ALL_FIXES), "a new Fix needs a test here"


def test_fix_values_are_the_cli_spellings():
    assert {f.value for f in Fix} == {
        "request-start", "lanes-per-kind", "group-in-names", "rebase-time", "clean-stages", "tool-pairing",
        "inference", "sort-index", "big-ints", "unattributed",
    }


def test_all_fixes_together_keep_the_invariants(convert_doc):
    recs = [
        *TestRequestStart.records, *TestLanesPerKind.records, *TestToolPairing.retry, *TestInference.records,
        *TestUnattributed.records, *TestBigInts.records, *TestCleanStages.records,
        TestGroupInNames.st("a", "run-1"), TestGroupInNames.st("b", "run-2"),
    ]
    doc, converted = convert_doc(recs, include_markers=True, separate_stage_tracks=True, fixes=ALL_FIXES)
    assert converted > 0
    assert min(e["ts"] for e in drawn(doc)) == 0
    assert any(e["name"] == "thread_sort_index" for e in doc["traceEvents"])
    assert "unattributed tools" in thread_names(doc)


@pytest.mark.parametrize("fix", sorted(ALL_FIXES))
def test_a_fix_changes_nothing_on_input_without_its_quirk(convert_doc, fix):
    """Case 1 of §15 minus its tool call has none of the quirks (beyond what each fix says)."""
    recs = [request("r", 1000, 50, x_request_id="x", prefill_wait_time_ms=5, prefill_time_ms=7, ttft_ms=12,
                    output_tokens=10, avg_itl_ms=4.2)]
    default, _ = convert_doc(recs, include_markers=True)
    fixed, _ = convert_doc(recs, include_markers=True, fixes=[fix])
    if fix is Fix.REBASE_TIME:
        fixed = {**fixed, "traceEvents": [e if e["ph"] == "M" else {**e, "ts": e["ts"] + 1_000_000}
                                          for e in fixed["traceEvents"]]}
    if fix is Fix.SORT_INDEX:
        fixed = {**fixed, "traceEvents": [e for e in fixed["traceEvents"] if not e["name"].endswith("sort_index")]}
    assert fixed == default
