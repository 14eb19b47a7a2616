"""One small adapter per identity era (trace-format.md §5): `agent_context` in, `Identity` out.

Detection is per record, because files are concatenated across Dynamo versions:

    workflow_id or program_id present                 -> W
    trajectory_id with session_id (or agent schema)   -> S/T
    trajectory_id alone (request schema)              -> T
    session_id alone: agent schema -> S/T, else       -> S
    nothing identifying                               -> none

Identities are interned: a run has few chains and many records, so each distinct set of identity
values is built once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..model import Era, Identity

W_KEYS = ("workflow_type_id", "workflow_id", "program_id", "parent_program_id")
ST_KEYS = ("session_type_id", "session_id", "trajectory_id", "parent_trajectory_id")
T_KEYS = ("trajectory_id", "parent_trajectory_id")
S_KEYS = ("session_id", "parent_session_id")

# Keys whose meaning we know; anything else in agent_context is passed through untouched.
KNOWN_CONTEXT_KEYS = frozenset(
    W_KEYS + ST_KEYS + S_KEYS
    + ("trajectory_final", "session_final", "kv_hints", "agent_headers", "input_trigger")
)



def _label(value: Any) -> str | None:
    """Upstream's label rule: str(value); None and '' mean absent."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text or None


def _args(ctx: dict[str, Any], keys: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, ctx[k]) for k in keys if ctx.get(k) is not None)


def _workflow(ctx: dict[str, Any]) -> Identity:
    return Identity(
        Era.WORKFLOW,
        chain=_label(ctx.get("program_id")),
        group=_label(ctx.get("workflow_id")),
        parent=_label(ctx.get("parent_program_id")),
        workload=_label(ctx.get("workflow_type_id")),
        args=_args(ctx, W_KEYS),
    )


def _session_trajectory(ctx: dict[str, Any]) -> Identity:
    return Identity(
        Era.SESSION_TRAJECTORY,
        chain=_label(ctx.get("trajectory_id")),
        group=_label(ctx.get("session_id")),
        parent=_label(ctx.get("parent_trajectory_id")),
        workload=_label(ctx.get("session_type_id")),
        args=_args(ctx, ST_KEYS),
    )


def _trajectory(ctx: dict[str, Any]) -> Identity:
    return Identity(
        Era.TRAJECTORY,
        chain=_label(ctx.get("trajectory_id")),
        parent=_label(ctx.get("parent_trajectory_id")),
        args=_args(ctx, T_KEYS),
    )


def _session(ctx: dict[str, Any]) -> Identity:
    return Identity(
        Era.SESSION,
        chain=_label(ctx.get("session_id")),
        parent=_label(ctx.get("parent_session_id")),
        args=_args(ctx, S_KEYS),
    )


def _none(ctx: dict[str, Any]) -> Identity:
    return Identity(Era.NONE, chain=None)


def detect_era(agent_schema: bool, ctx: dict[str, Any]) -> Era:
    """By value, not key presence: an explicit null identifies nothing (it is treated as missing)."""
    get = ctx.get
    if get("workflow_id") is not None or get("program_id") is not None:
        return Era.WORKFLOW
    if get("trajectory_id") is not None:
        return Era.SESSION_TRAJECTORY if agent_schema or get("session_id") is not None else Era.TRAJECTORY
    if get("session_id") is not None:
        return Era.SESSION_TRAJECTORY if agent_schema else Era.SESSION
    if agent_schema:
        if get("session_type_id") is not None:
            return Era.SESSION_TRAJECTORY
        if get("workflow_type_id") is not None:
            return Era.WORKFLOW
    return Era.NONE


ADAPTERS: dict[Era, Callable[[dict[str, Any]], Identity]] = {
    Era.WORKFLOW: _workflow,
    Era.SESSION_TRAJECTORY: _session_trajectory,
    Era.TRAJECTORY: _trajectory,
    Era.SESSION: _session,
    Era.NONE: _none,
}


class IdentityCache:
    """Interns identities by the values of their identity keys."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], Identity] = {}

    def get(self, agent_schema: bool, ctx: dict[str, Any]) -> Identity:
        g = ctx.get
        # Spelled out rather than looped: this runs once per record.
        key = (
            agent_schema, g("session_id"), g("parent_session_id"), g("trajectory_id"),
            g("parent_trajectory_id"), g("session_type_id"), g("workflow_id"), g("program_id"),
            g("parent_program_id"), g("workflow_type_id"),
        )
        try:
            hit = self._cache.get(key)
        except TypeError:  # an unhashable id value (a list, say): build it uncached
            return ADAPTERS[detect_era(agent_schema, ctx)](ctx)
        if hit is None:
            hit = self._cache[key] = ADAPTERS[detect_era(agent_schema, ctx)](ctx)
        return hit
