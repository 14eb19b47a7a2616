"""The critical path of an agent run: which work determined its wall time (pure: frames in, frame out).

A run is a root session (no parent) with all its descendant sessions. Its extent is
`[tree_start_us, tree_end_us]`: the earliest start and the latest end of any request or closed tool
in the tree. The path is a list of contiguous segments covering exactly that extent, so the
durations of one root sum to its wall time.

The walk goes backwards from the end. At cursor `c` it looks, among the items of the current
session (its requests, its closed tools, its child sessions as whole subtrees), for the one that
finished last at or before `c` (`CONTACT_US` of slack absorbs ms rounding between the two
clocks). That item is critical: the time between its end and `c` is a `gap`, and the walk moves
on from its start. Parallel work that finished earlier is therefore never on the path: of
parallel tool calls and subagents only the branch that finished last is. If nothing in a session
finished before `c` but something was running across it (work overlapping the start of the
session), that item covers the time instead. Ties go to requests, then child sessions, then
tools, then the earlier start.

An item is expanded into segments:

    request     its stages: `queue`, `prefill`, `decode` (clamped as in the `stages` table);
                `llm` for request time with no stage information (no ttft_ms)
    tool        `tool`, unless it spawned subagents: a tool that contains a child session is
                expanded by walking those children, and its time not covered by them is
                `subagent` (spawn and join overhead, named after the tool); a child that
                outlives its tool by clock skew is still walked through the tool
    session     a walk of the child's own items, its uncovered time a `gap` of that session

Segments carry the session they belong to, so a breakdown by `kind` and `session_id` says where
the time went.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from .columns import UTC_US

if TYPE_CHECKING:
    from .trace import Trace

# Two intervals this close are treated as touching: request ends are µs values derived from
# ms fields, harness tool times are whole ms from another clock.
CONTACT_US = 1_000

KINDS = ("queue", "prefill", "decode", "llm", "tool", "subagent", "gap")
_REQUEST, _SESSION, _SPAWNING_TOOL, _TOOL = range(4)  # tie-break priority: lower wins


@dataclass(slots=True, eq=False)
class _Item:
    start: int
    end: int
    prio: int
    ref: int  # request_index, tool row, or -1 for a session
    session: str
    name: str
    child: str | None = None  # a child session (for _SESSION items)


@dataclass(slots=True)
class _Session:
    items: list[_Item] = field(default_factory=list)
    children: list[_Item] = field(default_factory=list)


@dataclass(slots=True)
class _Out:
    kind: list[str] = field(default_factory=list)
    session: list[str] = field(default_factory=list)
    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    request: list[int | None] = field(default_factory=list)
    tool: list[int | None] = field(default_factory=list)

    def emit(self, kind: str, session: str, a: int, b: int, name: str, request: int | None, tool: int | None) -> None:
        if b <= a:
            return
        self.kind.append(kind)
        self.session.append(session)
        self.start.append(a)
        self.end.append(b)
        self.name.append(name)
        self.request.append(request)
        self.tool.append(tool)


class _Walker:
    def __init__(
        self,
        sessions: dict[str, _Session],
        stages: dict[int, list[tuple[str, int, int]]],
        out: _Out,
    ) -> None:
        self.sessions = sessions
        self.stages = stages
        self.out = out

    def cover(
        self,
        items: list[_Item],
        hi: int,
        lo: int,
        gap: Callable[[int, int], None],
        *,
        running: bool = True,
    ) -> None:
        """Emit segments covering [lo, hi], latest first, from `items`; uncovered time goes to `gap`.

        With `running`, time before the earliest finish is covered by an item running across it
        (work overlapping the start of a session); without, it is a gap (spawn latency in a
        subagent tool's window: a sibling running meanwhile is not what the next child waited for).
        """
        c = hi
        while c > lo:
            best: _Item | None = None
            best_e = lo
            for it in items:
                s = it.start
                if s >= c or it.end > c + CONTACT_US:
                    continue
                e = it.end if it.end < c else c
                if e <= lo:
                    continue  # finished before the window: covers none of it
                if best is None or e > best_e or (e == best_e and (it.prio, s) < (best.prio, best.start)):
                    best, best_e = it, e
            if best is None:
                # Nothing finished inside (lo, c]: is anything running across c?
                across = [it for it in items if it.start < c < it.end] if running else []
                if not across:
                    gap(lo, c)
                    return
                best = min(across, key=lambda it: (it.start, it.prio))
                best_e = c
            elif best.prio == _SESSION:
                # A child that outlived the tool that spawned it (clock skew) is still walked
                # through that tool, so the spawn latency before it is `subagent`, not `gap`.
                best = _spawner(items, best, c) or best
            if best_e < c:
                gap(best_e, c)
                c = best_e
            s = best.start if best.start > lo else lo
            self.expand(best, s, c)
            c = s

    def expand(self, it: _Item, s: int, c: int) -> None:
        out = self.out
        if it.prio == _REQUEST:
            cursor = c
            for kind, a, b in reversed(self.stages.get(it.ref, ())):
                a2, b2 = (a if a > s else s), (b if b < cursor else cursor)
                if b2 <= a2:
                    continue
                out.emit("llm", it.session, b2, cursor, it.name, it.ref, None)
                out.emit(kind, it.session, a2, b2, it.name, it.ref, None)
                cursor = a2
            out.emit("llm", it.session, s, cursor, it.name, it.ref, None)
        elif it.prio == _TOOL:
            out.emit("tool", it.session, s, c, it.name, None, it.ref)
        elif it.prio == _SPAWNING_TOOL:
            inside = [
                ch for ch in self.sessions[it.session].children
                if ch.start >= it.start - CONTACT_US and ch.end <= it.end + CONTACT_US
            ]

            def overhead(a: int, b: int, it: _Item = it) -> None:
                out.emit("subagent", it.session, a, b, it.name, None, it.ref)

            self.cover(inside, c, s, overhead, running=False)
        else:
            child = it.child
            assert child is not None

            def idle(a: int, b: int, child: str = child) -> None:
                out.emit("gap", child, a, b, "gap", None, None)

            self.cover(self.sessions[child].items, c, s, idle)


def _spawner(items: list[_Item], child: _Item, c: int) -> _Item | None:
    """The spawning tool among `items` that contains `child`, latest-ending first."""
    found: _Item | None = None
    for it in items:
        if (
            it.prio == _SPAWNING_TOOL and it.start < c
            and child.start >= it.start - CONTACT_US and child.end <= it.end + CONTACT_US
            and (found is None or it.end > found.end)
        ):
            found = it
    return found


def critical_path(trace: Trace, session_id: str | None = None) -> pl.DataFrame:
    """The critical path of every root session, or of the tree under `session_id`.

    Returns one row per segment: `root_session_id`, `seq` (0-based, in time order), `kind`
    (queue, prefill, decode, llm, tool, subagent, gap), `session_id` (whose time it is),
    `start_us`, `end_us`, `start`, `end`, `duration_ms`, `name` (model, tool class or "gap"),
    `request_id` and `tool_call_id` where the segment belongs to one. Per root, segments are
    contiguous and cover `[tree_start_us, tree_end_us]` of the `sessions` table exactly.

    Examples
    --------
    >>> from agent_trace.analysis import Trace
    >>> def req(rid, start, total, ttft, calls=()):
    ...     tc = [{"id": c, "name": "bash"} for c in calls]
    ...     return {"schema": "dynamo.request.trace.v1", "event_type": "request_end",
    ...             "event_time_unix_ms": start + total, "agent_context": {"session_id": "s"},
    ...             "request": {"request_id": rid, "request_received_ms": start, "ttft_ms": ttft,
    ...                         "total_time_ms": total, "output_tokens": 5,
    ...                         "finish_reason_metadata": {"tool_calls": tc} if tc else {}}}
    >>> t = Trace.from_objects([req("a", 1000, 100.0, 30.0, ["c1"]), req("b", 1150, 50.0, 10.0)])
    >>> critical_path(t).select("kind", "duration_ms", "name").rows()
    [('prefill', 30.0, 'unknown-model'), ('decode', 70.0, 'unknown-model'), ('tool', 50.0, 'bash'), ('prefill', 10.0, 'unknown-model'), ('decode', 40.0, 'unknown-model')]
    """
    sessions_df = trace.sessions
    if session_id is not None:
        if sessions_df.filter(pl.col("session_id") == session_id).height == 0:
            raise KeyError(f"no session {session_id!r} in this trace")
        # Only the tree it belongs to is needed: keep the walk's setup proportional to it.
        root = sessions_df.filter(pl.col("session_id") == session_id)["root_session_id"].item()
        in_tree = pl.col("root_session_id") == root
        return _critical_path(
            trace.requests.filter(in_tree), trace.tools.filter(in_tree), sessions_df.filter(in_tree),
            trace.stages.filter(in_tree), [session_id],
        )
    targets = sessions_df.filter(pl.col("depth") == 0)["session_id"].to_list()
    return _critical_path(trace.requests, trace.tools, sessions_df, trace.stages, targets)


_SCHEMA = {
    "root_session_id": pl.String,
    "seq": pl.UInt32,
    "kind": pl.String,
    "session_id": pl.String,
    "start_us": pl.Int64,
    "end_us": pl.Int64,
    "name": pl.String,
    "request_index": pl.UInt32,
    "tool_index": pl.UInt32,
}


def _critical_path(
    requests: pl.DataFrame,
    tools: pl.DataFrame,
    sessions_df: pl.DataFrame,
    stages_df: pl.DataFrame,
    targets: list[str],
) -> pl.DataFrame:
    sessions: dict[str, _Session] = {s: _Session() for s in sessions_df["session_id"].to_list()}

    # Children as whole-subtree items, under their parents.
    kids = sessions_df.filter(
        pl.col("parent_session_id").is_not_null() & pl.col("tree_start_us").is_not_null()
    ).select("session_id", "parent_session_id", "tree_start_us", "tree_end_us")
    for sid, parent, a, b in kids.iter_rows():
        if b > a:
            sessions[parent].children.append(_Item(a, b, _SESSION, -1, parent, sid, sid))

    req = requests.select(
        "request_index", "session_id", "start_us", "end_us", pl.col("model").fill_null("unknown-model")
    )
    for idx, sid, a, b, model in req.iter_rows():
        sessions[sid].items.append(_Item(a, b, _REQUEST, idx, sid, model))

    tl = tools.with_row_index("tool_index").filter(
        pl.col("end_us").is_not_null() & (pl.col("end_us") > pl.col("start_us"))
    ).select("tool_index", "session_id", "start_us", "end_us", pl.col("tool_class").fill_null("unknown-tool"))
    for idx, sid, a, b, cls in tl.iter_rows():
        sess = sessions[sid]
        prio = _TOOL
        for ch in sess.children:
            if ch.start >= a - CONTACT_US and ch.end <= b + CONTACT_US:
                prio = _SPAWNING_TOOL
                break
        sess.items.append(_Item(a, b, prio, idx, sid, cls))
    for sess in sessions.values():
        sess.items.extend(sess.children)

    stages: dict[int, list[tuple[str, int, int]]] = {}
    for idx, stage, a, b in stages_df.select("request_index", "stage", "start_us", "end_us").iter_rows():
        stages.setdefault(idx, []).append((stage, a, b))

    bounds = dict(
        (s, (a, b))
        for s, a, b in sessions_df.select("session_id", "tree_start_us", "tree_end_us").iter_rows()
    )
    roots: list[str] = []
    seqs: list[int] = []
    out = _Out()
    walker = _Walker(sessions, stages, out)
    for target in targets:
        lo, hi = bounds[target]
        if lo is None or hi is None:
            continue
        mark = len(out.kind)

        def idle(a: int, b: int, target: str = target) -> None:
            out.emit("gap", target, a, b, "gap", None, None)

        walker.cover(sessions[target].items, hi, lo, idle)
        n = len(out.kind) - mark
        # Segments were emitted latest first; put this root's run in time order.
        columns: tuple[list[Any], ...] = (
            out.kind, out.session, out.start, out.end, out.name, out.request, out.tool
        )
        for col in columns:
            col[mark:] = col[mark:][::-1]
        roots.extend([target] * n)
        seqs.extend(range(n))

    frame = pl.DataFrame(
        {
            "root_session_id": roots,
            "seq": seqs,
            "kind": out.kind,
            "session_id": out.session,
            "start_us": out.start,
            "end_us": out.end,
            "name": out.name,
            "request_index": out.request,
            "tool_index": out.tool,
        },
        schema=_SCHEMA,
    )
    rid = requests.select("request_index", "request_id")
    tid = tools.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("tool_index"), "tool_call_id")
    return (
        frame.join(rid, on="request_index", how="left", maintain_order="left")
        .join(tid, on="tool_index", how="left", maintain_order="left")
        .with_columns(
            duration_ms=(pl.col("end_us") - pl.col("start_us")) / 1000.0,
            start=pl.col("start_us").cast(UTC_US),
            end=pl.col("end_us").cast(UTC_US),
        )
        .select(
            "root_session_id", "seq", "kind", "session_id", "start_us", "end_us", "start", "end",
            "duration_ms", "name", "request_id", "tool_call_id",
        )
    )
