"""The tool run by the target integration tests: ``conformance run`` inside a namespace of the test, and what its
JUnit report says.

The tool runs where a user would run it, in the namespace that holds the prober's interface (``ip netns exec``),
so nothing touches the machine's root namespace.
"""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path

from .lab import ROOT

CASES = ROOT / "cases"
#: What a test case of the JUnit report may hold besides its properties: the first one found is its status.
OUTCOMES = ("failure", "error", "skipped")


def tool_command(ns: str, *args: str) -> list[str]:
    """``python -m conformance ARGS`` in namespace `ns` (``ip netns exec`` execs it: the PID is the tool's)."""
    return ["ip", "netns", "exec", ns, sys.executable, "-m", "conformance", *args]


def tool_in(
    ns: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The tool with `args` in namespace `ns`, waited for."""
    return subprocess.run(tool_command(ns, *args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def play_in(
    ns: str,
    target: str,
    cases: Iterable[str | Path],
    reports: Path,
    *options: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``conformance run --target TARGET OPTIONS... CASES... --reports REPORTS`` in namespace `ns`; a case is
    a path, or a path under ``cases/`` given as text (``"closed/syn.yaml"``)."""
    paths = [str(c if isinstance(c, Path) else CASES / c) for c in cases]
    return tool_in(ns, "run", "--target", target, *options, *paths, "--reports", str(reports), timeout=timeout, env=env)


def junit_cases(path: Path) -> dict[str, ET.Element]:
    """The test cases of a JUnit report, by name."""
    return {tc.attrib["name"]: tc for tc in ET.parse(path).iter("testcase")}


def outcome(tc: ET.Element) -> list[str]:
    """What a test case holds besides passing: failure, error, skipped (empty: it passed)."""
    return [child.tag for child in tc if child.tag in OUTCOMES]


def status(tc: ET.Element) -> str:
    """``passed``, or the first of failure, error, skipped."""
    return next(iter(outcome(tc)), "passed")


def skip_message(tc: ET.Element) -> str:
    """Why a test case was skipped ("" when it was not)."""
    skipped = tc.find("skipped")
    return "" if skipped is None else skipped.attrib["message"]


def properties(tc: ET.Element) -> dict[str, str]:
    """A test case's properties (the target's description is ``target``)."""
    return {p.attrib["name"]: p.attrib["value"] for p in tc.iter("property")}


def wait_until(check: Callable[[], bool], timeout: float = 20.0, step: float = 0.05) -> bool:
    """Ask `check` every `step` seconds until it says yes (True) or `timeout` has passed (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True
