"""Offline: target specs and their options, the nft rule text, ARP frames, the port window, skips.

Nothing here opens a socket, runs a program or needs root.
"""

from __future__ import annotations

import random
import struct

import pytest

from conformance.core.errors import HarnessError
from conformance.core.loader import load_case
from conformance.core.params import resolve
from conformance.core.segment import Segment
from conformance.run.runner import play, run
from conformance.run.session import PORT_WINDOW, RunSettings
from conformance.run.session import OpenedTarget as _Target
from conformance.run.session import Ports as _Ports
from conformance.targets.base import Endpoint, TargetOptions
from conformance.targets.grammar import parse_target
from conformance.targets.netns import NamespaceSpec
from conformance.targets.remote import RemoteSpec
from conformance.targets.tap import TapSpec, default_prober_ip, default_prober_ip6, parse_prober_ips
from conformance.wire import arp, firewall
from conformance.wire.capture import Wire

from .helpers import ROOT

CASES = ROOT / "cases"


# ------------------------------------------------------------------ specs
def test_namespace_targets() -> None:
    assert parse_target("embedded") == NamespaceSpec("embedded")
    spec = parse_target("netns:lab1")
    assert isinstance(spec, NamespaceSpec) and spec.existing == "lab1"


def test_remote_spec_defaults() -> None:
    spec = parse_target("198.18.2.2:80")
    assert isinstance(spec, RemoteSpec)
    assert (spec.host, spec.port, spec.iface, spec.closed_port) == ("198.18.2.2", 80, None, 9)
    assert spec.services() == {"listen": 80, "closed": 9}
    assert "banner" in spec.unavailable()


def test_remote_spec_options() -> None:
    spec = parse_target("198.19.255.254:8080", TargetOptions(iface="eth1", closed_port=7))
    assert isinstance(spec, RemoteSpec)
    assert (spec.host, spec.port, spec.iface, spec.closed_port) == ("198.19.255.254", 8080, "eth1", 7)


@pytest.mark.parametrize(
    ("text", "host", "host6"),
    [
        ("[2001:2:0:2::2]:80", None, "2001:2:0:2::2"),
        ("198.18.2.2,[2001:2:0:2::2]:80", "198.18.2.2", "2001:2:0:2::2"),
        ("[2001:2:0:2::2],198.18.2.2:80", "198.18.2.2", "2001:2:0:2::2"),  # either order
        ("[2001:0002:0000:0002:0000:0000:0000:0002]:80", None, "2001:2:0:2::2"),  # written out: compressed
        ("[2001:2:0:ffff:ffff:ffff:ffff:ffff]:80", None, "2001:2:0:ffff:ffff:ffff:ffff:ffff"),  # the /48's last
    ],
)
def test_remote_spec_ipv6(text: str, host: str | None, host6: str) -> None:
    spec = parse_target(text)
    assert isinstance(spec, RemoteSpec)
    assert (spec.host, spec.host6, spec.port) == (host, host6, 80)
    assert spec.services() == {"listen": 80, "closed": 9}


@pytest.mark.parametrize("host", ["10.0.0.1", "198.17.255.255", "198.20.0.0", "192.0.2.1", "127.0.0.1", "0.0.0.0"])
def test_remote_host_outside_the_benchmark_range_is_refused(host: str) -> None:
    with pytest.raises(HarnessError, match=r"outside 198\.18\.0\.0/15: refused"):
        parse_target(f"{host}:80")
    with pytest.raises(HarnessError, match=r"outside 198\.18\.0\.0/15: refused"):
        parse_target(f"{host},[2001:2::2]:80")  # the other address being fine does not help


