"""Run work on the second core, in a forked child (an IO-edge utility).

Encoding is CPU-bound Python, and the machines we target have two or more cores. A forked child
sees the parent's data copy-on-write, so nothing is pickled on the way in; on the way out it
writes to an anonymous temporary file that the parent reads once the child has exited. Results
are the same wherever the work ran: where fork is unavailable (or fails) it runs inline.

* `SpooledChild`: a stream of bytes, appended to the parent's output after its own part.
* `ForkedCall`: one value (anything `marshal` can write), computed while the parent does
  something else.
"""

from __future__ import annotations

import marshal
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterable
from typing import IO, Any, BinaryIO


def _fork_writer(write: Callable[[IO[bytes]], None], tmp: IO[bytes]) -> int:
    """Fork a child that runs `write(tmp)` and exits; the child's pid, or -1 if it could not fork."""
    fork = getattr(os, "fork", None)
    try:
        pid = fork() if fork is not None else -1
    except OSError:
        pid = -1
    if pid == 0:  # the child: write, then leave without running the parent's cleanup
        code = 1
        try:
            write(tmp)
            tmp.flush()
            code = 0
        finally:
            os._exit(code)
    return pid


def _reap(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"worker child process failed (wait status {status})")


class SpooledChild:
    """Starts `produce` now (in a child when possible); `copy_into` waits and appends its bytes."""

    def __init__(self, produce: Callable[[], Iterable[bytes]]) -> None:
        # Outlives this call on purpose: the child writes it, copy_into reads and closes it.
        self._tmp = tempfile.TemporaryFile()  # noqa: SIM115
        self._inline: Callable[[], Iterable[bytes]] | None = None

        def write(tmp: IO[bytes]) -> None:
            for chunk in produce():
                tmp.write(chunk)

        self._pid = _fork_writer(write, self._tmp)
        if self._pid < 0:
            self._inline = produce

    def copy_into(self, out: BinaryIO) -> None:
        if self._inline is not None:
            for chunk in self._inline():
                out.write(chunk)
            return
        _reap(self._pid)
        self._tmp.seek(0)
        shutil.copyfileobj(self._tmp, out, 1 << 20)
        self._tmp.close()


class ForkedCall:
    """Starts `produce()` now (in a child when `fork` is true and possible); `result()` returns
    its value, waiting for the child if need be. `cancel()` stops a child whose value is no
    longer wanted (an error elsewhere)."""

    def __init__(self, produce: Callable[[], Any], *, fork: bool = True) -> None:
        self._produce: Callable[[], Any] | None = produce
        self._tmp: IO[bytes] | None = None
        self._pid = -1
        if fork:
            self._tmp = tempfile.TemporaryFile()  # noqa: SIM115
            self._pid = _fork_writer(lambda tmp: marshal.dump(produce(), tmp), self._tmp)
            if self._pid < 0:
                self._tmp.close()
                self._tmp = None

    def result(self) -> Any:
        if self._pid < 0:
            assert self._produce is not None, "result() is called once"
            produce, self._produce = self._produce, None
            return produce()
        assert self._tmp is not None
        pid, self._pid = self._pid, -1
        self._produce = None
        _reap(pid)
        self._tmp.seek(0)
        try:
            return marshal.load(self._tmp)
        finally:
            self._tmp.close()

    def cancel(self) -> None:
        if self._pid > 0:
            pid, self._pid = self._pid, -1
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if self._tmp is not None:
            self._tmp.close()
        self._produce = None
