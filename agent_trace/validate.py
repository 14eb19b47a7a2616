"""Invariant validator for emitted traces (Chrome JSON here; protobuf in `validate_proto`).

Checks what Perfetto needs and what our layouts promise:
  * every X event has integer ts >= 0 and dur >= 1; instants have no dur;
  * on one (pid, tid), X slices nest or are disjoint: no partial overlap (Perfetto drops those);
  * stage slices (`dynamo.llm.stage`) lie inside an `LLM request` slice with the same request_id;
  * every tool slice or tool marker sits on a thread whose name ends in "tools";
  * every event's thread has a thread_name, every pid a process_name.

Returns violations as data; the CLI decides what to print and the exit code.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

TOOL_CATEGORIES = ("dynamo.agent.tool", "dynamo.agent.tool.marker")


@dataclass(frozen=True)
class Violation:
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


def validate_chrome(doc: Any, *, limit: int = 50) -> list[Violation]:
    out: list[Violation] = []

    def bad(rule: str, detail: str) -> None:
        if len(out) < limit:
            out.append(Violation(rule, detail))

    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        return [Violation("shape", "document is not an object with a traceEvents list")]
    thread_names: dict[tuple[Any, Any], str] = {}
    process_names: set[Any] = set()
    slices: dict[tuple[Any, Any], list[tuple[int, int, int]]] = defaultdict(list)
    requests: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    stages: list[tuple[int, int, Any, int]] = []
    tools: list[tuple[Any, Any, int]] = []
    used: set[tuple[Any, Any]] = set()
    counter_times: dict[tuple[Any, Any, str], set[int]] = defaultdict(set)
    flow_ends: dict[Any, dict[str, list[tuple[tuple[Any, Any], int, int]]]] = defaultdict(lambda: defaultdict(list))
    for i, e in enumerate(doc["traceEvents"]):
        ph = e.get("ph")
        if ph == "M":
            if e.get("name") == "thread_name":
                thread_names[(e.get("pid"), e.get("tid"))] = str(e.get("args", {}).get("name"))
            elif e.get("name") == "process_name":
                process_names.add(e.get("pid"))
            continue
        ts = e.get("ts")
        if type(ts) is not int or ts < 0:
            bad("ts", f"event {i} ({e.get('name')}) has ts {ts!r}")
            continue
        key = (e.get("pid"), e.get("tid"))
        cat = e.get("cat")
        if cat in TOOL_CATEGORIES:
            tools.append((key, e.get("name"), i))
        if ph == "X":
            dur = e.get("dur")
            if type(dur) is not int or dur < 1:
                bad("dur", f"event {i} ({e.get('name')}) has dur {dur!r}")
                continue
            slices[key].append((ts, -dur, i))
            rid = (e.get("args") or {}).get("request_id")
            if cat == "dynamo.llm":
                requests[rid].append((ts, ts + dur))
            elif cat == "dynamo.llm.stage":
                stages.append((ts, ts + dur, rid, i))
        elif ph == "i":
            if "dur" in e:
                bad("instant", f"event {i} is an instant with a dur")
        elif ph == "C":  # a counter sample: on its process, numeric, one per timestamp and series
            _check_counter(e, i, ts, counter_times, bad)
            continue
        elif ph in ("s", "f"):  # a flow end (v1): binds to the slice enclosing it on its thread
            flow_ends[e.get("id")][ph].append((key, ts, i))
        else:
            bad("phase", f"event {i} has unsupported ph {ph!r}")
        used.add(key)

    for key in sorted(used - thread_names.keys(), key=str):
        bad("thread_name", f"events on pid/tid {key} but no thread_name metadata")
    for pid in sorted({pid for pid, _ in used} - process_names, key=str):
        bad("process_name", f"pid {pid} has events but no process_name")

    events = doc["traceEvents"]
    for key, items in slices.items():
        items.sort()
        stack: list[tuple[int, int]] = []  # (end, index)
        for ts, neg_dur, i in items:
            end = ts - neg_dur
            while stack and stack[-1][0] <= ts:
                stack.pop()
            if stack and end > stack[-1][0]:
                other = events[stack[-1][1]]
                bad(
                    "overlap",
                    f"on pid/tid {key}: '{events[i].get('name')}' [{ts}, {end}) crosses "
                    f"'{other.get('name')}' ending at {stack[-1][0]}",
                )
            stack.append((end, i))

    for ts, end, rid, i in stages:
        if rid is None:
            continue
        if not any(s <= ts and end <= e for s, e in requests.get(rid, ())):
            bad("stage", f"stage '{events[i].get('name')}' of request {rid} lies outside its request")

    _check_flows(flow_ends, slices, bad)

    for key, name, i in tools:
        tname = thread_names.get(key, "")
        if not tname.endswith("tools"):
            bad("tool_track", f"tool event {i} ('{name}') is on thread '{tname}', not a tools track")
    return out


def _check_counter(e: dict[str, Any], i: int, ts: int, seen: dict[tuple[Any, Any, str], set[int]], bad: Any) -> None:
    args = e.get("args")
    if not isinstance(args, dict) or not args:
        bad("counter", f"counter event {i} ({e.get('name')}) has no args")
        return
    for k, v in args.items():
        if type(v) not in (int, float):
            bad("counter", f"counter event {i} ({e.get('name')}) has non-numeric {k}={v!r}")
        series = seen[(e.get("pid"), e.get("name"), k)]
        if ts in series:
            bad("counter", f"counter '{e.get('name')} {k}' has two samples at {ts}")
        series.add(ts)


def _check_flows(
    ends: dict[Any, dict[str, list[tuple[tuple[Any, Any], int, int]]]],
    slices: dict[tuple[Any, Any], list[tuple[int, int, int]]],
    bad: Any,
) -> None:
    """Each flow id: one `s` and one `f`, not back in time, each inside a slice on its thread."""
    for fid, phases in ends.items():
        starts, finishes = phases.get("s", []), phases.get("f", [])
        if len(starts) != 1 or len(finishes) != 1:
            bad("flow", f"flow {fid} has {len(starts)} start(s) and {len(finishes)} end(s); expected 1 and 1")
            continue
        if finishes[0][1] < starts[0][1]:
            bad("flow", f"flow {fid} goes back in time ({starts[0][1]} -> {finishes[0][1]})")
        for key, ts, i in (starts[0], finishes[0]):
            # (ts, -dur, index) triples, sorted by the overlap check above
            if not any(s <= ts < s - neg for s, neg, _ in slices.get(key, ())):
                bad("flow", f"flow {fid} event {i} at {ts} on pid/tid {key} is not inside any slice")
