"""The `sessions` table: one row per session (chain), ordered by the start of its tree, parents
before children.

Columns: session_id, parent_session_id, root_session_id, depth (UInt32, 0 for a root),
session_type, run_id, era, anonymous, start_us, end_us (integer epoch µs), start, end (UTC),
wall_ms, llm_ms, tool_ms, idle_ms, request_count, tool_count, subagent_count, descendant_count,
inferred_tool_count, tool_error_count, unclosed_tool_count, cancelled_count, input_tokens,
output_tokens, tree_start_us, tree_end_us, tree_wall_ms.

* A session's identity (parent, run, type, era) is the first non-null value seen on its
  requests, then on its tools. Requests without identity share the pseudo-session
  `request-only`, tool rows without one `unattributed`; both are `anonymous` and have no
  parent. A parent named by a child but never seen itself is still a session (with no rows); a
  parent cycle is cut where it closes (that session becomes a root).
* Bounds are the earliest start and latest end of the session's requests and closed tools;
  `llm_ms`, `tool_ms` and busy time are lengths of unions of intervals (overlap counts once),
  and `idle_ms = wall_ms − busy`. `tree_*` cover the session and all its descendants.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import polars as pl

from ..model import Identity, LlmRequest, ToolEvent
from .columns import ANONYMOUS_SESSIONS, REQUEST_ONLY, UNATTRIBUTED, UTC_US, Codes

_CODE = "session_code"


@dataclass(slots=True)
class _SessionInfo:
    parent: str | None
    run_id: str | None
    session_type: str | None
    era: str | None


class SessionIdentities:
    """The distinct identities of the records streamed past, requests' and tools' apart.

    Identities are interned by the reader, so this holds a few, not one per record; it keeps a
    reference to each, so their `id()`s (its keys, and `RowMemo`'s) stay unique while it lives.
    """

    def __init__(self) -> None:
        self._requests: dict[int, tuple[str, Identity]] = {}
        self._tools: dict[int, tuple[str, Identity]] = {}

    def add_request(self, r: LlmRequest) -> None:
        i = r.identity
        if id(i) not in self._requests:
            self._requests[id(i)] = (i.chain if i.chain is not None else REQUEST_ONLY, i)

    def add_tool(self, t: ToolEvent) -> None:
        i = t.identity
        key = id(i) if t.has_context else -id(i)
        if key not in self._tools:
            chain = i.chain if (t.has_context and i.chain is not None) else UNATTRIBUTED
            self._tools[key] = (chain, i)

    def sessions(self) -> dict[str, _SessionInfo]:
        """Per session: the first non-null parent, run and type seen (requests first, then tools)."""
        seen = dict(self._requests)
        for key, value in self._tools.items():
            seen.setdefault(key, value)
        info: dict[str, _SessionInfo] = {}
        for sid, i in seen.values():
            anonymous = sid in ANONYMOUS_SESSIONS
            cur = info.get(sid)
            if cur is None:
                info[sid] = _SessionInfo(
                    None if anonymous else i.parent, i.group, i.workload, i.era.value if not anonymous else None
                )
                continue
            if cur.parent is None and not anonymous:
                cur.parent = i.parent
            if cur.run_id is None:
                cur.run_id = i.group
            if cur.session_type is None:
                cur.session_type = i.workload
        # A parent named by a child but never seen itself is still a session (with no rows).
        for sid in list(info):
            p = info[sid].parent
            if p is not None and p not in info:
                info[p] = _SessionInfo(None, info[sid].run_id, None, info[sid].era)
        return info


def _roots(info: dict[str, _SessionInfo]) -> tuple[dict[str, str], dict[str, int]]:
    """Root and depth of every session; a parent cycle is cut where it closes."""
    root: dict[str, str] = {}
    depth: dict[str, int] = {}
    for sid in info:
        path: list[str] = []
        on_path: set[str] = set()
        cur: str | None = sid
        while cur is not None and cur not in root and cur not in on_path:
            path.append(cur)
            on_path.add(cur)
            cur = info[cur].parent
        if cur is None or cur in on_path:  # reached a root, or closed a cycle at `cur`
            top = path[-1] if cur is None else cur
            base_root, base_depth = top, -1
            if cur is not None:  # cycle: `cur` becomes the root, its parent link is ignored
                info[cur].parent = None
                path = path[: path.index(cur) + 1]
        else:
            base_root, base_depth = root[cur], depth[cur]
        for offset, node in enumerate(reversed(path)):
            root[node] = base_root
            depth[node] = base_depth + 1 + offset
    return root, depth


def _union_ms(intervals: pl.DataFrame, name: str) -> pl.DataFrame:
    """Per `session_code`, the total length in ms of the union of [start_us, end_us) intervals."""
    if intervals.height == 0:
        return pl.DataFrame(schema={_CODE: pl.UInt32, name: pl.Float64})
    blocks = (
        intervals.sort(_CODE, "start_us")
        .with_columns(reach=pl.col("end_us").cum_max().shift(1).over(_CODE))
        .with_columns(block=(pl.col("reach").is_null() | (pl.col("start_us") > pl.col("reach"))).cum_sum())
        .group_by(_CODE, "block")
        .agg(pl.col("start_us").min(), pl.col("end_us").max())
    )
    return blocks.group_by(_CODE).agg(((pl.col("end_us") - pl.col("start_us")).sum() / 1000.0).alias(name))


def sessions_frame(
    info: dict[str, _SessionInfo], codes: Codes, requests: pl.DataFrame, tools: pl.DataFrame
) -> pl.DataFrame:
    """The table, from the sessions' identities and the `requests` and `tools` tables, whose
    `session_code` is `codes(session_id)` (sessions are grouped by that integer, not the id)."""
    root, depth = _roots(info)
    ids = list(info)
    base = pl.DataFrame(
        {
            "session_id": ids,
            "parent_session_id": [info[s].parent for s in ids],
            "root_session_id": [root[s] for s in ids],
            "depth": [depth[s] for s in ids],
            "session_type": [info[s].session_type for s in ids],
            "run_id": [info[s].run_id for s in ids],
            "era": [info[s].era for s in ids],
            "anonymous": [s in ANONYMOUS_SESSIONS for s in ids],
            _CODE: [codes(s) for s in ids],
        },
        schema={
            "session_id": pl.String, "parent_session_id": pl.String, "root_session_id": pl.String,
            "depth": pl.UInt32, "session_type": pl.String, "run_id": pl.String, "era": pl.String,
            "anonymous": pl.Boolean, _CODE: pl.UInt32,
        },
    )
    llm = requests.select(_CODE, "start_us", "end_us")
    closed = tools.filter(pl.col("end_us").is_not_null()).select(_CODE, "start_us", "end_us")
    both = pl.concat([llm, closed])
    bounds = both.group_by(_CODE).agg(pl.col("start_us").min(), pl.col("end_us").max())

    req_stats = requests.group_by(_CODE).agg(
        request_count=pl.len().cast(pl.UInt32),
        cancelled_count=pl.col("cancelled").sum().cast(pl.UInt32),
        input_tokens=pl.col("input_tokens").sum(),
        output_tokens=pl.col("output_tokens").sum(),
    )
    tool_stats = tools.group_by(_CODE).agg(
        tool_count=pl.len().cast(pl.UInt32),
        inferred_tool_count=pl.col("inferred").sum().cast(pl.UInt32),
        tool_error_count=(pl.col("status") == "error").sum().cast(pl.UInt32),
        unclosed_tool_count=pl.col("unclosed").sum().cast(pl.UInt32),
    )
    parents = Counter(info[s].parent for s in ids if info[s].parent is not None)
    children = pl.DataFrame(
        {_CODE: [codes(p) for p in parents], "subagent_count": list(parents.values())},
        schema={_CODE: pl.UInt32, "subagent_count": pl.UInt32},
    )
    # Tree bounds: every session's bounds counted towards itself and each of its ancestors.
    anc_s: list[int] = []
    anc_a: list[int] = []
    for s in ids:
        code = codes(s)
        cur: str | None = s
        while cur is not None:
            anc_s.append(code)
            anc_a.append(codes(cur))
            cur = info[cur].parent
    ancestry = pl.DataFrame({_CODE: anc_s, "ancestor": anc_a}, schema={_CODE: pl.UInt32, "ancestor": pl.UInt32})
    tree = (
        ancestry.join(bounds, on=_CODE)
        .group_by("ancestor")
        .agg(tree_start_us=pl.col("start_us").min(), tree_end_us=pl.col("end_us").max())
        .rename({"ancestor": _CODE})
    )
    descendants = (
        ancestry.filter(pl.col(_CODE) != pl.col("ancestor"))
        .group_by("ancestor").agg(descendant_count=pl.len().cast(pl.UInt32))
        .rename({"ancestor": _CODE})
    )

    df = base
    for other in (
        bounds,
        _union_ms(llm, "llm_ms"),
        _union_ms(closed, "tool_ms"),
        _union_ms(both, "busy_ms"),
        req_stats,
        tool_stats,
        children,
        tree,
        descendants,
    ):
        df = df.join(other, on=_CODE, how="left", maintain_order="left")
    zero_counts = [
        "request_count", "cancelled_count", "tool_count", "inferred_tool_count", "tool_error_count",
        "unclosed_tool_count", "subagent_count", "descendant_count",
    ]
    has_span = pl.col("start_us").is_not_null()
    df = df.with_columns(
        [pl.col(c).fill_null(0) for c in zero_counts]
        + [pl.when(has_span).then(pl.col(c).fill_null(0.0)).alias(c) for c in ("llm_ms", "tool_ms", "busy_ms")]
    ).with_columns(
        wall_ms=(pl.col("end_us") - pl.col("start_us")) / 1000.0,
        tree_wall_ms=(pl.col("tree_end_us") - pl.col("tree_start_us")) / 1000.0,
        start=pl.col("start_us").cast(UTC_US),
        end=pl.col("end_us").cast(UTC_US),
    ).with_columns(
        # Integer µs, so the identity wall = busy + idle holds exactly up to float rounding.
        idle_ms=pl.col("wall_ms") - pl.col("busy_ms"),
    )
    order = [
        "session_id", "parent_session_id", "root_session_id", "depth", "session_type", "run_id", "era",
        "anonymous", "start_us", "end_us", "start", "end", "wall_ms", "llm_ms", "tool_ms", "idle_ms",
        "request_count", "tool_count", "subagent_count", "descendant_count", "inferred_tool_count",
        "tool_error_count", "unclosed_tool_count", "cancelled_count", "input_tokens", "output_tokens",
        "tree_start_us", "tree_end_us", "tree_wall_ms",
    ]
    return df.select(order).sort("tree_start_us", "depth", "start_us", "session_id", nulls_last=True)
