"""Markdown for a pull-request comment or `$GITHUB_STEP_SUMMARY` (GitHub-flavoured).

A headline with the verdict and counts, the decision rule with its numbers, regressions first,
then improvements, then everything else and the full settings inside collapsed `<details>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from ..report import Report
from ..settings import Status
from .text import (
    ROW_HEADERS,
    STATUS_LABEL,
    counts_line,
    row_cells,
    rule_sentence,
    settings_rows,
    sides_line,
    title,
)

_RIGHT = {"baseline", "candidate", "Δ", "Δ%", "p", "n (base / cand)"}
_REST = (Status.UNCHANGED, Status.INSUFFICIENT_DATA, Status.ADDED, Status.REMOVED)


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("--:" if h in _RIGHT else "---" for h in headers) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _section(frame: pl.DataFrame) -> list[str]:
    return _table(ROW_HEADERS, (row_cells(r) for r in frame.iter_rows(named=True)))


def render_markdown(report: Report, *, heading_level: int = 2) -> str:
    h = "#" * heading_level
    s = report.summary
    icon = "❌" if s.failed else "✅"
    lines = [f"{h} {icon} agent-trace compare — {title(report)}", ""]
    lines += [f"**{counts_line(report)}**", ""]
    lines += [sides_line(report, code=True), ""]
    lines += [rule_sentence(report.settings), ""]
    for status, name in ((Status.REGRESSED, "Regressions"), (Status.IMPROVED, "Improvements")):
        frame = report.ordered((status,))
        if frame.height:
            lines += [f"{h}# {name} ({frame.height})", ""] + _section(frame) + [""]
    if not s.counts[Status.REGRESSED.value]:
        lines += ["No regressions.", ""]
    rest = report.ordered(_REST)
    if rest.height:
        what = ", ".join(f"{s.counts[st.value]} {STATUS_LABEL[st]}" for st in _REST if s.counts[st.value])
        lines += ["<details>", f"<summary>Everything else: {what}</summary>", ""]
        headers = ("status", *ROW_HEADERS, "why")
        body = ((STATUS_LABEL[Status(r["status"])], *row_cells(r), r["reason"]) for r in rest.iter_rows(named=True))
        lines += _table(headers, body) + ["", "</details>", ""]
    lines += ["<details>", "<summary>Settings</summary>", ""]
    lines += _table(("setting", "value"), settings_rows(report.settings)) + ["", "</details>", ""]
    return "\n".join(lines)
