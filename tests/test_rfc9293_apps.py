"""The model's applications (the target's services) and its socket options, on scripted segments."""

from __future__ import annotations

from dataclasses import replace

from conformance.core.rfc9293 import LINUX, Host, State, keepalive
from conformance.core.rfc9293.apps import HTTP_BODY, HTTP_HEAD
from conformance.core.segment import Segment

US, THEM, PORT, SPORT = "198.18.0.1", "198.18.0.2", 7000, 40000


def seg(flags: str, seq: int, ack: int = 0, data: bytes = b"", window: int = 65535) -> Segment:
    return Segment(US, THEM, SPORT, PORT, seq=seq, ack=ack, flags=flags, payload=data, window=window)


def opened(app: str) -> tuple[Host, int]:
    """A host whose `app` holds an established connection from SPORT (our ISN 1000); the host's ISS+1."""
    host = Host(THEM, LINUX)
    host.listen(PORT, app)
    (synack,) = host.receive(seg("S", 1000), 0.0)
    host.receive(seg("A", 1001, synack.segment.seq + 1), 0.01)
    return host, synack.segment.seq + 1


def test_echo_sends_back_what_it_reads_and_closes_at_the_end() -> None:
    host, una = opened("echo")
    out = [e.segment for e in host.receive(seg("PA", 1001, una, b"hello"), 0.02)]
    assert [(s.flags, s.payload) for s in out] == [("A", b""), ("PA", b"hello")]
    assert out[1].seq == una and out[1].ack == 1006
    out = [e.segment for e in host.receive(seg("FA", 1006, una + 5), 0.03)]
    assert [s.flags for s in out] == ["A", "FA"]  # the FIN acknowledged, then the service's own
    assert host.status(PORT, (US, SPORT)) is State.LAST_ACK


def test_http_answers_a_whole_request_in_two_writes_and_closes_first() -> None:
    host, una = opened("http")
    assert [e.segment.flags for e in host.receive(seg("PA", 1001, una, b"GET / HTTP/1.0\r\n"), 0.02)] == ["A"]
    out = [e.segment for e in host.receive(seg("PA", 1017, una, b"\r\n"), 0.03)]
    # Nagle holds the body behind the unacknowledged head, and the close sends it with the FIN (Linux tcp_send_fin)
    assert [s.payload for s in out[1:]] == [HTTP_HEAD, HTTP_BODY, b""]
    assert out[-1].flags == "FA" and host.status(PORT, (US, SPORT)) is State.FIN_WAIT_1


def test_http_closes_without_an_answer_when_the_peer_ends_before_a_request() -> None:
    host, una = opened("http")
    out = [e.segment for e in host.receive(seg("FA", 1001, una), 0.02)]
    assert [(s.flags, s.payload) for s in out] == [("A", b""), ("FA", b"")]


def held(window: int, data: bytes, syn_window: int = 65535) -> tuple[Host, int]:
    """An agent-held connection whose peer offers `window` after a SYN of `syn_window`, `data` sent by the app."""
    host = Host(THEM, LINUX)
    host.listen(PORT, "agent")
    syn = replace(seg("S", 1000, window=syn_window), options=(("mss", 1000),))
    (synack,) = host.receive(syn, 0.0)
    una = synack.segment.seq + 1
    host.receive(seg("A", 1001, una, window=window), 0.01)
    host.send(host.tcbs[(PORT, US, SPORT)], data, 0.02)
    return host, una


