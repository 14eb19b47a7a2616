"""Benchmark: the whole pipeline, as users run it, on three inputs, against targets (not a pytest test).

    .venv/bin/python tests/perf/bench_pipeline.py [INPUT ...] [--repeat 3] [--json out.json]
        [--skip-copies] [--timeout 300] [--cache-dir /tmp/agent_trace_bench] [--source DIR]

Inputs (INPUT defaults to the large real trace, `fixtures/real/large`):

  large 1x      INPUT itself
  copies 10x    10 time-shifted copies of INPUT (`gen_copies.py`): how time and memory grow
  overlap       20 sessions x 5,000 requests, ~700 in flight per session (`gen_overlap.py`):
                the worst case for placing concurrent work

The generated inputs are written once into `--cache-dir` and reused while the generator scripts
and INPUT are unchanged (a `.stamp` file records both). `--skip-copies` leaves the 10x out.

`--source DIR` measures the agent_trace package in DIR (a tree with `agent_trace/` at its top,
e.g. `git archive HEAD | tar -x -C DIR`) instead of this checkout's: the steps run in DIR with
DIR first on PYTHONPATH, ahead of the venv's editable install (the venv's scripts and
dependencies are still used). For measuring a fixed commit while the checkout is being edited.

Steps, each run on each input:

  floor    gunzip + `orjson.loads` of every non-blank line, nothing else (bench_convert's FLOOR
           loop; the files are expanded here so that the floor does not import agent_trace)
  json     the drop-in: `convert_to_perfetto.py INPUT -o OUT.json --include-markers
           --separate-stage-tracks -q`
  proto    `agent-trace convert INPUT -o OUT.pftrace -q` (agent layout, the protobuf default)
  load     `import agent_trace as at; t = at.load(paths)` and every table a Trace offers
           (`LOAD_AND_TABLES` below: the one place to update when the API changes)

How it measures. Every step runs in a fresh subprocess (its own session), started here and
waited for with `os.wait4`; the runs are interleaved (every step of every input, then again) and
the best wall time of `--repeat` is kept, so a busy machine skews a step and its floor alike:
the figure to quote is the ratio to the floor of the same input.

* seconds: wall time of the whole process, from spawn to exit, as a user sees it (interpreter
  start and imports included, for the floor too).
* peak RSS: the largest `ru_maxrss` in the step's process tree. `wait4` gives the child's own
  peak and that of the children it reaped. agent_trace forks encoder children and may exit
  before one of them has finished exiting; this process makes itself a child subreaper
  (Linux `prctl(PR_SET_CHILD_SUBREAPER)`), so such orphans are re-parented here and reaped
  after the step, and their peak counts too. It is a maximum, not a sum: a forked child's
  copy-on-write pages count in both processes. MB here is MiB (KiB / 1024), as in the other
  benches.
* bounded: a step still running after `--timeout` seconds is killed with its process group;
  a failing or killed step reports its error and the run goes on.

Exit status 1 when a target is missed or a step failed.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _bench import ROOT, arg_parser  # the sibling modules (scripts run from this folder)
from gen_copies import input_files

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
COPIES = 10
OVERLAP_SESSIONS, OVERLAP_REQUESTS = 20, 5000
GEN_TIMEOUT = 900  # seconds, for generating an input

# What "at.load + all tables" means: given `paths`, bind `tables` to every table a Trace offers.
LOAD_AND_TABLES = """
import agent_trace as at
t = at.load(paths)
tables = {
    "requests": t.requests,
    "tools": t.tools,
    "sessions": t.sessions,
    "stages": t.stages,
    "critical_path": at.critical_path(t),
    "summary": at.summary(t),
}
"""

LOAD = (
    "import sys\npaths = sys.argv[1:]\n"
    + LOAD_AND_TABLES
    + "\nprint(' '.join(f'{k}={len(v)}' for k, v in tables.items()))\n"
)

FLOOR = r"""
import gzip, sys, time, orjson
t = time.perf_counter()
n = 0
for f in sys.argv[1:]:
    opener = gzip.open if f.endswith(".gz") else open
    with opener(f, "rb") as fh:
        for line in fh:
            if line.strip():
                orjson.loads(line)
                n += 1
