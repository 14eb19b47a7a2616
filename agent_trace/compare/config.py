"""The thresholds file: a small TOML document a team keeps in its repository and tunes once.

    # .github/agent-trace-compare.toml
    threshold = "5%"            # every key at the top level is optional
    min_delta_ms = 1
    alpha = 0.01
    min_samples = 10
    metrics = ["ttft_ms", "total_ms", "tool_ms", "session_wall_ms"]

    [[rule]]                    # tool calls that hit the network are noisy
    metric = "tool_ms"
    group = "tool_class=web_fetch"
    threshold = "20%"
    min_delta_ms = 50

    [[rule]]                    # this model's TTFT is held to a tighter bar
    metric = "ttft_ms"
    group = "model=llama-3.1-70b*"
    threshold = "2%"

    [[rule]]
    statistic = "p99"
    ignore = true

Top-level keys: threshold, min_delta_ms, alpha, min_samples, min_tail_samples, metrics, statistics,
bootstrap, seed, fail_on. A `[[rule]]` matches rows by `metric`, `statistic` and `group` (shell
globs; a missing one matches everything) and sets any of threshold, min_delta_ms, alpha,
min_samples, or `ignore = true` to drop the rows. Later rules win.

In a `pyproject.toml` the same keys live under `[tool.agent-trace.compare]` (rules as
`[[tool.agent-trace.compare.rule]]`).

Unknown keys are errors, not ignored: a misspelt threshold must not silently keep the default.
This module parses text; the CLI reads the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from typing import Any

from ..errors import UsageError
from .metrics import metric as lookup_metric
from .settings import Rule, Settings, Status, parse_percent, parse_statistic

PYPROJECT_TABLE = ("tool", "agent-trace", "compare")

_RULE_MATCH = ("metric", "statistic", "group")
_THRESHOLD_KEYS = ("threshold", "min_delta_ms", "alpha", "min_samples")
_TOP_KEYS = (*_THRESHOLD_KEYS, "min_tail_samples", "metrics", "statistics", "bootstrap", "seed", "fail_on", "rule")


class ConfigError(UsageError):
    """The thresholds file cannot be used. The message names the file and the key."""


@dataclass(frozen=True, slots=True)
class CompareConfig:
    """What a thresholds file says: top-level values (as Settings field changes) and rules."""

    source: str
    changes: dict[str, Any]
    threshold_changes: dict[str, Any]
    rules: tuple[Rule, ...]

    def apply(self, settings: Settings) -> Settings:
        """The file's values over `settings`, its rules after any already there."""
        try:
            out = replace(settings, **self.changes, rules=settings.rules + self.rules)
            if self.threshold_changes:
                out = out.with_thresholds(**self.threshold_changes)
        except UsageError as exc:
            raise ConfigError(f"{self.source}: {exc}") from None
        return out


