"""Protocol-buffer wire encoding for the few Perfetto messages we emit (pure, no dependencies).

Only what `encode.proto` needs: varints, tags, length-delimited fields, fixed64 and doubles.
Field numbers are those of Perfetto's `perfetto_trace.proto` (the `perfetto` package's generated
`perfetto_trace_pb2` is the reference; tests/test_proto_wire.py decodes our bytes with it and
compares them with the same messages built through the generated classes).
"""

from __future__ import annotations

import struct

MASK64 = (1 << 64) - 1

VARINT, I64, LEN = 0, 1, 2

# Varints below 2^14 (one or two bytes) are looked up: timestamps deltas, iids, lengths and
# small values are nearly all that small.
_SMALL: list[bytes] = [bytes((i,)) for i in range(128)] + [
    bytes(((i & 0x7F) | 0x80, i >> 7)) for i in range(128, 1 << 14)
]
SMALL_LIMIT = 1 << 14

# 14 bits as two varint bytes that both say "more follows": the body of a long varint.
_CONT14: list[bytes] = [bytes(((i & 0x7F) | 0x80, (i >> 7) | 0x80)) for i in range(1 << 14)]

_pack_d = struct.Struct("<d").pack
_pack_q = struct.Struct("<Q").pack


def varint(n: int) -> bytes:
    """Base-128 varint of an unsigned 64-bit value (negative ints as their two's complement)."""
    if 0 <= n < SMALL_LIMIT:
        return _SMALL[n]
    if n < 0:
        n &= MASK64
    parts = []
    while n >= SMALL_LIMIT:
        parts.append(_CONT14[n & 0x3FFF])
        n >>= 14
    parts.append(_SMALL[n])
    return b"".join(parts)


def tag(field: int, wire: int) -> bytes:
    return varint((field << 3) | wire)


def len_field(field: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return varint((field << 3) | LEN) + varint(len(payload)) + payload


def varint_field(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def fixed64_field(field: int, value: int) -> bytes:
    return varint((field << 3) | I64) + _pack_q(value & MASK64)


def double_field(field: int, value: float) -> bytes:
    return varint((field << 3) | I64) + _pack_d(value)


def pack_double(value: float) -> bytes:
    return _pack_d(value)


def pack_fixed64(value: int) -> bytes:
    return _pack_q(value & MASK64)
