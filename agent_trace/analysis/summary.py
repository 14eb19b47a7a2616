"""AIPerf-style stat blocks over the analysis tables (pure: `Trace` in, frame out).

One row per (scope, group, metric) with `count, avg, min, max, std, p50, p90, p95, p99`. The
statistics are AIPerf's: population standard deviation (numpy's default, ddof=0) and linearly
interpolated percentiles (numpy's default), over the non-null values of the metric. Metric names
carry their unit (`ttft_ms`, `kv_hit_rate` is a fraction, token counts are counts).

Scopes and groups by `by`:

    by=None       request metrics over all requests; session metrics over all sessions;
                  tool durations per tool class
    by="model"    request metrics per model
    by="session"  request and session metrics per session type and role (root / subagent)
    by="tool"     tool durations per tool class, and per tool class and status

Requests a client cancelled (`cancelled`) are left out of request metrics unless
`include_cancelled=True`: their latencies describe a cut stream. The pseudo-sessions of
identity-less rows (`anonymous`) are left out of session metrics: they are not agent runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import polars as pl

if TYPE_CHECKING:
    from .trace import Trace

By = Literal["model", "session", "tool"]
BY_CHOICES: tuple[str, ...] = ("model", "session", "tool")

REQUEST_METRICS = (
    "ttft_ms", "itl_ms", "tpot_ms", "total_ms", "queue_ms", "prefill_ms", "decode_ms",
    "kv_hit_rate", "input_tokens", "output_tokens", "cached_tokens",
)
SESSION_METRICS = (
    "wall_ms", "llm_ms", "tool_ms", "idle_ms", "request_count", "tool_count", "subagent_count",
)
TOOL_METRICS = ("tool_ms",)
STATS = ("count", "avg", "min", "max", "std", "p50", "p90", "p95", "p99")

SCHEMA = {
    "scope": pl.String,
    "group": pl.String,
    "metric": pl.String,
    "count": pl.UInt32,
    "avg": pl.Float64,
    "min": pl.Float64,
    "max": pl.Float64,
    "std": pl.Float64,
    "p50": pl.Float64,
    "p90": pl.Float64,
    "p95": pl.Float64,
    "p99": pl.Float64,
}


def stat_block(frame: pl.DataFrame, metrics: tuple[str, ...], group: pl.Expr, scope: str) -> pl.DataFrame:
    """Stats of `metrics` in `frame` per value of `group` (a String expression), long form."""
    if frame.height == 0:
        return pl.DataFrame(schema=SCHEMA)
    long = frame.select(
        group.alias("group"), *[pl.col(m).cast(pl.Float64) for m in metrics]
    ).unpivot(index="group", variable_name="metric", value_name="v").drop_nulls("v")
    v = pl.col("v")
    out = long.group_by("group", "metric").agg(
        count=pl.len().cast(pl.UInt32),
        avg=v.mean(),
        min=v.min(),
        max=v.max(),
        std=v.std(ddof=0),
        p50=v.quantile(0.50, "linear"),
        p90=v.quantile(0.90, "linear"),
        p95=v.quantile(0.95, "linear"),
        p99=v.quantile(0.99, "linear"),
    )
    order = pl.col("metric").replace_strict({m: i for i, m in enumerate(metrics)}, return_dtype=pl.UInt32)
    return (
        out.with_columns(scope=pl.lit(scope))
        .sort("group", order)
        .select(list(SCHEMA))
    )


def _label(*parts: pl.Expr) -> pl.Expr:
    return pl.concat_str(list(parts), separator=" / ")


def summary(trace: Trace, by: By | None = None, *, include_cancelled: bool = False) -> pl.DataFrame:
    """AIPerf-style statistics of requests, sessions and tools (see the module docstring).

    Examples
    --------
    >>> from agent_trace.analysis import Trace
    >>> def req(rid, model, ttft):
    ...     return {"schema": "dynamo.request.trace.v1", "event_type": "request_end",
    ...             "event_time_unix_ms": 2000, "agent_context": {"session_id": rid},
    ...             "request": {"request_id": rid, "model": model, "request_received_ms": 1000,
    ...                         "ttft_ms": ttft, "total_time_ms": 1000.0, "output_tokens": 3,
    ...                         "finish_reason_metadata": {"finish_reason": "stop"}}}
    >>> t = Trace.from_objects([req("a", "m1", 10.0), req("b", "m1", 30.0), req("c", "m2", 5.0)])
    >>> s = summary(t, by="model").filter(metric="ttft_ms")
    >>> s.select("group", "count", "avg", "min", "max", "std", "p50").rows()
    [('m1', 2, 20.0, 10.0, 30.0, 10.0, 20.0), ('m2', 1, 5.0, 5.0, 5.0, 0.0, 5.0)]
    """
    if by is not None and by not in BY_CHOICES:
        raise ValueError(f"by must be one of {BY_CHOICES} or None, not {by!r}")
    requests = trace.requests
    if not include_cancelled:
        requests = requests.filter(pl.col("cancelled").is_null() | ~pl.col("cancelled"))
    sessions = trace.sessions.filter(~pl.col("anonymous"))
    tools = trace.tools
    status = pl.when(pl.col("inferred")).then(pl.lit("inferred")).otherwise(pl.col("status").fill_null("unknown"))
    tool_class = pl.col("tool_class").fill_null("unknown-tool")
    role = pl.when(pl.col("depth") == 0).then(pl.lit("root")).otherwise(pl.lit("subagent"))
    session_group = pl.when(pl.col("session_type").is_null()).then(role).otherwise(
        _label(pl.col("session_type"), role)
    )
    request_session_group = pl.when(pl.col("session_type").is_null()).then(pl.col("session_role")).otherwise(
        _label(pl.col("session_type"), pl.col("session_role"))
    )

    blocks: list[pl.DataFrame] = []
    if by is None:
        blocks.append(stat_block(requests, REQUEST_METRICS, pl.lit("all"), "request"))
        blocks.append(stat_block(sessions, SESSION_METRICS, pl.lit("all"), "session"))
        blocks.append(stat_block(tools, TOOL_METRICS, tool_class, "tool"))
    elif by == "model":
        blocks.append(stat_block(requests, REQUEST_METRICS, pl.col("model").fill_null("unknown-model"), "request"))
    elif by == "session":
        blocks.append(stat_block(requests, REQUEST_METRICS, request_session_group, "request"))
        blocks.append(stat_block(sessions, SESSION_METRICS, session_group, "session"))
    else:
        blocks.append(stat_block(tools, TOOL_METRICS, tool_class, "tool"))
        blocks.append(stat_block(tools, TOOL_METRICS, _label(tool_class, status), "tool"))
        return pl.concat(blocks).sort("group", maintain_order=True)
    return pl.concat(blocks)
