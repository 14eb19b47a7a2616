"""agent_trace: NVIDIA Dynamo agent/request traces as Perfetto timelines, tables and CI reports.

    >>> import agent_trace as at
    >>> t = at.load("fixtures/real/small")                 # doctest: +SKIP
    >>> at.summary(t)                                      # doctest: +SKIP
    >>> at.critical_path(t)                                # doctest: +SKIP
    >>> at.convert_files(["trace.jsonl"], "out.pftrace", at.ConvertOptions(markers=True))  # doctest: +SKIP

The public surface is `__all__` (pinned by tests/test_public_api.py). The analysis names (polars)
and the converter are imported on first use, so `import agent_trace` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .errors import AgentTraceError, InputError, MissingInputError, NoInputError, StrictModeError, UsageError
from .options import ALL_FIXES, ConvertOptions, Fix

__version__ = "0.1.0"

# name -> module it lives in, imported when first asked for
_LAZY = {
    "load": ".analysis",
    "Trace": ".analysis",
    "summary": ".analysis",
    "critical_path": ".analysis",
    "convert_files": ".convert",
    "convert_records": ".convert",
    "build_plan": ".convert",
    "ConversionResult": ".convert",
    "Layout": ".convert",
    "OutputFormat": ".convert",
    "FlushPolicy": ".layout.units",
    "expand_inputs": ".ingest",
    "read_files": ".ingest",
    "iter_records": ".ingest",
}

__all__ = [
    "ALL_FIXES",
    "AgentTraceError",
    "ConversionResult",
    "ConvertOptions",
    "Fix",
    "FlushPolicy",
    "InputError",
    "Layout",
    "MissingInputError",
    "NoInputError",
    "OutputFormat",
    "StrictModeError",
    "Trace",
    "UsageError",
    "__version__",
    "build_plan",
    "convert_files",
    "convert_records",
    "critical_path",
    "expand_inputs",
    "iter_records",
    "load",
    "read_files",
    "summary",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agent_trace' has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