@pytest.mark.parametrize(
    "host6", ["2001:db8::1", "2001:2:1::1", "2001:1:ffff::1", "2001:3::1", "fe80::1", "::1", "::", "ff02::1", "2002::1"]
)
def test_remote_ipv6_host_outside_the_benchmark_range_is_refused(host6: str) -> None:
    with pytest.raises(HarnessError, match=r"outside 2001:2::/48: refused"):
        parse_target(f"[{host6}]:80")
    with pytest.raises(HarnessError, match=r"outside 2001:2::/48: refused"):
        parse_target(f"198.18.2.2,[{host6}]:80")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("example.com:80", "not an IPv4 address"),
        ("198.18.2.2:", "expected HOST:PORT"),
        (":80", "expected HOST:PORT"),
        ("198.18.2.2:0", "not a TCP port"),
        ("198.18.2.2:65536", "not a TCP port"),
        ("198.18.2.2:http", "not a TCP port"),
        ("[2001:db8::1]:80", "outside 2001:2::/48"),
        ("2001:2::2:80", "an IPv6 address goes in brackets"),
        ("198.18.2.2,2001:2::2:80", "an IPv6 address goes in brackets"),
        ("[2001:2::2]", "expected HOST:PORT"),
        ("[2001:2::2]:", "expected HOST:PORT"),
        ("[2001:2::2:80", "a '\\[' without its '\\]'"),
        ("[2001:2::2]x:80", "expected HOST:PORT"),
        ("[198.18.2.2]:80", "not an IPv6 address"),
        ("[example.com]:80", "not an IPv6 address"),
        ("198.18.2.2,198.18.2.3:80", "two IPv4 addresses"),
        ("[2001:2::2],[2001:2::3]:80", "two IPv6 addresses"),
        ("198.18.2.2,:80", "expected HOST:PORT"),
        (",198.18.2.2:80", "expected HOST:PORT"),
        ("198.18.2.2:80:81", "expected HOST:PORT"),
        ("nonsense", "unknown target"),
        ("netns:", "needs a namespace name"),
    ],
)
def test_bad_target_specs_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(HarnessError, match=problem):
        parse_target(text)


def test_closed_port_must_differ_from_listen_port() -> None:
    with pytest.raises(HarnessError, match="listening port"):
        parse_target("198.18.2.2:9")
    with pytest.raises(HarnessError, match="not a TCP port"):
        parse_target("198.18.2.2:80", TargetOptions(closed_port=70000))


@pytest.mark.parametrize(
    ("target", "options", "wrong"),
    [
        ("embedded", TargetOptions(iface="eth0"), "--iface"),
        ("netns:x", TargetOptions(closed_port=9), "--closed-port"),
        ("198.18.2.2:80", TargetOptions(prober_ip="198.18.2.9"), "--prober-ip"),
        ("tap:tap0:198.18.3.2:80", TargetOptions(iface="eth0"), "--iface"),
    ],
)
def test_options_of_another_kind_are_refused(target: str, options: TargetOptions, wrong: str) -> None:
    with pytest.raises(HarnessError, match=f"{wrong} does not apply"):
        parse_target(target, options)


def test_tap_spec() -> None:
    spec = parse_target("tap:tap0:198.18.3.2:7000")
    assert isinstance(spec, TapSpec)
    assert (spec.ifname, spec.addr, spec.port, spec.prober_ip, spec.closed_port) == (
        "tap0",
        "198.18.3.2",
        7000,
        "198.18.3.1",
        9,
    )
    assert spec.services() == {"listen": 7000, "closed": 9}


def test_tap_spec_ipv6() -> None:
    spec = parse_target("tap:tap0:[2001:2:0:3::2]:7000")
    assert isinstance(spec, TapSpec)
    assert (spec.addr, spec.addr6, spec.port, spec.prober_ip, spec.prober_ip6) == (
        None,
        "2001:2:0:3::2",
        7000,
        None,
        "2001:2:0:3::1",
    )
    spec = parse_target("tap:tap0:198.18.3.2,[2001:2:0:3::2]")
    assert isinstance(spec, TapSpec)
    assert (spec.addr, spec.addr6, spec.port, spec.prober_ip, spec.prober_ip6) == (
        "198.18.3.2",
        "2001:2:0:3::2",
        None,
        "198.18.3.1",
        "2001:2:0:3::1",
    )


@pytest.mark.parametrize(
    ("given", "prober", "prober6"),
    [
        ("198.18.3.77,2001:2:0:3::77", "198.18.3.77", "2001:2:0:3::77"),  # comma-separated (or the option repeated)
        ("[2001:2:0:3::77], 198.18.3.77", "198.18.3.77", "2001:2:0:3::77"),  # brackets allowed, any order
        ("2001:2:0:3::77", "198.18.3.1", "2001:2:0:3::77"),  # the other family keeps its default
        ("198.18.3.77", "198.18.3.77", "2001:2:0:3::1"),
    ],
)
def test_tap_prober_addresses(given: str, prober: str, prober6: str) -> None:
    spec = parse_target("tap:tap0:198.18.3.2,[2001:2:0:3::2]:80", TargetOptions(prober_ip=given))
    assert isinstance(spec, TapSpec)
    assert (spec.prober_ip, spec.prober_ip6) == (prober, prober6)


