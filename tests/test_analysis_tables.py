"""The analysis tables against values computed by hand from the small fixtures in fixtures/analysis/.

Times in the fixtures are small epoch values (1,000,000 ms and up) so the arithmetic is easy to
follow; every expected number below is worked out from the fixture lines, not from the code.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import agent_trace.analysis as ana
from agent_trace.analysis import Trace, load
from agent_trace.convert import convert_records
from agent_trace.errors import MissingInputError, StrictModeError
from agent_trace.options import Fix

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures" / "analysis"
REAL_SMALL = ROOT / "fixtures" / "real" / "small"


def fixture(name: str) -> Trace:
    return load(FIX / f"{name}.jsonl")


def us(ms: int | float) -> int:
    return int(round(ms * 1000))


# -- public surface -------------------------------------------------------------------------------


def test_exported_members() -> None:
    assert sorted(ana.__all__) == ["Trace", "critical_path", "load", "summary"]
    for name in ana.__all__:
        assert getattr(ana, name) is not None


@pytest.mark.parametrize("name", ["tables", "trace", "summary", "critical_path", "stages"])
def test_docstring_examples(name: str) -> None:
    # By import path: the package's `summary` and `critical_path` attributes are the functions.
    module = importlib.import_module(f"agent_trace.analysis.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


CONTRACT = {
    "requests": {
        "request_id": pl.String, "x_request_id": pl.String, "session_id": pl.String,
        "parent_session_id": pl.String, "root_session_id": pl.String, "run_id": pl.String,
        "session_type": pl.String, "era": pl.String, "model": pl.String, "input_trigger": pl.String,
        "start_us": pl.Int64, "end_us": pl.Int64, "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC"),
        "ttft_ms": pl.Float64, "total_ms": pl.Float64, "queue_ms": pl.Float64, "prefill_ms": pl.Float64,
        "decode_ms": pl.Float64, "itl_ms": pl.Float64, "tpot_ms": pl.Float64, "input_tokens": pl.Int64,
        "output_tokens": pl.Int64, "cached_tokens": pl.Int64, "kv_hit_rate": pl.Float64, "queue_depth": pl.Int64,
        "finish_reason": pl.String, "cancelled": pl.Boolean, "prefill_worker_id": pl.UInt64,
        "decode_worker_id": pl.UInt64, "tool_call_count": pl.UInt32, "payload_complete": pl.Boolean,
        "message_count": pl.Int64, "hint_priority": pl.Int64, "hint_osl": pl.Int64,
        "hint_latency_sensitivity": pl.Float64,
    },
    "tools": {
        "tool_call_id": pl.String, "tool_class": pl.String, "status": pl.String, "session_id": pl.String,
        "root_session_id": pl.String, "start_us": pl.Int64, "end_us": pl.Int64, "tool_ms": pl.Float64,
        "inferred": pl.Boolean, "source_request_id": pl.String, "error_type": pl.String, "unclosed": pl.Boolean,
        "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC"),
    },
    "sessions": {
        "session_id": pl.String, "parent_session_id": pl.String, "root_session_id": pl.String,
        "depth": pl.UInt32, "session_type": pl.String, "start_us": pl.Int64, "end_us": pl.Int64,
        "wall_ms": pl.Float64, "llm_ms": pl.Float64, "tool_ms": pl.Float64, "idle_ms": pl.Float64,
        "request_count": pl.UInt32, "tool_count": pl.UInt32, "subagent_count": pl.UInt32,
    },
    "stages": {
        "request_id": pl.String, "session_id": pl.String, "stage": pl.String, "start_us": pl.Int64,
        "end_us": pl.Int64, "duration_ms": pl.Float64,
    },
}


@pytest.mark.parametrize("name", ["subagent_tree", "missing_fields", "cancelled"])
def test_contract_columns_and_dtypes(name: str) -> None:
    """The names and types `compare` and users build on: pinned, so a rename fails here first."""
    t = fixture(name)
    for table, columns in CONTRACT.items():
        schema = getattr(t, table).schema
        for column, dtype in columns.items():
            assert column in schema, f"{table}.{column} missing"
            assert schema[column] == dtype, f"{table}.{column}: {schema[column]} != {dtype}"


def test_load_accepts_paths_lists_and_directories() -> None:
    one = load(str(FIX / "overlap.jsonl"))
    both = load([FIX / "overlap.jsonl", FIX / "parallel_tools.jsonl"])
    assert one.requests.height == 3
    assert both.requests.height == 5
    assert both.files == (str(FIX / "overlap.jsonl"), str(FIX / "parallel_tools.jsonl"))
    every = load(FIX)
    assert every.sessions.filter(pl.col("depth") == 0).height >= 6
    with pytest.raises(MissingInputError):
        load(FIX / "nope.jsonl")


# -- overlapping requests -------------------------------------------------------------------------


def test_overlapping_requests() -> None:
    t = fixture("overlap")
    expected = pl.DataFrame(
        {
            "request_id": ["r1", "r2", "r3"],
            "model": ["m-big", "m-small", "m-big"],
            "start_us": [us(1_000_000), us(1_000_100), us(1_000_750)],
            "end_us": [us(1_000_400), us(1_000_300), us(1_001_000)],
            "ttft_ms": [100.0, 50.0, 50.0],
            "queue_ms": [10.0, 5.0, 0.5],
            "prefill_ms": [90.0, 45.0, 49.5],
            "decode_ms": [300.0, 150.0, 200.0],
            # (total - ttft) / (output_tokens - 1)
            "tpot_ms": [300.0 / 30, 150.0 / 10, 200.0 / 50],
            "input_trigger": ["user_message", "other", "tool_result"],
            "cancelled": [False, False, False],
            "tool_call_count": [1, 0, 0],
        },
        schema_overrides={"tool_call_count": pl.UInt32},
    )
    assert_frame_equal(t.requests.select(expected.columns), expected)
    # Overlap: r2 runs inside r1, so LLM time is the union 400 + 250, not the sum 850.
    s = t.sessions.select("session_id", "depth", "wall_ms", "llm_ms", "tool_ms", "idle_ms", "request_count", "tool_count")
    assert s.rows() == [("main", 0, 1000.0, 650.0, 300.0, 50.0, 3, 1)]
    stages = t.stages.filter(pl.col("request_id") == "r1").select("stage", "start_us", "end_us", "duration_ms")
    assert stages.rows() == [
        ("queue", us(1_000_000), us(1_000_010), 10.0),
        ("prefill", us(1_000_010), us(1_000_100), 90.0),
        ("decode", us(1_000_100), us(1_000_400), 300.0),
    ]
    tool = t.tools.select("tool_call_id", "session_id", "source_request_id", "tool_ms", "inferred").rows()
    assert tool == [("c1", "main", "r1", 300.0, False)]


def test_datetimes_match_epoch_microseconds() -> None:
    t = fixture("overlap")
    back = t.requests.select(pl.col("start").dt.epoch("us"), pl.col("end").dt.epoch("us"))
    assert back.rows() == t.requests.select("start_us", "end_us").rows()


# -- parallel tools -------------------------------------------------------------------------------


def test_parallel_tools() -> None:
    t = fixture("parallel_tools")
    expected = pl.DataFrame(
        {
            "tool_call_id": ["t1", "t2", "t3"],
            "tool_class": ["read_file", "grep", "bash"],
            "status": ["succeeded", "succeeded", "error"],  # `ok` and `failed` canonicalised
            "start_us": [us(2_000_100), us(2_000_100), us(2_000_101)],
            "end_us": [us(2_000_150), us(2_000_400), us(2_000_250)],
            "tool_ms": [50.0, 300.0, 149.0],
            "inferred": [False, False, False],
            "unclosed": [False, False, False],
            "source_request_id": ["p1", "p1", "p1"],
            "error_type": [None, None, "exit_code_1"],
        }
    )
    assert_frame_equal(t.tools.select(expected.columns), expected)
    # Tool time is the union of the three: [100, 400] = 300 ms; idle is the 10 ms before p2.
    s = t.sessions.select("wall_ms", "llm_ms", "tool_ms", "idle_ms", "tool_count", "tool_error_count")
    assert s.rows() == [(500.0, 190.0, 300.0, 10.0, 3, 1)]


# -- subagent tree --------------------------------------------------------------------------------


def test_subagent_tree_sessions() -> None:
    t = fixture("subagent_tree")
    expected = pl.DataFrame(
        {
            "session_id": ["R", "B", "A", "A.g"],
            "parent_session_id": [None, "R", "R", "A"],
            "root_session_id": ["R", "R", "R", "R"],
            "depth": [0, 1, 1, 2],
            # R: requests [0,100] [910,1000], agent tools [100,900] and [100,600] (relative ms)
            # A: requests [110,410] [510,890], tool [410,500];  A.g: [420,470];  B: [105,555]
            "wall_ms": [1000.0, 450.0, 780.0, 50.0],
            "llm_ms": [190.0, 450.0, 680.0, 50.0],
            "tool_ms": [800.0, 0.0, 90.0, 0.0],
            "idle_ms": [10.0, 0.0, 10.0, 0.0],
            "request_count": [2, 1, 2, 1],
            "tool_count": [2, 0, 1, 0],
            "subagent_count": [2, 0, 1, 0],
            "descendant_count": [3, 0, 1, 0],
            "tree_wall_ms": [1000.0, 450.0, 780.0, 50.0],
        },
        schema_overrides={
            c: pl.UInt32 for c in ("depth", "request_count", "tool_count", "subagent_count", "descendant_count")
        },
    )
    assert_frame_equal(t.sessions.select(expected.columns), expected)
    roles = t.requests.select("request_id", "session_role", "root_session_id", "parent_session_id").sort("request_id")
    assert roles.rows() == [
        ("rA1", "subagent", "R", "R"),
        ("rA2", "subagent", "R", "R"),
        ("rB1", "subagent", "R", "R"),
        ("rG1", "subagent", "R", "A"),
        ("rR1", "root", "R", None),
        ("rR2", "root", "R", None),
    ]


def test_parent_seen_only_as_a_reference_is_a_session() -> None:
    rec = {
        "schema": "dynamo.request.trace.v1", "event_type": "request_end", "event_time_unix_ms": 200,
        "agent_context": {"session_id": "child", "parent_session_id": "ghost"},
        "request": {"request_id": "x", "request_received_ms": 100, "total_time_ms": 100.0},
    }
    t = Trace.from_objects([rec])
    rows = t.sessions.select("session_id", "parent_session_id", "root_session_id", "depth", "request_count", "wall_ms")
    assert rows.rows() == [("ghost", None, "ghost", 0, 0, None), ("child", "ghost", "ghost", 1, 1, 100.0)]
    assert t.sessions.filter(pl.col("session_id") == "ghost")["tree_wall_ms"].to_list() == [100.0]


def test_parent_cycle_is_cut() -> None:
    def req(sid: str, parent: str, start: int) -> dict:
        return {
            "schema": "dynamo.request.trace.v1", "event_type": "request_end", "event_time_unix_ms": start + 10,
            "agent_context": {"session_id": sid, "parent_session_id": parent},
            "request": {"request_id": sid, "request_received_ms": start, "total_time_ms": 10.0},
        }

    t = Trace.from_objects([req("a", "b", 0), req("b", "a", 20)])
    s = t.sessions.sort("depth")
    assert s["depth"].to_list() == [0, 1]
    assert s["root_session_id"].n_unique() == 1
    assert s["parent_session_id"].null_count() == 1


# -- inferred tools only --------------------------------------------------------------------------


def test_session_with_only_inferred_tools() -> None:
    t = fixture("inferred_only")
    expected = pl.DataFrame(
        {
            "tool_call_id": ["i1", "i2", "i3", "i4"],
            "tool_class": ["read_file", "grep", "bash", "edit_file"],
            "status": [None, None, None, None],
            # from the end of the request that asked to the start of the session's next request
            "start_us": [us(4_000_100), us(4_000_100), us(4_000_400), us(4_000_500)],
            "end_us": [us(4_000_300), us(4_000_300), us(4_000_450), us(4_000_500)],
            "tool_ms": [200.0, 200.0, 50.0, None],  # the last call has no next request: unknown
            "inferred": [True, True, True, True],
            "duration_known": [True, True, True, False],
            "source_request_id": ["i-r1", "i-r1", "i-r2", "i-r3"],
        },
        schema_overrides={"status": pl.String},
    )
    assert_frame_equal(t.tools.select(expected.columns), expected)
    s = t.sessions.select("wall_ms", "llm_ms", "tool_ms", "idle_ms", "tool_count", "inferred_tool_count")
    assert s.rows() == [(500.0, 250.0, 250.0, 0.0, 4, 4)]


def test_harness_start_row_suppresses_inference() -> None:
    """As on the timeline with `--fix inference`: an unclosed harness start still means 'reported'."""
    objs = [
        {"schema": "dynamo.request.trace.v1", "event_type": "request_end", "event_time_unix_ms": 100,
         "agent_context": {"session_id": "s"},
         "request": {"request_id": "a", "request_received_ms": 0, "total_time_ms": 100.0,
                     "finish_reason_metadata": {"tool_calls": [{"id": "k", "name": "bash"}]}}},
        {"schema": "dynamo.request.trace.v1", "event_type": "tool_start", "event_time_unix_ms": 101,
         "agent_context": {"session_id": "s"}, "tool": {"tool_call_id": "k", "tool_class": "bash"}},
        {"schema": "dynamo.request.trace.v1", "event_type": "request_end", "event_time_unix_ms": 300,
         "agent_context": {"session_id": "s"},
         "request": {"request_id": "b", "request_received_ms": 200, "total_time_ms": 100.0}},
    ]
    t = Trace.from_objects(objs)
    assert t.tools.select("tool_call_id", "inferred", "unclosed", "status", "end_us").rows() == [
        ("k", False, True, "running", None)
    ]


# -- cancelled requests and identity eras ---------------------------------------------------------


def test_cancelled_requests_and_session_trajectory_identity() -> None:
    t = fixture("cancelled")
    expected = pl.DataFrame(
        {
            "request_id": ["c1", "c2", "c3"],
            "session_id": ["traj-1", "traj-1", "request-only"],
            "run_id": ["run-7", "run-7", None],
            "session_type": ["coder", "coder", None],
            "era": ["S/T", "S/T", "none"],
            # c2 has identity but no finish metadata: the client went away mid-stream. c3 has no
            # identity, and identity-less rows never carry finish metadata: unknown, not cancelled.
            "cancelled": [False, True, None],
            "finish_reason": ["stop", None, None],
            "tpot_ms": [100.0 / 10, 45.0 / 3, 23.0 / 2],
        },
    )
    assert_frame_equal(t.requests.select(expected.columns), expected)
    assert t.sessions.filter(pl.col("session_id") == "traj-1")["cancelled_count"].to_list() == [1]
    anon = t.sessions.filter(pl.col("anonymous"))
    assert anon["session_id"].to_list() == ["request-only"]


def test_no_finish_metadata_anywhere_means_unknown_not_cancelled() -> None:
    """Producers before PR #9817 never wrote finish metadata; their requests were not all cancelled."""
    rec = {
        "schema": "dynamo.agent.trace.v1", "event_type": "request_end", "event_time_unix_ms": 200,
        "event_source": "dynamo",
        "agent_context": {"workflow_type_id": "wt", "workflow_id": "wf", "program_id": "p1"},
        "request": {"request_id": "x", "model": "m", "request_received_ms": 100, "total_time_ms": 100.0},
    }
    t = Trace.from_objects([rec])
    assert t.requests.select("session_id", "run_id", "session_type", "era", "cancelled").rows() == [
        ("p1", "wf", "wt", "W", None)
    ]


