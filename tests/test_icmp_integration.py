"""ICMP on the wire (issue 12, item 16): a stack that answers a SYN to a closed port with ICMP port unreachable.

In a namespace of the test, the kernel sits on the interface side of a TAP device (as in
``tests/test_targets_tap.py``) and an nftables rule of that namespace rejects TCP to the closed port with ICMP
(ICMPv6) port unreachable instead of the RST the kernel would send. ``closed-syn`` must fail with what came, the
ICMP error be in its pcap and its ladder. The namespace (and the rule with it) is removed in a finally.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP
from scapy.layers.inet6 import ICMPv6DestUnreach
from scapy.utils import rdpcap

from .lab import Lab, missing_tools, run
from .tool_runs import junit_cases, outcome, play_in

TAP, ADDR, ADDR6, CLOSED = "cftap1", "198.18.3.2", "2001:2:0:3::2", 9

_skip = missing_tools("ip", "nft")
if _skip is None and not Path("/dev/net/tun").exists():
    _skip = "needs /dev/net/tun (the tun module)"
pytestmark = [pytest.mark.integration, pytest.mark.skipif(_skip is not None, reason=_skip or "")]

RULES = f"""
table inet cficmp {{
    chain input {{
        type filter hook input priority 0;
        tcp dport {CLOSED} reject with icmpx type port-unreachable
    }}
}}
"""


def test_a_target_answering_with_icmp_fails_with_what_came(tmp_path: Path) -> None:
    with Lab() as lab:
        ns = lab.netns("icmp", ipv6=True)
        lab.ip(ns, "tuntap", "add", "dev", TAP, "mode", "tap")
        lab.address(ns, TAP, f"{ADDR}/24")
        lab.address(ns, TAP, f"{ADDR6}/64")
        rules = tmp_path / "rules.nft"
        rules.write_text(RULES)
        run("ip", "netns", "exec", ns, "nft", "-f", str(rules))
        proc = play_in(ns, f"tap:{TAP}:{ADDR},[{ADDR6}]", ["closed/syn.yaml"], tmp_path, "--ip", "both")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    junit = junit_cases(tmp_path / "junit.xml")
    for name in ("closed-syn", "closed-syn.ipv6"):
        assert outcome(junit[name]) == ["failure"], name
        text = " ".join(f"{child.get('message', '')} {child.text or ''}" for child in junit[name])
        assert "the target answered with ICMP port unreachable instead of a RST" in text, (name, text)
    assert any(ICMP in f for f in rdpcap(str(tmp_path / "pcap" / "closed-syn.pcap")))
    assert any(ICMPv6DestUnreach in f for f in rdpcap(str(tmp_path / "pcap" / "closed-syn.ipv6.pcap")))
    ladder = (tmp_path / "ladders" / "closed-syn.txt").read_text()
    assert "ICMP port unreachable (our S seq=0)" in ladder, ladder
