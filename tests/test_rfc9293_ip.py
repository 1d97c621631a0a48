"""The model's IP layer (conformance/core/rfc9293/ip.py): what reaches TCP, the ICMP errors it acts on, and the IP
header fields of what it sends; with the shipped cases of RFC 9293 §3.9.2 that Linux answers otherwise."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conformance.core.ipfields import received_route, route_option
from conformance.core.loader import load_case
from conformance.core.outcomes import Status
from conformance.core.profiles import outcome
from conformance.core.rfc9293 import LINUX, RFC, Host
from conformance.core.rfc9293.ip import DEFAULT_TTL, IpLayer, icmp, return_route
from conformance.core.rfc9293.profile import ICMP_HARD, ICMP_SOFT, ModelProfile
from conformance.core.rfc9293.reference import play, unsupported
from conformance.core.rfc9293.tcb import State, Tcb
from conformance.core.segment import IcmpError, IpHeader, Segment

ROOT = Path(__file__).resolve().parent.parent
US, HOST, SECOND, HOP = "198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.77"
PORT, SPORT, ISN = 7000, 40000, 1000


def _host(profile: ModelProfile = LINUX) -> Host:
    host = Host(HOST, profile, 24, SECOND)
    host.listen(PORT)
    return host


def _syn(src: str = US, dst: str = HOST, ip: IpHeader | None = None) -> Segment:
    return Segment(src, dst, SPORT, PORT, seq=ISN, flags="S", ip=ip)


def _routed(*hops: str) -> IpHeader:
    return IpHeader(options=route_option(hops, US))


def _error(kind: int, code: int, quoted: Segment) -> Segment:
    error = IcmpError(US, HOST, 4, kind, code, quoted)
    return error.as_segment()


# ==================================================================== the return route (MUST-53)


def test_a_completed_route_is_reversed_to_the_datagrams_source() -> None:
    first, option = return_route(route_option(("198.18.0.77", "prober"), US), US) or ("", b"")
    assert first == US  # the last hop recorded: where the reply goes first
    assert received_route(option) == (131, 4, (HOP, US))  # then the other hops reversed, then the source


def test_a_recorded_hop_equal_to_the_source_is_left_out() -> None:
    first, option = return_route(route_option(("prober", HOP, "198.18.0.88"), US), US) or ("", b"")
    assert first == "198.18.0.88" and received_route(option) == (131, 4, (HOP, US))


def test_a_route_not_completed_gives_none() -> None:
    assert return_route(route_option((HOP, "prober"), US, pointer=4), US) is None
    assert return_route(b"\x01\x01\x01\x01", US) is None


# ==================================================================== what reaches TCP


def test_a_syn_to_the_subnets_broadcast_or_a_multicast_address_is_dropped() -> None:
    ip = IpLayer(LINUX, HOST, 24)
    for dst in ("198.18.0.255", "255.255.255.255", "224.0.0.1"):
        rule = ip.arrive(_syn(dst=dst), None)
        assert rule is not None and "MUST-57" in rule.text
    assert ip.arrive(_syn(), None) is None
    assert IpLayer(replace(LINUX, drop_syn_to_broadcast=False), HOST, 24).arrive(_syn(dst="198.18.0.255"), None) is None


def test_a_syn_from_an_invalid_source_is_dropped() -> None:
    ip = IpLayer(LINUX, HOST, 24, SECOND)
    for src in ("0.0.0.0", "198.18.0.255", "224.0.0.1", HOST, SECOND):
        rule = ip.arrive(_syn(src=src), None)
        assert rule is not None and "MUST-63" in rule.text, src
    assert IpLayer(replace(LINUX, drop_invalid_source=False), HOST, 24).arrive(_syn(src="0.0.0.0"), None) is None


def test_source_routed_datagrams_reach_tcp_only_where_the_host_accepts_them() -> None:
    routed = _syn(ip=_routed(HOP, "prober"))
    rule = IpLayer(LINUX, HOST).arrive(routed, None)  # Linux accept_source_route 0
    assert rule is not None and rule.key == "ip/source-routed"
    assert IpLayer(RFC, HOST).arrive(routed, None) is None  # RFC 1122 §3.2.1.8


@pytest.mark.parametrize(("profile", "overrides"), [(RFC, True), (replace(LINUX, accept_source_route=True), False)])
def test_a_later_route_overrides_the_syns_only_where_the_profile_says(profile: ModelProfile, overrides: bool) -> None:
    host = _host(profile)
    (synack,) = [e.segment for e in host.receive(_syn(ip=_routed(HOP, "prober")), 0.0)]
    tcb = host.tcbs[(PORT, US, SPORT)]
    assert host.ip.output(synack, tcb).dst == US and tcb.ip.route is not None
    later = Segment(
        US, HOST, SPORT, PORT, seq=ISN + 1, ack=synack.seq + 1, flags="A", ip=_routed("198.18.0.88", "prober")
    )
    host.receive(later, 0.1)
    hops = received_route(tcb.ip.route[1])
    assert hops is not None and hops[2][0] == ("198.18.0.88" if overrides else HOP)


# ==================================================================== ICMP errors (§3.9.2.2)


def _established(profile: ModelProfile) -> tuple[Host, Tcb, Segment]:
    """A connection with one unacknowledged segment of the target's in flight."""
    host = Host(HOST, profile, 24)
    host.listen(PORT, "banner")
    (synack,) = [e.segment for e in host.receive(_syn(), 0.0)]
    sent = host.receive(Segment(US, HOST, SPORT, PORT, seq=ISN + 1, ack=synack.seq + 1, flags="A"), 0.01)
    tcb = host.tcbs[(PORT, US, SPORT)]
    assert tcb.state is State.ESTABLISHED and sent and sent[-1].segment.payload
    return host, tcb, sent[-1].segment


