"""The typed model every reader era is normalised into, and every layout and analysis reads.

Records are immutable and carry their source position (file index, line) so any later message can
point back at the input. Fields keep the value as written when it was usable (an integer stays an
integer, so slice args match upstream); unusable values are dropped at read time and counted.

Identity is normalised by *role* (see spec trace-format.md §5.2), never by field name:

    chain   one timeline row: W program_id, S/T and T trajectory_id, S session_id
    group   the whole run, where the era names one: W workflow_id, S/T session_id
    parent  the chain that spawned this one (subagents)
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

AGENT_SCHEMA = "dynamo.agent.trace.v1"
REQUEST_SCHEMA = "dynamo.request.trace.v1"


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


# The three record types are built once per input line, so they are plain slotted dataclasses
# (a frozen dataclass pays an object.__setattr__ per field). Nothing mutates them after parsing.
@dataclass(slots=True)
class LlmRequest:
    """A `request_end` record: one finished LLM request."""

    file: int
    line: int
    agent_schema: bool
    has_context: bool
    identity: Identity
    event_time_ms: int | float | None
    event_source: str | None
    request_id: str | None
    x_request_id: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    received_ms: int | float | None = None
    prefill_wait_ms: int | float | None = None
    prefill_ms: int | float | None = None
    ttft_ms: int | float | None = None
    total_ms: int | float | None = None
    avg_itl_ms: int | float | None = None
    kv_hit_rate: int | float | None = None
    kv_transfer_ms: int | float | None = None
    queue_depth: int | None = None
    worker: tuple[tuple[str, Any], ...] = ()
    finish: dict[str, Any] | None = None  # raw finish_reason_metadata, for args
    tool_calls: tuple[ToolCall, ...] = ()
    input_trigger: str | None = None
    final: bool = False
    replay_block_size: int | None = None
    replay_input_length: int | None = None
    replay_hashes: array[int] | None = None
    context_extra: dict[str, Any] | None = None  # agent_headers, kv_hints, unknown keys: passed through
    io_text: dict[str, Any] | None = None

    @property
    def finish_reason(self) -> str | None:
        f = self.finish
        return f.get("finish_reason") if f else None


@dataclass(slots=True)
class ToolEvent:
    """A `tool_start`, `tool_end` or `tool_error` record from the agent harness."""

    file: int
    line: int
    agent_schema: bool
    has_context: bool
    identity: Identity
    phase: ToolPhase
    event_time_ms: int | float
    event_source: str | None
    tool_call_id: str | None
    tool_class: str | None
    started_ms: int | float | None = None
    ended_ms: int | float | None = None
    status: str | None = None
    duration_ms: int | float | None = None
    output_tokens: int | None = None
    output_bytes: int | None = None
    tool_name_hash: str | None = None
    error_type: str | None = None


@dataclass(slots=True)
class RequestPayload:
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


@dataclass
class Records:
    """Everything a read produced, in input order (file order, then line order)."""

    files: list[str]
    requests: list[LlmRequest]
    tools: list[ToolEvent]
    payloads: list[RequestPayload]
