"""Interning and debug annotations for the protobuf encoder (`encode.proto`).

`PacketSequence` holds what one trusted packet sequence interns (event names, categories,
annotation names, string values) and encodes `ArgsBuilder` args as `DebugAnnotation`s:

* a key `a.b` becomes a dict `a` with an entry `b` (Perfetto would otherwise turn the dot into
  `_`), so arg keys match the JSON output's (`debug.worker.decode_worker_id` here,
  `args.worker.decode_worker_id` there);
* integers outside int64 (u64 worker ids above 2^63) are written as strings; None values are left
  out; strings are interned while their values repeat.

`AheadEncoder` encodes the annotations of request- and tool-drawn slices before the layout
exists, in forked children, chunk by chunk as the input files are read.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any, NamedTuple

from ..args import ArgsBuilder, tool_event_args
from ..layout.plan import Event, EventKind
from ..model import LlmRequest, Records, ToolEvent, ToolPhase
from ..parallel import ForkedCall
from .protowire import _CONT14, _SMALL, SMALL_LIMIT, _pack_d, len_field, pack_double, varint, varint_field

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_T_INTERNED = b"\x62"  # TracePacket.interned_data = 12, LEN
_T_ANNOTATION = b"\x22"  # TrackEvent.debug_annotations = 4
_DA_NAME_IID = b"\x08"  # DebugAnnotation.name_iid = 1
_DA_BOOL = b"\x10"
_DA_INT = b"\x20"
_DA_DOUBLE = b"\x29"
_DA_DICT_ENTRY = b"\x5a"  # dict_entries = 11
_DA_ARRAY_VALUE = b"\x62"  # array_values = 12
_DA_STRING = b"\x32"  # string_value = 6
_DA_STRING_IID = b"\x88\x01"  # string_value_iid = 17


def utf8(text: str) -> bytes:
    """UTF-8 for a protobuf string; a lone surrogate (json accepts "\\ud800") becomes U+FFFD."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def _name_entry(tag: bytes, iid: int, text: str) -> bytes:
    """An interned name ({iid = 1, name = 2}: EventName, EventCategory, DebugAnnotationName; an
    InternedString's {iid = 1, str = 2} too) as the InternedData field `tag`."""
    return framed(tag, b"\x08" + varint(iid) + len_field(2, utf8(text)))


def framed(tag: bytes, body: bytes) -> bytes:
    n = len(body)
    return tag + (_SMALL[n] if n < SMALL_LIMIT else varint(n)) + body


