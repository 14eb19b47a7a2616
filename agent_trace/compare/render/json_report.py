"""JSON views: the full report (every row and the settings), and a benchmark-dashboard series.

`render_json` is the machine-readable twin of the markdown: verdict, counts, both sides, the
settings in force and every results row with full-precision numbers (null where not computed).

`render_benchmark_json` is the `customSmallerIsBetter` format of github-action-benchmark and
similar dashboards: one entry per row with a candidate value, `extra` carrying the comparison.
"""

from __future__ import annotations

from typing import Any

import orjson

from ... import __version__
from ..format import fmt_delta, fmt_ms, fmt_pct
from ..report import Report


def report_dict(report: Report) -> dict[str, Any]:
    s = report.summary
    return {
        "tool": f"agent_trace {__version__}",
        "verdict": "fail" if s.failed else "pass",
        "exit_code": s.exit_code,
        "counts": dict(s.counts),
        "baseline": report.baseline.to_dict(),
        "candidate": report.candidate.to_dict(),
        "settings": report.settings.to_dict(),
        "rows": report.results.to_dicts(),
    }


def render_json(report: Report) -> str:
    return orjson.dumps(report_dict(report), option=orjson.OPT_INDENT_2).decode() + "\n"


def render_benchmark_json(report: Report) -> str:
    entries = []
    for row in report.results.iter_rows(named=True):
        if row["candidate_ms"] is None:
            continue
        extra = f"{row['status']}; baseline {fmt_ms(row['baseline_ms'])}"
        if row["delta_ms"] is not None:
            extra += f"; {fmt_delta(row['delta_ms'])} ({fmt_pct(row['delta_pct'], delta=row['delta_ms'])})"
        extra += f"; n={row['n_candidate']}"
        entries.append(
            {"name": f"{row['metric']} {row['statistic']} [{row['group']}]", "unit": "ms", "value": row["candidate_ms"], "extra": extra}
        )
    return orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode() + "\n"
