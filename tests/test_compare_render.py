"""Renderers over one fixed comparison (fixtures/compare/*.csv): golden markdown, JUnit, JSON and
terminal table, the JUnit document checked against the common schema, and the dashboard JSON.

Goldens change only with `pytest --update-goldens`; review the diff before committing it.
"""

from __future__ import annotations

import difflib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from rich.console import Console

from agent_trace.compare import (
    SAMPLES_SCHEMA,
    Report,
    Rule,
    Settings,
    Side,
    Status,
    build_report,
    render_benchmark_json,
    render_json,
    render_junit,
    render_markdown,
    render_table,
    samples_from_arrays,
)

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
FIXTURES = ROOT / "fixtures" / "compare"


def check_golden(name: str, actual: str, update: bool) -> None:
    golden = GOLDEN / name
    if update:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    assert golden.is_file(), f"{golden} is missing: run `pytest --update-goldens` and review the new file"
    expected = golden.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(expected.splitlines(), actual.splitlines(), fromfile=name, tofile="actual", lineterm="", n=1)
        pytest.fail(f"output differs from {name} (run `pytest --update-goldens` if intended):\n" + "\n".join(list(diff)[:60]))


@pytest.fixture(scope="module")
def report() -> Report:
    base = pl.read_csv(FIXTURES / "baseline.csv", schema=SAMPLES_SCHEMA)
    cand = pl.read_csv(FIXTURES / "candidate.csv", schema=SAMPLES_SCHEMA)
    settings = Settings(rules=(Rule(metric="tool_ms", group="tool_class=bash", threshold_pct=20.0, min_delta_ms=100.0),))
    return build_report(
        base,
        cand,
        settings,
        baseline_side=Side("runs/main/", ("runs/main/trace.000000.jsonl.gz",), "1,920 requests, 155 tool calls, 18 sessions"),
        candidate_side=Side("runs/pr-123/", ("runs/pr-123/trace.000000.jsonl.gz",), "1,920 requests, 160 tool calls, 18 sessions"),
    )


def test_fixture_exercises_every_status(report: Report) -> None:
    assert all(n > 0 for n in report.summary.counts.values()), report.summary.counts
    assert report.summary.failed


def test_markdown_golden(report: Report, update_goldens: bool) -> None:
    check_golden("compare_report.md", render_markdown(report), update_goldens)


def test_markdown_puts_regressions_first_and_collapses_the_rest(report: Report) -> None:
    md = render_markdown(report)
    assert md.startswith("## ❌ agent-trace compare — FAIL: 3 regressed\n")
    assert md.index("### Regressions (3)") < md.index("### Improvements (3)") < md.index("<details>")
    assert "<summary>Settings</summary>" in md
    assert "| ttft_ms | p50 | model=llama-70b | 98.7 ms | 129 ms | +30.5 ms | +30.9% | <0.001 |" in md


def test_junit_golden(report: Report, update_goldens: bool) -> None:
    check_golden("compare_report.xml", render_junit(report), update_goldens)


def test_json_golden(report: Report, update_goldens: bool) -> None:
    check_golden("compare_report.json", render_json(report), update_goldens)


def test_table_golden(report: Report, update_goldens: bool) -> None:
    console = Console(width=150, file=io.StringIO(), color_system=None, force_terminal=False, legacy_windows=False)
    console.print(render_table(report))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    check_golden("compare_table.txt", "\n".join(line.rstrip() for line in text.splitlines()) + "\n", update_goldens)


# The common JUnit schema (Jenkins/Ant junit-10.xsd), as rules on the parsed tree.
_SUITE_ATTRS = {"name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname", "id", "package", "disabled", "file", "log", "url", "version", "group", "assertions", "system-out", "system-err"}
_CASE_ATTRS = {"name", "classname", "time", "status", "assertions", "file", "line", "group"}
_CASE_CHILDREN = {"skipped", "error", "failure", "system-out", "system-err"}


