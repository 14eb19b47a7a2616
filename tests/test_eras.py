"""Identity eras (trace-format.md §5) end to end: file -> `read_files` -> `Identity` -> rows.

Every era has a small hand-written file in fixtures/eras/:

    w.jsonl           W    agent schema, workflow_id / program_id            (AT1-AT5 layout)
    st_agent.jsonl    S/T  agent schema, session_id / trajectory_id          (AT6-AT7 layout)
    st_request.jsonl  S/T  request schema                                    (RT1-RT3 rows)
    t.jsonl           T    request schema, trajectory only                   (RT4-RT5 rows)
    s.jsonl           S    request schema, session only, 1.6.1 extras        (RT6 rows)
    none.jsonl        none context-free rows, an empty agent_context, a payload row
    bare.jsonl        records without the {"timestamp", "event"} envelope
    mixed.jsonl       one record of each era, plus lines to skip
    fields.jsonl      null / numeric-string / non-finite fields, an integer above 2^64

Records are also converted (with the invariant validator) to check rows, thread names and
identity args.
"""

from __future__ import annotations

import json
from array import array
from pathlib import Path
from typing import Any

import pytest

from agent_trace.convert import ConvertOptions, convert_files, records_from_objects
from agent_trace.errors import StrictModeError
from agent_trace.ingest.reader import read_files
from agent_trace.model import Era, Identity
from agent_trace.options import Fix
from agent_trace.validate import validate_chrome

ERAS = Path(__file__).resolve().parent.parent / "fixtures" / "eras"
T0 = 1782300000000  # epoch ms used by the fixtures
U53 = 9007199254740993  # 2^53 + 1: the first integer a float64 cannot hold
U63 = 13835058055282163713  # above 2^63: overflows int64
U64_MAX = 18446744073709551615
ABOVE_U64 = 36893488147419103232  # 2^65: not a u64 at all


def fixture(name: str) -> str:
    return str(ERAS / name)


def json_lines(name: str) -> list[Any]:
    """The fixture's records as the stdlib decodes them (exact big integers, NaN allowed)."""
    with open(ERAS / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def thread_names(doc: dict[str, Any]) -> list[str]:
    return [e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "thread_name"]


def process_names(doc: dict[str, Any]) -> list[tuple[int, str]]:
    return [(e["pid"], e["args"]["name"]) for e in doc["traceEvents"] if e.get("name") == "process_name"]


def thread_table(doc: dict[str, Any]) -> list[tuple[int, int, str]]:
    return [(e["pid"], e["tid"], e["args"]["name"]) for e in doc["traceEvents"] if e.get("name") == "thread_name"]


def of_cat(doc: dict[str, Any], cat: str) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if e.get("cat") == cat]


def requests_by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["args"]["request_id"]: e for e in of_cat(doc, "dynamo.llm")}