def test_parse_prober_ips() -> None:
    assert parse_prober_ips(None) == (None, None)
    assert parse_prober_ips("2001:2:0:3:0:0:0:77") == (None, "2001:2:0:3::77")
    with pytest.raises(HarnessError, match="two IPv6 addresses"):
        parse_prober_ips("2001:2:0:3::77,[2001:2:0:3::78]")
    with pytest.raises(HarnessError, match="outside 2001:2::/48"):
        parse_prober_ips("2001:db8::1")


def test_tap_spec_without_port_has_no_listen_service() -> None:
    spec = parse_target("tap:tap0:198.18.3.2", TargetOptions(prober_ip="198.18.3.77", closed_port=1))
    assert isinstance(spec, TapSpec)
    assert spec.port is None and spec.prober_ip == "198.18.3.77"
    assert spec.services() == {"closed": 1}
    assert "no listening port" in spec.unavailable()["listen"]


def test_default_prober_ip() -> None:
    assert default_prober_ip("198.18.3.2") == "198.18.3.1"
    assert default_prober_ip("198.19.200.17") == "198.19.200.1"
    assert default_prober_ip("198.18.3.1") == "198.18.3.254"


def test_default_prober_ip6() -> None:
    assert default_prober_ip6("2001:2:0:3::2") == "2001:2:0:3::1"
    assert default_prober_ip6("2001:2:0:3:aaaa:bbbb:cccc:dddd") == "2001:2:0:3::1"
    assert default_prober_ip6("2001:2:0:3::1") == "2001:2:0:3::fe"


@pytest.mark.parametrize(
    ("text", "options", "problem"),
    [
        ("tap:tap0:10.0.0.2:80", TargetOptions(), "outside 198.18.0.0/15"),
        ("tap:tap0:198.18.3.2:80", TargetOptions(prober_ip="10.0.0.1"), "outside 198.18.0.0/15"),
        ("tap:tap0:198.18.3.2:80", TargetOptions(prober_ip="198.18.3.2"), "is the target's address"),
        ("tap::198.18.3.2:80", TargetOptions(), "expected tap:IFNAME:ADDR"),
        ("tap:tap0", TargetOptions(), "expected tap:IFNAME:ADDR"),
        ("tap:tap0:198.18.3.2:80:1", TargetOptions(), "expected tap:IFNAME:ADDR"),
        ("tap:a-very-long-ifname0:198.18.3.2", TargetOptions(), "not an interface name"),
        ("tap:tap0:198.18.3.2:x", TargetOptions(), "not a TCP port"),
        ("tap:tap0:[2001:db8::2]:80", TargetOptions(), "outside 2001:2::/48"),
        ("tap:tap0:2001:2:0:3::2:80", TargetOptions(), "an IPv6 address goes in brackets"),
        ("tap:tap0:[2001:2:0:3::2]:80", TargetOptions(prober_ip="198.18.3.1"), "the target has none"),
        ("tap:tap0:198.18.3.2:80", TargetOptions(prober_ip="2001:2:0:3::1"), "the target has none"),
        ("tap:tap0:[2001:2:0:3::2]:80", TargetOptions(prober_ip="2001:2:0:3::2"), "is the target's address"),
        ("tap:tap0:[2001:2:0:3::2]:80", TargetOptions(prober_ip="fe80::1"), "outside 2001:2::/48"),
        ("tap:tap0:198.18.3.2:80", TargetOptions(prober_ip="198.18.3.7,198.18.3.8"), "two IPv4 addresses"),
    ],
)
def test_bad_tap_specs(text: str, options: TargetOptions, problem: str) -> None:
    with pytest.raises(HarnessError, match=problem):
        parse_target(text, options)


