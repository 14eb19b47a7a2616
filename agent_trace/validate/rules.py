"""The one rule set: what Perfetto needs and what our layouts promise, over a `DecodedTrace`.

`check(trace, limit=50)` returns the decoder's problems followed by the rule violations, at
most `limit` in all. A slice that breaks `ts` or `dur` is reported once and left out of every
later rule (so one bad value is not reported again as an overlap or a stage outside its request).

Rules, by name:
  * `track_parent`, `track_cycle`: a track's parent exists; the parents form no cycle;
  * `track`: slices and counter samples are on known tracks;
  * `counter_track`: slices only on non-counter tracks, counter samples only on counter tracks;
  * `ts`: every slice, instant, counter sample and flow end has ts >= 0;
  * `dur`: every slice has dur >= 1 µs (instants have none);
  * `tool_track`: tool slices and markers sit on a track whose name ends in "tools";
  * `<kind>_name` (`thread_name`, `process_name`, `track_name`): every track holding a slice,
    instant, counter sample or flow end has a name, and so does each of its ancestors;
  * `overlap`: on one track, slices nest or are disjoint, never partially overlap (Perfetto
    drops those);
  * `stage`: a stage slice (`dynamo.llm.stage`) with a request_id lies inside an `LLM request`
    slice (`dynamo.llm`) with the same request_id;
  * `flow`: each flow id has exactly one leaving end and one arriving end, not earlier in time,
    and an end that binds by position lies inside a slice on its track;
  * `counter_time`: the samples of one counter track are strictly increasing in time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from typing import Any

from ..execution import gc_paused
from .model import (
    Bad,
    DecodedTrace,
    FlowEnd,
    Problems,
    Slice,
    Track,
    TrackId,
    TrackKind,
    Violation,
)

TOOL_CATEGORIES = ("dynamo.agent.tool", "dynamo.agent.tool.marker")
REQUEST_CATEGORY = "dynamo.llm"
STAGE_CATEGORY = "dynamo.llm.stage"
DEFAULT_LIMIT = 50


def check(trace: DecodedTrace, *, limit: int = DEFAULT_LIMIT) -> list[Violation]:
    """The trace's decode problems, then every rule's violations; at most `limit` in all."""
    found = Problems(limit)
    found.items = list(trace.problems[:limit])
    bad = found.add
    with gc_paused():
        _check_tracks(trace.tracks, bad)
        scan = _Scan(trace, bad)
        _check_names(trace, scan.holding, bad)
        spans = _check_overlaps(trace, scan.by_track, bad)
        _check_stages(scan.requests, scan.stages, bad)
        _check_flows(trace, spans, bad)
        _check_counters(trace, bad)
    return found.items


def _where(trace: DecodedTrace, track: TrackId) -> str:
    t = trace.tracks.get(track)
    return t.label if t is not None else f"track {track}"


def _check_tracks(tracks: dict[TrackId, Track], bad: Bad) -> None:
    for t in tracks.values():
        if t.parent is not None and t.parent not in tracks:
            bad("track_parent", f"{t.label} has unknown parent {t.parent}")
        seen = {t.uuid}
        p = t.parent
        while p is not None and p in tracks:
            if p in seen:
                bad("track_cycle", f"{t.label} is in a parent cycle")
                break
            seen.add(p)
            p = tracks[p].parent


class _Scan:
    """One pass over the slices: the per-slice rules (`track`, `counter_track`, `ts`,
    `tool_track`, `dur`), then what the later rules read, of the sound slices only (ts >= 0,
    dur >= 1 or an instant): the tracks holding them, each track's slices as (ts, -dur, order,
    slice), requests as request_id -> [(start, end)], and the stages that have a request_id."""

    __slots__ = ("holding", "by_track", "requests", "stages")

    def __init__(self, trace: DecodedTrace, bad: Bad) -> None:
        self.holding: set[TrackId] = set()
        self.by_track: dict[TrackId, list[tuple[int, int, int, Slice]]] = defaultdict(list)
        self.requests: dict[Any, list[tuple[int, int]]] = defaultdict(list)
        self.stages: list[Slice] = []
        tracks = trace.tracks
        kinds = {uuid: t.kind for uuid, t in tracks.items()}
        holding, by_track = self.holding, self.by_track
        for n, s in enumerate(trace.slices):
            ts, dur, kind = s.ts, s.dur, kinds.get(s.track)
            if kind is None or kind is TrackKind.COUNTER:
                _misplaced(trace, s, bad)
            if ts < 0:
                bad("ts", f"{_what(trace, s)} has ts {ts}")
                continue
            if s.category in TOOL_CATEGORIES:
                _tool(trace, s, bad)
            if dur is None:
                holding.add(s.track)
                continue
            if dur < 1:
                bad("dur", f"{_what(trace, s)} at {ts} on {_where(trace, s.track)} has dur {dur}")
                continue
            holding.add(s.track)
            by_track[s.track].append((ts, -dur, n, s))
            if s.category == REQUEST_CATEGORY:
                self.requests[s.args.get("request_id")].append((ts, ts + dur))
            elif s.category == STAGE_CATEGORY and s.args.get("request_id") is not None:
                self.stages.append(s)


def _what(trace: DecodedTrace, s: Slice) -> str:
    return f"{trace.unit} {s.index} ({s.name})"


def _misplaced(trace: DecodedTrace, s: Slice, bad: Bad) -> None:
    track = trace.tracks.get(s.track)
    if track is None:
        bad("track", f"{_what(trace, s)} is on undescribed track {s.track}")
    else:
        bad("counter_track", f"{_what(trace, s)} at {s.ts} is on counter track '{track.name}'")


def _tool(trace: DecodedTrace, s: Slice, bad: Bad) -> None:
    track = trace.tracks.get(s.track)
    name = (track.name if track is not None else None) or ""
    if not name.endswith("tools"):
        bad("tool_track", f"tool event {_what(trace, s)} at {s.ts} is on track '{name}', not a tools track")


def _check_names(trace: DecodedTrace, holding: set[TrackId], bad: Bad) -> None:
    """Tracks holding a sound slice or instant, a counter sample or a flow end, and their
    ancestors, must be named."""
    tracks = trace.tracks
    holding = holding | set(trace.counters) | {f.track for f in trace.flows}
    need: set[TrackId] = set()
    for uuid in holding:
        while uuid is not None and uuid not in need:  # the track and its ancestors
            need.add(uuid)
            parent = tracks.get(uuid)
            uuid = parent.parent if parent is not None else None
    for t in tracks.values():
        if t.name is None and t.uuid in need:
            bad(f"{t.kind.value}_name", f"{t.label} has events but no name")


class _Spans:
    """The slices of one track sorted by start, with the running maximum of their ends: does any
    slice enclose a point (start <= ts < end)?"""

    __slots__ = ("starts", "max_end")

    def __init__(self, items: list[tuple[int, int, int, Slice]]) -> None:
        """`items`: (ts, -dur, ...) sorted by ts."""
        self.starts = [item[0] for item in items]
        self.max_end: list[int] = []
        top = -1
        for ts, neg_dur, *_ in items:
            end = ts - neg_dur
            if end > top:
                top = end
            self.max_end.append(top)

    def encloses(self, ts: int) -> bool:
        i = bisect_right(self.starts, ts)
        return i > 0 and self.max_end[i - 1] > ts


def _check_overlaps(
    trace: DecodedTrace, by_track: dict[TrackId, list[tuple[int, int, int, Slice]]], bad: Bad
) -> dict[TrackId, _Spans]:
    """`overlap` on each track; returns each track's slices as `_Spans` for the flow rule."""
    spans: dict[TrackId, _Spans] = {}
    for track, items in by_track.items():
        items.sort()  # by start, the longer first, then input order (unique: slices never compared)
        stack: list[tuple[int, Slice]] = []  # (end, slice) of the enclosing slices
        for ts, neg_dur, _, s in items:
            end = ts - neg_dur
            while stack and stack[-1][0] <= ts:
                stack.pop()
            if stack and end > stack[-1][0]:
                other_end, other = stack[-1]
                bad(
                    "overlap",
                    f"on {_where(trace, track)}: '{s.name}' [{ts}, {end}) crosses '{other.name}' ending at {other_end}",
                )
            stack.append((end, s))
        spans[track] = _Spans(items)
    return spans


