"""The pytest plugin: off without --conformance-target; with it, case files are items with the tool's verdicts.

Each test runs pytest in a subprocess (a session of its own, as a user would run it). The offline ones fake the
run in a conftest of their own (``conformance.run.runner.run`` replaced): they check how each verdict becomes a
pytest outcome; the integration one plays the closed-port cases against the embedded target.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from conformance.core.loader import discover

from .helpers import ROOT

XSD = Path(__file__).with_name("jenkins-junit.xsd")
CLOSED = ROOT / "cases" / "closed"

#: Replaces the run in the offline tests: a case's verdict is the first word of its id.
FAKE_RUN = """
import conformance.run.runner as runner
import conformance.targets.netns as netns
from conformance.core.outcomes import FailureKind, Outcome, Status
from conformance.core.results import CaseResult
from conformance.core.verdict import Failure, Finding, Verdict


def fake_run(cases, settings, **kwargs):
    results = []
    for c in cases:
        word = c.id.split("-")[0]
        if word == "warn":
            finding = Finding(Failure(11, "expect RA", FailureKind.TIMING, "came 30 ms late"), Outcome.WARN)
            verdict = Verdict(Status.WARNING, None, [], [], findings=[finding])
            results.append(CaseResult(c, "warning", "", 0.25, None, verdict=verdict))
        elif word == "fail":
            failure = Failure(11, "expect RA", FailureKind.MISMATCH, "the ack differs")
            results.append(CaseResult(c, "failed", "", 0.5, None, verdict=Verdict(Status.FAILED, failure, [], [])))
        elif word == "skip":
            results.append(CaseResult(c, "skipped", "this target has no banner service", 0.0, None))
        elif word == "error":
            results.append(CaseResult(c, "error", "the agent went away", 0.0, None))
        else:
            results.append(CaseResult(c, "passed", "", 0.125, None, verdict=Verdict(Status.PASSED, None, [], [])))
    return results