# ------------------------------------------------------------------ skips
def test_skip_reasons() -> None:
    banner = load_case(CASES / "data" / "retransmit-backoff.yaml")
    sysctl = load_case(CASES / "handshake" / "synack-retransmit-ci.yaml")
    closed = load_case(CASES / "closed" / "syn.yaml")
    listen = load_case(CASES / "handshake" / "synack-ack.yaml")
    remote = parse_target("198.18.2.2:80")
    reason = remote.skip_reason(banner)
    assert reason is not None and "'banner' service" in reason
    reason = remote.skip_reason(sysctl)
    assert reason is not None and "tcp_synack_retries=2" in reason and "cannot be set" in reason
    assert remote.skip_reason(closed) is None and remote.skip_reason(listen) is None
    tap = parse_target("tap:tap0:198.18.3.2")
    reason = tap.skip_reason(listen)
    assert reason is not None and "no listening port" in reason
    assert tap.skip_reason(closed) is None
    embedded = parse_target("embedded")
    assert all(embedded.skip_reason(c) is None for c in (banner, sysctl, closed, listen))


def test_run_reports_skipped_cases_without_opening_a_target() -> None:
    """Every case skipped: the runner opens no target (nothing is sent) and reports each with its reason."""
    cases = [
        load_case(CASES / "data" / "retransmit-backoff.yaml"),
        load_case(CASES / "handshake" / "synack-retransmit-ci.yaml"),
    ]
    seen: list[str] = []
    results = run(cases, RunSettings(target="198.18.2.2:80"), on_result=lambda r: seen.append(r.case.id))
    assert [r.status for r in results] == ["skipped", "skipped"]
    assert "banner" in results[0].message and "sysctls" in results[1].message
    assert sorted(seen) == sorted(c.id for c in cases)


def test_run_refuses_a_bad_target_before_anything_is_sent() -> None:
    with pytest.raises(HarnessError, match="outside"):
        run([load_case(CASES / "closed" / "syn.yaml")], RunSettings(target="192.0.2.1:80"))


# ------------------------------------------------------------------ address families
def _endpoint(our_ip: str | None, target_ip: str | None, our_ip6: str | None, target_ip6: str | None) -> Endpoint:
    return Endpoint(
        iface="x0",
        netns=None,
        our_mac="02:cf:00:00:00:01",
        target_mac="02:00:00:00:00:02",
        our_ip=our_ip,
        target_ip=target_ip,
        ports={"listen": 80, "closed": 9},
        params=resolve({}),
        description="test",
        kind="remote",
        our_ip6=our_ip6,
        target_ip6=target_ip6,
    )


@pytest.mark.parametrize(
    ("addresses", "family", "missing"),
    [
        ((None, None, "2001:2:0:1::2", "2001:2:0:2::2"), 4, "IPv4"),
        (("198.18.1.2", "198.18.2.2", None, None), 6, "IPv6"),
    ],
)
def test_a_case_over_a_family_the_target_lacks_is_skipped(
    addresses: tuple[str | None, str | None, str | None, str | None], family: int, missing: str
) -> None:
    """Nothing is sent: play returns before it touches the wire (never opened here)."""
    ep = _endpoint(*addresses)
    wire = Wire(ep.iface, None, ep.our_mac, ep.target_mac, ep.our_ip, ep.target_ip, ep.our_ip6, ep.target_ip6)
    result = play(
        load_case(CASES / "closed" / "syn.yaml"),
        _Target(ep, wire),
        _Ports(random.Random(1)),
        random.Random(1),
        RunSettings(),
        family,
    )
    assert (result.status, result.message) == ("skipped", f"this target has no {missing} address")


def test_wire_delivers_only_the_target_pair_of_each_family() -> None:
    """A remote target's interface carries its host's other traffic: only our pair of each family is ours."""
    wire = Wire("x0", None, "02:cf:00:00:00:01", "02:00:00:00:00:02", None, None, "2001:2:0:1::2", "2001:2:0:2::2")
    q = wire.subscribe([40000])
    theirs = Segment("2001:2:0:2::2", "2001:2:0:1::2", 80, 40000, flags="SA")
    wire._route(theirs, b"")
    wire._route(Segment("2001:2:0:1::2", "2001:2:0:2::2", 40000, 80, flags="S"), b"")  # ours, on its way out
    wire._route(Segment("2001:2:0:2::9", "2001:2:0:1::2", 80, 40000, flags="SA"), b"")  # another host
    wire._route(Segment("198.18.2.2", "198.18.1.2", 80, 40000, flags="SA"), b"")  # a family we do not use
    assert [q.get_nowait().segment.flags for _ in range(q.qsize())] == ["SA", "S"]
    assert wire.stray == 2
    both = Wire("x0", None, "m", "m", "198.18.1.2", "198.18.2.2", "2001:2:0:1::2", "2001:2:0:2::2")
    q = both.subscribe([40000])
    both._route(Segment("198.18.2.2", "198.18.1.2", 80, 40000, flags="SA"), b"")
    both._route(theirs, b"")
    both._route(Segment("198.18.2.2", "2001:2:0:1::2", 80, 40000, flags="SA"), b"")  # not a pair (nonsense)
    assert q.qsize() == 2 and both.stray == 1


