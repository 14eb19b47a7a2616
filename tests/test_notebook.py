"""Execute notebooks/trajectory_analysis.ipynb end to end (nbclient), so it can never rot.

The notebook is committed without outputs; this test runs every cell on the bundled real trace and
fails on the first cell that raises.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("altair")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "trajectory_analysis.ipynb"


def _kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel running this interpreter: `python3` when that is what it resolves to, else one
    registered for the test in a temporary Jupyter path (the venv and the user's setup untouched)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv0 = KernelSpecManager().get_kernel_spec("python3").argv[0]
        # jupyter_client runs a bare `python` as sys.executable.
        if argv0 in ("python", "python3") or Path(argv0).resolve() == Path(sys.executable).resolve():
            return "python3"
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    name = "agent-trace-test"
    install(kernel_name=name, prefix=str(tmp_path))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))
    return name


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the notebook has no code"
    assert all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name=_kernel_name(tmp_path, monkeypatch),
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the failing cell and traceback, on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    # The breakdown cell asserts that the critical path sums to the run's wall time; the charts render.
    charts = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs
        if o.output_type in ("execute_result", "display_data") and "vega" in str(o.get("data", {}))
    ]
    assert len(charts) >= 5
