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

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import orjson

from ..layout.plan import CAT_FLOW, Event, Plan, Track, TrackKind
from ..parallel import SpooledChild

BATCH = 16_384
JS_SAFE = 1 << 53


def _stringify_big(value: Any, low: int = -JS_SAFE, high: int = JS_SAFE) -> Any:
    """Integers outside (low, high) become strings (recursively); by default those JavaScript cannot hold."""
    t = type(value)
    if t is int:
        return str(value) if value >= high or value <= low else value
    if t is dict:
        return {k: _stringify_big(v, low, high) for k, v in value.items()}
    if t is list or t is tuple:
        return [_stringify_big(v, low, high) for v in value]
    return value


def metadata_events(plan: Plan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    threads: list[Track] = []
    procs: list[Track] = []
    for t in plan.tracks:
        if t.kind is TrackKind.PROCESS:
            procs.append(t)
        elif t.tid is not None:  # GROUP and COUNTER tracks have no Chrome thread
            threads.append(t)
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


def _dumps(obj: Any, option: int = 0) -> bytes:
    try:
        return orjson.dumps(obj, option=option)
    except TypeError:  # an integer beyond 64 bits (only from the stdlib fallback parser)
        # Stringify only what orjson cannot write (outside i64/u64), so valid u64 ids elsewhere in
        # the batch stay exact integers as upstream writes them.
        return orjson.dumps(_stringify_big(obj, -(1 << 63) - 1, 1 << 64), option=option)


def encode_events(
    events: list[Event],
    args_of: Callable[[Event], dict[str, Any]],
    offset: int,
    big: bool,
    *,
    leading_comma: bool = False,
) -> Iterator[bytes]:
    """Comma-separated JSON of `events`, in batches; a comma before the first only if asked."""
    for start in range(0, len(events), BATCH):
        batch: list[dict[str, Any]] = []
        append = batch.append
        for e in events[start : start + BATCH]:
            t = e.track
            args = args_of(e)
            if big:
                args = _stringify_big(args)
            if e.dur is None:
                append({"name": e.name, "cat": e.cat, "ph": "i", "s": "t", "pid": t.pid, "tid": t.tid,
                        "ts": e.ts - offset, "args": args})
            else:
                append({"name": e.name, "cat": e.cat, "ph": "X", "pid": t.pid, "tid": t.tid,
                        "ts": e.ts - offset, "dur": e.dur, "args": args})
        yield (b"," if start or leading_comma else b"") + _dumps(batch)[1:-1]


def encode_extras(plan: Plan, *, leading_comma: bool = False) -> Iterator[bytes]:
    """Counter samples (`C`) and flows (`s`/`f`, v1) of the plan, comma-separated, in batches.

    A counter track named "a b c" is written as event "a b" with arg "c": Perfetto's JSON importer
    names a counter track "<event name> <arg name>", so the name matches the protobuf output's.
    A flow is an `s` at its source slice's start and an `f` with `bp: e` at its target's start,
    on their threads: each binds to the slice that encloses it there (stages are on their own
    threads in the agent layout, so that is the request or tool slice itself).
    """
    offset = plan.time_offset_us
    batch: list[dict[str, Any]] = []
    first = not leading_comma
    for c in plan.counters:
        name, _, key = c.track.name.rpartition(" ")
        pid = c.track.pid
        for ts, v in zip(c.ts, c.values, strict=True):
            batch.append({"name": name, "ph": "C", "pid": pid, "ts": ts - offset, "args": {key: v}})
        if len(batch) >= BATCH:
            yield (b"" if first else b",") + _dumps(batch)[1:-1]
            first = False
            batch = []
    for f in plan.flows:
        src, dst = f.source, f.target
        name = f.kind.value
        batch.append({"name": name, "cat": CAT_FLOW, "ph": "s", "id": f.id, "pid": src.track.pid,
                      "tid": src.track.tid, "ts": src.ts - offset})
        batch.append({"name": name, "cat": CAT_FLOW, "ph": "f", "bp": "e", "id": f.id, "pid": dst.track.pid,
                      "tid": dst.track.tid, "ts": dst.ts - offset})
        if len(batch) >= BATCH:
            yield (b"" if first else b",") + _dumps(batch)[1:-1]
            first = False
            batch = []
    if batch:
        yield (b"" if first else b",") + _dumps(batch)[1:-1]


def extras_count(plan: Plan) -> int:
    return sum(len(c.ts) for c in plan.counters) + 2 * len(plan.flows)


# Below this many events a second process costs more than it saves.
PARALLEL_MIN_EVENTS = 50_000


def write_chrome_json(
    plan: Plan,
    out: BinaryIO,
    args_of: Callable[[Event], dict[str, Any]],
    *,
    pretty: bool = False,
    summary: dict[str, Any] | None = None,
    parallel: bool = False,
) -> int:
    """Write the document; returns the number of trace events written.

    With `parallel`, the second half of the events is encoded in a forked child (see
    `agent_trace.parallel`); the bytes are the same either way.
    """
    meta = metadata_events(plan)
    events = sorted_events(plan)
    offset = plan.time_offset_us
    big = plan.big_ints_as_strings
    if pretty:
        # --pretty is for reading small traces: indent 2 and sorted keys, like upstream.
        body = b"[" + b"".join(encode_events(events, args_of, offset, big)) + b"]"
        doc: dict[str, Any] = {"displayTimeUnit": "ms", "traceEvents": meta + orjson.loads(body)}
        if plan.counters or plan.flows:
            doc["traceEvents"] += orjson.loads(b"[" + b"".join(encode_extras(plan)) + b"]")
        if summary is not None:
            doc["metadata"] = {"agent_trace": summary}
        out.write(_dumps(doc, orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        out.write(b"\n")
        return len(meta) + len(events) + extras_count(plan)

    # displayTimeUnit first: Perfetto's importer fails if a read chunk splits its value.
    out.write(b'{"displayTimeUnit":"ms","traceEvents":[')
    if meta:
        out.write(_dumps(meta)[1:-1])
        if events:
            out.write(b",")
    extras = extras_count(plan)
    if parallel and len(events) >= PARALLEL_MIN_EVENTS:
        # The parent also encodes the extras (counters, flows: without args, each costs about a
        # ninth of an event, measured) into memory and writes them after the child's part: the
        # bytes are a serial run's, and both halves take about as long.
        mid = max(1, (len(events) - extras // 9) // 2) if extras else len(events) // 2
        mid = min(mid, len(events) - 1)
        tail = events[mid:]
        child = SpooledChild(lambda: encode_events(tail, args_of, offset, big, leading_comma=True))
        for chunk in encode_events(events[:mid], args_of, offset, big):
            out.write(chunk)
        extra_chunks = list(encode_extras(plan, leading_comma=True)) if extras else []
        child.copy_into(out)
        for chunk in extra_chunks:
            out.write(chunk)
    else:
        for chunk in encode_events(events, args_of, offset, big):
            out.write(chunk)
        if extras:
            for chunk in encode_extras(plan, leading_comma=bool(events or meta)):
                out.write(chunk)
    out.write(b"]")
    if summary is not None:
        out.write(b',"metadata":')
        out.write(_dumps({"agent_trace": summary}))
    out.write(b"}\n")
    return len(meta) + len(events) + extras
