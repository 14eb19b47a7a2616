"""The critical path: hand-worked paths for the small fixtures, and its invariants on the real traces."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agent_trace.analysis import Trace, critical_path, load

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures" / "analysis"


def relative(cp: pl.DataFrame, base_ms: int) -> pl.DataFrame:
    """(kind, session, start, end in ms after `base_ms`, name) for comparing with hand-made paths."""
    b = base_ms * 1000
    return cp.select(
        "kind", "session_id",
        ((pl.col("start_us") - b) / 1000).alias("start"),
        ((pl.col("end_us") - b) / 1000).alias("end"),
        "name",
    )


def path(rows: list[tuple[str, str, float, float, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["kind", "session_id", "start", "end", "name"], orient="row")


def assert_covers_exactly(t: Trace, cp: pl.DataFrame) -> None:
    """Per root: seq is 0..n-1, segments are contiguous and span [tree_start_us, tree_end_us]."""
    per_root = (
        cp.sort("root_session_id", "seq")
        .group_by("root_session_id", maintain_order=True)
        .agg(
            n=pl.len(),
            seq_ok=(pl.col("seq") == pl.int_range(pl.len())).all(),
            contiguous=(pl.col("start_us").slice(1) == pl.col("end_us").slice(0, pl.len() - 1)).all(),
            positive=(pl.col("end_us") > pl.col("start_us")).all(),
            first=pl.col("start_us").first(),
            last=pl.col("end_us").last(),
            total_ms=pl.col("duration_ms").sum(),
        )
        .join(
            t.sessions.select("session_id", "tree_start_us", "tree_end_us", "tree_wall_ms"),
            left_on="root_session_id", right_on="session_id",
        )
    )
    bad = per_root.filter(
        ~pl.col("seq_ok") | ~pl.col("contiguous") | ~pl.col("positive")
        | (pl.col("first") != pl.col("tree_start_us")) | (pl.col("last") != pl.col("tree_end_us"))
        | ((pl.col("total_ms") - pl.col("tree_wall_ms")).abs() > 1e-6)
    )
    assert bad.height == 0, bad
    # In integer µs the breakdown is the wall time exactly.
    assert (per_root["last"] - per_root["first"]).to_list() == [
        round(w * 1000) for w in per_root["tree_wall_ms"].to_list()
    ]


def test_overlapping_requests_only_the_last_finisher_counts() -> None:
    t = load(FIX / "overlap.jsonl")
    cp = critical_path(t)
    # r2 [100, 300] runs inside r1 [0, 400]: r1 finished last before the tool, so r2 is off the path.
    expected = path([
        ("queue", "main", 0.0, 10.0, "m-big"),
        ("prefill", "main", 10.0, 100.0, "m-big"),
        ("decode", "main", 100.0, 400.0, "m-big"),
        ("tool", "main", 400.0, 700.0, "bash"),
        ("gap", "main", 700.0, 750.0, "gap"),
        ("queue", "main", 750.0, 750.5, "m-big"),
        ("prefill", "main", 750.5, 800.0, "m-big"),
        ("decode", "main", 800.0, 1000.0, "m-big"),
    ])
    assert_frame_equal(relative(cp, 1_000_000), expected)
    assert cp["request_id"].to_list()[:3] == ["r1"] * 3
    assert cp["tool_call_id"].to_list()[3] == "c1"
    assert_covers_exactly(t, cp)


def test_parallel_tools_only_the_longest_branch_counts() -> None:
    t = load(FIX / "parallel_tools.jsonl")
    cp = critical_path(t)
    expected = path([
        ("queue", "p", 0.0, 2.0, "m"),
        ("prefill", "p", 2.0, 20.0, "m"),
        ("decode", "p", 20.0, 100.0, "m"),
        ("tool", "p", 100.0, 400.0, "grep"),  # t2, the last of t1/t2/t3 to finish
        ("gap", "p", 400.0, 410.0, "gap"),
        ("queue", "p", 410.0, 411.0, "m"),
        ("prefill", "p", 411.0, 420.0, "m"),
        ("decode", "p", 420.0, 500.0, "m"),
    ])
    assert_frame_equal(relative(cp, 2_000_000), expected)
    breakdown = cp.group_by("kind").agg(pl.col("duration_ms").sum()).sort("kind")
    assert breakdown.rows() == [("decode", 160.0), ("gap", 10.0), ("prefill", 27.0), ("queue", 3.0), ("tool", 300.0)]
    assert_covers_exactly(t, cp)


def test_subagent_tree() -> None:
    t = load(FIX / "subagent_tree.jsonl")
    cp = critical_path(t)
    # R's agent tools a1 [100, 900] and a2 [100, 600] run subagents A [110, 890] and B [105, 555];
    # A runs its own subagent A.g [420, 470] inside tool x1 [410, 500]. a1 ends last, A is the
    # subagent that ends last inside it, and x1 -> A.g inside A.
    expected = path([
        ("queue", "R", 0.0, 1.0, "m"),
        ("prefill", "R", 1.0, 10.0, "m"),
        ("decode", "R", 10.0, 100.0, "m"),
        ("subagent", "R", 100.0, 110.0, "agent"),  # a1 spawning A (B starting earlier is not it)
        ("queue", "A", 110.0, 115.0, "m"),
        ("prefill", "A", 115.0, 140.0, "m"),
        ("decode", "A", 140.0, 410.0, "m"),
        ("subagent", "A", 410.0, 420.0, "agent"),  # x1 spawning A.g
        ("queue", "A.g", 420.0, 421.0, "m"),
        ("prefill", "A.g", 421.0, 425.0, "m"),
        ("decode", "A.g", 425.0, 470.0, "m"),
        ("subagent", "A", 470.0, 500.0, "agent"),  # x1 after A.g finished
        ("gap", "A", 500.0, 510.0, "gap"),
        ("queue", "A", 510.0, 512.0, "m"),
        ("prefill", "A", 512.0, 530.0, "m"),
        ("decode", "A", 530.0, 890.0, "m"),
        ("subagent", "R", 890.0, 900.0, "agent"),  # a1 after A finished
        ("gap", "R", 900.0, 910.0, "gap"),
        ("queue", "R", 910.0, 911.0, "m"),
        ("prefill", "R", 911.0, 920.0, "m"),
        ("decode", "R", 920.0, 1000.0, "m"),
    ])
    assert_frame_equal(relative(cp, 3_000_000), expected)
    assert cp.filter(kind="subagent")["tool_call_id"].to_list() == ["a1", "x1", "x1", "a1"]
    assert_covers_exactly(t, cp)

    # The critical path of a subtree: A with its subagent, as if it were the root.
    sub = critical_path(t, session_id="A")
    assert sub["root_session_id"].unique().to_list() == ["A"]
    assert sub.select(pl.col("duration_ms").sum()).item() == pytest.approx(780.0)
    assert set(sub["session_id"]) == {"A", "A.g"}


def test_child_outliving_its_tool_is_still_walked_through_it() -> None:
    """Clock skew: a subagent's last request ends just after the agent tool that waited for it."""
    def row(kind: str, **kw: object) -> dict:
        return {"schema": "dynamo.request.trace.v1", "event_type": kind, **kw}

    def req(rid: str, sid: str, parent: str | None, start: int, total: float) -> dict:
        ctx = {"session_id": sid, **({"parent_session_id": parent} if parent else {})}
        return row("request_end", event_time_unix_ms=start + int(total), agent_context=ctx,
                   request={"request_id": rid, "request_received_ms": start, "total_time_ms": total})

    objs = [
        req("p1", "P", None, 0, 100.0),
        row("tool_end", event_time_unix_ms=500, agent_context={"session_id": "P"},
            tool={"tool_call_id": "a", "tool_class": "agent", "started_at_unix_ms": 100, "ended_at_unix_ms": 500}),
        req("c1", "C", "P", 110, 390.4),  # ends at 500.4, after the tool's 500
        req("p2", "P", None, 510, 90.0),
    ]
    t = Trace.from_objects(objs)
    cp = critical_path(t)
    assert cp.select("kind", "session_id", "start_us", "end_us").rows() == [
        ("llm", "P", 0, 100_000),
        ("subagent", "P", 100_000, 110_000),
        ("llm", "C", 110_000, 500_400),
        ("gap", "P", 500_400, 510_000),
        ("llm", "P", 510_000, 600_000),
    ]
    assert_covers_exactly(t, cp)


