"""Decoded JSON objects to model records (pure: no IO, no clock).

`RecordParser.parse` unwraps the envelope, checks schema and event type, detects the identity era
and builds a typed record. Anything it cannot use is counted in the `ReadReport` with a reason;
fields that are present but unusable (null, numeric strings, NaN, a negative value in a u64 field)
are dropped and counted too (trace-format.md §4, §6). In strict mode the first such problem raises
`StrictModeError` instead.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

from .eras import KNOWN_CONTEXT_KEYS, IdentityCache
from .errors import StrictModeError
from .model import (
    AGENT_SCHEMA,
    NO_IDENTITY,
    REQUEST_SCHEMA,
    LlmRequest,
    Records,
    RequestPayload,
    ToolCall,
    ToolEvent,
    ToolPhase,
)
from .report import FieldIssue, Problem, ReadReport, Skip

# trace-format.md §7.1: harness aliases, canonicalised on read as Dynamo does on write.
STATUS_ALIASES = {
    "ok": "succeeded",
    "success": "succeeded",
    "failed": "error",
    "canceled": "cancelled",
    "timeout": "cancelled",
}
_TOOL_PHASES = {p.value: p for p in ToolPhase}
# Numeric fields by spec type (trace-format.md §4, §6, §7): u64 values must not be negative.
_EVENT_TIME = ("event_time_unix_ms",)
_REQUEST_U64 = ("request_received_ms", "input_tokens", "output_tokens", "cached_tokens", "queue_depth")
_REQUEST_F64 = (
    "prefill_wait_time_ms", "prefill_time_ms", "ttft_ms", "total_time_ms",
    "avg_itl_ms", "kv_hit_rate", "kv_transfer_estimated_latency_ms",
)
_TOOL_U64 = ("started_at_unix_ms", "ended_at_unix_ms", "output_tokens", "output_bytes")
_TOOL_F64 = ("duration_ms",)
# orjson returns an integer literal outside [-2^63, 2^64) as a float; a float this large in a u64
# field may be one, so the line is decoded again exactly (see `RecordParser.exact_ints`).
_TWO_64 = float(2**64)
_INF = float("inf")
_PASSED_THROUGH = frozenset({"agent_headers", "kv_hints"})


def _text(v: Any) -> str | None:
    return v if v is None or type(v) is str else str(v)


def _no_source() -> None:
    """`exact_ints` for objects decoded elsewhere: there is no source text to decode again."""


class RecordParser:
    """Turns one decoded line at a time into records appended to `records`."""

    def __init__(self, records: Records, report: ReadReport, *, strict: bool = False) -> None:
        self.records = records
        self.report = report
        self.strict = strict
        self.identities = IdentityCache()
        self.path = "<input>"
        self.file_index = 0
        self.line = 0
        # Set by the reader: decodes the current line again with arbitrary-precision integers and puts
        # them, in place, where the fast decoder left floats. Called only when a value looks like one.
        self.exact_ints: Callable[[], None] = _no_source

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
        fields, or None (absent, or present but unusable and counted).

        One call per object rather than one per field: this is the reader's hot path. A u64 field
        almost always holds a non-negative int; everything else takes `_checked_u64`.
        """
        out: list[int | float | None] = []
        get = obj.get
        for key in u64_keys:
            v = get(key)
            if (type(v) is int and v >= 0) or (v is None and key not in obj):
                out.append(v)
            else:
                out.append(self._checked_u64(obj, key, v))
        for key in f64_keys:
            v = get(key)
            t = type(v)
            # `v - v == 0` is false exactly for NaN and the infinities.
            if t is int or (t is float and v - v == 0.0) or (v is None and key not in obj):  # type: ignore[operator]
                out.append(v)
            else:
                self._unusable_number(key, v)
                out.append(None)
        return out

    def _checked_u64(self, obj: dict[str, Any], key: str, v: Any) -> int | float | None:
        """The slow path of a u64 field: anything but absent or a non-negative int."""
        if type(v) is float and _TWO_64 <= v < _INF:
            # Perhaps an integer literal orjson could not hold: if it was one, take the exact value
            # (kept, as when the stdlib decoded the line in the first place).
            self.exact_ints()
            v = obj.get(key)
        t = type(v)
        if t is int:
            if v >= 0:
                return v
        elif t is float and v - v == 0.0:  # finite
            if v >= 0:
                return v + 0.0  # -0.0 becomes 0.0
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
    def parse(self, obj: Any) -> None:
        event = obj.get("event", obj) if type(obj) is dict else obj
        if type(event) is not dict:
            self.skip(Skip.NOT_AN_OBJECT, f"line holds a JSON {type(event).__name__}, not an object")
            return
        schema = event.get("schema")
        if schema == REQUEST_SCHEMA:
            agent = False
        elif schema == AGENT_SCHEMA:
            agent = True
        else:
            self.skip(Skip.UNKNOWN_SCHEMA, str(schema)[:80])
            return
        kind = event.get("event_type")
        if kind == "request_end":
            rec = self._request(event, agent)
            if rec is None:
                return
            self.records.requests.append(rec)
        elif kind in _TOOL_PHASES:
            tool = self._tool(event, agent, _TOOL_PHASES[kind])
            if tool is None:
                return
            self.records.tools.append(tool)
        elif kind == "request_payload" and not agent:
            payload = self._payload(event)
            if payload is None:
                return
            self.records.payloads.append(payload)
        else:
            self.skip(Skip.UNSUPPORTED_EVENT_TYPE, f"{schema} {kind}"[:100])
            return
        self.report.accepted[kind] += 1
        self.report.schemas[schema] += 1

    def _context(self, event: dict[str, Any], agent: bool):  # type: ignore[no-untyped-def]
        ctx = event.get("agent_context")
        if type(ctx) is dict:
            ident = self.identities.get(agent, ctx) if ctx else NO_IDENTITY
            return ctx, True, ident
        if ctx is not None:
            self.field_issue(FieldIssue.NOT_AN_OBJECT, "agent_context", ctx)
        return None, False, NO_IDENTITY

    def _request(self, event: dict[str, Any], agent: bool) -> LlmRequest | None:
        req = event.get("request")
        if type(req) is not dict:
            self.skip(Skip.MISSING_BODY, "request_end without a `request` object")
            return None
        event_time = event.get("event_time_unix_ms")
        if type(event_time) is not int or event_time < 0:
            (event_time,) = self.numbers(event, _EVENT_TIME)
        (received, in_tok, out_tok, cached, depth,
         wait, prefill, ttft, total, itl, kv_hit, kv_xfer) = self.numbers(req, _REQUEST_U64, _REQUEST_F64)
        worker = req.get("worker")
        if type(worker) is dict:
            if type(worker.get("decode_worker_id")) is float or type(worker.get("prefill_worker_id")) is float:
                self.exact_ints()  # u64 ids (§6.2): maybe integer literals orjson could not hold as ints
            worker_items = tuple(worker.items())
        else:
            worker_items = ()
        if received is None and event_time is None:
            self.skip(Skip.MISSING_TIME, "request_end with neither request_received_ms nor event_time_unix_ms")
            return None
        ctx, has_ctx, ident = self._context(event, agent)
        self.report.eras[ident.era.value] += 1
        get = req.get
        request_id, x_request_id, model = _text(get("request_id")), _text(get("x_request_id")), _text(get("model"))

        finish = self.mapping(req, "finish_reason_metadata")
        calls: tuple[ToolCall, ...] = ()
        if finish:
            raw_calls = finish.get("tool_calls")
            if type(raw_calls) is list:
                calls = tuple(
                    ToolCall(c.get("id"), c.get("name"), c.get("tool_call_index"), c.get("choice_index"))
                    for c in raw_calls
                    if type(c) is dict
                )
        replay = req.get("replay")
        block = length = hashes = None
        if type(replay) is dict:
            block = replay.get("trace_block_size")
            length = replay.get("input_length")
            raw_hashes = replay.get("input_sequence_hashes")
            if type(raw_hashes) is list:
                # 8 bytes a hash instead of a Python int each: replay hashes are most of a row.
                try:
                    hashes = array("Q", raw_hashes)
                except (OverflowError, TypeError):
                    self.field_issue(FieldIssue.BAD_U64, "replay.input_sequence_hashes", "…")
        trigger = extra = None
        final = False
        if ctx:
            trigger = ctx.get("input_trigger")
            final = ctx.get("session_final") is True or ctx.get("trajectory_final") is True
            if "agent_headers" in ctx or "kv_hints" in ctx or not KNOWN_CONTEXT_KEYS.issuperset(ctx):
                extra = {k: v for k, v in ctx.items() if k in _PASSED_THROUGH or k not in KNOWN_CONTEXT_KEYS}
        io_text = req.get("io_text")
        return LlmRequest(
            self.file_index, self.line, agent, has_ctx, ident, event_time, _text(event.get("event_source")),
            request_id, x_request_id, model, in_tok, out_tok, cached, received, wait, prefill, ttft, total,
            itl, kv_hit, kv_xfer, depth,
            worker_items,
            finish, calls,
            trigger if type(trigger) is str else None,
            final,
            block if type(block) is int else None,
            length if type(length) is int else None,
            hashes,
            extra,
            io_text if type(io_text) is dict else None,
        )

    def _tool(self, event: dict[str, Any], agent: bool, phase: ToolPhase) -> ToolEvent | None:
        tool = event.get("tool")
        if type(tool) is not dict:
            self.skip(Skip.MISSING_BODY, f"{phase.value} without a `tool` object")
            return None
        event_time = event.get("event_time_unix_ms")
        if type(event_time) is not int or event_time < 0:  # the common case; anything else: the full check
            (event_time,) = self.numbers(event, _EVENT_TIME)
        if event_time is None:
            self.skip(Skip.MISSING_TIME, f"{phase.value} without event_time_unix_ms")
            return None
        _, has_ctx, ident = self._context(event, agent)
        self.report.eras[ident.era.value] += 1
        started, ended, out_tok, out_bytes, duration = self.numbers(tool, _TOOL_U64, _TOOL_F64)
        status = tool.get("status")
        if type(status) is str:
            status = STATUS_ALIASES.get(status, status)
        elif status is not None:
            status = str(status)
        get = tool.get
        return ToolEvent(
            self.file_index, self.line, agent, has_ctx, ident, phase, event_time,
            _text(event.get("event_source")), _text(get("tool_call_id")), _text(get("tool_class")),
            started, ended, status, duration, out_tok, out_bytes,
            _text(get("tool_name_hash")), _text(get("error_type")),
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
            event_time_ms=self.numbers(event, _EVENT_TIME)[0],
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
