"""Invariant validator for emitted traces: two decoders, one rule set.

    Chrome JSON document --chrome.decode_chrome--.
                                                   >-- DecodedTrace (model) --rules.check--> [Violation]
    Perfetto protobuf bytes --proto.decode_trace--'

Each decoder reduces its format to the one `DecodedTrace` shape and reports what it cannot
represent as problems (`Violation`s, like the rules'); `rules.check` applies the invariants
(listed in `rules`) to either. Violations are data; the CLI decides what to print and the exit
code.
"""

from __future__ import annotations

from typing import Any

from .chrome import decode_chrome
from .model import DecodedTrace, FlowEnd, Slice, Track, TrackKind, Violation
from .proto import DecodeError, args_as_written, decode_trace, looks_like_json
from .rules import DEFAULT_LIMIT, TOOL_CATEGORIES, check

__all__ = [
    "TOOL_CATEGORIES",
    "DecodeError",
    "DecodedTrace",
    "FlowEnd",
    "Slice",
    "Track",
    "TrackKind",
    "Violation",
    "args_as_written",
    "check",
    "decode_chrome",
    "decode_trace",
    "looks_like_json",
    "validate_chrome",
    "validate_proto",
]


def validate_chrome(doc: Any, *, limit: int = DEFAULT_LIMIT) -> list[Violation]:
    """Violations of a parsed Chrome JSON document (at most `limit`); [] when it is sound."""
    return check(decode_chrome(doc, max_problems=limit), limit=limit)


def validate_proto(data: bytes | DecodedTrace, *, limit: int = DEFAULT_LIMIT) -> list[Violation]:
    """Violations of a Perfetto protobuf trace, given as bytes or already decoded (at most
    `limit`); bytes that are not a Perfetto trace give one `shape` violation."""
    if isinstance(data, DecodedTrace):
        return check(data, limit=limit)
    try:
        trace = decode_trace(data, max_problems=limit)
    except DecodeError as exc:
        return [Violation("shape", str(exc))]
    return check(trace, limit=limit)
