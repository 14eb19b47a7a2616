"""The `stages` table: long form, one row per request × stage, ordered by request then stage.

Columns: request_index, request_id, session_id, root_session_id, model, stage (`queue`,
`prefill`, `decode`), start_us, end_us (integer epoch µs), start, end (UTC datetimes),
duration_ms.

The intervals are the timeline's (`timeline.stage_intervals`, the one clamping rule the layouts
draw): stages are clamped inside their request and never overlap. The table adds two things
the timeline does not need, so that when `ttft_ms` is known the stages tile it exactly:

* a stage is present exactly when the request reports it (queue: `prefill_wait_time_ms`;
  prefill: `prefill_time_ms` or `ttft_ms`; decode: `ttft_ms`), as a zero-length row at its
  place when clamping leaves it no time (the timeline draws no zero-length slice);
* when `ttft_ms` is known, prefill runs from the end of the queue to the first token. The
  timeline's prefill is `prefill_time_ms` long, rounded to µs independently of `ttft_ms`, so it
  can end a µs (or, when the producer's ttft includes more than wait + prefill, longer) before
  decode starts, and a request reporting `ttft_ms` without `prefill_time_ms` has no prefill
  slice there.

So queue is `[start, start + prefill_wait)`, prefill runs from there to the first token (or for
`prefill_time_ms` when there is no ttft), decode from the first token to the end.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..model import LlmRequest
from ..timeline import ms_to_us, stage_intervals
from ..timeline.bounds import STAGE_DECODE, STAGE_PREFILL, STAGE_WAIT
from .columns import ColumnBuffer, with_datetimes

STAGES = ("queue", "prefill", "decode")
_NAMES = {STAGE_WAIT: "queue", STAGE_PREFILL: "prefill", STAGE_DECODE: "decode"}
_SCHEMA: dict[str, Any] = {
    "request_index": pl.UInt32,
    "stage": pl.UInt8,  # STAGE_* codes until `frame`
    "start_us": pl.Int64,
    "end_us": pl.Int64,
}
_KEEP = ["request_index", "request_id", "session_id", "root_session_id", "model"]


def request_stages(r: LlmRequest, ts: int, dur: int) -> list[tuple[int, int, int]]:
    """(stage, start_us, end_us) of the rows `r` contributes (see the module docstring).

    Examples
    --------
    >>> r = LlmRequest(prefill_wait_ms=3.0006, prefill_ms=7.0006, ttft_ms=10.001, total_ms=100.0)
    >>> request_stages(r, 0, 100_000)  # wait + prefill round to 10_002 µs, ttft to 10_001
    [(1, 0, 3001), (2, 3001, 10001), (3, 10001, 100000)]
    >>> request_stages(LlmRequest(ttft_ms=50.0, total_ms=50.0), 0, 50_000)
    [(2, 0, 50000), (3, 50000, 50000)]
    """
    ttft = ms_to_us(r.ttft_ms) if r.ttft_ms is not None else None
    got = {stage: (start, start + d) for stage, start, d in stage_intervals(r, ts, dur, ttft)}
    out: list[tuple[int, int, int]] = []
    q_end = ts
    if r.prefill_wait_ms is not None:
        q_start, q_end = got.get(STAGE_WAIT, (ts, ts))
        out.append((STAGE_WAIT, q_start, q_end))
    if ttft is not None:
        decode = got.get(STAGE_DECODE)
        first_token = decode[0] if decode is not None else ts + dur  # no decode: ttft >= dur
        out.append((STAGE_PREFILL, q_end, first_token))
        out.append((STAGE_DECODE, first_token, ts + dur))
    elif r.prefill_ms is not None:
        p_start, p_end = got.get(STAGE_PREFILL, (q_end, q_end))
        out.append((STAGE_PREFILL, p_start, p_end))
    return out


class StageTable:
    """Streams the stage rows of each request (`add`), joined to their request in `frame`."""

    def __init__(self) -> None:
        self._buf = ColumnBuffer(_SCHEMA)
        self._add = self._buf.appenders()

    def add(self, index: int, r: LlmRequest, ts: int, dur: int) -> None:
        a_index, a_stage, a_start, a_end = self._add
        row_added = self._buf.row_added
        for stage, start, end in request_stages(r, ts, dur):
            a_index(index)
            a_stage(stage)
            a_start(start)
            a_end(end)
            row_added()

    def frame(self, requests: pl.DataFrame) -> pl.DataFrame:
        """The table, given the finished `requests` table (for the columns keyed by request)."""
        rows = self._buf.frame()
        # `request_index` is the row number of `requests`: a gather, not a join.
        keyed = requests.select(_KEEP).select(pl.all().gather(rows["request_index"]))
        out = pl.concat([keyed, rows.drop("request_index")], how="horizontal").with_columns(
            stage=pl.col("stage").replace_strict(_NAMES, return_dtype=pl.String)
        )
        out = with_datetimes(out).with_columns(duration_ms=(pl.col("end_us") - pl.col("start_us")) / 1000.0)
        return out.select(*_KEEP, "stage", "start_us", "end_us", "start", "end", "duration_ms")