def test_a_zero_window_is_probed_with_the_interval_doubling_and_stays_open_while_probes_are_answered() -> None:
    host, una = held(0, b"hello")
    times = []
    for _ in range(4):
        due = host.deadline()
        assert due is not None
        (probe,) = host.advance(due)
        assert probe.rule.key == "persist/probe" and probe.segment.seq == una - 1 and not probe.segment.payload
        times.append(due)
    gaps = [round(b - a, 6) for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [round(times[0] - 0.02, 6) * 2**i for i in (1, 2, 3)]  # RTO, then 2, 4, 8 RTO (SHLD-30)
    for _ in range(40):  # answered, with the window still closed: never given up (MUST-37)
        due = host.deadline()
        assert due is not None
        host.advance(due)
        host.receive(seg("A", 1001, una, window=0), due + 0.001)
    assert host.status(PORT, (US, SPORT)) is State.ESTABLISHED
    (data,) = host.receive(seg("A", 1001, una, window=1000), 1e6)
    assert data.segment.payload == b"hello" and data.segment.seq == una


def test_unanswered_probes_end_the_connection_after_r2() -> None:
    host, _ = held(0, b"hello")
    for _ in range(LINUX.data_retries + 1):
        due = host.deadline()
        assert due is not None
        host.advance(due)
    assert host.status(PORT, (US, SPORT)) is State.CLOSED and host.rules()[-1] == "timeout/give-up"


def test_sender_sws_avoidance_holds_a_small_window_until_the_override() -> None:
    host, una = held(2000, b"x" * 4000, syn_window=2000)
    out = host.receive(seg("A", 1001, una + 2000, window=100), 0.05)
    assert out == []  # D = 2000, U = 100: none of (1)-(3) of §3.8.6.2.1
    due = host.deadline()
    assert due is not None and due > 0.05
    (override,) = host.advance(due)
    assert override.rule.key == "persist/override" and len(override.segment.payload) == 100


def test_keepalive_is_off_by_default_and_probes_an_idle_connection_once_on() -> None:
    host, una = opened("agent")
    tcb = host.tcbs[(PORT, US, SPORT)]
    assert host.deadline() is None  # MUST-25: off
    keepalive.set_options(tcb, {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 2, "TCP_KEEPINTVL": 1, "TCP_KEEPCNT": 2}, 1.0)
    assert host.deadline() == 3.0  # the idle from now (Linux tcp_set_keepalive)
    (probe,) = host.advance(3.0)
    assert probe.rule.key == "keepalive/probe" and (probe.segment.seq, probe.segment.payload) == (una - 1, b"")
    host.receive(seg("A", 1001, una), 3.1)  # answered: idle again from here
    assert host.deadline() == 4.0  # the timer set at the probe finds the connection heard 0.9 s ago
    assert host.advance(4.0) == [] and host.deadline() == 5.1
    for time in (5.1, 6.1):
        (probe,) = host.advance(time)
        assert probe.rule.key == "keepalive/probe"
    (rst,) = host.advance(7.1)  # TCP_KEEPCNT 2 probes unanswered: reset
    assert (rst.segment.flags, rst.segment.seq, rst.rule.key) == ("RA", una, "keepalive/reset")
    assert host.status(PORT, (US, SPORT)) is State.CLOSED and tcb.closed_by == "timeout"


def test_the_user_timeout_ends_a_connection_whose_data_stays_unacknowledged() -> None:
    host, _ = opened("agent")
    tcb = host.tcbs[(PORT, US, SPORT)]
    keepalive.set_options(tcb, {"TCP_USER_TIMEOUT": 2000}, 0.02)
    host.send(tcb, b"a", 0.05)
    while (due := host.deadline()) is not None:
        host.advance(due)
    assert tcb.closed_by == "timeout" and host.rules()[-1] == "timeout/user"
    assert abs(host.decisions[-1].time - 2.05) < 1e-9


def test_a_receive_buffer_bounds_the_window_to_its_free_space() -> None:
    host = Host(THEM, LINUX)
    host.listen(PORT, "agent", rcv_buf=2048)
    (synack,) = host.receive(seg("S", 1000), 0.0)
    assert synack.segment.window == 2048
    una = synack.segment.seq + 1
    host.receive(seg("A", 1001, una), 0.01)
    (ack,) = host.receive(seg("PA", 1001, una, b"x" * 400), 0.02)
    assert (ack.segment.ack, ack.segment.window) == (1401, 1648)  # RCV.BUFF - RCV.USER, the right edge kept
    (ack,) = host.receive(seg("PA", 1401, una, b"x" * 1648), 0.03)
    assert (ack.segment.ack, ack.segment.window) == (3049, 0)
