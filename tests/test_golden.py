"""Golden outputs for the small real trace, compared byte for byte, and output determinism.

Goldens are written with ``pretty=True`` (indent 2, sorted keys) so that a change shows up as a
readable diff in review. They change only when ``pytest --update-goldens`` is run; look at the diff
before committing it.

Inputs are named by their path relative to the repository root (the embedded summary records
input paths as given), so the goldens do not depend on where the repository is checked out.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent_trace.convert import convert_files
from agent_trace.options import ALL_FIXES, ConvertOptions
from agent_trace.validate import validate_chrome

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
SMALL = "fixtures/real/small/dynamo-request-trace.jsonl"

CONFIGS = {
    "default": ConvertOptions(),
    "markers-separate-stage-tracks": ConvertOptions(markers=True, separate_stage_tracks=True),
    "all-fixes": ConvertOptions(fixes=ALL_FIXES, markers=True),
}


def convert_small(tmp_path: Path, options: ConvertOptions, *, pretty: bool = True, name: str = "out.json") -> bytes:
    out = tmp_path / name
    convert_files([SMALL], out, options, pretty=pretty)
    return out.read_bytes()


def check_golden(golden: Path, actual: bytes, update: bool) -> None:
    if update:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(actual)
        return
    assert golden.is_file(), f"{golden} is missing: run `pytest --update-goldens` and review the new file"
    expected = golden.read_bytes()
    if actual != expected:
        diff = difflib.unified_diff(
            expected.decode().splitlines(), actual.decode().splitlines(),
            fromfile=str(golden.relative_to(ROOT)), tofile="actual", lineterm="", n=2,
        )
        shown = "\n".join(list(diff)[:80])
        pytest.fail(f"output differs from {golden.name} (run `pytest --update-goldens` if intended):\n{shown}")


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_small_trace_matches_golden(config: str, tmp_path: Path, at_root: None, update_goldens: bool) -> None:
    actual = convert_small(tmp_path, CONFIGS[config])
    doc = json.loads(actual)
    assert validate_chrome(doc) == []
    check_golden(GOLDEN / f"small-{config}.json", actual, update_goldens)


def test_small_trace_summary_matches_golden(tmp_path: Path, at_root: None, update_goldens: bool) -> None:
    """The embedded report (`metadata.agent_trace`): what was read, skipped and drawn."""
    doc = json.loads(convert_small(tmp_path, ConvertOptions(), pretty=False))
    summary = doc["metadata"]["agent_trace"]
    actual = (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode()
    check_golden(GOLDEN / "small-summary.json", actual, update_goldens)
    # The facts the summary must state, whatever else changes (fixtures/real/README.md).
    assert summary["input"]["lines"] == 209
    assert summary["input"]["accepted"] == {
        "request_end": 60, "request_payload": 60, "tool_end": 41, "tool_error": 3, "tool_start": 45,
    }
    assert summary["input"]["skipped"] == {}
    assert summary["output"]["events_by_category"]["dynamo.llm"] == 60


def test_goldens_are_all_used() -> None:
    """No stale `small-*` golden is left behind (other suites keep their own goldens here too)."""
    expected = {f"small-{c}.json" for c in CONFIGS} | {"small-summary.json"}
    assert {p.name for p in GOLDEN.glob("small-*")} == expected


@pytest.mark.parametrize("pretty", [False, True], ids=["compact", "pretty"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_output_is_identical_across_runs(config: str, pretty: bool, tmp_path: Path, at_root: None) -> None:
    first = convert_small(tmp_path, CONFIGS[config], pretty=pretty, name="a.json")
    second = convert_small(tmp_path, CONFIGS[config], pretty=pretty, name="b.json")
    assert first == second


def test_compact_and_pretty_hold_the_same_document(tmp_path: Path, at_root: None) -> None:
    for options in CONFIGS.values():
        compact = convert_small(tmp_path, options, pretty=False, name="c.json")
        pretty = convert_small(tmp_path, options, pretty=True, name="p.json")
        assert json.loads(compact) == json.loads(pretty)
        assert compact.endswith(b"}\n") and pretty.endswith(b"}\n")


def test_output_does_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = str(ROOT / SMALL)
    outputs = []
    for cwd in (ROOT, tmp_path, Path("/")):
        monkeypatch.chdir(cwd)
        out = tmp_path / f"from-{len(outputs)}.json"
        convert_files([source], out, CONFIGS["all-fixes"])
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


_CONVERT_IN_CHILD = """
import sys
from agent_trace.convert import convert_files
from agent_trace.options import ALL_FIXES, ConvertOptions
convert_files([sys.argv[1]], sys.argv[2], ConvertOptions(fixes=ALL_FIXES, markers=True))
"""


def test_output_does_not_depend_on_hash_seed_or_process(tmp_path: Path) -> None:
    """Set and dict iteration must not leak into the output: convert in fresh interpreters."""
    outputs = []
    for seed in ("0", "1", "12345"):
        out = tmp_path / f"seed-{seed}.json"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-c", _CONVERT_IN_CHILD, str(ROOT / SMALL), str(out)],
            check=True, env=env, cwd=tmp_path, timeout=120,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_golden_documents_keep_upstreams_shape(at_root: None) -> None:
    """Cheap structural facts about the stored goldens, so a bad `--update-goldens` stands out."""
    for config in CONFIGS:
        path = GOLDEN / f"small-{config}.json"
        if not path.is_file():
            pytest.skip(f"{path.name} not generated yet")
        doc = json.loads(path.read_bytes())
        assert set(doc) == {"displayTimeUnit", "traceEvents", "metadata"}
        events = doc["traceEvents"]
        phases = [e["ph"] for e in events]
        first_non_meta = phases.index(next(p for p in phases if p != "M"))
        assert set(phases[:first_non_meta]) == {"M"} and "M" not in phases[first_non_meta:]
        ts = [e["ts"] for e in events[first_non_meta:]]
        assert ts == sorted(ts)