# -- missing fields -------------------------------------------------------------------------------


def test_missing_fields() -> None:
    t = fixture("missing_fields")
    expected = pl.DataFrame(
        {
            "request_id": ["m1", "m2", "m3"],
            "model": ["m", "m", None],
            # m1 has no request_received_ms: start = end - total_time_ms
            "start_us": [us(6_000_000), us(6_000_300), us(6_000_500)],
            # m2 has no total_time_ms: its end is event_time_unix_ms
            "end_us": [us(6_000_200), us(6_000_400), us(6_000_550)],
            "start_estimated": [True, False, False],
            "ttft_ms": [50.0, None, None],
            "decode_ms": [150.0, None, None],
            "tpot_ms": [150.0 / 20, None, None],  # m2 has 1 output token: no TPOT
            "queue_depth": [None, None, None],
            "output_tokens": [21, 1, None],
            # u64 worker ids above 2^63 stay exact
            "prefill_worker_id": [None, None, 18446744073709551615],
            "decode_worker_id": [None, None, 9223372036854775808],
        },
        schema_overrides={
            "queue_depth": pl.Int64, "prefill_worker_id": pl.UInt64, "decode_worker_id": pl.UInt64,
            "ttft_ms": pl.Float64, "decode_ms": pl.Float64, "tpot_ms": pl.Float64,
        },
    )
    assert_frame_equal(t.requests.select(expected.columns), expected)
    # The explicit `queue_depth: null` was counted, not silently dropped.
    assert t.report.field_issues == {"field_null": 1}

    tools = pl.DataFrame(
        {
            "tool_call_id": ["z1", "z2"],
            "status": ["succeeded", "running"],
            "start_us": [us(6_000_260), us(6_000_560)],
            "end_us": [us(6_000_260), None],  # no times at all: a point; never closed: open
            "tool_ms": [None, None],
            "unclosed": [False, True],
            "duration_known": [False, False],
        },
        schema_overrides={"tool_ms": pl.Float64, "end_us": pl.Int64},
    )
    assert_frame_equal(t.tools.select(tools.columns), tools)

    stages = t.stages.select("request_id", "stage", "start_us", "end_us")
    assert stages.rows() == [
        ("m1", "prefill", us(6_000_000), us(6_000_050)),  # ttft known, no wait: prefill is [0, ttft]
        ("m1", "decode", us(6_000_050), us(6_000_200)),
        ("m2", "queue", us(6_000_300), us(6_000_305)),  # no ttft: no decode
        ("m2", "prefill", us(6_000_305), us(6_000_325)),
    ]
    # Unclosed tools do not stretch the session; the zero-length tool adds no tool time.
    s = t.sessions.select("wall_ms", "llm_ms", "tool_ms", "idle_ms", "unclosed_tool_count")
    assert s.rows() == [(550.0, 350.0, 0.0, 200.0, 1)]


