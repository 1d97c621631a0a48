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
from conformance.core.segment import IcmpError, Segment
from conformance.run.player import Player
from conformance.run.session import OpenedTarget, Ports, RunSettings
from conformance.targets.base import Endpoint
from conformance.wire.capture import Captured, CapturedIcmp, Sink

from .helpers import ROOT

CLOSED_SYN = load_case(ROOT / "cases" / "closed" / "syn.yaml")
OURS, THEIRS = "198.18.0.1", "198.18.0.2"


class FakeWire:
    """Subscriptions like :class:`~conformance.wire.capture.Wire`; `answer(seg)` says what the target sends back."""

    def __init__(self, answer: str = "right", delay: float = 0.002) -> None:
        self.answer = answer
        self.delay = delay
        self.drops = 0
        self.losing = 0
        self.loss_cause = "a fake loss"
        self.iface = "fake0"
        self.subs: dict[int, Sink] = {}
        self.lock = threading.Lock()
        self.sent: list[Segment] = []
        self.held: list[Segment] = []  # captured (stamped) but not read yet: the capture thread is behind

    def subscribe(self, ports: object, into: Sink, icmp: bool = False) -> Sink:
        with self.lock:
            for p in ports:  # type: ignore[attr-defined]
                self.subs[p] = into
        return into

    def unsubscribe(self, ports: object) -> None:
        with self.lock:
            for p in ports:  # type: ignore[attr-defined]
                self.subs.pop(p, None)

    def catch_up(self) -> float | None:
        """Hand on the frames a stalled capture holds back (answer "held"), as the real wire's barrier does."""
        now = time.time()
        with self.lock:
            ready = [seg for seg in self.held if seg.time <= now]
            self.held = [seg for seg in self.held if seg.time > now]
        for seg in ready:
            self._put(seg)
        return now

    def _put(self, seg: Segment) -> None:
        port = seg.sport if seg.src == OURS else seg.dport
        with self.lock:
            sink = self.subs.get(port)
        if sink is not None:
            sink.put(Captured(seg, b""))

    def send(self, seg: Segment) -> None:
        self.sent.append(seg)
        self.drops += self.losing  # frames the kernel dropped while this case ran
        self._put(seg.at(time.time()))  # our own copy, captured
        if "S" not in seg.flags or self.answer == "silent":
            return
        ack = seg.seq if self.answer == "wrong" else (seg.seq + 1) % 2**32
        reply = Segment(THEIRS, OURS, seg.dport, seg.sport, seq=0, ack=ack, flags="RA", window=0)

        if self.answer == "icmp":  # a stack that answers a SYN to a closed port with ICMP port unreachable
            error = IcmpError(THEIRS, OURS, 4, 3, 3, seg.at(0.0), time.time() + self.delay)
            with self.lock:
                sink = self.subs.get(seg.sport)
            if sink is not None:
                sink.put(CapturedIcmp(error, b"icmp"))
            return
        if self.answer == "held":  # stamped in time, read only when the player asks the wire to catch up
            with self.lock:
                self.held.append(reply.at(time.time() + self.delay))
            return

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


def test_a_deadline_is_judged_only_after_the_capture_caught_up() -> None:
    """Issue 12 item 4: with the tool stopped (SIGSTOP) the answer, stamped in time by the kernel, waited in the
    capture socket while the player woke at the deadline and failed "nothing came". The player now asks the wire
    to read everything up to the deadline first."""
    wire = FakeWire("held", delay=0.3)
    [result] = play_all(wire)
    assert result.status == "passed", result.message  # type: ignore[attr-defined]
    [_, answer] = result.verdict.trace  # type: ignore[attr-defined]
    assert answer.segment.flags == "RA" and answer.time - result.verdict.trace[0].time >= 0.29  # type: ignore[attr-defined]


def test_a_capture_that_cannot_catch_up_is_a_harness_error() -> None:
    wire = FakeWire("silent")
    wire.catch_up = lambda: None  # type: ignore[method-assign]
    [result] = play_all(wire)
    assert result.status == "error", result.message  # type: ignore[attr-defined]
    assert "did not catch up" in result.message  # type: ignore[attr-defined]


def test_an_icmp_answer_fails_the_expect_with_what_came() -> None:
    """Issue 12 item 16: a stack answering a SYN to a closed port with ICMP port unreachable failed only with "no
    segment" after the whole window; the ICMP error is now in the trace (and the pcap) and fails the step."""
    [result] = play_all(FakeWire("icmp"))
    assert result.status == "failed", result.message  # type: ignore[attr-defined]
    assert "the target answered with ICMP port unreachable instead of a RST" in result.message  # type: ignore[attr-defined]
    assert result.verdict.failure.kind == "mismatch"  # type: ignore[attr-defined]
    icmp = [e for e in result.verdict.trace if "icmp" in e.segment.extra]  # type: ignore[attr-defined]
    assert len(icmp) == 1 and icmp[0].note == "ICMP destination unreachable from the target: port unreachable"
    assert b"icmp" in [f for _, f in result.frames]  # type: ignore[attr-defined]
    from conformance.reporters.ladder import render_ladder

    assert "ICMP port unreachable (our S seq=0)" in render_ladder(result)  # type: ignore[arg-type]


def test_frames_lost_by_the_capture_make_the_case_a_harness_error() -> None:
    """Issue 12 item 5: a flood made the wire drop frames and the target was failed "no segment from the target".
    Every frame the wire lost while a case ran makes that case a harness error that says so."""
    wire = FakeWire("silent")
    wire.losing = 3
    [result] = play_all(wire)
    assert result.status == "error", result.message  # type: ignore[attr-defined]
    assert "the capture lost 3 frame(s) while this case ran (a fake loss)" in result.message  # type: ignore[attr-defined]
    assert "not the target's" in result.message  # type: ignore[attr-defined]