@pytest.mark.parametrize("kind", sorted(ICMP_HARD | ICMP_SOFT))
def test_an_error_aborts_an_established_connection_only_when_hard_and_never_on_linux(kind: tuple[int, int]) -> None:
    for profile, aborts in ((RFC, kind in ICMP_HARD), (LINUX, False)):
        host, tcb, data = _established(profile)
        assert host.receive(_error(*kind, data), 0.02) == []
        assert (host.status(PORT, (US, SPORT)) is State.CLOSED) is aborts, (profile.name, kind)


def test_a_source_quench_is_discarded_and_an_error_quoting_old_data_is_ignored() -> None:
    host, tcb, data = _established(RFC)
    host.receive(_error(4, 0, data), 0.02)
    host.receive(_error(3, 3, replace(data, seq=tcb.snd_nxt + 1000)), 0.02)  # not in flight (RFC 5927 §4.1)
    assert host.status(PORT, (US, SPORT)) is State.ESTABLISHED
    assert host.rules()[-2:] == ["icmp/quench", "icmp/stale"]
    deviant, _, quoted = _established(replace(LINUX, discard_source_quench=False))
    deviant.receive(_error(4, 0, quoted), 0.02)
    assert deviant.status(PORT, (US, SPORT)) is State.CLOSED


@pytest.mark.parametrize(("kind", "dropped"), [((3, 3), False), ((3, 2), False), ((3, 1), True), ((11, 0), True)])
def test_linux_drops_a_request_on_the_errors_of_tcp_req_err_only(kind: tuple[int, int], dropped: bool) -> None:
    """Linux tcp_v4_err -> tcp_req_err: net or host unreachable, time exceeded and parameter problem remove a
    request sock quoting its SYN-ACK; port unreachable leaves it, and the SYN-ACK is retransmitted at 1 s."""
    host = _host(LINUX)
    (synack,) = [e.segment for e in host.receive(_syn(), 0.0)]
    host.receive(_error(*kind, synack), 0.01)
    assert (host.status(PORT, (US, SPORT)) is State.CLOSED) is dropped
    again = [e.segment.flags for e in host.advance(1.0)]
    assert again == ([] if dropped else ["SA"])


def test_the_rfc_profile_drops_a_request_on_a_hard_error() -> None:
    host = _host(RFC)
    (synack,) = [e.segment for e in host.receive(_syn(), 0.0)]
    host.receive(_error(3, 3, synack), 0.01)
    assert host.status(PORT, (US, SPORT)) is State.CLOSED and host.rules()[-1] == "icmp/hard"


def test_icmp_without_a_connection_does_nothing() -> None:
    rule, abort = icmp(LINUX, IcmpError(US, HOST, 4, 3, 3, _syn(HOST, US)), None)
    assert rule.key == "icmp/no-connection" and not abort


# ==================================================================== what the host sends


