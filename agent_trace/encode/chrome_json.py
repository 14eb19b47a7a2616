"""Chrome trace-event JSON (what Perfetto's legacy importer reads), written from a `Plan`.

Document shape is upstream's (upstream-converter.md §14): `{"displayTimeUnit": "ms",
"traceEvents": [...]}`, metadata events first (process names by pid, thread names by pid/tid),
then every other event sorted by (ts, pid, tid), stable, so a request precedes its stages and
marker at equal ts. We add one top-level key, `metadata.agent_trace`, holding the read and draw
report (Perfetto ignores it; `ConvertOptions.embed_summary=False` leaves it out).

Events are encoded in batches straight to the output, so the document never exists in memory
as one object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

import orjson

from ..layout.plan import Event, Plan, Track, TrackKind

BATCH = 16_384
JS_SAFE = 1 << 53


def _stringify_big(value: Any) -> Any:
    """Integers JavaScript cannot hold exactly become strings (recursively)."""
    t = type(value)
    if t is int:
        return str(value) if value >= JS_SAFE or value <= -JS_SAFE else value
    if t is dict:
        return {k: _stringify_big(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [_stringify_big(v) for v in value]
    return value


def metadata_events(plan: Plan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    threads: list[Track] = []
    procs: list[Track] = []
    for t in plan.tracks:
        (procs if t.kind is TrackKind.PROCESS else threads).append(t)
    if not threads:
        return out
    for p in procs:
        out.append({"name": "process_name", "ph": "M", "pid": p.pid, "args": {"name": p.name}})
    for t in threads:
        out.append({"name": "thread_name", "ph": "M", "pid": t.pid, "tid": t.tid, "args": {"name": t.name}})
    if plan.sort_indices:
        for p in procs:
            out.append({"name": "process_sort_index", "ph": "M", "pid": p.pid, "args": {"sort_index": p.rank}})
        for t in threads:
            out.append({"name": "thread_sort_index", "ph": "M", "pid": t.pid, "tid": t.tid, "args": {"sort_index": t.rank}})
    return out


def sorted_events(plan: Plan) -> list[Event]:
    return sorted(plan.events, key=lambda e: (e.ts, e.track.pid, e.track.tid))


def _event_dict(e: Event, args: dict[str, Any], offset: int) -> dict[str, Any]:
    t = e.track
    if e.dur is None:
        return {"name": e.name, "cat": e.cat, "ph": "i", "s": "t", "pid": t.pid, "tid": t.tid, "ts": e.ts - offset, "args": args}
    return {"name": e.name, "cat": e.cat, "ph": "X", "pid": t.pid, "tid": t.tid, "ts": e.ts - offset, "dur": e.dur, "args": args}


def _dumps(obj: Any, option: int = 0) -> bytes:
    try:
        return orjson.dumps(obj, option=option)
    except TypeError:  # an integer beyond 64 bits (only from the stdlib fallback parser)
        return orjson.dumps(_stringify_big(obj), option=option)


def write_chrome_json(
    plan: Plan,
    out: BinaryIO,
    args_of: Callable[[Event], dict[str, Any]],
    *,
    pretty: bool = False,
    summary: dict[str, Any] | None = None,
) -> int:
    """Write the document; returns the number of trace events written."""
    meta = metadata_events(plan)
    events = sorted_events(plan)
    offset = plan.time_offset_us
    big = plan.big_ints_as_strings
    if pretty:
        # --pretty is for reading small traces: indent 2 and sorted keys, like upstream.
        body = [_event_dict(e, _stringify_big(args_of(e)) if big else args_of(e), offset) for e in events]
        doc: dict[str, Any] = {"displayTimeUnit": "ms", "traceEvents": meta + body}
        if summary is not None:
            doc["metadata"] = {"agent_trace": summary}
        out.write(_dumps(doc, orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        out.write(b"\n")
        return len(meta) + len(body)

    out.write(b'{"displayTimeUnit":"ms","traceEvents":[')
    first = True
    if meta:
        out.write(_dumps(meta)[1:-1])
        first = False
    for start in range(0, len(events), BATCH):
        batch = []
        for e in events[start : start + BATCH]:
            args = args_of(e)
            batch.append(_event_dict(e, _stringify_big(args) if big else args, offset))
        if not first:
            out.write(b",")
        out.write(_dumps(batch)[1:-1])
        first = False
    out.write(b"]")
    if summary is not None:
        out.write(b',"metadata":')
        out.write(_dumps({"agent_trace": summary}))
    out.write(b"}\n")
    return len(meta) + len(events)
