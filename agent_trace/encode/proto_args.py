"""Interning and debug annotations for the protobuf encoder (`encode.proto`).

`PacketSequence` holds what one trusted packet sequence interns (event names, categories,
annotation names, string values) and encodes `ArgsBuilder` args as `DebugAnnotation`s:

* a key `a.b` becomes a dict `a` with an entry `b` (Perfetto would otherwise turn the dot into
  `_`), so arg keys match the JSON output's (`debug.worker.decode_worker_id` here,
  `args.worker.decode_worker_id` there);
* integers outside int64 (u64 worker ids above 2^63) are written as strings; None values are left
  out; strings are interned while their values repeat.
"""

from __future__ import annotations

from typing import Any

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

    Interned ids count from 1.
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

    def state_size(self) -> int:
        """How many entries its interning tables and value caches hold (they grow with the
        distinct values met; a writer starts a fresh sequence past a bound)."""
        caches = sum(len(k.strs or ()) + len(k.ints or ()) for k in (*self.keys.values(), *self.nested_keys.values()))
        return len(self.strings) + len(self.names) + len(self.ann_names) + caches

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
