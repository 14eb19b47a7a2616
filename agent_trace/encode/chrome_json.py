"""Chrome trace-event JSON (what Perfetto's legacy importer reads), written from a `Plan`.

Document shape is upstream's (upstream-converter.md §14): `{"displayTimeUnit": "ms",
"traceEvents": [...]}`; within each chunk (one batch of complete sessions, see `ChromeJsonWriter`)
metadata events first (process names by pid, thread names by pid/tid), then every other event
sorted by (ts, pid, tid), stable, so a request precedes its stages and marker at equal ts. We add one top-level key, `metadata.agent_trace`, holding the read and draw
report (Perfetto ignores it; `ConvertOptions.embed_summary=False` leaves it out).

Events are encoded in batches straight to the output, so the document never exists in memory
as one object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import orjson

from ..layout.plan import CAT_FLOW, Chunk, Event, Plan, Track, TrackKind

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


def metadata_events(tracks: list[Track], sort_indices: bool) -> list[dict[str, Any]]:
    """Process and thread names (and sort indices) of `tracks`: processes first, then threads."""
    out: list[dict[str, Any]] = []
    threads: list[Track] = []
    procs: list[Track] = []
    for t in tracks:
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
    if sort_indices:
        for p in procs:
            out.append({"name": "process_sort_index", "ph": "M", "pid": p.pid, "args": {"sort_index": p.rank}})
        for t in threads:
            out.append({"name": "thread_sort_index", "ph": "M", "pid": t.pid, "tid": t.tid, "args": {"sort_index": t.rank}})
    return out


def sorted_events(events: list[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e.ts, e.track.pid, e.track.tid))


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


def encode_extras(chunk: Chunk, offset: int, *, leading_comma: bool = False) -> Iterator[bytes]:
    """Counter samples (`C`) and flows (`s`/`f`, v1) of the chunk, comma-separated, in batches.

    A counter track named "a b c" is written as event "a b" with arg "c": Perfetto's JSON importer
    names a counter track "<event name> <arg name>", so the name matches the protobuf output's.
    A flow is an `s` at its source slice's start and an `f` with `bp: e` at its target's start,
    on their threads: each binds to the slice that encloses it there (stages are on their own
    threads in the agent layout, so that is the request or tool slice itself).
    """
    batch: list[dict[str, Any]] = []
    first = not leading_comma
    for c in chunk.counters:
        name, _, key = c.track.name.rpartition(" ")
        pid = c.track.pid
        for ts, v in zip(c.ts, c.values, strict=True):
            batch.append({"name": name, "ph": "C", "pid": pid, "ts": ts - offset, "args": {key: v}})
            if len(batch) >= BATCH:  # a global counter of a long trace has millions of samples
                yield (b"" if first else b",") + _dumps(batch)[1:-1]
                first = False
                batch = []
    for f in chunk.flows:
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


def extras_count(chunk: Chunk) -> int:
    return sum(len(c.ts) for c in chunk.counters) + 2 * len(chunk.flows)


class ChromeJsonWriter:
    """Writes the document chunk by chunk (`layout.plan.Chunk`): each chunk's metadata events,
    then its events sorted by (ts, pid, tid), then its counters and flows. A trace laid out in
    one chunk is upstream's document exactly (metadata first, every event sorted); Perfetto's
    importer sorts events itself, so later chunks may start earlier. `--pretty` output (indent 2,
    sorted keys, for reading small traces) is built whole at `close`."""

    def __init__(
        self,
        out: BinaryIO,
        args_of: Callable[[Event], dict[str, Any]],
        *,
        offset: int = 0,
        big_ints: bool = False,
        sort_indices: bool = False,
        pretty: bool = False,
    ) -> None:
        self.out = out
        self.args_of = args_of
        self.offset = offset
        self.big = big_ints
        self.sort_indices = sort_indices
        self.pretty = pretty
        self.written = 0
        self._comma = False  # a comma goes before the next event
        self._pretty_parts: list[bytes] = []
        self._waiting: list[Track] = []
        if not pretty:
            # displayTimeUnit first: Perfetto's importer fails if a read chunk splits its value.
            out.write(b'{"displayTimeUnit":"ms","traceEvents":[')

    def _put(self, data: bytes) -> None:
        if self.pretty:
            self._pretty_parts.append(data)
        else:
            self.out.write(data)

    def write(self, chunk: Chunk) -> None:
        # A process is named once it has a thread (upstream names none in a trace without
        # threads), so processes drawn ahead of their threads (a layout's header) wait.
        tracks = self._waiting + chunk.tracks
        meta = metadata_events(tracks, self.sort_indices)
        self._waiting = [t for t in tracks if t.kind is TrackKind.PROCESS] if not meta else []
        events = sorted_events(chunk.events)
        if meta:
            self._put((b"," if self._comma else b"") + _dumps(meta)[1:-1])
            self._comma = True
        for data in encode_events(events, self.args_of, self.offset, self.big, leading_comma=self._comma):
            self._put(data)
            self._comma = True
        extras = extras_count(chunk)
        if extras:
            for data in encode_extras(chunk, self.offset, leading_comma=self._comma):
                self._put(data)
                self._comma = True
        self.written += len(meta) + len(events) + extras

    def close(self, summary: dict[str, Any] | None = None) -> int:
        """End the document (with `summary` under `metadata.agent_trace`); returns the number of
        trace events written."""
        if self.pretty:
            doc: dict[str, Any] = {"displayTimeUnit": "ms",
                                   "traceEvents": orjson.loads(b"[" + b"".join(self._pretty_parts) + b"]")}
            if summary is not None:
                doc["metadata"] = {"agent_trace": summary}
            self.out.write(_dumps(doc, orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            self.out.write(b"\n")
            return self.written
        self.out.write(b"]")
        if summary is not None:
            self.out.write(b',"metadata":')
            self.out.write(_dumps({"agent_trace": summary}))
        self.out.write(b"}\n")
        return self.written


def write_chrome_json(
    plan: Plan,
    out: BinaryIO,
    args_of: Callable[[Event], dict[str, Any]],
    *,
    pretty: bool = False,
    summary: dict[str, Any] | None = None,
) -> int:
    """Write a whole plan as one document; returns the number of trace events written."""
    writer = ChromeJsonWriter(out, args_of, offset=plan.time_offset_us, big_ints=plan.big_ints_as_strings,
                              sort_indices=plan.sort_indices, pretty=pretty)
    writer.write(Chunk(plan.tracks, plan.events, plan.flows, plan.counters))
    return writer.close(summary)
