"""Analysis tables -> the long-form samples frame that `compare_samples` reads.

    metric  String   a name from `METRICS` (any name works for the engine)
    group   String   "model=m, session_type=t": the metric's group keys in order; the first always
                     ("model=?" when null), the others when they have a value. "all" only labels
                     the rows of a metric that has no samples at all.
    value   Float64  one observation in the metric's unit (ms); null and non-finite values dropped

One row per observation: a request's TTFT, a session's wall time, a tool call's duration. The
frame is all the engine sees, so anything that produces it (a notebook, another loader, a test
drawing lognormal samples) can be compared.

Key columns missing from a table count as null (a frame without `session_type` groups by model
only); a missing value column is an error, since comparing nothing would pass silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from .metrics import DEFAULT_METRICS, metric

SAMPLES_SCHEMA: dict[str, pl.DataType] = {"metric": pl.String(), "group": pl.String(), "value": pl.Float64()}
ALL_GROUP = "all"


def empty_samples() -> pl.DataFrame:
    return pl.DataFrame(schema=SAMPLES_SCHEMA)


UNKNOWN = "?"

# Keys computed from other columns: name -> (columns needed, expression).
DERIVED_KEYS: dict[str, tuple[tuple[str, ...], pl.Expr]] = {
    "role": (("depth",), pl.when(pl.col("depth") == 0).then(pl.lit("root")).otherwise(pl.lit("subagent"))),
}


def _key(name: str, columns: set[str]) -> pl.Expr:
    if name in DERIVED_KEYS:
        needs, expr = DERIVED_KEYS[name]
        if all(c in columns for c in needs):
            return expr.cast(pl.String)
    elif name in columns:
        return pl.col(name).cast(pl.String)
    return pl.lit(None, pl.String)


def group_label(keys: Sequence[str], frame_columns: Iterable[str]) -> pl.Expr:
    """`k1=v1, k2=v2`: the first key always (`?` when null), the others when not null."""
    if not keys:
        return pl.lit(ALL_GROUP)
    columns = set(frame_columns)
    first, *rest = keys
    parts = [pl.concat_str([pl.lit(f"{first}="), _key(first, columns).fill_null(UNKNOWN)])]
    parts += [pl.concat_str([pl.lit(f"{k}="), _key(k, columns)]) for k in rest]
    return pl.concat_str(parts, separator=", ", ignore_nulls=True)


def samples_from_frames(
    *,
    requests: pl.DataFrame | None = None,
    tools: pl.DataFrame | None = None,
    sessions: pl.DataFrame | None = None,
    metrics: Iterable[str] = DEFAULT_METRICS,
) -> pl.DataFrame:
    """Samples of `metrics` from analysis tables. A table passed as None contributes no samples.

    Examples
    --------
    >>> requests = pl.DataFrame({
    ...     "model": ["a", "a", None], "session_type": [None, "coder", None],
    ...     "ttft_ms": [10.0, 12.0, 9.0], "cancelled": [False, False, False],
    ... })
    >>> samples_from_frames(requests=requests, metrics=["ttft_ms"]).rows()
    [('ttft_ms', 'model=a', 10.0), ('ttft_ms', 'model=a, session_type=coder', 12.0), ('ttft_ms', 'model=?', 9.0)]
    """
    tables = {"requests": requests, "tools": tools, "sessions": sessions}
    parts = []
    for name in metrics:
        m = metric(name)
        frame = tables[m.table]
        if frame is None:
            continue
        if m.column not in frame.columns:
            raise ValueError(f"the {m.table} table has no {m.column!r} column (needed for metric {m.name})")
        keep = pl.col(m.column).is_not_null() & pl.col(m.column).cast(pl.Float64).is_finite()
        for flag in m.exclude_true:
            if flag in frame.columns:
                keep &= ~pl.col(flag).fill_null(False)
        parts.append(
            frame.lazy()
            .filter(keep)
            .select(
                pl.lit(m.name, pl.String).alias("metric"),
                group_label(m.group_by, frame.columns).alias("group"),
                pl.col(m.column).cast(pl.Float64).alias("value"),
            )
        )
    if not parts:
        return empty_samples()
    return pl.concat(pl.collect_all(parts), how="vertical")


def samples_from_trace(trace: Any, metrics: Iterable[str] = DEFAULT_METRICS) -> pl.DataFrame:
    """Samples from anything with `requests`, `tools` and `sessions` frames (an analysis `Trace`)."""
    return samples_from_frames(
        requests=getattr(trace, "requests", None),
        tools=getattr(trace, "tools", None),
        sessions=getattr(trace, "sessions", None),
        metrics=metrics,
    )


def samples_from_arrays(data: Mapping[tuple[str, str], ArrayLike]) -> pl.DataFrame:
    """Samples from `{(metric, group): values}`: for tests, notebooks and other sources.

    Examples
    --------
    >>> samples_from_arrays({("ttft_ms", "model=a"): [1.0, 2.0]}).rows()
    [('ttft_ms', 'model=a', 1.0), ('ttft_ms', 'model=a', 2.0)]
    """
    frames = []
    for (name, group), values in data.items():
        arr = np.asarray(values, dtype=np.float64).ravel()
        frames.append(
            pl.DataFrame({"metric": [name] * arr.size, "group": [group] * arr.size, "value": arr}, schema=SAMPLES_SCHEMA)
        )
    if not frames:
        return empty_samples()
    return pl.concat(frames, how="vertical").filter(pl.col("value").is_finite())
