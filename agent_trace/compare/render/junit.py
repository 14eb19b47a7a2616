"""JUnit XML: one test case per (metric, group), so CI test views list each one and show failures.

The shape is the common one (Jenkins/Ant `junit-10.xsd`, read by GitHub, GitLab, Jenkins, Buildkite,
CircleCI): `<testsuites>` holding one `<testsuite>` with `tests`, `failures`, `errors`, `skipped`
and `time`, `<properties>` with the settings, then `<testcase classname name time>`. A case

- fails (`<failure type="regressed">`) when any of its rows has a status in `fail_on`,
- is skipped when none of its rows could be judged (all `insufficient_data`),
- passes otherwise; its `<system-out>` lists every statistic with values, delta and p-value.

Times are 0 and there is no timestamp, so the same comparison gives the same bytes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from ..report import Report
from ..settings import Status
from .text import STATUS_LABEL, one_line, settings_rows

SUITE = "agent-trace compare"


def _cases(report: Report) -> Iterable[tuple[str, str, list[dict[str, Any]]]]:
    current: tuple[str, str] | None = None
    rows: list[dict[str, Any]] = []
    for row in report.results.iter_rows(named=True):
        key = (row["metric"], row["group"])
        if key != current:
            if current is not None:
                yield current[0], current[1], rows
            current, rows = key, []
        rows.append(row)
    if current is not None:
        yield current[0], current[1], rows


def render_junit(report: Report) -> str:
    fail_on = {s.value for s in report.settings.fail_on}
    suite = ET.Element("testsuite", name=SUITE)
    props = ET.SubElement(suite, "properties")
    for name, value in settings_rows(report.settings):
        ET.SubElement(props, "property", name=name, value=value)
    tests = failures = skipped = 0
    for metric, group, rows in _cases(report):
        tests += 1
        case = ET.SubElement(suite, "testcase", classname=f"agent_trace.compare.{metric}", name=group, time="0")
        bad = [r for r in rows if r["status"] in fail_on]
        if bad:
            failures += 1
            kinds = sorted({r["status"] for r in bad}, key=lambda s: list(Status).index(Status(s)))
            message = f"{metric} [{group}] " + "; ".join(
                f"{STATUS_LABEL[Status(k)]}: " + ", ".join(r["statistic"] for r in bad if r["status"] == k) for k in kinds
            )
            failure = ET.SubElement(case, "failure", message=message, type=kinds[0])
            failure.text = "\n".join(one_line(r) for r in bad)
        elif all(r["status"] == Status.INSUFFICIENT_DATA for r in rows):
            skipped += 1
            ET.SubElement(case, "skipped", message=f"insufficient data: {rows[0]['reason']}")
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(one_line(r) for r in rows)
    attrs = {"tests": str(tests), "failures": str(failures), "errors": "0", "skipped": str(skipped), "time": "0"}
    suite.attrib.update(attrs)
    root = ET.Element("testsuites", {"name": SUITE, **attrs})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
