"""`compare`: is a candidate trace slower than a baseline? The core of `agent-trace compare`.

    analysis tables ──samples_from_trace──▶ samples frame (metric, group, value)
    two samples frames + Settings ──compare_samples──▶ results frame (one row per metric × statistic × group)
    results + settings + sides = Report ──render_*──▶ markdown, JSON, JUnit, rich table, benchmark JSON

Everything here is pure: no files are opened and nothing is printed (the CLI does both), and
the bootstrap is seeded per row, so the same inputs give the same report, byte for byte.

    >>> import numpy as np
    >>> from agent_trace.compare import Settings, build_report, render_markdown, samples_from_arrays
    >>> rng = np.random.default_rng(1)
    >>> base = samples_from_arrays({("ttft_ms", "model=m"): rng.lognormal(3.5, 0.3, 300)})
    >>> cand = samples_from_arrays({("ttft_ms", "model=m"): rng.lognormal(3.5, 0.3, 300) * 1.3})
    >>> report = build_report(base, cand, Settings(metrics=("ttft_ms",)))
    >>> report.summary.counts["regressed"], report.summary.exit_code
    (3, 1)
"""

from __future__ import annotations

from .config import CompareConfig, ConfigError, parse_config
from .engine import RESULTS_SCHEMA, Summary, compare_samples, summarize
from .metrics import DEFAULT_METRICS, METRICS, Metric
from .render import render_benchmark_json, render_json, render_junit, render_markdown, render_table
from .report import Report, Side, build_report
from .samples import SAMPLES_SCHEMA, samples_from_arrays, samples_from_frames, samples_from_trace
from .settings import DEFAULT_STATISTICS, Rule, Settings, Status, Thresholds, parse_percent, parse_statistic

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_STATISTICS",
    "METRICS",
    "RESULTS_SCHEMA",
    "SAMPLES_SCHEMA",
    "CompareConfig",
    "ConfigError",
    "Metric",
    "Report",
    "Rule",
    "Settings",
    "Side",
    "Status",
    "Summary",
    "Thresholds",
    "build_report",
    "compare_samples",
    "parse_config",
    "parse_percent",
    "parse_statistic",
    "render_benchmark_json",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_table",
    "samples_from_arrays",
    "samples_from_frames",
    "samples_from_trace",
    "summarize",
]
