"""agent_trace: NVIDIA Dynamo agent/request traces as Perfetto timelines, tables and CI reports."""

from __future__ import annotations

__version__ = "0.1.0"