def test_session_with_only_inferred_tools() -> None:
    t = load(FIX / "inferred_only.jsonl")
    cp = critical_path(t)
    kinds = relative(cp, 4_000_000).select("kind", "start", "end", "name").rows()
    assert kinds == [
        ("queue", 0.0, 1.0, "m"), ("prefill", 1.0, 10.0, "m"), ("decode", 10.0, 100.0, "m"),
        ("tool", 100.0, 300.0, "read_file"),  # i1 and i2 tie: the first asked for wins
        ("queue", 300.0, 301.0, "m"), ("prefill", 301.0, 310.0, "m"), ("decode", 310.0, 400.0, "m"),
        ("tool", 400.0, 450.0, "bash"),
        ("queue", 450.0, 451.0, "m"), ("prefill", 451.0, 455.0, "m"), ("decode", 455.0, 500.0, "m"),
    ]
    assert_covers_exactly(t, cp)


def test_cancelled_and_identity_less_requests_are_their_own_roots() -> None:
    t = load(FIX / "cancelled.jsonl")
    cp = critical_path(t)
    per_root = cp.group_by("root_session_id").agg(pl.col("duration_ms").sum()).sort("root_session_id")
    assert per_root.rows() == [("request-only", 30.0), ("traj-1", 260.0)]
    # The cancelled request c2 is still work the run waited for.
    assert "c2" in cp["request_id"].to_list()
    assert_covers_exactly(t, cp)


