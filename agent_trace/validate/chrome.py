"""Chrome JSON trace document -> `DecodedTrace` (the JSON decoder of the validator).

Contract of `decode_chrome(doc)`:

* `doc` must be an object with a `traceEvents` list; otherwise the result is empty but for one
  `shape` problem. An event that is not an object is a `shape` problem and is skipped.
* Metadata (`M`): `thread_name` names the thread track (pid, tid), `process_name` the process
  track (pid); other metadata is ignored. A name is `str(args.name)`.
* Every other event needs an integer `ts` (`ts` problem and skipped otherwise; a negative one is
  kept for the rules to report). Then by `ph`:
  `X` needs an integer `dur` (`dur` problem and skipped otherwise) and becomes a slice;
  `i` becomes an instant (a `dur` on it is an `instant` problem);
  `C` becomes one sample per arg on counter track (pid, name, arg) named "<name> <arg>"; no args
  or a non-numeric value is a `counter` problem (that value is skipped);
  `s` / `f` become flow ends (v1: each binds to the slice enclosing it on its thread);
  any other phase is a `phase` problem.
* Thread tracks exist for every thread holding a slice, instant or flow end and every named
  thread; their parent is the process track, which exists for every pid seen. Unnamed tracks
  have name None (the rules report them where they hold events).

Slices keep input order (the rules do not depend on it); counter samples are sorted by time,
equal timestamps in input order, as Perfetto does.
"""

from __future__ import annotations

from typing import Any

from ..execution import gc_paused
from .model import Bad, DecodedTrace, FlowEnd, Problems, Slice, Track, TrackId, TrackKind

MAX_PROBLEMS = 50
_SHAPE = "document is not an object with a traceEvents list"


def decode_chrome(doc: Any, *, max_problems: int = MAX_PROBLEMS) -> DecodedTrace:
    """Decode a parsed Chrome JSON document (see the module docstring). Problems are reported,
    not raised, as long as pids, tids and flow ids are hashable (JSON scalars are)."""
    problems = Problems(max_problems)
    trace = DecodedTrace({}, [], {}, problems=problems.items, unit="event")
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        problems.add("shape", _SHAPE)
        return trace
    with gc_paused():
        _decode(doc["traceEvents"], trace, problems.add)
    return trace


def _decode(events: list[Any], trace: DecodedTrace, bad: Bad) -> None:
    trace.inputs = len(events)
    thread_names: dict[tuple[Any, Any], str] = {}
    process_names: dict[Any, str] = {}
    threads: dict[tuple[Any, Any], None] = {}  # threads holding events, in first-seen order
    counters: dict[tuple[Any, str, str], list[tuple[int, float]]] = {}
    slices, flows = trace.slices, trace.flows
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            bad("shape", f"event {i} is not an object")
            continue
        ph = e.get("ph")
        args = e.get("args")
        if not isinstance(args, dict):
            args = {}
        if ph == "M":
            if e.get("name") == "thread_name":
                thread_names[(e.get("pid"), e.get("tid"))] = str(args.get("name"))
            elif e.get("name") == "process_name":
                process_names[e.get("pid")] = str(args.get("name"))
            continue
        name = e.get("name")
        if type(name) is not str:
            name = _text(name)
        ts = e.get("ts")
        if type(ts) is not int:
            bad("ts", f"event {i} ({name}) has ts {ts!r}")
            continue
        key = (e.get("pid"), e.get("tid"))
        if ph == "X":
            dur = e.get("dur")
            if type(dur) is not int:
                bad("dur", f"event {i} ({name}) has dur {dur!r}")
                continue
            cat = e.get("cat")
            slices.append(Slice(key, ts, dur, name, cat if type(cat) is str else _text(cat), args, i))
        elif ph == "i":
            if "dur" in e:
                bad("instant", f"event {i} is an instant with a dur")
            slices.append(Slice(key, ts, None, name, _text(e.get("cat")), args, i))
        elif ph == "C":  # one sample per arg, each on its own series (pid, name, arg)
            if not args:
                bad("counter", f"counter event {i} ({name}) has no args")
            for k, v in args.items():
                if type(v) is int or type(v) is float:
                    series = (e.get("pid"), name, k if type(k) is str else str(k))
                    samples = counters.get(series)
                    if samples is None:
                        samples = counters[series] = []
                    samples.append((ts, v))
                else:
                    bad("counter", f"counter event {i} ({name}) has non-numeric {k}={v!r}")
            continue
        elif ph in ("s", "f"):
            flows.append(FlowEnd(e.get("id"), ph == "s", key, ts, i))
        else:
            bad("phase", f"event {i} has unsupported ph {ph!r}")
            continue
        threads[key] = None
    trace.tracks = _tracks(threads, thread_names, process_names, counters)
    for samples in counters.values():
        samples.sort(key=lambda sample: sample[0])
    trace.counters = {key: samples for key, samples in counters.items()}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _tracks(
    threads: dict[tuple[Any, Any], None],
    thread_names: dict[tuple[Any, Any], str],
    process_names: dict[Any, str],
    counters: dict[tuple[Any, str, str], list[tuple[int, float]]],
) -> dict[TrackId, Track]:
    """Thread tracks, then counter tracks, then process tracks (every pid any of them is on)."""
    tracks: dict[TrackId, Track] = {}
    pids: dict[Any, None] = {}
    for key in {**threads, **dict.fromkeys(thread_names)}:
        pids[key[0]] = None
        tracks[key] = Track(key, thread_names.get(key), (key[0],), TrackKind.THREAD, f"pid/tid {key}")
    for pid, name, arg in counters:
        pids[pid] = None
        label = f"counter '{name} {arg}' of pid {pid}"
        tracks[(pid, name, arg)] = Track((pid, name, arg), f"{name} {arg}", (pid,), TrackKind.COUNTER, label)
    for pid in {**pids, **dict.fromkeys(process_names)}:
        tracks[(pid,)] = Track((pid,), process_names.get(pid), None, TrackKind.PROCESS, f"pid {pid}")
    return tracks
