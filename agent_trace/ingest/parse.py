"""The slow path: a decoded JSON value to a model record, finding exactly what is wrong (pure).

The reader decodes almost every line straight into typed records (`ingest.typed`). A line the
typed decoder rejects (a null or a string where a number belongs, a negative u64, NaN, a bare
record, an unknown schema, ...) is decoded again with the standard library, which keeps integers
exact and accepts NaN/Infinity literals, and comes here. `RecordParser.parse` unwraps the envelope,
checks schema and event type, detects the identity era and builds the record. Anything it cannot
use is counted in the `ReadReport` with a reason; fields that are present but unusable (null,
numeric strings, NaN, a negative value in a u64 field) are dropped and counted too
(trace-format.md §4, §6). In strict mode the first such problem raises `StrictModeError` instead.

For a line both paths accept, both build the same record (tests/test_ingest_typed.py checks it on
every real line and on mutated ones).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Raw

from ..errors import StrictModeError
from ..model import (
    AGENT_SCHEMA,
    REQUEST_SCHEMA,
    LlmRequest,
    Record,
    RequestPayload,
    ToolCall,
    ToolEvent,
    ToolPhase,
)
from ..report import FieldIssue, Problem, ReadReport, Skip
from .eras import NO_CONTEXT, ContextInfo, IdentityCache, context_info

# trace-format.md §7.1: harness aliases, canonicalised on read as Dynamo does on write.
STATUS_ALIASES = {
    "ok": "succeeded",
    "success": "succeeded",
    "failed": "error",
    "canceled": "cancelled",
    "timeout": "cancelled",
}
TOOL_PHASES = {p.value: p for p in ToolPhase}
# Numeric fields by spec type (trace-format.md §4, §6, §7): u64 values must not be negative.
_REQUEST_U64 = ("request_received_ms", "input_tokens", "output_tokens", "cached_tokens", "queue_depth")
_REQUEST_F64 = (
    "prefill_wait_time_ms", "prefill_time_ms", "ttft_ms", "total_time_ms",
    "avg_itl_ms", "kv_hit_rate", "kv_transfer_estimated_latency_ms",
)
_TOOL_U64 = ("started_at_unix_ms", "ended_at_unix_ms", "output_tokens", "output_bytes")
_TOOL_F64 = ("duration_ms",)


def _text(v: Any) -> str | None:
    return v if v is None or type(v) is str else str(v)


def tool_calls_of(finish: dict[str, Any] | None) -> tuple[ToolCall, ...]:
    """The tool calls `finish_reason_metadata` lists (entries that are not objects are ignored)."""
    if not finish:
        return ()
    raw_calls = finish.get("tool_calls")
    if type(raw_calls) is not list:
        return ()
    return tuple(
        ToolCall(c.get("id"), c.get("name"), c.get("tool_call_index"), c.get("choice_index"))
        for c in raw_calls
        if type(c) is dict
    )


def fill_request_context(r: LlmRequest, info: ContextInfo) -> None:
    """The request's fields that come from `agent_context` (both paths)."""
    r.has_context = info.has_context
    r.identity = info.identity
    r.input_trigger = info.input_trigger
    r.final = info.final
    r.context_extra = info.extra


