"""The protobuf output, decoded with the `perfetto` package's `Trace` and loaded into Perfetto.

* Structure (decoded with the generated classes, agent_trace.validate_proto): track tree, slices
  per track properly nested, flows between existing slices, counters increasing in time, every
  interned id resolved, and `validate_proto` finds nothing.
* Content: the same slices with the same args as the Chrome JSON output of the same plan.
* Goldens of the small real trace (binary and a readable dump), rewritten by --update-goldens.
* Perfetto's trace processor (wasm, tests/support/perfetto_tp.py): a clean import, the same slice
  counts per category and flows as JSON, and the README's queries giving the same rows on both.
"""

from __future__ import annotations

import io
import json
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from agent_trace.args import ArgsBuilder
from agent_trace.cli.dropin import command as dropin
from agent_trace.cli.main import cli
from agent_trace.convert import (
    Layout,
    OutputFormat,
    build_plan,
    convert_files,
    format_for_path,
)
from agent_trace.encode.chrome_json import write_chrome_json
from agent_trace.encode.proto import write_perfetto_proto
from agent_trace.ingest.reader import read_files
from agent_trace.layout.plan import Plan
from agent_trace.layout.units import WHOLE, FlushPolicy
from agent_trace.options import ALL_FIXES, ConvertOptions, Fix
from agent_trace.validate import DecodedTrace, args_as_written, decode_trace, validate_chrome, validate_proto
from tests.support.perfetto_tp import TraceProcessor, import_report

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
SMALL = "fixtures/real/small/dynamo-request-trace.jsonl"
INT64_MAX = (1 << 63) - 1

CONFIGS = {
    "default": ConvertOptions(),
    "markers-all-fixes": ConvertOptions(markers=True, fixes=ALL_FIXES),
}


def small_plan(options: ConvertOptions, layout: Layout = Layout.AGENT) -> Plan:
    records, _ = read_files([str(ROOT / SMALL)])
    return build_plan(records, options, layout)


def encode(plan: Plan, options: ConvertOptions) -> bytes:
    buf = io.BytesIO()
    write_perfetto_proto(plan, buf, ArgsBuilder.for_options(options))
    return buf.getvalue()


@pytest.fixture(params=sorted(CONFIGS), name="case")
def case_fixture(request: pytest.FixtureRequest) -> tuple[ConvertOptions, Plan, DecodedTrace]:
    options = CONFIGS[request.param]
    plan = small_plan(options)
    return options, plan, decode_trace(encode(plan, options))


# -- structure -----------------------------------------------------------------------------------


def test_no_violations_and_every_interned_id_resolves(case: tuple[ConvertOptions, Plan, DecodedTrace]) -> None:
    _, _, trace = case
    assert trace.problems == []  # decode_trace reports unresolved iids, stray ends, open slices
    assert validate_proto(trace) == []


def test_track_tree_parents_names_and_order(case: tuple[ConvertOptions, Plan, DecodedTrace]) -> None:
    _, plan, trace = case
    assert len(trace.tracks) == len(plan.tracks)
    by_uid = {t.uid: t for t in plan.tracks}
    for t in plan.tracks:
        got = trace.tracks[t.uid]  # a track's uuid is its uid
        assert got.name == (t.shared_name or t.name)
        assert got.parent == t.parent
        assert got.counter == (t.kind.value == "counter")
        if t.parent is not None:
            assert got.rank == t.rank
            assert trace.tracks[got.parent].ordering == 3  # EXPLICIT
    (top,) = trace.children(None)
    assert top.name == "Dynamo agent trace"
    roots = [t.name for t in trace.children(top.uuid)]
    assert roots == ["all sessions", "run0-root", "request-only", "run1-root", "run2-root"]
    run0 = [t for t in trace.children(top.uuid) if t.name == "run0-root"][0]
    # Lanes of one kind share a name (Perfetto merges them); counters sit next to what they count.
    assert [t.name for t in trace.children(run0.uuid)] == [
        "run0-root requests", "run0-root requests", "run0-root requests in flight",
        "run0-root stages", "run0-root stages",
        "run0-root tools", "run0-root tools", "run0-root tools", "run0-root tools in flight",
        "run0-sub0", "run0-sub1",
    ]
    assert by_uid  # plan tracks are all described


