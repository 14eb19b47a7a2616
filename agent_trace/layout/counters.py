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

from collections.abc import Iterable
from operator import itemgetter


def _dedupe(ts: list[int], values: list) -> tuple[list[int], list]:
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
    return out_ts, out_v


def in_flight(intervals: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
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
    return ts, values


def sampled(samples: Iterable[tuple[int, int | float]]) -> tuple[list, list]:
    """Point reports, ordered by time (stable: equal times keep input order, the last one wins)."""
    ordered = sorted(samples, key=itemgetter(0))
    return _dedupe([s[0] for s in ordered], [s[1] for s in ordered])


def summed_rates(intervals: Iterable[tuple[int, int, int]], scale: int = 1_000_000) -> tuple[list[int], list[float]]:
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
    ts, milli_values = _dedupe(ts, values)
    return ts, [v / 1000.0 for v in milli_values]
