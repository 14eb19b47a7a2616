"""Lane packing: upstream's greedy interval colouring (upstream-converter.md §12).

Items arrive in start order. Before placing one, every lane whose holder ended at or before its
start is freed; the item takes the smallest free lane and holds it until start + dur. So adjacent
intervals (end == start) reuse a lane, and two items share a lane only if they do not overlap.

`place` is O(log n) amortised: holders sit in a min-heap by end, so freeing pops only the expired
ones, and freed lane numbers go into a second min-heap, so the smallest free lane is its top. The
free heap holds exactly the lanes below the high-water mark `lanes` that nobody holds; when it is
empty every lower lane is busy and the smallest free lane is `lanes` itself, a brand-new one. This
gives the same lanes as scanning upward from 0 for the first unheld lane, which was O(concurrency).
"""

from __future__ import annotations

import heapq


class LanePacker:
    __slots__ = ("_active", "_free", "lanes")

    def __init__(self) -> None:
        self._active: list[tuple[int, int]] = []  # (end, lane) min-heap of current holders
        self._free: list[int] = []  # min-heap of unheld lanes below self.lanes
        self.lanes = 0  # how many lanes were ever needed (the high-water mark)

    def place(self, start: int, end: int) -> int:
        active = self._active
        free = self._free
        while active and active[0][0] <= start:
            heapq.heappush(free, heapq.heappop(active)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane = self.lanes
            self.lanes = lane + 1
        heapq.heappush(active, (end, lane))
        return lane
