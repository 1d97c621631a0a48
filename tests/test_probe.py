"""The listen-port check before a run (issue 11): a wrong port on a remote or TAP target stops the run with what
to do, instead of every case failing with "expected SA, observed RA". Offline: the wire is a fake that answers."""

from __future__ import annotations

import queue
import random
from typing import Any

import pytest

from conformance.core.errors import HarnessError
from conformance.core.segment import Segment
from conformance.run.probe import check_listening
from conformance.run.session import OpenedTarget, Ports
from conformance.targets.base import black_box_endpoint
from conformance.wire.capture import Captured

US, THEM, US6, THEM6 = "198.18.0.1", "198.18.0.2", "2001:2::1", "2001:2::2"
PORTS = Ports(random.Random(0))


class AnsweringWire:
    """Answers a SYN with `flags` (None: silence); our own segments come back first, as on a real capture."""

    def __init__(self, flags: str | None) -> None:
        self.flags = flags
        self.sent: list[Segment] = []
        self.subs: dict[int, queue.Queue[Captured]] = {}

    def subscribe(self, ports: list[int]) -> queue.Queue[Captured]:
        q: queue.Queue[Captured] = queue.Queue()
        for p in ports:
            self.subs[p] = q
        return q

    def unsubscribe(self, ports: list[int]) -> None:
        for p in ports:
            self.subs.pop(p)

    def send(self, seg: Segment) -> None:
        self.sent.append(seg)
        q = self.subs[seg.sport]
        q.put(Captured(seg, b""))
        if "S" in seg.flags and self.flags is not None:
            answer = Segment(seg.dst, seg.src, seg.dport, seg.sport, seq=99, ack=seg.seq + 1, flags=self.flags)
            q.put(Captured(answer, b""))


def opened(wire: Any, kind: str = "remote", six: bool = False) -> OpenedTarget:
    endpoint = black_box_endpoint(
        kind,
        "eth0",
        "02:00:00:00:00:01",
        macs=("02:00:00:00:00:02", None),
        ours=(US, US6 if six else None),
        theirs=(THEM, THEM6 if six else None),
        ports={"listen": 8080, "closed": 9},
        description="test",
    )
    return OpenedTarget(endpoint, wire)


@pytest.mark.parametrize("kind", ["remote", "tap"])
def test_a_listening_port_passes_and_the_half_open_connection_is_reset(kind: str) -> None:
    wire = AnsweringWire("SA")
    check_listening(opened(wire, kind, six=True), PORTS, timeout=0.5)
    assert [(s.dst, s.flags) for s in wire.sent] == [(THEM, "S"), (THEM, "R"), (THEM6, "S"), (THEM6, "R")]
    assert wire.sent[1].seq == (wire.sent[0].seq + 1) % 2**32
    assert not wire.subs  # unsubscribed


@pytest.mark.parametrize("kind", ["remote", "tap"])
def test_a_closed_listen_port_stops_the_run_with_what_to_do(kind: str) -> None:
    wire = AnsweringWire("RA")
    with pytest.raises(HarnessError, match=r"nothing listens on 198\.18\.0\.2:8080") as info:
        check_listening(opened(wire, kind), PORTS, timeout=0.5)
    assert "give the port it listens on" in info.value.hint
    assert not wire.subs


def test_silence_stops_the_run_too() -> None:
    wire = AnsweringWire(None)
    with pytest.raises(HarnessError, match="no answer from 198.18.0.2:8080 to a SYN within 0.2 s"):
        check_listening(opened(wire), PORTS, timeout=0.2)


def test_targets_with_our_own_listeners_are_not_probed() -> None:
    wire = AnsweringWire("RA")
    ports = Ports(random.Random(1))
    first = Ports(random.Random(1)).take()
    check_listening(opened(wire, "netns"), ports, timeout=0.2)
    check_listening(opened(wire, "docker"), ports, timeout=0.2)
    assert wire.sent == []
    assert ports.take() == first  # no source port taken