# ------------------------------------------------------------------ ports
def test_port_window_is_known_before_the_first_port() -> None:
    ports = _Ports(random.Random(7))
    window = ports.window
    assert len(window) == PORT_WINDOW == 10000
    assert 20000 <= window.start < 40000
    taken = [ports.take() for _ in range(PORT_WINDOW)]
    assert taken == list(window)
    with pytest.raises(HarnessError, match="every source port of its window"):
        ports.take()


def test_port_window_follows_the_seed() -> None:
    assert _Ports(random.Random(1)).window == _Ports(random.Random(1)).window


# ------------------------------------------------------------------ nft
V4 = [("198.18.1.2", "198.18.2.2")]


def test_ruleset_text() -> None:
    text = firewall.ruleset("conformance_4242", V4, [7000, 9], range(30000, 32000))
    assert text == (
        "table inet conformance_4242\n"
        "delete table inet conformance_4242\n"
        "table inet conformance_4242 {\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        "\t\tip saddr 198.18.1.2 ip daddr 198.18.2.2 tcp sport 30000-31999 tcp dport { 9, 7000 } "
        "tcp flags & rst == rst counter drop\n"
        "\t}\n"
        "}\n"
    )


def test_ruleset_text_ipv6_and_both() -> None:
    v6 = [("2001:2:0:1:0:0:0:2", "2001:2:0:2::2")]
    text = firewall.ruleset("conformance_4242", v6, [7000], range(30000, 32000))
    rule = (
        "\t\tip6 saddr 2001:2:0:1::2 ip6 daddr 2001:2:0:2::2 tcp sport 30000-31999 tcp dport 7000 "
        "tcp flags & rst == rst counter drop\n"
    )
    assert rule in text and "ip saddr" not in text
    both = firewall.ruleset("conformance_4242", V4 + v6, [7000], range(30000, 32000))
    lines = both.splitlines()
    assert lines[5] == "\t\tip saddr 198.18.1.2 ip daddr 198.18.2.2 tcp sport 30000-31999 tcp dport 7000 " + (
        "tcp flags & rst == rst counter drop"
    )
    assert lines[6] + "\n" == rule  # both rules in the one chain of the one inet table
    assert lines[7:] == ["\t}", "}"]


def test_ruleset_one_port() -> None:
    text = firewall.ruleset("conformance_1", V4, [80], range(20000, 20001))
    assert "tcp sport 20000 tcp dport 80 tcp flags" in text


def test_ruleset_any_target_port_keeps_the_addresses_and_our_window() -> None:
    """The target's application connects to us from ports its kernel picks: no dport match, the rest stays."""
    text = firewall.ruleset("conformance_1", V4, None, range(30000, 32000))
    rule = "\t\tip saddr 198.18.1.2 ip daddr 198.18.2.2 tcp sport 30000-31999 tcp flags & rst == rst counter drop\n"
    assert rule in text and "dport" not in text


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("conformance_x", V4, [80], range(1, 2)), "table name"),
        (("inet; flush ruleset", V4, [80], range(1, 2)), "table name"),
        (("conformance_1", [("198.18.1.2; flush ruleset", "198.18.2.2")], [80], range(1, 2)), "does not appear"),
        (("conformance_1", [("2001:2::1", "2001:2::2 ip6 daddr ::")], [80], range(1, 2)), "does not appear"),
        (("conformance_1", [("198.18.1.2", "2001:2::2")], [80], range(1, 2)), "two families"),
        (("conformance_1", V4 + V4, [80], range(1, 2)), "of different families"),
        (("conformance_1", [], [80], range(1, 2)), "one or two"),
        (("conformance_1", V4, [], range(1, 2)), "target ports"),
        (("conformance_1", V4, [0], range(1, 2)), "target ports"),
        (("conformance_1", V4, [80], range(5, 5)), "source ports"),
        (("conformance_1", V4, [80], range(65000, 66000)), "source ports"),
    ],
)
def test_ruleset_refuses_bad_values(args: tuple, problem: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=problem):
        firewall.ruleset(*args)


