"""The compare engine on synthetic but realistic samples (lognormal latencies per model), never
through the loader: decisions, statuses, rules, determinism and the false-positive rate."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agent_trace.compare import (
    RESULTS_SCHEMA,
    Rule,
    Settings,
    Status,
    compare_samples,
    samples_from_arrays,
    samples_from_frames,
    summarize,
)
from agent_trace.errors import UsageError

# Typical scale of each metric (ms) and its spread (lognormal sigma) for two models.
MODELS = {"llama-70b": {"ttft_ms": (95, 0.35), "total_ms": (1800, 0.5)}, "qwen-7b": {"ttft_ms": (35, 0.35), "total_ms": (700, 0.5)}}
REQUEST_METRICS = ("ttft_ms", "total_ms")


def realistic(
    rng: np.random.Generator, n: int = 300, *, scale: dict[tuple[str, str], float] | None = None
) -> pl.DataFrame:
    """One run's samples; `scale[(metric, model)]` multiplies that metric for that model."""
    scale = scale or {}
    data = {}
    for model, metrics in MODELS.items():
        for metric, (median, sigma) in metrics.items():
            values = rng.lognormal(np.log(median), sigma, n) * scale.get((metric, model), 1.0)
            data[(metric, f"model={model}")] = values
    return samples_from_arrays(data)


SETTINGS = Settings(metrics=REQUEST_METRICS)


def statuses(results: pl.DataFrame) -> dict[tuple[str, str, str], str]:
    return {(r["metric"], r["statistic"], r["group"]): r["status"] for r in results.iter_rows(named=True)}


def test_identical_inputs_are_all_unchanged_and_pass() -> None:
    samples = realistic(np.random.default_rng(1), n=600)
    results = compare_samples(samples, samples, SETTINGS)
    assert set(results["status"]) == {"unchanged"}
    assert results.height == len(MODELS) * len(REQUEST_METRICS) * 4
    assert results["delta_ms"].to_list() == [0.0] * results.height
    summary = summarize(results, SETTINGS)
    assert not summary.failed and summary.exit_code == 0


def test_thirty_percent_ttft_shift_on_one_model_regresses_that_row_only() -> None:
    rng = np.random.default_rng(2)
    base = realistic(rng)
    cand = realistic(rng, scale={("ttft_ms", "llama-70b"): 1.30})
    results = compare_samples(base, cand, SETTINGS)
    got = statuses(results)
    for stat in ("p50", "p90", "mean"):
        assert got[("ttft_ms", stat, "model=llama-70b")] == "regressed"
    assert got[("ttft_ms", "p99", "model=llama-70b")] == "insufficient_data"  # 300 < 500 samples
    others = {k: v for k, v in got.items() if k[0] != "ttft_ms" or k[2] != "model=llama-70b"}
    assert "regressed" not in others.values()
    row = results.filter(metric="ttft_ms", statistic="p50", group="model=llama-70b").row(0, named=True)
    assert row["test"] == "mann_whitney_u" and row["p_value"] < 1e-6
    assert 20 < row["delta_pct"] < 40
    assert row["ci_low_ms"] > 0
    assert summarize(results, SETTINGS).exit_code == 1


def test_speedup_is_improved_not_a_failure() -> None:
    rng = np.random.default_rng(3)
    results = compare_samples(realistic(rng), realistic(rng, scale={("total_ms", "qwen-7b"): 0.7}), SETTINGS)
    got = statuses(results)
    assert got[("total_ms", "p50", "model=qwen-7b")] == "improved"
    assert not summarize(results, SETTINGS).failed


def test_shift_under_the_absolute_floor_is_unchanged() -> None:
    """+0.3 ms on a ~1.5 ms queue wait is +20% and clearly significant, but under the 1 ms floor."""
    rng = np.random.default_rng(4)
    base = samples_from_arrays({("queue_ms", "model=m"): rng.gamma(4.0, 0.375, 2000)})
    cand = samples_from_arrays({("queue_ms", "model=m"): rng.gamma(4.0, 0.375, 2000) + 0.3})
    settings = Settings(metrics=("queue_ms",), statistics=("p50", "mean"))
    results = compare_samples(base, cand, settings)
    assert set(results["status"]) == {"unchanged"}
    assert all(p < 0.01 for p in results["p_value"])
    assert all("1 ms floor" in r for r in results["reason"])
    # The same shift with the floor lowered is a regression: the floor is what held it back.
    lowered = compare_samples(base, cand, settings.with_thresholds(min_delta_ms=0.1))
    assert set(lowered["status"]) == {"regressed"}


def test_shift_under_the_relative_threshold_is_unchanged() -> None:
    rng = np.random.default_rng(5)
    base = samples_from_arrays({("total_ms", "model=m"): rng.lognormal(np.log(2000), 0.1, 5000)})
    cand = samples_from_arrays({("total_ms", "model=m"): rng.lognormal(np.log(2000), 0.1, 5000) * 1.03})
    results = compare_samples(base, cand, Settings(metrics=("total_ms",), statistics=("p50",)))
    row = results.row(0, named=True)
    assert row["status"] == "unchanged" and row["p_value"] < 0.01 and row["delta_ms"] > 1
    assert "5% threshold" in row["reason"]