def test_strict_mode_raises_on_the_first_problem() -> None:
    with pytest.raises(StrictModeError) as info:
        load(FIX / "missing_fields.jsonl", strict=True)
    assert "missing_fields.jsonl:4" in str(info.value)


def test_stages_are_clamped_inside_the_request() -> None:
    """wait + prefill is rounded independently of ttft and may exceed it: the stages still tile."""
    rec = {
        "schema": "dynamo.request.trace.v1", "event_type": "request_end", "event_time_unix_ms": 1100,
        "agent_context": {"session_id": "s"},
        "request": {"request_id": "x", "request_received_ms": 1000, "prefill_wait_time_ms": 3.0006,
                    "prefill_time_ms": 7.0006, "ttft_ms": 10.001, "total_time_ms": 100.0},
    }
    t = Trace.from_objects([rec])
    rows = t.stages.select("stage", "start_us", "end_us").rows()
    assert rows == [("queue", 1_000_000, 1_003_001), ("prefill", 1_003_001, 1_010_001), ("decode", 1_010_001, 1_100_000)]


def test_stages_are_the_timeline_intervals() -> None:
    """One clamping rule (`timeline.stage_intervals`): every slice the timeline draws is a stage
    row; the table only adds zero-length rows for stages clamped away and runs prefill on to the
    first token (closing the µs that independent rounding of wait and prefill leaves before it)."""
    from agent_trace.ingest import read_files
    from agent_trace.timeline import ms_to_us, request_bounds, stage_intervals

    records, _ = read_files([str(REAL_SMALL / "dynamo-request-trace.jsonl")])
    names = {1: "queue", 2: "prefill", 3: "decode"}
    stages = load(REAL_SMALL).stages
    by_request: dict[int, dict[str, tuple[int, int]]] = {}
    for idx, stage, a, b in stages.select("request_index", "stage", "start_us", "end_us").iter_rows():
        by_request.setdefault(idx, {})[stage] = (a, b)
    extended = 0
    for idx, r in enumerate(records.requests):
        bounds = request_bounds(r, True)
        assert bounds is not None
        ts, dur, _ = bounds
        ttft = ms_to_us(r.ttft_ms) if r.ttft_ms is not None else None
        rows = by_request[idx]
        for kind, start, length in stage_intervals(r, ts, dur, ttft):
            a, b = rows[names[kind]]
            assert a == start
            if kind == 2 and ttft is not None:
                assert b >= start + length and b == rows["decode"][0]
                extended += b != start + length
            else:
                assert b == start + length
    assert 0 < extended < len(records.requests)  # 7 requests of the capture lose a µs to rounding


