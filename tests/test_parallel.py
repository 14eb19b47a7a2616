"""`agent_trace.parallel`: work moved to a forked child gives what running it inline gives."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest

from agent_trace.parallel import ForkedCall, SpooledChild


def value() -> tuple[list[str], list[bytes], int]:
    return ["a", "é"], [b"\x00" * 3, b"xyz"], 1 << 70


@pytest.mark.parametrize("fork", [True, False])
def test_forked_call_returns_the_value(fork: bool) -> None:
    call = ForkedCall(value, fork=fork)
    assert call.result() == value()
    call.cancel()  # after result(): nothing left to stop


def test_forked_call_runs_in_another_process() -> None:
    assert ForkedCall(os.getpid).result() != os.getpid()
    assert ForkedCall(os.getpid, fork=False).result() == os.getpid()


def test_a_failing_child_is_an_error_not_a_wrong_value() -> None:
    def boom() -> None:
        raise ValueError("no")

    with pytest.raises(RuntimeError, match="child process failed"):
        ForkedCall(boom).result()


def test_cancel_stops_a_child_nobody_waits_for() -> None:
    call = ForkedCall(lambda: sum(range(10**9)))
    assert call._child is not None
    pid = call._child._pid
    assert pid > 0
    call.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # killed and reaped: nothing left behind


def test_spooled_child_appends_its_bytes_after_the_parents() -> None:
    out = io.BytesIO()
    child = SpooledChild(lambda: iter([b"c", b"d"]))
    out.write(b"ab")
    child.copy_into(out)
    assert out.getvalue() == b"abcd"


def test_a_process_forked_later_can_take_the_result_too() -> None:
    """A sibling of the child (forked afterwards by the same parent) cannot wait for it, but
    gets its value all the same; so does the parent, after."""
    call = ForkedCall(value)
    sibling = ForkedCall(lambda: (os.getpid(), call.result()))
    pid, got = sibling.result()
    assert pid != os.getpid() and got == value()
    assert call.result() == value()


def test_a_child_that_dies_midway_is_an_error_for_a_sibling_too() -> None:
    call = ForkedCall(lambda: os._exit(0))  # exits "successfully" without a value
    sibling = ForkedCall(lambda: call.result())
    with pytest.raises(RuntimeError, match="child process failed"):
        sibling.result()
    with pytest.raises(RuntimeError, match="without a result"):
        call.result()


def test_a_spooled_child_that_dies_midway_is_an_error() -> None:
    def produce() -> Iterator[bytes]:
        yield b"partial"
        os._exit(0)

    with pytest.raises(RuntimeError, match="without a result"):
        SpooledChild(produce).copy_into(io.BytesIO())


def test_spooled_bytes_longer_than_a_copy_block_arrive_whole() -> None:
    data = os.urandom(3 * (1 << 20) + 5)
    out = io.BytesIO()
    SpooledChild(lambda: iter([data[:7], data[7:]])).copy_into(out)
    assert out.getvalue() == data