def test_slices_on_each_track_nest(case: tuple[ConvertOptions, Plan, DecodedTrace]) -> None:
    _, plan, trace = case
    by_track: dict[int, list[tuple[int, int]]] = {}
    for s in trace.slices:
        if s.dur is not None:
            by_track.setdefault(s.track, []).append((s.ts, s.ts + s.dur))
    for spans in by_track.values():
        spans.sort(key=lambda x: (x[0], -x[1]))
        stack: list[int] = []
        for start, end in spans:
            while stack and stack[-1] <= start:
                stack.pop()
            assert not stack or end <= stack[-1], "partially overlapping slices on one track"
            stack.append(end)
    assert len(trace.slices) == len(plan.events)


def test_flows_connect_existing_slices(case: tuple[ConvertOptions, Plan, DecodedTrace]) -> None:
    _, plan, trace = case
    out = {f: s for s in trace.slices for f in s.flow_out}
    into = {f: s for s in trace.slices for f in s.flow_in}
    assert set(out) == set(into) == {f.id for f in plan.flows}
    for f in plan.flows:
        assert (out[f.id].ts, out[f.id].name) == (f.source.ts - plan.time_offset_us, f.source.name)
        assert (into[f.id].ts, into[f.id].name) == (f.target.ts - plan.time_offset_us, f.target.name)
        assert out[f.id].dur is not None and into[f.id].dur is not None


def test_counters_are_increasing_in_time_and_equal_the_plan(case: tuple[ConvertOptions, Plan, DecodedTrace]) -> None:
    _, plan, trace = case
    assert len(trace.counters) == len(plan.counters)
    for c in plan.counters:
        samples = trace.counters[c.track.uid]
        assert [ts for ts, _ in samples] == [ts - plan.time_offset_us for ts in c.ts]
        assert [v for _, v in samples] == list(c.values)
        assert all(a < b for (a, _), (b, _) in zip(samples, samples[1:], strict=False))


# -- content: the same args as the JSON output ---------------------------------------------------


def json_slices(plan: Plan) -> list[dict[str, Any]]:
    buf = io.BytesIO()
    write_chrome_json(plan, buf, ArgsBuilder())
    doc = orjson.loads(buf.getvalue())
    assert validate_chrome(doc) == []
    return [e for e in doc["traceEvents"] if e["ph"] in ("X", "i")]


