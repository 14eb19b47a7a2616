"""Lane packing: upstream's greedy interval colouring (upstream-converter.md §12).

Items arrive in start order. Before placing one, every lane whose holder ended at or before its
start is freed; the item takes the smallest free lane and holds it until start + dur. So adjacent
intervals (end == start) reuse a lane, and two items share a lane only if they do not overlap.
"""

from __future__ import annotations

import heapq


class LanePacker:
    __slots__ = ("_active", "_used", "lanes")

    def __init__(self) -> None:
        self._active: list[tuple[int, int]] = []  # (end, lane) min-heap
        self._used: set[int] = set()
        self.lanes = 0  # how many lanes were ever needed

    def place(self, start: int, end: int) -> int:
        active = self._active
        used = self._used
        while active and active[0][0] <= start:
            used.discard(heapq.heappop(active)[1])
        lane = 0
        while lane in used:
            lane += 1
        used.add(lane)
        heapq.heappush(active, (end, lane))
        if lane >= self.lanes:
            self.lanes = lane + 1
        return lane
