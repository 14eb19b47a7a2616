"""Write N time-shifted copies of a capture: a bigger input with the same shape (not a pytest test).

    .venv/bin/python tests/perf/gen_copies.py [INPUT ...] OUT_DIR [--copies 10] [--force]

INPUT is a capture directory (its `*.jsonl` then `*.jsonl.gz` files, sorted, i.e. segment order)
or files; default `fixtures/real/large`. The benchmarks use the copies to see how time and peak
memory grow with the input: ten copies are ten times the lines, sessions, requests and tools,
laid end to end in time, so nothing in them collides with anything else and a converter that
scales linearly takes ten times as long and (streaming) about the same memory.

Copy k (0-based) of every record:

  ids     every string value of a key ending in `_id` inside `agent_context`, `request`, `tool`
          and `payload` (session_id, parent_session_id, trajectory ids, request_id,
          x_request_id, tool_call_id, ...), the `id` of every `tool_calls[]` entry (the ids
          that pair a request with the tools it called) and the values of the `*-id` agent
          headers get the suffix `-c{k}`;
  times   `event_time_unix_ms`, the envelope `timestamp`, and every number under a key ending
          in `_unix_ms` or `_received_ms` in those sections (request_received_ms,
          started_at_unix_ms, ended_at_unix_ms, payload times) move by k * (span + 1000) ms,
          where span = max - min of `event_time_unix_ms` over the capture.

Integers stay exact (orjson reads and writes the u64 worker ids and hashes as they are); a line
orjson cannot decode (e.g. an integer beyond 64 bits) is copied unchanged. Output: multi-member
gzip segments like the capture's (a member per 512 lines; level 1, so that generating is quick)
named `dynamo-request-trace.{k:03d}{seg:03d}.jsonl.gz`,
so that directory order is copy order, then segment order, which is also time order.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INPUT = ROOT / "fixtures" / "real" / "large"
STEM = "dynamo-request-trace"
SECTIONS = ("agent_context", "request", "tool", "payload")
GAP_MS = 1000  # between the end of one copy and the start of the next
MEMBER_LINES = 512  # lines per gzip member: the capture has a member per ~550 lines

# (container, key or index, original value): a place in a decoded record to rewrite per copy
Ref = tuple[Any, Any, Any]


def input_files(inputs: list[str]) -> list[Path]:
    """A directory contributes its `*.jsonl` then `*.jsonl.gz` files, sorted; a file itself."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(path.glob("*.jsonl")))
            files.extend(sorted(path.glob("*.jsonl.gz")))
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"no such input: {item}")
    if not files:
        raise SystemExit("no input files")
    return files


