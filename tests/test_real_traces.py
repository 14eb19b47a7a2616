"""The real Dynamo 1.6.1 captures in fixtures/real/ (see its README), end to end.

Expectations come from the raw lines, parsed independently here with Python's `json` (which keeps
every integer exact), never from our own reader:

* every output passes the invariant validator; every input line is accounted for;
* converted = requests + tool slices + `Tool start:` instants + inferred tools (upstream-converter.md
  §14.3). In compatibility mode each unclosed start's call is *also* inferred, because upstream
  suppresses inference only for calls with a tool_end/tool_error (§11.1, quirk Q10);
  `Fix.INFERENCE` removes those duplicates;
* unclosed starts appear as `Tool start:` instants, one per start (§10.1);
* u64 worker ids above 2^63 reach the args exactly (trace-format.md §6.2);
* `event_time_unix_ms` goes backwards in file order, yet output events are sorted by ts and every
  request sits at its own received time (trace-format.md §11).

The large trace (108k lines) is marked slow, but runs in CI like everything else.
"""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent_trace.args import ArgsBuilder
from agent_trace.convert import ConversionResult, build_plan, convert_files, summary_dict
from agent_trace.encode.chrome_json import write_chrome_json
from agent_trace.ingest.reader import read_files
from agent_trace.options import ALL_FIXES, ConvertOptions, Fix
from agent_trace.validate import validate_chrome

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"
SMALL = [str(REAL / "small" / "dynamo-request-trace.jsonl")]
LARGE = [str(p) for p in sorted((REAL / "large").glob("dynamo-request-trace.*.jsonl.gz"))]
U63 = 2**63


@dataclass
class Raw:
    """Facts about a capture, from its raw lines."""

    lines: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    starts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (session, call id)
    terminals: Counter[tuple[str, str]] = field(default_factory=Counter)
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)  # request_id -> worker object
    received: dict[str, int] = field(default_factory=dict)  # request_id -> request_received_ms
    time_decreases: int = 0  # consecutive lines whose event_time_unix_ms goes backwards
    calls_by_session: dict[str, set[str]] = field(default_factory=dict)  # finish-metadata tool call ids

    @property
    def unclosed(self) -> Counter[tuple[str, str]]:
        return Counter({k: n for k, n in self.starts.items() if k not in self.terminals})


def read_raw(paths: list[str]) -> Raw:
    raw = Raw()
    previous = None
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as fh:
            for line in fh:
                raw.lines += 1
                obj = json.loads(line)
                event = obj.get("event", obj)
                kind = event["event_type"]
                raw.by_type[kind] += 1
                at = event["event_time_unix_ms"]
                if previous is not None and at < previous:
                    raw.time_decreases += 1
                previous = at
                session = event.get("agent_context", {}).get("session_id", "request-only")
                if kind == "request_end":
                    req = event["request"]
                    raw.workers[req["request_id"]] = req.get("worker", {})
                    raw.received[req["request_id"]] = req["request_received_ms"]
                    for call in req.get("finish_reason_metadata", {}).get("tool_calls", []):
                        raw.calls_by_session.setdefault(session, set()).add(call.get("id"))
                elif kind == "tool_start":
                    raw.starts[(session, event["tool"]["tool_call_id"])] += 1
                elif kind in ("tool_end", "tool_error"):
                    raw.terminals[(session, event["tool"]["tool_call_id"])] += 1
    return raw


@dataclass
class Converted:
    result: ConversionResult
    doc: dict[str, Any]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for e in self.doc["traceEvents"] if e["ph"] != "M"]

    def of(self, cat: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["cat"] == cat]


def convert(paths: list[str], out: Path, options: ConvertOptions) -> Converted:
    result = convert_files(paths, out, options)
    # orjson is exact for every integer up to 2^64 - 1, which covers all u64 ids (and it is 5x faster).
    return Converted(result, orjson.loads(out.read_bytes()))


# -- shared checks ----------------------------------------------------------------------------------


def check_accounting(raw: Raw, conv: Converted) -> None:
    read = conv.result.read
    assert read.balanced()
    assert read.lines == raw.lines
    assert dict(read.accepted) == dict(raw.by_type)
    assert read.skipped_total == 0 and read.problem_count == 0


def check_counts(raw: Raw, conv: Converted, fixes: frozenset[Fix]) -> None:
    requests = conv.of("dynamo.llm")
    tools = conv.of("dynamo.agent.tool")
    inferred = [e for e in tools if e["args"].get("inferred") is True]
    open_starts = [e for e in tools if e["args"].get("unclosed") is True]
    instants = conv.of("dynamo.agent.tool.marker")
    terminal_rows = raw.by_type["tool_end"] + raw.by_type["tool_error"]
    unclosed = sum(raw.unclosed.values())

    assert len(requests) == raw.by_type["request_end"]
    assert len(tools) - len(inferred) - len(open_starts) == terminal_rows
    if Fix.INFERENCE in fixes:
        assert (len(instants), len(open_starts)) == (0, unclosed)
        assert inferred == [] or all((e["args"]["session_id"], e["args"]["tool_call_id"]) not in raw.starts
                                     for e in inferred)
    else:
        assert (len(instants), len(open_starts)) == (unclosed, 0)
    assert conv.result.draw.converted == len(requests) + len(tools) + len(instants)
    assert conv.result.draw.converted == (
        raw.by_type["request_end"] + terminal_rows + unclosed + len(inferred)
    )


