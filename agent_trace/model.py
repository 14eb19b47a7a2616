"""The typed model every reader era is normalised into, and every layout and analysis reads.

Records are msgspec Structs, decoded straight from a line's bytes by `agent_trace.ingest` (only
the fields declared here are read; unknown keys are skipped in C). Fields renamed with `name=`
take their JSON key; the fields named `§…` are never in the input and are filled in by the reader
(source position, identity, event-level values). Structs are `gc=False`: they hold no reference
cycles, so the cyclic collector never scans them, however many a run keeps.

Fields keep the value as written when it was usable (an integer stays an integer, of any size, so
slice args match upstream); unusable values are dropped at read time and counted.

Identity is normalised by *role* (see spec trace-format.md §5.2), never by field name:

    chain   one timeline row: W program_id, S/T and T trajectory_id, S session_id
    group   the whole run, where the era names one: W workflow_id, S/T session_id
    parent  the chain that spawned this one (subagents)
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Raw, Struct, field

AGENT_SCHEMA = "dynamo.agent.trace.v1"
REQUEST_SCHEMA = "dynamo.request.trace.v1"

U64_MAX = 2**64 - 1
# Spec number types (trace-format.md §4, §6). A u64 field takes a non-negative integer of any size,
# or a positive float (kept as written); an f64 field any finite number. Null is not allowed: the
# typed decoder rejects the line, and the reader's slow path counts the field as `field_null`.
U64 = Annotated[int, Meta(ge=0)] | Annotated[float, Meta(gt=0)]
F64 = int | float
HASH = Annotated[int, Meta(ge=0)]  # and <= U64_MAX, which msgspec cannot bound: the reader checks


class Era(StrEnum):
    """Identity eras of trace-format.md §5.1."""

    WORKFLOW = "W"
    SESSION_TRAJECTORY = "S/T"
    TRAJECTORY = "T"
    SESSION = "S"
    NONE = "none"


class ToolPhase(StrEnum):
    START = "tool_start"
    END = "tool_end"
    ERROR = "tool_error"


@dataclass(frozen=True, slots=True)
class Identity:
    era: Era
    chain: str | None
    group: str | None = None
    parent: str | None = None
    workload: str | None = None
    # The era's identity keys exactly as written (None dropped), in upstream's arg order.
    args: tuple[tuple[str, Any], ...] = ()


NO_IDENTITY = Identity(Era.NONE, None)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call the model asked for (`finish_reason_metadata.tool_calls[]`)."""

    id: str | None
    name: str | None
    index: Any = None
    choice_index: Any = None


class Replay(Struct, gc=False, kw_only=True):
    """`request.replay`: what a replay of this request needs (block hashes of its prompt).
    Kept undecoded on the request (`LlmRequest.replay`) and decoded on demand: no layout or
    table reads it, and its hash list is most of a request's bytes."""

    block_size: Any = field(default=None, name="trace_block_size")
    input_length: Any = None
    hashes: list[HASH] | None = field(default=None, name="input_sequence_hashes")


_replay_decoder = msgspec.json.Decoder(Replay)


def decode_replay(raw: Raw | None) -> Replay | None:
    """The replay object, or None when it is absent or not of that shape (an entry that is not
    a u64 hash drops the hash list)."""
    if raw is None:
        return None
    data = bytes(raw)
    if data[:1] != b"{":
        return None
    try:
        replay = _replay_decoder.decode(data)
    except msgspec.ValidationError:
        loose = msgspec.json.decode(data)
        return Replay(block_size=loose.get("trace_block_size"), input_length=loose.get("input_length"))
    if replay.hashes and max(replay.hashes) > U64_MAX:
        replay.hashes = None
    return replay


