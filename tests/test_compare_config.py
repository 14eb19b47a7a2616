"""The thresholds file: layering, rules, pyproject support and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_trace.compare import ConfigError, Settings, Status, parse_config, parse_percent
from agent_trace.errors import UsageError

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "compare" / "thresholds.toml"


def test_fixture_config_applies_rules_per_metric_and_group() -> None:
    cfg = parse_config(FIXTURE.read_text(), source=str(FIXTURE))
    s = cfg.apply(Settings())
    bash = s.thresholds_for("tool_ms", "p50", "tool_class=bash")
    assert (bash.threshold_pct, bash.min_delta_ms) == (20.0, 100.0)
    assert s.thresholds_for("tool_ms", "p50", "tool_class=grep") == s.thresholds
    assert s.thresholds_for("queue_ms", "p90", "model=m").min_delta_ms == 2.0


def test_top_level_keys_set_the_defaults() -> None:
    text = """
threshold = "7.5%"
min_delta_ms = 3
alpha = 0.05
min_samples = 30
min_tail_samples = 10
metrics = ["ttft_ms", "tool_ms"]
statistics = ["p50", "p95"]
bootstrap = 4000
seed = 42
fail_on = ["regressed", "removed"]
"""
    s = parse_config(text).apply(Settings())
    assert (s.thresholds.threshold_pct, s.thresholds.min_delta_ms, s.thresholds.alpha) == (7.5, 3.0, 0.05)
    assert s.thresholds.min_samples == 30 and s.min_tail_samples == 10
    assert s.metrics == ("ttft_ms", "tool_ms") and s.statistics == ("p50", "p95")
    assert (s.resamples, s.seed) == (4000, 42)
    assert s.fail_on == {Status.REGRESSED, Status.REMOVED}


def test_command_line_beats_the_file_but_rules_stay_specific() -> None:
    cfg = parse_config('threshold = "10%"\n[[rule]]\nmetric = "tool_ms"\nthreshold = "30%"\n')
    s = cfg.apply(Settings()).with_thresholds(threshold_pct=2.0)  # as `--threshold 2%` does
    assert s.thresholds_for("ttft_ms", "p50", "model=a").threshold_pct == 2.0
    assert s.thresholds_for("tool_ms", "p50", "tool_class=bash").threshold_pct == 30.0


def test_pyproject_table() -> None:
    text = '[project]\nname = "x"\n\n[tool.agent-trace.compare]\nalpha = 0.02\n\n[[tool.agent-trace.compare.rule]]\nmetric = "ttft_ms"\nignore = true\n'
    s = parse_config(text, source="repo/pyproject.toml").apply(Settings())
    assert s.thresholds.alpha == 0.02
    assert s.thresholds_for("ttft_ms", "p50", "model=a") is None
    with pytest.raises(ConfigError, match=r"no \[tool.agent-trace.compare\] table"):
        parse_config('[project]\nname = "x"\n', source="pyproject.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('treshold = "5%"', r"t\.toml: unknown key\(s\) treshold"),
        ('threshold = "five"', r"t\.toml: threshold: threshold must be a percentage"),
        ("alpha = 2.0", r"alpha must be between 0 and 1"),
        ('alpha = "0.01"', r"alpha must be a number"),
        ('metrics = ["ttft"]', r"metrics: unknown metric 'ttft'"),
        ('statistics = ["p100"]', r"statistics: unknown statistic"),
        ('fail_on = ["broken"]', r"fail_on: unknown status 'broken'"),
        ('[[rule]]\nmetric = "tool_ms"\nthreshhold = "5%"', r"rule 1: unknown key\(s\) threshhold"),
        ('[[rule]]\nmetric = "tool_ms"', r"rule 1: sets nothing"),
        ('[[rule]]\nmetric = "tool_ms"\nmin_delta_ms = -1', r"rule 1: min_delta_ms must be a non-negative"),
        ("rule = 3", r"write each rule as a \[\[rule\]\] table"),
        ("threshold = ", r"not valid TOML"),
    ],
)
def test_errors_name_the_file_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text, source="t.toml").apply(Settings())


def test_config_errors_are_usage_errors() -> None:
    assert issubclass(ConfigError, UsageError)


@pytest.mark.parametrize(("value", "pct"), [("5%", 5.0), ("5", 5.0), (5, 5.0), ("0.5 %", 0.5), (0, 0.0)])
def test_parse_percent(value: object, pct: float) -> None:
    assert parse_percent(value) == pct


@pytest.mark.parametrize("value", ["-1%", "abc", "nan%", ""])
def test_parse_percent_rejects(value: str) -> None:
    with pytest.raises(UsageError):
        parse_percent(value)
