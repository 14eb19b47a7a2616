"""Accounting: every input line ends up converted or counted as skipped, with a reason.

`ReadReport` is filled by the reader (one per run). It keeps counters, not records, plus the first
few problems with their file and line so the user can look at them. The invariant the tests check:

    report.lines == report.blank + sum(report.accepted.values()) + sum(report.skipped.values())

`DrawReport` is filled by a layout: how many events of each category were emitted, the upstream
"converted" count, and the accepted records that were deliberately not drawn (with a reason).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Skip(StrEnum):
    """Why a line (or a record) was not used. The value is what users see."""

    INVALID_JSON = "invalid_json"
    TRUNCATED_TAIL = "truncated_tail"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_SCHEMA = "unknown_schema"
    UNSUPPORTED_EVENT_TYPE = "unsupported_event_type"
    MISSING_TIME = "missing_time"
    MISSING_BODY = "missing_body"  # request_end without `request`, tool row without `tool`, ...


class FileIssue(StrEnum):
    """Problems with a whole file (or its tail) rather than with one line."""

    TRUNCATED_GZIP_MEMBER = "truncated_gzip_member"
    CORRUPT_GZIP_MEMBER = "corrupt_gzip_member"
    GZ_SUFFIX_NOT_GZIP = "gz_suffix_not_gzip"
    UNREADABLE = "unreadable"


class FieldIssue(StrEnum):
    """A field that was present but unusable; the record is kept and the field treated as missing."""

    NULL = "field_null"
    NOT_A_NUMBER = "field_not_a_number"
    NON_FINITE = "field_non_finite"
    NOT_AN_OBJECT = "field_not_an_object"
    BAD_U64 = "field_bad_u64"


class NotDrawn(StrEnum):
    """Accepted records a layout chose not to draw."""

    PAYLOAD_ROW = "request_payload (kept for analysis; not drawn)"
    TOOL_WITHOUT_CONTEXT = "tool row without agent_context (upstream skips it)"
    AGENT_SCHEMA_WITHOUT_CONTEXT = "agent-schema row without agent_context (upstream skips it)"


@dataclass(frozen=True, slots=True)
class Problem:
    """One located problem, kept as an example for the user."""

    path: str
    line: int | None
    kind: str
    detail: str

    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


@dataclass(slots=True)
class FileStats:
    path: str
    lines: int = 0
    bytes_read: int = 0
    gzip: bool = False
    members: int = 0


MAX_EXAMPLES = 20


@dataclass
class ReadReport:
    files: list[FileStats] = field(default_factory=list)
    lines: int = 0
    blank: int = 0
    accepted: Counter[str] = field(default_factory=Counter)  # by event_type
    schemas: Counter[str] = field(default_factory=Counter)  # accepted records by schema string
    eras: Counter[str] = field(default_factory=Counter)  # accepted records by identity era
    skipped: Counter[str] = field(default_factory=Counter)  # by Skip value
    skipped_detail: Counter[str] = field(default_factory=Counter)  # "unknown_schema: foo.v9"
    file_issues: Counter[str] = field(default_factory=Counter)
    field_issues: Counter[str] = field(default_factory=Counter)
    examples: list[Problem] = field(default_factory=list)

    @property
    def accepted_total(self) -> int:
        return sum(self.accepted.values())

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def problem_count(self) -> int:
        return self.skipped_total + sum(self.file_issues.values()) + sum(self.field_issues.values())

    def balanced(self) -> bool:
        return self.lines == self.blank + self.accepted_total + self.skipped_total

    def add_example(self, problem: Problem) -> None:
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(problem)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (embedded in outputs; deterministic key order)."""
        return {
            "files": [
                {"path": f.path, "lines": f.lines, "gzip": f.gzip, **({"members": f.members} if f.gzip else {})}
                for f in self.files
            ],
            "lines": self.lines,
            "blank_lines": self.blank,
            "accepted": dict(sorted(self.accepted.items())),
            "schemas": dict(sorted(self.schemas.items())),
            "eras": dict(sorted(self.eras.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_detail": dict(sorted(self.skipped_detail.items())),
            "file_issues": dict(sorted(self.file_issues.items())),
            "field_issues": dict(sorted(self.field_issues.items())),
            "examples": [{"at": p.location(), "kind": p.kind, "detail": p.detail} for p in self.examples],
        }


@dataclass
class DrawReport:
    converted: int = 0  # upstream's count: request, tool and inferred-tool slices plus tool instants
    by_category: Counter[str] = field(default_factory=Counter)
    not_drawn: Counter[str] = field(default_factory=Counter)
    tracks: int = 0
    flows: int = 0
    counters: int = 0
    # records that arrived after their session had been laid out and written (`layout.units`):
    # drawn, but on tracks of their own
    late_records: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "converted": self.converted,
            "events_by_category": dict(sorted(self.by_category.items())),
            "not_drawn": dict(sorted(self.not_drawn.items())),
            "tracks": self.tracks,
            "flows": self.flows,
            "counter_tracks": self.counters,
        }
        if self.late_records:
            out["late_records"] = self.late_records
        return out
