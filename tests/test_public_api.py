"""The public surface of `agent_trace` is exactly `__all__`, and every name in it resolves."""

from __future__ import annotations

import agent_trace as at
from agent_trace.errors import AgentTraceError

PINNED = {
    "ALL_FIXES", "AgentTraceError", "ConversionResult", "ConvertOptions", "Fix", "FlushPolicy", "InputError",
    "Layout", "MissingInputError", "NoInputError", "OutputFormat", "StrictModeError", "Trace", "UsageError",
    "__version__", "build_plan", "convert_files", "convert_records", "critical_path", "expand_inputs",
    "iter_records", "load", "read_files", "summary",
}


def test_all_is_pinned() -> None:
    assert set(at.__all__) == PINNED
    assert len(at.__all__) == len(PINNED)


def test_every_public_name_resolves() -> None:
    for name in at.__all__:
        assert getattr(at, name) is not None, name


def test_unknown_names_raise_attribute_error() -> None:
    try:
        at.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_every_domain_error_is_an_agent_trace_error() -> None:
    for name in ("InputError", "MissingInputError", "NoInputError", "StrictModeError", "UsageError"):
        assert issubclass(getattr(at, name), AgentTraceError)
    from agent_trace.compare import ConfigError

    assert issubclass(ConfigError, AgentTraceError)
