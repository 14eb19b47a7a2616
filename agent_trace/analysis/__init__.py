"""Analysis: polars tables, AIPerf-style summaries and the critical path of agent runs.

    >>> import agent_trace.analysis as ana
    >>> t = ana.load("captures/")            # doctest: +SKIP
    >>> ana.summary(t, by="model")           # doctest: +SKIP
    >>> ana.critical_path(t)                 # doctest: +SKIP

`load` is the IO edge; everything else takes a `Trace` (or records) and returns polars frames.
"""

from __future__ import annotations

from .critical_path import critical_path
from .summary import summary
from .trace import Trace, load

__all__ = ["Trace", "critical_path", "load", "summary"]
