"""Benchmark: full conversion vs. the parse floor on the large real trace (not a pytest test).

    .venv/bin/python tests/perf/bench_convert.py [INPUT ...] [--repeat 3] [--json out.json]

Every measurement runs in a fresh subprocess so its peak RSS (`ru_maxrss`, including the forked
encoder child) is its own. Measurements are interleaved and the best of `--repeat` is kept, so a
busy machine skews floor and conversion alike; the figure to quote is the ratio.

  floor      gunzip + orjson.loads of every line, doing nothing else
  json       agent_trace conversion with stages and first-token markers to Chrome JSON
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from _bench import ROOT, arg_parser, report  # the sibling module (scripts run from this folder)

FLOOR = r"""
import gzip, sys, time, orjson, resource
from agent_trace.sources import expand_inputs
files = expand_inputs(sys.argv[1:])
t = time.perf_counter()
n = 0
for f in files:
    opener = gzip.open if f.endswith(".gz") else open
    with opener(f, "rb") as fh:
        for line in fh:
            if line.strip():
                orjson.loads(line)
                n += 1
dt = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{dt} {ru} 0 {n}")
"""

CONVERT = r"""
import sys, time, os
sys.path.insert(0, "tests/perf")
from _bench import finished_usage
from agent_trace.convert import convert_files
from agent_trace.options import ConvertOptions
from agent_trace.sources import expand_inputs
out = sys.argv[1]
t = time.perf_counter()
files = expand_inputs(sys.argv[2:])
res = convert_files(files, out, ConvertOptions(markers=True, stages=True), keep_model=True)  # as the CLI
dt = time.perf_counter() - t
me, kids = finished_usage()
print(f"{dt} {me.ru_maxrss} {kids.ru_maxrss} {os.path.getsize(out)}")
"""


def run(code: str, *args: str) -> tuple[float, float, float, int]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True, cwd=ROOT)
    dt, me, kids, extra = out.stdout.split()
    return float(dt), int(me) / 1024, int(kids) / 1024, int(extra)


def main() -> None:
    ap = arg_parser(__doc__)
    ns = ap.parse_args()
    floors, converts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        for _ in range(ns.repeat):
            floors.append(run(FLOOR, *ns.inputs))
            converts.append(run(CONVERT, out, *ns.inputs))
    floor = min(floors)
    conv = min(converts)
    peak_conv = max(max(c[1], c[2]) for c in converts)
    result = {
        "inputs": ns.inputs,
        "lines": floor[3],
        "floor_s": round(floor[0], 3),
        "floor_peak_rss_mb": round(max(f[1] for f in floors), 1),
        "convert_json_s": round(conv[0], 3),
        "convert_json_ratio": round(conv[0] / floor[0], 2),
        "convert_peak_rss_mb": round(peak_conv, 1),
        "output_mb": round(conv[3] / 1e6, 1),
        "repeat": ns.repeat,
    }
    report(result, ns.json_out)


if __name__ == "__main__":
    main()
