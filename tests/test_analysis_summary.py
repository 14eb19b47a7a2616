"""`summary`: AIPerf's statistics (population std, linear percentiles) over the analysis tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agent_trace.analysis import load, summary

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures" / "analysis"


def test_by_model_by_hand() -> None:
    t = load(FIX / "overlap.jsonl")
    got = summary(t, by="model").filter(pl.col("metric").is_in(["ttft_ms", "tpot_ms"]))
    # m-big: r1 and r3. ttft [100, 50]; tpot [10, 4]. m-small: r2 alone, ttft 50, tpot 15.
    expected = pl.DataFrame(
        {
            "scope": ["request"] * 4,
            "group": ["m-big", "m-big", "m-small", "m-small"],
            "metric": ["ttft_ms", "tpot_ms", "ttft_ms", "tpot_ms"],
            "count": [2, 2, 1, 1],
            "avg": [75.0, 7.0, 50.0, 15.0],
            "min": [50.0, 4.0, 50.0, 15.0],
            "max": [100.0, 10.0, 50.0, 15.0],
            "std": [25.0, 3.0, 0.0, 0.0],  # population std, as numpy's default
            "p50": [75.0, 7.0, 50.0, 15.0],
            "p90": [95.0, 9.4, 50.0, 15.0],  # linear: 50 + 0.9 * 50
            "p95": [97.5, 9.7, 50.0, 15.0],
            "p99": [99.5, 9.94, 50.0, 15.0],
        },
        schema_overrides={"count": pl.UInt32},
    )
    assert_frame_equal(got, expected)


def test_matches_numpy_on_the_real_trace() -> None:
    t = load(ROOT / "fixtures" / "real" / "small")
    s = summary(t).filter(scope="request", metric="total_ms").row(0, named=True)
    values = t.requests.filter(~pl.col("cancelled").fill_null(False))["total_ms"].to_numpy()
    assert s["count"] == len(values) == 59
    assert s["avg"] == pytest.approx(np.mean(values))
    assert s["std"] == pytest.approx(np.std(values))
    for q in (50, 90, 95, 99):
        assert s[f"p{q}"] == pytest.approx(np.percentile(values, q))


def test_cancelled_requests_are_left_out_unless_asked() -> None:
    t = load(FIX / "cancelled.jsonl")  # c1 ttft 20, c2 (cancelled) 15, c3 (identity-less) 7
    default = summary(t).filter(metric="ttft_ms").select("count", "avg").row(0)
    included = summary(t, include_cancelled=True).filter(metric="ttft_ms").select("count", "avg").row(0)
    assert default == (2, 13.5)
    assert included == (3, 14.0)


def test_tools_by_class_and_status() -> None:
    t = load(FIX / "parallel_tools.jsonl")
    got = summary(t, by="tool").select("group", "count", "avg")
    assert got.rows() == [
        ("bash", 1, 149.0),
        ("bash / error", 1, 149.0),
        ("grep", 1, 300.0),
        ("grep / succeeded", 1, 300.0),
        ("read_file", 1, 50.0),
        ("read_file / succeeded", 1, 50.0),
    ]


def test_inferred_tools_have_their_own_status_group() -> None:
    t = load(FIX / "inferred_only.jsonl")
    got = summary(t, by="tool").filter(pl.col("group").str.contains(" / "))
    # i4 has no duration (no next request): it is not a sample.
    assert got.select("group", "count", "avg").rows() == [
        ("bash / inferred", 1, 50.0),
        ("grep / inferred", 1, 200.0),
        ("read_file / inferred", 1, 200.0),
    ]


def test_by_session_separates_roots_and_subagents() -> None:
    t = load(FIX / "subagent_tree.jsonl")
    s = summary(t, by="session")
    wall = s.filter(scope="session", metric="wall_ms").select("group", "count", "avg", "max")
    assert wall.rows() == [("root", 1, 1000.0, 1000.0), ("subagent", 3, (450 + 780 + 50) / 3, 780.0)]
    ttft = s.filter(scope="request", metric="ttft_ms").select("group", "count")
    assert ttft.rows() == [("root", 2), ("subagent", 4)]


def test_session_type_is_part_of_the_group_when_known() -> None:
    t = load(FIX / "cancelled.jsonl")
    groups = summary(t, by="session").filter(scope="session")["group"].unique().to_list()
    assert groups == ["coder / root"]  # the anonymous `request-only` pseudo-session is not a run


def test_default_blocks_and_empty_input() -> None:
    t = load(FIX / "overlap.jsonl")
    s = summary(t)
    assert s["scope"].unique(maintain_order=True).to_list() == ["request", "session", "tool"]
    assert set(s.filter(scope="request")["metric"]) == {
        "ttft_ms", "itl_ms", "tpot_ms", "total_ms", "queue_ms", "prefill_ms", "decode_ms",
        "kv_hit_rate", "input_tokens", "output_tokens", "cached_tokens",
    }
    with pytest.raises(ValueError, match="by must be one of"):
        summary(t, by="nope")  # type: ignore[arg-type]
