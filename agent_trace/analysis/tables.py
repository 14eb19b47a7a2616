"""Records to the four analysis tables (pure: records in, polars frames out), built while streaming.

    requests   one row per `request_end`, in input order                  (`analysis.requests`)
    tools      one row per tool call, harness-reported or inferred       (`analysis.tools`)
    sessions   one row per session (chain): parent, root, depth, times  (`analysis.sessions`)
    stages     one row per request × stage (queue, prefill, decode)     (`analysis.stages`)

Each module's docstring states its table's contract. Common to all:

* Units are in column names (`_ms`, `_us`). Times are integer epoch microseconds (`start_us`,
  `end_us`, Int64) next to polars `Datetime("us", "UTC")` columns (`start`, `end`). Worker ids
  stay exact as `UInt64` (they exceed 2^63).
* `session_id` is the chain role of the record's identity era (trace-format.md §5.2). Requests
  without identity share the pseudo-session `request-only`, tool rows without one share
  `unattributed`; both are marked `anonymous` in `sessions`. `requests` and `tools` carry their
  session's `parent_session_id`, `root_session_id` and `session_role` (root, subagent,
  anonymous) after `session_id`.
* Rows follow the timeline's rules (`agent_trace.timeline`): request bounds, tool pairing and
  inference, stage clamping. Intervals (session times, the critical path) use closed tools only.

`TableBuilder` takes records one at a time (`add`, in any interleaving of kinds) and keeps only
columns (`columns.ColumnBuffer`), never the records themselves: a request with its finish and
worker objects is a kilobyte or two as a struct, tens of bytes as columns. `finish` pairs and infers
the tools from those columns, sums the sessions and returns the tables. `build_tables` does
the same for records already in lists. The cyclic collector is paused meanwhile (`gc_paused`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain

import polars as pl

from ..model import LlmRequest, Record, Records, ToolEvent
from ..timeline import RowMemo
from .columns import (
    ANONYMOUS_SESSIONS,
    ROLE_ANONYMOUS,
    ROLE_ROOT,
    ROLE_SUBAGENT,
    UTC_US,
    Codes,
    IdentityCodes,
    gc_paused,
)
from .requests import RequestTable
from .sessions import SessionIdentities, sessions_frame
from .stages import StageTable
from .tools import ToolTable

__all__ = ["UTC_US", "TableBuilder", "Tables", "build_tables"]


@dataclass(frozen=True, slots=True)
class Tables:
    requests: pl.DataFrame
    tools: pl.DataFrame
    sessions: pl.DataFrame
    stages: pl.DataFrame


class TableBuilder:
    """The four tables of a stream of records (see the module docstring)."""

    def __init__(self) -> None:
        # RowMemo keys on id(identity): `_identities` holds every identity seen, so no id is
        # reused while rows are being computed.
        self._rows = RowMemo()
        self._row_ids = Codes()
        self._idents = IdentityCodes()
        self._requests = RequestTable(self._idents)
        self._stages = StageTable()
        self._tools = ToolTable(self._idents)
        self._identities = SessionIdentities()

    def add(self, record: Record) -> None:
        kind = type(record)
        if kind is LlmRequest:
            self.add_request(record)  # type: ignore[arg-type]
        elif kind is ToolEvent:
            self.add_tool(record)  # type: ignore[arg-type]
        else:
            self._requests.add_payload(record)  # type: ignore[arg-type]

    def add_request(self, r: LlmRequest) -> None:
        placed = self._requests.add(r)
        if placed is None:
            return
        index, ts, dur = placed
        self._identities.add_request(r)
        self._stages.add(index, r, ts, dur)
        self._tools.add_request(r, index, self._row_ids(self._rows.request(r)))

    def add_tool(self, t: ToolEvent) -> None:
        self._identities.add_tool(t)
        self._tools.add_tool(t, self._row_ids(self._rows.tool(t)))

    def add_all(self, records: Iterable[Record]) -> TableBuilder:
        add = self.add
        with gc_paused():
            for r in records:
                add(r)
        return self

    def finish(self) -> Tables:
        with gc_paused():
            return self._finish()

    def _finish(self) -> Tables:
        info = self._identities.sessions()
        # Rows are ids from here on: let the identities and the memo go (a builder is used once).
        self._identities, self._rows, self._row_ids = SessionIdentities(), RowMemo(), Codes()
        codes = Codes()  # session ids
        idents = self._idents.frame(codes)
        requests = self._requests.frame(idents)
        tools = self._tools.frame(requests, idents)
        requests = requests.drop("ident")
        del idents
        sessions = sessions_frame(info, codes, requests, tools)
        # Per session code: the parent, root and role of that session_id.
        lineage = (
            pl.DataFrame({"session_id": codes.values()}, schema={"session_id": pl.String})
            .join(
                sessions.select("session_id", "parent_session_id", "root_session_id", "depth"),
                on="session_id", how="left", maintain_order="left",
            )
            .with_columns(_ROLE)
            .drop("session_id", "depth")
        )
        requests = _with_lineage(requests, lineage)
        tools = _with_lineage(tools, lineage)
        stages = self._stages.frame(requests)
        return Tables(requests, tools, sessions, stages)


_ROLE = (
    pl.when(pl.col("session_id").is_in(ANONYMOUS_SESSIONS)).then(pl.lit(ROLE_ANONYMOUS))
    .when(pl.col("depth") == 0).then(pl.lit(ROLE_ROOT))
    .otherwise(pl.lit(ROLE_SUBAGENT))
    .alias("session_role")
)


def _with_lineage(df: pl.DataFrame, lineage: pl.DataFrame) -> pl.DataFrame:
    """`df` with its session's parent, root and role (`lineage`, by session code) right after
    `session_id`, and without `session_code`. A row whose session is not in `sessions` is a
    subagent, or anonymous by name."""
    added = lineage.select(pl.all().gather(df["session_code"]))
    cols = df.drop("session_code").get_columns()
    at = df.columns.index("session_id") + 1
    return pl.DataFrame(cols[:at] + added.get_columns() + cols[at:])


def build_tables(records: Records) -> Tables:
    """All four tables from parsed records.

    Examples
    --------
    >>> from agent_trace.ingest import records_from_objects
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
    >>> t.stages.select("stage", "start_us", "end_us").rows()
    [('prefill', 900000, 920000), ('decode', 920000, 1000000)]
    """
    return TableBuilder().add_all(chain(records.requests, records.tools, records.payloads)).finish()