# ==================================================================================================
# Identity per era, as read from files
# ==================================================================================================
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "w.jsonl",
            [
                Identity(Era.WORKFLOW, "wf-1:planner", "wf-1", None, "ms_agent",
                         (("workflow_type_id", "ms_agent"), ("workflow_id", "wf-1"), ("program_id", "wf-1:planner"))),
                Identity(Era.WORKFLOW, "wf-1:coder", "wf-1", "wf-1:planner", "ms_agent",
                         (("workflow_type_id", "ms_agent"), ("workflow_id", "wf-1"), ("program_id", "wf-1:coder"),
                          ("parent_program_id", "wf-1:planner"))),
            ],
        ),
        (
            "st_agent.jsonl",
            [
                Identity(Era.SESSION_TRAJECTORY, "run-7:main", "run-7", None, "pi_coding_agent",
                         (("session_type_id", "pi_coding_agent"), ("session_id", "run-7"),
                          ("trajectory_id", "run-7:main"))),
                Identity(Era.SESSION_TRAJECTORY, "run-7:search", "run-7", "run-7:main", "pi_coding_agent",
                         (("session_type_id", "pi_coding_agent"), ("session_id", "run-7"),
                          ("trajectory_id", "run-7:search"), ("parent_trajectory_id", "run-7:main"))),
                Identity(Era.SESSION_TRAJECTORY, "run-8:main", "run-8", None, "pi_coding_agent",
                         (("session_type_id", "pi_coding_agent"), ("session_id", "run-8"),
                          ("trajectory_id", "run-8:main"))),
            ],
        ),
        (
            "st_request.jsonl",
            [
                Identity(Era.SESSION_TRAJECTORY, "main", "run-9", "root", "codex",
                         (("session_type_id", "codex"), ("session_id", "run-9"), ("trajectory_id", "main"),
                          ("parent_trajectory_id", "root"))),
                Identity(Era.SESSION_TRAJECTORY, "main", "run-9", None, "codex",
                         (("session_type_id", "codex"), ("session_id", "run-9"), ("trajectory_id", "main"))),
                Identity(Era.SESSION_TRAJECTORY, "main", "run-10", None, "codex",
                         (("session_type_id", "codex"), ("session_id", "run-10"), ("trajectory_id", "main"))),
            ],
        ),
        (
            "t.jsonl",
            [
                Identity(Era.TRAJECTORY, "traj-1", None, None, None, (("trajectory_id", "traj-1"),)),
                Identity(Era.TRAJECTORY, "traj-1:sub", None, "traj-1", None,
                         (("trajectory_id", "traj-1:sub"), ("parent_trajectory_id", "traj-1"))),
            ],
        ),
        (
            "s.jsonl",
            [
                Identity(Era.SESSION, "cc-agent-7", None, "cc-main", None,
                         (("session_id", "cc-agent-7"), ("parent_session_id", "cc-main"))),
            ]
            * 2,
        ),
        ("none.jsonl", [Identity(Era.NONE, None)] * 2),
        ("bare.jsonl", [Identity(Era.SESSION, "bare-1", args=(("session_id", "bare-1"),))]),
    ],
)
def test_request_identity_per_era(name, expected):
    records, report = read_files([fixture(name)])
    assert [r.identity for r in records.requests] == expected
    assert report.balanced()
    assert report.files[0].path == fixture(name)


@pytest.mark.parametrize(
    ("name", "eras", "accepted"),
    [
        ("w.jsonl", {"W": 4}, {"request_end": 2, "tool_start": 1, "tool_end": 1}),
        ("st_agent.jsonl", {"S/T": 4}, {"request_end": 3, "tool_end": 1}),
        ("st_request.jsonl", {"S/T": 3}, {"request_end": 3}),
        ("t.jsonl", {"T": 3}, {"request_end": 2, "tool_error": 1}),
        ("s.jsonl", {"S": 7}, {"request_end": 2, "tool_end": 4, "tool_error": 1}),
        ("none.jsonl", {"none": 4}, {"request_payload": 1, "request_end": 2, "tool_end": 1}),
        ("bare.jsonl", {"S": 2}, {"request_end": 1, "tool_end": 1}),
    ],
)
def test_read_report_counts_per_era(name, eras, accepted):
    records, report = read_files([fixture(name)])
    assert dict(report.eras) == eras
    assert dict(report.accepted) == accepted
    assert report.field_issues.total() == 0
    assert report.file_issues.total() == 0


def test_tool_identity_follows_the_same_eras():
    records, _ = read_files([fixture("w.jsonl"), fixture("t.jsonl"), fixture("s.jsonl"), fixture("none.jsonl")])
    eras = [(t.identity.era, t.identity.chain, t.identity.group, t.has_context) for t in records.tools]
    assert eras == [
        (Era.WORKFLOW, "wf-1:planner", "wf-1", True),
        (Era.WORKFLOW, "wf-1:planner", "wf-1", True),
        (Era.TRAJECTORY, "traj-1", None, True),
        *[(Era.SESSION, "cc-agent-7", None, True)] * 5,
        (Era.NONE, None, None, True),  # an empty agent_context is still a context (upstream: a dict)
    ]
    # records keep their source position: file index and line
    assert [(t.file, t.line) for t in records.tools][:3] == [(0, 2), (0, 3), (1, 3)]


