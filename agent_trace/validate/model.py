"""The one decoded shape both validator decoders produce, and the rule set reads.

A decoded trace is what Perfetto would import, reduced to what our invariants talk about:

* `Track`s, each with a parent (or None at the top), a name (None: none was given) and a kind.
  Chrome JSON gives PROCESS tracks (one per pid), THREAD tracks (one per pid/tid, parent: its
  process) and COUNTER tracks (one per pid, event name and arg key, parent: its process); the
  protobuf gives TRACK and COUNTER tracks as described by its `TrackDescriptor`s.
* `Slice`s: complete slices (`dur` in µs) and instants (`dur` None), in Perfetto's order (by
  timestamp, equal timestamps in input order), each knowing its input position (`index`: event
  number in `traceEvents`, or packet number) for messages.
* counter samples: track id -> [(ts µs, value)], in time order (equal timestamps in input order).
* `FlowEnd`s: one per flow id on each side. A protobuf flow end is attached to the slice that
  carries it (`slice`); a Chrome JSON (v1) flow end is a point on a thread that binds to the
  slice enclosing it (`slice` None).
* problems: what the decoder could not represent in this shape (malformed values, unresolved
  interning, stray slice ends, ...), reported as `Violation`s exactly like rule violations.

Timestamps are integers in µs. Track ids are hashable values unique within one trace: the
protobuf's uuids, or tuples keyed on pid/tid for Chrome JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

TrackId = Hashable
Bad = Callable[[str, str], None]  # how decoders and rules report: bad(rule, detail)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant (or decode problem): a short rule name and a human-readable detail."""

    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


class TrackKind(Enum):
    """What a track is; a track without a name is reported as `<kind>_name`."""

    PROCESS = "process"  # Chrome JSON pid
    THREAD = "thread"  # Chrome JSON pid/tid
    TRACK = "track"  # protobuf track (slices, or a parent of other tracks)
    COUNTER = "counter"  # counter samples only


@dataclass(frozen=True, slots=True)
class Track:
    """A track. `rank`, `ordering` and `description` are the protobuf's (None/0/"" for JSON)."""

    uuid: TrackId
    name: str | None
    parent: TrackId | None
    kind: TrackKind
    label: str  # how messages name the track: "pid/tid (1, 2)", "track 17 'tools'"
    rank: int | None = None  # sibling_order_rank
    ordering: int = 0  # child_ordering of its children
    description: str = ""

    @property
    def counter(self) -> bool:
        return self.kind is TrackKind.COUNTER


@dataclass(slots=True)
class Slice:
    """A slice (`dur` µs) or an instant (`dur` None) on `track`, with its args as decoded.

    `flow_out` / `flow_in`: flow ids leaving / terminating at this slice (protobuf only; JSON flow
    ends are `FlowEnd`s that bind by position). `sequence`: its protobuf packet sequence (0: JSON).
    Not frozen (nor is `FlowEnd`) only because a frozen dataclass takes four times as long to
    build and decoders build one per event; nothing changes either once decoded.
    """

    track: TrackId
    ts: int
    dur: int | None
    name: str
    category: str
    args: dict[str, Any]
    index: int  # input position: event number (JSON) or packet number (protobuf)
    flow_out: Sequence[int] = ()
    flow_in: Sequence[int] = ()
    sequence: int = 0


@dataclass(slots=True)
class FlowEnd:
    """One end of flow `id`: leaving (`out`) or arriving, at `ts` on `track`.

    `slice`: position in `DecodedTrace.slices` of the slice the end is attached to, or None when
    the end binds to whatever slice encloses (`track`, `ts`) (Chrome JSON v1 flow events).
    """

    id: Any
    out: bool
    track: TrackId
    ts: int
    index: int
    slice: int | None = None


@dataclass(slots=True)
class DecodedTrace:
    """A decoded trace (see the module docstring). `unit` names what `index` counts in messages
    ("event" or "packet"); `inputs` is how many of them there were."""

    tracks: dict[TrackId, Track]
    slices: list[Slice]
    counters: dict[TrackId, list[tuple[int, float]]]
    flows: list[FlowEnd] = field(default_factory=list)
    problems: list[Violation] = field(default_factory=list)
    unit: str = "packet"
    inputs: int = 0

    @property
    def packets(self) -> int:
        """The number of input items (protobuf packets, or JSON events)."""
        return self.inputs

    def children(self, uuid: TrackId | None) -> list[Track]:
        """Tracks under `uuid` (None: top level), in display order (rank where ordered, else uuid)."""
        kids = [t for t in self.tracks.values() if t.parent == uuid]
        return sorted(kids, key=lambda t: (t.rank if t.rank is not None else 0, t.uuid))


class Problems:
    """A capped list of decode problems: `add` keeps the first `limit` and drops the rest."""

    __slots__ = ("items", "limit")

    def __init__(self, limit: int) -> None:
        self.items: list[Violation] = []
        self.limit = limit

    def add(self, rule: str, detail: str) -> None:
        if len(self.items) < self.limit:
            self.items.append(Violation(rule, detail))

