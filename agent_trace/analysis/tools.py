"""The `tools` table: one row per tool call, ordered by start (then file, line, harness first).

Columns: tool_call_id, tool_class, status, phase, session_id, parent_session_id,
root_session_id, session_role, run_id, session_type, era, start_us, end_us (integer epoch µs),
start, end (UTC), tool_ms, reported_duration_ms, inferred, unclosed, duration_known,
source_request_id, error_type, output_bytes, output_tokens, tool_name_hash, file, line.
(The lineage columns are attached by `tables`.)

Rows are harness spans, paired by `timeline.pair_tools` as the timeline pairs them with the
`tool-pairing` fix, then the calls `timeline.infer_tools` infers from
`finish_reason_metadata.tool_calls` as the timeline does with the `inference` fix (`inferred`
says which), so a row and a Perfetto slice describe the same span.

* An unclosed `tool_start` has a null `end_us` and `tool_ms` and status `running` when it has
  none; a tool whose duration is unknown (an inferred call with no next request, a terminal row
  with no times) has `end_us == start_us` and a null `tool_ms`.
* `session_id` is the chain of the row's identity, or `unattributed` for a harness row without
  agent context; an inferred call has its request's session, era, file and line.
* `source_request_id` is the request that asked for the call: of the requests on the same row
  that list its id, the last to end before the tool started (within `JOIN_TOLERANCE_US`), else
  the first to end.

While streaming, every record goes straight into columns, with the few values pairing and
inference read (row, times, phase; a request's row, bounds and calls). Tools of different rows
never pair and calls never infer across rows, so `frame` pairs and infers a batch of rows at a
time, the records of only that batch rebuilt as the small objects `timeline` takes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from operator import attrgetter
from typing import Any, cast

import polars as pl

from ..model import Era, LlmRequest, ToolCall, ToolEvent, ToolPhase
from ..timeline import InferredTool, PlacedRequest, ToolSpan, infer_tools, pair_tools
from .columns import CODED, UNATTRIBUTED, ColumnBuffer, IdentityCodes, str_or_none, with_datetimes

# A tool row that starts within this much of the end of the request that asked for it still
# belongs to it: request ends are computed in µs from ms fields, tool times come in whole ms.
JOIN_TOLERANCE_US = 1_000

BATCH_RECORDS = 1 << 16  # tool events + requests rebuilt as objects at a time, in `frame`

_OWN: dict[str, Any] = {  # a harness row's own columns
    "tool_call_id": pl.String,
    "tool_class": CODED,
    "status": CODED,
    "phase": CODED,
    "reported_duration_ms": pl.Float64,
    "error_type": CODED,
    "output_bytes": pl.Int64,
    "output_tokens": pl.Int64,
    "tool_name_hash": pl.String,
    "file": pl.UInt32,
    "line": pl.UInt32,
}
_EVENT_SCHEMA: dict[str, Any] = {  # one row per tool event: its own columns, then what pairing reads
    **_OWN,
    "ident": pl.UInt32,  # session_id, run_id, session_type, era: an `IdentityCodes` code
    "row_id": pl.UInt32,
    "phase_code": pl.UInt8,
    "event_time_ms": pl.Float64,
    "started_ms": pl.Float64,
    "ended_ms": pl.Float64,
}
_CALL_SCHEMA: dict[str, Any] = {  # one row per tool call a request lists, in input order
    "request_index": pl.UInt32,
    "row_id": pl.UInt32,
    "call_id": pl.String,
    "call_name": CODED,
}
_SPAN_SCHEMA: dict[str, Any] = {
    "k": pl.UInt32,
    "k_start": pl.UInt32,
    "start_us": pl.Int64,
    "end_us": pl.Int64,
    "tool_ms": pl.Float64,
    "unclosed": pl.Boolean,
    "duration_known": pl.Boolean,
    "source_request_id": pl.String,
}
_INFERRED_SCHEMA: dict[str, Any] = {
    "request_index": pl.UInt32,
    "tool_call_id": pl.String,
    "tool_class": pl.String,
    "start_us": pl.Int64,
    "end_us": pl.Int64,
    "tool_ms": pl.Float64,
    "duration_known": pl.Boolean,
}
ORDER = [
    "tool_call_id", "tool_class", "status", "phase", "session_id", "run_id", "session_type", "era",
    "start_us", "end_us", "start", "end", "tool_ms", "reported_duration_ms", "inferred", "unclosed",
    "duration_known", "source_request_id", "error_type", "output_bytes", "output_tokens",
    "tool_name_hash", "file", "line",
]
_PHASES = tuple(ToolPhase)
_PHASE_CODE = {p: i for i, p in enumerate(_PHASES)}


def _float(v: float | int | None) -> float | None:
    # Pairing converts times with float() anyway (timeline.ms_to_us); equality of start times
    # (retries) is exact below 2^53 ms.
    return None if v is None else float(v)


class _PairingEvent(ToolEvent, gc=False, kw_only=True):
    """A tool event rebuilt from its columns for pairing: its ordinal `k` and row id `row`."""

    k: int = 0
    row: int = 0


class _Calls(LlmRequest, gc=False, kw_only=True):
    """A request rebuilt for inference: its tool calls and `request_index`."""

    index: int = 0


_NO_CALLS = _Calls()  # every placed request without tool calls: inference only needs its times
_row_of = cast(Callable[[ToolEvent], Hashable], attrgetter("row"))


class ToolTable:
    """Streams tool events and requests into columns; pairs, infers and builds the table in `frame`."""

    def __init__(self, idents: IdentityCodes) -> None:
        self._idents = idents
        self._events = ColumnBuffer(_EVENT_SCHEMA)
        self._add_event = self._events.appenders()
        self._request_rows = ColumnBuffer({"row_id": pl.UInt32})  # by request_index
        self._add_request_row = self._request_rows.appenders()[0]
        self._calls = ColumnBuffer(_CALL_SCHEMA)
        self._add_call = self._calls.appenders()

    def add_request(self, r: LlmRequest, index: int, row_id: int) -> None:
        """Record the row and the tool calls of request `index` (the next one: they come in order)."""
        self._add_request_row(row_id)
        self._request_rows.row_added()
        if r.tool_calls:
            a_index, a_row, a_id, a_name = self._add_call
            row_added = self._calls.row_added
            for call in r.tool_calls:
                a_index(index)
                a_row(row_id)
                a_id(str_or_none(call.id))
                a_name(str_or_none(call.name))
                row_added()

    def add_tool(self, t: ToolEvent, row_id: int) -> None:
        i = t.identity
        ctx = t.has_context
        (
            a_id, a_class, a_status, a_phase, a_reported, a_error, a_bytes, a_tokens, a_hash, a_file,
            a_line, a_ident, a_row, a_code, a_time, a_started, a_ended,
        ) = self._add_event
        a_id(t.tool_call_id)
        a_class(t.tool_class)
        a_status(t.status)
        a_phase(t.phase.value)
        a_reported(_float(t.duration_ms))
        a_error(t.error_type)
        a_bytes(t.output_bytes)
        a_tokens(t.output_tokens)
        a_hash(t.tool_name_hash)
        a_file(t.file)
        a_line(t.line)
        a_ident(
            self._idents(
                i.chain if (ctx and i.chain is not None) else UNATTRIBUTED, i.group, i.workload,
                i.era.value if ctx else Era.NONE.value,
            )
        )
        a_row(row_id)
        a_code(_PHASE_CODE[t.phase])
        a_time(_float(t.event_time_ms))
        a_started(_float(t.started_ms))
        a_ended(_float(t.ended_ms))
        self._events.row_added()

    def frame(self, requests: pl.DataFrame, idents: pl.DataFrame) -> pl.DataFrame:
        """The table without lineage and with `session_code` last, given the `requests` table
        (inferred rows take their session, era, file and line from the request that asked) and
        `IdentityCodes.frame`."""
        reqs = requests.select(
            "request_index", "start_us", "agent_schema", "request_id",
            row_id=self._request_rows.frame().to_series(),
            dur_us=pl.col("end_us") - pl.col("start_us"),
        )
        events = self._events.frame(decoded=False)  # coded columns decoded once gathered
        spans, inferred = _pair_and_infer(events, reqs, self._calls.frame())
        del reqs
        # The rows in their final order first, narrow (what pairing and inference computed, and
        # the sort key); then the wide columns gathered once, in that order. A harness row's
        # columns come from its event (`k`), an inferred row's from its request
        # (`request_index`); the other side's gather is null, so `coalesce` picks the right one.
        k, k_start = spans["k"], spans["k_start"]
        harness = spans.drop("k_start").with_columns(
            file=events["file"].gather(k),
            line=events["line"].gather(k),
            start_class=self._events.decode(events.select(pl.col("tool_class").gather(k_start))).to_series(),
            inferred=pl.lit(False),
        )
        asked = inferred["request_index"]
        inferred = inferred.rename({"tool_call_id": "asked_id", "tool_class": "asked_class"}).with_columns(
            file=requests["file"].gather(asked),
            line=requests["line"].gather(asked),
            source_request_id=requests["request_id"].gather(asked),
            inferred=pl.lit(True),
            unclosed=pl.lit(False),
        )
        del spans, k, k_start, asked
        rows = pl.concat([harness, inferred], how="diagonal_relaxed").sort(
            "start_us", "file", "line", "inferred", maintain_order=True
        )
        del harness, inferred
        own = self._events.decode(events.select(*_OWN).drop("file", "line").select(pl.all().gather(rows["k"])))
        ident = pl.coalesce(events["ident"].gather(rows["k"]), requests["ident"].gather(rows["request_index"]))
        del events
        by_ident = idents.select(pl.all().gather(pl.select(ident).to_series()))
        df = pl.concat([rows, own, by_ident], how="horizontal").with_columns(
            tool_call_id=pl.coalesce("tool_call_id", "asked_id"),
            tool_class=pl.coalesce("tool_class", "start_class", "asked_class"),
            status=pl.coalesce("status", pl.when(pl.col("unclosed")).then(pl.lit("running"))),
        )
        return with_datetimes(df).select(*ORDER, "session_code")


def _pair_and_infer(
    events: pl.DataFrame, reqs: pl.DataFrame, calls: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Spans and inferred calls (as columns), a batch of rows at a time: tools of different rows
    never pair, calls never infer across rows and a call's requests are on the tool's row."""
    ev = events.select(
        "row_id", "tool_call_id", "phase_code", "event_time_ms", "started_ms", "ended_ms", "reported_duration_ms"
    )
    reqs = reqs.select("row_id", "request_index", "start_us", "dur_us", "agent_schema", "request_id")
    calls = calls.select("row_id", "request_index", "call_id", "call_name")
    # Each frame in row order (input order within a row), as positions: a batch is gathered
    # when it is reached, not the whole frame copied in that order up front.
    ev_order, req_order, call_order = (
        df.select(pl.arg_sort_by("row_id", maintain_order=True)).to_series() for df in (ev, reqs, calls)
    )
    ev_rows, req_rows, call_rows = (
        df["row_id"].gather(order) for df, order in ((ev, ev_order), (reqs, req_order), (calls, call_order))
    )

    def part(df: pl.DataFrame, order: pl.Series, rows: pl.Series, lo: int, hi: int) -> pl.DataFrame:
        a, b = rows.search_sorted(lo, "left"), rows.search_sorted(hi, "left")
        at = order.slice(a, b - a)
        return df.select(pl.all().gather(at)).with_columns(k=at)

    spans = ColumnBuffer(_SPAN_SCHEMA)
    inferred = ColumnBuffer(_INFERRED_SCHEMA)
    for lo, hi in _batches(pl.concat([ev_rows, req_rows])):
        tools = _pairing_events(part(ev, ev_order, ev_rows, lo, hi))
        owners, placed = _requests(
            part(reqs, req_order, req_rows, lo, hi).drop("k"), part(calls, call_order, call_rows, lo, hi).drop("k")
        )
        _add_spans(spans, pair_tools(tools, _row_of, by_start_time=True), owners)
        if placed:
            _add_inferred(inferred, infer_tools(placed, tools, _row_of, any_harness_row_suppresses=True))
    return spans.frame(), inferred.frame()


