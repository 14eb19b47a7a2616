"""Rows: which timeline a record is drawn on (upstream-converter.md §5), by identity role.

A row is (group label, chain label, process prefix), with upstream's per-version default labels
for missing ids. Layouts and analysis tables group records by it.
"""

from __future__ import annotations

from ..model import Era, LlmRequest, ToolEvent

UNATTRIBUTED = "unattributed"
REQUEST_ONLY = "request-only"

Row = tuple[str | None, str, str | None]  # (group label, chain label, process prefix)


def _row(ident_era: Era, group: str | None, chain: str | None, agent_schema: bool, is_request: bool) -> Row:
    """The row a record is drawn on, with upstream's per-version default labels (§5)."""
    if ident_era is Era.WORKFLOW:
        return (group or "unknown-workflow", chain or "unknown-program", "workflow")
    if agent_schema:
        return (group or "unknown-session", chain or "unknown-trajectory", "session")
    if ident_era is Era.SESSION_TRAJECTORY:
        if is_request:
            return (group or "request-trace", chain or REQUEST_ONLY, None)
        return (group or "unknown-session", chain or "unknown-trajectory", None)
    if ident_era is Era.TRAJECTORY:
        return (None, chain or (REQUEST_ONLY if is_request else "unknown-trajectory"), None)
    return (None, chain or (REQUEST_ONLY if is_request else "unknown-session"), None)


def request_row(r: LlmRequest) -> Row:
    i = r.identity
    return _row(i.era, i.group, i.chain, r.agent_schema, True)


def tool_row(t: ToolEvent) -> Row:
    if not t.has_context:
        return (None, UNATTRIBUTED, None)
    i = t.identity
    return _row(i.era, i.group, i.chain, t.agent_schema, False)



class RowMemo:
    """`request_row`/`tool_row`, memoised per interned identity (a run has few, and many records).

    Keys use id(): the identities are owned by the records, which must outlive the memo (a memo
    lives as long as the records of one layout unit).
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[int, bool, int], Row] = {}

    def request(self, r: LlmRequest) -> Row:
        key = (id(r.identity), r.agent_schema, 1)
        row = self._memo.get(key)
        if row is None:
            row = self._memo[key] = request_row(r)
        return row

    def tool(self, t: ToolEvent) -> Row:
        key = (id(t.identity), t.agent_schema, 2 if t.has_context else 3)
        row = self._memo.get(key)
        if row is None:
            row = self._memo[key] = tool_row(t)
        return row


