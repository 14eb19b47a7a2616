"""What `compare` decides with: thresholds, the statistics to compare, and per-row rules.

A row (metric, statistic, group) is `regressed` only when all three hold:

    relative   |delta| / baseline >= threshold_pct / 100   (a zero baseline passes any threshold)
    absolute   |delta| >= min_delta_ms
    evidence   the row's test has p < alpha, pointing the same way as the delta:
                 mean and p50   Mann–Whitney U on the two samples
                 other pNN      the bootstrap distribution of the percentile delta

and the candidate is slower; `improved` is the same with the candidate faster. Rows with fewer
than `required_samples(...)` values on either side are `insufficient_data`: `min_samples`, and
for a percentile at least `min_tail_samples` values beyond it (p90: 50, p99: 500), because below
that a resampled p99 is just the maximum.

Settings are resolved in layers: the defaults here, then a config file's top level, then options
given on the command line; `Rule`s from the config file then override any of the four per-row
thresholds for the rows they match (later rules win), since a rule is more specific.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .metrics import DEFAULT_METRICS

if TYPE_CHECKING:
    from .stats import Statistic  # stats loads numpy; settings are read before any comparison runs


class Status(StrEnum):
    """The outcome of one row. Values are what reports and JSON show."""

    REGRESSED = "regressed"
    IMPROVED = "improved"
    UNCHANGED = "unchanged"
    INSUFFICIENT_DATA = "insufficient_data"
    ADDED = "added"
    REMOVED = "removed"


STATUS_ORDER: tuple[Status, ...] = tuple(Status)
DEFAULT_STATISTICS: tuple[str, ...] = ("p50", "p90", "p99", "mean")

_STAT_RE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


def parse_statistic(name: str) -> Statistic:
    """'mean' -> 'mean'; 'p90' -> 0.9; 'p99.9' -> 0.999. Raises UsageError otherwise."""
    if name == "mean":
        return "mean"
    m = _STAT_RE.match(name)
    if m:
        q = float(m.group(1)) / 100.0
        if 0.0 < q < 1.0:
            return round(q, 10)
    raise UsageError(f"unknown statistic {name!r}; use 'mean' or a percentile such as p50, p90, p99, p99.9")


def is_centre(statistic: str) -> bool:
    """Mean and median are judged by the rank test; every other percentile by its own bootstrap."""
    return statistic in ("mean", "p50")


def parse_percent(value: Any, *, what: str = "threshold") -> float:
    """'5%', '5', 5 or 5.0 -> 5.0 (percent). Raises UsageError for anything else or a negative."""
    text = str(value).strip()
    number = text[:-1].strip() if text.endswith("%") else text
    try:
        pct = float(number)
    except ValueError:
        raise UsageError(f"{what} must be a percentage such as '5%', not {value!r}") from None
    if not math.isfinite(pct) or pct < 0:
        raise UsageError(f"{what} must be a non-negative percentage, not {value!r}")
    return pct


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The decision thresholds of one row."""

    threshold_pct: float = 5.0
    min_delta_ms: float = 1.0
    alpha: float = 0.01
    min_samples: int = 10

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold_pct) and self.threshold_pct >= 0):
            raise UsageError(f"threshold must be a non-negative percentage, not {self.threshold_pct!r}")
        if not (math.isfinite(self.min_delta_ms) and self.min_delta_ms >= 0):
            raise UsageError(f"min_delta_ms must be a non-negative number, not {self.min_delta_ms!r}")
        if not 0.0 < self.alpha < 1.0:
            raise UsageError(f"alpha must be between 0 and 1, not {self.alpha!r}")
        if self.min_samples < 2:
            raise UsageError(f"min_samples must be at least 2, not {self.min_samples!r}")


THRESHOLD_KEYS = tuple(f.name for f in fields(Thresholds))


