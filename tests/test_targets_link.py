"""``--target link:IFNAME:ADDR[:PORT]``: the form (offline), and end to end over a veth pair (integration).

The integration test makes two namespaces of its own joined by a veth pair: the tool's side ``lk0`` has no
address; the far side ``lk1`` holds 198.18.4.2/24 and 2001:2:0:4::2/64 and the project's listeners, on a Linux
kernel stack. The tool runs in the first namespace (``ip netns exec``) with ``--target link:lk0:...``: a packet
socket on ``lk0``, ARP and ND for the prober answered by the tool, the kernel kept quiet on ``lk0`` for the run
(IPv6 and ARP off) and its settings put back afterwards. The namespaces go in a finally (the Lab).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.core.errors import HarnessError
from conformance.targets import records
from conformance.targets.base import TargetOptions
from conformance.targets.grammar import parse_target
from conformance.targets.link import LinkSpec, restore, this_netns

from .lab import Lab, missing_tools, run
from .tool_runs import junit_cases, outcome, play_in, properties

IF, PEER, ADDR, ADDR6, LISTEN = "lk0", "lk1", "198.18.4.2", "2001:2:0:4::2", 7000


def test_link_spec() -> None:
    spec = parse_target(f"link:{IF}:{ADDR},[{ADDR6}]:{LISTEN}", TargetOptions(closed_port=11))
    assert isinstance(spec, LinkSpec) and spec.kind == "link"
    assert (spec.ifname, spec.addr, spec.addr6, spec.port) == (IF, ADDR, ADDR6, LISTEN)
    assert (spec.prober_ip, spec.prober_ip6, spec.closed_port) == ("198.18.4.1", "2001:2:0:4::1", 11)
    assert spec.families() == frozenset((4, 6))
    assert spec.services() == {"closed": 11, "listen": LISTEN}
    assert "over a link" in (spec.refuses_sysctls() or "")


def test_link_spec_without_port() -> None:
    spec = parse_target(f"link:{IF}:[{ADDR6}]", TargetOptions(prober_ip="2001:2:0:4::77"))
    assert isinstance(spec, LinkSpec) and spec.prober_ip6 == "2001:2:0:4::77" and spec.addr is None
    assert "link:IFNAME:ADDR:PORT" in spec.unavailable()["listen"]


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("link:lk0", TargetOptions(), "expected link:IFNAME:ADDR[:PORT]"),
        ("link::198.18.4.2:80", TargetOptions(), "expected link:IFNAME:ADDR[:PORT]"),
        ("link:lk0:10.0.0.2:80", TargetOptions(), "outside 198.18.0.0/15"),
        ("link:lk0:198.18.4.2:80", TargetOptions(iface="eth0"), "--iface"),
        ("link:lk0:[2001:2:0:4::2]", TargetOptions(prober_ip="198.18.4.1"), "link:IFNAME:ADDR4,[ADDR6]"),
    ],
)
def test_link_spec_errors(text: str, options: TargetOptions, message: str) -> None:
    with pytest.raises(HarnessError) as info:
        parse_target(text, options)
    assert message in str(info.value) + info.value.hint


def test_restore_refuses_another_namespace() -> None:
    with pytest.raises(HarnessError, match="another network namespace"):
        restore(f"lk0 {this_netns() + 1} disable_ipv6=0 arp=on")


_skip = missing_tools("ip")


@pytest.fixture
def link_lab() -> Iterator[dict[str, str]]:
    with Lab() as lab:
        prober, host = lab.netns("lkprober", ipv6=True), lab.netns("lkhost", ipv6=True)
        lab.veth(prober, IF, host, PEER)
        lab.ip(prober, "link", "set", IF, "up")  # no address: the tool's own
        lab.address(host, PEER, f"{ADDR}/24")
        lab.address(host, PEER, f"{ADDR6}/64")
        run("ip", "netns", "exec", host, "ethtool", "-K", PEER, "tx", "off")  # real checksums on the wire
        lab.services(host, "0.0.0.0", LISTEN, LISTEN + 1)
        yield {"prober": prober, "host": host}


def _settings(ns: str) -> tuple[str, bool]:
    """``disable_ipv6`` of lk0, and whether ARP is on there."""
    ipv6 = run("ip", "netns", "exec", ns, "sysctl", "-n", f"net.ipv6.conf.{IF}.disable_ipv6").stdout.strip()
    link = json.loads(run("ip", "-n", ns, "-j", "link", "show", IF).stdout)[0]
    return ipv6, "NOARP" not in link["flags"]


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_closed_and_handshake_over_link(link_lab: dict[str, str], tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    prober = link_lab["prober"]
    assert _settings(prober) == ("0", True)
    cases = ["closed", "handshake/synack-ack.yaml"]
    proc = play_in(prober, f"link:{IF}:{ADDR},[{ADDR6}]:{LISTEN}", cases, tmp_path, "--ip", "both")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    junit = junit_cases(tmp_path / "junit.xml")
    for name in ("closed-syn", "closed-ack", "closed-rst", "closed-synfin-data", "synack-ack"):
        assert not outcome(junit[name]), (name, junit[name])
        assert not outcome(junit[f"{name}.ipv6"]), f"{name}.ipv6"
    props = properties(junit["synack-ack"])
    assert f"link of interface {IF}" in props["target"] and "kernel timestamps" in props["target"]

    peer_mac = run("ip", "-n", link_lab["host"], "-br", "link", "show", PEER).stdout.split()[2]
    frames = rdpcap(str(tmp_path / "pcap" / "synack-ack.pcap"))
    syn, synack = frames[0], frames[1]
    assert (syn[IP].src, syn[IP].dst, syn[Ether].dst) == ("198.18.4.1", ADDR, peer_mac)
    assert str(synack[TCP].flags) == "SA" and synack[Ether].dst == "02:cf:c6:12:04:01"  # our ARP answer
    frames = rdpcap(str(tmp_path / "pcap" / "synack-ack.ipv6.pcap"))
    assert frames and all(IPv6 in f and IP not in f for f in frames)
    assert str(frames[1][TCP].flags) == "SA" and frames[1][Ether].dst == "02:cf:c6:12:04:01"  # our ND answer

    assert _settings(prober) == ("0", True)  # put back
    assert not [r for r in records.read_all() if any(kind == "link" and IF in name for kind, name in r.made)]


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_interface_with_an_address_is_refused(link_lab: dict[str, str], tmp_path: Path) -> None:
    prober = link_lab["prober"]
    run("ip", "-n", prober, "addr", "add", "198.18.4.9/24", "dev", IF)
    proc = play_in(prober, f"link:{IF}:{ADDR}:{LISTEN}", ["closed/syn.yaml"], tmp_path)
    assert proc.returncode == 2
    assert f"interface {IF} has addresses (198.18.4.9/24)" in proc.stderr and "ip addr flush" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _settings(prober) == ("0", True)  # untouched


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_missing_interface(link_lab: dict[str, str], tmp_path: Path) -> None:
    proc = play_in(link_lab["prober"], f"link:nosuch0:{ADDR}:{LISTEN}", ["closed/syn.yaml"], tmp_path)
    assert proc.returncode == 2 and "there is no interface 'nosuch0'" in proc.stderr, proc.stderr
