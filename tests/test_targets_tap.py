"""End to end over a TAP device: the kernel's stack plays the stack on the other side.

In a namespace of the test, ``ip tuntap add`` makes a TAP device with
198.18.3.2/24 and the project's listeners on 7000. The tool runs in that
namespace (``ip netns exec``), opens ``/dev/net/tun`` with ``TUNSETIFF`` for
the device and reads and writes raw Ethernet frames on the descriptor: exactly
where a stack's peer sits. It answers the kernel's ARP requests for the prober
(198.18.3.1) itself. The namespace is removed in a finally (the Lab).
"""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from .lab import ROOT, Lab, missing_tools, run

CASES = ROOT / "cases"
TAP, ADDR, LISTEN = "cftap0", "198.18.3.2", 7000

_skip = missing_tools("ip")
if _skip is None and not Path("/dev/net/tun").exists():
    _skip = "needs /dev/net/tun (the tun module)"
pytestmark = [pytest.mark.integration, pytest.mark.skipif(_skip is not None, reason=_skip or "")]


@pytest.fixture
def tapns() -> Iterator[str]:
    with Lab() as lab:
        ns = lab.netns("tapns")
        lab.ip(ns, "tuntap", "add", "dev", TAP, "mode", "tap")
        lab.address(ns, TAP, f"{ADDR}/24")
        lab.services(ns, ADDR, LISTEN, LISTEN + 1)
        yield ns


def conformance_in(ns: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "conformance", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {tc.attrib["name"]: tc for tc in ET.parse(path).iter("testcase")}


def test_closed_and_handshake_over_tap(tapns: str, tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    proc = conformance_in(
        tapns,
        "run",
        "--target",
        f"tap:{TAP}:{ADDR}:{LISTEN}",
        str(CASES / "closed"),
        str(CASES / "handshake" / "synack-ack.yaml"),
        str(CASES / "data" / "retransmit-backoff.yaml"),  # needs the banner service
        "--reports",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = junit_cases(tmp_path / "junit.xml")
    for name in ("closed-syn", "closed-ack", "closed-rst", "closed-synfin-data", "synack-ack"):
        assert not [child.tag for child in cases[name] if child.tag in ("failure", "error", "skipped")], name
    skipped = cases["data-retransmit-backoff"].find("skipped")
    assert skipped is not None and "'banner' service" in skipped.attrib["message"]
    props = {p.attrib["name"]: p.attrib["value"] for p in cases["synack-ack"].iter("property")}
    assert f"TAP device {TAP}" in props["target"] and "no kernel timestamps" in props["target"]

    tap_mac = run("ip", "-n", tapns, "-br", "link", "show", TAP).stdout.split()[2]
    frames = rdpcap(str(tmp_path / "pcap" / "synack-ack.pcap"))
    syn, synack = frames[0], frames[1]
    assert (syn[IP].src, syn[IP].dst, syn[Ether].dst) == ("198.18.3.1", ADDR, tap_mac)
    # the kernel found the prober through the tool's ARP answers: its SYN-ACK goes to our locally
    # administered MAC (02:cf: + 198.18.3.1)
    assert str(synack[TCP].flags) == "SA"
    assert (synack[Ether].src, synack[Ether].dst) == (tap_mac, "02:cf:c6:12:03:01")

    # the device is the user's: still there after the run, detached (no carrier)
    link = run("ip", "-n", tapns, "link", "show", TAP).stdout
    assert "NO-CARRIER" in link


def test_prober_address_option(tapns: str, tmp_path: Path) -> None:
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap

    proc = conformance_in(
        tapns,
        "run",
        "--target",
        f"tap:{TAP}:{ADDR}",  # no port: the listen cases are skipped
        "--prober-ip",
        "198.18.3.77",
        "--closed-port",
        "9",
        str(CASES / "closed" / "syn.yaml"),
        str(CASES / "handshake" / "synack-ack.yaml"),
        "--reports",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = junit_cases(tmp_path / "junit.xml")
    assert cases["closed-syn"].find("failure") is None and cases["closed-syn"].find("skipped") is None
    skipped = cases["synack-ack"].find("skipped")
    assert skipped is not None and "no listening port given" in skipped.attrib["message"]
    frames = rdpcap(str(tmp_path / "pcap" / "closed-syn.pcap"))
    assert frames[0][IP].src == "198.18.3.77" and frames[1][IP].dst == "198.18.3.77"


def test_missing_tap_device_is_not_created(tapns: str, tmp_path: Path) -> None:
    proc = conformance_in(
        tapns,
        "run",
        "--target",
        f"tap:nosuch0:{ADDR}:{LISTEN}",
        str(CASES / "closed" / "syn.yaml"),
        "--reports",
        str(tmp_path),
    )
    assert proc.returncode == 2
    assert "there is no TAP device 'nosuch0'" in proc.stderr and "Traceback" not in proc.stderr
    assert "nosuch0" not in run("ip", "-n", tapns, "link").stdout


def test_silent_address_fails_within_seconds(tapns: str, tmp_path: Path) -> None:
    started = time.monotonic()
    proc = conformance_in(
        tapns, "run", "--target", f"tap:{TAP}:198.18.3.9:{LISTEN}", str(CASES / "closed" / "syn.yaml"), timeout=30
    )
    assert proc.returncode == 2
    assert f"no ARP answer from 198.18.3.9 on TAP device {TAP} within 3 s" in proc.stderr
    assert time.monotonic() - started < 10
