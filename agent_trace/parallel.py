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


_exiting: list[int] = []  # children whose result is in but which may still be exiting


def _reap_soon(pid: int) -> None:
    """Reap `pid` if it has exited, else later (at the next call): never wait for an exit."""
    _exiting.append(pid)
    for p in list(_exiting):
        try:
            done, _ = os.waitpid(p, os.WNOHANG)
        except ChildProcessError:
            done = p
        if done:
            _exiting.remove(p)


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
    longer wanted (an error elsewhere).

    `result()` also works in a process forked later from the caller (a sibling of the child,
    which cannot wait for it): every process that inherits the read end of a pipe whose write
    end only the child holds sees its end of file when the child exits; the value ends with a
    marker byte, so a child that died midway is told from one that finished; and it is read
    without moving the file offset the processes share.
    """

    def __init__(self, produce: Callable[[], Any], *, fork: bool = True) -> None:
        self._produce: Callable[[], Any] | None = produce
        self._tmp: IO[bytes] | None = None
        self._pid = -1
        self._owner = os.getpid()
        self._done = -1  # read end of the child's completion pipe
        if fork:
            self._tmp = tempfile.TemporaryFile()  # noqa: SIM115
            done_r, done_w = os.pipe()

            def write(tmp: IO[bytes]) -> None:
                os.close(done_r)
                marshal.dump(produce(), tmp)
                tmp.write(_COMPLETE)
                tmp.flush()
                # Done: say so now, not when the exit has unmapped this process's memory
                # (copy-on-write pages of a large parent: that took 0.2 s).
                os.close(done_w)

            self._pid = _fork_writer(write, self._tmp)
            os.close(done_w)  # the child's end: EOF once it has exited, whatever happened
            if self._pid < 0:
                os.close(done_r)
                self._tmp.close()
                self._tmp = None
            else:
                self._done = done_r

    def result(self) -> Any:
        if self._pid < 0:
            assert self._produce is not None, "result() is called once"
            produce, self._produce = self._produce, None
            return produce()
        assert self._tmp is not None
        pid, self._pid = self._pid, -1
        self._produce = None
        try:
            while os.read(self._done, 1):  # nothing is written: this returns when the child is done
                pass
            if os.getpid() == self._owner:
                _reap_soon(pid)
            fd = self._tmp.fileno()
            data = os.pread(fd, os.fstat(fd).st_size, 0)
            if not data.endswith(_COMPLETE):
                raise RuntimeError("worker child process failed (it ended without a result)")
            return marshal.loads(memoryview(data)[:-1])
        finally:
            self._close()

    def cancel(self) -> None:
        if self._pid > 0 and os.getpid() == self._owner:
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
        self._pid = -1
        self._close()
        self._produce = None

    def _close(self) -> None:
        if self._done >= 0:
            os.close(self._done)
            self._done = -1
        if self._tmp is not None:
            self._tmp.close()
            self._tmp = None


_COMPLETE = b"\x00end"  # written after the marshalled value, once it is complete
