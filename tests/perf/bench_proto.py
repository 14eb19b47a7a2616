"""Benchmark: Perfetto protobuf vs Chrome JSON output on the large real trace (not a pytest test).

    .venv/bin/python tests/perf/bench_proto.py [INPUT ...] [--repeat 3] [--json out.json]

Three conversions of the same input, each in a fresh subprocess (so peak RSS is its own), run
interleaved and repeated; the best wall time of each is kept, so a busy machine skews all three
alike. Each runs the whole pipeline (read, lay out, encode, write) with stages on:

  json-upstream   the default JSON output (upstream layout)
  json-agent      JSON with --layout agent: the same content as the protobuf (tracks, flows, counters)
  proto-agent     the protobuf output (agent layout)

Reported: wall seconds (best and median), CPU seconds (this process and its forked children),
output MB, and the ratios the issue asks about: proto size / JSON size for the same content, and
proto time / JSON time (best against both JSON outputs, and median against the same content).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile

from _bench import ROOT, arg_parser, report  # the sibling module (scripts run from this folder)

CONVERT = r"""
import sys, time, os
sys.path.insert(0, "tests/perf")
from _bench import finished_usage
from agent_trace.convert import Layout, OutputFormat, convert_files
from agent_trace.options import ConvertOptions
from agent_trace.sources import expand_inputs
fmt, layout, out = sys.argv[1:4]
t = time.perf_counter()
files = expand_inputs(sys.argv[4:])
convert_files(files, out, ConvertOptions(), format=OutputFormat(fmt), layout=Layout(layout), keep_model=True)  # as the CLI
dt = time.perf_counter() - t
me, kids = finished_usage()
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
print(f"{dt} {cpu} {max(me.ru_maxrss, kids.ru_maxrss)} {os.path.getsize(out)}")
"""

VARIANTS = (
    ("json-upstream", "json", "upstream", "out.json"),
    ("json-agent", "json", "agent", "agent.json"),
    ("proto-agent", "proto", "agent", "out.perfetto-trace"),
)


def run(fmt: str, layout: str, out: str, inputs: list[str]) -> tuple[float, float, float, int]:
    proc = subprocess.run(
        [sys.executable, "-c", CONVERT, fmt, layout, out, *inputs], check=True, capture_output=True, text=True, cwd=ROOT
    )
    wall, cpu, rss, size = proc.stdout.split()
    return float(wall), float(cpu), int(rss) / 1024, int(size)


def main() -> None:
    ap = arg_parser(__doc__)
    ns = ap.parse_args()
    runs: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name, *_ in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ns.repeat):
            for name, fmt, layout, out in VARIANTS:
                runs[name].append(run(fmt, layout, os.path.join(tmp, out), ns.inputs))
    best = {name: min(r, key=lambda x: x[0]) for name, r in runs.items()}
    result: dict[str, object] = {"inputs": ns.inputs, "repeat": ns.repeat}
    for name, (wall, _cpu, _rss, size) in best.items():
        result[f"{name}_s"] = round(wall, 3)
        result[f"{name}_median_s"] = round(statistics.median(r[0] for r in runs[name]), 3)
        result[f"{name}_cpu_s"] = round(min(r[1] for r in runs[name]), 3)
        result[f"{name}_peak_rss_mb"] = round(max(r[2] for r in runs[name]), 1)
        result[f"{name}_mb"] = round(size / 1e6, 1)
    proto, agent, upstream = best["proto-agent"], best["json-agent"], best["json-upstream"]
    result["size_proto_over_json_agent"] = round(proto[3] / agent[3], 3)
    result["size_proto_over_json_upstream"] = round(proto[3] / upstream[3], 3)
    result["time_proto_over_json_agent"] = round(proto[0] / agent[0], 3)
    result["time_proto_over_json_upstream"] = round(proto[0] / upstream[0], 3)
    # Medians show how much of a ratio is noise on a shared machine.
    result["median_time_proto_over_json_agent"] = round(
        result["proto-agent_median_s"] / result["json-agent_median_s"], 3  # type: ignore[operator]
    )
    report(result, ns.json_out)


if __name__ == "__main__":
    main()
