"""The model's Nagle algorithm (RFC 9293 §3.7.4, SHLD-7) and Linux's exceptions to it, on scripted segments."""

from __future__ import annotations

from dataclasses import replace

from conformance.core.rfc9293 import LINUX, Host
from conformance.core.rfc9293.agent import Agent
from conformance.core.rfc9293.profile import RFC, ModelProfile
from conformance.core.rfc9293.reference import ADDRESSING
from conformance.core.rfc9293.tcb import Emitted
from conformance.core.segment import Segment
from conformance.core.steps import AppRequest

US, THEM, PORT, SPORT = "198.18.0.1", "198.18.0.2", 7000, 40000


def _seg(flags: str, seq: int, ack: int = 0) -> Segment:
    return Segment(US, THEM, SPORT, PORT, seq=seq, ack=ack, flags=flags, options=(("mss", 1000),))


def _open(profile: ModelProfile) -> tuple[Host, int]:
    host = Host(THEM, profile)
    host.listen(PORT, "agent")
    (synack,) = host.receive(_seg("S", 1000), 0.0)
    host.receive(_seg("A", 1001, synack.segment.seq + 1), 0.01)
    return host, synack.segment.seq + 1


def _sent(emitted: list[Emitted]) -> list[tuple[str, bytes]]:
    return [(e.segment.flags, e.segment.payload) for e in emitted]


def test_a_second_small_write_waits_for_the_first_ones_ack() -> None:
    for profile in (LINUX, RFC):
        host, _ = _open(profile)
        tcb = host.tcbs[(PORT, US, SPORT)]
        assert _sent(host.send(tcb, b"a", 0.02)) == [("PA", b"a")]
        assert _sent(host.send(tcb, b"b", 0.03)) == [], profile.name


def test_linux_sends_the_held_data_with_the_fin_of_a_close_and_the_rfc_profile_keeps_the_order() -> None:
    """Linux tcp_send_fin pushes with TCP_NAGLE_OFF; the RFC profile holds the data, and the FIN behind it."""
    host, _ = _open(LINUX)
    tcb = host.tcbs[(PORT, US, SPORT)]
    host.send(tcb, b"a", 0.02)
    host.send(tcb, b"b", 0.03)
    assert _sent(host.close(tcb, 0.04)) == [("PA", b"b"), ("FA", b"")]
    host, una = _open(RFC)
    tcb = host.tcbs[(PORT, US, SPORT)]
    host.send(tcb, b"a", 0.02)
    host.send(tcb, b"b", 0.03)
    assert _sent(host.close(tcb, 0.04)) == []
    assert _sent(host.receive(_seg("A", 1001, una + 1), 0.05)) == [("PA", b"b"), ("FA", b"")]


class _Answers:
    def __init__(self) -> None:
        self.answers: list[dict[str, object]] = []

    def app_answer(self, request: int, answer: dict[str, object], time: float) -> None:
        self.answers.append(answer)


def test_setting_tcp_nodelay_sends_what_linux_held() -> None:
    """Linux __tcp_sock_set_nodelay -> tcp_push_pending_frames; the RFC profile waits for the next event."""
    for profile, pushed in ((LINUX, [b"b"]), (replace(LINUX, nagle_linux=False), [])):
        host, _ = _open(profile)
        agent, answers = Agent(host, ADDRESSING), _Answers()
        agent.request(AppRequest(1, "main", "listen", {"port": PORT}), answers, 0.0)
        agent.request(AppRequest(2, "main", "accept", {"sock": 1}), answers, 0.0)
        sock = answers.answers[-1]["sock"]
        agent.request(AppRequest(3, "main", "send", {"sock": sock, "data": "a"}), answers, 0.02)
        assert agent.request(AppRequest(4, "main", "send", {"sock": sock, "data": "b"}), answers, 0.03) == []
        options = {"sock": sock, "options": {"TCP_NODELAY": 1}}
        out = agent.request(AppRequest(5, "main", "setsockopt", options), answers, 0.04)
        assert [s.payload for s in out] == pushed, profile.name