runner.run = fake_run
netns.check_privileges = lambda: None
"""


def pytest_run(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS -p no:cacheprovider`` in `cwd`, with this checkout importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def case_text(case_id: str, tags: str = "[]") -> str:
    """A closed-port case with this id and these tags."""
    text = (CLOSED / "syn.yaml").read_text().replace("id: closed-syn", f"id: {case_id}")
    return text.replace("service: closed", f"tags: {tags}\nservice: closed")


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    """A project with a folder of cases, one per verdict, and a conftest that fakes the run."""
    cases = tmp_path / "cases" / "grp"
    cases.mkdir(parents=True)
    for name, tags in [("pass-one", "[quick]"), ("warn-one", "[quick]"), ("fail-one", "[slow]")]:
        (cases / f"{name}.yaml").write_text(case_text(name, tags))
    for name in ("skip-one", "error-one"):
        (cases / f"{name}.yaml").write_text(case_text(name))
    (tmp_path / "conftest.py").write_text(FAKE_RUN)
    return tmp_path


def test_without_the_option_no_yaml_is_collected(tmp_path: Path) -> None:
    (tmp_path / "cases").mkdir()
    for case in CLOSED.glob("*.yaml"):
        (tmp_path / "cases" / case.name).write_text(case.read_text())
    proc = pytest_run(tmp_path, "cases", "--collect-only", "-q")
    assert proc.returncode == 5, proc.stdout + proc.stderr  # pytest's "no tests collected"
    assert "no tests collected" in proc.stdout


def test_items_are_named_by_case_and_selected_by_tags_and_groups(suite: Path) -> None:
    proc = pytest_run(suite, "--conformance-target", "embedded", "cases", "--collect-only", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cases/grp/pass-one.yaml::pass-one" in proc.stdout and "5 tests collected" in proc.stdout
    proc = pytest_run(suite, "--conformance-target", "embedded", "cases", "--collect-only", "-q", "-m", "quick")
    assert "2/5 tests collected (3 deselected)" in proc.stdout, proc.stdout
    proc = pytest_run(suite, "--conformance-target", "embedded", "cases", "--collect-only", "-q", "-k", "grp and slow")
    assert "1/5 tests collected (4 deselected)" in proc.stdout, proc.stdout
    proc = pytest_run(suite, "--conformance-target", "embedded", "--conformance-ip", "both", "cases", "--co", "-q")
    assert "cases/grp/pass-one.yaml::pass-one.ipv6" in proc.stdout and "10 tests collected" in proc.stdout


def test_each_verdict_is_a_pytest_outcome(suite: Path) -> None:
    proc = pytest_run(suite, "--conformance-target", "embedded", "cases", "--junitxml=x.xml", "-rA", "--strict-markers")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 2 passed, 1 skipped, 1 warning, 1 error" in proc.stdout, proc.stdout
    # The failure is the tool's text: its one-line summary, the ladder, the failure; no traceback of the plugin.
    assert "FAILED cases/grp/fail-one.yaml::fail-one - line 11: expect RA" in proc.stdout
    assert "line 11: expect RA: the ack differs — required by RFC 9293 §3.10.7.1 (MUST, EP-1)" in proc.stdout
    assert "line 11: expect RA: the ack differs" in proc.stdout and "pytest_plugin.py" not in proc.stdout
    assert "ERROR (harness, not a verdict about the target):\n  the agent went away" in proc.stdout
    assert "SKIPPED [1] cases/grp/skip-one.yaml:1: this target has no banner service" in proc.stdout
    assert "ConformanceWarning: warn-one: WARNING: 1 warning(s), the case passes" in proc.stdout
    xmlschema.XMLSchema(XSD).validate(suite / "x.xml")
    cases = {tc.attrib["name"]: tc for tc in ET.parse(suite / "x.xml").iter("testcase")}
    assert cases["fail-one"].find("failure") is not None and cases["fail-one"].attrib["time"] == "0.500"
    assert cases["error-one"].find("error") is not None
    skipped = cases["skip-one"].find("skipped")
    assert skipped is not None and "this target has no banner service" in skipped.attrib["message"]
    warned = {p.attrib["name"]: p.attrib["value"] for p in cases["warn-one"].iter("property")}
    assert cases["warn-one"].find("failure") is None and "came 30 ms late" in warned["warning:1"]


def test_a_wrong_target_is_a_usage_error(suite: Path) -> None:
    proc = pytest_run(suite, "--conformance-target", "nowhere:at:all", "cases")
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error
    assert "--conformance-target" in proc.stderr


def test_a_broken_case_file_is_a_collection_error_with_its_line(suite: Path) -> None:
    (suite / "cases" / "grp" / "broken.yaml").write_text("id: x\nsteps: [\n")
    proc = pytest_run(suite, "--conformance-target", "embedded", "cases")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "broken.yaml:3: YAML" in proc.stdout or "broken.yaml:2: YAML" in proc.stdout, proc.stdout


@pytest.mark.integration
def test_closed_cases_play_as_pytest_items_with_jenkins_junit(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the embedded target is a network namespace")
    junit = tmp_path / "x.xml"
    proc = pytest_run(ROOT, "--conformance-target", "embedded", "cases/closed", f"--junitxml={junit}", "-v")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    closed = sorted(c.id for c in discover([ROOT / "cases" / "closed"]))
    assert f"{len(closed)} passed" in proc.stdout
    xmlschema.XMLSchema(XSD).validate(junit)
    cases = {tc.attrib["name"]: tc for tc in ET.parse(junit).iter("testcase")}
    assert sorted(cases) == closed
    assert all(not list(tc.iter("failure")) and not list(tc.iter("error")) for tc in cases.values())
    props = {p.attrib["name"] for p in cases["closed-syn"].iter("property")}
    assert {"ref:EP-1", "target", "seed"} <= props
