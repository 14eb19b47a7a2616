"""The one execution policy: a single process, and where the cyclic collector may pause.

The converter needs no pause: its records are `gc=False` structs and its state follows the
sessions open at once. Two whole-input builders make hundreds of thousands of short-lived
acyclic containers (the analysis tables' column buffers, the validator's decoded trace), and
every full collection would walk all of them again; they build inside `gc_paused` (measured: a
400k-request `at.load` takes 1.4x as long without it). Nothing else touches the collector, and
nothing forks.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off inside the block (reference counting still frees everything)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
