"""Machine-readable reports: JUnit against the Jenkins XSD, results.json against its schema, `list` formats."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from conformance.core.model import Reference
from conformance.core.outcomes import FailureKind, Level, Outcome, Status
from conformance.core.params import Param, Params
from conformance.core.results import CaseResult
from conformance.core.verdict import Failure, Finding
from conformance.reporters import RunInfo, write_junit, write_results_json
from conformance.reporters.html import html_report
from conformance.reporters.listing import list_json, list_plain, print_list

from .test_reporters import ISN, _case, _run

XSD = Path(__file__).with_name("jenkins-junit.xsd")
RUN = RunInfo("9.9.9", 1234, ("conformance", "run", "-k", "closed and not rst"), "the paths given (x)", 1.7e9, 71.25)


@pytest.fixture(scope="module")
def results() -> list[CaseResult]:
    passed = _run(_case(), ISN + 1)
    failed = _run(_case(), ISN + 2)
    assert passed.verdict is not None and passed.target is not None
    should = Reference("SHLD-1", "RFC 9293 §3.8.1", Level.SHOULD, "a late answer")
    finding = Finding(Failure(18, "expect SA", FailureKind.TIMING, "came 30 ms late", reference=should), Outcome.WARN)
    verdict = replace(passed.verdict, status=Status.WARNING, findings=[finding])
    # A value as a sysctl in µs scales to: 200000 * 1e-6 is 0.19999999999999998.
    params = Params({"rto_min": Param("rto_min", 200000 * 1e-6, "s", "target sysctl net.ipv4.tcp_rto_min_us", "x")})
    warned = replace(passed, status="warning", verdict=verdict, target=replace(passed.target, params=params))
    skipped = CaseResult(replace(_case(), id="skipped-one"), "skipped", "needs sysctls", 0.0, None)
    return [passed, failed, warned, skipped]


def test_junit_is_valid_under_the_jenkins_xsd(tmp_path: Path, results: list[CaseResult]) -> None:
    path = tmp_path / "junit.xml"
    write_junit(results, path, run=RUN)
    xmlschema.XMLSchema(XSD).validate(path)
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert suite.attrib["time"] == "71.250"  # the run's wall time, not the sum of the cases'
    assert suite.attrib["skipped"] == "1"
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert props["conformance_version"] == "9.9.9" and props["seed"] == "1234"
    assert props["command_line"] == "conformance run -k 'closed and not rst'"
    assert "rto_min=0.2 s (target sysctl net.ipv4.tcp_rto_min_us)" in props["rto_min"]
    for tc in suite.findall("testcase"):
        assert len(tc.attrib["time"].partition(".")[2]) == 3
    warned = suite.findall("testcase")[2]
    assert warned.find("failure") is None and warned.find("skipped") is None
    err = warned.findtext("system-err") or ""
    assert err.startswith("WARNING: 1 warning(s), the case passes") and "came 30 ms late" in err


def test_the_xsd_refuses_what_jenkins_refuses() -> None:
    schema = xmlschema.XMLSchema(XSD)
    doc = '<testsuites><testsuite name="s" tests="1" failures="0" errors="0" time="{}"/></testsuites>'
    assert schema.is_valid(doc.format("71.250"))
    assert not schema.is_valid(doc.format("372.51445293426514"))


def test_results_json_validates_against_its_schema(tmp_path: Path, results: list[CaseResult]) -> None:
    path = tmp_path / "results.json"
    write_results_json(results, path, RUN)
    doc = json.loads(path.read_text())
    schema = json.loads(resources.files("conformance").joinpath("data", "results.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert (doc["format_version"], doc["tool"]["version"], doc["seed"]) == (1, "9.9.9", 1234)
    assert doc["argv"][-1] == "closed and not rst" and doc["duration"] == 71.25
    passed, failed, warned, skipped = doc["cases"]
    assert passed["status"] == "passed" and [s["status"] for s in passed["steps"]].count("passed") >= 2
    assert failed["failure"]["kind"] == "mismatch" and failed["failure"]["level"] == "MUST"
    assert any(d["field"] == "ack" and not d["ok"] for d in failed["failure"]["diffs"])
    assert warned["findings"][0]["outcome"] == "warn" and warned["findings"][0]["level"] == "SHOULD"
    assert warned["parameters"] == [
        {"name": "rto_min", "value": 0.2, "unit": "s", "origin": "target sysctl net.ipv4.tcp_rto_min_us", "source": "x"}
    ]
    assert skipped["target"] is None and skipped["steps"] == []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "format_version": 2}, schema)


def test_html_header_and_warning_badge(results: list[CaseResult], tmp_path: Path) -> None:
    page = html_report(results, tmp_path, None, run=RUN)
    assert "conformance 9.9.9; seed <code>1234</code>" in page
    assert "conformance run -k &#39;closed and not rst&#39;" in page
    assert ".warning { background:" in page and 'class="badge warning"' in page


def test_list_plain_and_json_are_whole(results: list[CaseResult]) -> None:
    cases = [r.case for r in results]
    lines = list_plain(cases).splitlines()
    assert lines[0].split("\t")[:3] == [cases[0].group, cases[0].id, cases[0].title]
    assert len(lines[0]) > 80  # never cut to a terminal's width
    records = json.loads(list_json(cases))
    assert records[3]["id"] == "skipped-one" and records[0]["references"][0]["level"] == "MUST"
    out = io.StringIO()  # not a terminal: plain lines
    print_list(cases, "auto", out)
    assert out.getvalue() == list_plain(cases)