def test_noise_only_false_positive_rate() -> None:
    """Two samples of one distribution, 200 seeds: no more false regressions than alpha allows.

    Every seed compares 2 models x 2 metrics with 60 samples a side at the default settings, so
    p50 and mean are judged by Mann–Whitney U and p90 by the bootstrap (p99 needs 500 samples).
    A false regression needs a one-sided significant result, so the expected rate per row is
    alpha / 2 (measured: 12 of 2,400 rows here, 0.50%; 119 of 24,000 over 2,000 seeds). The bounds
    leave room for sampling noise while still catching a test that is off by a factor of two.
    """
    settings = Settings(metrics=REQUEST_METRICS)
    rows = regressed_rows = improved_rows = seeds_failed = 0
    for seed in range(200):
        rng = np.random.default_rng(10_000 + seed)
        results = compare_samples(realistic(rng, n=60), realistic(rng, n=60), settings)
        judged = results.filter(pl.col("test").is_not_null())
        rows += judged.height
        n_regressed = judged.filter(status="regressed").height
        regressed_rows += n_regressed
        improved_rows += judged.filter(status="improved").height
        seeds_failed += n_regressed > 0
    alpha = settings.thresholds.alpha
    assert rows == 200 * 4 * 3
    assert regressed_rows / rows <= 0.75 * alpha
    assert (regressed_rows + improved_rows) / rows <= 1.25 * alpha
    # A run judges 4 (metric, group) pairs, so it fails by chance in about 4 x alpha / 2 of runs
    # (measured: 3.0%). More groups mean more chances: that is what per-group rules are for.
    assert seeds_failed / 200 <= 0.05


def test_tiny_samples_are_insufficient_data_never_a_pass() -> None:
    rng = np.random.default_rng(6)
    base = samples_from_arrays({("ttft_ms", "model=m"): rng.lognormal(3, 0.3, 6)})
    cand = samples_from_arrays({("ttft_ms", "model=m"): rng.lognormal(3, 0.3, 6) * 3})
    results = compare_samples(base, cand, Settings(metrics=("ttft_ms",)))
    assert set(results["status"]) == {"insufficient_data"}
    assert results["p_value"].null_count() == results.height
    assert results["reason"][0] == "n=6/6; needs 10 per side"
    # The values are still shown, so a reader sees what could not be judged.
    assert results["delta_ms"].null_count() == 0


def test_percentiles_need_samples_beyond_them() -> None:
    s = Settings()
    t = s.thresholds
    assert [s.required_samples(x, t) for x in ("mean", "p50", "p90", "p95", "p99", "p99.9", "p10")] == [
        10, 10, 50, 100, 500, 5000, 50,
    ]


def test_added_removed_and_metrics_without_samples() -> None:
    rng = np.random.default_rng(7)
    base = samples_from_arrays({("tool_ms", "tool_class=web_fetch"): rng.lognormal(6, 0.5, 30)})
    cand = samples_from_arrays({("tool_ms", "tool_class=edit_file"): rng.lognormal(2, 0.5, 30)})
    results = compare_samples(base, cand, Settings(metrics=("tool_ms", "ttft_ms"), statistics=("p50",)))
    assert statuses(results) == {
        ("tool_ms", "p50", "tool_class=edit_file"): "added",
        ("tool_ms", "p50", "tool_class=web_fetch"): "removed",
        ("ttft_ms", "p50", "all"): "insufficient_data",
    }
    assert results.filter(metric="ttft_ms")["reason"][0] == "no samples on either side"


def test_zero_baseline_has_no_relative_change_and_passes_the_threshold() -> None:
    base = samples_from_arrays({("queue_ms", "model=m"): np.zeros(200)})
    cand = samples_from_arrays({("queue_ms", "model=m"): np.full(200, 5.0)})
    row = compare_samples(base, cand, Settings(metrics=("queue_ms",), statistics=("p50",))).row(0, named=True)
    assert row["delta_pct"] is None and row["delta_ms"] == 5.0
    assert row["status"] == "regressed"


def test_rules_override_thresholds_per_metric_and_group_and_can_ignore() -> None:
    rng = np.random.default_rng(8)
    base = realistic(rng)
    cand = realistic(rng, scale={("ttft_ms", "llama-70b"): 1.30})
    loose = Rule(metric="ttft_ms", group="model=llama*", threshold_pct=50.0)
    results = compare_samples(base, cand, Settings(metrics=REQUEST_METRICS, rules=(loose,)))
    row = results.filter(metric="ttft_ms", statistic="p50", group="model=llama-70b").row(0, named=True)
    assert row["status"] == "unchanged" and row["threshold_pct"] == 50.0
    assert results.filter(group="model=qwen-7b")["threshold_pct"].unique().to_list() == [5.0]
    ignore = Rule(statistic="p9*", ignore=True)
    results = compare_samples(base, cand, Settings(metrics=REQUEST_METRICS, rules=(ignore,)))
    assert "p90" not in set(results["statistic"]) and "p99" not in set(results["statistic"])
    # Later rules win.
    rules = (Rule(metric="ttft_ms", min_delta_ms=50.0), Rule(metric="ttft_ms", statistic="mean", min_delta_ms=2.0))
    s = Settings(rules=rules)
    assert s.thresholds_for("ttft_ms", "mean", "model=x").min_delta_ms == 2.0
    assert s.thresholds_for("ttft_ms", "p50", "model=x").min_delta_ms == 50.0
    assert s.thresholds_for("total_ms", "p50", "model=x").min_delta_ms == 1.0


