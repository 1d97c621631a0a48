"""The model's applications (the target's services) and its socket options, on scripted segments."""

from __future__ import annotations

from conformance.core.rfc9293 import LINUX, Host, State
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
    assert [s.payload for s in out[1:]] == [HTTP_HEAD, HTTP_BODY, b""]
    assert out[-1].flags == "FA" and host.status(PORT, (US, SPORT)) is State.FIN_WAIT_1


def test_http_closes_without_an_answer_when_the_peer_ends_before_a_request() -> None:
    host, una = opened("http")
    out = [e.segment for e in host.receive(seg("FA", 1001, una), 0.02)]
    assert [(s.flags, s.payload) for s in out] == [("A", b""), ("FA", b"")]