class PacketSequence:
    """One trusted packet sequence: its id field, time origin, interning tables, and the
    encoder of debug annotations that uses them.

    Interned ids count from 1, or from `name_base`/`string_base` + 1 for annotation names and
    string values (chunks encoded ahead in parallel each get their own range, see `AheadChunk`).
    """

    def __init__(self, seq_id: int, base_us: int, *, name_base: int = 0, string_base: int = 0) -> None:
        self.seq = varint_field(10, seq_id)
        self.base = base_us
        self.next_name_iid = name_base + 1
        self.next_string_iid = string_base + 1
        self.names: dict[str, bytes] = {}  # event name -> encoded TrackEvent.name_iid field
        self.cats: dict[str, bytes] = {}  # category -> encoded TrackEvent.category_iids field
        self.keys: dict[str, _Key] = {}  # top-level arg key
        self.nested_keys: dict[Any, _Key] = {}  # key inside a dict-valued arg
        self.groups: dict[bytes, bytes] = {}
        self.ann_names: dict[str, int] = {}
        self.strings: dict[str, int] = {}
        self.new_cats: list[bytes] = []
        self.new_names: list[bytes] = []
        self.new_ann_names: list[bytes] = []
        self.new_strings: list[bytes] = []
        self.dirty = False

    # -- interning ---------------------------------------------------------------------------

    def name_field(self, name: str) -> bytes:
        """TrackEvent.name_iid (field 10) for `name`, interned as InternedData.event_names (2)."""
        return self._event_field(name, self.names, self.new_names, b"\x12", b"\x50")

    def cat_field(self, cat: str) -> bytes:
        """TrackEvent.category_iids (field 3) for `cat`, interned as InternedData.event_categories (1)."""
        return self._event_field(cat, self.cats, self.new_cats, b"\x0a", b"\x18")

    def _event_field(
        self, text: str, table: dict[str, bytes], pending: list[bytes], entry_tag: bytes, field_tag: bytes
    ) -> bytes:
        iid = len(table) + 1
        pending.append(_name_entry(entry_tag, iid, text))
        self.dirty = True
        b = table[text] = field_tag + varint(iid)
        return b

    def ann_name_iid(self, name: str) -> int:
        iid = self.ann_names.get(name)
        if iid is None:
            iid = self.ann_names[name] = self.next_name_iid
            self.next_name_iid += 1
            self.new_ann_names.append(_name_entry(b"\x1a", iid, name))  # InternedData.debug_annotation_names
            self.dirty = True
        return iid

    def string_iid(self, s: str) -> int:
        iid = self.strings.get(s)
        if iid is None:
            iid = self.strings[s] = self.next_string_iid
            self.next_string_iid += 1
            # InternedString {iid = 1, str = 2}: a name entry's shape, as debug_annotation_string_values
            self.new_strings.append(_name_entry(b"\xea\x01", iid, s))
            self.dirty = True
        return iid

    def seed(self, chunks: Sequence[AheadChunk]) -> None:
        """Start with the chunks' interning tables, so their annotation bytes are valid here."""
        assert not self.ann_names and not self.strings, "seed a fresh sequence"
        for c in chunks:
            for iid, name in enumerate(c.names, c.name_base + 1):
                self.ann_names.setdefault(name, iid)
            self.new_ann_names.append(c.interned)
            self.next_name_iid = max(self.next_name_iid, c.name_base + len(c.names) + 1)
            self.next_string_iid = max(self.next_string_iid, c.string_base + c.n_strings + 1)
        self.dirty = bool(chunks)

    def take_interned(self) -> bytes:
        """The pending InternedData entries, framed as a TracePacket field, and reset."""
        body = b"".join(self.new_cats + self.new_names + self.new_ann_names + self.new_strings)
        self.new_cats.clear()
        self.new_names.clear()
        self.new_ann_names.clear()
        self.new_strings.clear()
        self.dirty = False
        return framed(_T_INTERNED, body)

    # -- debug annotations -------------------------------------------------------------------

    def _key(self, key: str, nested: bool = False) -> _Key:
        head, dot, leaf = key.partition(".")
        if dot and head and leaf and not nested:
            kk = _Key(self.ann_name_iid(leaf), self.ann_name_iid(head), True)
            # One bytes object per group name: `annotations` tells groups apart by identity.
            kk.group = self.groups.setdefault(kk.group, kk.group)  # type: ignore[arg-type]
        else:
            kk = _Key(self.ann_name_iid(key), None, nested)
        (self.nested_keys if nested else self.keys)[key] = kk
        return kk

    def value(self, v: Any) -> bytes | None:
        """The value fields of a DebugAnnotation (strings interned), or None to leave it out."""
        t = type(v)
        if t is str:
            iid = self.strings.get(v)
            if iid is None:
                iid = self.string_iid(v)
            return _DA_STRING_IID + (_SMALL[iid] if iid < SMALL_LIMIT else varint(iid))
        if t is int:
            if 0 <= v < SMALL_LIMIT:
                return _DA_INT + _SMALL[v]
            if 0 <= v < 1 << 28:
                return _DA_INT + _CONT14[v & 0x3FFF] + _SMALL[v >> 14]
            if 0 <= v < 1 << 42:  # epoch milliseconds: three table lookups
                return _DA_INT + _CONT14[v & 0x3FFF] + _CONT14[(v >> 14) & 0x3FFF] + _SMALL[v >> 28]
            if INT64_MIN <= v <= INT64_MAX:
                return _DA_INT + varint(v)
            return self.value(str(v))
        if t is float:
            return _DA_DOUBLE + pack_double(v)
        if t is bool:
            return b"\x10\x01" if v else b"\x10\x00"
        if v is None:
            return None
        if t is dict:
            return self._dict_value(v)
        if t is list or t is tuple:
            parts = []
            for item in v:
                body = self._dict_value(item) if type(item) is dict else self.value(item)
                if body is not None:
                    n = len(body)
                    parts.append(_DA_ARRAY_VALUE + (_SMALL[n] if n < SMALL_LIMIT else varint(n)) + body)
            return b"".join(parts)
        if isinstance(v, bool):
            return self.value(bool(v))
        if isinstance(v, int):  # an int subclass (IntEnum)
            return self.value(int(v))
        if isinstance(v, float):
            return self.value(float(v))
        if isinstance(v, dict):
            return self._dict_value(dict(v))
        return self.value(str(v))

    def _dict_value(self, d: dict[Any, Any]) -> bytes:
        """dict_entries of a nested dict; entries are cached per (key, value) like top-level args."""
        parts = []
        keys = self.nested_keys
        for k, v in d.items():
            kk = keys.get(k)
            if kk is None:
                if v is None:
                    continue
                kk = self._key(str(k), nested=True)
                keys[k] = kk
            t = type(v)
            cache: dict[Any, bytes] | None
            if t is str:
                cache = kk.strs
                if cache is None and v not in self.strings:  # unique values (ids): inline, as in `annotations`
                    vb = utf8(v)
                    n = len(vb)
                    parts.append(kk.str_head[n] + vb if n < 120 else _inline_string(kk, vb))
                    continue
            else:
                cache = kk.ints if t is int else None
            b = cache.get(v) if cache is not None else None
            if b is None:
                b = self._encode(kk, cache, v)
                if b is None:
                    continue
            parts.append(b)
        return b"".join(parts)

    def _encode(self, kk: _Key, cache: dict[Any, bytes] | None, v: Any) -> bytes | None:
        """A finished annotation (or dict entry) for `v`; cached in `cache` while that pays."""
        val = self.value(v)
        if val is None:
            return None
        body = kk.name + val
        n = len(body)
        b = kk.tag + (_SMALL[n] if n < SMALL_LIMIT else varint(n)) + body
        if cache is not None:
            cache[v] = b
            if kk.misses >= 0:  # on probation: count, and decide once enough lookups were seen
                kk.lookups += 1
                kk.misses += 1
                if kk.lookups >= _CACHE_PROBATION:
                    if kk.misses * 2 > kk.lookups:
                        # Most lookups missed: the values are (nearly) unique (ids, timestamps),
                        # and the inline paths are cheaper than the cache. Uncached strings are
                        # then written inline rather than interned, unless interned already.
                        kk.strs = kk.ints = None
                    kk.misses = -1
        return b

    def annotations(self, args: dict[str, Any]) -> bytes:
        """TrackEvent.debug_annotations fields for `args` (consecutive `a.*` keys share one dict)."""
        out: list[bytes] = []
        append = out.append
        keys = self.keys
        encode = self._encode
        strings = self.strings
        small = _SMALL
        group: bytes | None = None
        entries: list[bytes] = []
        b: bytes | None
        cache: dict[Any, bytes] | None
        for k, v in args.items():
            kk = keys.get(k)
            if kk is None:
                if v is None:  # left out; and its name is not interned for nothing
                    continue
                kk = self._key(k)
            t = type(v)
            if t is float:
                b = kk.float_head + _pack_d(v)
            elif t is str:
                cache = kk.strs
                if cache is None:  # unique strings: inline unless already interned
                    iid = strings.get(v)
                    if iid is not None:
                        b = kk.iid_head + (small[iid] if iid < SMALL_LIMIT else varint(iid))
                        b = kk.tag + small[len(b)] + b
                    else:
                        vb = utf8(v)
                        n = len(vb)
                        b = kk.str_head[n] + vb if n < 120 else _inline_string(kk, vb)
                else:
                    b = cache.get(v)
                    if b is None:
                        b = encode(kk, cache, v)
                    elif kk.misses >= 0:
                        kk.lookups += 1
            elif t is int:
                cache = kk.ints
                if cache is None:
                    if 0 <= v < 1 << 42:  # epoch milliseconds and most counts: three lookups
                        if v < SMALL_LIMIT:
                            vb = small[v]
                        elif v < 1 << 28:
                            vb = _CONT14[v & 0x3FFF] + small[v >> 14]
                        else:
                            vb = _CONT14[v & 0x3FFF] + _CONT14[(v >> 14) & 0x3FFF] + small[v >> 28]
                        b = kk.int_head[len(vb)] + vb
                    else:
                        b = encode(kk, None, v)
                else:
                    b = cache.get(v)
                    if b is None:
                        b = encode(kk, cache, v)
                    elif kk.misses >= 0:
                        kk.lookups += 1
            else:
                b = encode(kk, None, v)
                if b is None:
                    continue
            g = kk.group
            if g is None:
                if group is not None:
                    append(_group_annotation(group, entries))
                    group = None
                    entries = []
                append(b)  # type: ignore[arg-type]
            else:
                if g is not group and group is not None:
                    append(_group_annotation(group, entries))
                    entries = []
                group = g
                entries.append(b)  # type: ignore[arg-type]
        if group is not None:
            append(_group_annotation(group, entries))
        return b"".join(out)


