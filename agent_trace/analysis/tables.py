"""Records to the four analysis tables (pure: records in, polars frames out).

    requests   one row per `request_end`
    tools      one row per tool call: harness spans (paired as the timeline pairs them) and calls
               inferred from `finish_reason_metadata.tool_calls`, with `inferred` saying which
    sessions   one row per session (chain): its parent, root, depth, times and counts
    stages     long form, one row per request × stage (queue, prefill, decode)

Rows of `requests` keep input order (file, then line; `request_index` is the row number and the
key `stages` and the critical path use); `tools` are ordered by start; `sessions` by the start of
their tree, parents before children.

Contracts the tests pin:

* Units are in column names (`_ms`, `_us`). Times are integer epoch microseconds (`start_us`,
  `end_us`, Int64) next to polars `Datetime("us", "UTC")` columns (`start`, `end`). Worker ids
  stay exact as `UInt64` (they exceed 2^63).
* `session_id` is the chain role of the record's identity era (trace-format.md §5.2). Requests
  without identity share the pseudo-session `request-only`, tool rows without one share
  `unattributed`; both are marked `anonymous` in `sessions`.
* Tools are paired and inferred by `agent_trace.spans` exactly as the timeline does with the
  `tool-pairing` and `inference` fixes, so a table row and a Perfetto slice describe the same span.
  An unclosed `tool_start` has a null `end_us` and `tool_ms`; a tool whose duration is unknown
  (an inferred call with no next request, a terminal row with no times) has `end_us == start_us`
  and a null `tool_ms`. Intervals (session times, the critical path) use closed tools only.
* Request starts use the `request-start` fix: `end − total_time_ms` when `request_received_ms`
  is missing (`start_estimated` says so).
* `request_payload` rows are joined to their request on `request_id` (the last one wins when a
  request has several; payloads of requests without a `request_end` are not in any table):
  `payload_complete`, `payload_drop_reason`, `message_count`, and the agent hints, which Dynamo
  writes nowhere else (trace-format.md §9): `hint_priority`, `hint_strict_priority`, `hint_osl`,
  `hint_speculative_prefill`, `hint_latency_sensitivity`. All null without a payload row.
* Stage slices are clamped inside their request, as on the timeline, so the stages of one
  request never overlap and, when `ttft_ms` is known, tile it exactly: queue is
  `[start, start + prefill_wait)`, prefill runs from there to the first token, decode from the first
  token to the end. A stage is present only when the request reports it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import polars as pl

from ..layout.upstream import RowMemo, request_bounds
from ..model import Era, LlmRequest, Records, RequestPayload, ToolEvent
from ..spans import PlacedRequest, infer_tools, pair_tools

REQUEST_ONLY = "request-only"
UNATTRIBUTED = "unattributed"
ANONYMOUS_SESSIONS = (REQUEST_ONLY, UNATTRIBUTED)
ROLE_ROOT, ROLE_SUBAGENT, ROLE_ANONYMOUS = "root", "subagent", "anonymous"

# A tool row that starts within this much of the end of the request that asked for it still
# belongs to it: request ends are computed in µs from ms fields, tool times come in whole ms.
JOIN_TOLERANCE_US = 1_000
_U64_MAX = (1 << 64) - 1

UTC_US = pl.Datetime("us", "UTC")


@dataclass(frozen=True, slots=True)
class Tables:
    requests: pl.DataFrame
    tools: pl.DataFrame
    sessions: pl.DataFrame
    stages: pl.DataFrame


def build_tables(records: Records) -> Tables:
    """All four tables from parsed records.

    Examples
    --------
    >>> from agent_trace.convert import records_from_objects
    >>> rec = {"schema": "dynamo.request.trace.v1", "event_type": "request_end",
    ...        "event_time_unix_ms": 1000, "agent_context": {"session_id": "s"},
    ...        "request": {"request_id": "r1", "request_received_ms": 900, "ttft_ms": 20.0,
    ...                    "total_time_ms": 100.0, "output_tokens": 11}}
    >>> records, _ = records_from_objects([rec])
    >>> t = build_tables(records)
    >>> t.requests.select("request_id", "session_id", "start_us", "ttft_ms", "decode_ms", "tpot_ms").row(0)
    ('r1', 's', 900000, 20.0, 80.0, 8.0)
    >>> t.sessions.select("session_id", "depth", "wall_ms", "llm_ms", "idle_ms").row(0)
    ('s', 0, 100.0, 100.0, 0.0)
    """
    rows = RowMemo()
    req_cols, placed, call_owner = _request_columns(records.requests, rows)
    tool_cols = _tool_columns(records.tools, placed, call_owner, rows)
    session_info = _session_identities(records.requests, records.tools)

    requests = _with_payloads(_requests_frame(req_cols), records.payloads)
    tools = _tools_frame(tool_cols)
    sessions = _sessions_frame(session_info, requests, tools)
    lookup = sessions.select("session_id", "parent_session_id", "root_session_id", "depth")
    role = (
        pl.when(pl.col("session_id").is_in(ANONYMOUS_SESSIONS)).then(pl.lit(ROLE_ANONYMOUS))
        .when(pl.col("depth") == 0).then(pl.lit(ROLE_ROOT))
        .otherwise(pl.lit(ROLE_SUBAGENT))
        .alias("session_role")
    )

    def attach(df: pl.DataFrame, after: str) -> pl.DataFrame:
        joined = df.join(lookup, on="session_id", how="left", maintain_order="left")
        joined = joined.with_columns(role).drop("depth")
        cols = df.columns
        at = cols.index(after) + 1
        return joined.select(cols[:at] + ["parent_session_id", "root_session_id", "session_role"] + cols[at:])

    requests = attach(requests, "session_id")
    tools = attach(tools, "session_id")
    stages = _stages_frame(requests)
    return Tables(requests, tools, sessions, stages)


# -- requests ------------------------------------------------------------------------------------

_REQUEST_SCHEMA: dict[str, Any] = {
    "request_index": pl.UInt32,
    "request_id": pl.String,
    "x_request_id": pl.String,
    "session_id": pl.String,
    "run_id": pl.String,
    "session_type": pl.String,
    "era": pl.String,
    "model": pl.String,
    "input_trigger": pl.String,
    "start_us": pl.Int64,
    "dur_us": pl.Int64,
    "start_estimated": pl.Boolean,
    "ttft_ms": pl.Float64,
    "total_ms": pl.Float64,
    "queue_ms": pl.Float64,
    "prefill_ms": pl.Float64,
    "itl_ms": pl.Float64,
    "input_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "cached_tokens": pl.Int64,
    "kv_hit_rate": pl.Float64,
    "kv_transfer_ms": pl.Float64,
    "queue_depth": pl.Int64,
    "finish_reason": pl.String,
    "cancelled": pl.Boolean,
    "prefill_worker_id": pl.UInt64,
    "decode_worker_id": pl.UInt64,
    "prefill_dp_rank": pl.Int64,
    "decode_dp_rank": pl.Int64,
    "tool_call_count": pl.UInt32,
    "session_final": pl.Boolean,
    "agent_schema": pl.Boolean,
    "file": pl.UInt32,
    "line": pl.UInt32,
}


def _u64(v: Any) -> int | None:
    return v if type(v) is int and 0 <= v <= _U64_MAX else None


def _request_columns(
    requests: list[LlmRequest], rows: RowMemo
) -> tuple[dict[str, list[Any]], list[PlacedRequest], dict[tuple[Hashable, str], list[tuple[int, str | None]]]]:
    kept: list[LlmRequest] = []
    starts: list[int] = []
    durs: list[int] = []
    estimated: list[bool] = []
    placed: list[PlacedRequest] = []
    for r in requests:
        bounds = request_bounds(r, True)
        if bounds is None:  # the parser rejects these already; kept for direct callers
            continue
        ts, dur, est = bounds
        kept.append(r)
        starts.append(ts)
        durs.append(dur)
        estimated.append(est)
        row = rows.request(r)
        # Inference exists only for request-schema rows, as on the timeline (upstream RT2+).
        if not r.agent_schema:
            placed.append(PlacedRequest(r, row, row[1], ts, dur, est))

    # Which request asked for each tool call: (row, call id) -> [(request end, request id)].
    call_owner: dict[tuple[Hashable, str], list[tuple[int, str | None]]] = {}
    for r, ts, dur in zip(kept, starts, durs, strict=True):
        if r.tool_calls:
            row = rows.request(r)
            for call in r.tool_calls:
                if call.id is not None:
                    call_owner.setdefault((row, str(call.id)), []).append((ts + dur, r.request_id))

    # Finish metadata exists only since PR #9817 and never on identity-less rows (§6.1): only
    # where the producer writes it does its absence mean a client cancel.
    writes_finish = any(r.finish is not None for r in kept)
    workers = [dict(r.worker) if r.worker else {} for r in kept]
    idents = [r.identity for r in kept]
    cols: dict[str, list[Any]] = {
        "request_index": list(range(len(kept))),
        "request_id": [r.request_id for r in kept],
        "x_request_id": [r.x_request_id for r in kept],
        "session_id": [i.chain if i.chain is not None else REQUEST_ONLY for i in idents],
        "run_id": [i.group for i in idents],
        "session_type": [i.workload for i in idents],
        "era": [i.era.value for i in idents],
        "model": [r.model for r in kept],
        "input_trigger": [r.input_trigger for r in kept],
        "start_us": starts,
        "dur_us": durs,
        "start_estimated": estimated,
        "ttft_ms": [r.ttft_ms for r in kept],
        "total_ms": [r.total_ms for r in kept],
        "queue_ms": [r.prefill_wait_ms for r in kept],
        "prefill_ms": [r.prefill_ms for r in kept],
        "itl_ms": [r.avg_itl_ms for r in kept],
        "input_tokens": [r.input_tokens for r in kept],
        "output_tokens": [r.output_tokens for r in kept],
        "cached_tokens": [r.cached_tokens for r in kept],
        "kv_hit_rate": [r.kv_hit_rate for r in kept],
        "kv_transfer_ms": [r.kv_transfer_ms for r in kept],
        "queue_depth": [r.queue_depth for r in kept],
        "finish_reason": [_str_or_none(r.finish.get("finish_reason")) if r.finish else None for r in kept],
        "cancelled": [
            (r.finish is None) if (writes_finish and r.has_context) else None for r in kept
        ],
        "prefill_worker_id": [_u64(w.get("prefill_worker_id")) for w in workers],
        "decode_worker_id": [_u64(w.get("decode_worker_id")) for w in workers],
        "prefill_dp_rank": [w.get("prefill_dp_rank") for w in workers],
        "decode_dp_rank": [w.get("decode_dp_rank") for w in workers],
        "tool_call_count": [len(r.tool_calls) for r in kept],
        "session_final": [r.final for r in kept],
        "agent_schema": [r.agent_schema for r in kept],
        "file": [r.file for r in kept],
        "line": [r.line for r in kept],
    }
    return cols, placed, call_owner


def _str_or_none(v: Any) -> str | None:
    return v if v is None or type(v) is str else str(v)


def _requests_frame(cols: dict[str, list[Any]]) -> pl.DataFrame:
    df = pl.DataFrame(cols, schema=_REQUEST_SCHEMA, strict=False)
    total, ttft, out = pl.col("total_ms"), pl.col("ttft_ms"), pl.col("output_tokens")
    decode = total - ttft
    df = df.with_columns(
        end_us=pl.col("start_us") + pl.col("dur_us"),
        decode_ms=decode,
        # TPOT: time per output token after the first (AIPerf's definition).
        tpot_ms=pl.when(out > 1).then(decode / (out - 1)).otherwise(None),
    ).with_columns(
        start=pl.col("start_us").cast(UTC_US),
        end=pl.col("end_us").cast(UTC_US),
    )
    order = [
        "request_index", "request_id", "x_request_id", "session_id", "run_id", "session_type", "era",
        "model", "input_trigger", "start_us", "end_us", "start", "end", "start_estimated",
        "ttft_ms", "total_ms", "queue_ms", "prefill_ms", "decode_ms", "itl_ms", "tpot_ms",
        "input_tokens", "output_tokens", "cached_tokens", "kv_hit_rate", "kv_transfer_ms", "queue_depth",
        "finish_reason", "cancelled", "prefill_worker_id", "decode_worker_id", "prefill_dp_rank",
        "decode_dp_rank", "tool_call_count", "session_final", "agent_schema", "file", "line",
    ]
    return df.select(order)


_PAYLOAD_SCHEMA: dict[str, Any] = {
    "request_id": pl.String,
    "payload_complete": pl.Boolean,
    "payload_drop_reason": pl.String,
    "message_count": pl.Int64,
    "hint_priority": pl.Int64,
    "hint_strict_priority": pl.Int64,
    "hint_osl": pl.Int64,
    "hint_speculative_prefill": pl.Boolean,
    "hint_latency_sensitivity": pl.Float64,
}
# hint -> (column, accepted Python types); a value of another type is left null, as Dynamo
# would have refused the request (trace-format.md §9).
_HINTS = {
    "priority": ("hint_priority", (int,)),
    "strict_priority": ("hint_strict_priority", (int,)),
    "osl": ("hint_osl", (int,)),
    "speculative_prefill": ("hint_speculative_prefill", (bool,)),
    "latency_sensitivity": ("hint_latency_sensitivity", (int, float)),
}


def _with_payloads(requests: pl.DataFrame, payloads: list[RequestPayload]) -> pl.DataFrame:
    """`requests` with the payload columns joined on request_id (see the module docstring)."""
    cols: dict[str, list[Any]] = {name: [] for name in _PAYLOAD_SCHEMA}
    for pay in payloads:
        if pay.request_id is None:
            continue
        cols["request_id"].append(pay.request_id)
        cols["payload_complete"].append(pay.payload_complete)
        cols["payload_drop_reason"].append(pay.drop_reason)
        cols["message_count"].append(pay.message_count)
        hints = pay.agent_hints or {}
        for key, (column, types) in _HINTS.items():
            v = hints.get(key)
            cols[column].append(v if type(v) in types else None)  # exact types: True is no priority
    frame = pl.DataFrame(cols, schema=_PAYLOAD_SCHEMA, strict=False).unique(
        subset="request_id", keep="last", maintain_order=True
    )
    joined = requests.join(frame, on="request_id", how="left", maintain_order="left")
    at = requests.columns.index("file")  # provenance stays last
    added = list(_PAYLOAD_SCHEMA)[1:]
    return joined.select(requests.columns[:at] + added + requests.columns[at:])


# -- tools ---------------------------------------------------------------------------------------

_TOOL_SCHEMA: dict[str, Any] = {
    "tool_call_id": pl.String,
    "tool_class": pl.String,
    "status": pl.String,
    "phase": pl.String,
    "session_id": pl.String,
    "run_id": pl.String,
    "session_type": pl.String,
    "era": pl.String,
    "start_us": pl.Int64,
    "end_us": pl.Int64,
    "tool_ms": pl.Float64,
    "reported_duration_ms": pl.Float64,
    "inferred": pl.Boolean,
    "unclosed": pl.Boolean,
    "duration_known": pl.Boolean,
    "source_request_id": pl.String,
    "error_type": pl.String,
    "output_bytes": pl.Int64,
    "output_tokens": pl.Int64,
    "tool_name_hash": pl.String,
    "file": pl.UInt32,
    "line": pl.UInt32,
}


def _source_request(
    owners: list[tuple[int, str | None]] | None, start_us: int
) -> str | None:
    """The request that asked for the call: the last one to end before the tool started."""
    if not owners:
        return None
    best = None
    for end, rid in owners:
        if end <= start_us + JOIN_TOLERANCE_US:
            best = rid
    return best if best is not None else owners[0][1]


def _tool_columns(
    tools: list[ToolEvent],
    placed: list[PlacedRequest],
    call_owner: dict[tuple[Hashable, str], list[tuple[int, str | None]]],
    rows: RowMemo,
) -> dict[str, list[Any]]:
    spans = pair_tools(tools, rows.tool, by_start_time=True)
    inferred = infer_tools(placed, tools, rows.tool, any_harness_row_suppresses=True)
    for owners in call_owner.values():
        owners.sort(key=lambda o: o[0])

    # Column by column over the spans (a comprehension per column beats a loop of appends).
    events = [s.event for s in spans]
    ctx = [t.has_context for t in events]
    idents = [t.identity for t in events]
    starts = [s.ts for s in spans]
    ends: list[int | None] = []
    ms: list[float | None] = []
    known: list[bool] = []
    for s in spans:
        if s.instant:  # an unclosed tool_start: we know when it began, not when (or if) it ended
            ends.append(None)
            ms.append(None)
            known.append(False)
        elif s.synthetic:  # no times at all: a point at the event, duration unknown
            ends.append(s.ts)
            ms.append(None)
            known.append(False)
        else:
            ends.append(s.ts + s.dur)
            ms.append(s.dur / 1000.0)
            known.append(True)
    get_owner = call_owner.get
    cols: dict[str, list[Any]] = {
        "tool_call_id": [t.tool_call_id for t in events],
        "tool_class": [
            t.tool_class if t.tool_class is not None or s.start is None else s.start.tool_class
            for t, s in zip(events, spans, strict=True)
        ],
        "status": [
            t.status if t.status is not None else ("running" if s.instant else None)
            for t, s in zip(events, spans, strict=True)
        ],
        "phase": [t.phase.value for t in events],
        "session_id": [
            i.chain if (c and i.chain is not None) else UNATTRIBUTED for i, c in zip(idents, ctx, strict=True)
        ],
        "run_id": [i.group for i in idents],
        "session_type": [i.workload for i in idents],
        "era": [i.era.value if c else Era.NONE.value for i, c in zip(idents, ctx, strict=True)],
        "start_us": starts,
        "end_us": ends,
        "tool_ms": ms,
        "reported_duration_ms": [t.duration_ms for t in events],
        "inferred": [False] * len(spans),
        "unclosed": [s.instant for s in spans],
        "duration_known": known,
        "source_request_id": [
            _source_request(get_owner((s.row, t.tool_call_id)), s.ts) if t.tool_call_id is not None else None
            for t, s in zip(events, spans, strict=True)
        ],
        "error_type": [t.error_type for t in events],
        "output_bytes": [t.output_bytes for t in events],
        "output_tokens": [t.output_tokens for t in events],
        "tool_name_hash": [t.tool_name_hash for t in events],
        "file": [t.file for t in events],
        "line": [t.line for t in events],
    }
    add = {k: v.append for k, v in cols.items()}
    for inf in inferred:
        r = inf.request
        i = r.identity
        add["tool_call_id"](_str_or_none(inf.call.id))
        add["tool_class"](_str_or_none(inf.call.name))
        add["status"](None)
        add["phase"](None)
        add["session_id"](i.chain if i.chain is not None else REQUEST_ONLY)
        add["run_id"](i.group)
        add["session_type"](i.workload)
        add["era"](i.era.value)
        add["start_us"](inf.ts)
        if inf.duration_unknown:
            add["end_us"](inf.ts)
            add["tool_ms"](None)
        else:
            add["end_us"](inf.ts + inf.dur)
            add["tool_ms"](inf.dur / 1000.0)
        add["reported_duration_ms"](None)
        add["inferred"](True)
        add["unclosed"](False)
        add["duration_known"](not inf.duration_unknown)
        add["source_request_id"](r.request_id)
        add["error_type"](None)
        add["output_bytes"](None)
        add["output_tokens"](None)
        add["tool_name_hash"](None)
        add["file"](r.file)
        add["line"](r.line)
    return cols


def _tools_frame(cols: dict[str, list[Any]]) -> pl.DataFrame:
    df = pl.DataFrame(cols, schema=_TOOL_SCHEMA, strict=False)
    df = df.sort("start_us", "file", "line", "inferred", maintain_order=True)
    df = df.with_columns(start=pl.col("start_us").cast(UTC_US), end=pl.col("end_us").cast(UTC_US))
    order = [
        "tool_call_id", "tool_class", "status", "phase", "session_id", "run_id", "session_type", "era",
        "start_us", "end_us", "start", "end", "tool_ms", "reported_duration_ms", "inferred", "unclosed",
        "duration_known", "source_request_id", "error_type", "output_bytes", "output_tokens",
        "tool_name_hash", "file", "line",
    ]
    return df.select(order)


# -- sessions ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _SessionInfo:
    parent: str | None
    run_id: str | None
    session_type: str | None
    era: str | None


def _session_identities(requests: list[LlmRequest], tools: list[ToolEvent]) -> dict[str, _SessionInfo]:
    """Per session: the first non-null parent, run and type seen (requests first, then tools).

    Identities are interned by the parser, so this walks the distinct ones, not every record.
    """
    seen: dict[int, tuple[str, Any]] = {}
    for r in requests:
        i = r.identity
        if id(i) not in seen:
            seen[id(i)] = (i.chain if i.chain is not None else REQUEST_ONLY, i)
    for t in tools:
        i = t.identity
        key = -id(i) if not t.has_context else id(i)
        if key not in seen:
            chain = i.chain if (t.has_context and i.chain is not None) else UNATTRIBUTED
            seen[key] = (chain, i)
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


def _union_ms(intervals: pl.DataFrame, key: str, name: str) -> pl.DataFrame:
    """Per `key`, the total length in ms of the union of [start_us, end_us) intervals."""
    if intervals.height == 0:
        return pl.DataFrame(schema={key: pl.String, name: pl.Float64})
    blocks = (
        intervals.sort(key, "start_us")
        .with_columns(reach=pl.col("end_us").cum_max().shift(1).over(key))
        .with_columns(block=(pl.col("reach").is_null() | (pl.col("start_us") > pl.col("reach"))).cum_sum())
        .group_by(key, "block")
        .agg(pl.col("start_us").min(), pl.col("end_us").max())
    )
    return blocks.group_by(key).agg(((pl.col("end_us") - pl.col("start_us")).sum() / 1000.0).alias(name))


def _sessions_frame(
    info: dict[str, _SessionInfo], requests: pl.DataFrame, tools: pl.DataFrame
) -> pl.DataFrame:
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
        },
        schema={
            "session_id": pl.String, "parent_session_id": pl.String, "root_session_id": pl.String,
            "depth": pl.UInt32, "session_type": pl.String, "run_id": pl.String, "era": pl.String,
            "anonymous": pl.Boolean,
        },
    )
    llm = requests.select("session_id", "start_us", "end_us")
    closed = tools.filter(pl.col("end_us").is_not_null()).select("session_id", "start_us", "end_us")
    both = pl.concat([llm, closed])
    bounds = both.group_by("session_id").agg(pl.col("start_us").min(), pl.col("end_us").max())

    req_stats = requests.group_by("session_id").agg(
        request_count=pl.len().cast(pl.UInt32),
        cancelled_count=pl.col("cancelled").sum().cast(pl.UInt32),
        input_tokens=pl.col("input_tokens").sum(),
        output_tokens=pl.col("output_tokens").sum(),
    )
    tool_stats = tools.group_by("session_id").agg(
        tool_count=pl.len().cast(pl.UInt32),
        inferred_tool_count=pl.col("inferred").sum().cast(pl.UInt32),
        tool_error_count=(pl.col("status") == "error").sum().cast(pl.UInt32),
        unclosed_tool_count=pl.col("unclosed").sum().cast(pl.UInt32),
    )
    children = (
        base.filter(pl.col("parent_session_id").is_not_null())
        .group_by("parent_session_id")
        .agg(subagent_count=pl.len().cast(pl.UInt32))
        .rename({"parent_session_id": "session_id"})
    )
    # Tree bounds: every session's bounds counted towards itself and each of its ancestors.
    anc_s: list[str] = []
    anc_a: list[str] = []
    for s in ids:
        cur: str | None = s
        while cur is not None:
            anc_s.append(s)
            anc_a.append(cur)
            cur = info[cur].parent
    ancestry = pl.DataFrame({"session_id": anc_s, "ancestor": anc_a}, schema={"session_id": pl.String, "ancestor": pl.String})
    tree = (
        ancestry.join(bounds, on="session_id")
        .group_by("ancestor")
        .agg(tree_start_us=pl.col("start_us").min(), tree_end_us=pl.col("end_us").max())
        .rename({"ancestor": "session_id"})
    )
    descendants = (
        ancestry.filter(pl.col("session_id") != pl.col("ancestor"))
        .group_by("ancestor").agg(descendant_count=pl.len().cast(pl.UInt32))
        .rename({"ancestor": "session_id"})
    )

    df = base
    for other in (
        bounds,
        _union_ms(llm, "session_id", "llm_ms"),
        _union_ms(closed, "session_id", "tool_ms"),
        _union_ms(both, "session_id", "busy_ms"),
        req_stats,
        tool_stats,
        children,
        tree,
        descendants,
    ):
        df = df.join(other, on="session_id", how="left", maintain_order="left")
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


# -- stages --------------------------------------------------------------------------------------

STAGES = ("queue", "prefill", "decode")


def _us(ms: pl.Expr) -> pl.Expr:
    # Half-even rounding of ms × 1000, as `spans.ms_to_us` and the timeline do.
    return (ms * 1000.0).round(0, mode="half_to_even").cast(pl.Int64)


def _stages_frame(requests: pl.DataFrame) -> pl.DataFrame:
    """Long form: the clamped stage intervals of every request (see the module docstring)."""
    dur = pl.col("end_us") - pl.col("start_us")
    zero = pl.lit(0, pl.Int64)
    b = pl.min_horizontal(pl.max_horizontal(_us(pl.col("ttft_ms")), zero), dur)
    boundary = pl.when(pl.col("ttft_ms").is_null()).then(dur).otherwise(b)
    base = requests.select(
        "request_index", "request_id", "session_id", "root_session_id", "model", "start_us", "end_us",
        has_ttft=pl.col("ttft_ms").is_not_null(),
        has_wait=pl.col("queue_ms").is_not_null(),
        has_prefill=pl.col("prefill_ms").is_not_null(),
        boundary=boundary,
        wait=_us(pl.col("queue_ms")),
        pre=_us(pl.col("prefill_ms")),
    ).with_columns(
        q=pl.when(pl.col("has_wait"))
        .then(pl.min_horizontal(pl.max_horizontal(pl.col("wait"), zero), pl.col("boundary")))
        .otherwise(zero),
    ).with_columns(
        p_end=pl.when(pl.col("has_ttft")).then(pl.col("boundary"))
        .when(pl.col("has_prefill"))
        .then(pl.col("q") + pl.min_horizontal(pl.max_horizontal(pl.col("pre"), zero), pl.col("boundary") - pl.col("q")))
        .otherwise(pl.col("q")),
    )
    keep = ["request_index", "request_id", "session_id", "root_session_id", "model"]
    s0 = pl.col("start_us")
    queue = base.filter(pl.col("has_wait")).select(
        *keep, stage=pl.lit("queue"), start_us=s0, end_us=s0 + pl.col("q"))
    prefill = base.filter(pl.col("has_prefill") | pl.col("has_ttft")).select(
        *keep, stage=pl.lit("prefill"), start_us=s0 + pl.col("q"), end_us=s0 + pl.col("p_end"))
    decode = base.filter(pl.col("has_ttft")).select(
        *keep, stage=pl.lit("decode"), start_us=s0 + pl.col("boundary"), end_us=pl.col("end_us"))
    order = pl.col("stage").replace_strict({s: i for i, s in enumerate(STAGES)}, return_dtype=pl.UInt8)
    out = (
        pl.concat([queue, prefill, decode])
        .with_columns(stage_order=order)
        .sort("request_index", "stage_order")
        .drop("stage_order")
        .with_columns(
            duration_ms=(pl.col("end_us") - pl.col("start_us")) / 1000.0,
            start=pl.col("start_us").cast(UTC_US),
            end=pl.col("end_us").cast(UTC_US),
        )
    )
    return out.select(*keep, "stage", "start_us", "end_us", "start", "end", "duration_ms")
