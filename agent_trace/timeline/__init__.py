"""The rules layout and analysis share (pure): what a record means on a timeline.

    rows     which row (chain) a record belongs to, with upstream's default labels
    bounds   request bounds and stage intervals in µs, stage clamping
    tools    tool pairing, tool-call inference, which records are drawable

Layouts draw these; analysis tables count them. Neither re-implements them.
"""

from .bounds import SYNTHETIC_US, ms_to_us, request_bounds, stage_intervals
from .rows import REQUEST_ONLY, UNATTRIBUTED, Row, RowMemo, request_row, tool_row
from .tools import (
    InferredTool,
    PlacedRequest,
    ToolSpan,
    activity_end,
    drawable_requests,
    drawable_tools,
    infer_tools,
    pair_tools,
    timeline_tools,
)

__all__ = [
    "REQUEST_ONLY",
    "SYNTHETIC_US",
    "UNATTRIBUTED",
    "InferredTool",
    "activity_end",
    "PlacedRequest",
    "Row",
    "RowMemo",
    "ToolSpan",
    "drawable_requests",
    "drawable_tools",
    "infer_tools",
    "ms_to_us",
    "pair_tools",
    "request_bounds",
    "request_row",
    "stage_intervals",
    "timeline_tools",
    "tool_row",
]