@dataclass(frozen=True, slots=True)
class Rule:
    """Per-metric, per-statistic, per-group overrides. Patterns are shell globs (`model=llama*`).

    A field left None keeps what the layers below decided; `ignore` drops matching rows.
    """

    metric: str = "*"
    statistic: str = "*"
    group: str = "*"
    threshold_pct: float | None = None
    min_delta_ms: float | None = None
    alpha: float | None = None
    min_samples: int | None = None
    ignore: bool = False

    def matches(self, metric: str, statistic: str, group: str) -> bool:
        return (
            fnmatch.fnmatchcase(metric, self.metric)
            and fnmatch.fnmatchcase(statistic, self.statistic)
            and fnmatch.fnmatchcase(group, self.group)
        )

    def overrides(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in THRESHOLD_KEYS if getattr(self, k) is not None}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, "statistic": self.statistic, "group": self.group}
        out.update(self.overrides())
        if self.ignore:
            out["ignore"] = True
        return out


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a comparison depends on. Reports print all of it."""

    metrics: tuple[str, ...] = DEFAULT_METRICS
    statistics: tuple[str, ...] = DEFAULT_STATISTICS
    thresholds: Thresholds = field(default_factory=Thresholds)
    min_tail_samples: int = 5
    resamples: int = 2000
    seed: int = 0
    rules: tuple[Rule, ...] = ()
    fail_on: frozenset[Status] = frozenset({Status.REGRESSED})

    def __post_init__(self) -> None:
        if not self.metrics:
            raise UsageError("no metrics to compare")
        if not self.statistics:
            raise UsageError("no statistics to compare")
        for s in self.statistics:
            parse_statistic(s)
        if self.min_tail_samples < 1:
            raise UsageError(f"min_tail_samples must be at least 1, not {self.min_tail_samples!r}")
        # The bootstrap p-value cannot go below 2 / (resamples + 1); leave room under alpha.
        smallest_alpha = min([self.thresholds.alpha] + [r.alpha for r in self.rules if r.alpha is not None])
        needed = math.ceil(10.0 / smallest_alpha - 1 - 1e-9)
        if self.resamples < needed:
            raise UsageError(
                f"{self.resamples} bootstrap resamples cannot resolve p-values below alpha={smallest_alpha:g}; "
                f"use at least {needed}"
            )

    def with_thresholds(self, **changes: Any) -> Settings:
        return replace(self, thresholds=replace(self.thresholds, **changes))

    def thresholds_for(self, metric: str, statistic: str, group: str) -> Thresholds | None:
        """The thresholds of one row after the rules, or None when a rule ignores it."""
        changes: dict[str, Any] = {}
        for rule in self.rules:
            if rule.matches(metric, statistic, group):
                if rule.ignore:
                    return None
                changes.update(rule.overrides())
        return replace(self.thresholds, **changes) if changes else self.thresholds

    def required_samples(self, statistic: str, thresholds: Thresholds) -> int:
        """Values needed on each side: min_samples, and enough beyond a percentile to resample it."""
        q = parse_statistic(statistic)
        if q == "mean" or q == 0.5:
            return thresholds.min_samples
        assert isinstance(q, float)
        tail = min(q, 1.0 - q)
        return max(thresholds.min_samples, math.ceil(self.min_tail_samples / tail - 1e-9))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, deterministic."""
        return {
            "metrics": list(self.metrics),
            "statistics": list(self.statistics),
            "threshold_pct": self.thresholds.threshold_pct,
            "min_delta_ms": self.thresholds.min_delta_ms,
            "alpha": self.thresholds.alpha,
            "min_samples": self.thresholds.min_samples,
            "min_tail_samples": self.min_tail_samples,
            "bootstrap_resamples": self.resamples,
            "seed": self.seed,
            "tests": {"mean, p50": "mann_whitney_u", "other percentiles": "bootstrap"},
            "fail_on": [s.value for s in STATUS_ORDER if s in self.fail_on],
            "rules": [r.to_dict() for r in self.rules],
        }
