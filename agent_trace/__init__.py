"""agent_trace: NVIDIA Dynamo agent/request traces as Perfetto timelines, tables and CI reports.

    >>> import agent_trace as at
    >>> t = at.load("fixtures/real/small")                 # doctest: +SKIP
    >>> at.summary(t)                                      # doctest: +SKIP
    >>> at.critical_path(t)                                # doctest: +SKIP

The analysis names are imported on first use, so converting (which never needs polars) starts fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_ANALYSIS = frozenset({"load", "Trace", "summary", "critical_path"})

__all__ = ["Trace", "__version__", "critical_path", "load", "summary"]


def __getattr__(name: str) -> Any:
    if name in _ANALYSIS:
        from . import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'agent_trace' has no attribute {name!r}")