def check_unclosed_starts_are_instants(raw: Raw, conv: Converted) -> None:
    instants = conv.of("dynamo.agent.tool.marker")
    assert all(e["ph"] == "i" and e["name"].startswith("Tool start: ") for e in instants)
    assert all(e["args"]["event_type"] == "tool_start" for e in instants)
    drawn = Counter((e["args"]["session_id"], e["args"]["tool_call_id"]) for e in instants)
    assert drawn == raw.unclosed


def check_big_worker_ids(raw: Raw, conv: Converted) -> int:
    """Every worker field of every request arrives exactly, as an integer; returns how many > 2^63."""
    above = 0
    for e in conv.of("dynamo.llm"):
        worker = raw.workers[e["args"]["request_id"]]
        for key, value in worker.items():
            got = e["args"][f"worker.{key}"]
            assert type(got) is int and got == value, (key, value, got)
            above += value > U63
    return above


def events_by_thread_name(doc: dict[str, Any]) -> Counter[str]:
    """Every non-metadata event with its process and thread named instead of numbered."""
    procs, threads = {}, {}
    for e in doc["traceEvents"]:
        if e["ph"] == "M" and e["name"] == "process_name":
            procs[e["pid"]] = e["args"]["name"]
        elif e["ph"] == "M" and e["name"] == "thread_name":
            threads[e["pid"], e["tid"]] = e["args"]["name"]
    out: Counter[str] = Counter()
    for e in doc["traceEvents"]:
        if e["ph"] != "M":
            where = (procs.get(e["pid"]), threads.get((e["pid"], e.get("tid"))))
            rest = {k: v for k, v in e.items() if k not in ("pid", "tid")}
            out[orjson.dumps([where, rest], option=orjson.OPT_SORT_KEYS).decode()] += 1
    return out


def check_time_order(raw: Raw, conv: Converted) -> None:
    """Events are sorted by time within each chunk (a batch of sessions, which starts with its
    metadata events; a trace written in one batch is sorted as a whole), and every request
    starts when it was received."""
    run: list[int] = []
    for e in conv.doc["traceEvents"] + [{"ph": "M"}]:
        if e["ph"] == "M":
            assert run == sorted(run)
            run = []
        elif e["ph"] in ("X", "i"):
            run.append(e["ts"])
    for e in conv.of("dynamo.llm"):
        assert e["ts"] == raw.received[e["args"]["request_id"]] * 1000


# -- the small trace ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_raw() -> Raw:
    return read_raw(SMALL)


SMALL_OPTIONS = {
    "default": ConvertOptions(),
    "markers-separate": ConvertOptions(markers=True, separate_stage_tracks=True),
    "all-fixes": ConvertOptions(fixes=ALL_FIXES, markers=True),
}


@pytest.mark.parametrize("config", sorted(SMALL_OPTIONS))
def test_small_trace(config: str, small_raw: Raw, tmp_path: Path) -> None:
    options = SMALL_OPTIONS[config]
    conv = convert(SMALL, tmp_path / "small.json", options)
    assert validate_chrome(conv.doc) == []
    check_accounting(small_raw, conv)
    check_counts(small_raw, conv, options.fixes)
    assert small_raw.by_type == {
        "request_end": 60, "request_payload": 60, "tool_start": 45, "tool_end": 41, "tool_error": 3,
    }
    assert sum(small_raw.unclosed.values()) == 1
    if Fix.BIG_INTS not in options.fixes:
        assert check_big_worker_ids(small_raw, conv) > 0
        check_unclosed_starts_are_instants(small_raw, conv)
    if Fix.REBASE_TIME not in options.fixes:
        check_time_order(small_raw, conv)


def test_small_trace_big_ints_fix_writes_exact_strings(small_raw: Raw, tmp_path: Path) -> None:
    conv = convert(SMALL, tmp_path / "s.json", ConvertOptions(fixes=frozenset({Fix.BIG_INTS})))
    checked = 0
    for e in conv.of("dynamo.llm"):
        for key, value in small_raw.workers[e["args"]["request_id"]].items():
            got = e["args"][f"worker.{key}"]
            assert got == (str(value) if value >= 2**53 else value)
            checked += value >= 2**53
    assert checked > 0