def test_results_are_deterministic_and_rows_do_not_depend_on_each_other() -> None:
    rng = np.random.default_rng(9)
    base, cand = realistic(rng), realistic(rng, scale={("total_ms", "qwen-7b"): 1.1})
    full = compare_samples(base, cand, SETTINGS)
    assert_frame_equal(full, compare_samples(base, cand, SETTINGS))
    # One metric alone, or the samples shuffled, gives the same rows.
    alone = compare_samples(base.filter(metric="total_ms"), cand.sample(fraction=1.0, shuffle=True, seed=1), Settings(metrics=("total_ms",)))
    assert_frame_equal(alone, full.filter(metric="total_ms"))
    other_seed = compare_samples(base, cand, Settings(metrics=REQUEST_METRICS, seed=1))
    assert other_seed["ci_low_ms"].to_list() != full["ci_low_ms"].to_list()


def test_results_schema_and_order() -> None:
    rng = np.random.default_rng(10)
    results = compare_samples(realistic(rng), realistic(rng), SETTINGS)
    assert results.schema == pl.Schema(RESULTS_SCHEMA)
    keys = results.select("metric", "group", "statistic").rows()
    assert keys[:4] == [("ttft_ms", "model=llama-70b", s) for s in ("p50", "p90", "p99", "mean")]
    assert set(results["status"]) <= {s.value for s in Status}


def test_settings_are_validated() -> None:
    with pytest.raises(UsageError, match="alpha"):
        Settings().with_thresholds(alpha=1.5)
    with pytest.raises(UsageError, match="statistic"):
        Settings(statistics=("p100",))
    with pytest.raises(UsageError, match="resamples"):
        Settings(resamples=100)


def test_samples_from_frames_filters_rows_that_do_not_measure_latency() -> None:
    requests = pl.DataFrame({
        "model": ["a", "a", "a", None],
        "session_type": [None, "coder", None, None],
        "ttft_ms": [10.0, 12.0, 99.0, 9.0],
        "cancelled": [False, False, True, None],
    })
    tools = pl.DataFrame({
        "tool_class": ["bash", "bash", "bash", None],
        "tool_ms": [100.0, 5.0, None, 7.0],
        "inferred": [False, True, False, False],
        "unclosed": [False, False, True, False],
    })
    sessions = pl.DataFrame({
        "session_id": ["r", "s", "anon"],
        "depth": [0, 1, 0],
        "session_type": [None, "research", None],
        "wall_ms": [5000.0, 900.0, 1.0],
        "anonymous": [False, False, True],
    })
    got = samples_from_frames(requests=requests, tools=tools, sessions=sessions, metrics=("ttft_ms", "tool_ms", "session_wall_ms"))
    assert got.rows() == [
        ("ttft_ms", "model=a", 10.0),
        ("ttft_ms", "model=a, session_type=coder", 12.0),
        ("ttft_ms", "model=?", 9.0),
        ("tool_ms", "tool_class=bash", 100.0),
        ("tool_ms", "tool_class=?", 7.0),
        ("session_wall_ms", "role=root", 5000.0),
        ("session_wall_ms", "role=subagent, session_type=research", 900.0),
    ]


def test_samples_from_frames_needs_the_value_column() -> None:
    with pytest.raises(ValueError, match="ttft_ms"):
        samples_from_frames(requests=pl.DataFrame({"model": ["a"]}), metrics=("ttft_ms",))
    with pytest.raises(ValueError, match="unknown metric"):
        samples_from_frames(metrics=("latency",))


def test_public_surface_is_pinned() -> None:
    import agent_trace.compare as api

    assert sorted(api.__all__) == sorted(
        [
            "DEFAULT_METRICS", "DEFAULT_STATISTICS", "METRICS", "RESULTS_SCHEMA", "SAMPLES_SCHEMA", "CompareConfig",
            "ConfigError", "Metric", "Report", "Rule", "Settings", "Side", "Status", "Summary", "Thresholds",
            "build_report", "compare_samples", "parse_config", "parse_percent", "parse_statistic",
            "render_benchmark_json", "render_json", "render_junit", "render_markdown", "render_table",
            "samples_from_arrays", "samples_from_frames", "samples_from_trace", "summarize",
        ]
    )
    assert all(hasattr(api, name) for name in api.__all__)
