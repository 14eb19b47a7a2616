"""Slice args, built from model objects at encode time (shared by every encoder).

Keys, order and None-filtering follow upstream (upstream-converter.md §7-§11) so queries on args
keep working. `clean` (Fix.CLEAN_STAGES) drops upstream's null stage args.
"""

from __future__ import annotations

from typing import Any

from .layout.plan import Event, EventKind
from .model import Era, LlmRequest, ToolEvent, ToolPhase
from .options import ConvertOptions, Fix
from .timeline import SYNTHETIC_US, InferredTool, ToolSpan

_SYNTHETIC_MS = SYNTHETIC_US / 1000.0
_PHASE_NAMES = {p: p.value for p in ToolPhase}  # a dict lookup is cheaper than Enum.value


def request_args(r: LlmRequest) -> dict[str, Any]:
    # Spelled out field by field: this runs once per request, and a loop over getattr costs
    # twice as much. The order is upstream's (§7).
    args: dict[str, Any] = dict(r.identity.args)
    if r.event_time_ms is not None:
        args["event_time_unix_ms"] = r.event_time_ms
    if r.request_id is not None:
        args["request_id"] = r.request_id
    if r.x_request_id is not None:
        args["x_request_id"] = r.x_request_id
    if r.model is not None:
        args["model"] = r.model
    if r.input_tokens is not None:
        args["input_tokens"] = r.input_tokens
    if r.output_tokens is not None:
        args["output_tokens"] = r.output_tokens
    if r.cached_tokens is not None:
        args["cached_tokens"] = r.cached_tokens
    if r.received_ms is not None:
        args["request_received_ms"] = r.received_ms
    if r.prefill_wait_ms is not None:
        args["prefill_wait_time_ms"] = r.prefill_wait_ms
    if r.prefill_ms is not None:
        args["prefill_time_ms"] = r.prefill_ms
    if r.ttft_ms is not None:
        args["ttft_ms"] = r.ttft_ms
    if r.total_ms is not None:
        args["total_time_ms"] = r.total_ms
    if r.avg_itl_ms is not None:
        args["avg_itl_ms"] = r.avg_itl_ms
    if r.kv_hit_rate is not None:
        args["kv_hit_rate"] = r.kv_hit_rate
    if r.kv_transfer_ms is not None:
        args["kv_transfer_estimated_latency_ms"] = r.kv_transfer_ms
    if r.queue_depth is not None:
        args["queue_depth"] = r.queue_depth
    if r.worker:
        for key, v in r.worker.items():
            if v is not None:
                args["worker." + key] = v
    f = r.finish
    if f is not None:
        args["finish_reason_metadata"] = f
        args.update(_finish_args(f))
    return args


