"""Read trace files into `Records` plus a `ReadReport` (the IO edge of the input side).

Lines are decoded with orjson; a line orjson refuses is retried with the standard library, which
accepts integers beyond 64 bits and NaN literals (both then meet the parser's own checks). A line
that neither accepts is `invalid_json`, or `truncated_tail` when it is the unterminated last line
of its file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import orjson

from .errors import StrictModeError
from .lines import iter_lines
from .model import Records
from .parse import RecordParser
from .report import FileIssue, FileStats, Problem, ReadReport, Skip
from .sources import STDIN

_FAILED = object()


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _FAILED


def read_files(
    files: Sequence[str],
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    stdin: BinaryIO | None = None,
) -> tuple[Records, ReadReport]:
    """Read already-expanded inputs in order. `progress` gets the number of bytes read."""
    records = Records(files=list(files), requests=[], tools=[], payloads=[])
    report = ReadReport()
    parser = RecordParser(records, report, strict=strict)
    for index, path in enumerate(files):
        stats = FileStats(path)
        report.files.append(stats)
        parser.path, parser.file_index = path, index
        try:
            if path == STDIN:
                _read_stream(stdin or sys.stdin.buffer, stats, parser, report, progress)
            else:
                with open(path, "rb") as fh:
                    _read_stream(fh, stats, parser, report, progress, gz_suffix=path.endswith(".gz"))
        except OSError as exc:
            if strict:
                raise StrictModeError(f"cannot read: {exc.strerror or exc}", path=path) from exc
            report.file_issues[FileIssue.UNREADABLE.value] += 1
            report.add_example(Problem(path, None, FileIssue.UNREADABLE.value, str(exc)))
    return records, report


def _read_stream(
    stream: BinaryIO,
    stats: FileStats,
    parser: RecordParser,
    report: ReadReport,
    progress: Callable[[int], None] | None,
    *,
    gz_suffix: bool = False,
) -> None:
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

    parse = parser.parse
    blank = 0
    for line_no, raw, is_tail in iter_lines(stream, stats, on_issue, on_progress, gz_suffix=gz_suffix):
        # Test the first byte before stripping: almost every line starts with '{'.
        if (not raw or raw[0] != 0x7B) and not raw.strip():
            blank += 1
            continue
        parser.line = line_no
        obj = _decode(raw)
        if obj is _FAILED:
            if is_tail:
                parser.skip(Skip.TRUNCATED_TAIL, "last line is cut short (no newline, not valid JSON)")
            else:
                parser.skip(Skip.INVALID_JSON, _why_invalid(raw))
            continue
        parse(obj)
    report.lines += stats.lines
    report.blank += blank


def _why_invalid(raw: bytes) -> str:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON: {exc}"[:160]
    return "invalid JSON"