def as_proto_would(v: Any) -> Any:
    """JSON args as the protobuf carries them: None left out, ints beyond int64 as strings."""
    if isinstance(v, dict):
        return {k: as_proto_would(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [as_proto_would(x) for x in v if x is not None]
    if type(v) is int and v > INT64_MAX:
        return str(v)
    return v


def test_slices_and_args_equal_the_json_output() -> None:
    plan = small_plan(ConvertOptions(markers=True))
    trace = decode_trace(encode(plan, ConvertOptions()))

    def key(name: str, cat: str, ts: int, dur: int | None, args: dict[str, Any]) -> str:
        return json.dumps([name, cat, ts, dur, args], sort_keys=True)

    from_json = Counter(
        key(e["name"], e["cat"], e["ts"], e.get("dur"), as_proto_would(e["args"])) for e in json_slices(plan)
    )
    from_proto = Counter(key(s.name, s.category, s.ts, s.dur, args_as_written(s.args)) for s in trace.slices)
    assert from_proto == from_json
    big = [s for s in trace.slices if s.category == "dynamo.llm" and isinstance(s.args["worker"]["decode_worker_id"], str)]
    assert big, "the small trace has a worker id above 2^63, written as a string"


# -- goldens -------------------------------------------------------------------------------------


def dump(trace: DecodedTrace) -> str:
    """A readable, stable rendering of a decoded trace: the tree, then every slice, flow and sample."""
    lines = []

    def walk(parent: int | None, depth: int) -> None:
        for t in trace.children(parent):
            kind = "counter" if t.counter else "track"
            lines.append(f"{'  ' * depth}{kind} {t.uuid} {t.name!r}")
            walk(t.uuid, depth + 1)

    walk(None, 0)
    for s in sorted(trace.slices, key=lambda s: (s.ts, s.track, -(s.dur or 0), s.name)):
        flows = "".join(f" >{f}" for f in s.flow_out) + "".join(f" <{f}" for f in s.flow_in)
        args = json.dumps(args_as_written(s.args), sort_keys=True)
        lines.append(f"{s.ts} +{s.dur} track {s.track} {s.category} {s.name!r}{flows} {args}")
    for uuid in sorted(trace.counters):
        lines.append(f"counter {uuid}: " + " ".join(f"{ts}={v:g}" for ts, v in trace.counters[uuid]))
    return "\n".join(lines) + "\n"


def check_golden(path: Path, actual: bytes, update: bool) -> None:
    if update:
        path.write_bytes(actual)
        return
    assert path.is_file(), f"{path} is missing: run `pytest --update-goldens` and review the new file"
    assert actual == path.read_bytes(), f"output differs from {path.name} (run `pytest --update-goldens` if intended)"


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_small_trace_matches_golden(config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    update_goldens: bool) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out.pftrace"
    convert_files([SMALL], out, CONFIGS[config])
    data = out.read_bytes()
    trace = decode_trace(data)
    assert validate_proto(trace) == []
    # The readable dump first: on a change, its diff is what to review.
    check_golden(GOLDEN / f"proto_small-{config}.txt", dump(trace).encode(), update_goldens)
    check_golden(GOLDEN / f"proto_small-{config}.pftrace", data, update_goldens)


def test_small_agent_layout_json_matches_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                update_goldens: bool) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out.json"
    convert_files([SMALL], out, ConvertOptions(), pretty=True, layout=Layout.AGENT)
    assert validate_chrome(json.loads(out.read_bytes())) == []
    check_golden(GOLDEN / "proto_small-agent-layout.json", out.read_bytes(), update_goldens)


def test_output_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pftrace", tmp_path / "b.pftrace"
    for path in (a, b):
        convert_files([str(ROOT / SMALL)], path, ConvertOptions(markers=True))
    assert a.read_bytes() == b.read_bytes()


# -- format and layout selection, CLI ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("run.perfetto-trace", OutputFormat.PROTO), ("run.pftrace", OutputFormat.PROTO), ("x.pb", OutputFormat.PROTO),
     ("run.json", OutputFormat.JSON), ("run.json.gz", OutputFormat.JSON), ("run.trace", None), ("-", None)],
)
def test_format_from_extension(name: str, fmt: OutputFormat | None) -> None:
    assert format_for_path(name) == fmt


