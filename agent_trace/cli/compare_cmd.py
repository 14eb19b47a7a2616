"""`agent-trace compare BASELINE CANDIDATE`: the CI latency gate. Exit 0 pass, 1 regression, 2 usage/input error.

The IO edge of `agent_trace.compare`: reads the thresholds file and both traces, writes the
reports, prints one of them. Settings are layered: defaults, then `--config`, then the options
given here (rules from the config still apply to the rows they match).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from ..compare.metrics import METRICS
from ..compare.settings import Settings, Status, parse_percent

if TYPE_CHECKING:
    from ..compare.report import Report, Side
from ..errors import AgentTraceError, InputError, UsageError

FORMATS = ("table", "markdown", "json", "none")
_OUT_PATH = click.Path(dir_okay=False, writable=True, allow_dash=True)


def _settings(params: dict[str, Any]) -> Settings:
    settings = Settings()
    if params["config"]:
        path = params["config"]
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
        from ..compare.config import parse_config

        settings = parse_config(text, source=path).apply(settings)
    changes: dict[str, Any] = {}
    if params["metrics"]:
        changes["metrics"] = tuple(dict.fromkeys(params["metrics"]))
    if params["statistics"]:
        changes["statistics"] = tuple(dict.fromkeys(s for v in params["statistics"] for s in v.split(",") if s))
    if params["resamples"] is not None:
        changes["resamples"] = params["resamples"]
    if params["seed"] is not None:
        changes["seed"] = params["seed"]
    if params["fail_on"]:
        changes["fail_on"] = frozenset(Status(s) for s in params["fail_on"])
    thresholds: dict[str, Any] = {}
    if params["threshold"] is not None:
        thresholds["threshold_pct"] = parse_percent(params["threshold"], what="--threshold")
    for key in ("min_delta_ms", "alpha", "min_samples"):
        if params[key] is not None:
            thresholds[key] = params[key]
    if thresholds:
        settings = settings.with_thresholds(**thresholds)
    return replace(settings, **changes) if changes else settings


def _load_side(arg: str, what: str, settings: Settings, strict: bool) -> tuple[Any, Side]:
    from ..compare.report import Side
    from ..compare.samples import samples_from_trace

    try:
        from ..analysis import load
    except ImportError as exc:  # the analysis tables ship with the package; this is a broken install
        raise UsageError(f"agent_trace.analysis is not available ({exc}); reinstall agent-trace") from None
    trace = load([arg], strict=strict)
    counts = (trace.requests.height, trace.tools.height, trace.sessions.height)
    if not any(counts):
        raise InputError(f"{what}: no requests, tool calls or sessions in {len(trace.files)} file(s)", path=arg)
    detail = f"{counts[0]:,} requests, {counts[1]:,} tool calls, {counts[2]:,} sessions"
    problems = trace.report.problem_count
    if problems:
        detail += f"; {problems:,} input problems skipped"
    return samples_from_trace(trace, settings.metrics), Side(arg, tuple(trace.files), detail)


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


def _print(report: Report, fmt: str) -> None:
    from ..compare.render import render_json, render_markdown, render_table

    if fmt == "markdown":
        sys.stdout.write(render_markdown(report))
    elif fmt == "json":
        sys.stdout.write(render_json(report))
    elif fmt == "table":
        # CI logs are not terminals; give the table room there instead of rich's 80 columns.
        width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
        Console(highlight=False, width=width, soft_wrap=False).print(render_table(report))


def run_compare(params: dict[str, Any]) -> int:
    # Imported here: polars is not loaded until a comparison runs.
    from ..compare.render import render_benchmark_json, render_json, render_junit, render_markdown
    from ..compare.report import build_report

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        settings = _settings(params)
        baseline, base_side = _load_side(params["baseline"], "baseline", settings, params["strict"])
        candidate, cand_side = _load_side(params["candidate"], "candidate", settings, params["strict"])
    except AgentTraceError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    report = build_report(baseline, candidate, settings, baseline_side=base_side, candidate_side=cand_side)
    outputs = {
        "markdown": render_markdown,
        "json_path": render_json,
        "junit": render_junit,
        "benchmark_json": render_benchmark_json,
    }
    written = []
    for key, render in outputs.items():
        if params[key]:
            try:
                _write(params[key], render(report))
            except OSError as exc:
                click.echo(f"error: cannot write {params[key]}: {exc.strerror or exc}", err=True)
                return 2
            written.append(params[key])
    _print(report, params["fmt"])
    summary = report.summary
    if not params["quiet"]:
        verdict = "[bold red]FAIL[/]" if summary.failed else "[bold green]PASS[/]"
        counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary.counts.items() if n)
        where = f" → {', '.join(written)}" if written else ""
        err.print(f"agent-trace compare: {verdict} ({counts}){where}")
    return summary.exit_code


@click.command(
    "compare",
    help=(
        "Compare a CANDIDATE trace with a BASELINE and fail (exit 1) when it is slower. Each side is "
        "anything `convert` reads: a file, a directory of shards, or a quoted glob. A row regresses "
        "when the change passes --threshold and --min-delta-ms and is significant at --alpha "
        "(Mann–Whitney U for mean and p50, a bootstrap interval for other percentiles). "
        "Exit 0: no regression; 1: regression; 2: usage or input error."
    ),
)
@click.argument("baseline")
@click.argument("candidate")
@click.option(
    "--metric", "metrics", multiple=True, type=click.Choice(list(METRICS)),
    help="Metric to compare (repeatable). Default: ttft_ms, itl_ms, total_ms, queue_ms, session_wall_ms, tool_ms.",
)
@click.option(
    "--statistic", "statistics", multiple=True, metavar="STAT",
    help="mean or a percentile such as p50, p95, p99.9 (repeatable or comma-separated). Default: p50, p90, p99, mean.",
)
@click.option("--threshold", metavar="PCT", help="Relative change a regression must reach, e.g. 5%. Default 5%.")
@click.option("--min-delta-ms", type=float, help="Absolute change a regression must reach, in ms. Default 1.")
@click.option("--alpha", type=float, help="Significance level of the tests. Default 0.01.")
@click.option("--min-samples", type=int, help="Samples per side below which a row is insufficient_data. Default 10.")
@click.option("--bootstrap", "resamples", type=int, help="Bootstrap resamples per row. Default 2000.")
@click.option("--seed", type=int, help="Seed of the bootstrap (results are deterministic). Default 0.")
@click.option(
    "--fail-on", multiple=True, type=click.Choice([s.value for s in Status]),
    help="Statuses that fail the run (repeatable). Default: regressed.",
)
@click.option(
    "--config", type=click.Path(exists=True, dir_okay=False),
    help="TOML thresholds file (or a pyproject.toml with [tool.agent-trace.compare]).",
)
@click.option("--markdown", type=_OUT_PATH, help="Write the markdown report here (e.g. for $GITHUB_STEP_SUMMARY).")
@click.option("--json", "json_path", type=_OUT_PATH, help="Write every row and the settings as JSON here.")
@click.option("--junit", type=_OUT_PATH, help="Write JUnit XML here: one test case per metric and group.")
@click.option("--benchmark-json", type=_OUT_PATH, help="Write customSmallerIsBetter JSON here (benchmark dashboards).")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
    help="What to print on stdout.",
)
@click.option("--strict", is_flag=True, help="Fail (exit 2) on the first damaged input line.")
@click.option("-q", "--quiet", is_flag=True, help="No verdict line on stderr.")
def compare_command(**params: Any) -> None:
    sys.exit(run_compare(params))
