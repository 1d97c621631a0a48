"""The player, offline: real dialogues on its one thread, against a fake wire that plays the target.

The fake wire hands our own segments back (as a packet socket's capture does)
and answers from another thread, like the capture thread would; nothing opens a
socket. Checked: a conforming answer passes, a missing one fails at its
deadline and not before, a wrong one fails with the field, many dialogues at
once each get their own answers, and closing the player ends what still runs.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace

from conformance.core.loader import load_case
from conformance.core.params import resolve
from conformance.core.segment import Segment
from conformance.run.player import Player
from conformance.run.session import OpenedTarget, Ports, RunSettings
from conformance.targets.base import Endpoint
from conformance.wire.capture import Captured, Sink

from .helpers import ROOT

CLOSED_SYN = load_case(ROOT / "cases" / "closed" / "syn.yaml")
OURS, THEIRS = "198.18.0.1", "198.18.0.2"


class FakeWire:
    """Subscriptions like :class:`~conformance.wire.capture.Wire`; `answer(seg)` says what the target sends back."""

    def __init__(self, answer: str = "right", delay: float = 0.002) -> None:
        self.answer = answer
        self.delay = delay
        self.drops = 0
        self.subs: dict[int, Sink] = {}
        self.lock = threading.Lock()
        self.sent: list[Segment] = []

    def subscribe(self, ports: object, into: Sink) -> Sink:
        with self.lock:
            for p in ports:  # type: ignore[attr-defined]
                self.subs[p] = into
        return into

    def unsubscribe(self, ports: object) -> None:
        with self.lock:
            for p in ports:  # type: ignore[attr-defined]
                self.subs.pop(p, None)

    def _put(self, seg: Segment) -> None:
        port = seg.sport if seg.src == OURS else seg.dport
        with self.lock:
            sink = self.subs.get(port)
        if sink is not None:
            sink.put(Captured(seg, b""))

    def send(self, seg: Segment) -> None:
        self.sent.append(seg)
        self._put(seg.at(time.time()))  # our own copy, captured
        if "S" not in seg.flags or self.answer == "silent":
            return
        ack = (seg.seq + 1) % 2**32 if self.answer == "right" else seg.seq
        reply = Segment(THEIRS, OURS, seg.dport, seg.sport, seq=0, ack=ack, flags="RA", window=0)

        def later() -> None:
            time.sleep(self.delay)
            self._put(reply.at(time.time()))

        threading.Thread(target=later, daemon=True).start()


def target(wire: FakeWire) -> OpenedTarget:
    ep = Endpoint(
        iface="fake0",
        netns=None,
        our_mac="02:00:00:00:00:01",
        target_mac="02:00:00:00:00:02",
        our_ip=OURS,
        target_ip=THEIRS,
        ports={"closed": 9},
        params=resolve({}),
        description="a fake target",
    )
    return OpenedTarget(ep, wire)  # type: ignore[arg-type]


def play_all(wire: FakeWire, n: int = 1, **settings: object) -> list[object]:
    player = Player(RunSettings(**settings), Ports(random.Random(1)))  # type: ignore[arg-type]
    try:
        futures = [
            player.submit(replace(CLOSED_SYN, id=f"closed-syn#{i}"), target(wire), random.Random(i)) for i in range(n)
        ]
        return [f.result(timeout=10) for f in futures]
    finally:
        player.close()


def test_a_conforming_answer_passes_with_its_frames_and_trace() -> None:
    [result] = play_all(FakeWire("right"))
    assert result.status == "passed", result.message  # type: ignore[attr-defined]
    trace = result.verdict.trace  # type: ignore[attr-defined]
    assert [e.segment.flags for e in trace] == ["S", "RA"] and not trace[0].provisional


def test_a_wrong_answer_fails_on_the_field() -> None:
    [result] = play_all(FakeWire("wrong"))
    assert result.status == "failed"  # type: ignore[attr-defined]
    assert "ack" in result.message  # type: ignore[attr-defined]


def test_a_missing_answer_fails_at_its_deadline_not_before() -> None:
    started = time.monotonic()
    [result] = play_all(FakeWire("silent"))
    took = time.monotonic() - started
    assert result.status == "failed" and "no segment from the target" in result.message  # type: ignore[attr-defined]
    assert 1.0 <= took < 3.0, took  # within: 1s, plus the tolerance and the linger


def test_many_dialogues_at_once_each_get_their_own_answer() -> None:
    wire = FakeWire("right")
    results = play_all(wire, n=40)
    assert [r.status for r in results] == ["passed"] * 40  # type: ignore[attr-defined]
    ports = {s.sport for s in wire.sent if s.flags == "S"}
    assert len(ports) == 40 and not wire.subs, "each on its own port, every subscription gone"


def test_close_ends_dialogues_still_in_flight_as_interrupted() -> None:
    wire = FakeWire("silent")
    player = Player(RunSettings(), Ports(random.Random(1)))
    fut = player.submit(CLOSED_SYN, target(wire), random.Random(1))
    time.sleep(0.1)
    player.close()
    result = fut.result(timeout=1)
    assert (result.status, result.message) == ("error", "interrupted") and not wire.subs
