"""JUnit XML: one <testcase> per case, for CI systems.

The document is built with :mod:`junit_xml` and then post-processed with
:mod:`xml.etree.ElementTree` to give each <testcase> a <properties> element
(junit_xml only supports suite properties). Properties say which documents the
case checks, against which target, and with which parameter values and where
those came from. The structure stays testsuites/testsuite/testcase with
<properties> as the first child of <testcase>, as Jenkins, GitLab and pytest's
own reports have it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from junit_xml import TestCase, TestSuite, to_xml_report_string

from ..core.results import CaseResult
from ..core.schedules import Schedule
from ..core.values import format_duration
from .files import write_file
from .ladder import render_failure, render_ladder, summarize_failure

#: Characters XML 1.0 does not allow (junit_xml strips them from its own output).
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    """A one-line property value: XML-legal, whitespace runs collapsed."""
    return " ".join(_ILLEGAL_XML.sub("", text).split())


def describe_schedule(schedule: Schedule) -> str:
    gaps = ", ".join(format_duration(g) for g in schedule.intervals)
    return (
        f"{schedule.name}: {schedule.derivation}\n"
        f"    expected gaps: {gaps}; gives up {format_duration(schedule.give_up)} after the last"
    )


def system_out(result: CaseResult, width: int = 100) -> str:
    """The ladder and the schedules the case used (the failure has its own element)."""
    text = render_ladder(result, width, with_failure=False)
    schedules = result.verdict.schedules if result.verdict is not None else []
    if schedules:
        text += "\n\nschedules used:\n" + "\n".join("  " + describe_schedule(s) for s in schedules)
    findings = result.verdict.findings if result.verdict is not None else []
    for f in findings:
        word = "WARNING (does not fail the case)" if f.outcome == "warn" else "NOTE (not required under this profile)"
        text += f"\n\n{word}:\n{f.failure.render()}"
    return text + "\n"


def case_properties(result: CaseResult) -> list[tuple[str, str]]:
    """(name, value) pairs describing one case's run, in document order."""
    case = result.case
    props: list[tuple[str, str]] = [("title", case.title)]
    for ref in case.refs:
        value = f"{ref.doc} ({ref.level})"
        if ref.says:
            value += f": {ref.says}"
        props.append((f"ref:{ref.id}", value))
    if result.target is not None:
        props.append(("target", result.target.description))
        for name, param in result.target.params.items():
            props.append((name, str(param)))
    if result.target is not None and result.target.profile:
        props.append(("profile", result.target.profile))
    findings = result.verdict.findings if result.verdict is not None else []
    for i, f in enumerate(findings, 1):
        cited = f.failure.reference
        level = cited.cite() if cited is not None else ""
        kind = "warning" if f.outcome == "warn" else "note"
        props.append((f"{kind}:{i}", f"line {f.failure.line}: {f.failure.message.splitlines()[0]} [{level}]"))
    if findings:
        props.append(("warnings", str(sum(1 for f in findings if f.outcome == "warn"))))
    if case.expect_failure is not None:
        props.append(("expect_failure", case.expect_failure))
        if result.raw_status is not None:
            props.append(("raw_status", result.raw_status))
    return [(name, _clean(value)) for name, value in props]


def suite_properties(results: Sequence[CaseResult]) -> dict[str, str]:
    """The target(s) and the parameters of the run; differing values are joined with " | "."""
    targets = [r.target for r in results if r.target is not None]
    values: dict[str, list[str]] = {}

    def add(name: str, value: str) -> None:
        seen = values.setdefault(name, [])
        if value not in seen:
            seen.append(value)

    for t in targets:
        add("target", t.description)
    for t in targets:
        for name, param in t.params.items():
            add(name, str(param))
    return {name: _clean(" | ".join(vs)) for name, vs in values.items()}


def _testcase(result: CaseResult) -> TestCase:
    case = result.case
    tc = TestCase(
        name=case.id,
        classname=case.group,
        elapsed_sec=result.duration,
        file=case.path,
        stdout=system_out(result),
    )
    if result.status == "failed":
        failure = result.verdict.failure if result.verdict is not None else None
        kind = failure.kind if failure is not None else "failure"
        tc.add_failure_info(
            message=summarize_failure(result),
            output=render_failure(result) + "\n",
            failure_type=kind,
        )
    elif result.status == "error":
        tc.add_error_info(
            message=summarize_failure(result),
            output=(result.message or "harness error") + "\n",
            error_type="harness",
        )
    elif result.status == "warning":
        pass  # a SHOULD deviation: not a JUnit failure; system-out and the warning:N properties carry it
    elif not result.passed:  # e.g. skipped
        tc.add_skipped_info(message=result.message or result.status)
    return tc


def _add_properties(element: ET.Element, props: Sequence[tuple[str, str]]) -> None:
    if not props:
        return
    holder = ET.Element("properties")
    for name, value in props:
        ET.SubElement(holder, "property", {"name": name, "value": value})
    element.insert(0, holder)


def junit_xml_string(results: Sequence[CaseResult], suite_name: str = "conformance") -> str:
    """The JUnit XML document for `results`, as text."""
    suite = TestSuite(
        suite_name,
        [_testcase(r) for r in results],
        timestamp=datetime.now().isoformat(timespec="seconds"),
        properties=suite_properties(results) or None,
    )
    root = ET.fromstring(to_xml_report_string([suite], prettyprint=False))
    testcases = root.findall("./testsuite/testcase")
    for element, result in zip(testcases, results, strict=True):
        _add_properties(element, case_properties(result))
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(results: list[CaseResult], path: Path, suite_name: str = "conformance") -> None:
    """Write the JUnit XML report of `results` to `path` (whole, never through a link), creating its folder."""
    write_file(Path(path), junit_xml_string(results, suite_name))