def test_final_markers():
    st, _ = read_files([fixture("st_request.jsonl")])
    assert [r.final for r in st.requests] == [False, True, False]  # trajectory_final
    t, _ = read_files([fixture("t.jsonl")])
    assert [r.final for r in t.requests] == [False, True]
    s, _ = read_files([fixture("s.jsonl")])
    assert [r.final for r in s.requests] == [False, True]  # session_final


# ==================================================================================================
# Pass-through of what upstream drops (Q11): unknown keys, agent_headers, input_trigger, kv_hints
# ==================================================================================================
def test_s_era_pass_through():
    records, _ = read_files([fixture("s.jsonl")])
    first, second = records.requests
    assert first.input_trigger == "user_message"
    assert first.context_extra == {
        "agent_headers": {"x-claude-code-agent-id": ["cc-agent-7"], "x-claude-code-session-id": ["cc-main"]},
        "x_future_key": {"a": 1},
    }
    assert second.input_trigger == "tool_result"
    assert second.final is True
    assert second.context_extra == {"kv_hints": {"evict_session": True}}


def test_known_keys_are_not_duplicated_into_context_extra():
    records, _ = read_files([fixture("st_agent.jsonl"), fixture("w.jsonl")])
    assert all(r.context_extra is None for r in records.requests)


# ==================================================================================================
# Rows, processes and thread names in converted output
# ==================================================================================================
def test_w_era_output(convert_doc):
    doc, converted = convert_doc(json_lines("w.jsonl"))
    assert converted == 3
    assert process_names(doc) == [(1, "workflow: wf-1")]
    assert thread_table(doc) == [(1, 1, "wf-1:planner"), (1, 2, "wf-1:planner tools"), (1, 3, "wf-1:coder")]
    reqs = requests_by_id(doc)
    assert reqs["w-req-2"]["args"]["parent_program_id"] == "wf-1:planner"
    assert (reqs["w-req-1"]["ts"], reqs["w-req-1"]["dur"]) == (T0 * 1000, 120_000)
    tool = of_cat(doc, "dynamo.agent.tool")[0]
    assert (tool["ts"], tool["dur"]) == ((T0 + 130) * 1000, 40_000)
    assert tool["args"]["status"] == "succeeded"  # "ok" canonicalised


def test_st_agent_output_is_one_process_per_session(convert_doc):
    doc, converted = convert_doc(json_lines("st_agent.jsonl"))
    assert converted == 4  # no inference for agent-schema input, even with tool_calls
    assert process_names(doc) == [(1, "session: run-7"), (2, "session: run-8")]
    assert thread_table(doc) == [
        (1, 1, "run-7:main"),
        (1, 2, "run-7:main tools"),
        (1, 3, "run-7:search"),
        (2, 1, "run-8:main"),
    ]
    sub = requests_by_id(doc)["st-req-2"]
    assert sub["args"]["session_type_id"] == "pi_coding_agent"
    assert sub["args"]["parent_trajectory_id"] == "run-7:main"
    assert "trajectory_final" not in sub["args"]


def test_st_request_output_keys_rows_by_session_and_trajectory(convert_doc):
    """RT1-RT3: rows are (session, trajectory); names show only the trajectory (Q6)."""
    doc, converted = convert_doc(json_lines("st_request.jsonl"))
    assert converted == 4  # 3 requests + 1 inferred tool
    assert process_names(doc) == [(1, "Dynamo request trace")]
    assert thread_table(doc) == [(1, 1, "main"), (1, 2, "main"), (1, 3, "main tools")]
    reqs = requests_by_id(doc)
    assert reqs["rq-1"]["tid"] == reqs["rq-2"]["tid"] == 1
    assert reqs["rq-3"]["tid"] == 2
    inferred = of_cat(doc, "dynamo.agent.tool")[0]
    assert (inferred["ts"], inferred["dur"]) == ((T0 + 2050) * 1000, 150_000)
    assert inferred["args"]["trajectory_id"] == "main"
    assert inferred["args"]["parent_trajectory_id"] == "root"
    assert inferred["args"]["next_request_id"] == "rq-2"