def test_ttl_and_tos_of_the_application_and_the_ecn_bits_kept() -> None:
    host, tcb, data = _established(LINUX)
    out = host.ip.output(data, tcb)
    assert (out.extra["ttl"], out.extra["tos"]) == (DEFAULT_TTL, 0)
    tcb.ip.tos = 2  # ECT(0) on the connection: IP_TOS leaves the ECN bits (Linux __ip_sock_set_tos)
    host.ip.set_options(tcb, {"IP_TTL": 33, "IP_TOS": 0xB8})
    out = host.ip.output(data, tcb)
    assert (out.extra["ttl"], out.extra["tos"]) == (33, 0xBA)
    host.ip.set_options(tcb, {"IP_TTL": -1})
    assert host.ip.output(data, tcb).extra["ttl"] == DEFAULT_TTL


def test_the_identification_of_a_synack_and_of_retransmissions() -> None:
    for profile in (LINUX, RFC):
        host = _host(profile)
        (synack,) = [e.segment for e in host.receive(_syn(), 0.0)]
        (again,) = [e.segment for e in host.advance(1.0)]
        tcb = host.tcbs[(PORT, US, SPORT)]
        first, second = host.ip.output(synack, tcb).extra["ip_id"], host.ip.output(again, tcb).extra["ip_id"]
        assert first == second and (first == 0) is (profile is LINUX)
    host, tcb, data = _established(LINUX)  # Linux: a retransmitted data segment takes the next identification
    first, second = host.ip.output(data, tcb).extra["ip_id"], host.ip.output(data, tcb).extra["ip_id"]
    assert second == (int(str(first)) + 1) & 0xFFFF


def test_a_connection_to_the_second_address_answers_from_it() -> None:
    host = _host(LINUX)
    (synack,) = [e.segment for e in host.receive(_syn(dst=SECOND), 0.0)]
    assert synack.src == SECOND
    host = _host(replace(LINUX, reply_from_arrival_address=False))
    (synack,) = [e.segment for e in host.receive(_syn(dst=SECOND), 0.0)]
    assert synack.src == HOST


def test_an_open_to_a_broadcast_address_is_refused() -> None:
    ip = IpLayer(LINUX, HOST, 24)
    assert ip.refuses_open("198.18.0.255") and ip.refuses_open("224.0.0.1") and not ip.refuses_open(US)


# ==================================================================== the cases Linux answers otherwise (SHOULDs)

DEPARTED = {
    "icmp/hard-errors-established.yaml": "SHLD-26",
    "icmp/port-unreachable-syn-received.yaml": "SHLD-26",
    "ip/source-route-later.yaml": "SHLD-24",
}


@pytest.mark.parametrize("path", sorted(DEPARTED))
def test_a_should_linux_does_not_follow_warns_against_the_linux_model_and_passes_the_rfc_one(path: str) -> None:
    case = load_case(ROOT / "cases" / path)
    assert unsupported(case) is None
    assert play(case, RFC).verdict.status is Status.PASSED
    for policy in (None, lambda ref: outcome(ref, None)):  # the LINUX profile's departures, and a run's policy
        verdict = play(case, LINUX, policy=policy).verdict
        assert verdict.status is Status.WARNING and verdict.findings
        assert all(DEPARTED[path] in f.failure.render() for f in verdict.findings)
    assert play(case, replace(LINUX, should_departures=())).verdict.status is Status.FAILED


@pytest.mark.parametrize(("kind", "errno"), [((3, 1), "EHOSTUNREACH"), ((3, 3), "ECONNREFUSED"), ((11, 0), None)])
def test_an_error_during_an_active_open_ends_it_on_linux_with_the_errno(
    kind: tuple[int, int], errno: str | None
) -> None:
    """Linux tcp_v4_err in SYN-SENT: tcp_done_with_error for any error (soft ones too, RFC 5461 §4); the RFC
    profile only for the hard ones (SHLD-26), never the soft (MUST-56)."""
    for profile in (LINUX, RFC):
        host = Host(HOST, profile, 24)
        (syn,) = [e.segment for e in host.connect(50000, (US, SPORT), 0.0)]
        host.receive(_error(*kind, syn), 0.01)
        ended = profile is LINUX or kind in ICMP_HARD
        assert (host.status(50000, (US, SPORT)) is State.CLOSED) is ended, (profile.name, kind)
        if ended:
            assert host.gone[-1].closed_by == (errno or "EHOSTUNREACH")
