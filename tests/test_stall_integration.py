"""A stalled prober never fails the target (issue 12, item 4): end to end against the embedded Linux target.

The run is stopped (SIGSTOP) for 0.4 s six times while the keepalive cases wait for the target's probes, as a
loaded CI machine stops it. A probe the kernel stamped inside its deadline must still be judged in time: the
cases pass. Needs root (network namespaces); the stopped process is our own child, always continued.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEEPALIVE = ROOT / "cases" / "keepalive"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 (bash .ci/setup installs it)"),
]

STALLS, STALL = 6, 0.4
#: Stalls start this long after a keepalive probe: the second covers the next probe (1 s after) and its deadline
#: (about 0.2 s later), as in the report: probe captured at 2.047 s, failed at 2.218 s.
OFFSETS = (0.15, 0.85)
#: The target's keepalive probes as it sends them: ACKs without data, nothing else set.
PROBES = "tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst|tcp-push) == 0 and tcp[tcpflags] & tcp-ack != 0"


def namespaces_of(pid: int) -> list[str]:
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in ns.splitlines() if line.startswith(f"cft-{pid}-")]


def probe_times(namespace: str, into: queue.Queue[float]) -> subprocess.Popen[str]:
    """tcpdump in the target's namespace: the time each probe goes out, into `into` (tcpdump is our child)."""
    dump = subprocess.Popen(
        ["ip", "netns", "exec", namespace, "tcpdump", "-l", "-n", "-Q", "out", "-i", "any", PROBES],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )

    def read() -> None:
        assert dump.stdout is not None
        for line in dump.stdout:
            if "length 0" in line:
                into.put(time.monotonic())

    threading.Thread(target=read, daemon=True).start()
    return dump


def stall_after_probes(proc: subprocess.Popen[str], probes: queue.Queue[float]) -> int:
    """SIGSTOP `proc` for STALL seconds at OFFSETS after each probe (the cases run side by side: one burst of
    probes), STALLS times in all; the number of stalls made."""
    stalls, burst = 0, -1.0
    while stalls < STALLS and proc.poll() is None:
        try:
            seen = probes.get(timeout=5)
        except queue.Empty:
            break
        if seen < burst + 0.5:
            continue  # the same burst
        burst = seen
        for offset in OFFSETS:
            time.sleep(max(0.0, seen + offset - time.monotonic()))
            if stalls == STALLS or proc.poll() is not None:
                break
            proc.send_signal(signal.SIGSTOP)
            try:
                time.sleep(STALL)
            finally:
                proc.send_signal(signal.SIGCONT)
            stalls += 1
    return stalls


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump (to time the stalls to the probes)")
def test_keepalive_cases_pass_with_the_prober_stopped_six_times(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", "run", str(KEEPALIVE), "--reports", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    dump: subprocess.Popen[str] | None = None
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not namespaces_of(proc.pid):
            time.sleep(0.01)
        assert namespaces_of(proc.pid), "the run never made its namespace"
        probes: queue.Queue[float] = queue.Queue()
        dump = probe_times(namespaces_of(proc.pid)[0], probes)
        stalls = stall_after_probes(proc, probes)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()
        if dump is not None:
            dump.terminate()
            dump.wait()
    assert proc.returncode == 0, out + err
    assert stalls == STALLS, f"only {stalls} stalls: {out}{err}"
    cases = {tc.attrib["name"]: tc for tc in ET.parse(tmp_path / "junit.xml").iter("testcase")}
    assert {"keepalive-unanswered", "keepalive-answered"} <= set(cases), sorted(cases)
    for name, tc in cases.items():
        assert tc.find("failure") is None and tc.find("error") is None, (name, ET.tostring(tc, encoding="unicode"))