def test_st_request_inferred_args_carry_the_rt3_identity(convert_doc):
    """RT2-RT3 inferred args: session_type_id, session_id, trajectory_id, parent (§11.3)."""
    doc, _ = convert_doc(json_lines("st_request.jsonl"))
    args = of_cat(doc, "dynamo.agent.tool")[0]["args"]
    assert [k for k in args][:5] == ["session_type_id", "session_id", "trajectory_id", "parent_trajectory_id",
                                     "event_type"]
    assert (args["session_type_id"], args["session_id"]) == ("codex", "run-9")


def test_st_request_inferred_args_use_the_default_session_label(convert_doc):
    """RT1-RT3 default a missing session to `request-trace` for requests; the inferred args show it."""
    recs = [{"event": {"schema": "dynamo.request.trace.v1", "event_type": "request_end", "event_time_unix_ms": 1050,
                       "agent_context": {"session_id": "", "trajectory_id": "main"},
                       "request": {"request_id": "r", "request_received_ms": 1000, "total_time_ms": 50,
                                   "finish_reason_metadata": {"tool_calls": [{"id": "c", "name": "grep"}]}}}}]
    doc, converted = convert_doc(recs)
    assert converted == 2
    args = of_cat(doc, "dynamo.agent.tool")[0]["args"]
    assert (args["session_id"], args["trajectory_id"]) == ("request-trace", "main")
    assert "session_type_id" not in args
    # the request's own args copy the raw value (only None is dropped, §7)
    assert of_cat(doc, "dynamo.llm")[0]["args"]["session_id"] == ""


def test_t_era_output(convert_doc):
    doc, converted = convert_doc(json_lines("t.jsonl"))
    assert converted == 3
    assert thread_table(doc) == [(1, 1, "traj-1"), (1, 2, "traj-1 tools"), (1, 3, "traj-1:sub")]
    sub = requests_by_id(doc)["t-req-2"]
    assert sub["args"] == {
        "trajectory_id": "traj-1:sub",
        "parent_trajectory_id": "traj-1",
        "event_time_unix_ms": T0 + 3150,
        "request_id": "t-req-2",
        "model": "glm",
        "request_received_ms": T0 + 3100,
        "total_time_ms": 50,
    }
    tool = of_cat(doc, "dynamo.agent.tool")[0]
    assert tool["name"] == "Tool error: bash"
    assert (tool["ts"], tool["dur"]) == ((T0 + 3085) * 1000, 110_000)
    assert tool["args"]["status"] == "error"  # "failed" canonicalised
    assert tool["args"]["error_type"] == "exit_code_1"


def test_t_era_default_labels(convert_doc):
    """RT4-RT5: requests default to `request-only`, tools to `unknown-trajectory`."""
    recs = [
        {"event": {"schema": "dynamo.request.trace.v1", "event_type": "request_end", "event_time_unix_ms": 1050,
                   "agent_context": {"parent_trajectory_id": "p", "trajectory_id": ""},
                   "request": {"request_id": "r", "request_received_ms": 1000, "total_time_ms": 50}}},
        {"event": {"schema": "dynamo.request.trace.v1", "event_type": "tool_end", "event_time_unix_ms": 1100,
                   "agent_context": {"trajectory_id": ""},
                   "tool": {"tool_call_id": "c", "tool_class": "grep", "duration_ms": 10}}},
    ]
    records, _ = records_from_objects(recs)
    assert [r.identity.era for r in records.requests] == [Era.TRAJECTORY]
    doc, _ = convert_doc(recs)
    # an empty trajectory_id names nothing: the row falls back like upstream's _safe_label
    assert thread_names(doc) == ["request-only", "unknown-trajectory tools"]
    assert of_cat(doc, "dynamo.llm")[0]["args"]["parent_trajectory_id"] == "p"