def test_convert_and_validate_protobuf_from_the_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run.perfetto-trace"
    r = runner.invoke(cli, ["convert", str(ROOT / SMALL), "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert validate_proto(out.read_bytes()) == []
    r = runner.invoke(cli, ["validate", str(out)])
    assert r.exit_code == 0 and "protobuf" in r.output
    # --format wins over the extension; the layout follows the format unless given.
    plain = tmp_path / "run.trace"
    r = runner.invoke(cli, ["convert", str(ROOT / SMALL), "--format", "proto", "-o", str(plain), "-q"])
    assert r.exit_code == 0 and plain.read_bytes() == out.read_bytes()
    upstream = tmp_path / "upstream.pftrace"
    r = runner.invoke(cli, ["convert", str(ROOT / SMALL), "--layout", "upstream", "-o", str(upstream), "-q"])
    assert r.exit_code == 0 and validate_proto(upstream.read_bytes()) == []
    r = runner.invoke(cli, ["convert", str(ROOT / SMALL), "--pretty", "-o", str(out), "-q"])
    assert r.exit_code == 2 and "--pretty" in r.output


def test_validate_reports_a_broken_protobuf(tmp_path: Path) -> None:
    data = bytearray(encode(small_plan(ConvertOptions()), ConvertOptions()))
    bad = tmp_path / "bad.pftrace"
    bad.write_bytes(bytes(data[: len(data) // 2]))  # cut mid-packet
    r = CliRunner().invoke(cli, ["validate", str(bad)])
    assert r.exit_code == 2
    # A well-formed trace whose slice never ends is a violation (exit 1).
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

    t = Trace()
    t.packet.add(trusted_packet_sequence_id=1, sequence_flags=3).track_descriptor.uuid = 1
    e = t.packet.add(trusted_packet_sequence_id=1, timestamp=5000).track_event
    e.type, e.track_uuid, e.name = 1, 1, "never ends"
    bad.write_bytes(t.SerializeToString())
    r = CliRunner().invoke(cli, ["validate", str(bad)])
    assert r.exit_code == 1 and "never closed" in r.output


def test_dropin_writes_protobuf_next_to_the_input(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    shutil.copy(ROOT / SMALL, trace)
    r = CliRunner().invoke(dropin, [str(trace), "--format", "proto", "-q"], prog_name="convert_to_perfetto.py")
    assert r.exit_code == 0, r.output
    (written,) = [p for p in tmp_path.iterdir() if p.suffix == ".perfetto-trace"]
    assert validate_proto(written.read_bytes()) == []


# -- Perfetto's trace processor ------------------------------------------------------------------

TOOL_TIME_SQL = """
select coalesce(extract_arg(arg_set_id, 'debug.session_id'), extract_arg(arg_set_id, 'args.session_id')) as session,
       count(*) as tool_calls,
       sum(dur) / 1e6 as tool_ms
from slice
where category = 'dynamo.agent.tool'
group by session
order by tool_ms desc, session
"""

TTFT_SQL = """
select ts,
       coalesce(extract_arg(arg_set_id, 'debug.request_id'), extract_arg(arg_set_id, 'args.request_id')) as request_id,
       coalesce(extract_arg(arg_set_id, 'debug.ttft_ms'), extract_arg(arg_set_id, 'args.ttft_ms')) as ttft_ms,
       dur / 1e6 as total_ms
from slice
where category = 'dynamo.llm'
order by ttft_ms desc, ts
"""

SUBAGENTS_SQL = """
select parent.name as parent_session, child.name as subagent
from track child join track parent on child.parent_id = parent.id
where child.type = parent.type and child.id in (select parent_id from track where name like '% requests')
  and parent.name != 'Dynamo agent trace'
order by parent_session, subagent
"""


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("proto_tp")
    paths = {"proto": tmp / "small.pftrace", "json-agent": tmp / "agent.json", "json": tmp / "upstream.json"}
    convert_files([str(ROOT / SMALL)], paths["proto"], ConvertOptions(markers=True))
    convert_files([str(ROOT / SMALL)], paths["json-agent"], ConvertOptions(markers=True), layout=Layout.AGENT)
    convert_files([str(ROOT / SMALL)], paths["json"], ConvertOptions(markers=True))
    return paths


@pytest.mark.perfetto
def test_perfetto_imports_the_protobuf_cleanly_with_json_counts(outputs: dict[str, Path],
                                                                perfetto_tp: TraceProcessor) -> None:
    proto = import_report(outputs["proto"], perfetto_tp)
    assert proto.clean, proto.describe_errors()
    proto_flows = perfetto_tp.scalar("select count(*) from flow")
    counter_tracks = {r["name"] for r in perfetto_tp.query("select distinct name from counter_track")}
    agent = import_report(outputs["json-agent"], perfetto_tp)
    assert agent.clean, agent.describe_errors()
    assert perfetto_tp.scalar("select count(*) from flow") == proto_flows > 0
    assert {r["name"] for r in perfetto_tp.query("select distinct name from counter_track")} == counter_tracks
    upstream = import_report(outputs["json"], perfetto_tp)
    assert proto.slices_by_category == agent.slices_by_category == upstream.slices_by_category
    assert "run0-root requests in flight" in counter_tracks and "KV hit rate" in counter_tracks


@pytest.mark.perfetto
@pytest.mark.parametrize("sql", [TOOL_TIME_SQL, TTFT_SQL], ids=["tool-time-per-session", "ttft-per-request"])
def test_readme_queries_give_the_same_rows_on_both_formats(sql: str, outputs: dict[str, Path],
                                                            perfetto_tp: TraceProcessor) -> None:
    rows = {}
    for name in ("proto", "json-agent", "json"):
        perfetto_tp.load(outputs[name])
        rows[name] = perfetto_tp.query(sql)
    assert rows["proto"] and rows["proto"] == rows["json-agent"] == rows["json"]


@pytest.mark.perfetto
def test_subagents_nest_under_their_parent_in_perfetto(outputs: dict[str, Path], perfetto_tp: TraceProcessor) -> None:
    perfetto_tp.load(outputs["proto"])
    pairs = {(r["parent_session"], r["subagent"]) for r in perfetto_tp.query(SUBAGENTS_SQL)}
    assert {("run0-root", "run0-sub0"), ("run0-root", "run0-sub1")} <= pairs
    # A subagent's first request is entered by a flow from its parent's spawning tool call.
    rows = perfetto_tp.query(
        "select so.name as src, si.name as dst from flow f join slice so on f.slice_out = so.id "
        "join slice si on f.slice_in = si.id"
    )
    kinds = Counter((r["src"].split(":")[0], r["dst"].split(":")[0]) for r in rows)
    assert kinds[("LLM request", "Tool")] > 0 and kinds[("Tool", "LLM request")] > 0


@pytest.mark.slow
@pytest.mark.perfetto
def test_large_trace_protobuf_is_valid_and_imports_cleanly(tmp_path: Path, perfetto_tp: TraceProcessor) -> None:
    large = sorted(str(p) for p in (ROOT / "fixtures/real/large").glob("*.jsonl.gz"))
    out = tmp_path / "large.pftrace"
    result = convert_files(large, out, ConvertOptions())
    assert validate_proto(out.read_bytes()) == []
    report = import_report(out, perfetto_tp)
    assert report.clean, report.describe_errors()
    assert report.slices_by_category == dict(result.draw.by_category)
    assert perfetto_tp.scalar("select count(*) from flow") == result.draw.flows


def test_empty_and_odd_inputs_still_make_valid_traces(tmp_path: Path) -> None:
    from agent_trace.convert import records_from_objects

    odd = {"timestamp": 0, "event": {
        "schema": "dynamo.request.trace.v1", "event_type": "request_end", "event_time_unix_ms": 1_795_476_000_100,
        "agent_context": {"session_id": "s\ud800 é"},  # a lone surrogate, as Python's json accepts
        "request": {"request_id": "r\ud800", "model": "m\u00e9", "request_received_ms": 1_795_476_000_000,
                    "total_time_ms": 100.0, "worker": {"decode_worker_id": -(1 << 70)}},
    }}
    for rows in ([], [odd]):
        records, _ = records_from_objects(rows)
        for layout in Layout:
            plan = build_plan(records, ConvertOptions(), layout)
            trace = decode_trace(encode(plan, ConvertOptions()))
            assert validate_proto(trace) == []
            assert len(trace.slices) == len(plan.events)
    names = {t.name for t in trace.tracks.values()}
    assert "s\ufffd é requests" in names
    (request,) = [s for s in trace.slices if s.category == "dynamo.llm"]
    assert request.args["request_id"] == "r\ufffd"
    assert request.args["worker"]["decode_worker_id"] == str(-(1 << 70))


# -- the agent layout drawn in parts (large inputs) ----------------------------------------------


def dump_by_path(trace: DecodedTrace) -> tuple[list[str], Counter[str]]:
    """`dump`, with tracks named by their path from the top and flows by their ends: what stays
    the same when a layout is drawn in parts (uuids and flow ids differ)."""
    def path(uuid: int | None) -> str:
        names = []
        while uuid is not None:
            names.append(trace.tracks[uuid].name)
            uuid = trace.tracks[uuid].parent
        return " / ".join(reversed(names))

    tree: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for t in trace.children(parent):  # siblings by rank
            tree.append(f"{'  ' * depth}{'counter' if t.counter else 'track'} {t.name!r} {t.ordering}")
            walk(t.uuid, depth + 1)

    walk(None, 0)
    key = {id(s): f"{s.ts} {path(s.track)} {s.name!r}" for s in trace.slices}
    ends = {f: key[id(s)] for s in trace.slices for f in s.flow_out}
    rows: Counter[str] = Counter()
    for s in trace.slices:
        flows = sorted(f" <{ends[f]}" for f in s.flow_in)
        rows[f"{key[id(s)]} +{s.dur} {s.category}{''.join(flows)} {json.dumps(args_as_written(s.args), sort_keys=True)}"] += 1
    for uuid, samples in trace.counters.items():
        rows[f"counter {path(uuid)}: " + " ".join(f"{ts}={v:g}" for ts, v in samples)] += 1
    return tree, rows


def summary_of(trace: DecodedTrace) -> Any:
    (top,) = trace.children(None)
    return orjson.loads(top.description)["agent_trace"]


# Flush every session as soon as the watermark passes it: the small trace then streams in batches.
EAGER = FlushPolicy(reorder_ms=0, idle_ms=float("inf"), sweep_every=1)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_batches_written_apart_make_the_same_trace(config: str, tmp_path: Path) -> None:
    """A trace laid out and written session batch by session batch means exactly what the trace
    laid out in one batch means, and holds the same summary."""
    options = CONFIGS[config]
    # Fix.INFERENCE ends an open slice at the latest activity read when its batch is drawn
    options = replace(options, fixes=options.fixes - {Fix.INFERENCE})
    whole, streamed = tmp_path / "whole.pftrace", tmp_path / "streamed.pftrace"
    one_piece = convert_files([str(ROOT / SMALL)], whole, options, policy=WHOLE)
    result = convert_files([str(ROOT / SMALL)], streamed, options, policy=EAGER)
    one, two = decode_trace(whole.read_bytes()), decode_trace(streamed.read_bytes())
    assert validate_proto(two) == []
    assert result.draw.late_records == 0
    (tree_one, rows_one), (tree_two, rows_two) = dump_by_path(one), dump_by_path(two)
    assert rows_two == rows_one
    # root sessions come in the order their batches were drawn, not by first activity
    assert sorted(tree_two) == sorted(tree_one) and tree_two != tree_one
    assert summary_of(two) == summary_of(one)
    assert one_piece.draw.to_dict() == result.draw.to_dict() == summary_of(two)["output"]
    assert whole.read_bytes() != streamed.read_bytes()  # it really was written in batches


@pytest.mark.perfetto
def test_batches_written_apart_import_cleanly(tmp_path: Path, perfetto_tp: TraceProcessor) -> None:
    out = tmp_path / "streamed.pftrace"
    result = convert_files([str(ROOT / SMALL)], out, ConvertOptions(markers=True), policy=EAGER)
    report = import_report(out, perfetto_tp)
    assert report.clean, report.describe_errors()
    assert report.slices_by_category == dict(result.draw.by_category)
    assert perfetto_tp.scalar("select count(*) from flow") == result.draw.flows
    # Every batch's root sessions hang under the one top track.
    roots = perfetto_tp.query(
        "select t.name from track t join track p on t.parent_id = p.id where p.name = 'Dynamo agent trace'"
    )
    assert len(roots) == len({r["name"] for r in roots}) > 2
