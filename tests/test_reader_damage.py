"""Damaged input: the reader keeps every usable line and counts every other one (trace-format.md §10.5,
§13 R8/R10; upstream-converter.md §16 Q1).

Each case writes a small file under tmp_path and states the exact report it must produce. The same
cases then go through `convert_files` (the output must be a valid trace whose embedded summary is the
read report) and through strict mode (the first problem must raise `StrictModeError` naming the file
and line). A few representative damaged files are also committed under fixtures/damaged/.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent_trace.convert import convert_files
from agent_trace.errors import StrictModeError
from agent_trace.ingest.lines import CHUNK
from agent_trace.ingest.reader import read_files
from agent_trace.options import ConvertOptions
from agent_trace.report import ReadReport
from agent_trace.validate import validate_chrome

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCHEMA = "dynamo.request.trace.v1"


# -- building blocks ----------------------------------------------------------------------------


def request(i: int, *, session: str = "s1", **request_fields: Any) -> dict[str, Any]:
    """An enveloped request_end: request `r<i>`, received at 1000 + 100 i ms, 50 ms long."""
    start = 1_000 + 100 * i
    body = {"request_id": f"r{i}", "model": "m", "request_received_ms": start, "total_time_ms": 50}
    body.update(request_fields)
    event = {
        "schema": SCHEMA,
        "event_type": "request_end",
        "event_time_unix_ms": start + 50,
        "agent_context": {"session_id": session},
        "request": body,
    }
    return {"timestamp": i, "event": event}


def _with_event_time(rec: dict[str, Any], event_time: Any) -> dict[str, Any]:
    rec["event"]["event_time_unix_ms"] = event_time
    return rec


def line(i: int, **request_fields: Any) -> bytes:
    return json.dumps(request(i, **request_fields)).encode() + b"\n"


def lines(*ids: int) -> bytes:
    return b"".join(line(i) for i in ids)


def member(data: bytes) -> bytes:
    """One self-contained gzip member, as Dynamo's jsonl_gz sink writes per flush (mtime 0: reproducible)."""
    return gzip.compress(data, mtime=0)


