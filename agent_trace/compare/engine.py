"""Compare two samples frames: `(baseline, candidate, settings) -> results frame`. Pure and deterministic.

One results row per (metric, statistic, group), for every metric in `settings.metrics` (a metric
with no samples on either side still gets rows, `insufficient_data`, so it cannot pass unseen) and
every group seen on either side, in metric order, then group, then statistic order:

    metric, statistic, group     String
    status                       String   a `Status` value
    n_baseline, n_candidate      Int64    samples on each side
    baseline_ms, candidate_ms    Float64  the statistic on each side (null where a side is empty)
    delta_ms                     Float64  candidate - baseline
    delta_pct                    Float64  100 * delta / baseline; null when the baseline is 0
    test                         String   "mann_whitney_u" or "bootstrap" (null when not tested)
    p_value                      Float64  two-sided p-value of that test
    ci_low_ms, ci_high_ms        Float64  bootstrap interval of delta at level 1 - alpha
    threshold_pct, min_delta_ms, alpha, min_samples   the row's thresholds after the rules
    reason                       String   why the row has its status, in words

The bootstrap of each row draws from its own generator, seeded from `settings.seed` and the row's
(metric, group, statistic), so a row's numbers do not depend on which other rows exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .format import fmt_delta, fmt_number, fmt_pct, p_clause
from .samples import ALL_GROUP, SAMPLES_SCHEMA
from .settings import STATUS_ORDER, Settings, Status, Thresholds, is_centre, parse_statistic
from .stats import MannWhitney, bootstrap_delta, delta_interval, mann_whitney_u, statistic_value

RESULTS_SCHEMA: dict[str, pl.DataType] = {
    "metric": pl.String(),
    "statistic": pl.String(),
    "group": pl.String(),
    "status": pl.String(),
    "n_baseline": pl.Int64(),
    "n_candidate": pl.Int64(),
    "baseline_ms": pl.Float64(),
    "candidate_ms": pl.Float64(),
    "delta_ms": pl.Float64(),
    "delta_pct": pl.Float64(),
    "test": pl.String(),
    "p_value": pl.Float64(),
    "ci_low_ms": pl.Float64(),
    "ci_high_ms": pl.Float64(),
    "threshold_pct": pl.Float64(),
    "min_delta_ms": pl.Float64(),
    "alpha": pl.Float64(),
    "min_samples": pl.Int64(),
    "reason": pl.String(),
}

_EMPTY = np.empty(0, dtype=np.float64)


def compare_samples(baseline: pl.DataFrame, candidate: pl.DataFrame, settings: Settings | None = None) -> pl.DataFrame:
    """Compare two samples frames (see `samples.py`) under `settings`; returns the results frame.

    Examples
    --------
    >>> import numpy as np
    >>> from agent_trace.compare.samples import samples_from_arrays
    >>> rng = np.random.default_rng(0)
    >>> base = samples_from_arrays({("ttft_ms", "model=a"): rng.lognormal(np.log(40), 0.3, 200)})
    >>> cand = samples_from_arrays({("ttft_ms", "model=a"): rng.lognormal(np.log(52), 0.3, 200)})
    >>> out = compare_samples(base, cand, Settings(metrics=("ttft_ms",), statistics=("p50",)))
    >>> out.select("statistic", "group", "status").rows()
    [('p50', 'model=a', 'regressed')]
    """
    settings = settings or Settings()
    base = _arrays(baseline, "baseline")
    cand = _arrays(candidate, "candidate")
    rows: list[dict[str, Any]] = []
    for metric in settings.metrics:
        groups = sorted({g for (m, g) in base if m == metric} | {g for (m, g) in cand if m == metric})
        for group in groups or [ALL_GROUP]:
            rows.extend(
                _compare_group(metric, group, base.get((metric, group), _EMPTY), cand.get((metric, group), _EMPTY), settings)
            )
    return pl.DataFrame(rows, schema=RESULTS_SCHEMA, orient="row") if rows else pl.DataFrame(schema=RESULTS_SCHEMA)


def _arrays(samples: pl.DataFrame, side: str) -> dict[tuple[str, str], NDArray[np.float64]]:
    missing = [c for c in SAMPLES_SCHEMA if c not in samples.columns]
    if missing:
        raise ValueError(f"the {side} samples frame lacks column(s) {missing}; expected {list(SAMPLES_SCHEMA)}")
    clean = samples.select(
        pl.col("metric").cast(pl.String), pl.col("group").cast(pl.String), pl.col("value").cast(pl.Float64)
    ).filter(pl.col("value").is_finite())
    out: dict[tuple[str, str], NDArray[np.float64]] = {}
    for (metric, group), part in clean.group_by("metric", "group"):
        out[(str(metric), str(group))] = np.sort(part["value"].to_numpy())
    return out


def _rng(seed: int, metric: str, group: str, statistic: str) -> np.random.Generator:
    digest = hashlib.blake2b(f"{metric}\0{group}\0{statistic}".encode(), digest_size=16).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *words]))


def _compare_group(
    metric: str, group: str, b: NDArray[np.float64], c: NDArray[np.float64], settings: Settings
) -> list[dict[str, Any]]:
    rank_test: MannWhitney | None = None
    out = []
    for statistic in settings.statistics:
        th = settings.thresholds_for(metric, statistic, group)
        if th is None:
            continue
        row = _Row(metric, statistic, group, b, c, th)
        needed = settings.required_samples(statistic, th)
        if b.size == 0 and c.size == 0:
            row.finish(Status.INSUFFICIENT_DATA, "no samples on either side")
        elif b.size == 0:
            row.finish(Status.ADDED, f"only in the candidate (n={c.size})")
        elif c.size == 0:
            row.finish(Status.REMOVED, f"only in the baseline (n={b.size})")
        elif min(b.size, c.size) < needed:
            why = f"n={b.size}/{c.size}; needs {needed} per side"
            if needed > th.min_samples:
                why += f" ({settings.min_tail_samples} beyond {statistic})"
            row.finish(Status.INSUFFICIENT_DATA, why)
        elif is_centre(statistic):
            if rank_test is None:
                rank_test = mann_whitney_u(b, c)
            row.bootstrap(settings)
            row.judge("mann_whitney_u", rank_test.p_value, direction=_sign(rank_test.effect - 0.5))
        else:
            interval = row.bootstrap(settings)
            row.judge("bootstrap", interval.p_value, direction=interval.direction)
        out.append(row.values)
    return out


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


@dataclass
class _Interval:
    p_value: float
    direction: int


class _Row:
    """One row being filled in. Values are computed once; `finish` or `judge` sets the status."""

    def __init__(
        self, metric: str, statistic: str, group: str, b: NDArray[np.float64], c: NDArray[np.float64], th: Thresholds
    ) -> None:
        self.b, self.c, self.th, self.statistic = b, c, th, statistic
        self.stat = parse_statistic(statistic)
        base_v = statistic_value(b, self.stat) if b.size else None
        cand_v = statistic_value(c, self.stat) if c.size else None
        delta = cand_v - base_v if base_v is not None and cand_v is not None else None
        pct = None
        if delta is not None and base_v is not None:
            pct = 0.0 if delta == 0 else (100.0 * delta / base_v if base_v != 0 else None)
        self.delta, self.pct = delta, pct
        self.values: dict[str, Any] = {
            "metric": metric,
            "statistic": statistic,
            "group": group,
            "status": None,
            "n_baseline": int(b.size),
            "n_candidate": int(c.size),
            "baseline_ms": base_v,
            "candidate_ms": cand_v,
            "delta_ms": delta,
            "delta_pct": pct,
            "test": None,
            "p_value": None,
            "ci_low_ms": None,
            "ci_high_ms": None,
            "threshold_pct": th.threshold_pct,
            "min_delta_ms": th.min_delta_ms,
            "alpha": th.alpha,
            "min_samples": th.min_samples,
            "reason": None,
        }

    def finish(self, status: Status, reason: str) -> None:
        self.values["status"] = status.value
        self.values["reason"] = reason

    def bootstrap(self, settings: Settings) -> _Interval:
        rng = _rng(settings.seed, self.values["metric"], self.values["group"], self.statistic)
        deltas = bootstrap_delta(self.b, self.c, self.stat, rng, settings.resamples)
        iv = delta_interval(deltas, self.th.alpha)
        self.values["ci_low_ms"], self.values["ci_high_ms"] = iv.low, iv.high
        above, below = int((deltas > 0).sum()), int((deltas < 0).sum())
        return _Interval(iv.p_value, _sign(above - below))

    def judge(self, test: str, p: float, *, direction: int) -> None:
        th, delta, pct = self.th, self.delta, self.pct
        assert delta is not None
        self.values["test"], self.values["p_value"] = test, p
        failed = []
        if delta == 0:
            self.finish(Status.UNCHANGED, "no change")
            return
        if pct is not None and abs(pct) < th.threshold_pct:
            failed.append(f"under the {fmt_number(th.threshold_pct)}% threshold")
        if abs(delta) < th.min_delta_ms:
            failed.append(f"under the {fmt_number(th.min_delta_ms)} ms floor")
        if not p < th.alpha:
            failed.append(f"not significant at α={fmt_number(th.alpha)}")
        elif direction != _sign(delta):
            failed.append("the test points the other way")
        if failed:
            self.finish(Status.UNCHANGED, "; ".join(failed))
            return
        status = Status.REGRESSED if delta > 0 else Status.IMPROVED
        self.finish(
            status,
            f"{'slower' if delta > 0 else 'faster'} by {fmt_pct(pct, delta=delta)} ({fmt_delta(delta)}), "
            f"{p_clause(p)}, α={fmt_number(th.alpha)}",
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts by status and the verdict."""

    counts: dict[str, int]
    failed: bool
    failing: int  # rows whose status is in settings.fail_on

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": "fail" if self.failed else "pass", "rows": self.total, "counts": dict(self.counts)}


def summarize(results: pl.DataFrame, settings: Settings) -> Summary:
    """Counts of every status (zeros included, in `Status` order) and whether the run fails."""
    seen = dict(results.group_by("status").len().iter_rows()) if results.height else {}
    counts = {s.value: int(seen.get(s.value, 0)) for s in STATUS_ORDER}
    failing = sum(counts[s.value] for s in settings.fail_on)
    return Summary(counts, failing > 0, failing)
