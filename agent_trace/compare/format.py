"""How numbers read in every report: one place, so markdown, the terminal and JUnit agree.

    ms      1,234 ms / 41.8 ms / 5.79 ms / 0.412 ms     (about three significant digits)
    delta   +12.5 ms, -0.412 ms                          (always signed)
    pct     +30.0%, -4.96%, n/a (baseline 0)
    p       <0.001, 0.012, 0.734
"""

from __future__ import annotations

import math


def _magnitude(value: float) -> str:
    a = abs(value)
    if a >= 100:
        return f"{a:,.0f}"
    if a >= 10:
        return f"{a:.1f}"
    if a >= 1:
        return f"{a:.2f}"
    if a == 0:
        return "0"
    return f"{a:.3f}" if a >= 0.001 else f"{a:.1e}"


def fmt_ms(value: float | None, unit: str = "ms") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return ("-" if value < 0 else "") + f"{_magnitude(value)} {unit}"


def fmt_delta(value: float | None, unit: str = "ms") -> str:
    if value is None:
        return "–"
    sign = "+" if value > 0 else ("-" if value < 0 else "±")
    return f"{sign}{_magnitude(value)} {unit}"


def fmt_pct(value: float | None, *, delta: float | None = None) -> str:
    if value is None:
        return "n/a" if delta else "–"
    if value == 0:
        return "±0%"
    a = abs(value)
    body = f"{a:,.0f}" if a >= 1000 else (f"{a:.1f}" if a >= 10 else f"{a:.2f}")
    return ("+" if value > 0 else "-") + body + "%"


def fmt_p(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 0.001:
        return "<0.001"
    return f"{value:.3f}"


def p_clause(value: float) -> str:
    """'p<0.001' or 'p=0.012', for sentences."""
    text = fmt_p(value)
    return f"p{text}" if text.startswith("<") else f"p={text}"


def fmt_ci(low: float | None, high: float | None, unit: str = "ms") -> str:
    if low is None or high is None:
        return "–"
    return f"[{_signed(low)}, {_signed(high)}] {unit}"


def _signed(value: float) -> str:
    if value == 0:
        return "0"
    return ("+" if value > 0 else "-") + _magnitude(value)


def fmt_n(n_baseline: int, n_candidate: int) -> str:
    return f"{n_baseline:,} / {n_candidate:,}"


def fmt_number(value: float) -> str:
    """A setting: 5.0 -> '5', 0.01 -> '0.01'."""
    return f"{value:g}"
