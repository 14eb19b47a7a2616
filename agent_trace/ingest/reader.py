"""Read trace files as a stream of records plus a `ReadReport` (the IO edge of the input side).

`iter_records` yields records in input order (file order, then line order) as they are read, so
a caller that lays them out as they come holds only what it still needs. Each line goes through
the typed decoder (`ingest.typed`); a line it is not sure of is decoded again with the standard
library (exact integers of any size, NaN and Infinity literals) and goes through the slow path
(`ingest.parse`), which counts exactly what is wrong. A line neither decoder accepts is
`invalid_json`, or `truncated_tail` when it is the unterminated last line of its file.

    report.lines == report.blank + sum(report.accepted.values()) + sum(report.skipped.values())
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO

import orjson

from ..errors import StrictModeError
from ..model import LlmRequest, Record, Records, ToolEvent
from ..report import FileIssue, FileStats, Problem, ReadReport, Skip
from .lines import iter_lines
from .parse import RecordParser
from .sources import STDIN
from .typed import FALLBACK, TypedDecoder

_FAILED = object()


def _decode_slow(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _FAILED


def iter_records(
    files: Sequence[str],
    report: ReadReport,
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    stdin: BinaryIO | None = None,
) -> Iterator[Record]:
    """Read already-expanded inputs in order, counting into `report`; `progress` gets the
    number of bytes read."""
    parser = RecordParser(report, strict=strict)
    typed = TypedDecoder(report, parser.identities)
    for index, path in enumerate(files):
        stats = FileStats(path)
        report.files.append(stats)
        parser.path, parser.file_index, typed.file_index = path, index, index
        try:
            if path == STDIN:
                yield from _read_stream(stdin or sys.stdin.buffer, stats, parser, typed, report, progress)
            else:
                with open(path, "rb") as fh:
                    yield from _read_stream(fh, stats, parser, typed, report, progress,
                                            gz_suffix=path.endswith(".gz"))
        except OSError as exc:
            if strict:
                raise StrictModeError(f"cannot read: {exc.strerror or exc}", path=path) from exc
            report.file_issues[FileIssue.UNREADABLE.value] += 1
            report.add_example(Problem(path, None, FileIssue.UNREADABLE.value, str(exc)))


def _read_stream(
    stream: BinaryIO,
    stats: FileStats,
    parser: RecordParser,
    typed: TypedDecoder,
    report: ReadReport,
    progress: Callable[[int], None] | None,
    *,
    gz_suffix: bool = False,
) -> Iterator[Record]:
    line_no = 0

    def on_issue(kind: FileIssue, detail: str) -> None:
        if parser.strict:
            raise StrictModeError(f"{kind.value}: {detail}", path=stats.path, line=line_no + 1)
        report.file_issues[kind.value] += 1
        report.add_example(Problem(stats.path, line_no + 1, kind.value, detail))

    def on_progress(n: int) -> None:
        stats.bytes_read += n
        if progress is not None and n:
            progress(n)

    decode = typed.decode
    blank = 0
    try:
        for line_no, raw, is_tail in iter_lines(stream, stats, on_issue, on_progress, gz_suffix=gz_suffix):
            # Test the first byte before stripping: almost every line starts with '{'.
            if (not raw or raw[0] != 0x7B) and not raw.strip():
                blank += 1
                continue
            rec = decode(raw, line_no)
            if rec is FALLBACK:
                parser.line = line_no
                obj = _decode_slow(raw)
                if obj is _FAILED:
                    if is_tail:
                        parser.skip(Skip.TRUNCATED_TAIL, "last line is cut short (no newline, not valid JSON)")
                    else:
                        parser.skip(Skip.INVALID_JSON, _why_invalid(raw))
                    continue
                rec = parser.parse(obj)
                if rec is None:
                    continue
            yield rec  # type: ignore[misc]
    finally:
        typed.flush_counts()
        report.lines += stats.lines
        report.blank += blank


def _why_invalid(raw: bytes) -> str:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON: {exc}"[:160]
    return "invalid JSON"


def collect(records: Iterable[Record], files: Sequence[str]) -> Records:
    """All of `records` in lists by kind (for whole-trace callers: analysis, tests)."""
    out = Records(files=list(files), requests=[], tools=[], payloads=[])
    req, tools, payloads = out.requests.append, out.tools.append, out.payloads.append
    for r in records:
        t = type(r)
        if t is LlmRequest:
            req(r)  # type: ignore[arg-type]
        elif t is ToolEvent:
            tools(r)  # type: ignore[arg-type]
        else:
            payloads(r)  # type: ignore[arg-type]
    return out


def read_files(
    files: Sequence[str],
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    stdin: BinaryIO | None = None,
) -> tuple[Records, ReadReport]:
    """Read already-expanded inputs in order, whole."""
    report = ReadReport()
    records = collect(iter_records(files, report, strict=strict, progress=progress, stdin=stdin), files)
    return records, report


def records_from_objects(objects: Iterable[Any], *, strict: bool = False) -> tuple[Records, ReadReport]:
    """Parse already-decoded JSON objects (enveloped or bare) through the slow path."""
    report = ReadReport()
    parser = RecordParser(report, strict=strict)
    parser.path = "<objects>"

    def parsed() -> Iterator[Record]:
        for line, obj in enumerate(objects, start=1):
            parser.line = line
            report.lines += 1
            rec = parser.parse(obj)
            if rec is not None:
                yield rec

    return collect(parsed(), ["<objects>"]), report
