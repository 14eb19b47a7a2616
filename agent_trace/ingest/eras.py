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
from dataclasses import dataclass
from typing import Any

import msgspec

from ..model import NO_IDENTITY, Era, Identity

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
    """Interns identities by the values of their identity keys (cleared past `limit` entries,
    so a long trace's memory stays bounded; equal identities are equal by value either way)."""

    __slots__ = ("_cache", "limit")

    def __init__(self, limit: int = 1 << 16) -> None:
        self._cache: dict[tuple[Any, ...], Identity] = {}
        self.limit = limit

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
            if len(self._cache) >= self.limit:
                self._cache.clear()
            hit = self._cache[key] = ADAPTERS[detect_era(agent_schema, ctx)](ctx)
        return hit


_PASSED_THROUGH = frozenset({"agent_headers", "kv_hints"})


@dataclass(frozen=True, slots=True)
class ContextInfo:
    """What a record takes from its `agent_context` object."""

    has_context: bool
    identity: Identity
    input_trigger: str | None = None
    final: bool = False
    # agent_headers, kv_hints and unknown keys, passed through (shared by records with equal context)
    extra: dict[str, Any] | None = None


NO_CONTEXT = ContextInfo(False, NO_IDENTITY)


def context_info(agent_schema: bool, ctx: dict[str, Any], identities: IdentityCache) -> ContextInfo:
    """The fields an `agent_context` object gives a record (ctx is a dict)."""
    if not ctx:
        return ContextInfo(True, NO_IDENTITY)
    trigger = ctx.get("input_trigger")
    extra = None
    if "agent_headers" in ctx or "kv_hints" in ctx or not KNOWN_CONTEXT_KEYS.issuperset(ctx):
        extra = {k: v for k, v in ctx.items() if k in _PASSED_THROUGH or k not in KNOWN_CONTEXT_KEYS}
    return ContextInfo(
        True,
        identities.get(agent_schema, ctx),
        trigger if type(trigger) is str else None,
        ctx.get("session_final") is True or ctx.get("trajectory_final") is True,
        extra,
    )


class ContextCache:
    """`ContextInfo` by the raw bytes of `agent_context`: records of one session repeat the same
    few contexts, so each distinct one is decoded once. Bounded: cleared when it grows past
    `limit` entries (a long trace has ever more sessions)."""

    __slots__ = ("_decode", "_cache", "identities", "limit")

    def __init__(self, identities: IdentityCache, limit: int = 1 << 16) -> None:
        self._decode = msgspec.json.Decoder().decode  # exact integers, like the slow path
        self._cache: dict[tuple[bool, bytes], ContextInfo] = {}
        self.identities = identities
        self.limit = limit

    def get(self, agent_schema: bool, raw: msgspec.Raw | None) -> ContextInfo | None:
        """None when the context is not an object (the slow path counts it)."""
        if raw is None:
            return NO_CONTEXT
        key = (agent_schema, bytes(raw))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if key[1] == b"null":
            return NO_CONTEXT
        if key[1][:1] != b"{":
            return None
        if len(self._cache) >= self.limit:
            self._cache.clear()
        hit = self._cache[key] = context_info(agent_schema, self._decode(key[1]), self.identities)
        return hit
