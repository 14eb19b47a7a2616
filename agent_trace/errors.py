"""The exceptions agent_trace raises.

    AgentTraceError                 base of everything below
    ├── InputError                  a path or a line we cannot use; names file and line
    │   ├── MissingInputError       an input path does not exist (CLI exit 2)
    │   ├── NoInputError            expansion produced no files (CLI exit 2)
    │   └── StrictModeError         --strict met its first problem (CLI exit 2)
    └── UsageError                  options that contradict each other

The core raises these; only the CLI turns them into messages and exit codes.
"""

from __future__ import annotations


class AgentTraceError(Exception):
    """Base class of every error agent_trace raises on purpose."""


class InputError(AgentTraceError):
    """Input we cannot use. ``path`` and ``line`` say where, when known."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path is not None and line is not None else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")
        self.detail = message


class MissingInputError(InputError):
    """An input argument names a path that does not exist."""


class NoInputError(InputError):
    """The inputs expanded to no files at all."""


class StrictModeError(InputError):
    """Raised in strict mode on the first line that would otherwise be skipped or repaired."""


class UsageError(AgentTraceError):
    """Options that cannot be used together."""