def raw(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def counts(report: ReadReport) -> dict[str, Any]:
    """The report's counters, without zeros, file list or examples: what each case pins exactly."""
    d = report.to_dict()
    del d["files"], d["examples"]
    return {k: v for k, v in d.items() if v}


def kept_ids(records) -> list[str]:  # noqa: ANN001
    return [r.request_id for r in records.requests]


@dataclass
class Case:
    """One damaged input and everything the reader must say about it."""

    name: str
    filename: str
    data: bytes | Callable[[], bytes]
    kept: list[str]  # request ids kept, in order
    counts: dict[str, Any]  # exact non-zero counters of ReadReport.to_dict()
    strict_line: int | None = None  # line StrictModeError must name; None: strict mode passes
    strict_kind: str | None = None
    examples: list[tuple[int | None, str]] = field(default_factory=list)  # (line, kind) in order
    file_flags: dict[str, Any] = field(default_factory=dict)  # expected FileStats attributes

    def bytes(self) -> bytes:
        return self.data() if callable(self.data) else self.data


def accepted(n: int, *, era_s: int | None = None, field_issues: dict[str, int] | None = None, **extra: Any) -> dict:
    """Counters for `n` accepted request_end rows in era S, plus `extra` counters."""
    out: dict[str, Any] = {}
    if n:
        out = {
            "accepted": {"request_end": n},
            "schemas": {SCHEMA: n},
            "eras": {"S": n if era_s is None else era_s},
        }
    if field_issues:
        out["field_issues"] = field_issues
    out.update(extra)
    return out


# -- gzip damage ----------------------------------------------------------------------------------

MEMBERS = [member(lines(0, 1)), member(lines(2)), member(lines(3, 4, 5, 6, 7, 8, 9))]


def complete_lines_in_truncated_member(cut: bytes) -> int:
    """Oracle: how many whole lines zlib can recover from a member cut short."""
    d = zlib.decompressobj(wbits=31)
    data = d.decompress(cut) + d.flush()
    assert not d.eof, "the cut member must really be truncated"
    return data.count(b"\n")


def _truncated_last_member_mid_deflate() -> tuple[bytes, int]:
    last = MEMBERS[2]
    cut = last[: len(last) // 2]
    return MEMBERS[0] + MEMBERS[1] + cut, complete_lines_in_truncated_member(cut)


_MID_DATA, _MID_RECOVERED = _truncated_last_member_mid_deflate()


def corrupt_crc(m: bytes) -> bytes:
    bad = bytearray(m)
    bad[-8] ^= 0xFF  # CRC32 of the trailer: the data inflates, then the check fails
    return bytes(bad)


def corrupt_deflate(m: bytes) -> bytes:
    bad = bytearray(m)
    bad[10] = 0xFF  # first deflate byte: block type 3 does not exist
    return bytes(bad)


def _noise(seed: int) -> str:
    """Incompressible text, so that 300 members span several read chunks."""
    return random.Random(seed).randbytes(2500).hex()


GARBAGE = bytes(range(256))  # one \n at offset 10: two "lines" of binary noise, the second unterminated

CASES: list[Case] = [
    Case(
        "truncated_tail", "t.jsonl", lines(0, 1) + line(2)[:-25],
        kept=["r0", "r1"],
        counts={"lines": 3, **accepted(2), "skipped": {"truncated_tail": 1}},
        strict_line=3, strict_kind="truncated_tail", examples=[(3, "truncated_tail")],
    ),
    Case(
        "truncated_tail_cut_inside_a_string", "t.jsonl", lines(0) + line(1)[: line(1).index(b'"m"') + 2],
        kept=["r0"],
        counts={"lines": 2, **accepted(1), "skipped": {"truncated_tail": 1}},
        strict_line=2, strict_kind="truncated_tail",
    ),
    Case(
        "unterminated_last_line_that_parses_is_kept", "t.jsonl", lines(0) + line(1)[:-1],
        kept=["r0", "r1"], counts={"lines": 2, **accepted(2)},
    ),
    Case(
        "invalid_json_mid_file", "t.jsonl", lines(0) + b'{"timestamp": 1, "event": {"schema": \n' + lines(2),
        kept=["r0", "r2"],
        counts={"lines": 3, **accepted(2), "skipped": {"invalid_json": 1}},
        strict_line=2, strict_kind="invalid_json", examples=[(2, "invalid_json")],
    ),
    Case(
        # Terminated by a newline, so it was written whole: invalid, not truncated.
        "invalid_json_last_line_with_newline", "t.jsonl", lines(0) + b"{oops}\n",
        kept=["r0"],
        counts={"lines": 2, **accepted(1), "skipped": {"invalid_json": 1}},
        strict_line=2, strict_kind="invalid_json",
    ),
    Case(
        "invalid_utf8_inside_a_string", "t.jsonl", lines(0) + line(1).replace(b'"m"', b'"\xff\xfe"') + lines(2),
        kept=["r0", "r2"],
        counts={"lines": 3, **accepted(2), "skipped": {"invalid_json": 1}},
        strict_line=2, strict_kind="invalid_json",
    ),
    Case(
        "last_gzip_member_truncated_in_trailer", "t.jsonl.gz", MEMBERS[0] + MEMBERS[1] + MEMBERS[2][:-6],
        # The deflate stream is complete, only CRC/size are cut: every line inflates.
        kept=[f"r{i}" for i in range(10)],
        counts={"lines": 10, **accepted(10), "file_issues": {"truncated_gzip_member": 1}},
        strict_line=11, strict_kind="truncated_gzip_member",
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        "last_gzip_member_truncated_mid_deflate", "t.jsonl.gz", _MID_DATA,
        kept=[f"r{i}" for i in range(3 + _MID_RECOVERED)],
        counts={
            "lines": 3 + _MID_RECOVERED + 1,
            **accepted(3 + _MID_RECOVERED),
            "skipped": {"truncated_tail": 1},
            "file_issues": {"truncated_gzip_member": 1},
        },
        strict_line=3 + _MID_RECOVERED + 1, strict_kind="truncated_gzip_member",
        examples=[(3 + _MID_RECOVERED + 1, "truncated_gzip_member"), (3 + _MID_RECOVERED + 1, "truncated_tail")],
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        "last_gzip_member_truncated_in_header", "t.jsonl.gz", MEMBERS[0] + MEMBERS[1] + MEMBERS[2][:5],
        kept=["r0", "r1", "r2"],
        counts={"lines": 3, **accepted(3), "file_issues": {"truncated_gzip_member": 1}},
        strict_line=4, strict_kind="truncated_gzip_member",
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        # A damaged member costs only itself: reading resumes at the next member header.
        "corrupt_crc_in_middle_member", "t.jsonl.gz", MEMBERS[0] + corrupt_crc(MEMBERS[1]) + MEMBERS[2],
        kept=["r0", "r1", "r3", "r4", "r5", "r6", "r7", "r8", "r9"],
        counts={"lines": 9, **accepted(9), "file_issues": {"corrupt_gzip_member": 1}},
        strict_line=3, strict_kind="corrupt_gzip_member", examples=[(3, "corrupt_gzip_member")],
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        "corrupt_deflate_in_middle_member", "t.jsonl.gz", MEMBERS[0] + corrupt_deflate(MEMBERS[1]) + MEMBERS[2],
        kept=["r0", "r1", "r3", "r4", "r5", "r6", "r7", "r8", "r9"],
        counts={"lines": 9, **accepted(9), "file_issues": {"corrupt_gzip_member": 1}},
        strict_line=3, strict_kind="corrupt_gzip_member",
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        # The damage cuts a line that spans two members (other writers split lines): its first half
        # is a truncated tail, not glued to what follows the damage.
        "corrupt_member_cuts_a_line_in_two", "t.jsonl.gz",
        member(lines(0) + line(1)[:40]) + corrupt_deflate(member(line(1)[40:] + lines(2))) + MEMBERS[2],
        kept=["r0", "r3", "r4", "r5", "r6", "r7", "r8", "r9"],
        counts={"lines": 9, **accepted(8), "skipped": {"truncated_tail": 1},
                "file_issues": {"corrupt_gzip_member": 1}},
        strict_line=2, strict_kind="corrupt_gzip_member",
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        # Garbage between members, with a false header in it: each false start is one more
        # corrupt member; the real next member is still found.
        "garbage_with_a_false_header_between_members", "t.jsonl.gz",
        MEMBERS[0] + b"junk\x1f\x8b\x08junk" + MEMBERS[1],
        kept=["r0", "r1", "r2"],
        counts={"lines": 3, **accepted(3), "file_issues": {"corrupt_gzip_member": 2}},
        strict_line=3, strict_kind="corrupt_gzip_member",
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        # Junk after a member, and the next header straddles the boundary between two reads.
        "next_member_header_straddles_a_read", "t.jsonl.gz",
        lambda: MEMBERS[0] + b"j" * (CHUNK - 1 - len(MEMBERS[0])) + MEMBERS[1],
        kept=["r0", "r1", "r2"],
        counts={"lines": 3, **accepted(3), "file_issues": {"corrupt_gzip_member": 1}},
        strict_line=3, strict_kind="corrupt_gzip_member",
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        "gz_suffix_but_plain_text", "t.jsonl.gz", lines(0, 1),
        kept=["r0", "r1"],
        counts={"lines": 2, **accepted(2), "file_issues": {"gz_suffix_not_gzip": 1}},
        strict_line=1, strict_kind="gz_suffix_not_gzip", examples=[(1, "gz_suffix_not_gzip")],
        file_flags={"gzip": False, "members": 0},
    ),
    Case(
        "gzip_detected_by_magic_without_gz_suffix", "trace.jsonl", MEMBERS[0] + MEMBERS[1],
        kept=["r0", "r1", "r2"], counts={"lines": 3, **accepted(3)},
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        "zero_padding_after_last_member", "t.jsonl.gz", MEMBERS[0] + MEMBERS[1] + b"\x00" * 512,
        kept=["r0", "r1", "r2"], counts={"lines": 3, **accepted(3)},
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        # Python's gzip skips zero padding between members too; so must we, wherever read chunks end.
        "zero_padding_between_members", "t.jsonl.gz", MEMBERS[0] + b"\x00" * 16 + MEMBERS[1] + b"\x00" * 3,
        kept=["r0", "r1", "r2"], counts={"lines": 3, **accepted(3)},
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        "zero_padding_longer_than_a_read_chunk", "t.jsonl.gz", MEMBERS[0] + b"\x00" * (CHUNK + 1000),
        kept=["r0", "r1"], counts={"lines": 2, **accepted(2)},
        file_flags={"gzip": True, "members": 1},
    ),
    Case(
        "many_members_across_read_chunks", "t.jsonl.gz",
        lambda: b"".join(member(lines(i) + raw({"pad": _noise(i)})) for i in range(300)),
        kept=[f"r{i}" for i in range(300)],
        counts={"lines": 600, **accepted(300), "skipped": {"unknown_schema": 300},
                "skipped_detail": {"unknown_schema: None": 300}},
        strict_line=2, strict_kind="unknown_schema",
        file_flags={"gzip": True, "members": 300},
    ),
    Case(
        # Dynamo never splits a line across members, but other writers may; members are one stream.
        "line_split_across_members", "t.jsonl.gz",
        member(lines(0) + line(1)[:40]) + member(line(1)[40:] + lines(2)),
        kept=["r0", "r1", "r2"], counts={"lines": 3, **accepted(3)},
        file_flags={"gzip": True, "members": 2},
    ),
    Case(
        "garbage_after_last_member", "t.jsonl.gz", MEMBERS[0] + b"not gzip at all\n",
        kept=["r0", "r1"],
        counts={"lines": 2, **accepted(2), "file_issues": {"corrupt_gzip_member": 1}},
        strict_line=3, strict_kind="corrupt_gzip_member",
        file_flags={"gzip": True, "members": 1},
    ),
    Case(
        "binary_garbage", "t.jsonl", GARBAGE + b"\n" + lines(0) + GARBAGE,
        kept=["r0"],
        # GARBAGE holds one \n of its own: lines 1, 2 (+ r0 on 3), then 4 and the unterminated 5.
        counts={"lines": 5, **accepted(1), "skipped": {"invalid_json": 3, "truncated_tail": 1}},
        strict_line=1, strict_kind="invalid_json",
        examples=[(1, "invalid_json"), (2, "invalid_json"), (4, "invalid_json"), (5, "truncated_tail")],
    ),
    Case("empty_file", "t.jsonl", b"", kept=[], counts={}),
    Case("empty_file_named_gz", "t.jsonl.gz", b"", kept=[], counts={}),
    Case(
        "non_object_lines", "t.jsonl", b'[1,2]\n"x"\n3\nnull\ntrue\n{"event": [1]}\n{"event": null}\n' + lines(0),
        kept=["r0"],
        counts={"lines": 8, **accepted(1), "skipped": {"not_an_object": 7}},
        strict_line=1, strict_kind="not_an_object",
    ),
    Case(
        "unknown_schema", "t.jsonl",
        raw({"event": {"schema": "foo.v9", "event_type": "request_end"}})
        + raw({"schema": "foo.v9", "event_type": "tool_end"})
        + raw({"timestamp": 3, "event": {"event_type": "request_end"}})
        + raw({"event": {**request(9)["event"], "schema": "dynamo.request.trace.v2"}})
        + lines(0),
        kept=["r0"],
        counts={
            "lines": 5, **accepted(1), "skipped": {"unknown_schema": 4},
            "skipped_detail": {
                "unknown_schema: None": 1,
                "unknown_schema: dynamo.request.trace.v2": 1,
                "unknown_schema: foo.v9": 2,
            },
        },
        strict_line=1, strict_kind="unknown_schema",
    ),
    Case(
        "unsupported_event_type", "t.jsonl",
        raw({"event": {"schema": SCHEMA, "event_type": "request_start", "event_time_unix_ms": 5}})
        + raw({"event": {"schema": "dynamo.agent.trace.v1", "event_type": "request_payload"}})
        + raw({"event": {"schema": SCHEMA}})
        + lines(0),
        kept=["r0"],
        counts={
            "lines": 4, **accepted(1), "skipped": {"unsupported_event_type": 3},
            "skipped_detail": {
                "unsupported_event_type: dynamo.agent.trace.v1 request_payload": 1,
                "unsupported_event_type: dynamo.request.trace.v1 None": 1,
                "unsupported_event_type: dynamo.request.trace.v1 request_start": 1,
            },
        },
        strict_line=1, strict_kind="unsupported_event_type",
    ),
    Case(
        "missing_time", "t.jsonl",
        raw({"event": {"schema": SCHEMA, "event_type": "request_end", "request": {"request_id": "x"}}})
        + raw({"event": {"schema": SCHEMA, "event_type": "tool_end", "agent_context": {"session_id": "s"},
                         "tool": {"tool_call_id": "c", "tool_class": "bash"}}})
        + lines(0),
        kept=["r0"],
        counts={"lines": 3, **accepted(1), "skipped": {"missing_time": 2}},
        strict_line=1, strict_kind="missing_time",
    ),
    Case(
        # Present but unusable times are field issues first, then the row has no time.
        "unusable_time_values", "t.jsonl",
        raw({"event": {"schema": SCHEMA, "event_type": "request_end", "event_time_unix_ms": None,
                       "request": {"request_id": "x", "request_received_ms": "1000"}}})
        + raw({"event": {"schema": SCHEMA, "event_type": "tool_start", "event_time_unix_ms": "soon",
                         "agent_context": {"session_id": "s"}, "tool": {"tool_call_id": "c"}}})
        + lines(0),
        kept=["r0"],
        counts={
            "lines": 3, **accepted(1), "skipped": {"missing_time": 2},
            "field_issues": {"field_null": 1, "field_not_a_number": 2},
        },
        strict_line=1, strict_kind="field_null",
    ),
    Case(
        "missing_body", "t.jsonl",
        raw({"event": {"schema": SCHEMA, "event_type": "request_end", "event_time_unix_ms": 5}})
        + raw({"event": {"schema": SCHEMA, "event_type": "tool_end", "event_time_unix_ms": 5, "tool": "bash"}})
        + raw({"event": {"schema": SCHEMA, "event_type": "request_payload", "event_time_unix_ms": 5}})
        + lines(0),
        kept=["r0"],
        counts={"lines": 4, **accepted(1), "skipped": {"missing_body": 3}},
        strict_line=1, strict_kind="missing_body",
    ),
    Case(
        # Kept records, with the bad fields dropped and counted (trace-format.md §4).
        "unusable_fields_are_counted_not_fatal", "t.jsonl",
        line(0, ttft_ms=None) + line(1, avg_itl_ms="12.5")
        + line(2).replace(b'"total_time_ms": 50', b'"total_time_ms": NaN')
        + raw({**request(3), "event": {**request(3)["event"], "agent_context": "s1"}}),
        kept=["r0", "r1", "r2", "r3"],
        counts={
            "lines": 4, **accepted(4, era_s=3), "eras": {"S": 3, "none": 1},
            "field_issues": {"field_non_finite": 1, "field_not_a_number": 1, "field_not_an_object": 1,
                             "field_null": 1},
        },
        strict_line=1, strict_kind="field_null",
    ),
    Case(
        "integers_beyond_u64", "t.jsonl",
        # `replay` is passed through undecoded (no layout or table reads it); a hash beyond u64
        # makes `replay_hashes` None when asked, and is no damage to the line.
        line(0, replay={"input_sequence_hashes": [2**64, 1]}),
        kept=["r0"],
        counts={"lines": 1, **accepted(1)},
    ),
    Case(
        # trace-format.md §4/§6: epoch times and counts are u64. A value below zero is counted and
        # treated as missing (never drawn below zero); -0 and -0.0 are zero, not damage.
        "negative_u64_values_are_counted_as_missing", "t.jsonl",
        line(0, request_received_ms=-10)
        + line(1, input_tokens=-1, cached_tokens=-0.5)
        + raw(_with_event_time(request(2), -5))
        + line(3, cached_tokens=-0.0) + line(4, queue_depth=0).replace(b'"queue_depth": 0', b'"queue_depth": -0')
        + raw(_with_event_time(request(5, request_received_ms=-2), -1.0)),
        kept=["r0", "r1", "r2", "r3", "r4"],
        counts={
            "lines": 6, **accepted(5), "field_issues": {"field_bad_u64": 6}, "skipped": {"missing_time": 1},
        },
        strict_line=1, strict_kind="field_bad_u64",
        examples=[(1, "field_bad_u64"), (2, "field_bad_u64"), (2, "field_bad_u64"), (3, "field_bad_u64"),
                  (6, "field_bad_u64"), (6, "field_bad_u64"), (6, "missing_time")],
    ),
    Case(
        "blank_lines", "t.jsonl", b"\n   \n" + lines(0) + b"\t\n\n" + lines(1) + b"\n \n",
        kept=["r0", "r1"], counts={"lines": 8, "blank_lines": 6, **accepted(2)},
    ),
    Case(
        "crlf_line_endings", "t.jsonl",
        lines(0, 1).replace(b"\n", b"\r\n") + b"\r\n" + lines(2).replace(b"\n", b"\r\n"),
        kept=["r0", "r1", "r2"], counts={"lines": 4, "blank_lines": 1, **accepted(3)},
    ),
    Case(
        "crlf_with_truncated_tail", "t.jsonl", lines(0, 1).replace(b"\n", b"\r\n") + line(2)[:30],
        kept=["r0", "r1"],
        counts={"lines": 3, **accepted(2), "skipped": {"truncated_tail": 1}},
        strict_line=3, strict_kind="truncated_tail",
    ),
    Case(
        "trailing_nul_bytes_in_plain_text", "t.jsonl", lines(0, 1) + b"\x00" * 64,
        kept=["r0", "r1"],
        counts={"lines": 3, **accepted(2), "skipped": {"truncated_tail": 1}},
        strict_line=3, strict_kind="truncated_tail",
    ),
]


def _write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / case.filename
    path.write_bytes(case.bytes())
    return path


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


# -- read_files -----------------------------------------------------------------------------------


def test_read_files_keeps_usable_lines_and_counts_the_rest(tmp_path: Path, case: Case) -> None:
    path = _write(tmp_path, case)
    records, report = read_files([str(path)])

    assert report.balanced(), counts(report)
    assert kept_ids(records) == case.kept
    assert counts(report) == case.counts
    (stats,) = report.files
    assert stats.path == str(path)
    assert stats.lines == case.counts.get("lines", 0)
    for attr, value in case.file_flags.items():
        assert getattr(stats, attr) == value, attr
    if case.examples:
        assert [(p.line, p.kind) for p in report.examples] == case.examples
        assert all(p.location() == f"{path}:{p.line}" for p in report.examples)
    # Every problem counted has an example (up to the cap), located in this file.
    assert len(report.examples) == min(20, report.problem_count)
    assert all(p.path == str(path) for p in report.examples)


def test_strict_mode_raises_at_the_first_problem(tmp_path: Path, case: Case) -> None:
    path = _write(tmp_path, case)
    if case.strict_line is None:
        records, report = read_files([str(path)], strict=True)
        assert kept_ids(records) == case.kept
        assert report.problem_count == 0
        return
    with pytest.raises(StrictModeError) as info:
        read_files([str(path)], strict=True)
    err = info.value
    assert err.path == str(path)
    assert err.line == case.strict_line
    assert str(err).startswith(f"{path}:{case.strict_line}: {case.strict_kind}")


def test_convert_files_writes_a_valid_trace_and_embeds_the_report(tmp_path: Path, case: Case) -> None:
    path = _write(tmp_path, case)
    out = tmp_path / "out" / "trace.json"
    result = convert_files([str(path)], out, ConvertOptions())

    assert result.read.balanced()
    assert counts(result.read) == case.counts
    doc = json.loads(out.read_bytes())
    assert validate_chrome(doc) == []
    requests = [e for e in doc["traceEvents"] if e.get("cat") == "dynamo.llm"]
    assert [e["args"]["request_id"] for e in requests] == case.kept
    assert result.draw.converted == len(case.kept)  # no tool rows, no finish metadata in these cases
    summary = doc["metadata"]["agent_trace"]["input"]
    assert summary == json.loads(json.dumps(result.read.to_dict()))


def test_convert_files_strict_mode_fails_instead(tmp_path: Path, case: Case) -> None:
    path = _write(tmp_path, case)
    out = tmp_path / "trace.json"
    if case.strict_line is None:
        convert_files([str(path)], out, ConvertOptions(), strict=True)
        return
    with pytest.raises(StrictModeError) as info:
        convert_files([str(path)], out, ConvertOptions(), strict=True)
    assert (info.value.path, info.value.line) == (str(path), case.strict_line)


# -- damage that is about files, not lines ---------------------------------------------------------


def test_truncated_gzip_member_matches_pythons_gzip_module(tmp_path: Path) -> None:
    """What Python's gzip yields before its EOFError, we keep too (trace-format.md §10.5)."""
    path = tmp_path / "seg.000000.jsonl.gz"
    path.write_bytes(_MID_DATA)
    recovered = b""
    with gzip.open(path, "rb") as fh:
        try:
            while chunk := fh.read1(64):
                recovered += chunk
        except EOFError:
            pass
    whole_lines = recovered.count(b"\n")
    records, report = read_files([str(path)])
    assert len(records.requests) >= whole_lines >= 3
    assert report.file_issues == {"truncated_gzip_member": 1}


def test_unreadable_path_is_counted_and_strict_names_it(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(lines(0))
    directory = tmp_path / "a_directory.jsonl"
    directory.mkdir()
    records, report = read_files([str(directory), str(good)])
    assert kept_ids(records) == ["r0"]
    assert report.balanced()
    assert counts(report) == {"lines": 1, **accepted(1), "file_issues": {"unreadable": 1}}
    assert [(p.path, p.line, p.kind) for p in report.examples] == [(str(directory), None, "unreadable")]

    with pytest.raises(StrictModeError) as info:
        read_files([str(directory), str(good)], strict=True)
    assert (info.value.path, info.value.line) == (str(directory), None)


def test_damage_in_one_file_does_not_touch_the_next(tmp_path: Path) -> None:
    """Segments of one run: a crash leaves the first one cut, a restart writes the next."""
    first = tmp_path / "seg.000000.jsonl.gz"
    first.write_bytes(MEMBERS[0] + MEMBERS[1][:5])  # cut inside the second member's header
    second = tmp_path / "seg.000001.jsonl"
    second.write_bytes(lines(5) + b"{broken\n" + lines(6) + line(7)[:20])
    records, report = read_files([str(first), str(second)])

    assert report.balanced()
    assert kept_ids(records) == ["r0", "r1", "r5", "r6"]
    assert [r.line for r in records.requests] == [1, 2, 1, 3]
    assert [r.file for r in records.requests] == [0, 0, 1, 1]
    assert [(f.lines, f.gzip) for f in report.files] == [(2, True), (4, False)]
    assert [(p.location(), p.kind) for p in report.examples] == [
        (f"{first}:3", "truncated_gzip_member"),
        (f"{second}:2", "invalid_json"),
        (f"{second}:4", "truncated_tail"),
    ]


def test_examples_are_capped_but_counts_are_not(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"{bad\n" * 500 + lines(0))
    records, report = read_files([str(path)])
    assert kept_ids(records) == ["r0"]
    assert report.skipped == {"invalid_json": 500}
    assert len(report.examples) == 20
    assert report.balanced()


# -- stdin ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_stdin_is_read_like_a_file(gzipped: bool) -> None:
    data = lines(0, 1) + line(2)[:-10]
    if gzipped:
        data = member(lines(0, 1)) + member(line(2))[:-30]
    records, report = read_files(["-"], stdin=io.BytesIO(data))
    assert report.balanced()
    assert kept_ids(records)[:2] == ["r0", "r1"]
    assert report.files[0].path == "-"
    assert report.files[0].gzip is gzipped
    assert report.problem_count >= 1
    assert all(p.path == "-" for p in report.examples)


def test_convert_files_reads_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeStdin:
        buffer = io.BytesIO(lines(0) + b"\n" + b"[1]\n" + lines(1))

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    other = tmp_path / "more.jsonl"
    other.write_bytes(lines(2))
    out = tmp_path / "out.json"
    result = convert_files(["-", str(other)], out, ConvertOptions())
    assert result.read.balanced()
    assert counts(result.read) == {
        "lines": 5, "blank_lines": 1, **accepted(3), "skipped": {"not_an_object": 1},
    }
    doc = json.loads(out.read_bytes())
    assert [e["args"]["request_id"] for e in doc["traceEvents"] if e.get("cat") == "dynamo.llm"] == ["r0", "r1", "r2"]
    assert [f["path"] for f in doc["metadata"]["agent_trace"]["input"]["files"]] == ["-", str(other)]


# -- committed fixtures ---------------------------------------------------------------------------

DAMAGED = FIXTURES / "damaged"

# The first 11 non-payload lines of the small real trace.
SMALL_HEAD = {"request_end": 5, "tool_end": 2, "tool_error": 1, "tool_start": 3}

# name -> (accepted by event type, skipped, file issues, lines)
COMMITTED = {
    "truncated-tail.jsonl": (SMALL_HEAD, {"truncated_tail": 1}, {}, 12),
    "truncated-last-member.jsonl.gz": (SMALL_HEAD, {"truncated_tail": 1}, {"truncated_gzip_member": 1}, 12),
    "not-gzip.jsonl.gz": (SMALL_HEAD, {}, {"gz_suffix_not_gzip": 1}, 11),
    "mixed-damage.jsonl": (
        {"request_end": 2, "tool_end": 1, "tool_start": 1},
        {"invalid_json": 1, "not_an_object": 1, "unknown_schema": 1, "unsupported_event_type": 1,
         "missing_time": 1, "truncated_tail": 1},
        {},
        11,
    ),
}


def test_committed_damaged_fixtures_are_all_there() -> None:
    assert sorted(p.name for p in DAMAGED.iterdir() if p.name != "README.md") == sorted(COMMITTED)


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_committed_damaged_fixture(name: str, tmp_path: Path) -> None:
    want_accepted, want_skipped, want_issues, want_lines = COMMITTED[name]
    path = DAMAGED / name
    records, report = read_files([str(path)])
    assert report.balanced()
    assert report.lines == want_lines
    assert dict(report.accepted) == want_accepted
    assert dict(report.skipped) == want_skipped
    assert dict(report.file_issues) == want_issues
    result = convert_files([str(path)], tmp_path / "o.json", ConvertOptions(markers=True))
    assert validate_chrome(json.loads((tmp_path / "o.json").read_bytes())) == []
    assert result.draw.by_category["dynamo.llm"] == want_accepted["request_end"]
    with pytest.raises(StrictModeError) as info:
        read_files([str(path)], strict=True)
    assert info.value.path == str(path)
    assert info.value.line is not None


def test_an_integer_beyond_u64_changes_only_its_own_event(tmp_path: Path) -> None:
    """Regression: the encoder's fallback for integers orjson cannot write once stringified every
    integer >= 2^53 in the whole 16,384-event batch, so unrelated u64 worker ids became strings."""
    path = tmp_path / "t.jsonl"
    # The NaN literal makes orjson refuse r1's line, so the stdlib parser keeps 2^64+1 an exact int.
    path.write_bytes(line(0, worker={"decode_worker_id": 2**63 + 5})
                     + line(1, input_tokens=2**64 + 1, avg_itl_ms=float("nan")))
    out = tmp_path / "o.json"
    result = convert_files([str(path)], out, ConvertOptions(stages=False))
    assert result.read.field_issues == {"field_non_finite": 1}
    args = {e["args"]["request_id"]: e["args"] for e in json.loads(out.read_bytes())["traceEvents"] if e["ph"] == "X"}
    assert str(args["r1"]["input_tokens"]) == str(2**64 + 1)  # exact, as an integer or its decimal string
    assert args["r0"]["worker.decode_worker_id"] == 2**63 + 5  # untouched: still an integer


# -- integers orjson cannot hold, negative u64 values (trace-format.md §6.2, §13 R4) -------------------


def test_an_integer_beyond_u64_is_kept_exactly_or_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(0, worker={"decode_worker_id": 2**64 + 1}))
    out = tmp_path / "o.json"
    result = convert_files([str(path)], out, ConvertOptions(stages=False))
    (event,) = [e for e in json.loads(out.read_bytes())["traceEvents"] if e["ph"] == "X"]
    exact = str(event["args"]["worker.decode_worker_id"]) == str(2**64 + 1)
    assert exact or result.read.field_issues.get("field_bad_u64", 0) == 1


def test_negative_epoch_times_are_counted_not_drawn_below_zero(tmp_path: Path) -> None:
    tool = {"schema": SCHEMA, "event_type": "tool_end", "event_time_unix_ms": 100, "agent_context": {"session_id": "s1"},
            "tool": {"tool_call_id": "c", "tool_class": "bash", "started_at_unix_ms": -20, "ended_at_unix_ms": 100}}
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(0, request_received_ms=-10) + raw(tool))
    out = tmp_path / "o.json"
    result = convert_files([str(path)], out, ConvertOptions())
    assert result.read.balanced()
    assert validate_chrome(json.loads(out.read_bytes())) == []
    assert sum(result.read.field_issues.values()) == 2


def _read_one(tmp_path: Path, data: bytes, *, strict: bool = False):  # noqa: ANN202
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    return read_files([str(path)], strict=strict)


def test_integers_beyond_u64_on_a_clean_line_stay_exact_everywhere_on_that_line(tmp_path: Path) -> None:
    """orjson turns these into floats without complaint; the line is decoded again so that every
    integer literal on it, also in objects passed through, keeps its exact value."""
    rec = request(
        0, input_tokens=2**64 + 7, worker={"decode_worker_id": 2**64 + 1, "prefill_worker_id": 2**64 + 2,
                                            "decode_dp_rank": 0},
        finish_reason_metadata={"finish_reason": "tool_calls",
                                "tool_calls": [{"choice_index": 2**64 + 4, "tool_call_index": 0, "id": "c"}]},
    )
    rec["event"]["agent_context"]["x_big"] = [2**64 + 3, 1.5]
    records, report = _read_one(tmp_path, raw(rec) + line(1, worker={"decode_worker_id": 2**64 - 1}))
    assert report.balanced() and report.problem_count == 0
    r0, r1 = records.requests
    assert r0.input_tokens == 2**64 + 7 and type(r0.input_tokens) is int
    assert dict(r0.worker) == {"decode_worker_id": 2**64 + 1, "prefill_worker_id": 2**64 + 2, "decode_dp_rank": 0}
    assert all(type(v) is int for v in r0.worker.values())
    assert r0.context_extra == {"x_big": [2**64 + 3, 1.5]}
    assert r0.finish is not None and r0.finish["tool_calls"][0]["choice_index"] == 2**64 + 4
    assert [c.choice_index for c in r0.tool_calls] == [2**64 + 4]
    assert dict(r1.worker) == {"decode_worker_id": 2**64 - 1}  # the top of u64: orjson holds it already


def test_an_integer_beyond_u64_in_a_token_count_is_written_exactly(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(0, input_tokens=2**64 + 1, worker={"decode_worker_id": 2**63 + 5}))
    out = tmp_path / "o.json"
    result = convert_files([str(path)], out, ConvertOptions(stages=False))
    assert result.read.problem_count == 0
    (args,) = [e["args"] for e in json.loads(out.read_bytes())["traceEvents"] if e["ph"] == "X"]
    assert str(args["input_tokens"]) == str(2**64 + 1)
    assert args["worker.decode_worker_id"] == 2**63 + 5


def test_a_float_literal_is_not_turned_into_an_integer(tmp_path: Path) -> None:
    """Only integer literals are made exact: a float written as a float stays one."""
    data = line(0, worker={"decode_worker_id": 2**64 + 1}).replace(
        b'"decode_worker_id": 18446744073709551617', b'"decode_worker_id": 1.8446744073709552e19'
    ) + line(1, input_tokens=2**64 + 1).replace(b"18446744073709551617", b"18446744073709551617.0")
    records, report = _read_one(tmp_path, data)
    assert report.problem_count == 0
    r0, r1 = records.requests
    assert dict(r0.worker) == {"decode_worker_id": 1.8446744073709552e19}
    assert type(r1.input_tokens) is float and r1.input_tokens == float(2**64)


def test_a_negative_integer_beyond_i64_in_a_u64_field_is_counted(tmp_path: Path) -> None:
    records, report = _read_one(tmp_path, line(0, request_received_ms=-(2**63) - 1, output_tokens=-(2**64)))
    (r0,) = records.requests
    assert (r0.received_ms, r0.output_tokens, r0.event_time_ms) == (None, None, 1050)
    assert report.field_issues == {"field_bad_u64": 2}
    assert [p.detail for p in report.examples] == [
        # exact: the slow path decodes integers of any size
        f"request_received_ms={-(2**63) - 1}", f"output_tokens={-(2**64)}",
    ]


def test_objects_decoded_elsewhere_are_parsed_as_they_are() -> None:
    """`records_from_objects` has no source text to decode again: a float worker id stays a float."""
    from agent_trace.convert import records_from_objects

    rec = request(0, worker={"decode_worker_id": float(2**64)}, input_tokens=float(2**64))
    records, report = records_from_objects([rec])
    (r0,) = records.requests
    assert dict(r0.worker) == {"decode_worker_id": float(2**64)}
    assert r0.input_tokens == float(2**64)
    assert report.problem_count == 0


def _tool(event_time: Any, **tool_fields: Any) -> dict[str, Any]:
    body = {"tool_call_id": "c", "tool_class": "bash", "status": "succeeded", **tool_fields}
    return {"schema": SCHEMA, "event_type": "tool_end", "event_time_unix_ms": event_time,
            "agent_context": {"session_id": "s1"}, "tool": body}


def test_negative_u64_values_on_tool_and_payload_rows_are_counted(tmp_path: Path) -> None:
    payload = {"schema": SCHEMA, "event_type": "request_payload", "event_time_unix_ms": -3,
               "payload": {"request_id": "r9", "request": {"messages": []}}}
    data = (
        raw(_tool(100, started_at_unix_ms=-20, ended_at_unix_ms=100, output_tokens=-4, output_bytes=-0))
        + raw(_tool(200, started_at_unix_ms=150, ended_at_unix_ms=-1.5, duration_ms=50.0))
        + raw(_tool(-7, started_at_unix_ms=1, ended_at_unix_ms=2))
        + raw(payload)
    )
    records, report = _read_one(tmp_path, data)
    assert report.balanced()
    t0, t1 = records.tools
    assert (t0.started_ms, t0.ended_ms, t0.output_tokens, t0.output_bytes) == (None, 100, None, 0)
    assert (t1.started_ms, t1.ended_ms, t1.duration_ms) == (150, None, 50.0)
    (p0,) = records.payloads
    assert (p0.request_id, p0.event_time_ms) == ("r9", None)
    assert report.skipped == {"missing_time": 1}
    assert report.field_issues == {"field_bad_u64": 5}
    path = tmp_path / "t.jsonl"
    assert [(p.location(), p.kind, p.detail) for p in report.examples] == [
        (f"{path}:1", "field_bad_u64", "started_at_unix_ms=-20"),
        (f"{path}:1", "field_bad_u64", "output_tokens=-4"),
        (f"{path}:2", "field_bad_u64", "ended_at_unix_ms=-1.5"),
        (f"{path}:3", "field_bad_u64", "event_time_unix_ms=-7"),
        (f"{path}:3", "missing_time", "tool_end without event_time_unix_ms"),
        (f"{path}:4", "field_bad_u64", "event_time_unix_ms=-3"),
    ]
    with pytest.raises(StrictModeError) as info:
        _read_one(tmp_path, data, strict=True)
    assert (info.value.line, str(info.value)) == (1, f"{path}:1: field_bad_u64: started_at_unix_ms=-20")


def test_zero_and_negative_zero_are_valid_epoch_times(tmp_path: Path) -> None:
    data = raw(_tool(0, started_at_unix_ms=-0, ended_at_unix_ms=-0.0)) + raw(_tool(-0.0, started_at_unix_ms=0))
    records, report = _read_one(tmp_path, data)
    assert report.problem_count == 0
    t0, t1 = records.tools
    assert (t0.event_time_ms, t0.started_ms, t0.ended_ms) == (0, 0, 0.0)
    assert str(t0.ended_ms) == "0.0" and str(t1.event_time_ms) == "0.0"  # no "-0.0" reaches the output