class LlmRequest(Struct, gc=False, kw_only=True):
    """A `request_end` record: one finished LLM request (decoded from its `request` object)."""

    request_id: str | None = None
    x_request_id: str | None = None
    model: str | None = None
    input_tokens: U64 = None  # type: ignore[assignment]  # absent: None; null: rejected (see U64)
    output_tokens: U64 = None  # type: ignore[assignment]
    cached_tokens: U64 = None  # type: ignore[assignment]
    received_ms: U64 = field(default=None, name="request_received_ms")  # type: ignore[assignment]
    prefill_wait_ms: F64 = field(default=None, name="prefill_wait_time_ms")  # type: ignore[assignment]
    prefill_ms: F64 = field(default=None, name="prefill_time_ms")  # type: ignore[assignment]
    ttft_ms: F64 = None  # type: ignore[assignment]
    total_ms: F64 = field(default=None, name="total_time_ms")  # type: ignore[assignment]
    avg_itl_ms: F64 = None  # type: ignore[assignment]
    kv_hit_rate: F64 = None  # type: ignore[assignment]
    kv_transfer_ms: F64 = field(default=None, name="kv_transfer_estimated_latency_ms")  # type: ignore[assignment]
    queue_depth: U64 = None  # type: ignore[assignment]
    worker: dict[str, Any] | None = None
    finish: dict[str, Any] | None = field(default=None, name="finish_reason_metadata")  # raw, for args
    replay: Raw = None  # type: ignore[assignment]  # see `Replay`; a JSON null is Raw(b"null")
    io_text: dict[str, Any] | None = None
    # -- filled in by the reader from the line and its event ------------------------------------
    file: int = field(default=0, name="§file")
    line: int = field(default=0, name="§line")
    agent_schema: bool = field(default=False, name="§agent_schema")
    has_context: bool = field(default=False, name="§has_context")
    identity: Identity = field(default=NO_IDENTITY, name="§identity")
    event_time_ms: int | float | None = field(default=None, name="§event_time_ms")
    event_source: str | None = field(default=None, name="§event_source")
    tool_calls: tuple[ToolCall, ...] = field(default=(), name="§tool_calls")
    input_trigger: str | None = field(default=None, name="§input_trigger")
    final: bool = field(default=False, name="§final")
    # agent_headers, kv_hints and unknown agent_context keys: passed through
    context_extra: dict[str, Any] | None = field(default=None, name="§context_extra")

    @property
    def finish_reason(self) -> str | None:
        f = self.finish
        return f.get("finish_reason") if f else None

    @property
    def replay_block_size(self) -> int | None:
        replay = decode_replay(self.replay)
        v = replay.block_size if replay is not None else None
        return v if type(v) is int else None

    @property
    def replay_input_length(self) -> int | None:
        replay = decode_replay(self.replay)
        v = replay.input_length if replay is not None else None
        return v if type(v) is int else None

    @property
    def replay_hashes(self) -> array[int] | None:
        replay = decode_replay(self.replay)
        hashes = replay.hashes if replay is not None else None
        return array("Q", hashes) if hashes is not None else None


class ToolEvent(Struct, gc=False, kw_only=True):
    """A `tool_start`, `tool_end` or `tool_error` record from the agent harness (its `tool` object)."""

    tool_call_id: str | None = None
    tool_class: str | None = None
    started_ms: U64 = field(default=None, name="started_at_unix_ms")  # type: ignore[assignment]
    ended_ms: U64 = field(default=None, name="ended_at_unix_ms")  # type: ignore[assignment]
    status: str | None = None
    duration_ms: F64 = None  # type: ignore[assignment]
    output_tokens: U64 = None  # type: ignore[assignment]
    output_bytes: U64 = None  # type: ignore[assignment]
    tool_name_hash: str | None = None
    error_type: str | None = None
    # -- filled in by the reader ----------------------------------------------------------------
    file: int = field(default=0, name="§file")
    line: int = field(default=0, name="§line")
    agent_schema: bool = field(default=False, name="§agent_schema")
    has_context: bool = field(default=False, name="§has_context")
    identity: Identity = field(default=NO_IDENTITY, name="§identity")
    phase: ToolPhase = field(default=ToolPhase.END, name="§phase")
    event_time_ms: int | float = field(default=0, name="§event_time_ms")
    event_source: str | None = field(default=None, name="§event_source")


class RequestPayload(Struct, gc=False, kw_only=True):
    """A `request_payload` row, reduced to what analysis uses (the message history is not kept)."""

    file: int
    line: int
    event_time_ms: int | float | None
    request_id: str | None
    endpoint: str | None
    model: str | None
    payload_complete: bool | None
    drop_reason: str | None
    agent_hints: dict[str, Any] | None
    http_headers: dict[str, Any] | None
    message_count: int | None
    has_response: bool


Record = LlmRequest | ToolEvent | RequestPayload


@dataclass
class Records:
    """Everything a read produced, in input order (file order, then line order)."""

    files: list[str]
    requests: list[LlmRequest]
    tools: list[ToolEvent]
    payloads: list[RequestPayload]
