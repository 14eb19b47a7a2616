"""Run work on the second core, in a forked child (an IO-edge utility).

Encoding is CPU-bound Python, and the machines we target have two or more cores. A forked child
sees the parent's data copy-on-write, so nothing is pickled on the way in; on the way out it
writes to an anonymous temporary file that the parent reads once the child is done. Results are
the same wherever the work ran: where fork is unavailable (or fails) it runs inline.

* `SpooledChild`: a stream of bytes, appended to the parent's output after its own part.
* `ForkedCall`: one value (anything `marshal` can write), computed while the parent does
  something else.

Either can be waited for in a process forked later from the caller (a sibling of the child,
which cannot `waitpid` it): the child holds the only write end of a pipe, so every process that
inherited the read end sees its end of file once the child is done. The child closes it right
after its output, so nobody waits for its exit, which unmaps its share of a large parent's
copy-on-write memory (0.2 s on the large real trace). A marker after the output tells a child
that finished from one that died midway. The output is read with `pread`: the processes share
one file offset.
"""

from __future__ import annotations

import marshal
import os
import signal
import tempfile
from collections.abc import Callable, Iterable
from typing import IO, Any, BinaryIO

_COMPLETE = b"\x00end"  # written after the child's output, once it is complete
_BLOCK = 1 << 20


class _Child:
    """A forked child that runs `write(tmp)` on a temporary file; `forked` is False when the
    fork failed (then nothing ran)."""

    def __init__(self, write: Callable[[IO[bytes]], None]) -> None:
        self._owner = os.getpid()
        self._tmp: IO[bytes] | None = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _close)
        done_r, done_w = os.pipe()
        self._done = done_r
        self._pid = _fork() if hasattr(os, "fork") else -1
        if self._pid == 0:  # the child: write, then leave without running the parent's cleanup
            code = 1
            try:
                os.close(done_r)
                write(self._tmp)
                self._tmp.write(_COMPLETE)
                self._tmp.flush()
                os.close(done_w)  # done: say so now, not at the end of the exit
                code = 0
            finally:
                os._exit(code)
        os.close(done_w)
        if self._pid < 0:
            self._close()

    @property
    def forked(self) -> bool:
        return self._pid > 0

    def wait(self) -> int:
        """Wait until the child is done; the size of its output. Raises if it died midway."""
        assert self._tmp is not None, "wait() is called once"
        while os.read(self._done, 1):  # nothing is written: this returns when the child is done
            pass
        pid, self._pid = self._pid, -1
        if os.getpid() == self._owner:
            _reap_soon(pid)
        fd = self._tmp.fileno()
        size = os.fstat(fd).st_size - len(_COMPLETE)
        if size < 0 or os.pread(fd, len(_COMPLETE), size) != _COMPLETE:
            self._close()
            raise RuntimeError("worker child process failed (it ended without a result)")
        return size

    def read(self, size: int, offset: int = 0) -> bytes:
        assert self._tmp is not None
        return os.pread(self._tmp.fileno(), size, offset)

    def cancel(self) -> None:
        """Stop the child if it still runs (its output is no longer wanted) and let go of it."""
        if self._pid > 0 and os.getpid() == self._owner:
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
        self._pid = -1
        self._close()

    def _close(self) -> None:
        if self._done >= 0:
            os.close(self._done)
            self._done = -1
        if self._tmp is not None:
            self._tmp.close()
            self._tmp = None


def _fork() -> int:
    try:
        return os.fork()
    except OSError:
        return -1


_exiting: list[int] = []  # children that are done but may still be exiting


def _reap_soon(pid: int) -> None:
    """Reap `pid` if it has exited, else at a later call: never wait for an exit."""
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
        def write(tmp: IO[bytes]) -> None:
            for chunk in produce():
                tmp.write(chunk)

        self._child: _Child | None = _Child(write)
        self._inline: Callable[[], Iterable[bytes]] | None = None
        if not self._child.forked:
            self._child, self._inline = None, produce

    def copy_into(self, out: BinaryIO) -> None:
        if self._child is None:
            assert self._inline is not None
            for chunk in self._inline():
                out.write(chunk)
            return
        child = self._child
        try:
            size = child.wait()
            for offset in range(0, size, _BLOCK):
                out.write(child.read(min(_BLOCK, size - offset), offset))
        finally:
            child.cancel()


class ForkedCall:
    """Starts `produce()` now (in a child when `fork` is true and possible); `result()` returns
    its value, waiting for the child if need be. `cancel()` stops a child whose value is no
    longer wanted (an error elsewhere)."""

    def __init__(self, produce: Callable[[], Any], *, fork: bool = True) -> None:
        self._produce: Callable[[], Any] | None = produce
        self._child: _Child | None = None
        if fork:
            child = _Child(lambda tmp: marshal.dump(produce(), tmp))
            self._child = child if child.forked else None

    def result(self) -> Any:
        if self._child is None:
            assert self._produce is not None, "result() is called once"
            produce, self._produce = self._produce, None
            return produce()
        child, self._child = self._child, None
        self._produce = None
        try:
            return marshal.loads(child.read(child.wait()))
        finally:
            child.cancel()

    def cancel(self) -> None:
        if self._child is not None:
            self._child.cancel()
            self._child = None
        self._produce = None
