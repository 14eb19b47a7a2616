"""What the table builders share: dtypes, session names, value coercions, column buffers, codes.

Tables are built column-wise while the records stream past: each builder appends a record's
values to per-column Python lists, and `ColumnBuffer` turns those lists into a polars chunk every
`CHUNK_ROWS` rows, so however long the trace, at most one chunk of Python values is alive next to
the compact columnar data. Values that many rows repeat are kept as integer codes until the end:
a `CODED` column (a model, a tool status) per value, `IdentityCodes` for the four identity
columns of a row, `Codes` for timeline rows and session ids (keys of the frames that pair tools
and sum sessions). The tables themselves have the plain dtypes of their contracts.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, cast

import polars as pl

from ..execution import gc_paused
from ..timeline import REQUEST_ONLY, UNATTRIBUTED

__all__ = [
    "ANONYMOUS_SESSIONS",
    "CHUNK_ROWS",
    "REQUEST_ONLY",
    "ROLE_ANONYMOUS",
    "ROLE_ROOT",
    "ROLE_SUBAGENT",
    "UNATTRIBUTED",
    "UTC_US",
    "CODED",
    "Codes",
    "ColumnBuffer",
    "IdentityCodes",
    "gc_paused",
    "joined_columns",
    "str_or_none",
    "u64",
    "with_datetimes",
]

ANONYMOUS_SESSIONS = (REQUEST_ONLY, UNATTRIBUTED)
ROLE_ROOT, ROLE_SUBAGENT, ROLE_ANONYMOUS = "root", "subagent", "anonymous"

UTC_US = pl.Datetime("us", "UTC")
CHUNK_ROWS = 1 << 14
_U64_MAX = (1 << 64) - 1


def u64(v: Any) -> int | None:
    """An exact u64 (worker ids exceed 2^63), else None."""
    return v if type(v) is int and 0 <= v <= _U64_MAX else None


def str_or_none(v: Any) -> str | None:
    return v if v is None or type(v) is str else str(v)


def joined_columns(df: pl.DataFrame, key: str, other: pl.DataFrame, at: int) -> pl.DataFrame:
    """`df` with the columns of `other` (one row per `key`, left join) inserted before column
    `at`: only the new columns are built, `df`'s own are not copied."""
    added = df.select(key).join(other, on=key, how="left", maintain_order="left").drop(key)
    cols = df.get_columns()
    return pl.DataFrame(cols[:at] + added.get_columns() + cols[at:])


def with_datetimes(df: pl.DataFrame) -> pl.DataFrame:
    """`start` and `end` as UTC datetimes next to the epoch-µs `start_us` and `end_us`."""
    return df.with_columns(start=pl.col("start_us").cast(UTC_US), end=pl.col("end_us").cast(UTC_US))


class Coded:
    """Schema marker: a String column of few distinct values (a model, a status), buffered as
    `Codes` codes and decoded by `ColumnBuffer.decode` (ideally after any gather)."""


CODED = Coded()


class ColumnBuffer:
    """Column lists that become a polars chunk every `chunk_rows` rows.

    The owner appends one value to every column per row (`appenders`) and then calls
    `row_added`; the lists are cleared in place when a chunk is cut, so the appenders stay valid.
    """

    __slots__ = ("_chunk_rows", "_chunks", "_coded", "_pending", "cols", "height", "schema")

    def __init__(self, schema: dict[str, Any], chunk_rows: int = CHUNK_ROWS) -> None:
        self._coded = {name: Codes() for name, dtype in schema.items() if dtype is CODED}
        self.schema = {name: pl.UInt32 if name in self._coded else dtype for name, dtype in schema.items()}
        self.cols: dict[str, list[Any]] = {name: [] for name in schema}
        self._chunks: list[pl.DataFrame] = []
        self._chunk_rows = chunk_rows
        self._pending = 0
        self.height = 0

    def appenders(self) -> tuple[Callable[[Any], None], ...]:
        """One `append(value)` per column, in schema order."""
        return tuple(
            _coded_append(self._coded[name], col.append) if name in self._coded else col.append
            for name, col in self.cols.items()
        )

    def row_added(self) -> None:
        self.height += 1
        self._pending += 1
        if self._pending >= self._chunk_rows:
            self._cut()

    def _cut(self) -> None:
        if self._pending:
            self._chunks.append(pl.DataFrame(self.cols, schema=self.schema, strict=False))
            for col in self.cols.values():
                col.clear()
            self._pending = 0

    def frame(self, *, decoded: bool = True) -> pl.DataFrame:
        """Everything appended so far, as one frame (the buffer is emptied); coded columns as
        codes unless `decoded`."""
        self._cut()
        chunks, self._chunks = self._chunks, []
        if not chunks:
            df = pl.DataFrame(schema=self.schema)
        else:
            df = pl.concat(chunks, rechunk=False) if len(chunks) > 1 else chunks[0]  # no copy
        return self.decode(df) if decoded else df

    def decode(self, df: pl.DataFrame) -> pl.DataFrame:
        """`df` (rows of this buffer's frame) with the coded columns it has as Strings."""
        return df.with_columns(
            pl.Series(name, codes.values(), dtype=pl.String).gather(df[name])
            for name, codes in self._coded.items()
            if name in df.columns
        )


def _coded_append(codes: Codes, append: Callable[[Any], None]) -> Callable[[Any], None]:
    ids = codes._ids  # `Codes.__call__` inlined: this runs for every value

    def add(value: Any) -> None:
        got = ids.get(value)
        if got is None:
            got = ids[value] = len(ids)
        append(got)

    return add


class Codes:
    """Values (timeline rows, session ids) as dense integers in first-seen order, so that frames
    are keyed and grouped by an integer and a table indexed by code is a gather."""

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        self._ids: dict[Hashable, int] = {}

    def __call__(self, value: Hashable) -> int:
        ids = self._ids
        got = ids.get(value)
        if got is None:
            got = ids[value] = len(ids)
        return got

    def values(self) -> list[Hashable]:
        """Every value, in code order."""
        return list(self._ids)


IDENTITY_SCHEMA: dict[str, Any] = {
    "session_id": pl.String,
    "run_id": pl.String,
    "session_type": pl.String,
    "era": pl.String,
}


class IdentityCodes:
    """The identity columns every request and tool row repeats (`IDENTITY_SCHEMA`), kept per row
    as one code while streaming: a run has few distinct identities and many rows."""

    __slots__ = ("_codes",)

    def __init__(self) -> None:
        self._codes = Codes()

    def __call__(self, session_id: str, run_id: str | None, session_type: str | None, era: str) -> int:
        return self._codes((session_id, run_id, session_type, era))

    def frame(self, sessions: Codes) -> pl.DataFrame:
        """One row per code: the identity columns, and `session_code`, `sessions(session_id)`."""
        rows = cast(list[tuple[str, str | None, str | None, str]], self._codes.values())
        df = pl.DataFrame(rows, schema=IDENTITY_SCHEMA, orient="row")
        return df.with_columns(pl.Series("session_code", [sessions(row[0]) for row in rows], dtype=pl.UInt32))
