"""The typed fast path (`ingest.typed`) against the slow path (`ingest.parse`), and streaming input.

The reader decodes a line straight into a typed record when it can, and sends every other line to
the slow path, which counts exactly what is wrong. Both must build the same record for any line
the fast path accepts: checked on every real line we ship and on mutated copies of them (a fuzz
test with a fixed seed, so a failure reproduces). And however the input is cut into files, the
conversion draws the same events.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent_trace.convert import convert_files
from agent_trace.ingest.eras import IdentityCache
from agent_trace.ingest.parse import RecordParser
from agent_trace.ingest.reader import iter_records
from agent_trace.ingest.typed import FALLBACK, TypedDecoder
from agent_trace.model import LlmRequest, Record, decode_replay
from agent_trace.options import ConvertOptions
from agent_trace.report import ReadReport

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "fixtures/real/small/dynamo-request-trace.jsonl"
LARGE_FIRST = ROOT / "fixtures/real/large/dynamo-request-trace.000000.jsonl.gz"


def real_lines() -> list[bytes]:
    """Lines Dynamo wrote: the small capture and the first 4,000 of the large one."""
    lines = SMALL.read_bytes().splitlines()
    with gzip.open(LARGE_FIRST) as fh:
        lines += [line.rstrip(b"\n") for _, line in zip(range(4000), fh, strict=False)]
    return [line for line in lines if line.strip()]


def era_lines() -> list[bytes]:
    """Hand-built lines of every format era, some of them deliberately wrong."""
    lines: list[bytes] = []
    for path in sorted((ROOT / "fixtures/eras").glob("*.jsonl")):
        lines += path.read_bytes().splitlines()
    return [line for line in lines if line.strip()]


def both_paths(raw: bytes) -> tuple[Any, Any, ReadReport, ReadReport]:
    """(fast record or FALLBACK, slow record or None, their reports)."""
    fast_report, slow_report = ReadReport(), ReadReport()
    typed = TypedDecoder(fast_report, IdentityCache())
    fast = typed.decode(raw, 1)
    typed.flush_counts()
    parser = RecordParser(slow_report)
    parser.line = 1
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return fast, None, fast_report, slow_report
    return fast, parser.parse(obj), fast_report, slow_report


def comparable(rec: Record) -> Record:
    """The record with `replay` decoded: the fast path keeps the bytes as written, the slow path
    re-encodes the object, so only what they mean compares."""
    if type(rec) is LlmRequest:
        rec.replay = decode_replay(rec.replay)  # type: ignore[assignment]
    return rec


def test_the_fast_path_takes_every_real_line_and_agrees_with_the_slow_path() -> None:
    lines = real_lines()
    assert len(lines) > 4000
    for raw in lines:
        fast, slow, fast_report, slow_report = both_paths(raw)
        assert fast is not FALLBACK, raw[:200]
        assert comparable(fast) == comparable(slow), raw[:200]
        assert fast_report.to_dict() == slow_report.to_dict()


def test_era_lines_agree_or_fall_back() -> None:
    taken = 0
    for raw in era_lines():
        fast, slow, fast_report, slow_report = both_paths(raw)
        if fast is FALLBACK:
            continue
        taken += 1
        assert comparable(fast) == comparable(slow), raw[:200]
        assert fast_report.to_dict() == slow_report.to_dict()
    assert taken > 20


_ODD_VALUES: list[Any] = [None, "7", -1, -0.5, 0, 0.0, 1.5, 2**64 + 3, -(2**64), True, [], {}, "", [1, "x"],
                          {"a": {"b": [None]}}, 1e300, "\u00e9"]


def _mutate(obj: Any, rng: random.Random) -> Any:
    """One random edit somewhere in `obj`: a value replaced by an odd one, or a key dropped."""
    path: list[tuple[Any, Any]] = []
    node = obj
    while isinstance(node, (dict, list)) and node and rng.random() < 0.8:
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path.append((node, key))
        node = node[key]
    if not path:
        return rng.choice(_ODD_VALUES)
    parent, key = path[-1]
    if isinstance(parent, dict) and rng.random() < 0.25:
        del parent[key]
    else:
        parent[key] = rng.choice(_ODD_VALUES)
    return obj


def test_mutated_real_lines_agree_or_fall_back() -> None:
    """Fuzz: wherever the fast path accepts a mutated line, it builds what the slow path builds
    and counts the same; everything else falls back. Neither path raises."""
    rng = random.Random(20261203)
    sources = []
    for line in real_lines() + era_lines():
        with contextlib.suppress(ValueError):  # an era fixture's deliberately broken line
            sources.append(json.loads(line))
    outcomes: Counter[str] = Counter()
    for _ in range(6000):
        obj = _mutate(json.loads(json.dumps(rng.choice(sources))), rng)
        raw = json.dumps(obj).encode()
        fast, slow, fast_report, slow_report = both_paths(raw)
        if fast is FALLBACK:
            outcomes["fallback"] += 1
            continue
        outcomes["fast"] += 1
        assert slow is not None, raw[:300]
        assert comparable(fast) == comparable(slow), raw[:300]
        assert fast_report.to_dict() == slow_report.to_dict(), raw[:300]
    assert outcomes["fast"] > 1000 and outcomes["fallback"] > 1000  # both paths really ran


def test_a_fallback_line_is_counted_exactly_once(tmp_path: Path) -> None:
    good = SMALL.read_bytes().splitlines()[1]
    obj = orjson.loads(good)
    obj["event"]["request"]["ttft_ms"] = None  # a null number: the slow path's field issue
    path = tmp_path / "t.jsonl"
    path.write_bytes(good + b"\n" + orjson.dumps(obj) + b"\n")
    report = ReadReport()
    records = list(iter_records([str(path)], report))
    assert len(records) == 2 and report.balanced()
    assert report.field_issues == {"field_null": 1}
    assert records[1].ttft_ms is None  # type: ignore[union-attr]


def _events(path: Path) -> Counter[str]:
    doc = orjson.loads(path.read_bytes())
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"}
    return Counter(
        orjson.dumps([names.get((e["pid"], e.get("tid"))), {k: v for k, v in e.items() if k not in ("pid", "tid")}],
                     option=orjson.OPT_SORT_KEYS).decode()
        for e in doc["traceEvents"] if e["ph"] != "M"
    )


@pytest.mark.parametrize("options", [ConvertOptions(markers=True), ConvertOptions(separate_stage_tracks=True)],
                         ids=["markers", "separate-stages"])
def test_an_input_split_at_any_line_boundary_converts_to_the_same_events(options: ConvertOptions,
                                                                          tmp_path: Path) -> None:
    lines = SMALL.read_bytes().splitlines(keepends=True)
    whole = tmp_path / "whole.json"
    convert_files([str(SMALL)], whole, options)
    expected = _events(whole)
    first, second, out = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "out.json"
    for cut in range(len(lines) + 1):
        first.write_bytes(b"".join(lines[:cut]))
        second.write_bytes(b"".join(lines[cut:]))
        convert_files([str(first), str(second)], out, options)
        assert _events(out) == expected, f"cut after line {cut}"
