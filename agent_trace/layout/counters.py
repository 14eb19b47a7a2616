"""Counter series for the agent layout (pure): step functions sampled where they change.

Every series is a list of (ts, value) with strictly increasing ts, and no sample repeats the value
before it, so the step function is drawn with the fewest points:

* `in_flight` — how many intervals are open; at one instant, intervals that end are taken out
  before those that start are counted, so back-to-back work does not read as a spike of two;
* `sampled` — a value reported at a point in time (queue depth, KV hit rate at request start);
  several reports at the same µs keep the last one in input order;
* `summed_rates` — the sum of per-interval rates (each request's output tokens spread evenly over
  its decode phase), kept in integer milli-units so sums are exact and the output deterministic.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any


def compact(values: list[Any]) -> Sequence[Any]:
    """`values` as an array of 8-byte numbers when they fit one (a global counter of a long
    trace has millions of samples: 8 bytes each instead of a pointer and an object), else as is."""
    try:
        if any(type(v) is float for v in values):
            return array("d", values) if all(type(v) is float for v in values) else values
        return array("q", values)
    except (OverflowError, TypeError):
        return values


def _dedupe(ts: list[int], values: list) -> tuple[Sequence[int], Sequence[Any]]:
    out_ts: list[int] = []
    out_v: list = []
    for t, v in zip(ts, values, strict=True):
        if out_ts and out_ts[-1] == t:
            out_v[-1] = v
            if len(out_v) > 1 and out_v[-2] == v:  # the change at t cancelled out
                out_ts.pop()
                out_v.pop()
            continue
        if out_v and out_v[-1] == v:
            continue
        out_ts.append(t)
        out_v.append(v)
    return array("q", out_ts), compact(out_v)


def in_flight(intervals: Iterable[tuple[int, int]]) -> tuple[Sequence[int], Sequence[int]]:
    """Open intervals over time; each interval is [start, end) in µs with end > start."""
    # One int per edge: 2*ts for an end, 2*ts+1 for a start, so a plain int sort puts ends first.
    keys: list[int] = []
    add = keys.append
    for start, end in intervals:
        add(2 * start + 1)
        add(2 * end)
    keys.sort()
    ts: list[int] = []
    values: list[int] = []
    level = 0
    current = -1
    for k in keys:
        t = k >> 1
        if t != current:
            if current >= 0 and (not values or values[-1] != level):
                ts.append(current)
                values.append(level)
            current = t
        level += 1 if k & 1 else -1
    if current >= 0 and (not values or values[-1] != level):
        ts.append(current)
        values.append(level)
    return array("q", ts), array("q", values)


def sampled(samples: Iterable[tuple[int, int | float]]) -> tuple[Sequence[int], Sequence[Any]]:
    """Point reports, ordered by time (stable: equal times keep input order, the last one wins)."""
    ordered = sorted(samples, key=itemgetter(0))
    return _dedupe([s[0] for s in ordered], [s[1] for s in ordered])


def summed_rates(
    intervals: Iterable[tuple[int, int, int]], scale: int = 1_000_000
) -> tuple[Sequence[int], Sequence[float]]:
    """Sum of `amount / duration` over open intervals, per second of `scale` µs.

    Each interval is (start, end, amount) with end > start; the result is in amount per second,
    rounded to 1/1000.
    """
    deltas: list[tuple[int, int]] = []
    add = deltas.append
    for start, end, amount in intervals:
        width = end - start
        milli = (amount * scale * 1000 + width // 2) // width
        if milli:
            add((start, milli))
            add((end, -milli))
    deltas.sort(key=itemgetter(0))
    ts: list[int] = []
    values: list[int] = []
    level = 0
    for t, d in deltas:
        level += d
        if ts and ts[-1] == t:
            values[-1] = level
        else:
            ts.append(t)
            values.append(level)
    out_ts, milli_values = _dedupe(ts, values)
    return out_ts, array("d", [v / 1000.0 for v in milli_values])


# -- the same series over long arrays (the global counters of a long trace) ---------------------
# numpy keeps one machine word a sample instead of a Python object; `tests/test_counters.py`
# checks each against its pure-Python twin above.


def _changes(ts: Any, levels: Any) -> tuple[Any, Any]:
    """Keep the last level at each instant, then drop samples that repeat the one before."""
    import numpy as np

    if len(ts) == 0:
        return ts, levels
    last = np.ones(len(ts), dtype=bool)
    last[:-1] = ts[1:] != ts[:-1]
    ts, levels = ts[last], levels[last]
    keep = np.ones(len(ts), dtype=bool)
    keep[1:] = levels[1:] != levels[:-1]
    return ts[keep], levels[keep]


def in_flight_arrays(starts: Sequence[int], ends: Sequence[int]) -> tuple[Sequence[int], Sequence[int]]:
    """`in_flight` of the intervals (starts[i], ends[i])."""
    import numpy as np

    keys = np.concatenate([np.asarray(starts, dtype=np.int64) * 2 + 1, np.asarray(ends, dtype=np.int64) * 2])
    keys.sort(kind="stable")
    levels = np.cumsum(np.where(keys & 1, 1, -1))
    ts, values = _changes(keys >> 1, levels)
    return array("q", ts.tobytes()), array("q", np.asarray(values, dtype=np.int64).tobytes())


def sampled_arrays(ts: Sequence[int], values: Sequence[Any]) -> tuple[Sequence[int], Sequence[Any]]:
    """`sampled` of the reports (ts[i], values[i]), for values that fit int64 or are all floats."""
    import numpy as np

    if not len(ts):
        return array("q"), array("q")
    floats = all(type(v) is float for v in values)
    if not floats and not all(type(v) is int for v in values):  # a mix keeps each value's type
        return sampled(zip(ts, values, strict=True))
    try:
        vals = np.asarray(values, dtype=np.float64 if floats else np.int64)
    except OverflowError:  # an integer beyond int64: the pure-Python series
        return sampled(zip(ts, values, strict=True))
    order = np.argsort(np.asarray(ts, dtype=np.int64), kind="stable")
    out_ts, out_v = _changes(np.asarray(ts, dtype=np.int64)[order], vals[order])
    return array("q", out_ts.tobytes()), array("d" if floats else "q", out_v.tobytes())


def summed_rates_arrays(
    starts: Sequence[int], ends: Sequence[int], amounts: Sequence[int], scale: int = 1_000_000
) -> tuple[Sequence[int], Sequence[float]]:
    """`summed_rates` of the intervals (starts[i], ends[i], amounts[i])."""
    import numpy as np

    if not len(starts):
        return array("q"), array("d")
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(ends, dtype=np.int64)
    width = e - s
    # exact integer arithmetic as `summed_rates`, in Python ints where int64 could overflow
    milli = np.array([(a * scale * 1000 + w // 2) // w for a, w in zip(amounts, width.tolist(), strict=True)],
                     dtype=np.int64)
    nz = milli != 0
    t = np.concatenate([s[nz], e[nz]])
    d = np.concatenate([milli[nz], -milli[nz]])
    order = np.argsort(t, kind="stable")
    t, levels = t[order], np.cumsum(d[order])
    out_ts, out_v = _changes(t, levels)
    return array("q", out_ts.tobytes()), array("d", (np.asarray(out_v, dtype=np.float64) / 1000.0).tobytes())
