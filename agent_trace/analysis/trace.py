"""`Trace`: the analysis tables of one read, and `load`, the IO edge that produces one.

`load` reads exactly as the CLI does (input expansion, every era, gzip segments, damage
accounting in `Trace.report`), building the tables while the records stream past (no record is
kept); `Trace.from_records` is the pure half for records already in hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike

import polars as pl

from ..ingest import expand_inputs, iter_records, records_from_objects
from ..model import Records
from ..report import ReadReport
from .tables import TableBuilder, build_tables


@dataclass(frozen=True)
class Trace:
    """Analysis tables of one or more trace files.

    Attributes
    ----------
    requests : one row per LLM request (`request_end`)
    tools : one row per tool call, harness-reported or inferred (`inferred` column)
    sessions : one row per session (chain) with parent, root, depth, times and counts
    stages : one row per request × stage (`queue`, `prefill`, `decode`)
    report : what happened to every input line (skips, damage, eras)
    files : the expanded input files, in reading order
    """

    requests: pl.DataFrame
    tools: pl.DataFrame
    sessions: pl.DataFrame
    stages: pl.DataFrame
    report: ReadReport = field(default_factory=ReadReport, repr=False)
    files: tuple[str, ...] = ()

    @classmethod
    def from_records(cls, records: Records, report: ReadReport | None = None) -> Trace:
        """Build the tables from parsed records (pure; no IO)."""
        t = build_tables(records)
        return cls(t.requests, t.tools, t.sessions, t.stages, report or ReadReport(), tuple(records.files))

    @classmethod
    def from_objects(cls, objects: Sequence[object], *, strict: bool = False) -> Trace:
        """Build the tables from already-decoded JSON records (enveloped or bare), as read from a file.

        Examples
        --------
        >>> t = Trace.from_objects([{"schema": "dynamo.request.trace.v1", "event_type": "request_end",
        ...     "event_time_unix_ms": 1200, "request": {"request_id": "r", "request_received_ms": 1000,
        ...     "total_time_ms": 200.0, "ttft_ms": 50.0, "output_tokens": 4}}])
        >>> t.requests.select("session_id", "total_ms", "tpot_ms").row(0)
        ('request-only', 200.0, 50.0)
        """
        records, report = records_from_objects(objects, strict=strict)
        return cls.from_records(records, report)

    def __repr__(self) -> str:
        return (
            f"Trace({len(self.files)} file(s): {self.requests.height:,} requests, {self.tools.height:,} tools, "
            f"{self.sessions.height:,} sessions, {int(self.sessions['depth'].eq(0).sum()):,} roots)"
        )


def load(
    inputs: str | PathLike[str] | Sequence[str | PathLike[str]], *, strict: bool = False
) -> Trace:
    """Read trace files, directories or globs into a `Trace`.

    Inputs expand as on the command line (a directory contributes its `*.jsonl` and `*.jsonl.gz`
    files, gzip segments in segment order). Damaged input is skipped and counted in
    `Trace.report`; `strict=True` raises `StrictModeError` on the first problem instead.

    Examples
    --------
    >>> import agent_trace as at
    >>> t = at.load("fixtures/real/small")                     # doctest: +SKIP
    >>> t.requests.height, t.sessions.filter(depth=0).height   # doctest: +SKIP
    (60, 4)
    """
    items = [str(inputs)] if isinstance(inputs, (str, PathLike)) else [str(i) for i in inputs]
    files = expand_inputs(items)
    report = ReadReport()
    tables = TableBuilder().add_all(iter_records(files, report, strict=strict)).finish()
    return Trace(tables.requests, tables.tools, tables.sessions, tables.stages, report, tuple(files))
