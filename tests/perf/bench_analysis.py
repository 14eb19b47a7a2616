"""Benchmark: `agent_trace.analysis.load` (read + all four tables) vs. the converter, same input.

    .venv/bin/python tests/perf/bench_analysis.py [INPUT ...] [--repeat 3] [--max-ratio 1.5] [--json out.json]

Every measurement runs in a fresh subprocess and the runs are interleaved; the best of `--repeat`
is kept, so a busy machine slows both sides alike. The figure to quote is the ratio.

  convert        `agent-trace convert` with its default options, to Chrome JSON in a temp dir
  load           `load(INPUT)`: expand, read, and build requests, tools, sessions and stages
  critical_path  `critical_path(trace)` for every root, on top of `load` (reported, not gated)
  peak RSS       `ru_maxrss` of the process once `load` returned (tables built, nothing else),
                 the smallest of the runs (reported, not gated); the tables are built while the
                 records stream, so it grows with the tables, not with the records read

Exit status 1 when load / convert exceeds `--max-ratio` (the issue's budget is 1.5).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from _bench import ROOT, arg_parser, report  # the sibling module (scripts run from this folder)

CONVERT = r"""
import sys, time
from agent_trace.convert import convert_files
from agent_trace.options import ConvertOptions
from agent_trace.ingest.sources import expand_inputs
out = sys.argv[1]
t = time.perf_counter()
res = convert_files(expand_inputs(sys.argv[2:]), out, ConvertOptions())  # as the CLI
print(f"{time.perf_counter() - t} 0 {res.draw.converted}")
"""

LOAD = r"""
import resource, sys, time
import agent_trace.analysis as ana
t0 = time.perf_counter()
trace = ana.load(sys.argv[1:])
t1 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cp = ana.critical_path(trace)
t2 = time.perf_counter()
rows = trace.requests.height + trace.tools.height + trace.sessions.height + trace.stages.height
print(f"{t1 - t0} {t2 - t1} {rows} {peak}")
"""


def run(code: str, *args: str) -> tuple[float, float, int, float]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True, cwd=ROOT)
    a, b, n, *peak = out.stdout.split()
    return float(a), float(b), int(n), int(peak[0]) / 1024 if peak else 0.0


def main() -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--max-ratio", type=float, default=1.5)
    ns = ap.parse_args()
    converts, loads = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        for _ in range(ns.repeat):
            converts.append(run(CONVERT, out, *ns.inputs))
            loads.append(run(LOAD, *ns.inputs))
    conv = min(c[0] for c in converts)
    load = min(x[0] for x in loads)
    cp = min(x[1] for x in loads)
    result = {
        "inputs": ns.inputs,
        "convert_s": round(conv, 3),
        "load_and_tables_s": round(load, 3),
        "ratio": round(load / conv, 2),
        "critical_path_s": round(cp, 3),
        "load_peak_rss_mb": round(min(x[3] for x in loads)),
        "table_rows": loads[0][2],
        "repeat": ns.repeat,
    }
    report(result, ns.json_out)
    if load / conv > ns.max_ratio:
        print(f"FAIL: load + tables took {load / conv:.2f}x the converter (budget {ns.max_ratio}x)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
