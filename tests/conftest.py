"""Shared fixtures. Every Chrome JSON document a test produces through `convert_doc` is checked by
the invariant validator, so no test can pass on a trace that breaks the layout's promises."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_trace.convert import convert_records
from agent_trace.validate import validate_chrome
from tests.support.perfetto_tp import TraceProcessor, trace_processor_session

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens", action="store_true", default=False,
        help="Rewrite golden output files instead of comparing against them.",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def checked(doc: dict) -> dict:
    """Fail the test if the document breaks a layout invariant."""
    violations = validate_chrome(doc)
    assert not violations, "invariant violations:\n" + "\n".join(map(str, violations))
    return doc


@pytest.fixture
def convert_doc():
    """convert_records(...) whose output is validated; returns (doc, converted)."""

    def run(records, **kwargs):
        doc, converted = convert_records(records, **kwargs)
        return checked(doc), converted

    return run


@pytest.fixture(scope="session", name="perfetto_tp")
def perfetto_tp_fixture() -> Iterator[TraceProcessor]:
    """One Perfetto trace processor (wasm, under node) for the whole session."""
    yield from trace_processor_session()
