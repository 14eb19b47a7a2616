"""`layout.units.batches`: complete sessions leave the stream in batches, nothing is lost, and a
record that comes after its session was written is drawn and counted (hand-built records)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from agent_trace.cli.render import report_table
from agent_trace.ingest.reader import records_from_objects
from agent_trace.layout.units import FlushPolicy, batches
from agent_trace.model import LlmRequest
from agent_trace.report import DrawReport, ReadReport

POLICY = FlushPolicy(reorder_ms=30_000, idle_ms=600_000, sweep_every=1)


def req(session: str, rid: str, at_ms: int, *, final: bool = False, parent: str | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"session_id": session}
    if parent:
        ctx["parent_session_id"] = parent
    if final:
        ctx["session_final"] = True
    return {"event": {"schema": "dynamo.request.trace.v1", "event_type": "request_end",
                      "event_time_unix_ms": at_ms + 10, "agent_context": ctx,
                      "request": {"request_id": rid, "request_received_ms": at_ms, "total_time_ms": 10}}}


def run(rows: list[dict[str, Any]], policy: FlushPolicy = POLICY) -> tuple[list[list[str]], DrawReport]:
    records, _ = records_from_objects(rows)
    recs = sorted([*records.requests, *records.tools], key=lambda r: r.line)
    draw = DrawReport()
    out = [[r.request_id for r in batch if isinstance(r, LlmRequest)] for batch in batches(recs, draw, policy)]
    return out, draw  # type: ignore[return-value]


def test_a_finished_session_leaves_once_the_reorder_window_has_passed() -> None:
    rows = [req("a", "a1", 1_000), req("a", "a2", 2_000, final=True), req("b", "b1", 20_000),
            req("b", "b2", 40_000), req("b", "b3", 70_000)]
    out, draw = run(rows)
    assert out == [["a1", "a2"], ["b1", "b2", "b3"]]
    assert draw.late_records == 0


def test_a_subagent_travels_with_its_root_and_input_order_is_kept() -> None:
    rows = [req("r", "r1", 1_000), req("s", "s1", 1_500, parent="r"), req("x", "x1", 1_600),
            req("r", "r2", 3_000, final=True), req("x", "x2", 90_000, final=True)]
    out, _ = run(rows)
    assert out == [["r1", "s1", "r2"], ["x1", "x2"]]


def test_a_session_without_a_final_flag_leaves_when_idle() -> None:
    rows = [req("a", "a1", 1_000), req("b", "b1", 700_000), req("b", "b2", 700_100)]
    out, _ = run(rows)
    assert out == [["a1"], ["b1", "b2"]]


def test_a_record_after_its_session_was_written_is_kept_and_counted() -> None:
    rows = [req("a", "a1", 1_000, final=True), req("b", "b1", 50_000), req("a", "a2", 51_000)]
    out, draw = run(rows)
    assert out == [["a1"], ["b1", "a2"]]
    assert draw.late_records == 1
    console = Console(file=io.StringIO(), width=120)
    console.print(report_table(ReadReport(), draw))
    assert "came after their session was written" in console.file.getvalue()  # type: ignore[attr-defined]


def test_nothing_is_lost_and_one_batch_when_the_policy_never_flushes() -> None:
    rows = [req(f"s{i % 5}", f"r{i}", 1_000 * i, final=i % 7 == 0) for i in range(200)]
    out, draw = run(rows, FlushPolicy(reorder_ms=float("inf"), idle_ms=float("inf")))
    assert out == [[f"r{i}" for i in range(200)]]
    many, _ = run(rows)
    assert sorted(r for batch in many for r in batch) == sorted(f"r{i}" for i in range(200))
    assert draw.late_records == 0