def test_streamed_load_equals_tables_from_records() -> None:
    """`load` builds the tables while reading; from records in hand they are the same."""
    from agent_trace.ingest import expand_inputs, read_files

    streamed = load(REAL_SMALL)
    records, report = read_files(expand_inputs([str(REAL_SMALL)]))
    whole = Trace.from_records(records, report)
    for table in ("requests", "tools", "sessions", "stages"):
        assert_frame_equal(getattr(streamed, table), getattr(whole, table))


# -- the real capture -----------------------------------------------------------------------------


def test_real_small_trace() -> None:
    t = load(REAL_SMALL)
    assert (t.requests.height, t.tools.height, t.sessions.height) == (60, 45, 10)
    roots = t.sessions.filter(pl.col("depth") == 0, ~pl.col("anonymous"))
    assert sorted(roots["session_id"]) == ["run0-root", "run1-root", "run2-root"]
    assert roots["subagent_count"].to_list() == [2, 2, 2]
    assert t.requests["request_id"].n_unique() == 60
    assert t.requests["cancelled"].sum() == 1
    assert t.tools["unclosed"].sum() == 1
    # Every request has one worker id above 2^53, kept exactly.
    assert (t.requests["prefill_worker_id"] > 2**53).all()
    # Per session, wall time = busy + idle, and busy >= each of llm and tool time.
    s = t.sessions.filter(pl.col("wall_ms").is_not_null())
    assert (s["idle_ms"] >= 0).all()
    assert (s["llm_ms"] <= s["wall_ms"] + 1e-9).all() and (s["tool_ms"] <= s["wall_ms"] + 1e-9).all()


