"""`agent_trace.parallel`: work moved to a forked child gives what running it inline gives."""

from __future__ import annotations

import io
import os

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
    pid = call._pid
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
