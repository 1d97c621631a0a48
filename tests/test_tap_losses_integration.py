"""Our capture losses are ours (issue 12, item 5): a flood on a TAP wire makes the device drop frames on their
way to the tool, and the cases that ran meanwhile are harness errors that say so, never target failures.

In a namespace of the test the kernel sits behind a TAP device whose queue holds 4 frames, and a process of the
test floods the prober's address with UDP from the second second of the run for 6 s. The namespace and the
flooding process (our child, ended by its PID) are removed in a finally.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .lab import Lab, missing_tools
from .tool_runs import junit_cases, outcome, play_in

TAP, ADDR, PROBER = "cftap2", "198.18.3.2", "198.18.3.1"

_skip = missing_tools("ip")
if _skip is None and not Path("/dev/net/tun").exists():
    _skip = "needs /dev/net/tun (the tun module)"
pytestmark = [pytest.mark.integration, pytest.mark.skipif(_skip is not None, reason=_skip or "")]

FLOOD = f"""
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 6
while time.time() < end:
    try:
        s.sendto(b"x" * 1000, ("{PROBER}", 9999))
    except OSError:
        pass
"""


def test_a_flood_the_tap_device_drops_makes_harness_errors(tmp_path: Path) -> None:
    flood: list[subprocess.Popen[bytes]] = []
    with Lab() as lab:
        ns = lab.netns("loss")
        lab.ip(ns, "tuntap", "add", "dev", TAP, "mode", "tap")
        lab.address(ns, TAP, f"{ADDR}/24")
        lab.ip(ns, "link", "set", TAP, "txqueuelen", "4")

        def start_flood() -> None:
            time.sleep(1.0)
            flood.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", FLOOD]))

        starter = threading.Thread(target=start_flood)
        starter.start()
        try:
            proc = play_in(ns, f"tap:{TAP}:{ADDR}", ["closed", "handshake/synack-ack.yaml"], tmp_path, "--ip", "4")
        finally:
            starter.join()
            for child in flood:
                child.kill()
                child.wait()
    junit = junit_cases(tmp_path / "junit.xml")
    assert not any(outcome(tc) == ["failure"] for tc in junit.values()), proc.stdout
    errors = [tc for tc in junit.values() if outcome(tc) == ["error"]]
    assert errors, f"the flood made no case an error: {proc.stdout}"
    for tc in errors:
        text = " ".join(f"{child.get('message', '')} {child.text or ''}" for child in tc)
        assert "the capture lost" in text and "TAP device dropped them" in text, text