def test_s_era_output(convert_doc):
    doc, converted = convert_doc(json_lines("s.jsonl"))
    assert converted == 7
    assert thread_table(doc) == [(1, 1, "cc-agent-7"), (1, 2, "cc-agent-7 tools")]
    first = requests_by_id(doc)["s-req-1"]
    identity = {k: v for k, v in first["args"].items() if "session" in k}
    assert identity == {"session_id": "cc-agent-7", "parent_session_id": "cc-main"}
    for dropped in ("agent_headers", "input_trigger", "x_future_key", "replay", "session_final"):
        assert dropped not in first["args"]
    statuses = [e["args"]["status"] for e in of_cat(doc, "dynamo.agent.tool")]
    assert statuses == ["succeeded", "succeeded", "error", "cancelled", "cancelled"]
    assert of_cat(doc, "dynamo.agent.tool")[-1]["args"]["error_type"] == "timeout"


def test_none_era_output(convert_doc):
    """Context-free rows share one `request-only` row; empty-context tools go to `unknown-session` (Q17)."""
    doc, converted = convert_doc(json_lines("none.jsonl"))
    assert converted == 3  # the payload row is not drawn
    assert thread_names(doc) == ["request-only [lane 1]", "request-only [lane 2]", "unknown-session tools"]
    assert {e["name"] for e in of_cat(doc, "dynamo.llm")} == {"LLM request: unknown-model"}
    assert all("session_id" not in e["args"] for e in of_cat(doc, "dynamo.llm"))


def test_none_era_payload_rows_are_kept_for_analysis():
    records, _ = read_files([fixture("none.jsonl")])
    (payload,) = records.payloads
    assert (payload.request_id, payload.endpoint, payload.model) == ("n-req-1", "openai.chat_completion", "glm")
    assert payload.agent_hints == {"priority": 2}
    assert payload.message_count == 1
    assert payload.payload_complete is True
    assert payload.has_response is False


def test_bare_records_read_like_enveloped_ones(convert_doc):
    records, report = read_files([fixture("bare.jsonl")])
    assert dict(report.skipped) == {"not_an_object": 1}  # the `[1, 2, 3]` line
    assert report.lines == 3
    assert len(records.requests) == 1 and len(records.tools) == 1
    doc, converted = convert_doc(json_lines("bare.jsonl"))
    assert converted == 2
    assert thread_names(doc) == ["bare-1", "bare-1 tools"]


def test_mixed_file(convert_doc):
    records, report = read_files([fixture("mixed.jsonl")])
    assert dict(report.eras) == {"W": 1, "S/T": 2, "T": 1, "S": 2, "none": 1}
    assert dict(report.skipped) == {"unknown_schema": 1, "unsupported_event_type": 1}
    assert dict(report.skipped_detail) == {
        "unknown_schema: dynamo.other.trace.v9": 1,
        "unsupported_event_type: dynamo.request.trace.v1 request_start": 1,
    }
    assert dict(report.schemas) == {"dynamo.agent.trace.v1": 2, "dynamo.request.trace.v1": 5}
    assert report.blank == 1
    assert report.lines == 10
    assert report.balanced()
    assert [r.identity.era for r in records.requests] == [
        Era.WORKFLOW, Era.SESSION_TRAJECTORY, Era.SESSION_TRAJECTORY, Era.TRAJECTORY, Era.SESSION, Era.NONE,
    ]
    assert [r.agent_schema for r in records.requests] == [True, True, False, False, False, False]

    doc, converted = convert_doc(json_lines("mixed.jsonl"))
    assert converted == 7
    # any request-schema record puts everything into upstream's single process (RT2+)
    assert process_names(doc) == [(1, "Dynamo request trace")]
    assert thread_names(doc) == ["wf-m:main", "run-m:main", "run-n:main", "traj-m", "sess-m", "request-only",
                                 "sess-m tools"]
    reqs = requests_by_id(doc)
    assert reqs["m-w"]["args"]["workflow_id"] == "wf-m"
    assert reqs["m-st-agent"]["args"]["session_type_id"] == "pi_coding_agent"
    assert reqs["m-t"]["args"]["trajectory_id"] == "traj-m"
    assert "session_id" not in reqs["m-none"]["args"]


