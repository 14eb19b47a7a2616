"""`agent-trace summary` and `agent-trace export` through click's runner."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from agent_trace.analysis import critical_path, load, summary
from agent_trace.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
SMALL = str(ROOT / "fixtures" / "real" / "small")
FIX = ROOT / "fixtures" / "analysis"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_summary_table() -> None:
    res = run("summary", SMALL)
    assert res.exit_code == 0, res.output
    out = res.output
    for title in ("requests", "sessions", "tools: tool_ms"):
        assert title in out
    assert "ttft_ms" in out and "p99" in out and "read_file" in out
    # 59 requests (the cancelled one is left out), median TTFT 27.5 ms.
    line = next(x for x in out.splitlines() if "ttft_ms" in x)
    assert "59" in line and "27.5" in line


def test_summary_by_tool_groups_by_class_and_status() -> None:
    res = run("summary", SMALL, "--by", "tool")
    assert res.exit_code == 0
    assert "bash / error" in res.output and "bash / cancelled" in res.output


def test_summary_json_and_csv_match_the_api(tmp_path: Path) -> None:
    expected = summary(load(SMALL), "model")
    res = run("summary", SMALL, "--by", "model", "--format", "json")
    assert res.exit_code == 0
    assert pl.DataFrame(orjson.loads(res.output), schema=expected.schema).equals(expected)
    out = tmp_path / "s.csv"
    res = run("summary", SMALL, "--by", "model", "--format", "csv", "-o", str(out))
    assert res.exit_code == 0 and res.output == ""
    assert_frame_equal(pl.read_csv(out, schema=expected.schema), expected)


def test_summary_parquet_needs_an_output(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["summary", SMALL, "--format", "parquet"])
    assert res.exit_code == 2
    assert "needs -o" in res.output
    out = tmp_path / "s.parquet"
    assert run("summary", SMALL, "--format", "parquet", "-o", str(out)).exit_code == 0
    assert_frame_equal(pl.read_parquet(out), summary(load(SMALL)))


def test_summary_table_to_a_file_is_plain_text(tmp_path: Path) -> None:
    out = tmp_path / "s.txt"
    assert run("summary", SMALL, "-o", str(out)).exit_code == 0
    text = out.read_text()
    assert "ttft_ms" in text and "\x1b[" not in text


def test_missing_input_is_a_usage_error() -> None:
    res = CliRunner().invoke(cli, ["summary", str(FIX / "nope.jsonl")])
    assert res.exit_code == 2
    assert "does not exist" in res.output


def test_strict_mode_fails_on_damage_and_the_report_is_shown_otherwise() -> None:
    res = CliRunner().invoke(cli, ["summary", str(FIX / "missing_fields.jsonl"), "--strict"])
    assert res.exit_code == 2
    assert "missing_fields.jsonl:4" in res.output
    res = CliRunner().invoke(cli, ["summary", str(FIX / "missing_fields.jsonl")])
    assert res.exit_code == 0
    assert "field_null" in res.output  # the read report, on stderr (mixed in by the runner)


def test_export_writes_parquet_readable_without_agent_trace(tmp_path: Path) -> None:
    res = run("export", SMALL, "-o", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    t = load(SMALL)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "critical_path.parquet", "read_report.json", "requests.parquet", "sessions.parquet",
        "stages.parquet", "tools.parquet",
    ]
    for name in ("requests", "tools", "sessions", "stages"):
        assert_frame_equal(pl.read_parquet(out / f"{name}.parquet"), getattr(t, name))
    assert_frame_equal(pl.read_parquet(out / "critical_path.parquet"), critical_path(t))
    # u64 worker ids above 2^63 survive the round trip.
    ids = pl.read_parquet(out / "requests.parquet", columns=["prefill_worker_id"])["prefill_worker_id"]
    assert ids.dtype == pl.UInt64 and ids.max() == t.requests["prefill_worker_id"].max()
    report = orjson.loads((out / "read_report.json").read_bytes())
    assert report["lines"] == 209
    assert [f["path"] for f in report["files"]] == list(t.files)


def test_export_without_critical_path(tmp_path: Path) -> None:
    res = run("export", SMALL, "-o", str(tmp_path), "--no-critical-path", "-q")
    assert res.exit_code == 0 and res.output == ""
    assert not (tmp_path / "critical_path.parquet").exists()


def test_cli_constants_mirror_the_api() -> None:
    from agent_trace.analysis.summary import BY_CHOICES, STATS
    from agent_trace.cli import analysis_cmds

    assert analysis_cmds.BY_CHOICES == BY_CHOICES
    assert analysis_cmds.STATS == STATS
