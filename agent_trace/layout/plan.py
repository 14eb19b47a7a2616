"""The layout plan: what to draw, independent of any output format.

A layout draws a trace as a sequence of `Chunk`s, one per batch of complete sessions (see
`layout.units`); a `Plan` is all of them at once, with the draw report and output settings. A plan is a list of tracks (a tree through `parent`, ordered by `rank` among siblings), a list
of events on those tracks in emission order, and optionally flows between events and counter
series on counter tracks. Events keep a reference to the model object they
draw (`subject`) and an `EventKind`; encoders turn that into args with `agent_trace.args`, so the
same numbers reach Chrome JSON and protobuf alike, and nothing is materialised before it is
written. `pid`/`tid` are the Chrome JSON coordinates; the protobuf encoder uses `uid`/`parent`.

Invariants every layout guarantees (and `agent_trace.validate` checks on the output):
* slices on one track never partially overlap (they nest or are disjoint), `dur >= 1`;
* stage slices lie inside their request slice;
* tool slices only sit on tools tracks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from ..report import DrawReport


class TrackKind(StrEnum):
    PROCESS = "process"
    REQUEST = "request"
    STAGES = "stages"
    TOOLS = "tools"
    GROUP = "group"  # a node of the track tree that is not a Chrome process (a subagent session)
    COUNTER = "counter"


class EventKind(IntEnum):
    REQUEST = 0
    STAGE_WAIT = 1
    STAGE_PREFILL = 2
    STAGE_DECODE = 3
    FIRST_TOKEN = 4
    TOOL = 5
    TOOL_START_INSTANT = 6
    INFERRED_TOOL = 7


# Slice categories: upstream's, so queries written against Dynamo's converter keep working.
CAT_LLM = "dynamo.llm"
CAT_STAGE = "dynamo.llm.stage"
CAT_MARKER = "dynamo.llm.marker"
CAT_TOOL = "dynamo.agent.tool"
CAT_TOOL_MARKER = "dynamo.agent.tool.marker"
CAT_FLOW = "dynamo.flow"  # Chrome JSON flow events (protobuf flows carry no category)


@dataclass(slots=True, eq=False)
class Track:
    uid: int
    name: str
    kind: TrackKind
    pid: int
    tid: int | None  # None for a process-level track
    parent: int | None = None
    rank: int = 0
    lane: int = 0
    # The name every lane of one logical track shares. Encoders whose viewer merges same-named
    # sibling tracks (protobuf) use it; Chrome JSON threads keep the lane-suffixed `name`.
    shared_name: str | None = None
    description: str | None = None


@dataclass(slots=True, eq=False)
class Event:
    track: Track
    ts: int  # µs
    dur: int | None  # µs; None for an instant
    name: str
    cat: str
    kind: EventKind
    subject: Any  # LlmRequest, ToolSpan or InferredTool


class FlowKind(StrEnum):
    """What a flow arrow means; the value is the Chrome JSON flow event name."""

    CALL = "tool call"  # LLM request -> the tool call it asked for
    RESULT = "tool result"  # tool call -> the LLM request that consumed its result
    SPAWN = "subagent"  # spawning tool call -> the subagent's first request


@dataclass(slots=True, eq=False)
class Flow:
    id: int  # unique in the plan, > 0
    kind: FlowKind
    source: Event  # the arrow leaves this slice ...
    target: Event  # ... and enters this one; target.ts >= source.ts


@dataclass(slots=True, eq=False)
class CounterSeries:
    """Samples of one counter track, in time order (ts strictly increasing, µs)."""

    track: Track
    ts: Sequence[int]  # list or array("q")
    values: Sequence[Any]  # all int or all float (list, or array "q"/"d": see `layout.counters.compact`)


@dataclass(slots=True)
class Chunk:
    """What a layout draws for one batch of complete sessions: the tracks first drawn here
    (parents before children), their events, the flows between those events and counter series.
    Encoders write chunks one after another; nothing in a chunk refers to a later one."""

    tracks: list[Track] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    counters: list[CounterSeries] = field(default_factory=list)

    def extend(self, other: Chunk) -> None:
        self.tracks += other.tracks
        self.events += other.events
        self.flows += other.flows
        self.counters += other.counters


@dataclass
class Plan:
    tracks: list[Track]
    events: list[Event]
    draw: DrawReport
    time_offset_us: int = 0  # subtracted from every timestamp on output (Fix.REBASE_TIME)
    big_ints_as_strings: bool = False
    sort_indices: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    flows: list[Flow] = field(default_factory=list)
    counters: list[CounterSeries] = field(default_factory=list)
