"""`agent-trace compare` end to end: the bundled real trace against itself and against a copy whose
LLM requests were made slower, the report files, exit codes 0/1/2 and option errors."""

from __future__ import annotations

import importlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent_trace.cli.compare_cmd import compare_command

ROOT = Path(__file__).resolve().parent.parent
SMALL_DIR = ROOT / "fixtures" / "real" / "small"
SMALL = SMALL_DIR / "dynamo-request-trace.jsonl"
THRESHOLDS = ROOT / "fixtures" / "compare" / "thresholds.toml"

needs_analysis = pytest.mark.skipif(
    getattr(importlib.import_module("agent_trace.analysis"), "load", None) is None,
    reason="agent_trace.analysis.load is not available yet",
)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(compare_command, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def slowed_copy(dest: Path, factor: float) -> Path:
    """The small trace with every request's TTFT and total time multiplied by `factor`.

    A request_end row is written when the request ends, so its event time moves by the added
    duration; everything else (tools, payloads) is copied unchanged.
    """
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for line in SMALL.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            out.append(line)
            continue
        row = json.loads(line)  # the standard library keeps the u64 ids exact
        event = row.get("event", row)
        req = event.get("request") if event.get("event_type") == "request_end" else None
        if isinstance(req, dict) and isinstance(req.get("total_time_ms"), (int, float)):
            added = req["total_time_ms"] * (factor - 1)
            req["total_time_ms"] *= factor
            if isinstance(req.get("ttft_ms"), (int, float)):
                req["ttft_ms"] *= factor
            if isinstance(event.get("event_time_unix_ms"), int):
                event["event_time_unix_ms"] += round(added)
        out.append(json.dumps(row, separators=(",", ":")))
    path = dest / SMALL.name
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return dest


@needs_analysis
def test_real_trace_against_itself_passes(tmp_path: Path) -> None:
    md, js, xml = tmp_path / "r.md", tmp_path / "r.json", tmp_path / "r.xml"
    code, out, err = run(
        str(SMALL_DIR), str(SMALL), "--markdown", str(md), "--json", str(js), "--junit", str(xml), "--format", "none"
    )
    assert code == 0, err
    assert out == ""
    assert "PASS" in err
    doc = json.loads(js.read_text())
    statuses = {r["status"] for r in doc["rows"]}
    assert statuses <= {"unchanged", "insufficient_data"} and "unchanged" in statuses
    assert {r["metric"] for r in doc["rows"]} == {"ttft_ms", "itl_ms", "total_ms", "queue_ms", "session_wall_ms", "tool_ms"}
    assert doc["baseline"]["detail"].startswith("60 requests")
    assert md.read_text().startswith("## ✅ agent-trace compare — PASS")
    root = ET.fromstring(xml.read_bytes())
    assert root.get("failures") == "0" and int(root.get("tests")) > 0


@needs_analysis
def test_real_trace_against_a_slower_copy_fails(tmp_path: Path) -> None:
    slow = slowed_copy(tmp_path / "slow", 1.5)
    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    code, out, err = run(str(SMALL_DIR), str(slow), "--json", str(js), "--junit", str(xml), "--format", "markdown")
    assert code == 1, err
    assert out.startswith("## ❌ agent-trace compare — FAIL")
    rows = {(r["metric"], r["statistic"], r["group"]): r for r in json.loads(js.read_text())["rows"]}
    for metric in ("ttft_ms", "total_ms"):
        row = rows[(metric, "p50", "model=tiny-agent")]
        assert row["status"] == "regressed", row
        assert row["delta_pct"] == pytest.approx(50.0, abs=1e-6)
    # What the copy did not touch did not move.
    assert rows[("itl_ms", "p50", "model=tiny-agent")]["status"] == "unchanged"
    assert rows[("tool_ms", "p50", "tool_class=read_file")]["status"] == "unchanged"
    failed = [c.get("classname") for c in ET.fromstring(xml.read_bytes()).iter("testcase") if c.find("failure") is not None]
    assert failed == ["agent_trace.compare.ttft_ms", "agent_trace.compare.total_ms"]


@needs_analysis
def test_glob_inputs_options_and_config(tmp_path: Path) -> None:
    code, out, _ = run(
        str(SMALL_DIR / "*.jsonl"), str(SMALL), "--metric", "ttft_ms", "--statistic", "p50,mean",
        "--threshold", "10%", "--min-delta-ms", "2", "--alpha", "0.05", "--config", str(THRESHOLDS), "--format", "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["settings"]["metrics"] == ["ttft_ms"] and doc["settings"]["statistics"] == ["p50", "mean"]
    # The command line beats the file's top level; the file's rules stay.
    assert (doc["settings"]["threshold_pct"], doc["settings"]["min_delta_ms"], doc["settings"]["alpha"]) == (10.0, 2.0, 0.05)
    assert len(doc["settings"]["rules"]) == 2
    assert len(doc["baseline"]["files"]) == 1


@needs_analysis
def test_fail_on_insufficient_data(tmp_path: Path) -> None:
    code, _, err = run(str(SMALL), str(SMALL), "--fail-on", "insufficient_data", "--format", "none")
    assert code == 1 and "FAIL" in err


@needs_analysis
def test_table_format_prints_the_report() -> None:
    code, out, _ = run(str(SMALL), str(SMALL), "--metric", "ttft_ms")
    assert code == 0
    assert "agent-trace compare — PASS: no regressions" in out and "Settings" in out


@needs_analysis
def test_benchmark_json_output(tmp_path: Path) -> None:
    bench = tmp_path / "bench.json"
    code, _, _ = run(str(SMALL), str(SMALL), "--benchmark-json", str(bench), "--format", "none", "-q")
    assert code == 0
    entries = json.loads(bench.read_text())
    assert entries and {"name", "unit", "value"} <= set(entries[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "lots"], "--threshold must be a percentage"),
        (["--alpha", "0"], "alpha must be between 0 and 1"),
        (["--metric", "latency"], "Invalid value for '--metric'"),
        (["--statistic", "median"], "unknown statistic 'median'"),
        (["--bootstrap", "50"], "bootstrap resamples cannot resolve"),
        (["--min-samples", "1"], "min_samples must be at least 2"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    code, _, err = run(str(SMALL), str(SMALL), *args)
    assert code == 2
    assert message in err


def test_missing_input_exits_2(tmp_path: Path) -> None:
    code, _, err = run(str(SMALL), str(tmp_path / "nope.jsonl"))
    assert code == 2 and "input path does not exist" in err


@needs_analysis
def test_input_without_records_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    code, _, err = run(str(SMALL), str(empty))
    assert code == 2 and "candidate: no requests, tool calls or sessions" in err


def test_bad_config_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('treshold = "5%"\n')
    code, _, err = run(str(SMALL), str(SMALL), "--config", str(cfg))
    assert code == 2 and "unknown key(s) treshold" in err


def test_compare_is_registered_on_the_main_cli() -> None:
    from agent_trace.cli.main import cli

    result = CliRunner().invoke(cli, ["compare", "--help"])
    assert result.exit_code == 0 and "--min-delta-ms" in result.output