def _check_stages(requests: dict[Any, list[tuple[int, int]]], stages: list[Slice], bad: Bad) -> None:
    for s in stages:
        rid = s.args.get("request_id")
        end = s.ts + (s.dur or 0)
        if not any(a <= s.ts and end <= b for a, b in requests.get(rid, ())):
            bad("stage", f"stage '{s.name}' of request {rid} lies outside its request")


def _check_flows(trace: DecodedTrace, spans: dict[TrackId, _Spans], bad: Bad) -> None:
    ends: dict[Any, tuple[list[FlowEnd], list[FlowEnd]]] = {}
    for f in trace.flows:
        ends.setdefault(f.id, ([], []))[0 if f.out else 1].append(f)
    unit = trace.unit
    for fid, (out, into) in ends.items():
        if len(out) != 1 or len(into) != 1:
            bad("flow", f"flow {fid} has {len(out)} start(s) and {len(into)} end(s); expected 1 and 1")
            continue
        src, dst = out[0], into[0]
        if dst.ts < src.ts:
            bad("flow", f"flow {fid} goes back in time: {unit} {src.index} at {src.ts} -> {unit} {dst.index} at {dst.ts}")
        for f in (src, dst):
            if f.ts < 0:
                bad("ts", f"flow {fid} {unit} {f.index} has ts {f.ts}")
            elif f.slice is None and not ((s := spans.get(f.track)) and s.encloses(f.ts)):
                bad("flow", f"flow {fid} {unit} {f.index} at {f.ts} on {_where(trace, f.track)} is not inside any slice")


def _check_counters(trace: DecodedTrace, bad: Bad) -> None:
    for uuid, samples in trace.counters.items():
        track = trace.tracks.get(uuid)
        where = _where(trace, uuid)
        if track is None:
            bad("track", f"counter samples on undescribed track {uuid}")
        elif not track.counter:
            bad("counter_track", f"counter samples on {where}, which is not a counter track")
        if samples and samples[0][0] < 0:
            bad("ts", f"{where} has a sample at {samples[0][0]}")
        for (a, _), (b, _) in zip(samples, samples[1:], strict=False):
            if b <= a:
                bad("counter_time", f"{where} goes from {a} to {b}: not strictly increasing")