class _Key:
    """Encoding state of one annotation name.

    `strs`/`ints` map a value to its finished annotation bytes, because most values repeat: a
    request's id, model and timings reappear on its stage slices; sessions, tool classes, statuses,
    token counts and worker ids repeat across events. A name whose values turn out to be unique
    (timestamps, tool-call ids) stops caching after `_CACHE_PROBATION` lookups and takes the
    inline paths (`*_head`: everything before the value bytes, by value length).
    """

    __slots__ = (
        "name", "group", "tag", "strs", "ints", "lookups", "misses", "float_head", "int_head", "str_head", "iid_head"
    )

    def __init__(self, name_iid: int, group_iid: int | None, entry: bool) -> None:
        self.name = _DA_NAME_IID + varint(name_iid)
        self.group = None if group_iid is None else _DA_NAME_IID + varint(group_iid)
        self.tag = _DA_DICT_ENTRY if entry else _T_ANNOTATION
        self.strs: dict[str, bytes] | None = {}
        self.ints: dict[int, bytes] | None = {}
        self.lookups = 0
        self.misses = 0
        name, tag = self.name, self.tag
        self.float_head = tag + _SMALL[len(name) + 9] + name + _DA_DOUBLE
        self.int_head = [tag + _SMALL[len(name) + 1 + n] + name + _DA_INT for n in range(11)]
        self.str_head = [tag + _SMALL[len(name) + 2 + n] + name + _DA_STRING + _SMALL[n] for n in range(120)]
        self.iid_head = name + _DA_STRING_IID