class RecordParser:
    """Turns one decoded line at a time into a record, counting what it cannot use."""

    def __init__(self, report: ReadReport, *, strict: bool = False) -> None:
        self.report = report
        self.strict = strict
        self.identities = IdentityCache()
        self.path = "<input>"
        self.file_index = 0
        self.line = 0

    # -- problems -------------------------------------------------------------------------------
    def skip(self, reason: Skip, detail: str, *, line: int | None = None) -> None:
        line = self.line if line is None else line
        if self.strict:
            raise StrictModeError(f"{reason.value}: {detail}", path=self.path, line=line)
        self.report.skipped[reason.value] += 1
        if reason in (Skip.UNKNOWN_SCHEMA, Skip.UNSUPPORTED_EVENT_TYPE):
            self.report.skipped_detail[f"{reason.value}: {detail}"] += 1
        self.report.add_example(Problem(self.path, line, reason.value, detail))

    def field_issue(self, issue: FieldIssue, name: str, value: Any) -> None:
        detail = f"{name}={value!r:.60}"
        if self.strict:
            raise StrictModeError(f"{issue.value}: {detail}", path=self.path, line=self.line)
        self.report.field_issues[issue.value] += 1
        self.report.add_example(Problem(self.path, self.line, issue.value, detail))

    # -- fields ---------------------------------------------------------------------------------
    def numbers(
        self, obj: dict[str, Any], u64_keys: tuple[str, ...], f64_keys: tuple[str, ...] = ()
    ) -> list[Any]:
        """The values of `u64_keys` then `f64_keys`: finite numbers as written, non-negative for u64
        fields, or None (absent, or present but unusable and counted)."""
        out: list[int | float | None] = []
        for key in u64_keys:
            out.append(self._u64(key, obj[key]) if key in obj else None)
        for key in f64_keys:
            if key not in obj:
                out.append(None)
                continue
            v = obj[key]
            t = type(v)
            # `v - v == 0` is false exactly for NaN and the infinities.
            if t is int or (t is float and v - v == 0.0):
                out.append(v)
            else:
                self._unusable_number(key, v)
                out.append(None)
        return out

    def _u64(self, key: str, v: Any) -> int | float | None:
        t = type(v)
        if t is int:
            if v >= 0:
                return v  # type: ignore[no-any-return]
        elif t is float and v - v == 0.0:  # finite
            if v >= 0:
                return v + 0.0  # type: ignore[no-any-return]  # -0.0 becomes 0.0
        else:
            self._unusable_number(key, v)  # null, NaN, infinities, strings, booleans
            return None
        # Negative: an epoch time or a count below zero is not a u64 (trace-format.md §4, §6.2).
        self.field_issue(FieldIssue.BAD_U64, key, v)
        return None

    def _unusable_number(self, key: str, v: Any) -> None:
        if v is None:
            self.field_issue(FieldIssue.NULL, key, v)
        elif type(v) is float:
            self.field_issue(FieldIssue.NON_FINITE, key, v)
        else:
            self.field_issue(FieldIssue.NOT_A_NUMBER, key, v)

    def mapping(self, obj: dict[str, Any], key: str) -> dict[str, Any] | None:
        v = obj.get(key)
        if v is None or type(v) is dict:
            return v
        self.field_issue(FieldIssue.NOT_AN_OBJECT, key, v)
        return None

    # -- records --------------------------------------------------------------------------------
    def parse(self, obj: Any) -> Record | None:
        """The record `obj` (one decoded line) holds, or None when it was skipped (and counted)."""
        event = obj.get("event", obj) if type(obj) is dict else obj
        if type(event) is not dict:
            self.skip(Skip.NOT_AN_OBJECT, f"line holds a JSON {type(event).__name__}, not an object")
            return None
        schema = event.get("schema")
        if schema == REQUEST_SCHEMA:
            agent = False
        elif schema == AGENT_SCHEMA:
            agent = True
        else:
            self.skip(Skip.UNKNOWN_SCHEMA, str(schema)[:80])
            return None
        kind = event.get("event_type")
        rec: Record | None
        if kind == "request_end":
            rec = self._request(event, agent)
        elif type(kind) is str and kind in TOOL_PHASES:
            rec = self._tool(event, agent, TOOL_PHASES[kind])
        elif kind == "request_payload" and not agent:
            rec = self._payload(event)
        else:
            self.skip(Skip.UNSUPPORTED_EVENT_TYPE, f"{schema} {kind}"[:100])
            return None
        if rec is not None:
            self.report.accepted[kind] += 1  # type: ignore[index]
            self.report.schemas[schema] += 1
        return rec

    def _context(self, event: dict[str, Any], agent: bool) -> ContextInfo:
        ctx = event.get("agent_context")
        if type(ctx) is dict:
            return context_info(agent, ctx, self.identities)
        if ctx is not None:
            self.field_issue(FieldIssue.NOT_AN_OBJECT, "agent_context", ctx)
        return NO_CONTEXT

    def _request(self, event: dict[str, Any], agent: bool) -> LlmRequest | None:
        req = event.get("request")
        if type(req) is not dict:
            self.skip(Skip.MISSING_BODY, "request_end without a `request` object")
            return None
        (event_time,) = self.numbers(event, ("event_time_unix_ms",))
        (received, in_tok, out_tok, cached, depth,
         wait, prefill, ttft, total, itl, kv_hit, kv_xfer) = self.numbers(req, _REQUEST_U64, _REQUEST_F64)
        worker = req.get("worker")
        if received is None and event_time is None:
            self.skip(Skip.MISSING_TIME, "request_end with neither request_received_ms nor event_time_unix_ms")
            return None
        info = self._context(event, agent)
        self.report.eras[info.identity.era.value] += 1
        finish = self.mapping(req, "finish_reason_metadata")
        io_text = req.get("io_text")
        r = LlmRequest(
            request_id=_text(req.get("request_id")),
            x_request_id=_text(req.get("x_request_id")),
            model=_text(req.get("model")),
            input_tokens=in_tok, output_tokens=out_tok, cached_tokens=cached,
            received_ms=received, prefill_wait_ms=wait, prefill_ms=prefill, ttft_ms=ttft, total_ms=total,
            avg_itl_ms=itl, kv_hit_rate=kv_hit, kv_transfer_ms=kv_xfer, queue_depth=depth,
            worker=worker if type(worker) is dict else None,
            finish=finish,
            replay=self._replay(req.get("replay")),  # type: ignore[arg-type]  # None: absent
            io_text=io_text if type(io_text) is dict else None,
            file=self.file_index, line=self.line, agent_schema=agent,
            event_time_ms=event_time, event_source=_text(event.get("event_source")),
            tool_calls=tool_calls_of(finish),
        )
        fill_request_context(r, info)
        return r

    def _replay(self, replay: Any) -> Raw | None:
        """Kept as JSON text, as the typed path keeps it (`model.decode_replay` reads it)."""
        if type(replay) is not dict:
            return None
        try:
            return Raw(msgspec.json.encode(replay))
        except (TypeError, OverflowError, ValueError):  # NaN and the like
            return None

    def _tool(self, event: dict[str, Any], agent: bool, phase: ToolPhase) -> ToolEvent | None:
        tool = event.get("tool")
        if type(tool) is not dict:
            self.skip(Skip.MISSING_BODY, f"{phase.value} without a `tool` object")
            return None
        (event_time,) = self.numbers(event, ("event_time_unix_ms",))
        if event_time is None:
            self.skip(Skip.MISSING_TIME, f"{phase.value} without event_time_unix_ms")
            return None
        info = self._context(event, agent)
        self.report.eras[info.identity.era.value] += 1
        started, ended, out_tok, out_bytes, duration = self.numbers(tool, _TOOL_U64, _TOOL_F64)
        status = tool.get("status")
        if type(status) is str:
            status = STATUS_ALIASES.get(status, status)
        elif status is not None:
            status = str(status)
        return ToolEvent(
            tool_call_id=_text(tool.get("tool_call_id")), tool_class=_text(tool.get("tool_class")),
            started_ms=started, ended_ms=ended, status=status, duration_ms=duration,
            output_tokens=out_tok, output_bytes=out_bytes,
            tool_name_hash=_text(tool.get("tool_name_hash")), error_type=_text(tool.get("error_type")),
            file=self.file_index, line=self.line, agent_schema=agent, has_context=info.has_context,
            identity=info.identity,
            phase=phase, event_time_ms=event_time, event_source=_text(event.get("event_source")),
        )

    def _payload(self, event: dict[str, Any]) -> RequestPayload | None:
        payload = event.get("payload")
        if type(payload) is not dict:
            self.skip(Skip.MISSING_BODY, "request_payload without a `payload` object")
            return None
        body = payload.get("request")
        hints = None
        messages = None
        if type(body) is dict:
            nvext = body.get("nvext")
            if type(nvext) is dict and type(nvext.get("agent_hints")) is dict:
                hints = nvext["agent_hints"]
            if type(body.get("messages")) is list:
                messages = len(body["messages"])
        complete = payload.get("payload_complete")
        headers = payload.get("http_request_headers")
        self.report.eras["none"] += 1
        return RequestPayload(
            file=self.file_index,
            line=self.line,
            event_time_ms=self.numbers(event, ("event_time_unix_ms",))[0],
            request_id=_text(payload.get("request_id")),
            endpoint=_text(payload.get("endpoint")),
            model=_text(payload.get("model")),
            payload_complete=complete if type(complete) is bool else None,
            drop_reason=_text(payload.get("payload_drop_reason")),
            agent_hints=hints,
            http_headers=headers if type(headers) is dict else None,
            message_count=messages,
            has_response=type(payload.get("response")) is dict,
        )