def check_junit_schema(root: ET.Element) -> None:
    assert root.tag == "testsuites"
    for suite in root:
        assert suite.tag == "testsuite"
        assert {"name", "tests"} <= set(suite.attrib) and set(suite.attrib) <= _SUITE_ATTRS
        children = [c.tag for c in suite]
        assert children.count("properties") <= 1 and (children[0] == "properties" or "properties" not in children)
        for prop in suite.iter("property"):
            assert set(prop.attrib) == {"name", "value"}
        cases = suite.findall("testcase")
        for case in cases:
            assert {"name", "classname"} <= set(case.attrib) and set(case.attrib) <= _CASE_ATTRS
            tags = [c.tag for c in case]
            assert set(tags) <= _CASE_CHILDREN
            outcome = [t for t in tags if t in ("skipped", "error", "failure")]
            assert len(outcome) <= 1 and tags[: len(outcome)] == outcome  # the outcome comes first
            for f in case.findall("failure"):
                assert "message" in f.attrib and "type" in f.attrib
        assert int(suite.get("tests", -1)) == len(cases)
        assert int(suite.get("failures", -1)) == sum(1 for c in cases if c.find("failure") is not None)
        assert int(suite.get("errors", -1)) == sum(1 for c in cases if c.find("error") is not None)
        assert int(suite.get("skipped", -1)) == sum(1 for c in cases if c.find("skipped") is not None)
        float(suite.get("time", "x"))
    for key in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(key, -1)) == sum(int(s.get(key, 0)) for s in root)


def test_junit_validates_and_has_one_case_per_metric_and_group(report: Report) -> None:
    root = ET.fromstring(render_junit(report).encode())
    check_junit_schema(root)
    cases = root.findall("./testsuite/testcase")
    pairs = report.results.select("metric", "group").unique(maintain_order=True).rows()
    assert [(c.get("classname"), c.get("name")) for c in cases] == [(f"agent_trace.compare.{m}", g) for m, g in pairs]
    failed = [(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None]
    assert failed == [("agent_trace.compare.ttft_ms", "model=llama-70b")]
    skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
    assert skipped == ["role=subagent"]
    assert root.get("tests") == str(len(pairs)) and root.get("failures") == "1" and root.get("skipped") == "1"


def test_junit_fails_cases_for_every_fail_on_status() -> None:
    rng = np.random.default_rng(0)
    base = samples_from_arrays({("tool_ms", "tool_class=a"): rng.lognormal(3, 0.3, 5), ("tool_ms", "tool_class=b"): [1.0] * 20})
    cand = samples_from_arrays({("tool_ms", "tool_class=a"): rng.lognormal(3, 0.3, 5)})
    settings = Settings(metrics=("tool_ms",), fail_on=frozenset({Status.INSUFFICIENT_DATA, Status.REMOVED}))
    report = build_report(base, cand, settings)
    root = ET.fromstring(render_junit(report).encode())
    check_junit_schema(root)
    assert [c.find("failure").get("type") for c in root.iter("testcase")] == ["insufficient_data", "removed"]
    assert report.summary.exit_code == 1


def test_json_report_has_every_row_and_the_settings(report: Report) -> None:
    doc = json.loads(render_json(report))
    assert doc["verdict"] == "fail" and doc["exit_code"] == 1
    assert len(doc["rows"]) == report.results.height
    assert doc["rows"][0].keys() == report.results.schema.keys()
    assert doc["settings"]["threshold_pct"] == 5.0 and doc["settings"]["rules"][0]["group"] == "tool_class=bash"
    assert doc["counts"] == report.summary.counts


def test_benchmark_json_is_custom_smaller_is_better(report: Report) -> None:
    entries = json.loads(render_benchmark_json(report))
    assert entries and all(set(e) == {"name", "unit", "value", "extra"} for e in entries)
    assert all(isinstance(e["value"], float) and e["unit"] == "ms" for e in entries)
    assert len({e["name"] for e in entries}) == len(entries)
    assert entries[0]["name"] == "ttft_ms p50 [model=llama-70b]"
    assert len(entries) == report.results.filter(pl.col("candidate_ms").is_not_null()).height


def test_markdown_escapes_table_cells() -> None:
    rng = np.random.default_rng(1)
    data = {("tool_ms", "tool_class=a|b"): rng.lognormal(3, 0.3, 30)}
    report = build_report(samples_from_arrays(data), samples_from_arrays(data), Settings(metrics=("tool_ms",)))
    md = render_markdown(report)
    assert "tool_class=a\\|b" in md and "tool_class=a|b" not in md.replace("a\\|b", "")


def test_passing_report_says_so() -> None:
    rng = np.random.default_rng(2)
    data = {("ttft_ms", "model=m"): rng.lognormal(3, 0.3, 100)}
    report = build_report(samples_from_arrays(data), samples_from_arrays(data), Settings(metrics=("ttft_ms",)))
    md = render_markdown(report)
    assert md.startswith("## ✅ agent-trace compare — PASS: no regressions")
    assert "No regressions." in md and "### Improvements" not in md
