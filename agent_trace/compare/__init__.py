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

from typing import Any

# Where each public name lives. They are imported on first use, so `import agent_trace.compare`
# (and the CLI, which registers the compare command at start-up) does not load polars.
_WHERE = {
    "CompareConfig": "config", "ConfigError": "config", "parse_config": "config",
    "RESULTS_SCHEMA": "engine", "Summary": "engine", "compare_samples": "engine", "summarize": "engine",
    "DEFAULT_METRICS": "metrics", "METRICS": "metrics", "Metric": "metrics",
    "render_benchmark_json": "render", "render_json": "render", "render_junit": "render",
    "render_markdown": "render", "render_table": "render",
    "Report": "report", "Side": "report", "build_report": "report",
    "SAMPLES_SCHEMA": "samples", "samples_from_arrays": "samples", "samples_from_frames": "samples",
    "samples_from_trace": "samples",
    "DEFAULT_STATISTICS": "settings", "Rule": "settings", "Settings": "settings", "Status": "settings",
    "Thresholds": "settings", "parse_percent": "settings", "parse_statistic": "settings",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'agent_trace.compare' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{where}", __name__), name)
    globals()[name] = value
    return value


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