def test_tool_spans_agree_with_the_timeline() -> None:
    """Each table row is a Perfetto tool slice of `convert --fix tool-pairing --fix inference`."""
    import orjson

    lines = (REAL_SMALL / "dynamo-request-trace.jsonl").read_bytes().splitlines()
    objs = [orjson.loads(x) for x in lines]
    doc, _ = convert_records(objs, fixes=[Fix.TOOL_PAIRING, Fix.INFERENCE])
    slices = sorted(
        (e["ts"], e["ts"] + e["dur"]) for e in doc["traceEvents"]
        if e.get("cat") == "dynamo.agent.tool" and e.get("ph") == "X"
    )
    t = Trace.from_objects(objs)
    closed = t.tools.filter(~pl.col("unclosed")).select("start_us", "end_us").rows()
    assert set(closed) <= set(slices)
    assert len(slices) == t.tools.height  # the timeline draws the unclosed start as an open slice


# -- request payloads: hints and completeness, joined on request_id --------------------------------


def _end(rid: str, received: int) -> dict:
    return {"schema": "dynamo.request.trace.v1", "event_type": "request_end", "event_time_unix_ms": received + 100,
            "agent_context": {"session_id": "s"},
            "request": {"request_id": rid, "request_received_ms": received, "total_time_ms": 100.0}}


