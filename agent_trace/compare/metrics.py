"""The metrics `compare` knows: where each one's samples come from and how they are grouped.

A metric is one column of one analysis table (`requests`, `tools` or `sessions`, the frames of
`agent_trace.analysis`), filtered to the rows whose value means the same thing on both sides, and
split into groups by a few key columns. Every metric is a duration in milliseconds, and smaller is
better.

Rows that do not measure the metric are left out before comparing, so a change in how many of
them there are cannot pass for a change in latency:

- cancelled requests (their timings stop at the cancel),
- inferred tool calls (their duration is a gap between two requests, not a measurement) and
  unclosed ones (no duration at all),
- the anonymous session that collects identity-less requests (its "wall time" spans unrelated work).

Group keys are columns, or `role` (root or subagent, from `depth`), so the wall time of a whole
agent run is not averaged with that of the subagents inside it. The first key always shows in a
group label (`model=?` when unknown); the others only when they have a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Table = Literal["requests", "tools", "sessions"]

_REQUEST_GROUPS = ("model", "session_type")


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    table: Table
    column: str
    group_by: tuple[str, ...]
    description: str
    exclude_true: tuple[str, ...] = ()  # boolean columns: rows where one is true are left out
    unit: str = "ms"


_ALL = (
    Metric("ttft_ms", "requests", "ttft_ms", _REQUEST_GROUPS, "time to first token", ("cancelled",)),
    Metric("itl_ms", "requests", "itl_ms", _REQUEST_GROUPS, "mean inter-token latency per request", ("cancelled",)),
    Metric("total_ms", "requests", "total_ms", _REQUEST_GROUPS, "end-to-end request latency", ("cancelled",)),
    Metric("queue_ms", "requests", "queue_ms", _REQUEST_GROUPS, "queue wait before prefill", ("cancelled",)),
    Metric("prefill_ms", "requests", "prefill_ms", _REQUEST_GROUPS, "prefill time", ("cancelled",)),
    Metric("decode_ms", "requests", "decode_ms", _REQUEST_GROUPS, "decode time", ("cancelled",)),
    Metric("tpot_ms", "requests", "tpot_ms", _REQUEST_GROUPS, "time per output token", ("cancelled",)),
    Metric(
        "session_wall_ms", "sessions", "wall_ms", ("role", "session_type"), "wall time of each session", ("anonymous",)
    ),
    Metric(
        "tool_ms", "tools", "tool_ms", ("tool_class",), "tool call duration, by tool class", ("inferred", "unclosed")
    ),
)

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}
"""Every metric by name, in display order."""

DEFAULT_METRICS: tuple[str, ...] = ("ttft_ms", "itl_ms", "total_ms", "queue_ms", "session_wall_ms", "tool_ms")
"""What `compare` looks at unless told otherwise: the latencies a user of an agent feels."""


def metric(name: str) -> Metric:
    """Look a metric up by name; the error lists the known ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; choose from: {', '.join(METRICS)}") from None