def parse_config(text: str, *, source: str = "<config>", pyproject: bool | None = None) -> CompareConfig:
    """Parse a thresholds file. `pyproject` (default: judged by the name) reads `[tool.agent-trace.compare]`.

    Examples
    --------
    >>> cfg = parse_config('threshold = "10%"\\n[[rule]]\\nmetric = "tool_ms"\\nmin_delta_ms = 50\\n')
    >>> s = cfg.apply(Settings())
    >>> s.thresholds.threshold_pct, s.thresholds_for("tool_ms", "p50", "tool_class=bash").min_delta_ms
    (10.0, 50.0)
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    if pyproject is None:
        pyproject = source.endswith("pyproject.toml")
    if pyproject:
        for key in PYPROJECT_TABLE:
            doc = doc.get(key, {}) if isinstance(doc, dict) else {}
        if not doc:
            raise ConfigError(f"{source}: no [{'.'.join(PYPROJECT_TABLE)}] table")
    return _from_doc(doc, source)


def _from_doc(doc: dict[str, Any], source: str) -> CompareConfig:
    _check_keys(doc, _TOP_KEYS, source, "")
    changes: dict[str, Any] = {}
    if "metrics" in doc:
        names = _str_list(doc["metrics"], source, "metrics")
        for name in names:
            try:
                lookup_metric(name)
            except ValueError as exc:
                raise ConfigError(f"{source}: metrics: {exc}") from None
        changes["metrics"] = tuple(names)
    if "statistics" in doc:
        stats = _str_list(doc["statistics"], source, "statistics")
        for s in stats:
            _wrap(source, "statistics", parse_statistic, s)
        changes["statistics"] = tuple(stats)
    if "min_tail_samples" in doc:
        changes["min_tail_samples"] = _int(doc["min_tail_samples"], source, "min_tail_samples")
    if "bootstrap" in doc:
        changes["resamples"] = _int(doc["bootstrap"], source, "bootstrap")
    if "seed" in doc:
        changes["seed"] = _int(doc["seed"], source, "seed")
    if "fail_on" in doc:
        values = _str_list(doc["fail_on"], source, "fail_on")
        changes["fail_on"] = frozenset(_wrap(source, "fail_on", _status, v) for v in values)
    thresholds = _thresholds(doc, source, "")
    rules_raw = doc.get("rule", [])
    if not isinstance(rules_raw, list) or not all(isinstance(r, dict) for r in rules_raw):
        raise ConfigError(f"{source}: rule: write each rule as a [[rule]] table")
    rules = tuple(_rule(r, source, i) for i, r in enumerate(rules_raw, start=1))
    return CompareConfig(source, changes, thresholds, rules)


def _rule(raw: dict[str, Any], source: str, index: int) -> Rule:
    where = f"rule {index}: "
    _check_keys(raw, (*_RULE_MATCH, *_THRESHOLD_KEYS, "ignore"), source, where)
    fields: dict[str, Any] = {}
    for key in _RULE_MATCH:
        if key in raw:
            if not isinstance(raw[key], str) or not raw[key]:
                raise ConfigError(f"{source}: {where}{key} must be a non-empty string (a glob)")
            fields[key] = raw[key]
    if "ignore" in raw:
        if not isinstance(raw["ignore"], bool):
            raise ConfigError(f"{source}: {where}ignore must be true or false")
        fields["ignore"] = raw["ignore"]
    fields.update(_thresholds(raw, source, where))
    if not fields.get("ignore") and not any(k in raw for k in _THRESHOLD_KEYS):
        raise ConfigError(f"{source}: {where}sets nothing (give a threshold, min_delta_ms, alpha, min_samples or ignore)")
    rule = Rule(**fields)
    # Validate the values the way Settings will use them.
    _wrap(source, where.rstrip(": "), lambda: Settings().with_thresholds(**rule.overrides()))
    return rule


def _thresholds(raw: dict[str, Any], source: str, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "threshold" in raw:
        out["threshold_pct"] = _wrap(source, f"{where}threshold", parse_percent, raw["threshold"])
    if "min_delta_ms" in raw:
        out["min_delta_ms"] = _number(raw["min_delta_ms"], source, f"{where}min_delta_ms")
    if "alpha" in raw:
        out["alpha"] = _number(raw["alpha"], source, f"{where}alpha")
    if "min_samples" in raw:
        out["min_samples"] = _int(raw["min_samples"], source, f"{where}min_samples")
    return out


def _status(value: str) -> Status:
    try:
        return Status(value)
    except ValueError:
        raise UsageError(f"unknown status {value!r}; choose from: {', '.join(s.value for s in Status)}") from None


def _wrap(source: str, key: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except UsageError as exc:
        raise ConfigError(f"{source}: {key}: {exc}") from None


def _check_keys(raw: dict[str, Any], allowed: tuple[str, ...], source: str, where: str) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ConfigError(f"{source}: {where}unknown key(s) {', '.join(unknown)}; expected: {', '.join(allowed)}")


def _str_list(value: Any, source: str, key: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: {key} must be a non-empty list of strings")
    return value


def _number(value: Any, source: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{source}: {key} must be a number, not {value!r}")
    return float(value)


def _int(value: Any, source: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{source}: {key} must be an integer, not {value!r}")
    return value
