"""Byte streams to numbered lines, surviving the damage real captures have (trace-format.md §10.5).

* gzip is detected by its magic bytes, not the suffix; a `.gz` that is not gzip is read as text and
  reported.
* Multi-member gzip (one member per sink flush) is decoded member by member with zlib, so a
  truncated or corrupt member costs only itself: every complete line before it is yielded, and
  after a corrupt member reading resumes at the next member header (`1f 8b 08`). A line the
  damage cut in two is yielded as a tail (`is_tail=True`), never glued to the next member's.
* The last line of a stream may lack its newline; it is yielded with ``is_tail=True`` so the caller
  can call a failed parse there a truncated tail rather than invalid JSON.

This module only moves bytes; it never parses JSON.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ..report import FileIssue, FileStats

GZIP_MAGIC = b"\x1f\x8b"
MEMBER_START = b"\x1f\x8b\x08"  # magic and the only compression method gzip defines (deflate)
CHUNK = 1 << 20

# Called as on_issue(kind, detail) while iterating: every complete line before the damage has
# already been yielded, so the caller knows the line number it happened at.
IssueSink = Callable[[FileIssue, str], None]
ProgressSink = Callable[[int], None]


def _noop_progress(_: int) -> None:
    pass


def iter_lines(
    stream: BinaryIO,
    stats: FileStats,
    on_issue: IssueSink,
    on_progress: ProgressSink = _noop_progress,
    *,
    gz_suffix: bool = False,
) -> Iterator[tuple[int, bytes, bool]]:
    """Yield ``(line_no, line_bytes, is_tail)``; line numbers start at 1 and count every line."""
    first = stream.read(CHUNK)
    on_progress(len(first))
    if first[:2] == GZIP_MAGIC:
        stats.gzip = True
        chunks = _gunzip(first, stream, stats, on_issue, on_progress)
    else:
        if gz_suffix and first:
            on_issue(FileIssue.GZ_SUFFIX_NOT_GZIP, "named .gz but not gzip data; read as plain text")
        chunks = _plain(first, stream, on_progress)
    pending = b""
    line_no = 0
    for chunk in chunks:
        if chunk is None:  # the stream broke off: what was left of a line is not a whole line
            if pending:
                line_no += 1
                yield line_no, pending, True
                pending = b""
            continue
        buf = pending + chunk if pending else chunk
        parts = buf.split(b"\n")
        pending = parts.pop()
        for part in parts:
            line_no += 1
            yield line_no, part, False
    if pending:
        line_no += 1
        yield line_no, pending, True
    stats.lines = line_no


def _plain(first: bytes, stream: BinaryIO, on_progress: ProgressSink) -> Iterator[bytes]:
    data = first
    while data:
        yield data
        data = stream.read(CHUNK)
        on_progress(len(data))


def _next_member(data: bytes, stream: BinaryIO, on_progress: ProgressSink) -> bytes:
    """`data` and what follows it in `stream`, from the first member header after `data[0]`
    (b"" at the end of the stream). Always moves forward, so damage cannot loop."""
    pos = data.find(MEMBER_START, 1)
    while pos < 0:
        more = stream.read(CHUNK)
        on_progress(len(more))
        if not more:
            return b""
        data = data[-(len(MEMBER_START) - 1):] + more  # a header may straddle two reads
        pos = data.find(MEMBER_START)
    return data[pos:]


def _gunzip(
    first: bytes, stream: BinaryIO, stats: FileStats, on_issue: IssueSink, on_progress: ProgressSink
) -> Iterator[bytes | None]:
    """Decoded bytes; None where a corrupt member broke the stream off."""
    decomp = zlib.decompressobj(wbits=31)
    member_open = False
    data = first
    while data:
        while data:
            if not member_open:
                # Zero padding between or after members is legal (Python's gzip skips it too). Skip
                # it here, not only when a whole read chunk is zeros, so chunk boundaries never matter.
                data = data.lstrip(b"\x00")
                if not data:
                    break
            member_open = True
            try:
                out = decomp.decompress(data)
            except zlib.error as exc:
                # The member is damaged. Everything decoded before it has been yielded already;
                # go on at the next member header, if there is one.
                on_issue(FileIssue.CORRUPT_GZIP_MEMBER, f"gzip member {stats.members + 1}: {exc}")
                yield None
                data = _next_member(data, stream, on_progress)
                decomp = zlib.decompressobj(wbits=31)
                member_open = False
                continue
            if out:
                yield out
            if decomp.eof:
                stats.members += 1
                member_open = False
                data = decomp.unused_data
                decomp = zlib.decompressobj(wbits=31)
            else:
                data = b""
        data = stream.read(CHUNK)
        on_progress(len(data))
    if member_open:
        tail = decomp.flush()
        if tail:
            yield tail
        on_issue(
            FileIssue.TRUNCATED_GZIP_MEMBER,
            f"gzip member {stats.members + 1} ends before its end-of-stream marker (file cut mid-write)",
        )
