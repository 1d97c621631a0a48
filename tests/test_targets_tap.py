"""End to end over a TAP device: the kernel's stack plays the stack on the other side.

In a namespace of the test, ``ip tuntap add`` makes a TAP device with
198.18.3.2/24 and 2001:2:0:3::2/64 (no duplicate address detection) and the
project's listeners on 7000 (both families). The tool runs in that namespace
(``ip netns exec``), opens ``/dev/net/tun`` with ``TUNSETIFF`` for the device
and reads and writes raw Ethernet frames on the descriptor: exactly where a
stack's peer sits. It answers the kernel's ARP requests and Neighbor
Solicitations for the prober (198.18.3.1, 2001:2:0:3::1) itself. The
namespace is removed in a finally (the Lab).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .lab import ROOT, Lab, missing_tools, run
from .tool_runs import junit_cases, outcome, play_in, properties, skip_message

TAP, ADDR, ADDR6, LISTEN = "cftap0", "198.18.3.2", "2001:2:0:3::2", 7000

_skip = missing_tools("ip")
if _skip is None and not Path("/dev/net/tun").exists():
    _skip = "needs /dev/net/tun (the tun module)"
pytestmark = [pytest.mark.integration, pytest.mark.skipif(_skip is not None, reason=_skip or "")]


@pytest.fixture
def tapns() -> Iterator[str]:
    with Lab() as lab:
        ns = lab.netns("tapns", ipv6=True)
        lab.ip(ns, "tuntap", "add", "dev", TAP, "mode", "tap")
        lab.address(ns, TAP, f"{ADDR}/24")
        lab.address(ns, TAP, f"{ADDR6}/64")  # nodad: usable at once
        lab.services(ns, "0.0.0.0", LISTEN, LISTEN + 1)  # one dual-stack listener per port
        yield ns


def test_closed_and_handshake_over_tap(tapns: str, tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    cases = [
        "closed",
        "handshake/synack-ack.yaml",
        "data/ack-seq-plus-len.yaml",
        "data/retransmit-backoff.yaml",  # needs the banner service
    ]
    proc = play_in(tapns, f"tap:{TAP}:{ADDR},[{ADDR6}]:{LISTEN}", cases, tmp_path, "--ip", "both")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    junit = junit_cases(tmp_path / "junit.xml")
    played = ("closed-syn", "closed-ack", "closed-rst", "closed-synfin-data", "synack-ack", "data-ack-seq-plus-len")
    for name in played:
        assert not outcome(junit[name]), name
        assert not outcome(junit[f"{name}.ipv6"]), f"{name}.ipv6"  # played over IPv6, and passed
    for suffix in ("", ".ipv6"):
        assert "'banner' service" in skip_message(junit[f"data-retransmit-backoff{suffix}"])
    props = properties(junit["synack-ack"])
    assert f"TAP device {TAP}" in props["target"] and "no kernel timestamps" in props["target"]
    assert f"at {ADDR}, {ADDR6}" in props["target"] and "prober 198.18.3.1, 2001:2:0:3::1" in props["target"]

    tap_mac = run("ip", "-n", tapns, "-br", "link", "show", TAP).stdout.split()[2]
    frames = rdpcap(str(tmp_path / "pcap" / "synack-ack.pcap"))
    syn, synack = frames[0], frames[1]
    assert (syn[IP].src, syn[IP].dst, syn[Ether].dst) == ("198.18.3.1", ADDR, tap_mac)
    # the kernel found the prober through the tool's ARP answers: its SYN-ACK goes to our locally
    # administered MAC (02:cf: + 198.18.3.1)
    assert str(synack[TCP].flags) == "SA"
    assert (synack[Ether].src, synack[Ether].dst) == (tap_mac, "02:cf:c6:12:03:01")
    # over IPv6: the same MACs (the kernel's, asked by Neighbor Solicitation), IPv6 frames both ways
    frames = rdpcap(str(tmp_path / "pcap" / "synack-ack.ipv6.pcap"))
    assert frames and all(IPv6 in f and IP not in f for f in frames)
    syn, synack = frames[0], frames[1]
    assert (syn[IPv6].src, syn[IPv6].dst, syn[Ether].dst) == ("2001:2:0:3::1", ADDR6, tap_mac)
    assert str(synack[TCP].flags) == "SA" and (synack[IPv6].src, synack[IPv6].dst) == (ADDR6, "2001:2:0:3::1")
    assert (synack[Ether].src, synack[Ether].dst) == (tap_mac, "02:cf:c6:12:03:01")

    # the device is the user's: still there after the run, detached (no carrier)
    link = run("ip", "-n", tapns, "link", "show", TAP).stdout
    assert "NO-CARRIER" in link


def test_prober_address_option(tapns: str, tmp_path: Path) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import rdpcap

    proc = play_in(
        tapns,
        f"tap:{TAP}:{ADDR},[{ADDR6}]",  # no port: the listen cases are skipped
        ["closed/syn.yaml", "handshake/synack-ack.yaml"],
        tmp_path,
        "--prober-ip",
        "198.18.3.77",
        "--prober-ip",  # repeated: one address of each family
        "2001:2:0:3::77",
        "--closed-port",
        "9",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    junit = junit_cases(tmp_path / "junit.xml")
    assert not outcome(junit["closed-syn"]) and not outcome(junit["closed-syn.ipv6"])
    assert "no listening port given" in skip_message(junit["synack-ack"])
    frames = rdpcap(str(tmp_path / "pcap" / "closed-syn.pcap"))
    assert frames[0][IP].src == "198.18.3.77" and frames[1][IP].dst == "198.18.3.77"
    frames = rdpcap(str(tmp_path / "pcap" / "closed-syn.ipv6.pcap"))
    assert frames[0][IPv6].src == "2001:2:0:3::77" and frames[1][IPv6].dst == "2001:2:0:3::77"


def test_tap_over_ipv6_only(tapns: str, tmp_path: Path) -> None:
    """ADDR given as IPv6 alone: the IPv4 copies are skipped with the reason; the prober's MAC comes from its
    IPv6 address (02:cf: + its low 32 bits)."""
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    proc = play_in(tapns, f"tap:{TAP}:[{ADDR6}]:{LISTEN}", ["closed/syn.yaml", "handshake/synack-ack.yaml"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    junit = junit_cases(tmp_path / "junit.xml")
    for name in ("closed-syn", "synack-ack"):
        assert not outcome(junit[f"{name}.ipv6"]), name
        assert skip_message(junit[name]) == "this target has no IPv4 address"
    frames = rdpcap(str(tmp_path / "pcap" / "synack-ack.ipv6.pcap"))
    assert frames[1][Ether].dst == "02:cf:00:00:00:01"


def test_tap_wire_answers_the_kernels_neighbor_solicitations(tapns: str) -> None:
    """The kernel resolves the prober by itself (it learns nothing from us first: the wire asks nothing
    here), and its duplicate address detection hears that the prober's address is taken."""
    script = textwrap.dedent(
        f"""
        import json, socket, subprocess, time
        from conformance.wire.tap import TapWire

        def neigh() -> str:
            return subprocess.run(["ip", "-6", "neigh", "show", "2001:2:0:3::1", "dev", "{TAP}"],
                                  capture_output=True, text=True).stdout

        def addr() -> str:
            return subprocess.run(["ip", "-6", "addr", "show", "dev", "{TAP}"], capture_output=True, text=True).stdout

        def answered(more_than: int) -> int:  # counted just after the answer is written: wait for it
            end = time.monotonic() + 1
            while wire.nd_answered <= more_than and time.monotonic() < end:
                time.sleep(0.01)
            return wire.nd_answered

        wire = TapWire("{TAP}", "02:cf:00:00:00:01", None, None, "2001:2:0:3::1", "{ADDR6}")
        wire.open()
        out = {{}}
        try:
            udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            end = time.monotonic() + 5
            while time.monotonic() < end and "REACHABLE" not in neigh():
                udp.sendto(b"x", ("2001:2:0:3::1", 9))  # the kernel must solicit the prober's address first
                time.sleep(0.2)
            out["neigh"], out["answered"] = neigh(), answered(0)
            # the kernel claims the prober's address, with duplicate address detection (off in the lab's
            # namespaces: on for the device here): it solicits from the unspecified address, and the wire's
            # answer goes to all-nodes
            subprocess.run(["sysctl", "-qw", "net.ipv6.conf.{TAP}.accept_dad=1"], check=True)
            subprocess.run(["ip", "-6", "addr", "add", "2001:2:0:3::1/128", "dev", "{TAP}"], check=True)
            end = time.monotonic() + 5
            while time.monotonic() < end and "dadfailed" not in addr():
                time.sleep(0.1)
            out["addr"], out["answered_dad"] = addr(), answered(out["answered"])
        finally:
            wire.close()
            subprocess.run(["ip", "-6", "addr", "del", "2001:2:0:3::1/128", "dev", "{TAP}"])
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        ["ip", "netns", "exec", tapns, sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "lladdr 02:cf:00:00:00:01" in out["neigh"] and "REACHABLE" in out["neigh"], out
    assert out["answered"] >= 1
    assert "2001:2:0:3::1/128" in out["addr"] and "dadfailed" in out["addr"], out
    assert out["answered_dad"] > out["answered"]


def test_missing_tap_device_is_not_created(tapns: str, tmp_path: Path) -> None:
    proc = play_in(tapns, f"tap:nosuch0:{ADDR}:{LISTEN}", ["closed/syn.yaml"], tmp_path)
    assert proc.returncode == 2
    assert "there is no TAP device 'nosuch0'" in proc.stderr and "Traceback" not in proc.stderr
    assert "nosuch0" not in run("ip", "-n", tapns, "link").stdout


@pytest.mark.parametrize(
    ("addr", "message"),
    [
        ("198.18.3.9", f"no ARP answer from 198.18.3.9 on TAP device {TAP} within 3 s"),
        ("[2001:2:0:3::9]", f"no ND answer from 2001:2:0:3::9 on TAP device {TAP} within 3 s"),
    ],
)
def test_silent_address_fails_within_seconds(tapns: str, tmp_path: Path, addr: str, message: str) -> None:
    started = time.monotonic()
    proc = play_in(tapns, f"tap:{TAP}:{addr}:{LISTEN}", ["closed/syn.yaml"], tmp_path, timeout=30)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - started < 10