def _payload(rid: str, hints: dict | None = None, complete: bool = True, **extra: object) -> dict:
    body: dict = {"model": "m", "messages": [{"role": "user", "content": "hi"}] * 3}
    if hints is not None:
        body["nvext"] = {"agent_hints": hints}
    payload = {"request_id": rid, "endpoint": "openai.chat_completion", "model": "m", "request": body,
               "payload_complete": complete, **extra}
    return {"schema": "dynamo.request.trace.v1", "event_type": "request_payload", "event_time_unix_ms": 1000,
            "event_source": "dynamo", "payload": payload}


def test_payload_rows_join_their_requests_with_hints_and_completeness(tmp_path: Path) -> None:
    rows = [
        _payload("a", {"priority": 2, "osl": 30, "speculative_prefill": True, "latency_sensitivity": 0.5}),
        _end("a", 1000),
        _payload("b", {"priority": "high", "osl": 1.5, "strict_priority": True}),  # wrong types: left null
        _payload("b", {"priority": 7}, complete=False, payload_drop_reason="response_stream_dropped"),  # last wins
        _end("b", 2000),
        _end("c", 3000),  # no payload row
        _payload("orphan", {"priority": 1}),  # no request_end: in no table
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(__import__("json").dumps(r) + "\n" for r in rows), encoding="utf-8")
    req = load(path).requests
    got = req.select("request_id", "payload_complete", "payload_drop_reason", "message_count", "hint_priority",
                     "hint_strict_priority", "hint_osl", "hint_speculative_prefill", "hint_latency_sensitivity").rows()
    assert got == [
        ("a", True, None, 3, 2, None, 30, True, 0.5),
        ("b", False, "response_stream_dropped", 3, 7, None, None, None, None),
        ("c", None, None, None, None, None, None, None, None),
    ]
    assert req.columns[-2:] == ["file", "line"]


def test_the_real_trace_payloads_all_find_their_requests() -> None:
    req = load(ROOT / "fixtures" / "real" / "small").requests
    assert req.height == 60
    counts = dict(req.group_by("payload_complete").len().iter_rows())
    assert counts == {True: 58, False: 1, None: 1}
    assert req.filter(pl.col("hint_priority").is_not_null()).height > 0