def test_file_order_does_not_matter(convert_doc):
    """Records are pooled and sorted by time (§4.5), so the order of files is irrelevant."""
    forward, _ = convert_doc(json_lines("t.jsonl") + json_lines("s.jsonl"))
    backward, _ = convert_doc(json_lines("s.jsonl") + json_lines("t.jsonl"))
    assert forward == backward


def test_files_through_the_reader_match_records_through_the_api(tmp_path, convert_doc):
    names = ["w.jsonl", "st_request.jsonl", "t.jsonl", "s.jsonl", "none.jsonl", "bare.jsonl", "mixed.jsonl"]
    out = tmp_path / "out.json"
    result = convert_files([fixture(n) for n in names], out, ConvertOptions(embed_summary=False))
    with open(out, encoding="utf-8") as fh:
        from_files = json.load(fh)
    assert validate_chrome(from_files) == []
    from_api, converted = convert_doc([rec for n in names for rec in json_lines(n)])
    assert from_files == from_api
    assert result.draw.converted == converted


# ==================================================================================================
# Large integers (trace-format.md §6.2)
# ==================================================================================================
def test_u64_worker_ids_and_replay_hashes_survive_exactly(convert_doc):
    records, _ = read_files([fixture("s.jsonl")])
    first = records.requests[0]
    assert dict(first.worker) == {"prefill_worker_id": U53, "decode_worker_id": U63, "decode_dp_rank": 0}
    assert first.replay_hashes == array("Q", [4611686018427387904, U53, U64_MAX])
    assert (first.replay_block_size, first.replay_input_length) == (64, 150)

    doc, _ = convert_doc(json_lines("s.jsonl"))
    args = requests_by_id(doc)["s-req-1"]["args"]
    # upstream writes them as exact JSON integers (§14.3); Fix.BIG_INTS turns them into strings
    assert args["worker.prefill_worker_id"] == U53
    assert type(args["worker.prefill_worker_id"]) is int
    assert args["worker.decode_worker_id"] == U63


def test_u64_ids_are_exact_in_the_written_file(tmp_path):
    out = tmp_path / "out.json"
    convert_files([fixture("s.jsonl")], out, ConvertOptions(embed_summary=False))
    text = out.read_text(encoding="utf-8")
    assert f'"worker.decode_worker_id":{U63}' in text
    assert f'"worker.prefill_worker_id":{U53}' in text


def test_big_ints_fix_writes_strings(convert_doc):
    doc, _ = convert_doc(json_lines("s.jsonl"), fixes=[Fix.BIG_INTS])
    args = requests_by_id(doc)["s-req-1"]["args"]
    assert args["worker.prefill_worker_id"] == str(U53)
    assert args["worker.decode_worker_id"] == str(U63)
    assert args["worker.decode_dp_rank"] == 0


def test_an_integer_above_u64_does_not_crash(convert_doc):
    # fields.jsonl puts the 2^65 worker id on a line with a NaN literal, so orjson refuses the line and
    # the stdlib parser keeps the integer exact (the clean-line case is the test below).
    records, report = read_files([fixture("fields.jsonl")])
    assert dict(records.requests[0].worker) == {"decode_worker_id": ABOVE_U64}
    doc, converted = convert_doc(json_lines("fields.jsonl"))
    assert converted == 2
    assert requests_by_id(doc)["f-req-1"]["args"]["worker.decode_worker_id"] == str(ABOVE_U64)


def test_an_integer_above_u64_on_a_clean_line_is_written_as_a_string(tmp_path):
    line = {"timestamp": 0, "event": {
        "schema": "dynamo.request.trace.v1", "event_type": "request_end", "event_time_unix_ms": 1050,
        "agent_context": {"session_id": "s"},
        "request": {"request_id": "r", "request_received_ms": 1000, "total_time_ms": 50,
                    "worker": {"decode_worker_id": ABOVE_U64}}}}
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(line) + "\n", encoding="utf-8")
    out = tmp_path / "out.json"
    result = convert_files([str(src)], out, ConvertOptions(embed_summary=False))  # must not crash
    assert result.draw.converted == 1
    (request,) = of_cat(json.loads(out.read_text(encoding="utf-8")), "dynamo.llm")
    assert request["args"]["worker.decode_worker_id"] == str(ABOVE_U64)


