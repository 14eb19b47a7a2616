"""Write a synthetic request trace whose requests overlap heavily (not a pytest test).

    .venv/bin/python tests/perf/gen_overlap.py OUT.jsonl [--sessions 20] [--requests 5000] [--seed 0]

Real captures have a handful of requests in flight per session; this trace has hundreds, which is
what stresses the parts of a converter that place concurrent work (lane assignment, stage tracks,
anything quadratic in the number of open slices). Each of `--sessions` sessions (`ovl-00`,
`ovl-01`, ...) issues `--requests` requests: request i arrives at base + i * 10 ms (plus 0-3 ms
of jitter) and lasts 7,000 ms +/- 20 %, so about 700 are in flight per session at once.

Records are `dynamo.request.trace.v1` `request_end` events in the `{"timestamp", "event"}`
envelope, with `agent_context: {"session_id": ...}`, the request's id, model, tokens, worker ids
and timings (request_received_ms, prefill_wait_time_ms, prefill_time_ms, ttft_ms, total_time_ms),
as in a real capture, written in `event_time_unix_ms` order (as Dynamo writes them, at request
end). The output depends only on the arguments (a seeded RNG): the same file every time.
A name ending in `.gz` is written gzip-compressed.
"""

from __future__ import annotations

import argparse
import gzip
import random
import uuid
from pathlib import Path
from typing import Any

import orjson

BASE_MS = 1_795_000_000_000  # epoch ms of the first arrival
PROCESS_START_MS = BASE_MS - 5_000  # the envelope `timestamp` counts from here
STEP_MS = 10  # between two arrivals in one session
DURATION_MS = 7_000.0  # mean request duration: ~700 in flight per session
MODELS = ("ovl-model-a", "ovl-model-b")


def session_requests(
    rng: random.Random, session: int, n: int, workers: list[int]
) -> list[tuple[int, int, dict]]:
    """The `(event time, index, event)` of every request of one session."""
    out = []
    sid = f"ovl-{session:02d}"
    offset = session * 37  # sessions start a little apart
    for i in range(n):
        received = BASE_MS + offset + i * STEP_MS + rng.randint(0, 3)
        total = DURATION_MS * rng.uniform(0.8, 1.2)
        wait = rng.uniform(0.5, 60.0)
        prefill = rng.uniform(40.0, 400.0)
        ttft = wait + prefill
        input_tokens = rng.randint(500, 12_000)
        output_tokens = rng.randint(16, 1_200)
        prefill_worker = rng.choice(workers)
        decode_worker = rng.choice(workers)
        event_time = received + int(total) + 1
        event: dict[str, Any] = {
            "schema": "dynamo.request.trace.v1",
            "event_type": "request_end",
            "event_time_unix_ms": event_time,
            "event_source": "dynamo",
            "agent_context": {"session_id": sid},
            "request": {
                "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "x_request_id": f"{sid}/{i}",
                "model": MODELS[i % len(MODELS)],
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cached_tokens": rng.randint(0, input_tokens // 2),
                "request_received_ms": received,
                "prefill_wait_time_ms": wait,
                "prefill_time_ms": prefill,
                "ttft_ms": ttft,
                "total_time_ms": total,
                "avg_itl_ms": (total - ttft) / max(output_tokens - 1, 1),
                "kv_hit_rate": round(rng.random(), 3),
                "queue_depth": rng.randint(0, 64),
                "worker": {
                    "prefill_worker_id": prefill_worker,
                    "prefill_dp_rank": 0,
                    "decode_worker_id": decode_worker,
                    "decode_dp_rank": 0,
                },
                "finish_reason_metadata": {
                    "finish_reason": "stop",
                    "backend_finish_reason": "stop",
                    "choices": [{"choice_index": 0, "finish_reason": "stop"}],
                },
            },
        }
        out.append((event_time, i, event))
    return out


def max_in_flight(events: list[tuple[int, int, dict]]) -> int:
    """The most requests of one session open at the same moment."""
    edges = []
    for _, _, event in events:
        req = event["request"]
        edges.append((req["request_received_ms"], 1))
        edges.append((req["request_received_ms"] + req["total_time_ms"], -1))
    edges.sort()
    best = cur = 0
    for _, d in edges:
        cur += d
        best = max(best, cur)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", metavar="OUT.jsonl")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--requests", type=int, default=5000, help="per session")
    ap.add_argument("--seed", type=int, default=0)
    ns = ap.parse_args()
    rng = random.Random(ns.seed)
    workers = [rng.getrandbits(64) for _ in range(4)]  # u64, as Dynamo's worker ids
    rows: list[tuple[int, int, int, dict]] = []
    in_flight = 0
    for s in range(ns.sessions):
        events = session_requests(rng, s, ns.requests, workers)
        in_flight = max(in_flight, max_in_flight(events))
        rows.extend((t, s, i, e) for t, i, e in events)
    rows.sort(key=lambda r: r[:3])
    out = Path(ns.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if out.name.endswith(".gz") else open
    with opener(out, "wb") as fh:
        fh.write(
            b"".join(
                orjson.dumps(
                    {"timestamp": t - PROCESS_START_MS, "event": e}, option=orjson.OPT_APPEND_NEWLINE
                )
                for t, _, _, e in rows
            )
        )
    print(f"{out}: {ns.sessions} sessions, {len(rows)} requests, at most {in_flight} in flight per session")


if __name__ == "__main__":
    main()
