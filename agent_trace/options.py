"""Conversion options. Policies are values, not scattered booleans.

Compatibility first: with no fixes, output for input upstream understands matches Dynamo's own
`convert_to_perfetto.py` (RT6 for request-schema input, AT7 for agent-schema input). Each `Fix`
corrects one documented upstream quirk (upstream-converter.md §16) and changes output, so each is
opt-in and named. Robustness improvements that change nothing upstream could convert (reading
every era, surviving damaged input, counting skips) are always on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Fix(StrEnum):
    """Opt-in corrections of upstream quirks; the value is the CLI spelling."""

    REQUEST_START = "request-start"  # Q4: start = end − total_time_ms when request_received_ms is missing
    LANES_PER_KIND = "lanes-per-kind"  # Q5: requests and tools get separate lane pools and stable names
    GROUP_IN_NAMES = "group-in-names"  # Q6: track names include the run (group) id when the era has one
    REBASE_TIME = "rebase-time"  # Q7: timestamps start at 0; the epoch offset goes into metadata
    CLEAN_STAGES = "clean-stages"  # Q8: no null stage args; first-token marker clamped into its request
    TOOL_PAIRING = "tool-pairing"  # Q9: pair by explicit start time, else oldest open start (not LIFO)
    INFERENCE = "inference"  # Q10: any harness row (a start too) suppresses an inferred tool; open starts drawn as slices
    SORT_INDEX = "sort-index"  # Q13: process/thread sort indices so Perfetto keeps our track order
    BIG_INTS = "big-ints"  # Q15: integers above 2^53 written as strings (JavaScript loses them)
    UNATTRIBUTED = "unattributed"  # Q17: tool rows without agent_context drawn on one `unattributed` row


ALL_FIXES = frozenset(Fix)


@dataclass(frozen=True)
class ConvertOptions:
    stages: bool = True
    markers: bool = False
    separate_stage_tracks: bool = False
    fixes: frozenset[Fix] = field(default_factory=frozenset)
    embed_summary: bool = True  # the read/draw report under the document's "metadata" key

    def has(self, fix: Fix) -> bool:
        return fix in self.fixes
