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

    for key, name, i in tools:
        tname = thread_names.get(key, "")
        if not tname.endswith("tools"):
            bad("tool_track", f"tool event {i} ('{name}') is on thread '{tname}', not a tools track")
    return out