print(f"{time.perf_counter() - t} {n}")
"""

STEPS = ("floor", "json", "proto", "load")


@dataclass
class Run:
    seconds: float
    peak_kib: int
    out_bytes: int | None
    stdout: str
    error: str | None


@dataclass
class Result:
    """The runs of one step on one input."""

    runs: list[Run] = field(default_factory=list)

    @property
    def ok(self) -> list[Run]:
        return [r for r in self.runs if r.error is None]

    @property
    def seconds(self) -> float | None:
        return min((r.seconds for r in self.ok), default=None)

    @property
    def peak_mb(self) -> float | None:
        return max((r.peak_kib / 1024 for r in self.ok), default=None)

    @property
    def out_bytes(self) -> int | None:
        return next((r.out_bytes for r in reversed(self.ok) if r.out_bytes is not None), None)

    @property
    def error(self) -> str | None:
        return next((r.error for r in self.runs if r.error is not None), None)


# -- running one step -------------------------------------------------------------------------


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux), so that a child's children that outlive it are ours to reap."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def reap_orphans(pgid: int, deadline: float) -> int:
    """Reap every remaining descendant (orphans adopted as subreaper); their largest ru_maxrss (KiB).
    Kills the step's process group if they are still there at `deadline`."""
    peak = 0
    while True:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return peak
        if pid == 0:
            if time.monotonic() > deadline:
                kill_group(pgid)
                deadline = math.inf
            time.sleep(0.005)
            continue
        peak = max(peak, usage.ru_maxrss)


@dataclass(frozen=True)
class Source:
    """Where the measured agent_trace comes from: the steps run in `root`, with it first on the path."""

    root: Path

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.root), env.get("PYTHONPATH")) if p)
        return env

    def package(self) -> str:
        """The `agent_trace/__init__.py` the steps import (or why it does not import)."""
        argv = [sys.executable, "-c", "import agent_trace; print(agent_trace.__file__)"]
        try:
            out = subprocess.run(
                argv, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.SubprocessError) as e:
            return f"? ({e})"
        return out.stdout.strip() or f"? ({out.stderr.strip()[-200:]})"