def _inline_string(kk: _Key, vb: bytes) -> bytes:
    body = kk.name + _DA_STRING + varint(len(vb)) + vb
    return kk.tag + varint(len(body)) + body


def _group_annotation(name_field: bytes, entries: list[bytes]) -> bytes:
    body = name_field + b"".join(entries)
    n = len(body)
    return _T_ANNOTATION + (_SMALL[n] if n < SMALL_LIMIT else varint(n)) + body


_CACHE_PROBATION = 4096


# ---------------------------------------------------------------------------------------------
# Annotations encoded ahead, while the records are still being read and laid out
# ---------------------------------------------------------------------------------------------

# Interned-id ranges reserved per chunk: chunk k uses names from k * NAME_SPAN + 1 and strings
# from k * STRING_SPAN + 1 (varints of 2 and 3-4 bytes). A chunk that needs more is encoded
# again, inline, above every range (`AheadEncoder.result`), so any input stays correct.
NAME_SPAN = 1 << 11
STRING_SPAN = 1 << 20


class AheadChunk(NamedTuple):
    """The debug annotations of a run of consecutive records, and the interning they use."""

    name_base: int
    string_base: int
    names: list[str]  # interned annotation names, iid = name_base + position + 1
    n_strings: int  # interned string values, iids string_base + 1 ... (not shipped back: a
    # sequence only needs their bytes; a later annotation of the same string interns it again)
    interned: bytes  # both tables as InternedData fields
    # Annotation bytes, concatenated, and where each ends (array "Q" bytes): one blob per request
    # and kind (request i of this run, kind k: blob i * len(kinds) + k), and one per tool record
    # (its own fields' args; empty for starts). Two strings load far faster than 200k objects.
    request_data: bytes
    request_ends: bytes
    tool_data: bytes
    tool_ends: bytes


