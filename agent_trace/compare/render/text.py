"""Sentences and cells every renderer shares, so the terminal, markdown and JUnit say the same thing."""

from __future__ import annotations

from typing import Any

from ..format import fmt_ci, fmt_delta, fmt_ms, fmt_n, fmt_number, fmt_p, fmt_pct, p_clause
from ..report import Report
from ..settings import STATUS_ORDER, Settings, Status

STATUS_LABEL = {
    Status.REGRESSED: "regressed",
    Status.IMPROVED: "improved",
    Status.UNCHANGED: "unchanged",
    Status.INSUFFICIENT_DATA: "insufficient data",
    Status.ADDED: "added",
    Status.REMOVED: "removed",
}

ROW_HEADERS = ("metric", "stat", "group", "baseline", "candidate", "Δ", "Δ%", "p", "CI of Δ", "n (base / cand)")


def title(report: Report) -> str:
    s = report.summary
    if s.failed:
        bad = [f"{s.counts[st.value]} {STATUS_LABEL[st]}" for st in STATUS_ORDER if st in report.settings.fail_on and s.counts[st.value]]
        return f"FAIL: {', '.join(bad)}"
    return "PASS: no regressions"


def counts_line(report: Report) -> str:
    s = report.summary
    parts = [f"{s.counts[st.value]} {STATUS_LABEL[st]}" for st in STATUS_ORDER]
    return " · ".join(parts) + f" ({s.total} comparisons)"


def sides_line(report: Report, *, code: bool = False) -> str:
    return f"baseline {report.baseline.describe(code=code)} → candidate {report.candidate.describe(code=code)}"


def rule_sentence(settings: Settings) -> str:
    """The decision rule in one paragraph, with the numbers in force."""
    t = settings.thresholds
    tail = ", ".join(
        f"{s}: {settings.required_samples(s, t)}" for s in settings.statistics if settings.required_samples(s, t) > t.min_samples
    )
    text = (
        f"A row regresses when the candidate is slower by at least {fmt_number(t.threshold_pct)}% and "
        f"{fmt_number(t.min_delta_ms)} ms, and the change is significant at α = {fmt_number(t.alpha)} "
        f"(mean and p50: Mann–Whitney U; other percentiles: bootstrap of the percentile delta, "
        f"{settings.resamples:,} resamples, seed {settings.seed}; intervals at 1 − α). "
        f"Rows need {t.min_samples} samples per side"
        + (f" and {settings.min_tail_samples} beyond a percentile ({tail})" if tail else "")
        + "; fewer is insufficient data, never a pass."
    )
    if settings.rules:
        n = len(settings.rules)
        text += (
            f" {n} rule{'s' if n != 1 else ''} from the config {'override' if n != 1 else 'overrides'} "
            "this for some rows (see settings)."
        )
    return text


def settings_rows(settings: Settings) -> list[tuple[str, str]]:
    t = settings.thresholds
    rows = [
        ("threshold", f"{fmt_number(t.threshold_pct)}%"),
        ("min delta", f"{fmt_number(t.min_delta_ms)} ms"),
        ("alpha", fmt_number(t.alpha)),
        ("min samples", f"{t.min_samples} per side; {settings.min_tail_samples} beyond a percentile"),
        ("bootstrap", f"{settings.resamples:,} resamples, seed {settings.seed}"),
        ("fail on", ", ".join(s.value for s in STATUS_ORDER if s in settings.fail_on)),
        ("metrics", ", ".join(settings.metrics)),
        ("statistics", ", ".join(settings.statistics)),
    ]
    for i, rule in enumerate(settings.rules, start=1):
        rows.append((f"rule {i}", describe_rule(rule.to_dict())))
    return rows


def describe_rule(rule: dict[str, Any]) -> str:
    where = " ".join(f"{k}={rule[k]}" for k in ("metric", "statistic", "group") if rule[k] != "*") or "every row"
    what = []
    if rule.get("ignore"):
        what.append("ignored")
    if "threshold_pct" in rule:
        what.append(f"threshold {fmt_number(rule['threshold_pct'])}%")
    if "min_delta_ms" in rule:
        what.append(f"min delta {fmt_number(rule['min_delta_ms'])} ms")
    if "alpha" in rule:
        what.append(f"alpha {fmt_number(rule['alpha'])}")
    if "min_samples" in rule:
        what.append(f"min samples {rule['min_samples']}")
    return f"{where}: {', '.join(what)}"


def row_cells(row: dict[str, Any]) -> tuple[str, ...]:
    """The cells of ROW_HEADERS for one results row."""
    return (
        row["metric"],
        row["statistic"],
        row["group"],
        fmt_ms(row["baseline_ms"]),
        fmt_ms(row["candidate_ms"]),
        fmt_delta(row["delta_ms"]),
        fmt_pct(row["delta_pct"], delta=row["delta_ms"]),
        fmt_p(row["p_value"]),
        fmt_ci(row["ci_low_ms"], row["ci_high_ms"]),
        fmt_n(row["n_baseline"], row["n_candidate"]),
    )


def one_line(row: dict[str, Any]) -> str:
    """`p50 41.8 ms → 54.3 ms (+12.5 ms, +30.0%, p<0.001): regressed`, and why when not judged a change."""
    change = ""
    if row["delta_ms"] is not None:
        bits = [fmt_delta(row["delta_ms"]), fmt_pct(row["delta_pct"], delta=row["delta_ms"])]
        if row["p_value"] is not None:
            bits.append(p_clause(row["p_value"]))
        change = f" ({', '.join(bits)})"
    status = Status(row["status"])
    why = "" if status in (Status.REGRESSED, Status.IMPROVED) else f" — {row['reason']}"
    return f"{row['statistic']} {fmt_ms(row['baseline_ms'])} → {fmt_ms(row['candidate_ms'])}{change}: {STATUS_LABEL[status]}{why}"