def lines(path: Path) -> Iterator[bytes]:
    """The lines of a plain or gzip (multi-member) file, newline included."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        yield from fh


def event_of(obj: Any) -> dict[str, Any] | None:
    """The event of an enveloped (`{"timestamp", "event"}`) or bare record."""
    if type(obj) is not dict:
        return None
    inner = obj.get("event")
    return inner if type(inner) is dict else obj


def is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def capture_span(files: list[Path]) -> int:
    """max - min of `event_time_unix_ms` over every decodable record (0 if there is none)."""
    lo = hi = None
    for path in files:
        for line in lines(path):
            if not line.strip():
                continue
            try:
                event = event_of(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
            t = event.get("event_time_unix_ms") if event is not None else None
            if is_number(t):
                lo = t if lo is None or t < lo else lo
                hi = t if hi is None or t > hi else hi
    return 0 if lo is None else int(hi - lo)


def collect(node: Any, ids: list[Ref], times: list[Ref], tool_calls: bool = False) -> None:
    """Append the id and time places under `node` (a section of an event) to `ids` and `times`."""
    if type(node) is dict:
        for key, value in node.items():
            kind = type(value)
            if kind is str:
                if key.endswith("_id") or (tool_calls and key == "id"):
                    ids.append((node, key, value))
            elif kind is int or kind is float:
                if key.endswith(("_unix_ms", "_received_ms")):
                    times.append((node, key, value))
            elif kind is list:
                if key.endswith("-id"):  # agent headers: {"x-claude-code-session-id": ["s00053"]}
                    ids.extend((value, i, v) for i, v in enumerate(value) if type(v) is str)
                else:
                    collect(value, ids, times, key == "tool_calls")
            elif kind is dict:
                collect(value, ids, times)
    elif type(node) is list:
        for item in node:
            if type(item) is dict or type(item) is list:
                collect(item, ids, times, tool_calls)


def places(obj: Any) -> tuple[list[Ref], list[Ref]] | None:
    """The id and time places of one decoded record, or None if it is not a record."""
    event = event_of(obj)
    if event is None:
        return None
    ids: list[Ref] = []
    times: list[Ref] = []
    if is_number(event.get("event_time_unix_ms")):
        times.append((event, "event_time_unix_ms", event["event_time_unix_ms"]))
    if event is not obj and is_number(obj.get("timestamp")):
        times.append((obj, "timestamp", obj["timestamp"]))
    for section in SECTIONS:
        if section in event:
            collect(event[section], ids, times)
    return ids, times


def member(lines: list[bytes]) -> bytes:
    """One gzip member of `lines` (level 1, no timestamp: the same bytes every run)."""
    return gzip.compress(b"".join(lines), compresslevel=1, mtime=0)


def generate(files: list[Path], out_dir: Path, copies: int) -> tuple[int, int, int]:
    """Write the copies; returns (span ms, lines written, requests written)."""
    span = capture_span(files)
    shift = span + GAP_MS
    written = requests = 0
    for seg, path in enumerate(files):
        with contextlib.ExitStack() as stack:
            outs = [
                stack.enter_context(open(out_dir / f"{STEM}.{k:03d}{seg:03d}.jsonl.gz", "wb"))
                for k in range(copies)
            ]
            buffers: list[list[bytes]] = [[] for _ in range(copies)]
            for line in lines(path):
                if not line.strip():
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    obj = None
                found = places(obj) if obj is not None else None
                if found is None:  # undecodable or not a record: the same line in every copy
                    raw = line if line.endswith(b"\n") else line + b"\n"
                    copied = [raw] * copies
                else:
                    ids, times = found
                    event = event_of(obj)
                    if event is not None and event.get("event_type") == "request_end":
                        requests += copies
                    copied = []
                    for k in range(copies):
                        suffix = f"-c{k}"
                        for node, key, value in ids:
                            node[key] = value + suffix
                        for node, key, value in times:
                            node[key] = value + k * shift
                        copied.append(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE))
                written += copies
                for k, data in enumerate(copied):
                    buf = buffers[k]
                    buf.append(data)
                    if len(buf) >= MEMBER_LINES:
                        outs[k].write(member(buf))
                        buf.clear()
            for k, buf in enumerate(buffers):
                if buf:
                    outs[k].write(member(buf))
    return span, written, requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", metavar="[INPUT ...] OUT_DIR")
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--force", action="store_true", help="replace trace files already in OUT_DIR")
    ns = ap.parse_args()
    *inputs, out = ns.paths
    if ns.copies < 1:
        ap.error("--copies must be at least 1")
    files = input_files(inputs or [str(DEFAULT_INPUT)])
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(out_dir.glob("*.jsonl")) + sorted(out_dir.glob("*.jsonl.gz"))
    if existing and not ns.force:
        sys.exit(f"{out_dir} already holds {len(existing)} trace file(s); --force replaces them")
    for path in existing:
        path.unlink()
    span, written, requests = generate(files, out_dir, ns.copies)
    print(
        f"{ns.copies} copies of {len(files)} file(s) -> {out_dir}: span {span} ms, "
        f"{written} lines, {requests} requests written"
    )


if __name__ == "__main__":
    main()
