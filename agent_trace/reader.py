"""Read trace files into `Records` plus a `ReadReport` (the IO edge of the input side).

Lines are decoded with orjson; a line orjson refuses is retried with the standard library, which
accepts NaN and Infinity literals (they then meet the parser's own checks). A line that neither
accepts is `invalid_json`, or `truncated_tail` when it is the unterminated last line of its file.

orjson does not refuse an integer literal outside [-2^63, 2^64): it returns a float. When the parser
meets a float that may be one where the spec has an integer (a u64 field at or above 2^64, a float
worker id) it calls `RecordParser.exact_ints`: the line is decoded again with the standard library,
which keeps integers exact, and its integers replace orjson's floats in place (trace-format.md §6.2,
§13 R4). A normal line pays only for the parser's type checks.
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


def _restore_exact_ints(fast: Any, raw: bytes) -> None:
    """Replace, in place, every float in `fast` (orjson's decoding of `raw`) that the standard
    library decodes as an int: the integer literals orjson could not hold in 64 bits."""
    try:
        exact = json.loads(raw)
    except (ValueError, RecursionError):
        return
    stack = [(fast, exact)]
    while stack:
        a, b = stack.pop()
        if type(a) is dict and type(b) is dict:
            pairs: Any = ((k, v, b.get(k)) for k, v in a.items())
        elif type(a) is list and type(b) is list and len(a) == len(b):
            pairs = zip(range(len(a)), a, b, strict=True)
        else:
            continue
        fixed = []
        for key, value, other in pairs:
            t = type(value)
            if t is float:
                if type(other) is int:
                    fixed.append((key, other))
            elif t is dict or t is list:
                stack.append((value, other))
        for key, other in fixed:
            a[key] = other


def read_files(
    files: Sequence[str],
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    stdin: BinaryIO | None = None,
    file_done: Callable[[Records], None] | None = None,
) -> tuple[Records, ReadReport]:
    """Read already-expanded inputs in order. `progress` gets the number of bytes read;
    `file_done` gets the records read so far after each input (to start work on them early)."""
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
        if file_done is not None:
            file_done(records)
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

    # The line being parsed, seen by `exact_ints` through the closure: no per-line cost.
    raw = b""
    obj: Any = None

    def exact_ints() -> None:
        if obj is not None:
            _restore_exact_ints(obj, raw)

    parser.exact_ints = exact_ints
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