def test_a_replay_hash_above_u64_is_dropped():
    line = {"event": {"schema": "dynamo.request.trace.v1", "event_type": "request_end", "event_time_unix_ms": 1050,
                      "request": {"request_id": "r", "request_received_ms": 1000, "total_time_ms": 50,
                                  "replay": {"input_sequence_hashes": [1, ABOVE_U64]}}}}
    records, report = records_from_objects([line])
    assert records.requests[0].replay_hashes is None
    assert records.requests[0].replay_input_length is None
    assert dict(report.field_issues) == {}  # replay is passed through undecoded: not the line's damage


def test_an_integer_above_u64_only_stringifies_itself(convert_doc):
    """The >2^64 value must not drag valid u64 ids of other events in the same batch into strings."""
    doc, _ = convert_doc(json_lines("s.jsonl") + json_lines("fields.jsonl"))
    reqs = requests_by_id(doc)
    assert reqs["f-req-1"]["args"]["worker.decode_worker_id"] == str(ABOVE_U64)
    assert reqs["s-req-1"]["args"]["worker.decode_worker_id"] == U63


# ==================================================================================================
# Unusable fields: dropped, counted, fatal in strict mode (trace-format.md §4)
# ==================================================================================================
def test_null_numeric_string_and_non_finite_fields_are_dropped_and_counted(convert_doc):
    records, report = read_files([fixture("fields.jsonl")])
    assert dict(report.field_issues) == {"field_null": 1, "field_not_a_number": 2, "field_non_finite": 2}
    assert report.balanced()
    assert dict(report.accepted) == {"request_end": 1, "tool_end": 1}
    request, tool = records.requests[0], records.tools[0]
    assert (request.total_ms, request.ttft_ms, request.prefill_ms) == (None, None, None)
    assert (tool.duration_ms, tool.output_bytes) == (None, None)
    kinds = sorted((p.kind, p.line) for p in report.examples)
    assert kinds == [("field_non_finite", 1), ("field_non_finite", 2), ("field_not_a_number", 1),
                     ("field_not_a_number", 2), ("field_null", 1)]

    doc, _ = convert_doc(json_lines("fields.jsonl"))
    req = requests_by_id(doc)["f-req-1"]
    assert (req["ts"], req["dur"]) == ((T0 + 7000) * 1000, 50_000)  # duration from event_time - start
    for dropped in ("total_time_ms", "ttft_ms", "prefill_time_ms"):
        assert dropped not in req["args"]
    assert of_cat(doc, "dynamo.llm.stage") == []
    tool_slice = of_cat(doc, "dynamo.agent.tool")[0]
    assert (tool_slice["ts"], tool_slice["dur"]) == ((T0 + 7100) * 1000, 1_000)  # nothing usable: synthetic
    assert "duration_ms" not in tool_slice["args"] and "output_bytes" not in tool_slice["args"]


def test_strict_mode_names_file_and_line():
    with pytest.raises(StrictModeError) as info:
        read_files([fixture("fields.jsonl")], strict=True)
    err = info.value
    assert (err.path, err.line) == (fixture("fields.jsonl"), 1)
    assert str(err).startswith(f"{fixture('fields.jsonl')}:1: ")
    assert "field_" in str(err)


def test_strict_mode_on_a_skipped_line_names_file_and_line():
    with pytest.raises(StrictModeError) as info:
        read_files([fixture("mixed.jsonl")], strict=True)
    assert (info.value.path, info.value.line) == (fixture("mixed.jsonl"), 6)
    assert "unknown_schema" in str(info.value)


@pytest.mark.parametrize("name", ["w.jsonl", "st_agent.jsonl", "st_request.jsonl", "t.jsonl", "s.jsonl",
                                  "none.jsonl"])
def test_clean_era_files_pass_strict_mode(name):
    records, report = read_files([fixture(name)], strict=True)
    assert report.problem_count == 0
    assert records.requests
