"""Request bounds and stage intervals in µs, with upstream's arithmetic (upstream-converter.md §6, §8).

Stages are clamped inside their request so that slices on one track nest (§8.1): prefill wait and
prefill fill [0, ttft], decode fills [ttft, dur]; zero-length stages do not exist. Layouts draw
these intervals and the analysis tables count them, so both agree to the microsecond.
"""

from __future__ import annotations

from ..model import LlmRequest

STAGE_WAIT, STAGE_PREFILL, STAGE_DECODE = 1, 2, 3  # EventKind values of the stage slices
SYNTHETIC_US = 1_000  # the length of a slice whose duration is unknown or zero


def ms_to_us(ms: float | int) -> int:
    """Upstream's conversion, bit for bit: round-half-even of the float product."""
    return int(round(float(ms) * 1000.0))




def request_bounds(r: LlmRequest, fix_start: bool) -> tuple[int, int, bool] | None:
    """(ts, dur, start_estimated) in µs, upstream's arithmetic (§6); None if it has no time."""
    start = r.received_ms
    estimated = False
    if start is None:
        if r.event_time_ms is None:
            return None
        start = r.event_time_ms
        if fix_start and r.total_ms is not None and r.total_ms >= 0:
            start = r.event_time_ms - r.total_ms  # Q4: the request ended, it did not start, then
        estimated = True
    if r.total_ms is not None and r.total_ms >= 0:
        dur_ms = r.total_ms
    elif r.event_time_ms is not None and r.event_time_ms >= start:
        dur_ms = r.event_time_ms - start
    else:
        dur_ms = 0.001
    return ms_to_us(start), max(1, ms_to_us(dur_ms)), estimated




def stage_intervals(r: LlmRequest, ts: int, dur: int, ttft: int | None) -> list[tuple[int, int, int]]:
    """(stage, start, dur) of `r`'s stages inside [ts, ts + dur): prefill wait, prefill, decode,
    clamped to [0, ttft] and [ttft, dur] (`ttft` in µs, or None). Stages of zero length are left out."""
    out: list[tuple[int, int, int]] = []
    boundary = dur if ttft is None else min(max(0, ttft), dur)
    cursor = 0
    # ms_to_us inlined below: this runs for every request.
    if r.prefill_wait_ms is not None:
        wait = int(round(r.prefill_wait_ms * 1000.0))
        if wait > 0 and cursor < boundary:
            d = min(wait, boundary - cursor)
            out.append((STAGE_WAIT, ts, d))
            cursor += d
    if r.prefill_ms is not None:
        pre = int(round(r.prefill_ms * 1000.0))
        if pre > 0 and cursor < boundary:
            d = min(pre, boundary - cursor)
            out.append((STAGE_PREFILL, ts + cursor, d))
            cursor += d
    if ttft is not None and dur > boundary:
        out.append((STAGE_DECODE, ts + boundary, dur - boundary))
    return out
