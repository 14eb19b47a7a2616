"""Run a bytes-producing function on the second core, in a forked child (an IO-edge utility).

Encoding is CPU-bound Python, and the machines we target have two or more cores. A forked child
sees the parent's plan copy-on-write, so nothing is pickled; it spools its bytes to an anonymous
temporary file that the parent appends after its own half. The output is byte-identical to a
serial run. Where fork is unavailable (or fails) the work runs inline.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from typing import BinaryIO


class SpooledChild:
    """Starts `produce` now (in a child when possible); `copy_into` waits and appends its bytes."""

    def __init__(self, produce: Callable[[], Iterable[bytes]]) -> None:
        # Outlives this call on purpose: the child writes it, copy_into reads and closes it.
        self._tmp = tempfile.TemporaryFile()  # noqa: SIM115
        self._pid = 0
        self._inline: Callable[[], Iterable[bytes]] | None = None
        fork = getattr(os, "fork", None)
        try:
            pid = fork() if fork is not None else -1
        except OSError:
            pid = -1
        if pid == 0:  # the child: write, then leave without running the parent's cleanup
            code = 1
            try:
                for chunk in produce():
                    self._tmp.write(chunk)
                self._tmp.flush()
                code = 0
            finally:
                os._exit(code)
        if pid < 0:
            self._inline = produce
        self._pid = pid

    def copy_into(self, out: BinaryIO) -> None:
        if self._inline is not None:
            for chunk in self._inline():
                out.write(chunk)
            return
        _, status = os.waitpid(self._pid, 0)
        if status != 0:
            raise RuntimeError(f"encoder child process failed (wait status {status})")
        self._tmp.seek(0)
        shutil.copyfileobj(self._tmp, out, 1 << 20)
        self._tmp.close()