def encode_chunk(
    requests: Sequence[LlmRequest],
    tools: Sequence[ToolEvent],
    kinds: Sequence[EventKind],
    args: ArgsBuilder,
    name_base: int = 0,
    string_base: int = 0,
) -> AheadChunk:
    seq = PacketSequence(0, 0, name_base=name_base, string_base=string_base)
    annotations = seq.annotations
    of = args.of
    start = ToolPhase.START
    request_blobs = [annotations(of(k, r)) for r in requests for k in kinds]
    tool_blobs = [b"" if t.phase is start else annotations(tool_event_args(t)) for t in tools]
    return AheadChunk(
        name_base,
        string_base,
        list(seq.ann_names),
        len(seq.strings),
        b"".join(seq.new_ann_names) + b"".join(seq.new_strings),
        *_packed(request_blobs),
        *_packed(tool_blobs),
    )


def _packed(blobs: list[bytes]) -> tuple[bytes, bytes]:
    return b"".join(blobs), array("Q", accumulate(map(len, blobs))).tobytes()


def _unpacked(chunks: list[AheadChunk], data: str, ends: str) -> tuple[bytes, array[int]]:
    """All chunks' blobs of one kind as one string, and where each blob starts (one more entry
    than blobs)."""
    starts = array("Q", [0])
    base = 0
    for c in chunks:
        chunk_ends = array("Q")
        chunk_ends.frombytes(getattr(c, ends))
        starts.extend(map(base.__add__, chunk_ends))
        base += len(getattr(c, data))
    return b"".join(getattr(c, data) for c in chunks), starts


# Fewer records than this in a chunk: not worth a process.
FORK_MIN_RECORDS = 5_000
# The first chunk is cut at the first file boundary past this share of the input bytes, the rest
# is one chunk when reading ends. Encoding takes about 1.5x as long as reading (large real trace),
# and laying out about as long as reading: with a third first, the first chunk ends before the
# reader does and the second about when the layout does, and at most two processes ever run.
FIRST_CHUNK_SHARE = 1 / 3