def test_missing_fields() -> None:
    t = load(FIX / "missing_fields.jsonl")
    cp = critical_path(t)
    assert relative(cp, 6_000_000).select("kind", "start", "end", "name").rows() == [
        ("prefill", 0.0, 50.0, "m"),  # m1: no queue wait reported, ttft 50
        ("decode", 50.0, 200.0, "m"),
        ("gap", 200.0, 300.0, "gap"),  # the timeless tool z1 is a point: not on the path
        ("queue", 300.0, 305.0, "m"),  # m2: no ttft, so no decode; the rest of it is `llm`
        ("prefill", 305.0, 325.0, "m"),
        ("llm", 325.0, 400.0, "m"),
        ("gap", 400.0, 500.0, "gap"),
        ("llm", 500.0, 550.0, "unknown-model"),  # m3: no stage fields at all
    ]
    assert_covers_exactly(t, cp)


def test_overlap_at_the_start_is_covered_by_the_running_request() -> None:
    def req(rid: str, start: int, total: float) -> dict:
        return {"schema": "dynamo.request.trace.v1", "event_type": "request_end",
                "event_time_unix_ms": start + int(total), "agent_context": {"session_id": "s"},
                "request": {"request_id": rid, "request_received_ms": start, "total_time_ms": total}}

    t = Trace.from_objects([req("a", 0, 10.0), req("b", 5, 15.0)])
    cp = critical_path(t)
    assert cp.select("request_id", "start_us", "end_us").rows() == [("a", 0, 5000), ("b", 5000, 20000)]


def test_unknown_session_and_empty_trace() -> None:
    t = load(FIX / "overlap.jsonl")
    with pytest.raises(KeyError):
        critical_path(t, session_id="nope")
    empty = Trace.from_objects([])
    cp = critical_path(empty)
    assert cp.height == 0
    assert cp.columns[:6] == ["root_session_id", "seq", "kind", "session_id", "start_us", "end_us"]


def test_real_small_trace() -> None:
    t = load(ROOT / "fixtures" / "real" / "small")
    cp = critical_path(t)
    assert set(cp["root_session_id"]) == {"run0-root", "run1-root", "run2-root", "request-only"}
    assert_covers_exactly(t, cp)
    # Subagents are on each run's path: every run spends time inside one of its subagents.
    inside = cp.filter(pl.col("session_id") != pl.col("root_session_id"))
    assert set(inside["root_session_id"]) == {"run0-root", "run1-root", "run2-root"}


@pytest.mark.slow
def test_breakdown_sums_to_wall_time_on_every_session_of_the_large_trace() -> None:
    t = load(ROOT / "fixtures" / "real" / "large")
    cp = critical_path(t)
    roots = t.sessions.filter(pl.col("depth") == 0)
    assert roots.height == 3189  # 3,188 agent runs and the identity-less `request-only` rows
    assert cp["root_session_id"].n_unique() == roots.height
    assert_covers_exactly(t, cp)
    # And for every session as the root of its own subtree (subagents included).
    subs = t.sessions.filter(pl.col("depth") > 0).sample(100, seed=7)["session_id"].to_list()
    for sid in subs:
        sub = critical_path(t, session_id=sid)
        wall = t.sessions.filter(pl.col("session_id") == sid)["tree_wall_ms"].item()
        assert sub.select(pl.col("duration_ms").sum()).item() == pytest.approx(wall, abs=1e-6)