def _batches(row_ids: pl.Series) -> list[tuple[int, int]]:
    """[lo, hi) ranges of row ids holding about `BATCH_RECORDS` records each."""
    counts = row_ids.value_counts(sort=False).sort(row_ids.name)
    out: list[tuple[int, int]] = []
    lo = total = 0
    for row, n in counts.iter_rows():
        total += n
        if total >= BATCH_RECORDS:
            out.append((lo, row + 1))
            lo, total = row + 1, 0
    if total:
        out.append((lo, counts[row_ids.name][-1] + 1))
    return out


def _pairing_events(ev: pl.DataFrame) -> list[ToolEvent]:
    """A batch's tool events, in input order within each row, as pairing reads them."""
    phases = _PHASES
    return [
        _PairingEvent(
            tool_call_id=call_id, phase=phases[code], event_time_ms=time, started_ms=started,
            ended_ms=ended, duration_ms=duration, k=k, row=row,
        )
        for row, call_id, code, time, started, ended, duration, k in ev.iter_rows()
    ]


_Owners = dict[tuple[int, str], list[tuple[int, str | None]]]


def _requests(reqs: pl.DataFrame, calls: pl.DataFrame) -> tuple[_Owners, list[PlacedRequest]]:
    """A batch's requests: who asked for each call id ((row, id) -> [(request end, request id)]
    by end), and the request-schema requests placed for inference, in input order within a row."""
    calls_of: dict[int, list[ToolCall]] = {}
    for _, index, call_id, name in calls.iter_rows():
        calls_of.setdefault(index, []).append(ToolCall(call_id, name))
    owners: _Owners = {}
    placed: list[PlacedRequest] = []
    for row, index, ts, dur, agent_schema, request_id in reqs.iter_rows():
        got = calls_of.get(index)
        if got:
            for call in got:
                if call.id is not None:
                    owners.setdefault((row, call.id), []).append((ts + dur, request_id))
        # Inference exists only for request-schema rows, as on the timeline (upstream RT2+).
        if not agent_schema:
            req = _Calls(tool_calls=tuple(got), index=index) if got else _NO_CALLS
            placed.append(PlacedRequest(req, row, "", ts, dur))
    for listed in owners.values():
        listed.sort(key=lambda o: o[0])
    return owners, placed


