"""Streaming by session: records in, batches of complete sessions out (pure: no IO, no clock).

A *unit* is a root session with all its subagents: the rows (`timeline.rows`) linked by parent
ids. Everything a layout needs whole-session knowledge for (lanes and their names, inferred
tools, tool pairing, flows, per-session counters) lies inside one unit, so a unit can be laid out
and written as soon as it is complete, and memory follows the sessions active at once instead of
the length of the trace (trace processor's sorter works the same way, with a window).

When a unit is complete is read off record time, never the clock. The *watermark* is the latest
record time seen (`event_time_unix_ms`, the moment Dynamo wrote the record). A unit is complete

* when its root wrote its final request (`session_final` / `trajectory_final`) and the watermark
  has passed its last activity by `reorder_ms` (records are written out of order by up to a
  second in real captures: this is the reorder window), or
* when the watermark has passed its last activity by `idle_ms` (eras without final flags), or
* at the end of the input.

Units that complete at the same sweep, and everything still open at the end, form one *batch*:
their records, back in input order. A trace small enough to end before any unit completes is
one batch, laid out exactly as the whole trace would be.

A record of a unit that was already flushed (it came later than the window allowed) starts a new
unit for its row; `DrawReport.late_records` counts such records so nothing is split silently.
`request_payload` rows are never drawn: they are counted in the draw report and dropped here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..model import LlmRequest, Record, RequestPayload, ToolEvent
from ..report import DrawReport, NotDrawn
from ..timeline.rows import UNATTRIBUTED, Row, request_row, tool_row


@dataclass(frozen=True)
class FlushPolicy:
    """When units are complete, in record-time milliseconds."""

    reorder_ms: float = 30_000
    idle_ms: float = 600_000
    # Hold the first batch until the watermark is this far past the first record (the rebase
    # offset is read off the first batch, so it should see the trace's start).
    hold_first_ms: float = 0
    sweep_every: int = 1024  # records between two looks for complete units


DEFAULT_POLICY = FlushPolicy()
WHOLE = FlushPolicy(reorder_ms=float("inf"), idle_ms=float("inf"))  # one batch: the whole trace


class _Unit:
    __slots__ = ("rows", "records", "first", "last_ms", "final", "closed")

    def __init__(self, first: int) -> None:
        self.rows: list[Row] = []
        self.records: list[tuple[int, Record]] = []  # (input position, record)
        self.first = first
        self.last_ms = float("-inf")
        self.final = False
        self.closed = False


def _times(rec: LlmRequest | ToolEvent) -> tuple[float, float]:
    """(when it was written, when its activity ends), in ms."""
    if isinstance(rec, LlmRequest):
        # the reader keeps only requests with one time or the other
        written = rec.event_time_ms
        start = rec.received_ms if rec.received_ms is not None else written
        end = start + rec.total_ms if start is not None and rec.total_ms is not None else start
        w = float(written if written is not None else end)  # type: ignore[arg-type]
        return w, max(w, float(end)) if end is not None else w
    t = float(rec.event_time_ms)
    ended = rec.ended_ms
    return t, max(t, float(ended)) if ended is not None else t


def _rows(rec: LlmRequest | ToolEvent) -> tuple[Row, Row | None]:
    """The record's row and its parent's row (None when it has no parent)."""
    if type(rec) is LlmRequest:
        row = request_row(rec)
    else:
        row = tool_row(rec)  # type: ignore[arg-type]
        if not rec.has_context:
            return row, None
    parent = rec.identity.parent
    if parent is None or row[1] == UNATTRIBUTED:
        return row, None
    prow = (row[0], parent, row[2])
    return row, (prow if prow != row else None)


def batches(
    records: Iterable[Record], draw: DrawReport, policy: FlushPolicy = DEFAULT_POLICY
) -> Iterator[list[Record]]:
    """Batches of complete units' records, each in input order. Payload rows are counted in
    `draw.not_drawn` and dropped; late records in `draw.late_records`."""
    unit_of: dict[Row, _Unit] = {}
    open_units: list[_Unit] = []
    watermark = float("-inf")
    first_ms: float | None = None
    flushed_any = False
    since_sweep = 0

    def unit_for(row: Row, pos: int) -> _Unit:
        u = unit_of.get(row)
        if u is None or u.closed:
            if u is not None:
                draw.late_records += 1
            u = unit_of[row] = _Unit(pos)
            u.rows.append(row)
            open_units.append(u)
        return u

    for pos, rec in enumerate(records):
        if type(rec) is RequestPayload:
            draw.not_drawn[NotDrawn.PAYLOAD_ROW.value] += 1
            continue
        row, prow = _rows(rec)  # type: ignore[arg-type]
        u = unit_for(row, pos)
        if prow is not None:
            p = unit_of.get(prow)
            if p is None or p.closed:
                unit_of[prow] = u
                u.rows.append(prow)
            elif p is not u:
                u = _merge(u, p, unit_of)
        written, end = _times(rec)  # type: ignore[arg-type]
        u.records.append((pos, rec))
        if end > u.last_ms:
            u.last_ms = end
        if prow is None and type(rec) is LlmRequest and rec.final:
            u.final = True
        if written > watermark:
            watermark = written
        if first_ms is None:
            first_ms = written
        since_sweep += 1
        if since_sweep < policy.sweep_every:
            continue
        since_sweep = 0
        if not flushed_any and watermark - first_ms < policy.hold_first_ms:
            continue
        done = [
            u for u in open_units
            if not u.closed and (
                watermark - u.last_ms > policy.idle_ms
                or (u.final and watermark - u.last_ms > policy.reorder_ms)
            )
        ]
        if done:
            flushed_any = True
            yield _batch(done)
            open_units = [u for u in open_units if not u.closed]
    rest = [u for u in open_units if not u.closed]
    if rest:
        yield _batch(rest)


def _merge(a: _Unit, b: _Unit, unit_of: dict[Row, _Unit]) -> _Unit:
    """One unit from two open ones (a subagent's parent turned out to belong to another unit)."""
    big, small = (a, b) if len(a.records) >= len(b.records) else (b, a)
    for row in small.rows:
        unit_of[row] = big
    big.rows += small.rows
    big.records += small.records
    big.first = min(big.first, small.first)
    big.last_ms = max(big.last_ms, small.last_ms)
    big.final = big.final or small.final
    small.closed = True  # emptied: never flushed
    small.records = []
    return big


def _batch(units: list[_Unit]) -> list[Record]:
    units.sort(key=lambda u: u.first)
    recs = [r for u in units for r in u.records]
    for u in units:
        u.closed = True
        u.records = []
    recs.sort(key=lambda r: r[0])
    return [r for _, r in recs]