def _finish_args(f: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("finish_reason", "backend_finish_reason", "stop_reason"):
        if f.get(key) is not None:
            out["finish." + key] = f[key]
    calls = f.get("tool_calls")
    if type(calls) is list:
        out["finish.tool_call_count"] = len(calls)
        names = [str(c["name"]) for c in calls if type(c) is dict and c.get("name")]
        if names:
            out["finish.tool_call_names"] = ", ".join(names)
    choices = f.get("choices")
    if type(choices) is list:
        out["finish.choice_count"] = len(choices)
        reasons = [
            f"{c.get('choice_index')}:{c.get('finish_reason')}"
            for c in choices
            if type(c) is dict and c.get("choice_index") is not None and c.get("finish_reason") is not None
        ]
        if reasons:
            out["finish.choice_finish_reasons"] = ", ".join(reasons)
    return out


def stage_args(r: LlmRequest, kind: EventKind, clean: bool) -> dict[str, Any]:
    args: dict[str, Any] = {"request_id": r.request_id, "x_request_id": r.x_request_id, "model": r.model}
    if kind is EventKind.STAGE_WAIT:
        args["prefill_wait_time_ms"] = r.prefill_wait_ms
    elif kind is EventKind.STAGE_PREFILL:
        args["prefill_time_ms"] = r.prefill_ms
    else:
        args["output_tokens"] = r.output_tokens
        args["avg_itl_ms"] = r.avg_itl_ms
    if clean:
        return {k: v for k, v in args.items() if v is not None}
    return args


def tool_args(span: ToolSpan) -> dict[str, Any]:
    args = tool_event_args(span.event)
    if span.synthetic:
        args["synthetic_duration"] = True
        args["visual_duration_ms"] = _SYNTHETIC_MS
    if span.unclosed:
        args["unclosed"] = True
    return args


def tool_event_args(t: ToolEvent) -> dict[str, Any]:
    """The args a tool slice takes from its record alone (`tool_args` adds the span's flags)."""
    args: dict[str, Any] = dict(t.identity.args)
    args["event_type"] = _PHASE_NAMES[t.phase]
    if t.event_source is not None:
        args["event_source"] = t.event_source
    args["event_time_unix_ms"] = t.event_time_ms
    for key, v in (
        ("tool_call_id", t.tool_call_id),
        ("tool_class", t.tool_class),
        ("started_at_unix_ms", t.started_ms),
        ("ended_at_unix_ms", t.ended_ms),
        ("status", t.status),
        ("duration_ms", t.duration_ms),
        ("output_tokens", t.output_tokens),
        ("output_bytes", t.output_bytes),
        ("tool_name_hash", t.tool_name_hash),
        ("error_type", t.error_type),
    ):
        if v is not None:
            args[key] = v
    return args


def inferred_args(inf: InferredTool, identity_key: str, parent_key: str) -> dict[str, Any]:
    """`identity_key` is the row's own key name (session_id, trajectory_id, ...), as upstream writes it."""
    r = inf.request
    call = inf.call
    ident = dict(r.identity.args)
    parent = ident.get(parent_key)
    args: dict[str, Any] = {}
    if r.identity.era is Era.SESSION_TRAJECTORY:
        # RT2-RT3 rows are (session, trajectory): their args name the workload and session too (§11.3).
        if ident.get("session_type_id") is not None:
            args["session_type_id"] = ident["session_type_id"]
        args["session_id"] = inf.row[0]  # type: ignore[index]  # the row's (defaulted) session label
    args[identity_key] = inf.row_label
    if parent is not None:
        args[parent_key] = parent
    args.update(
        event_type="inferred_tool_call",
        event_source="dynamo",
        source="request.finish_reason_metadata.tool_calls",
        inferred=True,
        host_execution=False,
    )
    for key, v in (
        ("source_request_id", r.request_id),
        ("tool_call_id", call.id),
        ("tool_call_index", call.index),
        ("choice_index", call.choice_index),
        ("tool_class", call.name if call.name else "unknown-tool"),
    ):
        if v is not None:
            args[key] = v
    args["started_at_unix_ms"] = inf.ts / 1000.0
    if inf.duration_unknown:
        args["duration_unknown"] = True
        args["synthetic_duration"] = True
        args["visual_duration_ms"] = _SYNTHETIC_MS
        if inf.next_request is not None and inf.next_request.request_id is not None:
            args["overlapping_request_id"] = inf.next_request.request_id
    else:
        nxt = inf.next_request
        if nxt is not None and nxt.request_id is not None:
            args["next_request_id"] = nxt.request_id
        args["ended_at_unix_ms"] = (inf.ts + inf.dur) / 1000.0
        args["duration_ms"] = inf.dur / 1000.0
    return args


class ArgsBuilder:
    """Args for any plan event, from its kind and subject alone (so they can be built, and
    encoded, before the layout exists: see `agent_trace.encode.proto.RequestAnnotations`)."""

    def __init__(self, *, clean_stages: bool = False, flag_estimated_starts: bool = False) -> None:
        self.clean_stages = clean_stages
        # Fix.REQUEST_START (Q4): a request without request_received_ms starts at an estimate
        # (event time - total time); its slice says so with `start_estimated: true`.
        self.flag_estimated_starts = flag_estimated_starts

    @classmethod
    def for_options(cls, options: ConvertOptions) -> ArgsBuilder:
        return cls(
            clean_stages=Fix.CLEAN_STAGES in options.fixes,
            flag_estimated_starts=Fix.REQUEST_START in options.fixes,
        )

    def __call__(self, e: Event) -> dict[str, Any]:
        return self.of(e.kind, e.subject)

    def of(self, k: EventKind, s: Any) -> dict[str, Any]:
        """Args of an event of kind `k` drawing `s`: they depend on nothing else."""
        if k is EventKind.REQUEST:
            args = request_args(s)
            if self.flag_estimated_starts and s.received_ms is None:
                args["start_estimated"] = True
            return args
        if k is EventKind.TOOL or k is EventKind.TOOL_START_INSTANT:
            return tool_args(s)
        if k is EventKind.FIRST_TOKEN:
            return {"ttft_ms": s.ttft_ms}
        if k is EventKind.INFERRED_TOOL:
            return inferred_args(s, *_inferred_keys(s))
        return stage_args(s, k, self.clean_stages)


def _inferred_keys(inf: InferredTool) -> tuple[str, str]:
    from .model import Era

    era = inf.request.identity.era
    if era in (Era.SESSION_TRAJECTORY, Era.TRAJECTORY):
        return "trajectory_id", "parent_trajectory_id"
    if era is Era.WORKFLOW:
        return "program_id", "parent_program_id"
    return "session_id", "parent_session_id"
