"""`Report`: a results frame with the settings that made it and what each side was.

Renderers take a `Report` and return text (or a rich renderable); none of them computes a number
the frame does not hold, so every output agrees with `report.results`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from .engine import Summary, compare_samples, summarize
from .settings import STATUS_ORDER, Settings, Status


@dataclass(frozen=True, slots=True)
class Side:
    """One side of the comparison, as the reader should see it named."""

    label: str
    files: tuple[str, ...] = ()
    detail: str = ""  # e.g. "1,200 requests, 840 tool calls, 60 sessions"

    def describe(self, *, code: bool = False) -> str:
        """`label (2 files, 1,200 requests)`; with `code`, the label as a markdown code span."""
        files = f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}" if self.files else ""
        extra = ", ".join(x for x in (files, self.detail) if x)
        label = f"`{self.label.replace('`', '')}`" if code else self.label
        return f"{label} ({extra})" if extra else label

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "files": list(self.files), "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Report:
    results: pl.DataFrame
    settings: Settings
    baseline: Side = field(default_factory=lambda: Side("baseline"))
    candidate: Side = field(default_factory=lambda: Side("candidate"))

    @property
    def summary(self) -> Summary:
        return summarize(self.results, self.settings)

    def ordered(self, statuses: tuple[Status, ...] = STATUS_ORDER) -> pl.DataFrame:
        """Rows with one of `statuses`, in that status order, then in results order."""
        rank = {s.value: i for i, s in enumerate(statuses)}
        return (
            self.results.with_row_index("_i")
            .filter(pl.col("status").is_in(list(rank)))
            .sort(pl.col("status").replace_strict(rank, return_dtype=pl.Int32), "_i")
            .drop("_i")
        )


def build_report(
    baseline: pl.DataFrame,
    candidate: pl.DataFrame,
    settings: Settings | None = None,
    *,
    baseline_side: Side | None = None,
    candidate_side: Side | None = None,
) -> Report:
    """Compare two samples frames and wrap the result for rendering."""
    settings = settings or Settings()
    return Report(
        compare_samples(baseline, candidate, settings),
        settings,
        baseline_side or Side("baseline"),
        candidate_side or Side("candidate"),
    )