def _source_request(owners: list[tuple[int, str | None]] | None, start_us: int) -> str | None:
    """The request that asked for the call: the last one to end before the tool started."""
    if not owners:
        return None
    best = None
    for end, rid in owners:
        if end <= start_us + JOIN_TOLERANCE_US:
            best = rid
    return best if best is not None else owners[0][1]


def _add_spans(buf: ColumnBuffer, spans: list[ToolSpan], owners: _Owners) -> None:
    a_k, a_start_k, a_start, a_end, a_ms, a_unclosed, a_known, a_source = buf.appenders()
    get_owners = owners.get
    for s in spans:
        event = cast(_PairingEvent, s.event)
        a_k(event.k)
        a_start_k(cast(_PairingEvent, s.start).k if s.start is not None else None)
        a_start(s.ts)
        a_unclosed(s.instant)
        if s.instant:  # an unclosed tool_start: we know when it began, not when (or if) it ended
            a_end(None)
            a_ms(None)
            a_known(False)
        elif s.synthetic:  # no times at all: a point at the event, duration unknown
            a_end(s.ts)
            a_ms(None)
            a_known(False)
        else:
            a_end(s.ts + s.dur)
            a_ms(s.dur / 1000.0)
            a_known(True)
        call_id = event.tool_call_id
        a_source(_source_request(get_owners((event.row, call_id)), s.ts) if call_id is not None else None)
        buf.row_added()


def _add_inferred(buf: ColumnBuffer, inferred: list[InferredTool]) -> None:
    a_index, a_id, a_class, a_start, a_end, a_ms, a_known = buf.appenders()
    for inf in inferred:
        a_index(cast(_Calls, inf.request).index)
        a_id(str_or_none(inf.call.id))
        a_class(str_or_none(inf.call.name))
        a_start(inf.ts)
        a_known(not inf.duration_unknown)
        if inf.duration_unknown:
            a_end(inf.ts)
            a_ms(None)
        else:
            a_end(inf.ts + inf.dur)
            a_ms(inf.dur / 1000.0)
        buf.row_added()
