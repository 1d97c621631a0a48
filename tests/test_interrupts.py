"""Ctrl-C at any moment of a run: nothing is left behind, the message is true, and the report is written.

Needs root (real namespaces); the runs are our own child processes, signalled by their handles.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.core.loader import discover

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 (bash .ci/setup installs it)"),
]

#: Four quick cases and one of 63 s, so an interrupt finds some cases finished and one playing.
RUN = [
    str(CASES / "closed"),
    str(CASES / "handshake" / "synack-retransmit.yaml"),
    "--ip",
    "4",
    "--seed",
    "5",
]


def namespaces_of(pid: int) -> list[str]:
    """The namespaces a run of process `pid` made (target, prober, and its cases' own targets)."""
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in ns.splitlines() if line.startswith((f"cft-{pid}-", f"cfp-{pid}-"))]


def veths_of(pid: int) -> list[str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [line for line in links.splitlines() if f"cf{pid}" in line.replace("-", "")]


def interrupt(reports: Path, after: float, gap: float | None) -> tuple[subprocess.Popen[str], str]:
    """Start a run, SIGINT it `after` seconds later, and again `gap` seconds after that; kill it (our own child)
    if it does not end within 60 s."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", "run", *RUN, "--reports", str(reports)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(after)
        proc.send_signal(signal.SIGINT)
        if gap is not None:
            time.sleep(gap)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc, err


def test_two_ctrl_c_at_random_moments_leave_nothing_behind(tmp_path: Path) -> None:
    """A second SIGINT 0.2 s after the first (during clean-up, often) used to leave a cft/cfp pair behind in 4
    of 5 trials while the tool said everything was removed."""
    rng = random.Random(11)
    for trial in range(10):
        after = rng.uniform(0.2, 4.0)  # from start-up through set-up into play
        proc, err = interrupt(tmp_path / f"r{trial}", after, gap=0.2)
        left = namespaces_of(proc.pid) + veths_of(proc.pid)
        assert not left, f"trial {trial} (SIGINT at {after:.2f} s, again 0.2 s later): left {left}\n{err}"
        assert "Traceback" not in err, err
        assert proc.returncode in (0, 2), (proc.returncode, err)
        if proc.returncode == 2:
            assert "interrupted" in err, err


def test_an_interrupted_run_still_writes_its_report(tmp_path: Path) -> None:
    """Ctrl-C once the quick cases are over: the report has them, and the rest as interrupted."""
    reports = tmp_path / "reports"
    proc, err = interrupt(reports, after=6.0, gap=None)
    assert proc.returncode == 2, err
    quick = len(discover([CASES / "closed"]))  # every closed-port case is over in about 1.5 s
    finished = f"interrupted: {quick} of {quick + 1} case(s) finished"
    assert finished in err and "everything the run made was removed" in err, err
    assert not namespaces_of(proc.pid)
    suite = ET.parse(reports / "junit.xml").getroot()
    cases = {tc.get("name"): tc for tc in suite.iter("testcase")}
    assert len(cases) == quick + 1
    unfinished = [name for name, tc in cases.items() if tc.find("error") is not None]
    assert unfinished == ["synack-retransmit"], unfinished
    assert "interrupted" in (cases["synack-retransmit"].find("error").get("message") or "")  # type: ignore[union-attr]
    assert (reports / "index.html").is_file()
