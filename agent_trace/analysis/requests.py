"""The `requests` table: one row per `request_end`, in input order (file, then line).

Columns, in order (units in the names; `*_us` are integer epoch µs, `start`/`end` their UTC
datetimes):

    request_index (UInt32, the row number: the key of `stages` and the critical path),
    request_id, x_request_id, session_id, parent_session_id, root_session_id, session_role,
    run_id, session_type, era, model, input_trigger, start_us, end_us, start, end,
    start_estimated, ttft_ms, total_ms, queue_ms, prefill_ms, decode_ms, itl_ms, tpot_ms,
    input_tokens, output_tokens, cached_tokens, kv_hit_rate, kv_transfer_ms, queue_depth,
    finish_reason, cancelled, prefill_worker_id, decode_worker_id (UInt64, exact),
    prefill_dp_rank, decode_dp_rank, tool_call_count, session_final, agent_schema,
    payload_complete, payload_drop_reason, message_count, hint_priority, hint_strict_priority,
    hint_osl, hint_speculative_prefill, hint_latency_sensitivity, file, line

(`parent_session_id`, `root_session_id` and `session_role` are attached by `tables` once the
sessions are known.)

* Bounds are `timeline.request_bounds` with the `request-start` fix: `end − total_time_ms` when
  `request_received_ms` is missing (`start_estimated` says so).
* `session_id` is the chain role of the record's identity era (trace-format.md §5.2), or
  `request-only` for requests without identity.
* `decode_ms = total_ms − ttft_ms`; `tpot_ms = decode_ms / (output_tokens − 1)` (AIPerf's
  definition), null for one output token or fewer.
* `cancelled`: finish metadata exists only since PR #9817 and never on identity-less rows
  (§6.1), so only where the trace writes it anywhere does its absence on a row with identity
  mean a client cancel; otherwise null.
* `request_payload` rows are joined on `request_id` (the last one wins when a request has
  several; payloads of requests without a `request_end` are in no table). The agent hints
  (trace-format.md §9) keep only values of the type Dynamo accepts; all payload columns are
  null without a payload row.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..model import LlmRequest, RequestPayload
from ..timeline import request_bounds
from .columns import (
    CODED,
    REQUEST_ONLY,
    ColumnBuffer,
    IdentityCodes,
    joined_columns,
    str_or_none,
    u64,
    with_datetimes,
)

REQUEST_SCHEMA: dict[str, Any] = {
    "request_index": pl.UInt32,
    "request_id": pl.String,
    "x_request_id": pl.String,
    "model": CODED,
    "input_trigger": CODED,
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
    "finish_reason": CODED,
    "cancelled": pl.Boolean,  # provisional: `finish is None` on rows with identity (see `frame`)
    "prefill_worker_id": pl.UInt64,
    "decode_worker_id": pl.UInt64,
    "prefill_dp_rank": pl.Int64,
    "decode_dp_rank": pl.Int64,
    "tool_call_count": pl.UInt32,
    "session_final": pl.Boolean,
    "agent_schema": pl.Boolean,
    "file": pl.UInt32,
    "line": pl.UInt32,
    "ident": pl.UInt32,  # session_id, run_id, session_type, era: an `IdentityCodes` code
}

_ORDER = [
    "request_index", "request_id", "x_request_id", "session_id", "run_id", "session_type", "era",
    "model", "input_trigger", "start_us", "end_us", "start", "end", "start_estimated",
    "ttft_ms", "total_ms", "queue_ms", "prefill_ms", "decode_ms", "itl_ms", "tpot_ms",
    "input_tokens", "output_tokens", "cached_tokens", "kv_hit_rate", "kv_transfer_ms", "queue_depth",
    "finish_reason", "cancelled", "prefill_worker_id", "decode_worker_id", "prefill_dp_rank",
    "decode_dp_rank", "tool_call_count", "session_final", "agent_schema", "file", "line", "ident", "session_code",
]

PAYLOAD_SCHEMA: dict[str, Any] = {
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
# hint -> accepted Python types, in the order of the hint columns above; a value of another type
# is left null, as Dynamo would have refused the request (trace-format.md §9).
_HINTS: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("priority", (int,)),
    ("strict_priority", (int,)),
    ("osl", (int,)),
    ("speculative_prefill", (bool,)),
    ("latency_sensitivity", (int, float)),
)


class RequestTable:
    """Streams `request_end` and `request_payload` records into the `requests` columns."""

    def __init__(self, idents: IdentityCodes) -> None:
        self._idents = idents
        self._buf = ColumnBuffer(REQUEST_SCHEMA)
        self._add = self._buf.appenders()
        self._payloads = ColumnBuffer(PAYLOAD_SCHEMA)
        self._add_payload = self._payloads.appenders()
        self._writes_finish = False

    def add(self, r: LlmRequest) -> tuple[int, int, int] | None:
        """Append `r`; returns its (request_index, start_us, dur_us), or None for a request with
        no time at all (the parser rejects those already; kept for direct callers)."""
        bounds = request_bounds(r, True)
        if bounds is None:
            return None
        ts, dur, estimated = bounds
        index = self._buf.height
        i = r.identity
        finish, worker = r.finish, r.worker
        if finish is not None:
            self._writes_finish = True
        (
            a_index, a_id, a_xid, a_model, a_trigger, a_start, a_dur, a_est, a_ttft, a_total, a_queue,
            a_prefill, a_itl, a_in, a_out, a_cached, a_kv, a_kvt, a_depth, a_reason, a_cancelled, a_pw,
            a_dw, a_pr, a_dr, a_calls, a_final, a_agent, a_file, a_line, a_ident,
        ) = self._add
        a_index(index)
        a_id(r.request_id)
        a_xid(r.x_request_id)
        a_model(r.model)
        a_trigger(r.input_trigger)
        a_start(ts)
        a_dur(dur)
        a_est(estimated)
        a_ttft(r.ttft_ms)
        a_total(r.total_ms)
        a_queue(r.prefill_wait_ms)
        a_prefill(r.prefill_ms)
        a_itl(r.avg_itl_ms)
        a_in(r.input_tokens)
        a_out(r.output_tokens)
        a_cached(r.cached_tokens)
        a_kv(r.kv_hit_rate)
        a_kvt(r.kv_transfer_ms)
        a_depth(r.queue_depth)
        a_reason(str_or_none(finish.get("finish_reason")) if finish else None)
        a_cancelled((finish is None) if r.has_context else None)
        if worker:
            a_pw(u64(worker.get("prefill_worker_id")))
            a_dw(u64(worker.get("decode_worker_id")))
            a_pr(worker.get("prefill_dp_rank"))
            a_dr(worker.get("decode_dp_rank"))
        else:
            a_pw(None)
            a_dw(None)
            a_pr(None)
            a_dr(None)
        a_calls(len(r.tool_calls))
        a_final(r.final)
        a_agent(r.agent_schema)
        a_file(r.file)
        a_line(r.line)
        a_ident(self._idents(i.chain if i.chain is not None else REQUEST_ONLY, i.group, i.workload, i.era.value))
        self._buf.row_added()
        return index, ts, dur

    def add_payload(self, pay: RequestPayload) -> None:
        if pay.request_id is None:
            return
        a_id, a_complete, a_reason, a_count, *a_hints = self._add_payload
        a_id(pay.request_id)
        a_complete(pay.payload_complete)
        a_reason(pay.drop_reason)
        a_count(pay.message_count)
        hints = pay.agent_hints or {}
        for (key, types), add in zip(_HINTS, a_hints, strict=True):
            v = hints.get(key)
            add(v if type(v) in types else None)  # exact types: True is no priority
        self._payloads.row_added()

    def frame(self, idents: pl.DataFrame) -> pl.DataFrame:
        """The `requests` table without the session lineage columns (see the module docstring),
        and with `ident` and `session_code` last; `idents` is `IdentityCodes.frame`."""
        df = self._buf.frame()
        df = pl.concat([df, idents.select(pl.all().gather(df["ident"]))], how="horizontal")
        total, ttft, out = pl.col("total_ms"), pl.col("ttft_ms"), pl.col("output_tokens")
        decode = total - ttft
        df = df.with_columns(
            end_us=pl.col("start_us") + pl.col("dur_us"),
            decode_ms=decode,
            tpot_ms=pl.when(out > 1).then(decode / (out - 1)).otherwise(None),
        )
        if not self._writes_finish:  # the producer never writes finish metadata: unknown
            df = df.with_columns(cancelled=pl.lit(None, pl.Boolean))
        df = with_datetimes(df).select(_ORDER)
        return self._with_payloads(df)

    def _with_payloads(self, requests: pl.DataFrame) -> pl.DataFrame:
        payloads = self._payloads.frame().unique(subset="request_id", keep="last", maintain_order=True)
        # Provenance stays last.
        return joined_columns(requests, "request_id", payloads, requests.columns.index("file"))
