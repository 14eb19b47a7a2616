"""The command lines: the drop-in `convert_to_perfetto.py` and `agent-trace` (upstream-converter.md §2-§3).

Most tests drive the click commands in-process with CliRunner; one runs the installed console
script as a real subprocess. Everything is written under tmp_path.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent_trace.cli.dropin import command as dropin
from agent_trace.cli.main import cli
from agent_trace.ingest.sources import default_output_path, expand_inputs
from agent_trace.validate import validate_chrome

ROOT = Path(__file__).resolve().parent.parent
RS = "dynamo.request.trace.v1"
TABLE_TITLE = "agent_trace: what happened to every input line"


def request_line(request_id: str, start: int, total: int, session: str = "s1", **extra: Any) -> dict[str, Any]:
    return {"timestamp": 0, "event": {
        "schema": RS, "event_type": "request_end", "event_time_unix_ms": start + total, "event_source": "dynamo",
        "agent_context": {"session_id": session},
        "request": {"request_id": request_id, "model": "test-model", "request_received_ms": start,
                    "total_time_ms": total, **extra}}}


# Case 1 of §15: one request with stages, a TTFT and a tool call (converted = 2 under RT6).
CASE1 = request_line(
    "req-1", 1000, 50, x_request_id="caller-1", prefill_wait_time_ms=5, prefill_time_ms=7, ttft_ms=12,
    worker={"decode_worker_id": 2},
    finish_reason_metadata={"finish_reason": "tool_calls",
                            "tool_calls": [{"choice_index": 0, "tool_call_index": 0, "id": "call-1",
                                            "name": "web_search"}]},
)


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_gz(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    return path


def run(args: list[str], entry: Any = dropin) -> Any:
    return CliRunner().invoke(entry, args, catch_exceptions=False)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def thread_names(doc: dict[str, Any]) -> list[str]:
    return [e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "thread_name"]


def of_cat(doc: dict[str, Any], cat: str) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if e.get("cat") == cat]


def squashed(text: str) -> str:
    """Text with all whitespace removed: rich wraps the report table to the terminal width."""
    return "".join(text.split())


def last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "trace.jsonl", [CASE1])


# ==================================================================================================
# Flags (§2.1)
# ==================================================================================================
def test_every_upstream_flag_is_accepted(tmp_path, trace):
    out = tmp_path / "out.json"
    result = run([str(trace), "--include-markers", "--separate-stage-tracks", "--include-stages", "--pretty",
                  "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert last_line(result.stderr) == f"wrote 2 trace events from 1 input file(s) to {out}"
    doc = load(out)
    assert validate_chrome(doc) == []
    assert thread_names(doc) == ["s1", "s1 stages", "s1 tools"]
    stage_tids = {e["tid"] for e in of_cat(doc, "dynamo.llm.stage")}
    assert len(stage_tids) == 1 and stage_tids != {of_cat(doc, "dynamo.llm")[0]["tid"]}
    (marker,) = of_cat(doc, "dynamo.llm.marker")
    assert marker["ts"] == 1_012_000 and marker["tid"] in stage_tids


def test_long_output_flag_and_no_stages(tmp_path, trace):
    out = tmp_path / "out.json"
    result = run([str(trace), "--no-stages", "--output", str(out)])
    assert result.exit_code == 0, result.stderr
    doc = load(out)
    assert of_cat(doc, "dynamo.llm.stage") == []
    assert of_cat(doc, "dynamo.llm.marker") == []  # markers are opt-in
    (request,) = of_cat(doc, "dynamo.llm")
    assert (request["ts"], request["dur"]) == (1_000_000, 50_000)


def test_stages_are_on_by_default(tmp_path, trace):
    out = tmp_path / "out.json"
    assert run([str(trace), "-o", str(out)]).exit_code == 0
    assert {e["name"] for e in of_cat(load(out), "dynamo.llm.stage")} == {"prefill wait", "prefill", "decode"}


def test_unknown_flag_is_a_usage_error(trace):
    result = run([str(trace), "-o", "x.json", "--bogus"])
    assert result.exit_code == 2
    assert "Usage:" in result.stderr
    assert "--bogus" in result.stderr


def test_no_inputs_is_a_usage_error():
    result = run(["-o", "x.json"])
    assert result.exit_code == 2
    assert "Usage:" in result.stderr


def test_fix_option(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [request_line("r1", 1000, 100), request_line("r2", 1050, 100)])
    out = tmp_path / "out.json"
    assert run([str(src), "-o", str(out), "--fix", "rebase-time,sort-index"]).exit_code == 0
    doc = load(out)
    assert min(e["ts"] for e in doc["traceEvents"] if e["ph"] != "M") == 0
    assert any(e["name"] == "thread_sort_index" for e in doc["traceEvents"])
    assert doc["metadata"]["agent_trace"]["options"]["fixes"] == ["rebase-time", "sort-index"]
    bad = run([str(src), "-o", str(out), "--fix", "no-such-fix"])
    assert bad.exit_code == 2
    assert "no-such-fix" in bad.stderr


# ==================================================================================================
# Exit status and messages (§2.2)
# ==================================================================================================
def test_missing_input_path(tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = run([str(missing), "-o", str(tmp_path / "out.json")])
    assert result.exit_code == 2
    assert result.stderr == f"error: input path does not exist: {missing}\n"
    assert not (tmp_path / "out.json").exists()


def test_a_glob_matching_nothing_is_kept_as_a_literal_path(tmp_path):
    pattern = str(tmp_path / "nothing-*.jsonl")
    result = run([pattern, "-o", str(tmp_path / "out.json")])
    assert result.exit_code == 2
    assert result.stderr == f"error: input path does not exist: {pattern}\n"


def test_the_first_missing_path_in_sorted_order_is_named(tmp_path, trace):
    result = run([str(tmp_path / "zz.jsonl"), str(trace), str(tmp_path / "aa.jsonl"), "-o", str(tmp_path / "o.json")])
    assert result.exit_code == 2
    assert result.stderr == f"error: input path does not exist: {tmp_path / 'aa.jsonl'}\n"


def test_empty_directory(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run([str(empty), "-o", str(tmp_path / "out.json")])
    assert result.exit_code == 2
    assert result.stderr == "error: no input files matched\n"


def test_directories_are_not_searched_recursively(tmp_path):
    write_jsonl(tmp_path / "top" / "nested" / "trace.jsonl", [CASE1])
    (tmp_path / "top" / "notes.txt").write_text("not a trace\n")
    result = run([str(tmp_path / "top"), "-o", str(tmp_path / "out.json")])
    assert result.exit_code == 2
    assert result.stderr == "error: no input files matched\n"


def test_success_line_counts_converted_events_and_files(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [request_line("r1", 1000, 50)])
    b = write_jsonl(tmp_path / "b.jsonl", [request_line("r2", 2000, 50), request_line("r3", 3000, 50)])
    out = tmp_path / "out.json"
    result = run([str(a), str(b), "-o", str(out), "-q"])
    assert result.exit_code == 0
    assert result.stderr == f"wrote 3 trace events from 2 input file(s) to {out}\n"
    assert result.stdout == ""


def test_success_line_prints_the_output_as_a_path(tmp_path, trace, monkeypatch):
    """Upstream prints `to {Path(args.output)}`, so './out.json' is reported as 'out.json'."""
    monkeypatch.chdir(tmp_path)
    result = run([str(trace), "-o", "./out.json", "-q"])
    assert result.exit_code == 0
    assert result.stderr == "wrote 2 trace events from 1 input file(s) to out.json\n"


def test_output_parent_directories_are_created(tmp_path, trace):
    out = tmp_path / "a" / "b" / "c" / "out.json"
    result = run([str(trace), "-o", str(out), "-q"])
    assert result.exit_code == 0
    assert validate_chrome(load(out)) == []


# ==================================================================================================
# Output location and format (§3.6, §14.3)
# ==================================================================================================
def test_default_output_is_next_to_the_first_input(tmp_path, trace):
    result = run([str(trace), "-q"])
    assert result.exit_code == 0, result.stderr
    expected = tmp_path / "trace.perfetto.json"
    assert expected.exists()
    assert result.stderr == f"wrote 2 trace events from 1 input file(s) to {expected}\n"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("trace.jsonl", "trace.perfetto.json"),
        ("dynamo-request-trace.000000.jsonl.gz", "dynamo-request-trace.000000.perfetto.json"),
        ("capture.json", "capture.perfetto.json"),
        ("noext", "noext.perfetto.json"),
    ],
)
def test_default_output_path_names(tmp_path, name, expected):
    assert default_output_path(str(tmp_path / name)) == tmp_path / expected


def test_default_output_is_compact_with_a_trailing_newline(tmp_path, trace):
    out = tmp_path / "out.json"
    assert run([str(trace), "-o", str(out), "-q"]).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.count("\n") == 1
    assert text == json.dumps(json.loads(text), separators=(",", ":")) + "\n"
    assert text.startswith('{"displayTimeUnit":"ms","traceEvents":[')


def test_pretty_is_indented_with_sorted_keys(tmp_path, trace):
    out = tmp_path / "out.json"
    assert run([str(trace), "-o", str(out), "--pretty", "-q"]).exit_code == 0
    text = out.read_text(encoding="utf-8")
    # byte for byte what upstream's json.dump(trace, f, indent=2, sort_keys=True) + "\n" writes
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert text.startswith('{\n  "displayTimeUnit": "ms",\n  "metadata": {')


def test_pretty_and_compact_hold_the_same_document(tmp_path, trace):
    compact, pretty = tmp_path / "c.json", tmp_path / "p.json"
    assert run([str(trace), "-o", str(compact), "-q", "--include-markers"]).exit_code == 0
    assert run([str(trace), "-o", str(pretty), "-q", "--include-markers", "--pretty"]).exit_code == 0
    assert load(compact) == load(pretty)


def test_no_summary_gives_upstreams_top_level_keys(tmp_path, trace):
    out = tmp_path / "out.json"
    assert run([str(trace), "-o", str(out), "-q", "--no-summary"]).exit_code == 0
    assert list(load(out)) == ["displayTimeUnit", "traceEvents"]


def test_summary_is_embedded_by_default(tmp_path, trace):
    out = tmp_path / "out.json"
    assert run([str(trace), "-o", str(out), "-q"]).exit_code == 0
    summary = load(out)["metadata"]["agent_trace"]
    assert summary["output"]["converted"] == 2
    assert summary["input"]["accepted"] == {"request_end": 1}
    assert summary["input"]["files"] == [{"path": str(trace), "lines": 1, "gzip": False}]


def test_output_dash_writes_to_stdout(tmp_path, trace, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run([str(trace), "-o", "-", "-q", "--no-summary"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert validate_chrome(doc) == []
    assert [e["name"] for e in of_cat(doc, "dynamo.llm")] == ["LLM request: test-model"]
    assert not (tmp_path / "-").exists()
    assert result.stderr == "wrote 2 trace events from 1 input file(s) to stdout\n"


def test_stdin_input(tmp_path):
    out = tmp_path / "out.json"
    text = json.dumps(CASE1) + "\n"
    result = CliRunner().invoke(dropin, ["-", "-o", str(out), "-q"], input=text.encode())
    assert result.exit_code == 0, result.stderr
    assert len(of_cat(load(out), "dynamo.llm")) == 1
    needs_output = CliRunner().invoke(dropin, ["-", "-q"], input=text.encode())
    assert needs_output.exit_code == 2
    assert "needs -o" in needs_output.stderr


# ==================================================================================================
# Damaged input: skipped and counted, or fatal with --strict
# ==================================================================================================
@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    path = tmp_path / "damaged.jsonl"
    good1, good2 = json.dumps(request_line("r1", 1000, 50)), json.dumps(request_line("r2", 2000, 50))
    path.write_text(f'{good1}\n{{"timestamp": 1, "event": {{"schema": \n{good2}\n{good1[:40]}', encoding="utf-8")
    return path


def test_damaged_lines_are_skipped_and_counted(tmp_path, damaged):
    out = tmp_path / "out.json"
    result = run([str(damaged), "-o", str(out)])
    assert result.exit_code == 0
    assert f"wrote 2 trace events from 1 input file(s) to {out}" in result.stderr
    assert "invalid_json" in result.stderr and "truncated_tail" in result.stderr
    assert f"{damaged}:2:invalid_json" in squashed(result.stderr)
    summary = load(out)["metadata"]["agent_trace"]["input"]
    assert summary["skipped"] == {"invalid_json": 1, "truncated_tail": 1}
    assert summary["lines"] == 4


def test_strict_fails_on_the_first_damaged_line(tmp_path, damaged):
    out = tmp_path / "out.json"
    result = run([str(damaged), "-o", str(out), "--strict"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {damaged}:2: invalid_json")
    assert "wrote" not in result.stderr


def test_strict_names_a_truncated_tail(tmp_path):
    good = json.dumps(request_line("r1", 1000, 50))
    path = tmp_path / "tail.jsonl"
    path.write_text(f"{good}\n{good}\n{good[:30]}", encoding="utf-8")
    result = run([str(path), "-o", str(tmp_path / "out.json"), "--strict"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:3: truncated_tail")


def test_strict_passes_a_clean_file(tmp_path, trace):
    assert run([str(trace), "-o", str(tmp_path / "out.json"), "--strict", "-q"]).exit_code == 0


def test_truncated_gzip_segment_keeps_complete_lines(tmp_path):
    seg = tmp_path / "seg.000000.jsonl.gz"
    write_gz(seg, [request_line(f"r{i}", 1000 + 100 * i, 50) for i in range(50)])
    seg.write_bytes(seg.read_bytes()[:-12])  # cut the member's trailer
    out = tmp_path / "out.json"
    result = run([str(seg), "-o", str(out), "-q"])
    assert result.exit_code == 0
    summary = load(out)["metadata"]["agent_trace"]
    assert summary["input"]["file_issues"] == {"truncated_gzip_member": 1}
    assert summary["output"]["converted"] == 50
    strict = run([str(seg), "-o", str(out), "--strict", "-q"])
    assert strict.exit_code == 2
    assert f"error: {seg}:" in strict.stderr and "truncated_gzip_member" in strict.stderr


# ==================================================================================================
# Report table and --quiet
# ==================================================================================================
def test_report_table_goes_to_stderr(tmp_path, trace):
    result = run([str(trace), "-o", str(tmp_path / "out.json")])
    assert result.exit_code == 0
    assert squashed(TABLE_TITLE) in squashed(result.stderr)
    assert "request_end" in result.stderr
    assert result.stdout == ""


def test_quiet_prints_no_table(tmp_path, trace):
    out = tmp_path / "out.json"
    result = run([str(trace), "-o", str(out), "--quiet"])
    assert result.exit_code == 0
    assert squashed(TABLE_TITLE) not in squashed(result.stderr)
    assert result.stderr == f"wrote 2 trace events from 1 input file(s) to {out}\n"
    assert result.stdout == ""


# ==================================================================================================
# Input expansion (§3)
# ==================================================================================================
@pytest.fixture
def segments(tmp_path: Path) -> Path:
    """Three gzip segments written out of order, a plain file, and a nested file to ignore."""
    seg_dir = tmp_path / "capture"
    for i in (2, 0, 1):
        write_gz(seg_dir / f"dynamo-request-trace.{i:06d}.jsonl.gz",
                 [request_line(f"seg{i}-{j}", 1000 * (i + 1) + 100 * j, 50) for j in range(2)])
    write_jsonl(seg_dir / "extra.jsonl", [request_line("extra", 9000, 50)])
    write_jsonl(seg_dir / "nested" / "ignored.jsonl", [request_line("ignored", 9500, 50)])
    return seg_dir


def summary_paths(out: Path) -> list[str]:
    return [f["path"] for f in load(out)["metadata"]["agent_trace"]["input"]["files"]]


def test_a_directory_expands_to_its_segments_in_order(tmp_path, segments):
    out = tmp_path / "out.json"
    result = run([str(segments), "-o", str(out), "-q"])
    assert result.exit_code == 0
    assert result.stderr == f"wrote 7 trace events from 4 input file(s) to {out}\n"
    assert summary_paths(out) == [
        str(segments / "dynamo-request-trace.000000.jsonl.gz"),
        str(segments / "dynamo-request-trace.000001.jsonl.gz"),
        str(segments / "dynamo-request-trace.000002.jsonl.gz"),
        str(segments / "extra.jsonl"),
    ]
    files = load(out)["metadata"]["agent_trace"]["input"]["files"]
    assert [f["gzip"] for f in files] == [True, True, True, False]
    ids = {e["args"]["request_id"] for e in of_cat(load(out), "dynamo.llm")}
    assert "ignored" not in ids and len(ids) == 7


def test_a_glob_expands_in_segment_order(tmp_path, segments):
    out = tmp_path / "out.json"
    result = run([str(segments / "dynamo-request-trace.*.jsonl.gz"), "-o", str(out), "-q"])
    assert result.exit_code == 0
    assert result.stderr == f"wrote 6 trace events from 3 input file(s) to {out}\n"
    assert summary_paths(out) == [str(segments / f"dynamo-request-trace.{i:06d}.jsonl.gz") for i in range(3)]


def test_expansion_removes_duplicates_and_sorts(segments):
    seg1 = str(segments / "dynamo-request-trace.000001.jsonl.gz")
    files = expand_inputs([seg1, str(segments), str(segments / "*.gz")])
    assert files == [
        str(segments / "dynamo-request-trace.000000.jsonl.gz"),
        seg1,
        str(segments / "dynamo-request-trace.000002.jsonl.gz"),
        str(segments / "extra.jsonl"),
    ]


def test_files_are_taken_whatever_their_name(tmp_path):
    odd = write_jsonl(tmp_path / "trace.log", [CASE1])
    out = tmp_path / "out.json"
    result = run([str(odd), "-o", str(out), "-q"])
    assert result.exit_code == 0
    assert result.stderr == f"wrote 2 trace events from 1 input file(s) to {out}\n"


def test_input_order_does_not_change_the_trace(tmp_path, segments):
    segs = sorted(str(p) for p in segments.glob("*.gz"))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run([*segs, "-o", str(a), "-q", "--no-summary"]).exit_code == 0
    assert run([*reversed(segs), "-o", str(b), "-q", "--no-summary"]).exit_code == 0
    assert a.read_bytes() == b.read_bytes()


# ==================================================================================================
# agent-trace: convert and validate
# ==================================================================================================
def test_agent_trace_convert_matches_the_dropin(tmp_path, trace):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run([str(trace), "-o", str(a), "-q", "--include-markers"]).exit_code == 0
    result = run(["convert", str(trace), "-o", str(b), "-q", "--include-markers"], entry=cli)
    assert result.exit_code == 0
    assert result.stderr == f"wrote 2 trace events from 1 input file(s) to {b}\n"
    assert a.read_bytes() == b.read_bytes()


def test_agent_trace_convert_has_the_same_errors(tmp_path):
    result = run(["convert", str(tmp_path / "nope.jsonl")], entry=cli)
    assert result.exit_code == 2
    assert result.stderr == f"error: input path does not exist: {tmp_path / 'nope.jsonl'}\n"


def test_validate_accepts_a_converted_trace(tmp_path, trace):
    out = tmp_path / "out.json"
    assert run([str(trace), "-o", str(out), "-q", "--include-markers"]).exit_code == 0
    result = run(["validate", str(out)], entry=cli)
    assert result.exit_code == 0
    n = len(load(out)["traceEvents"])
    assert result.stdout == f"{out}: ok ({n} events)\n"


def test_validate_rejects_overlapping_slices_on_one_track(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"displayTimeUnit": "ms", "traceEvents": [
        {"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "p"}},
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "row"}},
        {"name": "a", "cat": "dynamo.llm", "ph": "X", "pid": 1, "tid": 1, "ts": 1000, "dur": 100, "args": {}},
        {"name": "b", "cat": "dynamo.llm", "ph": "X", "pid": 1, "tid": 1, "ts": 1050, "dur": 100, "args": {}},
    ]}))
    result = run(["validate", str(bad)], entry=cli)
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{bad}: overlap: ")
    assert "'b' [1050, 1150)" in result.stdout
    assert "ok (" not in result.stdout


def test_validate_rejects_a_file_that_is_not_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = run(["validate", str(bad)], entry=cli)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {bad}: not JSON")


# ==================================================================================================
# The installed console script, as a real process
# ==================================================================================================
def console_script() -> Path:
    for candidate in (ROOT / ".venv" / "bin" / "convert_to_perfetto.py",
                      Path(sys.executable).parent / "convert_to_perfetto.py"):
        if candidate.exists():
            return candidate
    pytest.skip("convert_to_perfetto.py console script is not installed")


def test_installed_console_script(tmp_path, trace):
    out = tmp_path / "nested" / "out.json"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    proc = subprocess.run(
        [str(console_script()), str(trace), "--include-markers", "--separate-stage-tracks", "--include-stages",
         "--pretty", "-o", str(out)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert last_line(proc.stderr) == f"wrote 2 trace events from 1 input file(s) to {out}"
    text = out.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert validate_chrome(doc) == []
    assert thread_names(doc) == ["s1", "s1 stages", "s1 tools"]

    missing = subprocess.run([str(console_script()), str(tmp_path / "nope.jsonl"), "-o", str(out)],
                             capture_output=True, text=True, timeout=120, env=env, check=False)
    assert missing.returncode == 2
    assert missing.stderr == f"error: input path does not exist: {tmp_path / 'nope.jsonl'}\n"


def test_console_scripts_flush_everything_before_their_fast_exit(tmp_path, trace):
    """The entry points end with os._exit (no heap teardown): stdout must still arrive whole."""
    agent_trace = console_script().with_name("agent-trace")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    proc = subprocess.run([str(agent_trace), "convert", str(trace), "-o", "-", "--pretty"],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert validate_chrome(doc) == []
    assert last_line(proc.stderr) == "wrote 2 trace events from 1 input file(s) to stdout"
    version = subprocess.run([str(agent_trace), "--version"], capture_output=True, text=True, timeout=120, check=False)
    assert version.returncode == 0 and version.stdout.startswith("agent-trace, version ")
    usage = subprocess.run([str(agent_trace), "convert", "--no-such-flag"], capture_output=True, text=True,
                           timeout=120, check=False)
    assert usage.returncode == 2 and "No such option" in usage.stderr