def test_table_name() -> None:
    assert firewall.table_name(123) == "conformance_123"


def test_tables_named_like_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only candidates: cleanup removes a table only when a dead run's record names it (test_targets_records)."""
    monkeypatch.setattr(firewall.shutil, "which", lambda tool: "/usr/sbin/nft")
    monkeypatch.setattr(
        firewall,
        "list_tables",
        lambda: [("inet", "conformance_1"), ("bridge", "conformance_2"), ("inet", "conformance_x"), ("ip", "filter")],
    )
    assert firewall.tables_named_like_ours() == [("inet", "conformance_1"), ("bridge", "conformance_2")]


# ------------------------------------------------------------------ ARP
def test_arp_request_frame() -> None:
    frame = arp.request("02:cf:c6:12:03:01", "198.18.3.1", "198.18.3.2")
    assert len(frame) == 60
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == bytes.fromhex("02cfc6120301")
    assert struct.unpack("!H", frame[12:14])[0] == arp.ETH_P_ARP
    parsed = arp.parse(frame)
    assert parsed == arp.Arp(
        op=arp.OP_REQUEST,
        sender_mac="02:cf:c6:12:03:01",
        sender_ip="198.18.3.1",
        target_mac="00:00:00:00:00:00",
        target_ip="198.18.3.2",
        eth_src="02:cf:c6:12:03:01",
        eth_dst="ff:ff:ff:ff:ff:ff",
    )


def test_arp_reply_answers_the_request() -> None:
    req = arp.parse(arp.request("aa:bb:cc:dd:ee:ff", "198.18.3.2", "198.18.3.1"))
    assert req is not None
    reply = arp.parse(arp.reply_to(req, "02:cf:c6:12:03:01"))
    assert reply is not None
    assert (reply.op, reply.sender_ip, reply.sender_mac) == (arp.OP_REPLY, "198.18.3.1", "02:cf:c6:12:03:01")
    assert (reply.target_ip, reply.target_mac, reply.eth_dst) == (
        "198.18.3.2",
        "aa:bb:cc:dd:ee:ff",
        "aa:bb:cc:dd:ee:ff",
    )
    assert arp.is_answer(reply, "198.18.3.1", "198.18.3.2")
    assert not arp.is_answer(reply, "198.18.3.9", "198.18.3.2")
    assert not arp.is_answer(req, "198.18.3.2", "198.18.3.1")  # a request is no answer


def test_arp_parse_ignores_other_frames() -> None:
    ipv4 = b"\x00" * 12 + b"\x08\x00" + b"\x45" + b"\x00" * 45
    assert arp.parse(ipv4) is None
    assert arp.parse(b"\x00" * 10) is None


def test_local_mac() -> None:
    assert arp.local_mac("198.18.3.1") == "02:cf:c6:12:03:01"
    assert int(arp.local_mac("198.19.0.1").split(":")[0], 16) & 0x03 == 0x02  # locally administered, unicast


def test_every_target_kind_is_a_target() -> None:
    """Each kind satisfies the one interface the runner uses (mypy checks the types where the runner builds
    them); building one makes nothing."""
    from conformance.targets.base import Target
    from conformance.targets.docker import DockerTarget, parse_docker
    from conformance.targets.netns import NamespaceTarget
    from conformance.targets.remote import RemoteTarget, parse_remote
    from conformance.targets.tap import TapTarget, parse_tap

    options = TargetOptions()
    kinds = [
        NamespaceTarget(0),
        RemoteTarget(parse_remote("198.18.2.2:80", options), 0, range(20000, 20010)),
        TapTarget(parse_tap("tap:tap0:198.18.3.2:80", options), 0),
        DockerTarget(parse_docker("docker:web:80", options), 0),
    ]
    for target in kinds:
        assert isinstance(target, Target), type(target).__name__
        assert target.endpoint is None