def test_small_trace_rebased_keeps_relative_times(small_raw: Raw, tmp_path: Path) -> None:
    plain = convert(SMALL, tmp_path / "a.json", ConvertOptions(markers=True))
    rebased = convert(SMALL, tmp_path / "b.json", ConvertOptions(markers=True, fixes=frozenset({Fix.REBASE_TIME})))
    first = min(e["ts"] for e in plain.events)
    assert min(e["ts"] for e in rebased.events) == 0
    assert [e["ts"] + first for e in rebased.events] == [e["ts"] for e in plain.events]


def test_small_trace_event_time_is_not_monotonic(small_raw: Raw) -> None:
    assert small_raw.time_decreases > 0  # what makes the ordering checks above meaningful


# -- the large trace ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def large_raw() -> Raw:
    return read_raw(LARGE)


@pytest.fixture(scope="module")
def large_default(tmp_path_factory: pytest.TempPathFactory) -> Converted:
    """Compatibility mode, stages (default) and first-token markers."""
    return convert(LARGE, tmp_path_factory.mktemp("large") / "large.json", ConvertOptions(markers=True))


@pytest.mark.slow
def test_large_trace_inputs_are_the_bundled_segments(large_raw: Raw) -> None:
    assert [Path(p).name for p in LARGE] == [f"dynamo-request-trace.{i:06d}.jsonl.gz" for i in range(3)]
    assert large_raw.lines == 108_149
    assert large_raw.by_type["request_end"] == 40_002
    assert sum(large_raw.unclosed.values()) == 311
    assert large_raw.time_decreases > 100


@pytest.mark.slow
def test_large_trace_has_no_violations(large_default: Converted) -> None:
    assert validate_chrome(large_default.doc) == []


@pytest.mark.slow
def test_large_trace_every_line_is_accounted_for(large_raw: Raw, large_default: Converted) -> None:
    check_accounting(large_raw, large_default)
    files = large_default.result.read.files
    assert [(f.gzip, f.lines) for f in files] == [(True, 40_000), (True, 40_000), (True, 28_149)]
    assert all(f.members > 1 for f in files)  # multi-member gzip, one member per sink flush


@pytest.mark.slow
def test_large_trace_converted_count(large_raw: Raw, large_default: Converted) -> None:
    check_counts(large_raw, large_default, frozenset())
    # Compatibility mode infers a tool for exactly the calls whose only harness row is an unclosed
    # start (Q10): each such call is drawn twice, as an instant and as an inferred slice.
    inferred = Counter(
        (e["args"]["session_id"], e["args"]["tool_call_id"])
        for e in large_default.of("dynamo.agent.tool") if e["args"].get("inferred")
    )
    assert inferred == large_raw.unclosed
    assert large_default.result.draw.converted == 40_002 + 33_918 + 311 + 311


@pytest.mark.slow
def test_large_trace_unclosed_starts_are_tool_start_instants(large_raw: Raw, large_default: Converted) -> None:
    check_unclosed_starts_are_instants(large_raw, large_default)
    assert len(large_default.of("dynamo.agent.tool.marker")) == 311


@pytest.mark.slow
def test_large_trace_worker_ids_above_2_63_survive_exactly(large_raw: Raw, large_default: Converted) -> None:
    assert check_big_worker_ids(large_raw, large_default) > 10_000


@pytest.mark.slow
def test_large_trace_is_sorted_by_time_despite_file_order(large_raw: Raw, large_default: Converted) -> None:
    assert large_raw.time_decreases > 0
    check_time_order(large_raw, large_default)
    assert large_default.doc["traceEvents"][0]["name"] == "process_name"


@pytest.mark.slow
def test_large_trace_with_all_fixes(large_raw: Raw, tmp_path: Path) -> None:
    options = ConvertOptions(fixes=ALL_FIXES, markers=True)
    conv = convert(LARGE, tmp_path / "large-fixed.json", options)
    assert validate_chrome(conv.doc) == []
    check_accounting(large_raw, conv)
    check_counts(large_raw, conv, options.fixes)
    assert conv.result.draw.converted == 40_002 + 33_918 + 311  # no duplicate inferred slices


@pytest.mark.slow
def test_large_trace_streamed_equals_the_whole_trace_layout(large_default: Converted, tmp_path: Path) -> None:
    """convert_files lays the large trace out session batch by session batch; the events are
    those of laying it out whole (the order in the file and thread ids aside), and a second
    run gives the same bytes."""
    options = ConvertOptions(markers=True)
    records, read = read_files(LARGE)
    plan = build_plan(records, options)
    whole = io.BytesIO()
    write_chrome_json(plan, whole, ArgsBuilder(), summary=summary_dict(read, plan.draw, options))
    streamed = Path(large_default.result.output).read_bytes()
    assert large_default.result.draw.late_records == 0
    assert events_by_thread_name(orjson.loads(streamed)) == events_by_thread_name(orjson.loads(whole.getvalue()))
    assert orjson.loads(streamed)["metadata"] == orjson.loads(whole.getvalue())["metadata"]
    again = tmp_path / "again.json"
    convert_files(LARGE, again, options)
    assert again.read_bytes() == streamed
