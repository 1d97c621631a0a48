"""JUnit XML: one <testcase> per case, for CI systems.

Built with :mod:`xml.etree.ElementTree`: testsuites/testsuite/testcase, as
Jenkins, GitLab and pytest have it. The layout, checked against the Jenkins
XSD by ``tests/test_junit_schema.py``:

* the suite's ``time`` is the run's wall time (the cases play at once, so the
  sum of their times says nothing), every ``time`` to the millisecond;
* the suite's <properties>: the target(s), the parameters with their origin,
  and what reproduces the run (the tool's version, the seed, the command line);
* each case's <properties> (first child, as pytest's ``record_property`` writes
  them): the documents it checks, the target, its parameters, its findings;
  values are rounded (``rto_min=0.2 s``, not ``0.19999999999999998 s``);
* a failed case has a <failure>, a harness error an <error>, a case the target
  cannot play a <skipped>; a **warning** (a SHOULD the target did not keep) is
  no JUnit status: the case passes, and its findings go to <system-err>, which
  reporters show beside the case, with ``WARNING`` in the first line.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ..core.params import Param
from ..core.results import CaseResult
from ..core.schedules import Schedule
from ..core.values import format_duration
from ..core.verdict import not_checked
from .files import write_file
from .ladder import render_failure, render_ladder, summarize_failure
from .run_info import RunInfo, round_value

#: Characters XML 1.0 does not allow.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    """A one-line property value: XML-legal, whitespace runs collapsed."""
    return " ".join(_ILLEGAL_XML.sub("", text).split())


def _text(text: str) -> str:
    """Element text: XML-legal."""
    return _ILLEGAL_XML.sub("", text)


def seconds(value: float) -> str:
    """A JUnit ``time``: seconds to the millisecond (the Jenkins XSD's pattern allows no more than 3 decimals)."""
    return f"{max(0.0, value):.3f}"


def param_text(param: Param) -> str:
    """``rto_min=0.2 s (profile linux)``: a parameter, its value rounded, with its unit and origin."""
    unit = "" if param.unit in ("count", "mode", "bool") else " " + param.unit
    return f"{param.name}={round_value(param.value)}{unit} ({param.origin})"


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
            props.append((name, param_text(param)))
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
    unchecked = not_checked(result.verdict.steps) if result.verdict is not None else []
    for i, s in enumerate(unchecked, 1):
        props.append((f"not_checked:{i}", f"line {s.line}: {s.description}"))
    if unchecked:
        props.append(("not_checked", str(len(unchecked))))
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
            add(name, param_text(param))
    return {name: _clean(" | ".join(vs)) for name, vs in values.items()}


def system_err(result: CaseResult) -> str:
    """The findings of a case that passed with them: what a CI reporter shows beside a passing case ("" if none)."""
    findings = result.verdict.findings if result.verdict is not None else []
    if not findings:
        return ""
    warnings = sum(1 for f in findings if f.outcome == "warn")
    head = f"WARNING: {warnings} warning(s), the case passes" if warnings else "NOTE: not required under this profile"
    blocks = []
    for f in findings:
        word = "WARNING" if f.outcome == "warn" else "NOTE"
        blocks.append(f"{word}: {f.failure.render()}")
    return head + "\n\n" + "\n\n".join(blocks) + "\n"


def _sub(parent: ET.Element, tag: str, text: str = "", **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrib.items()})
    if text:
        element.text = _text(text)
    return element


def _properties(parent: ET.Element, props: Sequence[tuple[str, str]]) -> None:
    if props:
        holder = ET.SubElement(parent, "properties")
        for name, value in props:
            ET.SubElement(holder, "property", {"name": _clean(name), "value": _clean(value)})


def _testcase(suite: ET.Element, result: CaseResult) -> None:
    case = result.case
    tc = _sub(suite, "testcase", name=case.id, classname=case.group, file=case.path, time=seconds(result.duration))
    _properties(tc, case_properties(result))
    if result.status == "failed":
        failure = result.verdict.failure if result.verdict is not None else None
        kind = str(failure.kind) if failure is not None else "failure"
        _sub(tc, "failure", render_failure(result) + "\n", type=kind, message=summarize_failure(result))
    elif result.status == "error":
        message = summarize_failure(result)
        _sub(tc, "error", (result.message or "harness error") + "\n", type="harness", message=message)
    elif result.status not in ("passed", "warning"):  # skipped: a case the target cannot play, with the reason
        _sub(tc, "skipped", message=result.message or result.status)
    _sub(tc, "system-out", system_out(result))
    err = system_err(result)
    if err:
        _sub(tc, "system-err", err)


def junit_xml_string(results: Sequence[CaseResult], suite_name: str = "conformance", run: RunInfo | None = None) -> str:
    """The JUnit XML document for `results`, as text; `run` gives the wall time and what reproduces the run."""
    counts = {
        "tests": str(len(results)),
        "failures": str(sum(1 for r in results if r.status == "failed")),
        "errors": str(sum(1 for r in results if r.status == "error")),
    }
    skipped = str(sum(1 for r in results if r.status not in ("passed", "warning", "failed", "error")))
    wall = run.duration if run is not None else sum(r.duration for r in results)
    started = datetime.fromtimestamp(run.started) if run is not None and run.started else datetime.now()
    root = ET.Element("testsuites", {"name": suite_name, **counts, "time": seconds(wall)})
    suite = _sub(
        root,
        "testsuite",
        name=suite_name,
        **counts,
        skipped=skipped,
        time=seconds(wall),
        timestamp=started.isoformat(timespec="seconds"),
        hostname=socket.gethostname(),
    )
    props = list(suite_properties(results).items())
    if run is not None:
        props += run.properties()
    _properties(suite, props)
    for result in results:
        _testcase(suite, result)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(
    results: list[CaseResult], path: Path, suite_name: str = "conformance", run: RunInfo | None = None
) -> None:
    """Write the JUnit XML report of `results` to `path` (whole, never through a link), creating its folder."""
    write_file(Path(path), junit_xml_string(results, suite_name, run))