def measure(argv: list[str], timeout: float, source: Source, out_path: Path | None = None) -> Run:
    """Run `argv` in a fresh process (its own session, so its group can be killed); see the docstring."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=source.root,
            env=source.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            kill_group(proc.pid)

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            kill_group(proc.pid)
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        peak = max(usage.ru_maxrss, reap_orphans(proc.pid, time.monotonic() + 30))
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace").strip()
        stderr = err.read().decode(errors="replace").strip()
    error = None
    if timed_out.is_set():
        error = f"timed out after {timeout:g} s"
    elif proc.returncode != 0:
        tail = " | ".join(stderr.splitlines()[-3:]) or stdout[-300:]
        error = f"exit {proc.returncode}: {tail[-300:]}"
    size = None
    if out_path is not None and out_path.exists():
        size = out_path.stat().st_size
        out_path.unlink()
    return Run(seconds, peak, size, stdout, error)


def quiet_flag(tool: Path, source: Source) -> list[str]:
    """["-q"] if `tool --help` lists it (stderr is captured anyway)."""
    try:
        argv = [str(tool), "--help"]
        help_text = subprocess.run(
            argv, cwd=source.root, env=source.env, capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return ["-q"] if "-q," in help_text or "-q " in help_text else []


# -- inputs -----------------------------------------------------------------------------------


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def file_stamp(paths: list[Path]) -> list[tuple[str, int, int]]:
    return [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]


def cached(target: Path, stamp: str, make: Callable[[Path], list[str]]) -> str | None:
    """Make `target` with the script `make(path)` unless its stamp matches; None, or the error."""
    stamp_file = target.parent / f".{target.name}.stamp"
    if target.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return None
    print(f"generating {target} ...", file=sys.stderr, flush=True)
    tmp = target.with_name(target.name + ".tmp")
    try:
        subprocess.run(
            [sys.executable, *make(tmp)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=GEN_TIMEOUT,
        )
    except subprocess.CalledProcessError as e:
        return f"generating {target.name} failed: {e.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        return f"generating {target.name} timed out after {GEN_TIMEOUT} s"
    if target.is_dir():
        for old in target.iterdir():
            old.unlink()
        target.rmdir()
    elif target.exists():
        target.unlink()
    tmp.rename(target)
    stamp_file.write_text(stamp)
    return None


def prepare_inputs(
    inputs: list[str], cache: Path, skip_copies: bool
) -> tuple[dict[str, list[str]], list[str]]:
    """Label -> paths to pass to the tools, and the generation errors."""
    cache.mkdir(parents=True, exist_ok=True)
    found = {"large 1x": inputs}
    errors = []
    if not skip_copies:
        files = input_files(inputs)
        copies = cache / f"copies{COPIES}"
        stamp = fingerprint((HERE / "gen_copies.py").read_text(), file_stamp(files), COPIES)
        error = cached(
            copies,
            stamp,
            lambda out: [
                str(HERE / "gen_copies.py"),
                *map(str, files),
                str(out),
                "--copies",
                str(COPIES),
                "--force",
            ],
        )
        if error:
            errors.append(error)
        else:
            found[f"copies {COPIES}x"] = [str(copies)]
    overlap = cache / f"overlap-{OVERLAP_SESSIONS}x{OVERLAP_REQUESTS}.jsonl"
    stamp = fingerprint((HERE / "gen_overlap.py").read_text(), OVERLAP_SESSIONS, OVERLAP_REQUESTS)
    sizes = ["--sessions", str(OVERLAP_SESSIONS), "--requests", str(OVERLAP_REQUESTS)]
    error = cached(overlap, stamp, lambda out: [str(HERE / "gen_overlap.py"), str(out), *sizes])
    if error:
        errors.append(error)
    else:
        found[f"overlap {OVERLAP_SESSIONS}x{OVERLAP_REQUESTS}"] = [str(overlap)]
    return found, errors


# -- the steps --------------------------------------------------------------------------------


def step_command(
    step: str, paths: list[str], out_dir: Path, quiet: dict[str, list[str]]
) -> tuple[list[str], Path | None]:
    if step == "floor":
        return [sys.executable, "-c", FLOOR, *map(str, input_files(paths))], None
    if step == "json":
        out = out_dir / "out.json"
        tool = BIN / "convert_to_perfetto.py"
        argv = [str(tool), *paths, "-o", str(out), "--include-markers", "--separate-stage-tracks"]
        return argv + quiet["json"], out
    if step == "proto":
        out = out_dir / "out.pftrace"
        return [str(BIN / "agent-trace"), "convert", *paths, "-o", str(out), *quiet["proto"]], out
    if step == "load":
        return [sys.executable, "-c", LOAD, *paths], None
    raise ValueError(step)


def note(step: str, result: Result) -> str:
    if result.error:
        return f"ERROR {result.error}"
    run = result.ok[-1] if result.ok else None
    if run is None:
        return ""
    if step == "floor":
        try:
            inner, lines = run.stdout.split()
            return f"{int(lines):,} lines; parse loop {float(inner):.3f} s"
        except ValueError:
            return run.stdout[-100:]
    if step == "load":
        return run.stdout
    return ""


# -- report -----------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def targets(
    results: dict[str, dict[str, Result]], labels: dict[str, str]
) -> list[tuple[str, str, bool | None]]:
    """(what, measured, met): met is None when the input was skipped."""
    large, copies, overlap = labels["large"], labels["copies"], labels["overlap"]

    def get(label: str, step: str) -> Result | None:
        return results.get(label, {}).get(step)

    def check(
        text: str, value: float | None, limit: float, unit: str, label: str
    ) -> tuple[str, str, bool | None]:
        if label not in results:
            return text, "skipped", None
        if value is None:
            return text, "no figure (step failed)", False
        return text, f"{value:.2f}{unit}", value <= limit

    def seconds(label: str, step: str) -> float | None:
        r = get(label, step)
        return r.seconds if r else None

    def peak(label: str, step: str) -> float | None:
        r = get(label, step)
        return r.peak_mb if r else None

    json_1x = seconds(large, "json")
    return [
        check("large: drop-in JSON <= 2.0x floor", ratio(json_1x, seconds(large, "floor")), 2.0, "x", large),
        check("large: drop-in JSON peak RSS <= 250 MB", peak(large, "json"), 250, " MB", large),
        check(
            "large: protobuf <= 2.5x floor",
            ratio(seconds(large, "proto"), seconds(large, "floor")),
            2.5,
            "x",
            large,
        ),
        check(f"{copies}: drop-in JSON peak RSS <= 400 MB", peak(copies, "json"), 400, " MB", copies),
        check(f"{copies}: protobuf peak RSS <= 400 MB", peak(copies, "proto"), 400, " MB", copies),
        check(
            f"{copies}: JSON time <= 11x the 1x JSON time",
            ratio(seconds(copies, "json"), json_1x),
            11,
            "x",
            copies,
        ),
        check(
            f"{overlap}: drop-in JSON <= 5x floor",
            ratio(seconds(overlap, "json"), seconds(overlap, "floor")),
            5,
            "x",
            overlap,
        ),
        check(f"{copies}: at.load + tables peak RSS <= 1 GB", peak(copies, "load"), 1024, " MB", copies),
    ]


def print_table(results: dict[str, dict[str, Result]]) -> None:
    header = ("input", "step", "seconds", "x floor", "peak RSS MB", "output MB", "note")
    rows = [header]
    for label, steps in results.items():
        floor = steps["floor"].seconds if "floor" in steps else None
        for step, r in steps.items():
            out = r.out_bytes
            rows.append(
                (
                    label,
                    step,
                    fmt(r.seconds, ".3f"),
                    fmt(ratio(r.seconds, floor), ".2f"),
                    fmt(r.peak_mb, ".1f"),
                    fmt(None if out is None else out / 1e6, ".1f"),
                    note(step, r),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))
        ]
        print("  ".join([*cells, row[-1]]).rstrip())


def main() -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--skip-copies", action="store_true", help=f"leave out the {COPIES}x copies")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per step (default 300)")
    ap.add_argument("--cache-dir", default="/tmp/agent_trace_bench", help="where generated inputs are kept")
    ap.add_argument(
        "--source",
        default=str(ROOT),
        help="measure the agent_trace in this tree (e.g. a `git archive` export) instead of the checkout's",
    )
    ns = ap.parse_args()
    reaper = become_subreaper()
    load_before = os.getloadavg()
    source = Source(Path(ns.source).resolve())
    package = source.package()
    print(f"agent_trace: {package}", file=sys.stderr)
    given = [str(Path(i).resolve()) for i in ns.inputs]  # the steps run in the source tree
    inputs, gen_errors = prepare_inputs(given, Path(ns.cache_dir).resolve(), ns.skip_copies)
    for error in gen_errors:
        print(f"ERROR {error}", file=sys.stderr)
    quiet = {
        "json": quiet_flag(BIN / "convert_to_perfetto.py", source),
        "proto": quiet_flag(BIN / "agent-trace", source),
    }
    results: dict[str, dict[str, Result]] = {label: {step: Result() for step in STEPS} for label in inputs}
    with tempfile.TemporaryDirectory(prefix="agent_trace_bench_out.") as tmp:
        for rep in range(ns.repeat):
            for label, paths in inputs.items():
                for step in STEPS:
                    argv, out = step_command(step, paths, Path(tmp), quiet)
                    run = measure(argv, ns.timeout, source, out)
                    results[label][step].runs.append(run)
                    status = (
                        f"ERROR {run.error}"
                        if run.error
                        else f"{run.seconds:.2f} s, {run.peak_kib / 1024:.0f} MB"
                    )
                    print(f"[{rep + 1}/{ns.repeat}] {label} {step}: {status}", file=sys.stderr, flush=True)
    labels = {
        "large": "large 1x",
        "copies": f"copies {COPIES}x",
        "overlap": f"overlap {OVERLAP_SESSIONS}x{OVERLAP_REQUESTS}",
    }
    print_table(results)
    scaling = ratio(
        results.get(labels["copies"], {}).get("json", Result()).seconds,
        results.get(labels["large"], {}).get("json", Result()).seconds,
    )
    print(f"\n{labels['copies']} JSON time / 1x JSON time: {fmt(scaling, '.2f')}")
    checks = targets(results, labels)
    print("\ntargets:")
    for text, value, met in checks:
        mark = "-" if met is None else ("✓" if met else "✗")
        print(f"  {mark} {text}: {value}")
    if not reaper:
        print("(not a child subreaper: a forked child still exiting when its parent did is not counted)")
    load_after = os.getloadavg()
    print(f"repeat {ns.repeat}, best wall time kept; agent_trace: {package}; inputs: {inputs}")
    print(
        f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)"
    )
    if ns.json_out:
        doc: dict[str, Any] = {
            "inputs": inputs,
            "repeat": ns.repeat,
            "agent_trace": package,
            "timeout_s": ns.timeout,
            "subreaper": reaper,
            "loadavg_before_after": [load_before, load_after],
            "cpus": os.cpu_count(),
            "generation_errors": gen_errors,
            "results": {
                label: {
                    step: {
                        "seconds": r.seconds,
                        "x_floor": ratio(r.seconds, steps["floor"].seconds),
                        "seconds_all": [run.seconds for run in r.runs],
                        "peak_rss_mb": r.peak_mb,
                        "output_bytes": r.out_bytes,
                        "note": note(step, r),
                        "error": r.error,
                    }
                    for step, r in steps.items()
                }
                for label, steps in results.items()
            },
            "copies_json_over_1x_json": scaling,
            "targets": [{"target": t, "measured": v, "met": m} for t, v, m in checks],
        }
        Path(ns.json_out).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    failed = (
        gen_errors
        or any(m is False for _, _, m in checks)
        or any(r.error for s in results.values() for r in s.values())
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