class AheadEncoder:
    """Encodes the annotations of request- and tool-drawn slices while the caller goes on.

    Args depend only on an event's kind and subject (`ArgsBuilder.of`), so they can be encoded
    as soon as the records exist, in forked children: a first chunk once about a third of the
    input has been read (at a file boundary: `records_read` is called after each file), the rest
    when reading ends, while the parent lays out. That takes the argument work off the critical
    path. Chunk boundaries depend only on the input (file sizes and boundaries), never on timing
    or on whether a fork happened, so the bytes are the same everywhere.
    """

    def __init__(self, kinds: Sequence[EventKind], args: ArgsBuilder, file_sizes: Sequence[int | None] = ()) -> None:
        """`file_sizes`: one entry per input file, in reading order (None: unknown, as stdin)."""
        self.kinds = tuple(kinds)
        self.args = args
        self._runs: list[tuple[int, int, int, int, ForkedCall]] = []  # requests [a, b), tools [c, d)
        self._requests = 0
        self._tools = 0
        self._records: Records | None = None
        # The number of files after which the first chunk is cut (0: none before the end).
        self._first_cut = 0
        if file_sizes and None not in file_sizes:
            total, seen = sum(file_sizes), 0  # type: ignore[arg-type]
            for i, size in enumerate(file_sizes[:-1], start=1):
                seen += size  # type: ignore[operator]
                if total and seen >= FIRST_CHUNK_SHARE * total:
                    self._first_cut = i
                    break
        self._files = 0
        self._n_files = len(file_sizes)
        self._ahead: Ahead | None = None

    def records_read(self, records: Records, *, final: bool = False) -> None:
        """After each input file (and with `final`, at the end): start encoding the records read
        since the last chunk if a chunk ends here. `records` is the reader's one growing
        collection, every time."""
        self._records = records
        self._files += 1
        if not final and self._files != self._first_cut and self._files != self._n_files:
            return
        a, b = self._requests, len(records.requests)
        c, d = self._tools, len(records.tools)
        n = (b - a) + (d - c)
        if n == 0:
            return
        requests, tools = records.requests[a:b], records.tools[c:d]
        k = len(self._runs)
        kinds, args = self.kinds, self.args
        call = ForkedCall(
            lambda: tuple(encode_chunk(requests, tools, kinds, args, k * NAME_SPAN, k * STRING_SPAN)),
            fork=n >= FORK_MIN_RECORDS,
        )
        self._runs.append((a, b, c, d, call))
        self._requests, self._tools = b, d

    def finish(self, records: Records | None = None) -> None:
        """Reading has ended: start encoding what is left of `records` (by default, those last
        given to `records_read`). Before forking processes that will call `result` themselves,
        so that the rest is encoded once."""
        records = records if records is not None else self._records
        if records is None:
            records = Records(files=[], requests=[], tools=[], payloads=[])
        self.records_read(records, final=True)

    def result(self, records: Records | None = None) -> Ahead:
        """Wait for every chunk of `records` (by default, those last given to `records_read`),
        encoding what is left of them first. Callable in a process forked after `finish`; later
        calls in one process return the same value."""
        if self._ahead is not None:
            return self._ahead
        self.finish(records)
        records = self._records
        assert records is not None
        chunks: list[AheadChunk] = []
        top = len(self._runs)
        for a, b, c, d, call in self._runs:
            chunk = AheadChunk(*call.result())
            if len(chunk.names) > NAME_SPAN or chunk.n_strings > STRING_SPAN:
                # It ran into the next chunk's range: encode it again above all of them.
                spans = max(-(-len(chunk.names) // NAME_SPAN), -(-chunk.n_strings // STRING_SPAN))
                chunk = encode_chunk(records.requests[a:b], records.tools[c:d], self.kinds, self.args,
                                     top * NAME_SPAN, top * STRING_SPAN)
                top += spans
            chunks.append(chunk)
        self._runs = []
        self._ahead = Ahead(self.kinds, chunks, records)
        return self._ahead

    def cancel(self) -> None:
        for *_, call in self._runs:
            call.cancel()
        self._runs = []


class Ahead:
    """Chunks encoded ahead, and the records they belong to, for `write_perfetto_proto`."""

    def __init__(self, kinds: tuple[EventKind, ...], chunks: list[AheadChunk], records: Records) -> None:
        self.kinds = kinds
        self.chunks = chunks
        self.records = records

    def lookup(self) -> Callable[[Event], bytes | None]:
        """`pre(event)`: the event's annotation bytes, or None when they were not encoded ahead."""
        n_kinds = len(self.kinds)
        request_data, request_starts = _unpacked(self.chunks, "request_data", "request_ends")
        tool_data, tool_starts = _unpacked(self.chunks, "tool_data", "tool_ends")
        request_at = {id(r): i * n_kinds for i, r in enumerate(self.records.requests)}
        tool_at = {id(t): i for i, t in enumerate(self.records.tools)}
        position = {k: j for j, k in enumerate(self.kinds)}
        tool, instant = EventKind.TOOL, EventKind.TOOL_START_INSTANT

        def pre(e: Event) -> bytes | None:
            kind = e.kind
            j = position.get(kind)
            if j is not None:
                i = request_at.get(id(e.subject))
                return None if i is None else request_data[request_starts[i + j]:request_starts[i + j + 1]]
            if kind is tool or kind is instant:
                span = e.subject
                if span.synthetic or span.unclosed:  # their args carry more than the record's
                    return None
                i = tool_at.get(id(span.event))
                if i is None or tool_starts[i] == tool_starts[i + 1]:  # a start: not encoded ahead
                    return None
                return tool_data[tool_starts[i]:tool_starts[i + 1]]
            return None

        return pre
